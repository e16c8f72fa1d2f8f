// Package store keeps kubemon's history in an embedded Prometheus TSDB (WAL,
// compaction, retention) in the data directory, and names each series
// Prometheus-style: "<level>_<metric>" with the level's labels.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/kubemon/kubemon/internal/model"
)

// Options configure the store. Zero values take the defaults noted.
type Options struct {
	// Dir is the data directory; required.
	Dir string
	// Retention is how long samples are kept; default 15 days.
	Retention time.Duration
	Logger    *slog.Logger
	// Registerer receives the TSDB's own metrics and the store's.
	Registerer prometheus.Registerer
}

// Store is the embedded time-series store.
type Store struct {
	db     *tsdb.DB
	logger *slog.Logger

	mu   sync.Mutex // serializes Append: it owns refs
	refs map[model.Object]*objectRefs
	// swept is when refs was last swept of series not appended to since.
	swept time.Time

	appended prometheus.Counter
	rejected *prometheus.CounterVec
	series   prometheus.Gauge
}

// objectRefs caches the head references of one object's series, by metric,
// and when the object was last appended to: one map lookup per object
// rather than one per sample.
type objectRefs struct {
	refs [model.NumMetrics]storage.SeriesRef
	seen int64 // Unix seconds
}

// refTTL is how long a series' reference is cached without appends.
const refTTL = 10 * time.Minute

// Open opens (or creates) the store in o.Dir, replaying its WAL.
func Open(o Options) (*Store, error) {
	if o.Dir == "" {
		return nil, errors.New("store: no data directory")
	}
	if o.Retention == 0 {
		o.Retention = 15 * 24 * time.Hour
	}
	if o.Retention < 0 {
		return nil, fmt.Errorf("store: negative retention %s", o.Retention)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	opts := tsdb.DefaultOptions()
	opts.RetentionDuration = o.Retention.Milliseconds()
	db, err := tsdb.Open(o.Dir, o.Logger.With("component", "tsdb"), o.Registerer, opts, nil)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", o.Dir, err)
	}
	s := &Store{
		db:     db,
		logger: o.Logger,
		refs:   map[model.Object]*objectRefs{},
		swept:  time.Now(),
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "kubemon", Subsystem: "store", Name: "samples_appended_total",
			Help: "Samples appended to the embedded store.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kubemon", Subsystem: "store", Name: "samples_rejected_total",
			Help: "Samples the store rejected, by reason.",
		}, []string{"reason"}),
		series: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "kubemon", Subsystem: "store", Name: "cached_objects",
			Help: "Objects whose series references the store keeps for fast appends.",
		}),
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(s.appended, s.rejected, s.series)
	}
	return s, nil
}

// Queryable is the store's read side, for PromQL and the APIs.
func (s *Store) Queryable() storage.Queryable { return s.db }

// DB is the underlying TSDB.
func (s *Store) DB() *tsdb.DB { return s.db }

// Close flushes and closes the store. Call it on shutdown; after a crash
// the WAL is replayed on the next Open.
func (s *Store) Close() error { return s.db.Close() }

// Append writes every present value of every entry in b. Samples the TSDB
// refuses (out of order, duplicate timestamp, too old) are counted and
// skipped; the rest are committed. It returns how many were appended.
func (s *Store) Append(ctx context.Context, b *model.Batch) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	app := s.db.Appender(ctx)
	n := 0
	var firstErr error
	for i := range b.Entries {
		e := &b.Entries[i]
		cached := s.refs[e.Object]
		if cached == nil {
			cached = &objectRefs{}
			s.refs[e.Object] = cached
		}
		cached.seen = now.Unix()
		for m := range model.NumMetrics {
			v := e.Values[m]
			if math.IsNaN(v) || !model.Metrics[m].Levels.Has(e.Object.Level) {
				continue
			}
			ref, err := appendOne(app, cached.refs[m], e.Object, m, e.TimeOf(m), v)
			if err != nil {
				if reason := rejectReason(err); reason != "" {
					s.rejected.WithLabelValues(reason).Inc()
					continue
				}
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			cached.refs[m] = ref
			n++
		}
	}
	if err := app.Commit(); err != nil {
		return 0, fmt.Errorf("store: commit: %w", err)
	}
	s.appended.Add(float64(n))
	if now.Sub(s.swept) > refTTL {
		s.sweepRefs(now)
	}
	s.series.Set(float64(len(s.refs)))
	if firstErr != nil {
		return n, fmt.Errorf("store: append: %w", firstErr)
	}
	return n, nil
}

// appendOne appends by the cached reference, and by labels when there is
// none or the head no longer knows it.
func appendOne(app storage.Appender, ref storage.SeriesRef, o model.Object, m model.MetricID, t int64, v float64) (storage.SeriesRef, error) {
	if ref != 0 {
		got, err := app.Append(ref, labels.EmptyLabels(), t, v)
		if !errors.Is(err, tsdb.ErrInvalidSample) {
			return got, err
		}
	}
	return app.Append(0, Labels(o, m), t, v)
}

// sweepRefs forgets the references of series not appended to for refTTL,
// so that the cache does not grow with pods that came and went.
func (s *Store) sweepRefs(now time.Time) {
	cut := now.Add(-refTTL).Unix()
	for o, r := range s.refs {
		if r.seen < cut {
			delete(s.refs, o)
		}
	}
	s.swept = now
}

func rejectReason(err error) string {
	switch {
	case errors.Is(err, storage.ErrOutOfOrderSample):
		return "out_of_order"
	case errors.Is(err, storage.ErrDuplicateSampleForTimestamp):
		return "duplicate"
	case errors.Is(err, storage.ErrOutOfBounds), errors.Is(err, storage.ErrTooOldSample):
		return "too_old"
	}
	return ""
}

// Labels returns the series labels of metric m for object o.
func Labels(o model.Object, m model.MetricID) labels.Labels {
	b := labels.NewScratchBuilder(6)
	b.Add(labels.MetricName, model.PromName(o.Level, m))
	add := func(k, v string) {
		if v != "" {
			b.Add(k, v)
		}
	}
	switch o.Level {
	case model.LevelContainer:
		add("namespace", o.Namespace)
		add("pod", o.Pod)
		add("container", o.Container)
		add("node", o.Node)
	case model.LevelPod:
		add("namespace", o.Namespace)
		add("pod", o.Pod)
		add("node", o.Node)
	case model.LevelNamespace:
		add("namespace", o.Namespace)
	case model.LevelWorkload:
		add("namespace", o.Namespace)
		add("workload_kind", o.WorkloadKind)
		add("workload", o.Workload)
	case model.LevelNode:
		add("node", o.Node)
	case model.LevelSysContainer:
		add("container", o.Container)
		add("node", o.Node)
	}
	b.Sort()
	return b.Labels()
}
