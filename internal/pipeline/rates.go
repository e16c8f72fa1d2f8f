// Package pipeline turns scraped node stats into batches for the store.
// Each node's scrape is processed as it arrives and emitted at once (Node:
// enrich containers and pods from the pods' metadata, compute rates from
// counters, roll containers up into pods and pods into the node); at the end
// of every cycle the pods and nodes that arrived during it are aggregated
// into the namespace, workload and cluster roll-ups, which are emitted as a
// second, cycle-wide batch (Collector). Objects that vanish get Gone entries
// so their series end. Every function is pure except Rater, which remembers
// each object's previous counters, and Collector, which holds the cycle.
package pipeline

import (
	"math"

	"github.com/kubemon/kubemon/internal/model"
)

// counter is a metric that has a derived rate, with that rate.
type counter struct{ counter, rate model.MetricID }

// counters lists, per level, the counters the level carries that have a
// derived rate (9 at most, of the vocabulary's 13): a baseline holds a
// slot for each of its own level's only.
var counters = func() (c [model.NumLevels][]counter) {
	for l := range model.NumLevels {
		for _, m := range model.Metrics {
			if m.RateOf != nil && model.Metrics[*m.RateOf].Levels.Has(l) {
				c[l] = append(c[l], counter{*m.RateOf, m.ID})
			}
		}
	}
	return c
}()

// prevSample is an object's last observation of each counter of its level.
type prevSample struct {
	gen    uint64 // the Rater's gen when last observed
	start  int64
	times  [maxCounters]int64   // Unix ms, per counter (counters can come from different endpoints)
	values [maxCounters]float64 // indexed like counters[level]; NaN when not observed
	rates  [maxCounters]float64 // the rate computed at times; NaN when none
}

// maxCounters bounds the number of counters with rates at one level.
const maxCounters = 9

// noRates is prevSample.rates before any rate: all NaN.
var noRates = func() (r [maxCounters]float64) {
	for i := range r {
		r[i] = math.NaN()
	}
	return r
}()

func init() {
	for _, c := range counters {
		if len(c) > maxCounters {
			panic("pipeline: raise maxCounters")
		}
	}
}

// Rater computes per-second rates from the cumulative counters of
// consecutive observations of the same objects. It is not safe for
// concurrent use; keep one per node.
type Rater struct {
	prev map[model.Object]prevSample
	gen  uint64                     // counts calls of Rates
	oom  map[model.Object]*oomState // containers' OOM kills (CountOOMKills)
	// oomGen counts calls of CountOOMKills.
	oomGen uint64
}

// NewRater returns an empty Rater.
func NewRater() *Rater {
	return &Rater{prev: map[model.Object]prevSample{}, oom: map[model.Object]*oomState{}}
}

// Rates sets the rate metrics of each entry from the change of its counters
// since the previous call, and forgets objects that are no longer seen.
// Each counter's rate uses the times at which that counter was observed
// (Entry.TimeOf).
//
// A counter that went down, or an object whose start time changed, was
// reset (a container restart): its rate is then its value over the time
// since the new start when that start lies after the previous observation,
// and absent otherwise, so a restart never gives a negative or spiked rate.
// A counter kubemon keeps across restarts (Metric.SpansRestarts) is reset
// only when it goes down.
// An observation at the same time as the previous one (the kubelet's stats
// not yet renewed) gives the previous rate again, and keeps the baseline;
// one older than the previous gives no rate.
func (r *Rater) Rates(entries []model.Entry) {
	// Baselines are replaced in place, and those not observed this time
	// removed after: no map rebuilt every scrape.
	r.gen++
	for i := range entries {
		e := &entries[i]
		p, hadPrev := r.prev[e.Object]
		cur := prevSample{gen: r.gen, start: e.Start, rates: noRates}
		seen := false
		restarted := hadPrev && e.Start != 0 && p.start != 0 && e.Start != p.start
		for j, c := range counters[e.Object.Level] {
			now, t := e.Values[c.counter], e.TimeOf(c.counter)
			cur.values[j], cur.times[j] = now, t
			if math.IsNaN(now) {
				continue
			}
			seen = true
			if !hadPrev || math.IsNaN(p.values[j]) {
				continue
			}
			before, pt := p.values[j], p.times[j]
			if t <= pt {
				// A stale repeat (the kubelet renews stats every 10-15 s):
				// the same observation, so the same rate, at its time.
				cur.values[j], cur.times[j], cur.rates[j] = before, pt, p.rates[j]
				if t == pt {
					e.Values[c.rate] = p.rates[j]
				}
				continue
			}
			if (!restarted || model.Metrics[c.counter].SpansRestarts) && now >= before {
				e.Values[c.rate] = (now - before) / (float64(t-pt) / 1000)
				cur.rates[j] = e.Values[c.rate]
				continue
			}
			// Reset: only the time since the new start is known to hold all of now.
			if e.Start > pt && t > e.Start {
				e.Values[c.rate] = now / (float64(t-e.Start) / 1000)
				cur.rates[j] = e.Values[c.rate]
			}
		}
		if seen {
			r.prev[e.Object] = cur
		}
	}
	for o, p := range r.prev {
		if p.gen != r.gen {
			delete(r.prev, o)
		}
	}
}
