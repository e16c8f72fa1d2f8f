package pipeline

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubemon/kubemon/internal/model"
)

// Emitter receives each cycle's batch: the store, the sinks.
type Emitter func(ctx context.Context, b *model.Batch)

// CollectorOptions configure a Collector.
type CollectorOptions struct {
	// Interval is the cycle length; default 15 s. Cycles end on multiples of it.
	Interval time.Duration
	// Grace is how long after a cycle's end Run waits before rolling the
	// cycle up, for the scrapes of its last slots to arrive: a scrape
	// counts in the cycle its slot (NodeStats.ScrapeTime) lies in, not the
	// one it ends in. Default a tenth of Interval; negative: no wait.
	Grace time.Duration
	// Targets lists the nodes expected; the collector is ready while most
	// of them (see Ready) have delivered data recently.
	Targets func() []model.Target
	// Namespaces, when set, gives every namespace's labels: each gets a
	// namespace_info series, pods or not.
	Namespaces func() map[string]map[string]string
	// Pods, when set, gives the pods bound to a node as discovery knows
	// them (requests, limits, restarts, labels, and owners resolved
	// through the owners' own objects). When nil, the pods the scrape read
	// from the kubelet's /pods (NodeStats.Pods) are used.
	Pods func(node string) []model.PodMeta
	// Partial says this collector sees part of the cluster (a shard
	// member): it makes no namespace, workload or cluster roll-ups, which
	// would be sums over its part only; they are left to where all the
	// data meets.
	Partial    bool
	Emit       Emitter
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// Collector takes the per-node results of the scrape loops. It processes
// each as it arrives, on the node's own goroutine, and emits the node's
// batch (its containers, pods, system containers and the node) at once, so
// data is fresh as soon as it is scraped. At the end of every cycle it
// aggregates the pods and nodes that arrived during the cycle into the
// namespace, workload and cluster roll-ups and emits those. A node that
// failed or is late is missing from that cycle's roll-ups; it never stalls
// them.
type Collector struct {
	o  CollectorOptions
	mu sync.Mutex
	// sums holds the roll-ups of the pods and nodes of the nodes that
	// reported for the open cycle, summed as they arrive (so a cycle
	// keeps no pod's entry), and summed the names of those nodes: a
	// node's first scrape in a cycle counts, a second one (a scrape that
	// came after its own cycle's grace, and one on time) does not.
	sums   rollupSums
	summed map[string]bool
	// open is the end of the open cycle, zero until Run or Cycle set it;
	// next and nextSummed hold, during its grace, the scrapes whose slots
	// lie past it (they belong to the cycle after).
	open       time.Time
	next       rollupSums
	nextSummed map[string]bool
	raters     map[string]*nodeRater
	rollups    Seen // the last cycle's roll-ups, to see which vanish; used by Cycle only
	ready      atomic.Bool

	cycleDur prometheus.Histogram
	lag      prometheus.Gauge
	entries  prometheus.Gauge
	nodesOK  prometheus.Gauge
	// freshNodes counts the expected nodes with data in the ready window.
	freshNodes prometheus.Gauge
}

type nodeRater struct {
	mu       sync.Mutex
	r        *Rater
	lastSeen time.Time
	seen     Seen // the objects of the last scrape, to see which vanish
}

// NewCollector returns a Collector; Run drives its cycles.
func NewCollector(o CollectorOptions) *Collector {
	if o.Interval <= 0 {
		o.Interval = 15 * time.Second
	}
	if o.Grace == 0 {
		o.Grace = o.Interval / 10
	}
	o.Grace = max(o.Grace, 0)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Collector{
		o:          o,
		summed:     map[string]bool{},
		nextSummed: map[string]bool{},
		raters:     map[string]*nodeRater{},
		cycleDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "kubemon", Subsystem: "pipeline", Name: "cycle_duration_seconds",
			Help:    "Time to aggregate and emit one cycle's roll-ups, in seconds.",
			Buckets: prometheus.ExponentialBuckets(0.001, 3, 10),
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "kubemon", Subsystem: "pipeline", Name: "cycle_lag_seconds",
			Help: "How long after its cycle's end the last cycle's roll-ups were emitted (the grace for its last scrapes included), in seconds.",
		}),
		entries: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "kubemon", Subsystem: "pipeline", Name: "rollup_entries",
			Help: "Roll-up entries (namespaces, workloads, cluster) in the last cycle.",
		}),
		nodesOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "kubemon", Subsystem: "pipeline", Name: "cycle_nodes",
			Help: "Nodes whose data went into the last cycle's roll-ups.",
		}),
		freshNodes: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "kubemon", Subsystem: "pipeline", Name: "fresh_nodes",
			Help: "Expected nodes that delivered data within the readiness window (ReadyWindow intervals) at the last cycle's end.",
		}),
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(c.cycleDur, c.lag, c.entries, c.nodesOK, c.freshNodes)
	}
	return c
}

// Handle takes one node's scrape result. Its signature matches
// scrape.Handler. Calls for one node must not overlap. Each result, failed
// or not, also gives the node's KubeletUp at the scrape's start time (now
// when a failed one has none). Handle keeps no entry of stats, nor the
// slice, once it returns: the caller may reuse them (scrape.ReleaseEntries).
func (c *Collector) Handle(ctx context.Context, t model.Target, stats *model.NodeStats, err error) {
	if err != nil {
		at := c.o.Now()
		if stats != nil && !stats.ScrapeTime.IsZero() {
			at = stats.ScrapeTime
		}
		if c.o.Emit != nil {
			c.o.Emit(ctx, &model.Batch{Time: at, Entries: []model.Entry{kubeletUp(t.Node, at, 0)}})
		}
		return
	}
	if stats == nil {
		return
	}
	c.mu.Lock()
	nr := c.raters[t.Node]
	if nr == nil {
		nr = &nodeRater{r: NewRater()}
		c.raters[t.Node] = nr
	}
	c.mu.Unlock()

	pods := stats.Pods
	if c.o.Pods != nil {
		pods = c.o.Pods(t.Node)
	}
	nr.mu.Lock()
	entries := Node(nr.r, stats, pods, t.Meta)
	entries = append(entries, kubeletUp(t.Node, stats.ScrapeTime, 1))
	nr.lastSeen = c.o.Now()
	gone := nr.seen.Vanished(entries, stats.ScrapeTime.UnixMilli())
	nr.mu.Unlock()

	if c.o.Emit != nil {
		c.o.Emit(ctx, &model.Batch{Time: stats.ScrapeTime, Entries: append(entries, gone...)})
	}
	c.mu.Lock()
	sums, summed := &c.sums, c.summed
	if !c.open.IsZero() && !stats.ScrapeTime.Before(c.open) {
		sums, summed = &c.next, c.nextSummed // a slot of the next cycle, during this one's grace
	}
	if !summed[t.Node] {
		summed[t.Node] = true
		if !c.o.Partial {
			sums.add(entries[:len(entries)-1]) // not the KubeletUp entry
		}
	}
	c.mu.Unlock()
}

// Ready reports whether, at the end of the last cycle, more than half of
// the expected nodes had delivered data within the last ReadyWindow
// intervals (or no node was expected). It turns false again when scrapes
// keep failing: a kubemon whose data went stale is not ready.
func (c *Collector) Ready() bool { return c.ready.Load() }

// ReadyWindow is how many intervals a node's last data counts as recent
// for Ready.
const ReadyWindow = 3

// Run ends a cycle on every multiple of the interval until ctx ends,
// rolling it up Grace after its end.
func (c *Collector) Run(ctx context.Context) error {
	for {
		now := c.o.Now()
		end := now.Add(-c.o.Grace).Truncate(c.o.Interval).Add(c.o.Interval)
		c.openCycle(end)
		timer := time.NewTimer(end.Add(c.o.Grace).Sub(now))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
		c.Cycle(ctx, end)
	}
}

// openCycle makes the cycle ending at end the open one, unless a later one
// is open already: scrapes whose slots lie at or past it wait for the next
// cycle.
func (c *Collector) openCycle(end time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open.Before(end) { // the first cycle, or Run fell a cycle behind: the scrapes
		c.open = end // waiting in next (if any) count a cycle late
	}
}

// Cycle rolls up what arrived for the cycle ending at end (the scrapes
// since the last cycle whose slots lie before the open cycle's end) and
// emits it, stamped end. The next cycle opens, ending an interval later;
// the scrapes that came for it during the grace are its first.
func (c *Collector) Cycle(ctx context.Context, end time.Time) {
	start := time.Now()
	c.mu.Lock()
	sums, summed := c.sums, c.summed
	c.sums, c.summed = c.next, c.nextSummed
	c.next, c.nextSummed = rollupSums{}, make(map[string]bool, len(summed))
	c.open = end.Add(c.o.Interval)
	var targets map[string]bool
	expected, fresh := 0, 0
	if c.o.Targets != nil {
		ts := c.o.Targets()
		targets = make(map[string]bool, len(ts))
		for _, t := range ts {
			targets[t.Node] = true
		}
		expected = len(targets)
		for name := range targets {
			if nr := c.raters[name]; nr != nil && nr.mu.TryLock() {
				if c.o.Now().Sub(nr.lastSeen) <= ReadyWindow*c.o.Interval {
					fresh++
				}
				nr.mu.Unlock()
			} else if nr != nil {
				fresh++ // being handled right now: it is delivering
			}
		}
	}
	// A node that left discovery ends its series at once; one that stopped
	// reporting is forgotten (its counters) after ten intervals.
	var removed []model.Entry
	for name, nr := range c.raters {
		left := targets != nil && !targets[name]
		if (left || c.o.Now().Sub(nr.lastSeen) > 10*c.o.Interval) && nr.mu.TryLock() {
			if left {
				removed = append(removed, nr.seen.All(end.UnixMilli())...)
			}
			delete(c.raters, name)
			nr.mu.Unlock()
		}
	}
	c.mu.Unlock()

	var entries []model.Entry
	if !c.o.Partial {
		entries = sums.entries(end.UnixMilli())
	}
	if c.o.Namespaces != nil {
		entries = NamespaceInfo(entries, c.o.Namespaces(), end.UnixMilli())
	}
	gone := c.rollups.Vanished(entries, end.UnixMilli())
	entries = append(append(entries, gone...), removed...)
	b := &model.Batch{Time: end, Entries: entries}
	if c.o.Emit != nil {
		c.o.Emit(ctx, b)
	}
	c.cycleDur.Observe(time.Since(start).Seconds())
	c.lag.Set(c.o.Now().Sub(end).Seconds())
	c.entries.Set(float64(len(entries)))
	c.nodesOK.Set(float64(len(summed)))
	ready := 2*fresh > expected || expected == 0
	c.freshNodes.Set(float64(fresh))
	if was := c.ready.Swap(ready); was != ready {
		if ready {
			c.o.Logger.Info("ready: most nodes deliver data", "fresh", fresh, "expected", expected, "entries", len(entries))
		} else {
			c.o.Logger.Warn("not ready: most nodes delivered no data recently", "fresh", fresh, "expected", expected,
				"window", ReadyWindow*c.o.Interval)
		}
	}
}

// kubeletUp is a node's entry holding only its KubeletUp, up (1 or 0), at
// the scrape's start: a second entry of the node's object, whose other
// values carry the kubelet's stats time.
func kubeletUp(node string, at time.Time, up float64) model.Entry {
	e := model.Entry{Object: model.Object{Level: model.LevelNode, Node: node}, Time: at.UnixMilli(), Values: model.NewValues()}
	e.Values[model.KubeletUp] = up
	return e
}
