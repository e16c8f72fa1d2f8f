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

// writeBlocks writes n 2-hour blocks from base on, as the head cuts them
// or kubemon backfill writes them, of 3 series sampled every minute, and
// returns how many samples they hold.
func writeBlocks(t *testing.T, dir string, base time.Time, n int) (samplesWritten int) {
	t.Helper()
	const block = 2 * time.Hour
	for i := range n {
		var series []storage.Series
		for s := range 3 {
			var samples []chunks.Sample
			for ts := base.Add(time.Duration(i) * block); ts.Before(base.Add(time.Duration(i+1) * block)); ts = ts.Add(time.Minute) {
				samples = append(samples, floatSample{ts.UnixMilli(), float64(s)})
			}
			samplesWritten += len(samples)
			series = append(series, storage.NewListSeries(labels.FromStrings("__name__", "node_cpu_usage_cores", "node", string(rune('a'+s))), samples))
		}
		if _, err := tsdb.CreateBlock(series, dir, 0, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
	}
	return samplesWritten
}

// TestCompactsBeyondTwoHours: 18 hours of 2-hour blocks (as the head cuts
// them, or kubemon backfill writes them) are compacted into larger blocks,
// as Prometheus does, and no sample is lost; before, the store kept every
// 2-hour block and a 7-day query read 85 of them.
func TestCompactsBeyondTwoHours(t *testing.T) {
	dir := t.TempDir()
	base := time.Now().Add(-48 * time.Hour).Truncate(18 * time.Hour)
	want := writeBlocks(t, dir, base, 9)
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
		if got := maxBlockDuration(c.retention, BlockDuration); got != c.want {
			t.Errorf("retention %v: max block %v, want %v", c.retention, got, c.want)
		}
	}
}

// TestShortRetentionKeepsHeadBlocks: with a day's retention (under 60 h),
// as Prometheus sets it, the blocks stay as the head writes them: a store
// that keeps a day never compacts a block again, only its head.
func TestShortRetentionKeepsHeadBlocks(t *testing.T) {
	dir := t.TempDir()
	writeBlocks(t, dir, time.Now().Add(-20*time.Hour).Truncate(2*time.Hour), 9)
	s, err := Open(Options{Dir: dir, Retention: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.DB().Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	blocks := s.DB().Blocks()
	if len(blocks) != 9 {
		t.Fatalf("%d blocks after compaction, want the 9 written", len(blocks))
	}
	for _, b := range blocks {
		if d := time.Duration(b.MaxTime()-b.MinTime()) * time.Millisecond; d > 2*time.Hour {
			t.Errorf("block %s spans %v, want at most 2h", b.Meta().ULID, d)
		}
	}
}

// TestBlockDuration: the head cuts blocks of Options.BlockDuration once it
// holds 1.5 times that, and durations that do not divide 2 h are refused.
func TestBlockDuration(t *testing.T) {
	for _, bad := range []time.Duration{30 * time.Second, 7 * time.Minute, 3 * time.Hour, -time.Hour} {
		if s, err := Open(Options{Dir: t.TempDir(), BlockDuration: bad}); err == nil {
			s.Close()
			t.Errorf("block duration %v: opened, want an error", bad)
		}
	}
	s, err := Open(Options{Dir: t.TempDir(), BlockDuration: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := time.Now().Truncate(30 * time.Minute).Add(-2 * time.Hour)
	app := s.DB().Appender(context.Background())
	lset := labels.FromStrings("__name__", "node_cpu_usage_cores", "node", "a")
	var n int
	for ts := base; ts.Before(base.Add(50 * time.Minute)); ts = ts.Add(15 * time.Second) {
		if _, err := app.Append(0, lset, ts.UnixMilli(), 1); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.DB().Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	blocks := s.DB().Blocks()
	if len(blocks) != 1 {
		t.Fatalf("head of 50 min with 30 min blocks: %d blocks written, want 1", len(blocks))
	}
	b := blocks[0].Meta()
	if b.MinTime != base.UnixMilli() || b.MaxTime != base.Add(30*time.Minute).UnixMilli() || b.Stats.NumSamples != 120 {
		t.Errorf("block [%s, %s) of %d samples, want [%s, %s) of 120 (of %d appended)", msTime(b.MinTime), msTime(b.MaxTime), b.Stats.NumSamples,
			msTime(base.UnixMilli()), msTime(base.Add(30*time.Minute).UnixMilli()), n)
	}
}
