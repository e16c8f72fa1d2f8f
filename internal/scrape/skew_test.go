package scrape

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/sim"
)

// skewSummary is a Summary payload of node n: the node, one pod and its
// containers, all observed at at (container b 5 s earlier) and started at
// started; container "idle" reports no usage (its time is the scrape's,
// kubemon's own).
func skewSummary(at, started time.Time) []byte {
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	T, S, E := ts(at), ts(started), ts(at.Add(-5*time.Second))
	return fmt.Appendf(nil, `{"node":{"nodeName":"n","startTime":%[2]q,"cpu":{"time":%[1]q,"usageCoreNanoSeconds":9000000000},"memory":{"time":%[1]q,"workingSetBytes":1000}},
"pods":[{"podRef":{"name":"p","namespace":"ns"},"startTime":%[2]q,"cpu":{"time":%[1]q,"usageCoreNanoSeconds":3000000000},"memory":{"time":%[1]q,"workingSetBytes":300},
"containers":[{"name":"a","startTime":%[2]q,"cpu":{"time":%[1]q,"usageCoreNanoSeconds":2000000000},"memory":{"time":%[1]q,"workingSetBytes":200}},
{"name":"b","startTime":%[2]q,"cpu":{"time":%[3]q,"usageCoreNanoSeconds":1000000000},"memory":{"time":%[3]q,"workingSetBytes":100}},
{"name":"idle","startTime":%[2]q}]}]}`, T, S, E)
}

// payloadScraper returns the next payload's decoded entries at each scrape.
type payloadScraper struct {
	next       func() []byte
	scrapeTime time.Time
}

func (p *payloadScraper) Scrape(_ context.Context, t model.Target) (*model.NodeStats, error) {
	entries, err := DecodeSummary(p.next(), t.Node, p.scrapeTime)
	if err != nil {
		return nil, err
	}
	return &model.NodeStats{Node: t.Node, ScrapeTime: p.scrapeTime, Entries: entries}, nil
}

// skewHarness is a Manager with a settable clock, a registry, a captured
// log and the last batch handed on.
type skewHarness struct {
	m     *Manager
	l     *loop
	reg   *prometheus.Registry
	log   bytes.Buffer
	clock time.Time
	got   *model.NodeStats
}

func newSkewHarness(t *testing.T, s Scraper) *skewHarness {
	h := &skewHarness{reg: prometheus.NewRegistry(), clock: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	h.m = NewManager(ManagerOptions{
		Interval: 10 * time.Second, Scraper: s, Registerer: h.reg,
		Targets: func() []model.Target { return nil },
		Handle: func(_ context.Context, _ model.Target, stats *model.NodeStats, err error) {
			if err != nil {
				t.Fatal(err)
			}
			h.got = stats
		},
		Logger: slog.New(slog.NewTextHandler(&h.log, nil)),
		Now:    func() time.Time { return h.clock },
	})
	h.l = &loop{target: model.Target{Node: "n"}}
	return h
}

func (h *skewHarness) scrape() *model.NodeStats {
	h.got = nil
	h.m.scrapeOnce(context.Background(), h.l, time.Time{})
	return h.got
}

func (h *skewHarness) gauge() float64 {
	return testutil.ToFloat64(h.m.skew.WithLabelValues("n"))
}

// logLines returns the logged lines that contain every one of words.
func (h *skewHarness) logLines(words ...string) []string {
	var out []string
	for _, line := range strings.Split(h.log.String(), "\n") {
		ok := line != ""
		for _, w := range words {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// TestClockSkewShift: a payload whose newest time is beyond the tolerance
// from the receive time is shifted (every time of the node's batch, by one
// offset) so that its newest sample lands at the receive time; one within
// the tolerance (stats a few intervals old, a clock a little ahead) is
// handed on untouched. The gauge always shows the measured offset; a shift
// is logged with the node and the skew.
func TestClockSkewShift(t *testing.T) {
	received := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		kubelet time.Time // when the payload says its stats were taken
		shifted bool
	}{
		{"2h ahead", received.Add(2 * time.Hour), true},
		{"2h behind", received.Add(-2 * time.Hour), true},
		{"61s ahead", received.Add(61 * time.Second), true},
		{"30s old", received.Add(-30 * time.Second), false},
		{"60s old", received.Add(-60 * time.Second), false},
		{"20s ahead", received.Add(20 * time.Second), false},
		{"in step", received, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scrapeTime := received.Add(-300 * time.Millisecond)
			payload := skewSummary(tt.kubelet, tt.kubelet.Add(-time.Hour))
			s := &payloadScraper{next: func() []byte { return payload }, scrapeTime: scrapeTime}
			h := newSkewHarness(t, s)
			h.clock = received
			want, err := DecodeSummary(payload, "n", scrapeTime)
			if err != nil {
				t.Fatal(err)
			}
			got := h.scrape()
			if got == nil {
				t.Fatal("nothing handed on")
			}
			skew := tt.kubelet.Sub(received)
			if g := h.gauge(); g != skew.Seconds() {
				t.Errorf("kubemon_scrape_clock_skew_seconds = %v, want %v", g, skew.Seconds())
			}
			if !tt.shifted {
				if d := entriesDiff(got.Entries, want); d != "" {
					t.Errorf("entries within tolerance changed: %s", d)
				}
				if l := h.logLines("skew"); len(l) != 0 {
					t.Errorf("logged %q", l)
				}
				return
			}
			d := -skew.Milliseconds()
			for i, e := range got.Entries {
				w := want[i]
				wantTime := w.Time + d
				if e.Object.Container == "idle" {
					wantTime = ms(scrapeTime) // kubemon's own stamp stays
				}
				if e.Time != wantTime || e.Start != w.Start+d {
					t.Errorf("%v: time %d start %d, want %d and %d", e.Object, e.Time, e.Start, wantTime, w.Start+d)
				}
				for m := range e.Values {
					if a, b := e.Values[m], w.Values[m]; a != b && !(math.IsNaN(a) && math.IsNaN(b)) {
						t.Errorf("%v: %s = %v, want %v (values are not touched)", e.Object, model.Metrics[m].Name, a, b)
					}
				}
			}
			// The newest sample is at the receive time, the others keep their distance.
			if n := got.Entries[0]; n.Time != ms(received) {
				t.Errorf("node sample at %v, want the receive time %v", time.UnixMilli(n.Time).UTC(), received)
			}
			if b := got.Entries[3]; b.Object.Container != "b" || b.Time != ms(received)-5000 {
				t.Errorf("container b (5 s older) at %v, want %v", time.UnixMilli(b.Time).UTC(), received.Add(-5*time.Second))
			}
			lines := h.logLines("level=WARN", "node=n", "skew="+skew.String())
			if len(lines) != 1 {
				t.Errorf("want one warning naming the node and skew=%s, log:\n%s", skew, h.log.String())
			}
		})
	}
}

// TestClockSkewEpisode: over a run of scrapes the offset is measured once
// (the node's times keep their exact spacing and its start times do not
// move, which would read as restarts), refined only when stats fresher
// than the first measurement would land after their receive time, measured
// again when the clock jumps, and the log has one line when the skew
// starts, one when it changes and one when it ends — not one per scrape.
func TestClockSkewEpisode(t *testing.T) {
	var kubelet, started time.Time // the payload's times, on the kubelet's clock
	h := newSkewHarness(t, &payloadScraper{next: func() []byte { return skewSummary(kubelet, started) }})
	start0 := h.clock.Add(-time.Hour) // when the node started, on kubemon's clock
	step := func(skew, age time.Duration) *model.NodeStats {
		h.clock = h.clock.Add(10 * time.Second)
		kubelet, started = h.clock.Add(skew-age), start0.Add(skew)
		return h.scrape()
	}

	// In step: nothing logged, nothing moved.
	if ns := step(0, 0); ns.Entries[0].Time != ms(h.clock) || ns.Entries[0].Start != ms(start0) {
		t.Fatalf("in step: %+v", ns.Entries[0])
	}
	// 2 h ahead, first seen with stats 4 s old: shifted to the receive time.
	ns := step(2*time.Hour, 4*time.Second)
	if got := ns.Entries[0].Time; got != ms(h.clock) {
		t.Fatalf("first skewed scrape at %d, want %d", got, ms(h.clock))
	}
	offset := h.l.clock.offset
	prevTime, prevStart, prevKubelet := ns.Entries[0].Time, ns.Entries[0].Start, kubelet
	// Staleness varying by up to a second: the same offset, so the spacing
	// is the kubelet's and the start time stays put.
	for _, age := range []time.Duration{4 * time.Second, 3 * time.Second, 4 * time.Second} {
		ns := step(2*time.Hour, age)
		e := ns.Entries[0]
		if h.l.clock.offset != offset || e.Start != prevStart || e.Time-prevTime != kubelet.Sub(prevKubelet).Milliseconds() {
			t.Errorf("age %v: offset %d (was %d), start %d (was %d), spacing %d ms, kubelet's %v",
				age, h.l.clock.offset, offset, e.Start, prevStart, e.Time-prevTime, kubelet.Sub(prevKubelet))
		}
		prevTime, prevKubelet = e.Time, kubelet
	}
	// Fresh stats (age 0) would land 4 s after their receive time: the
	// offset is refined, silently, and they land at it.
	ns = step(2*time.Hour, 0)
	if e := ns.Entries[0]; e.Time != ms(h.clock) || h.l.clock.offset == offset {
		t.Errorf("fresh stats at %d, want the receive time %d (offset %d)", e.Time, ms(h.clock), h.l.clock.offset)
	}
	if n := len(h.logLines("skew=")); n != 1 {
		t.Errorf("%d log lines about the skew, want 1:\n%s", n, h.log.String())
	}
	if g := h.gauge(); g != 7200 {
		t.Errorf("gauge %v, want 7200", g)
	}
	// The clock jumps to 3 h ahead: measured again, logged once.
	for range 3 {
		if ns := step(3*time.Hour, 0); ns.Entries[0].Time != ms(h.clock) {
			t.Errorf("after the jump at %d, want %d", ns.Entries[0].Time, ms(h.clock))
		}
	}
	if l := h.logLines("level=WARN", "changed", "node=n", "skew=3h0m0s"); len(l) != 1 {
		t.Errorf("want one warning that the skew changed, log:\n%s", h.log.String())
	}
	// The clock is fixed: times as reported again, the end logged once.
	for range 3 {
		if ns := step(0, 2*time.Second); ns.Entries[0].Time != ms(h.clock)-2000 {
			t.Errorf("in step again: node at %d, want %d", ns.Entries[0].Time, ms(h.clock)-2000)
		}
	}
	if l := h.logLines("level=INFO", "ended", "node=n"); len(l) != 1 {
		t.Errorf("want one line that the skew ended, log:\n%s", h.log.String())
	}
	if g := h.gauge(); g != -2 {
		t.Errorf("gauge %v, want -2", g)
	}
	if n := len(h.logLines("skew=")); n != 3 {
		t.Errorf("%d log lines about the skew over %d scrapes, want 3 (start, change, end):\n%s", n, 12, h.log.String())
	}
	// A node no longer scraped loses its gauge.
	h.m.loops["n"] = &loop{target: model.Target{Node: "n"}, cancel: func() {}, done: closed()}
	h.m.Reconcile(context.Background())
	if n := testutil.CollectAndCount(h.m.skew); n != 0 {
		t.Errorf("%d skew series after the node left", n)
	}
}

// entriesDiff describes the first difference between two batches' entries
// (NaN equals NaN); "" when they are the same.
func entriesDiff(got, want []model.Entry) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d entries, want %d", len(got), len(want))
	}
	for i := range want {
		a, b := &got[i], &want[i]
		if a.Object != b.Object || a.Time != b.Time || a.Start != b.Start || a.CadvisorTime != b.CadvisorTime || a.Gone != b.Gone {
			return fmt.Sprintf("%v: time %d start %d cadvisor %d, want %v: %d %d %d", a.Object, a.Time, a.Start, a.CadvisorTime, b.Object, b.Time, b.Start, b.CadvisorTime)
		}
		for m := range a.Values {
			if x, y := a.Values[m], b.Values[m]; x != y && !(math.IsNaN(x) && math.IsNaN(y)) {
				return fmt.Sprintf("%v: %s = %v, want %v", a.Object, model.Metrics[m].Name, x, y)
			}
		}
	}
	return ""
}

func closed() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// TestClockSkewSources: a simulated kubelet 2 h ahead (sim's clock-ahead
// fault), read through each source (and the Summary with cAdvisor's disk
// IO), is handed on exactly as the same kubelet with a good clock: same
// times, start times, uptimes and values.
func TestClockSkewSources(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	cl, err := sim.New(sim.Options{Nodes: 2, PodsPerNode: 3, Mode: sim.ModeRealistic, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	n := cl.Nodes()[0]
	target := model.Target{Node: n.Name, URL: fmt.Sprintf("http://%s:%d", n.Address, n.Port)}
	for _, o := range []ClientOptions{{Endpoint: EndpointSummary}, {Endpoint: EndpointSummary, Cadvisor: true}, {Endpoint: EndpointResource}, {Endpoint: EndpointCadvisor}} {
		t.Run(fmt.Sprintf("%s,cadvisor=%v", o.Endpoint, o.Cadvisor), func(t *testing.T) {
			var got *model.NodeStats
			var log bytes.Buffer
			m := NewManager(ManagerOptions{
				Interval: 10 * time.Second, Scraper: NewClient(o), Now: now,
				Targets: func() []model.Target { return nil }, Registerer: prometheus.NewRegistry(),
				Logger: slog.New(slog.NewTextHandler(&log, nil)),
				Handle: func(_ context.Context, _ model.Target, s *model.NodeStats, err error) {
					if err != nil {
						t.Fatal(err)
					}
					got = s
				},
			})
			l := &loop{target: target}
			m.scrapeOnce(context.Background(), l, time.Time{})
			want := got.Entries
			cl.SetFault(n.Name, sim.FaultClockAhead)
			defer cl.SetFault(n.Name, sim.FaultNone)
			m.scrapeOnce(context.Background(), l, time.Time{})
			if g := testutil.ToFloat64(m.skew.WithLabelValues(n.Name)); g != 7200 {
				t.Errorf("skew gauge %v, want 7200", g)
			}
			if d := entriesDiff(got.Entries, want); d != "" {
				t.Errorf("2 h ahead, shifted, differs from in step: %s", d)
			}
			if !strings.Contains(log.String(), "node="+n.Name) || !strings.Contains(log.String(), "skew=2h0m0s") {
				t.Errorf("log: %s", log.String())
			}
		})
	}
}
