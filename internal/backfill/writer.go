package backfill

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/store"
)

// writer writes the pipeline's batches for a run of consecutive blocks,
// each into a TSDB head of its own (no WAL) that is persisted as one block
// once the pipeline has moved past its end, as the store's head compaction
// would.
//
// It appends exactly what store.Store.Append appends for the same batches:
// every present value of a metric the entry's level carries, by the same
// labels (store.SeriesLabels: an info series also carries the pod's
// workload and Kubernetes labels), a staleness marker on every series an object had when
// it is Gone, and a staleness marker on an info series whose labels changed.
// Samples outside the run's blocks are not written, but the objects and
// series they would have made are remembered, so that a staleness marker
// that falls inside a block ends a series whose samples lie in the block
// before, as the live store's would.
type writer struct {
	blocks  []block // the run, in time order
	next    int     // index in blocks of the first block without a head yet
	heads   []*blockHead
	tmp     string // where heads keep their chunks
	drop    *[model.NumLevels][model.NumMetrics]bool
	objects map[model.Object]*objectSeries
	// atStart: the run begins at the history's start, so a series it
	// has not written has no sample anywhere to end; its staleness
	// markers are left out.
	atStart  bool
	samples  int64 // written, staleness markers included
	rejected int64 // refused by a head (out of order, duplicate): none expected
}

// objectSeries is what the writer knows of one object's series: which
// metrics it has had since the pipeline first saw it, which of those it
// wrote, its info series' labels, and the references of its series in the
// head it was last written to (a cache: a series is found by its labels
// too).
type objectSeries struct {
	had, written [model.NumMetrics]bool
	info         uint64 // hash of the info labels behind had[Info]; 0: none
	infoLabels   labels.Labels
	head         *blockHead
	refs         [model.NumMetrics]storage.SeriesRef // in head
}

// blockHead is one block's head.
type blockHead struct {
	block
	*store.BlockHead
	app storage.Appender // of the batch being written; nil between batches
}

func newWriter(blocks []block, tmp string, drop *[model.NumLevels][model.NumMetrics]bool, atStart bool) *writer {
	return &writer{blocks: blocks, tmp: tmp, drop: drop, objects: map[model.Object]*objectSeries{}, atStart: atStart}
}

func newBlockHead(b block, tmpRoot string) (*blockHead, error) {
	h, err := store.NewBlockHead(tmpRoot, b.mint, b.maxt)
	if err != nil {
		return nil, fmt.Errorf("backfill: %w", err)
	}
	return &blockHead{block: b, BlockHead: h}, nil
}

// headFor is the head of the block holding time t, opened when t is the
// first time in it; nil when t is outside the run (before it, or in a
// block already persisted: the pipeline's times only move forward).
func (w *writer) headFor(ctx context.Context, t int64) (*blockHead, error) {
	for _, h := range w.heads {
		if t >= h.mint && t < h.maxt {
			return h, nil
		}
	}
	for w.next < len(w.blocks) && w.blocks[w.next].maxt <= t {
		w.next++ // a block no sample fell in
	}
	if w.next == len(w.blocks) || t < w.blocks[w.next].mint {
		return nil, nil
	}
	h, err := newBlockHead(w.blocks[w.next], w.tmp)
	if err != nil {
		return nil, err
	}
	w.next++
	h.app = h.Head.Appender(ctx)
	w.heads = append(w.heads, h)
	return h, nil
}

// append writes one batch, as store.Store.Append does, and commits it.
func (w *writer) append(ctx context.Context, b *model.Batch) error {
	err := w.appendEntries(ctx, b)
	for _, h := range w.heads {
		if h.app == nil {
			continue
		}
		if err != nil {
			_ = h.app.Rollback()
		} else if cerr := h.app.Commit(); cerr != nil {
			err = fmt.Errorf("backfill: commit: %w", cerr)
		}
		h.app = nil
	}
	return err
}

func (w *writer) appendEntries(ctx context.Context, b *model.Batch) error {
	for i := range b.Entries {
		e := &b.Entries[i]
		if e.Gone {
			if err := w.end(ctx, e); err != nil {
				return err
			}
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
				if err := w.checkInfo(ctx, st, e); err != nil {
					return err
				}
			}
			st.had[m] = true
			if err := w.put(ctx, st, e, m, e.TimeOf(m), v); err != nil {
				return err
			}
		}
	}
	return nil
}

// put appends one sample when its time is inside one of the run's blocks.
func (w *writer) put(ctx context.Context, st *objectSeries, e *model.Entry, m model.MetricID, t int64, v float64) error {
	if value.IsStaleNaN(v) && w.atStart && !st.written[m] {
		return nil
	}
	h, err := w.headFor(ctx, t)
	if h == nil || err != nil {
		return err
	}
	if h.app == nil {
		h.app = h.Head.Appender(ctx)
	}
	if st.head != h {
		st.head, st.refs = h, [model.NumMetrics]storage.SeriesRef{}
	}
	ref := st.refs[m]
	if ref != 0 {
		ref, err = h.app.Append(ref, labels.EmptyLabels(), t, v)
	} else {
		ref, err = h.app.Append(0, st.labels(e.Object, m), t, v)
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
	st.written[m] = true
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
func (w *writer) end(ctx context.Context, e *model.Entry) error {
	st := w.objects[e.Object]
	if st == nil {
		return nil
	}
	for m := range model.NumMetrics {
		if st.had[m] {
			if err := w.put(ctx, st, e, m, e.TimeOf(m), math.Float64frombits(value.StaleNaN)); err != nil {
				return err
			}
		}
	}
	delete(w.objects, e.Object)
	return nil
}

// checkInfo ends the object's info series when its labels changed, as the
// store does, and keeps the labels of the one that follows.
func (w *writer) checkInfo(ctx context.Context, st *objectSeries, e *model.Entry) error {
	h := store.InfoHash(e)
	if h == st.info {
		return nil
	}
	if st.had[model.Info] {
		if err := w.put(ctx, st, e, model.Info, e.Time, math.Float64frombits(value.StaleNaN)); err != nil {
			return err
		}
	}
	st.had[model.Info], st.written[model.Info], st.refs[model.Info] = false, false, 0
	st.info = h
	st.infoLabels = store.SeriesLabels(e, model.Info)
	return nil
}

// done persists into dir, and closes, the heads of the blocks that end by
// t: the pipeline writes nothing before t any more. It returns the new
// blocks' directory names (none for a block that held no sample).
func (w *writer) done(ctx context.Context, t int64, dir string, log *slog.Logger) (ids []string, series uint64, err error) {
	keep := w.heads[:0]
	for _, h := range w.heads {
		if h.maxt > t {
			keep = append(keep, h)
			continue
		}
		if err == nil {
			var id string
			series += h.Head.NumSeries()
			id, err = h.Flush(ctx, dir, log)
			if id != "" {
				ids = append(ids, id)
			}
		}
		if cerr := h.Close(); err == nil {
			err = cerr
		}
		for _, st := range w.objects { // let the closed head go
			if st.head == h {
				st.head, st.refs = nil, [model.NumMetrics]storage.SeriesRef{}
			}
		}
	}
	w.heads = keep
	return ids, series, err
}

// close closes the heads left, without persisting them.
func (w *writer) close() {
	for _, h := range w.heads {
		_ = h.Close()
	}
	w.heads = nil
}

func msTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }
