package scrape

import (
	"context"
	"hash/fnv"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubemon/kubemon/internal/model"
)

// Scraper scrapes one node. *Client is one.
type Scraper interface {
	Scrape(ctx context.Context, t model.Target) (*model.NodeStats, error)
}

// Forgetter is a Scraper that keeps per-node state; the Manager tells it
// when a node is no longer scraped.
type Forgetter interface {
	Forget(node string)
}

// Handler receives each scrape's result: stats, or the error that stopped it
// (stats then holds only the node's name and the scrape's start time). It
// is called from the node's own loop, so calls for different nodes run
// concurrently.
type Handler func(ctx context.Context, t model.Target, stats *model.NodeStats, err error)

// ManagerOptions configure a Manager.
type ManagerOptions struct {
	// Interval between two scrapes of a node; default 15 s.
	Interval time.Duration
	Scraper  Scraper
	// Targets returns the current nodes; it is called once per interval, so
	// nodes that come and go are followed.
	Targets    func() []model.Target
	Handle     Handler
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the clock; default time.Now. A scrape's receive time, against
	// which the kubelet's clock is checked, is read from it.
	Now func() time.Time
	// ClockSkewTolerance is how far a node's newest sample time may be from
	// the time kubemon received it before the node's batch is shifted to
	// the receive time; default DefaultClockSkewTolerance(Interval).
	ClockSkewTolerance time.Duration
}

// Manager runs one scrape loop per node, each started at a hash-derived
// offset inside the interval so the load spreads evenly.
type Manager struct {
	o     ManagerOptions
	mu    sync.Mutex
	loops map[string]*loop

	duration prometheus.Histogram
	failures *prometheus.CounterVec
	scrapes  prometheus.Counter
	targets  prometheus.Gauge
	skew     *prometheus.GaugeVec
}

type loop struct {
	target model.Target
	cancel context.CancelFunc
	done   chan struct{}
	clock  clockState // only the loop's goroutine touches it

	mu   sync.Mutex // guards last
	last TargetStatus
}

// TargetStatus is a node's scrape state, as Prometheus's /api/v1/targets
// shows a target's.
type TargetStatus struct {
	Target model.Target
	// Health is "up" when the last scrape succeeded, "down" when it
	// failed, "unknown" before the first.
	Health string
	// LastError is the last scrape's error; empty when it succeeded.
	LastError string
	// LastScrape is when the last scrape began; zero before the first.
	LastScrape time.Time
	// LastDuration is how long the last scrape took.
	LastDuration time.Duration
}

// Health values of TargetStatus.
const (
	HealthUp      = "up"
	HealthDown    = "down"
	HealthUnknown = "unknown"
)

// Targets returns the scrape state of every node scraped, sorted by node.
func (m *Manager) Targets() []TargetStatus {
	m.mu.Lock()
	out := make([]TargetStatus, 0, len(m.loops))
	for _, l := range m.loops {
		l.mu.Lock()
		st := l.last
		l.mu.Unlock()
		st.Target = l.target
		if st.Health == "" {
			st.Health = HealthUnknown
		}
		out = append(out, st)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b TargetStatus) int { return strings.Compare(a.Target.Node, b.Target.Node) })
	return out
}

// NewManager returns a Manager; Run starts it.
func NewManager(o ManagerOptions) *Manager {
	if o.Interval <= 0 {
		o.Interval = 15 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ClockSkewTolerance <= 0 {
		o.ClockSkewTolerance = DefaultClockSkewTolerance(o.Interval)
	}
	m := &Manager{
		o:     o,
		loops: map[string]*loop{},
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "kubemon", Subsystem: "scrape", Name: "duration_seconds",
			Help:    "Duration of one node's scrape (fetch and decode), in seconds.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kubemon", Subsystem: "scrape", Name: "failures_total",
			Help: "Failed scrapes, by node.",
		}, []string{"node"}),
		scrapes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "kubemon", Subsystem: "scrape", Name: "scrapes_total",
			Help: "Scrapes attempted.",
		}),
		targets: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "kubemon", Subsystem: "scrape", Name: "targets",
			Help: "Nodes being scraped.",
		}),
		skew: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "kubemon", Subsystem: "scrape", Name: "clock_skew_seconds",
			Help: "Newest sample time of the node's last scrape minus the time kubemon received it, in seconds " +
				"(the kubelet's clock offset, less the age of its stats). Beyond the tolerance the node's times are shifted by it.",
		}, []string{"node"}),
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(m.duration, m.failures, m.scrapes, m.targets, m.skew)
	}
	return m
}

// Run reconciles the loops with Targets every interval until ctx ends, then
// stops every loop and returns.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(m.o.Interval)
	defer t.Stop()
	for {
		m.Reconcile(ctx)
		select {
		case <-ctx.Done():
			m.stopAll()
			return nil
		case <-t.C:
		}
	}
}

// Reconcile starts loops for new targets and stops those of removed ones.
func (m *Manager) Reconcile(ctx context.Context) {
	want := map[string]model.Target{}
	for _, t := range m.o.Targets() {
		want[t.Node] = t
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, l := range m.loops {
		if t, ok := want[name]; !ok || t.URL != l.target.URL {
			l.cancel()
			<-l.done
			delete(m.loops, name)
			m.failures.DeleteLabelValues(name)
			m.skew.DeleteLabelValues(name)
			if f, ok := m.o.Scraper.(Forgetter); ok {
				f.Forget(name)
			}
			m.o.Logger.Info("stopped scraping node", "node", name)
		}
	}
	for name, t := range want {
		if _, ok := m.loops[name]; ok {
			continue
		}
		lctx, cancel := context.WithCancel(ctx)
		l := &loop{target: t, cancel: cancel, done: make(chan struct{})}
		m.loops[name] = l
		go m.run(lctx, l)
	}
	m.targets.Set(float64(len(m.loops)))
}

func (m *Manager) stopAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, l := range m.loops {
		l.cancel()
		<-l.done
		delete(m.loops, name)
	}
}

// Offset is the node's start offset inside the interval: a hash of its name.
func Offset(node string, interval time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(node))
	return time.Duration(h.Sum64() % uint64(interval))
}

// nextSlot is the first time after now that is offset past a multiple of interval.
func nextSlot(now time.Time, interval, offset time.Duration) time.Time {
	slot := now.Truncate(interval).Add(offset)
	if !slot.After(now) {
		slot = slot.Add(interval)
	}
	return slot
}

// run scrapes l's node at its slot in every interval. A slot less than
// half an interval after the previous scrape began is skipped: when a timer
// fires late (a loaded machine) the next slot would otherwise follow within
// milliseconds and read the same kubelet stats again.
func (m *Manager) run(ctx context.Context, l *loop) {
	defer close(l.done)
	off := Offset(l.target.Node, m.o.Interval)
	var last time.Time
	for {
		now := m.o.Now()
		slot := nextSlot(now, m.o.Interval, off)
		if !last.IsZero() && slot.Sub(last) < m.o.Interval/2 {
			slot = slot.Add(m.o.Interval)
		}
		timer := time.NewTimer(slot.Sub(now))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		last = m.o.Now()
		m.scrapeOnce(ctx, l, slot)
	}
}

// scrapeOnce scrapes l's node for the given slot. The node's kubelet_up is
// stamped with the slot (when the scrape began within half an interval of
// it) rather than the moment the request left: replicas that scrape the
// same node at the same slot then store the same sample.
func (m *Manager) scrapeOnce(ctx context.Context, l *loop, slot time.Time) {
	t := l.target
	start := time.Now()
	m.scrapes.Inc()
	stats, err := m.o.Scraper.Scrape(ctx, t)
	received := m.o.Now()
	took := time.Since(start)
	m.duration.Observe(took.Seconds())
	if ctx.Err() != nil {
		return // the loop was stopped; the result belongs to nobody
	}
	st := TargetStatus{Health: HealthUp, LastScrape: start, LastDuration: took}
	if err != nil {
		m.failures.WithLabelValues(t.Node).Inc()
		m.o.Logger.Warn("scrape failed", "node", t.Node, "err", err)
		st.Health, st.LastError = HealthDown, err.Error()
		stats = &model.NodeStats{Node: t.Node, ScrapeTime: start}
	}
	if stats != nil && !slot.IsZero() && !start.Before(slot) && start.Sub(slot) < m.o.Interval/2 {
		stats.ScrapeTime = slot
	}
	l.mu.Lock()
	l.last = st
	l.mu.Unlock()
	if err == nil && stats != nil {
		m.checkClock(l, stats, received)
	}
	m.o.Handle(ctx, t, stats, err)
}

// checkClock measures the node's clock against the receive time, shifts
// the batch when the clock is off by more than the tolerance, sets the
// skew gauge and logs when a skew starts, changes or ends (not at every
// scrape).
func (m *Manager) checkClock(l *loop, stats *model.NodeStats, received time.Time) {
	prev := l.clock.offset
	measured, ev, ok := l.clock.observe(stats, received, m.o.ClockSkewTolerance)
	if !ok {
		return
	}
	m.skew.WithLabelValues(l.target.Node).Set(float64(measured) / 1000)
	skew := (time.Duration(measured) * time.Millisecond).Round(10 * time.Millisecond)
	switch ev {
	case clockSkewed:
		m.o.Logger.Warn("kubelet clock skew: the node's times are shifted to kubemon's receive time",
			"node", l.target.Node, "skew", skew, "tolerance", m.o.ClockSkewTolerance)
	case clockChanged:
		m.o.Logger.Warn("kubelet clock skew changed: the node's times are shifted by the new offset",
			"node", l.target.Node, "skew", skew, "previous", time.Duration(prev)*time.Millisecond, "tolerance", m.o.ClockSkewTolerance)
	case clockInStep:
		m.o.Logger.Info("kubelet clock skew ended: the node's times are stored as reported",
			"node", l.target.Node, "skew", skew, "tolerance", m.o.ClockSkewTolerance)
	}
}
