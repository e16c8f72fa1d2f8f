package backfill

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/store"
)

// blockWriter writes the pipeline's batches for one block's time range into
// a TSDB head of its own (no WAL) and persists it as one block, as the
// store's head compaction would.
//
// It appends exactly what store.Store.Append appends for the same batches:
// every present value of a metric the entry's level carries, by the same
// labels (store.Labels; an info series also carries the pod's workload and
// Kubernetes labels), a staleness marker on every series an object had when
// it is Gone, and a staleness marker on an info series whose labels changed.
// Samples outside [mint, maxt) are not written, but the objects and series
// they would have made are remembered, so that a staleness marker that falls
// inside the range ends a series whose samples lie in the block before, as
// the live store's would.
type blockWriter struct {
	head       *tsdb.Head
	chunkDir   string
	mint, maxt int64 // Unix ms; the block's range, half-open
	drop       *[model.NumLevels][model.NumMetrics]bool
	objects    map[model.Object]*objectSeries
	samples    int64 // written, staleness markers included
	rejected   int64 // refused by the head (out of order, duplicate): none expected
	// first: the block is the history's first, so a series it has not
	// written has no sample anywhere to end; its staleness markers are
	// left out.
	first bool
}

// objectSeries is what the writer knows of one object's series: the head
// reference of each (0 until written into this block), which metrics it has
// had since the pipeline first saw it, and its info series' labels.
type objectSeries struct {
	refs       [model.NumMetrics]storage.SeriesRef
	had        [model.NumMetrics]bool
	info       uint64 // hash of the info labels behind had[Info]; 0: none
	infoLabels labels.Labels
}

func newBlockWriter(tmpRoot string, mint, maxt int64, drop *[model.NumLevels][model.NumMetrics]bool) (*blockWriter, error) {
	chunkDir, err := os.MkdirTemp(tmpRoot, "head-")
	if err != nil {
		return nil, fmt.Errorf("backfill: head chunk directory: %w", err)
	}
	opts := tsdb.DefaultHeadOptions()
	opts.ChunkRange = blockDuration.Milliseconds()
	opts.ChunkDirRoot = chunkDir
	h, err := tsdb.NewHead(nil, slog.New(slog.DiscardHandler), nil, nil, opts, nil)
	if err != nil {
		_ = os.RemoveAll(chunkDir)
		return nil, fmt.Errorf("backfill: head: %w", err)
	}
	if err := h.Init(math.MinInt64); err != nil {
		_ = h.Close()
		_ = os.RemoveAll(chunkDir)
		return nil, fmt.Errorf("backfill: head: %w", err)
	}
	return &blockWriter{head: h, chunkDir: chunkDir, mint: mint, maxt: maxt, drop: drop, objects: map[model.Object]*objectSeries{}}, nil
}

// dropTable is store.Options.Drop's table: which series are not stored.
func dropTable(patterns []string) *[model.NumLevels][model.NumMetrics]bool {
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

func (w *blockWriter) inRange(t int64) bool { return t >= w.mint && t < w.maxt }

// append writes one batch, as store.Store.Append does, and commits it.
func (w *blockWriter) append(ctx context.Context, b *model.Batch) error {
	app := w.head.Appender(ctx)
	for i := range b.Entries {
		e := &b.Entries[i]
		if e.Gone {
			w.end(app, e)
			continue
		}
		st := w.objects[e.Object]
		if st == nil {
			st = &objectSeries{}
			w.objects[e.Object] = st
		}
		for m := range model.NumMetrics {
			v := e.Values[m]
			if math.IsNaN(v) || !model.Metrics[m].Levels.Has(e.Object.Level) || w.drop[e.Object.Level][m] {
				continue
			}
			if m == model.Info {
				w.checkInfo(app, st, e)
			}
			st.had[m] = true
			if err := w.put(app, st, e, m, e.TimeOf(m), v); err != nil {
				_ = app.Rollback()
				return err
			}
		}
	}
	if err := app.Commit(); err != nil {
		return fmt.Errorf("backfill: commit: %w", err)
	}
	return nil
}

// put appends one sample when its time is inside the block.
func (w *blockWriter) put(app storage.Appender, st *objectSeries, e *model.Entry, m model.MetricID, t int64, v float64) error {
	if !w.inRange(t) {
		return nil
	}
	ref := st.refs[m]
	if ref == 0 && w.first && value.IsStaleNaN(v) {
		return nil
	}
	var err error
	if ref != 0 {
		ref, err = app.Append(ref, labels.EmptyLabels(), t, v)
	} else {
		ref, err = app.Append(0, st.labels(e.Object, m), t, v)
	}
	if err != nil {
		if errors.Is(err, storage.ErrOutOfOrderSample) || errors.Is(err, storage.ErrDuplicateSampleForTimestamp) ||
			errors.Is(err, storage.ErrOutOfBounds) || errors.Is(err, storage.ErrTooOldSample) {
			w.rejected++
			return nil
		}
		return fmt.Errorf("backfill: append %s: %w", model.PromName(e.Object.Level, m), err)
	}
	st.refs[m] = ref
	w.samples++
	return nil
}

// labels are the labels of the object's series of metric m.
func (st *objectSeries) labels(o model.Object, m model.MetricID) labels.Labels {
	if m == model.Info {
		return st.infoLabels
	}
	return store.Labels(o, m)
}

// end writes a staleness marker on every series the object had, as the
// store does for a Gone entry, and forgets it.
func (w *blockWriter) end(app storage.Appender, e *model.Entry) {
	st := w.objects[e.Object]
	if st == nil {
		return
	}
	for m := range model.NumMetrics {
		if st.had[m] {
			_ = w.put(app, st, e, m, e.TimeOf(m), math.Float64frombits(value.StaleNaN))
		}
	}
	delete(w.objects, e.Object)
}

// checkInfo ends the object's info series when its labels changed, as the
// store does, and keeps the labels of the one that follows.
func (w *blockWriter) checkInfo(app storage.Appender, st *objectSeries, e *model.Entry) {
	h := infoHash(e)
	if h == st.info {
		return
	}
	if st.had[model.Info] {
		_ = w.put(app, st, e, model.Info, e.Time, math.Float64frombits(value.StaleNaN))
	}
	st.had[model.Info] = false
	st.refs[model.Info] = 0
	st.info = h
	st.infoLabels = infoSeriesLabels(e)
}

// flush persists the head as one block [mint, maxt) in dir and returns its
// directory name; "" when the range held no sample.
func (w *blockWriter) flush(ctx context.Context, dir string, log *slog.Logger) (string, error) {
	if w.head.NumSeries() == 0 {
		return "", nil
	}
	c, err := tsdb.NewLeveledCompactor(ctx, nil, log, []int64{blockDuration.Milliseconds()}, chunkenc.NewPool(), nil)
	if err != nil {
		return "", fmt.Errorf("backfill: compactor: %w", err)
	}
	// RangeHead's maxt is inclusive; the block's is not.
	ids, err := c.Write(dir, tsdb.NewRangeHead(w.head, w.mint, w.maxt-1), w.mint, w.maxt, nil)
	if err != nil {
		return "", fmt.Errorf("backfill: write block [%s, %s): %w", msTime(w.mint), msTime(w.maxt), err)
	}
	if len(ids) == 0 {
		return "", nil
	}
	return ids[0].String(), nil
}

func (w *blockWriter) close() error {
	err := w.head.Close()
	if rerr := os.RemoveAll(w.chunkDir); err == nil {
		err = rerr
	}
	return err
}

func msTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }

// The info series' labels, as internal/store builds them (its
// seriesLabels, infoLabels, infoHash and sanitize are not exported): the
// object's labels, for a pod its workload, and the Kubernetes labels as
// label_<sanitized key> and in Heapster's form labels="k:v,...". The tests
// compare every series label set with what the store writes live.

func infoKube(e *model.Entry) (kind, name string, l map[string]string) {
	if e.Pod != nil {
		return e.Pod.WorkloadKind, e.Pod.Workload, e.Pod.Labels
	}
	return "", "", e.Labels
}

func infoHash(e *model.Entry) uint64 {
	kind, name, l := infoKube(e)
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%s", kind, name)
	for _, k := range sortedKeys(l) {
		fmt.Fprintf(h, "\x00%s=%s", k, l[k])
	}
	return h.Sum64() | 1 // never 0, "no info series yet"
}

func infoSeriesLabels(e *model.Entry) labels.Labels {
	kind, name, kl := infoKube(e)
	b := labels.NewBuilder(store.Labels(e.Object, model.Info))
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

func sortedKeys(l map[string]string) []string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sanitize(k string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, k)
}
