// Package pipeline turns scraped node stats into a cycle's batch: it
// enriches entries from pod specs, computes rates from counters, and rolls
// values up container → pod → namespace / workload → node → cluster. Every
// function is pure except Rater, which remembers the previous cycle.
package pipeline

import (
	"math"

	"github.com/kubemon/kubemon/internal/model"
)

// counters are the metrics that have a derived rate, with that rate.
var counters = func() (c []struct{ counter, rate model.MetricID }) {
	for _, m := range model.Metrics {
		if m.RateOf != nil {
			c = append(c, struct{ counter, rate model.MetricID }{*m.RateOf, m.ID})
		}
	}
	return c
}()

type prevSample struct {
	time, start int64
	values      [maxCounters]float64 // indexed like counters
}

// maxCounters bounds the number of counters with rates in the vocabulary.
const maxCounters = 8

func init() {
	if len(counters) > maxCounters {
		panic("pipeline: raise maxCounters")
	}
}

// Rater computes per-second rates from the cumulative counters of
// consecutive observations of the same objects. It is not safe for
// concurrent use; keep one per node.
type Rater struct {
	prev map[model.Object]prevSample
}

// NewRater returns an empty Rater.
func NewRater() *Rater { return &Rater{prev: map[model.Object]prevSample{}} }

// Rates sets the rate metrics of each entry from the change of its counters
// since the previous call, and forgets objects that are no longer seen.
//
// A counter that went down, or an object whose start time changed, was
// reset (a container restart): its rate is then its value over the time
// since the new start when that start lies after the previous observation,
// and absent otherwise, so a restart never gives a negative or spiked rate.
// An observation no newer than the previous one gives no rates.
func (r *Rater) Rates(entries []model.Entry) {
	next := make(map[model.Object]prevSample, len(r.prev))
	for i := range entries {
		e := &entries[i]
		cur := prevSample{time: e.Time, start: e.Start}
		seen := false
		for j, c := range counters {
			cur.values[j] = e.Values[c.counter]
			seen = seen || !math.IsNaN(cur.values[j])
		}
		if !seen {
			continue
		}
		p, ok := r.prev[e.Object]
		if ok && e.Time <= p.time {
			next[e.Object] = p // stale repeat: keep the older baseline
			continue
		}
		next[e.Object] = cur
		if !ok {
			continue
		}
		dt := float64(e.Time-p.time) / 1000
		restarted := e.Start != 0 && p.start != 0 && e.Start != p.start
		for j, c := range counters {
			now, before := cur.values[j], p.values[j]
			if math.IsNaN(now) || math.IsNaN(before) {
				continue
			}
			if !restarted && now >= before {
				e.Values[c.rate] = (now - before) / dt
				continue
			}
			// Reset: only the time since the new start is known to hold all of now.
			if e.Start > p.time && e.Time > e.Start {
				e.Values[c.rate] = now / (float64(e.Time-e.Start) / 1000)
			}
		}
	}
	r.prev = next
}
