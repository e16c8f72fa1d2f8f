package backfill

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/prometheus/tsdb"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/store"
)

// BenchmarkWriteBlock compares two ways of turning one 2-hour block's
// batches (10 nodes × 10 pods × 2 containers at 15 s, realistic) into a
// persisted block: the backfill's writer (a head without a WAL, compacted
// into the block) and internal/store itself (Store.Append into a TSDB with
// its WAL, then the head compacted). The batches are made beforehand.
//
//	go test -run '^$' -bench WriteBlock -benchtime 5x ./internal/backfill/
func BenchmarkWriteBlock(b *testing.B) {
	o := Options{Nodes: 10, PodsPerNode: 10, Interval: 15 * time.Second, Duration: 2 * time.Hour, End: end}
	o.defaults()
	start, stop := o.Range()
	src, err := newSource(&o, start)
	if err != nil {
		b.Fatal(err)
	}
	var batches []*model.Batch
	src.emit = func(_ context.Context, batch *model.Batch) {
		c := *batch
		c.Entries = append([]model.Entry(nil), batch.Entries...)
		batches = append(batches, &c)
	}
	for e := start.Add(-o.Interval); e.Add(-o.Interval).Before(stop); e = e.Add(o.Interval) {
		if _, err := src.cycle(context.Background(), e); err != nil {
			b.Fatal(err)
		}
	}
	samples := 0
	for _, bt := range batches {
		for i := range bt.Entries {
			for m := range model.NumMetrics {
				if e := &bt.Entries[i]; !e.Gone && e.Values[m] == e.Values[m] && model.Metrics[m].Levels.Has(e.Object.Level) {
					samples++
				}
			}
		}
	}
	blk := block{start.UnixMilli(), stop.UnixMilli()}
	ctx := context.Background()

	b.Run("writer", func(b *testing.B) {
		for b.Loop() {
			dir := b.TempDir()
			w := newWriter([]block{blk}, dir, store.DropTable(nil), true)
			for _, bt := range batches {
				if err := w.append(ctx, bt); err != nil {
					b.Fatal(err)
				}
			}
			if _, _, err := w.done(ctx, stop.UnixMilli(), dir, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(samples)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
	})
	b.Run("store", func(b *testing.B) {
		for b.Loop() {
			st, err := store.Open(store.Options{Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			for _, bt := range batches {
				if _, err := st.Append(ctx, bt); err != nil {
					b.Fatal(err)
				}
			}
			if err := st.DB().CompactHead(tsdb.NewRangeHead(st.DB().Head(), blk.mint, blk.maxt-1)); err != nil {
				b.Fatal(err)
			}
			if err := st.Close(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(samples)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
	})
}
