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
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/compression"

	"github.com/kubemon/kubemon/internal/model"
)

// Options configure the store. Zero values take the defaults noted.
type Options struct {
	// Dir is the data directory; required.
	Dir string
	// Retention is how long samples are kept; default 15 days.
	Retention time.Duration
	// RetentionSize bounds the bytes of the store's persisted blocks (the
	// TSDB's size-based retention: the oldest blocks are deleted first, and
	// the WAL and head chunks count towards it); 0 means no limit.
	RetentionSize int64
	Logger        *slog.Logger
	// Registerer receives the TSDB's own metrics and the store's.
	Registerer prometheus.Registerer
	// Drop lists series not to store, as Prometheus names with shell-style
	// wildcards (path.Match).
	Drop []string
	// WALCompression compresses the write-ahead log's records: snappy (the
	// default, as Prometheus's --storage.tsdb.wal-compression), zstd, or
	// none. BenchmarkWALCompression measures the bytes a sample takes.
	WALCompression compression.Type
	// BlockDuration is the time range of the blocks the head cuts: the head
	// holds 1 to 1.5 times it (with the series seen in it) and writes the
	// oldest range as a block once it holds more. Default BlockDuration (2 h,
	// Prometheus's); it must divide it, so that its blocks nest in the 2-hour
	// grid of the blocks a backfill or a replica's fill writes. Shorter
	// blocks make the head smaller (fewer series of pods gone) and its
	// compactions come sooner and smaller.
	BlockDuration time.Duration
}

// Store is the embedded time-series store.
type Store struct {
	db     *tsdb.DB
	logger *slog.Logger

	// stored lists, per level, the metrics the store keeps (those of the
	// level that Drop leaves), in metric order: an object's series
	// references are cached by their index in it, their slot.
	stored [model.NumLevels][]model.MetricID

	mu   sync.Mutex // serializes Append: it owns refs
	refs *refCache
	// floor is the time (Unix ms) at or before which Append keeps no
	// sample: a replica's range that its peer's samples fill (SetFloor).
	floor int64
	// swept is when refs was last swept of series not appended to since.
	swept time.Time

	appended prometheus.Counter
	rejected *prometheus.CounterVec
	series   prometheus.Gauge
}

// refTTL is how long a series' reference is cached without appends.
const refTTL = 10 * time.Minute

// maxBlockDuration is how long the store's largest blocks get, as
// Prometheus sets it: a tenth of the retention, at most 31 days, at least
// the blocks the head cuts (block). The head's blocks (2 h by default) are
// compacted into blocks 3, 9, 27… times as long up to it
// (tsdb.ExponentialBlockRanges): a query over days reads a few blocks, not
// one every 2 hours (a 7-day range read 85 indexes before). Under 30 times
// the head's block (60 hours by default) the retention keeps the blocks as
// the head writes them: none is compacted again.
func maxBlockDuration(retention, block time.Duration) time.Duration {
	return max(block, min(retention/10, 31*24*time.Hour))
}

// BlockReloadInterval is how often the store loads blocks that appeared in
// its directory.
const BlockReloadInterval = 10 * time.Second

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
	if o.RetentionSize < 0 {
		return nil, fmt.Errorf("store: negative retention size %d", o.RetentionSize)
	}
	opts.RetentionDuration = o.Retention.Milliseconds()
	opts.MaxBytes = o.RetentionSize
	switch {
	case o.BlockDuration == 0:
		o.BlockDuration = BlockDuration
	case o.BlockDuration < time.Minute || BlockDuration%o.BlockDuration != 0:
		return nil, fmt.Errorf("store: block duration %s: want a divisor of %s, at least 1m", o.BlockDuration, BlockDuration)
	}
	opts.MinBlockDuration = o.BlockDuration.Milliseconds()
	opts.MaxBlockDuration = maxBlockDuration(o.Retention, o.BlockDuration).Milliseconds()
	// Blocks written beside the head (a replica's fill from its peer) are
	// loaded at the next reload: every 10 s rather than the TSDB's minute
	// (a directory listing each time).
	opts.BlockReloadInterval = BlockReloadInterval
	// No isolation: a query may see one node's samples of a cycle before
	// another's, as it does anyway (nodes are scraped at offsets spread
	// over the interval, and a series whose newest sample is not in yet
	// answers with the one before, within the lookback). Isolation's ring
	// of append IDs cost about 65 bytes a series (7 % of the heap at
	// 1,000 nodes × 30 pods) and work on every append.
	opts.IsolationDisabled = true
	switch o.WALCompression {
	case "":
		opts.WALCompression = compression.Snappy
	case compression.None, compression.Snappy, compression.Zstd:
		opts.WALCompression = o.WALCompression
	default:
		return nil, fmt.Errorf("store: unknown WAL compression %q (want none, snappy or zstd)", o.WALCompression)
	}
	db, err := tsdb.Open(o.Dir, o.Logger.With("component", "tsdb"), o.Registerer, opts, nil)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", o.Dir, err)
	}
	s := &Store{
		db:     db,
		logger: o.Logger,
		refs:   newRefCache(),
		floor:  math.MinInt64,
		swept:  time.Now(),
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "kubemon", Subsystem: "store", Name: "samples_appended_total",
			Help: "Samples appended to the embedded store.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kubemon", Subsystem: "store", Name: "samples_rejected_total",
			Help: "Samples the store rejected, by reason: out_of_order, duplicate, too_old, filled_by_peer (a replica's range its peer's samples fill).",
		}, []string{"reason"}),
		series: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "kubemon", Subsystem: "store", Name: "cached_objects",
			Help: "Objects whose series references the store keeps for fast appends.",
		}),
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(s.appended, s.rejected, s.series)
	}
	drop := DropTable(o.Drop)
	for l := range model.NumLevels {
		for m := range model.NumMetrics {
			if model.Metrics[m].Levels.Has(l) && !drop[l][m] {
				s.stored[l] = append(s.stored[l], m)
			}
		}
	}
	return s, nil
}

// DropTable is which series Options.Drop's patterns keep out of the store,
// by level and metric.
func DropTable(patterns []string) *[model.NumLevels][model.NumMetrics]bool {
	var d [model.NumLevels][model.NumMetrics]bool
	for l := model.Level(0); l < model.NumLevels; l++ {
		for m := range model.NumMetrics {
			for _, pat := range patterns {
				if ok, _ := path.Match(pat, model.PromName(l, m)); ok {
					d[l][m] = true
				}
			}
		}
	}
	return &d
}

// Queryable is the store's read side, for PromQL and the APIs.
func (s *Store) Queryable() storage.Queryable { return s.db }

// DB is the underlying TSDB.
func (s *Store) DB() *tsdb.DB { return s.db }

// Size is the store's size on disk as its size retention counts it: the
// persisted blocks, the WAL and the head's chunks, in bytes.
func (s *Store) Size() int64 {
	n := s.db.Head().Size()
	for _, b := range s.db.Blocks() {
		n += b.Size()
	}
	return n
}

// Close flushes and closes the store. Call it on shutdown; after a crash
// the WAL is replayed on the next Open.
func (s *Store) Close() error { return s.db.Close() }

// SetFloor makes Append keep no sample stamped at or before t (Unix ms):
// a replica back from an outage leaves that range to the samples its peer
// fills in, so both replicas hold the same ones (its own first samples
// after a restart would sit beside them). Such samples are counted as
// rejected with the reason "filled_by_peer".
func (s *Store) SetFloor(t int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.floor = t
}

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
	// The objects in this batch's order, for the next batch from the same
	// source, written over the last one's as it is read.
	var src model.Object
	if len(b.Entries) > 0 {
		src = b.Entries[0].Object
	}
	last := s.refs.order[src]
	order := last[:0]
	for i := range b.Entries {
		e := &b.Entries[i]
		if e.Gone {
			s.endSeries(app, e)
			continue
		}
		level := e.Object.Level
		var guess *objectRefs
		if k := len(order); k < len(last) {
			guess = last[k]
		}
		cached := s.refs.get(&e.Object, guess, len(s.stored[level]))
		order = append(order, cached)
		cached.seen = now.Unix()
		for slot, m := range s.stored[level] {
			v := e.Values[m]
			if math.IsNaN(v) {
				continue
			}
			if m == model.Info {
				s.checkInfo(app, cached, e, slot)
			}
			t := e.TimeOf(m)
			if t <= s.floor {
				s.rejected.WithLabelValues("filled_by_peer").Inc()
				continue
			}
			ref, err := appendOne(app, cached.refs[slot], e, m, t, v)
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
			cached.refs[slot] = ref
			n++
		}
	}
	if err := app.Commit(); err != nil {
		return 0, fmt.Errorf("store: commit: %w", err)
	}
	s.refs.order[src] = order
	s.appended.Add(float64(n))
	if now.Sub(s.swept) > refTTL {
		s.refs.sweep(now.Add(-refTTL).Unix())
		s.swept = now
	}
	s.series.Set(float64(s.refs.len()))
	if firstErr != nil {
		return n, fmt.Errorf("store: append: %w", firstErr)
	}
	return n, nil
}

// appendOne appends by the cached reference, and by labels when there is
// none or the head no longer knows it.
func appendOne(app storage.Appender, ref storage.SeriesRef, e *model.Entry, m model.MetricID, t int64, v float64) (storage.SeriesRef, error) {
	if ref != 0 {
		got, err := app.Append(ref, labels.EmptyLabels(), t, v)
		if !errors.Is(err, tsdb.ErrInvalidSample) {
			return got, err
		}
	}
	return app.Append(0, SeriesLabels(e, m), t, v)
}

// endSeries appends a staleness marker to every series of a vanished
// object, so that queries stop seeing it at once rather than after the
// 5-minute lookback, and forgets its references.
func (s *Store) endSeries(app storage.Appender, e *model.Entry) {
	cached := s.refs.find(&e.Object)
	if cached == nil {
		return
	}
	for slot, ref := range cached.refs {
		if ref != 0 {
			m := s.stored[e.Object.Level][slot]
			if _, err := app.Append(ref, labels.EmptyLabels(), e.TimeOf(m), math.Float64frombits(value.StaleNaN)); err != nil && rejectReason(err) == "" {
				s.logger.Debug("staleness marker", "err", err)
			}
		}
	}
	s.refs.drop(cached)
}

// checkInfo ends an info series whose labels changed (the object was
// relabelled, or a pod's owner became known) with a staleness marker, so
// that joins on pod_info and namespace_info never see two series for one
// object.
func (s *Store) checkInfo(app storage.Appender, cached *objectRefs, e *model.Entry, slot int) {
	h := InfoHash(e)
	if h == cached.info {
		return
	}
	if old := cached.refs[slot]; old != 0 {
		_, _ = app.Append(old, labels.EmptyLabels(), e.Time, math.Float64frombits(value.StaleNaN))
	}
	cached.refs[slot] = 0
	cached.info = h
}

// infoLabels are the Kubernetes labels and, for a pod, the workload of an
// entry's info series.
func infoLabels(e *model.Entry) (kind, name string, l map[string]string) {
	if e.Pod != nil {
		return e.Pod.WorkloadKind, e.Pod.Workload, e.Pod.Labels
	}
	return "", "", e.Labels
}

// InfoHash identifies the labels of entry e's info series (its Kubernetes
// labels and, for a pod, its workload): when it changes, the old info series
// ends with a staleness marker. Never 0. It runs for every pod and
// namespace every cycle, so it neither sorts nor allocates: the labels'
// hashes are summed, which does not depend on the map's order.
func InfoHash(e *model.Entry) uint64 {
	kind, name, l := infoLabels(e)
	h := hashStrings(kind, name)
	for k, v := range l {
		h += hashStrings(k, v)
	}
	return h | 1 // never 0, the hash of "nothing cached"
}

// hashStrings is FNV-1a over a, a 0 byte and b.
func hashStrings(a, b string) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	for i := 0; i < len(a); i++ {
		h = (h ^ uint64(a[i])) * prime
	}
	h *= prime // the separator, a 0 byte
	for i := 0; i < len(b); i++ {
		h = (h ^ uint64(b[i])) * prime
	}
	return h
}

func sortedKeys(l map[string]string) []string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// SeriesLabels are the labels of metric m of entry e as the store writes
// them: the object's (Labels), and for an info series the object's
// Kubernetes labels and a pod's workload. Writers of the same series
// elsewhere (the backfill) use it too.
func SeriesLabels(e *model.Entry, m model.MetricID) labels.Labels {
	l := Labels(e.Object, m)
	if m != model.Info {
		return l
	}
	kind, name, kl := infoLabels(e)
	b := labels.NewBuilder(l)
	if e.Object.Level == model.LevelPod {
		b.Set(model.LabelWorkloadKind, kind)
		b.Set(model.LabelWorkload, name)
	}
	keys := sortedKeys(kl)
	heapster := make([]string, 0, len(keys))
	for _, k := range keys {
		heapster = append(heapster, k+":"+kl[k])
		b.Set(model.LabelKubeLabelPrefix+sanitize(k), kl[k])
	}
	b.Set(model.LabelKubeLabels, strings.Join(heapster, ","))
	return b.Labels()
}

// sanitize turns a Kubernetes label key into a Prometheus label name part,
// as kube-state-metrics does: every character outside [a-zA-Z0-9_] is "_".
func sanitize(k string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, k)
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
	for _, k := range o.Level.LabelKeys() {
		add(k, o.Label(k))
	}
	for _, k := range model.Metrics[m].Labels {
		add(k, o.Label(k))
	}
	b.Sort()
	return b.Labels()
}
