package scrape

import (
	"time"

	"github.com/kubemon/kubemon/internal/model"
)

// Clock skew (issue 9). kubemon stores each sample at the time the kubelet
// reports, and the embedded TSDB accepts appends only within about an hour
// of the newest sample it holds: one kubelet whose clock runs an hour ahead
// moves that window past everyone else's samples, and every other node's
// appends fail. So the scrape loop compares the newest time of each node's
// payload with the time kubemon received it; beyond a tolerance, the node's
// whole batch is shifted by the measured offset (the data is kept, at
// kubemon's receive time, with the spacing of the node's own times intact).

// DefaultClockSkewTolerance is max(2 × interval, 1 min): how far a node's
// newest sample time may be from kubemon's receive time before the node's
// clock counts as off. A kubelet with a good clock reports stats up to one
// housekeeping period old (10–15 s, longer under load), plus the scrape's
// own duration: two intervals and at least a minute leave room for that
// and for an NTP-less clock's drift, and stay far below the TSDB's one-hour
// window, the thing a skewed clock actually breaks.
func DefaultClockSkewTolerance(interval time.Duration) time.Duration {
	return max(2*interval, time.Minute)
}

// clockState is what a node's loop remembers of its kubelet's clock.
type clockState struct {
	skewed bool
	// offset is subtracted from every time of the node's batch while
	// skewed, in ms. It is kept from scrape to scrape (so the node's series
	// keep the kubelet's exact spacing and its start times do not change,
	// which would read as restarts) and measured again only when samples
	// would land more than refineSlack after they were received (the first
	// measurement saw stale stats) or when the clock moved by more than the
	// tolerance.
	offset int64
}

// refineSlack is how far after their receive time shifted samples may land
// before the offset is measured again, in ms. Kubelet times have second
// precision, so less would re-measure at nearly every scrape.
const refineSlack = 1000

// clockEvent says what one scrape changed in a node's clock state.
type clockEvent uint8

const (
	clockSame    clockEvent = iota
	clockSkewed             // the skew started
	clockChanged            // still skewed, the offset moved by more than the tolerance
	clockRefined            // still skewed, the offset re-measured from fresher stats (not logged)
	clockInStep             // the skew ended
)

// observe measures the kubelet's clock offset against received (newest
// sample time minus receive time, in ms), updates the state and shifts the
// batch if the node is skewed. ok is false when the batch has no time of
// the kubelet's own to measure.
func (s *clockState) observe(ns *model.NodeStats, received time.Time, tolerance time.Duration) (measured int64, ev clockEvent, ok bool) {
	newest := newestTime(ns)
	if newest == 0 {
		return 0, clockSame, false
	}
	measured = newest - received.UnixMilli()
	tol := tolerance.Milliseconds()
	switch {
	case abs(measured) <= tol:
		if s.skewed {
			ev = clockInStep
		}
		*s = clockState{}
	case !s.skewed:
		*s = clockState{skewed: true, offset: measured}
		ev = clockSkewed
	case abs(measured-s.offset) > tol:
		s.offset = measured
		ev = clockChanged
	case measured-s.offset > refineSlack:
		s.offset = measured
		ev = clockRefined
	}
	if s.skewed {
		shiftTimes(ns, -s.offset)
	}
	return measured, ev, true
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// stampedByUs reports whether t (Unix ms) is the scrape's start, which the
// decoders use for samples that have no time: those are kubemon's, not the
// kubelet's. A kubelet time equal to it to the millisecond is in step with
// kubemon anyway, so it is never shifted by mistake.
func stampedByUs(ns *model.NodeStats, t int64) bool {
	return t == ns.ScrapeTime.UnixMilli()
}

// newestTime is the newest time the kubelet reported in the batch (samples
// from the stats endpoint and from /metrics/cadvisor), in Unix ms; 0 when
// it reported none.
func newestTime(ns *model.NodeStats) int64 {
	var newest int64
	for i := range ns.Entries {
		e := &ns.Entries[i]
		if e.Time != 0 && !stampedByUs(ns, e.Time) {
			newest = max(newest, e.Time)
		}
		if e.CadvisorTime != 0 && !stampedByUs(ns, e.CadvisorTime) {
			newest = max(newest, e.CadvisorTime)
		}
	}
	return newest
}

// shiftTimes adds d ms to every time the kubelet reported in the batch:
// sample times, cAdvisor sample times and start times (uptimes, their
// differences, stay as they are).
func shiftTimes(ns *model.NodeStats, d int64) {
	for i := range ns.Entries {
		e := &ns.Entries[i]
		if e.Time != 0 && !stampedByUs(ns, e.Time) {
			e.Time += d
		}
		if e.CadvisorTime != 0 && !stampedByUs(ns, e.CadvisorTime) {
			e.CadvisorTime += d
		}
		if e.Start != 0 {
			e.Start += d
		}
	}
}
