package store

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
)

type floatSample struct {
	t int64
	f float64
}

func (s floatSample) T() int64                      { return s.t }
func (s floatSample) ST() int64                     { return 0 }
func (s floatSample) F() float64                    { return s.f }
func (s floatSample) H() *histogram.Histogram       { return nil }
func (s floatSample) FH() *histogram.FloatHistogram { return nil }
func (s floatSample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s floatSample) Copy() chunks.Sample           { return s }

// TestCompactsBeyondTwoHours: 18 hours of 2-hour blocks (as the head cuts
// them, or kubemon backfill writes them) are compacted into larger blocks,
// as Prometheus does, and no sample is lost; before, the store kept every
// 2-hour block and a 7-day query read 85 of them.
func TestCompactsBeyondTwoHours(t *testing.T) {
	dir := t.TempDir()
	const block = 2 * time.Hour
	base := time.Now().Add(-48 * time.Hour).Truncate(18 * time.Hour)
	var want int
	for i := range 9 {
		var series []storage.Series
		for s := range 3 {
			var samples []chunks.Sample
			for ts := base.Add(time.Duration(i) * block); ts.Before(base.Add(time.Duration(i+1) * block)); ts = ts.Add(time.Minute) {
				samples = append(samples, floatSample{ts.UnixMilli(), float64(s)})
			}
			want += len(samples)
			series = append(series, storage.NewListSeries(labels.FromStrings("__name__", "node_cpu_usage_cores", "node", string(rune('a'+s))), samples))
		}
		if _, err := tsdb.CreateBlock(series, dir, 0, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Open(Options{Dir: dir, Retention: 15 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := len(s.DB().Blocks()); n != 9 {
		t.Fatalf("%d blocks before compaction, want 9", n)
	}
	if err := s.DB().Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	blocks := s.DB().Blocks()
	var longest int64
	for _, b := range blocks {
		longest = max(longest, b.MaxTime()-b.MinTime())
	}
	if len(blocks) >= 9 || longest < (6*time.Hour).Milliseconds() {
		t.Errorf("after compaction %d blocks, the longest %v: want fewer than 9, of 6 h or more", len(blocks), time.Duration(longest)*time.Millisecond)
	}
	q, err := s.Queryable().Querier(base.UnixMilli(), base.Add(18*time.Hour).UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var got int
	ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "node_cpu_usage_cores"))
	var it chunkenc.Iterator
	for ss.Next() {
		it = ss.At().Iterator(it)
		for it.Next() != chunkenc.ValNone {
			got++
		}
	}
	if ss.Err() != nil || got != want {
		t.Errorf("%d samples after compaction (%v), want %d", got, ss.Err(), want)
	}
	t.Logf("%d blocks of 2 h → %d blocks, the longest %v; %d samples kept", 9, len(blocks), time.Duration(longest)*time.Millisecond, got)
}

func TestMaxBlockDuration(t *testing.T) {
	for _, c := range []struct{ retention, want time.Duration }{
		{15 * 24 * time.Hour, 36 * time.Hour},
		{time.Hour, 2 * time.Hour},
		{365 * 24 * time.Hour, 31 * 24 * time.Hour},
	} {
		if got := maxBlockDuration(c.retention); got != c.want {
			t.Errorf("retention %v: max block %v, want %v", c.retention, got, c.want)
		}
	}
}
