package app

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/sink"
	"github.com/kubemon/kubemon/internal/store"
)

// downWriter is a destination that never answers: its sink falls behind.
type downWriter struct{}

func (downWriter) Write(context.Context, []sink.Series) error {
	return sink.Retryable(errors.New("connection refused"), 0)
}

// TestSelfSeries: kubemon's own series land in its store, where rules read
// them: the store's size and limit, and each sink's lag once it has a
// position (a sink whose destination is down falls behind by the time that
// passes).
func TestSelfSeries(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(store.Options{Dir: filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var mu sync.Mutex
	now := time.Now().Truncate(time.Second)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e, err := sink.NewExporter(sink.Options{Name: "down", Writer: downWriter{}, Store: st.Queryable(), Dir: filepath.Join(dir, "sinks"),
		Interval: time.Hour, Settle: 10 * time.Second, Now: clock, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s := selfSeries{store: st, sinks: []*sink.Exporter{e}, limit: 8 << 30, dir: dir, interval: time.Second, log: slog.New(slog.DiscardHandler), now: clock}

	b := s.batch(clock())
	if len(b.Entries) != 1 {
		t.Fatalf("%d entries before the sink has a position, want the store's only", len(b.Entries))
	}
	if _, err := st.Append(context.Background(), b); err != nil { // the WAL is no longer empty
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := e.Lag(); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sink has no position after 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	now = now.Add(50 * time.Second)
	mu.Unlock()
	b = s.batch(clock())
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(context.Background(), b); err != nil {
		t.Fatal(err)
	}

	at := clock().UnixMilli()
	get := func(name string, kv ...string) float64 {
		t.Helper()
		q, err := st.Queryable().Querier(at-1, at)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, name)}
		for i := 0; i+1 < len(kv); i += 2 {
			ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, kv[i], kv[i+1]))
		}
		set := q.Select(context.Background(), false, nil, ms...)
		v, n := math.NaN(), 0
		for set.Next() {
			it := set.At().Iterator(nil)
			for it.Next() != 0 {
				_, v = it.At()
			}
			n++
		}
		if n != 1 {
			t.Fatalf("%s%v: %d series, want 1", name, kv, n)
		}
		return v
	}
	if v := get(model.PromName(model.LevelKubemon, model.StoreSize)); !(v > 0 && v <= float64(st.Size())) {
		t.Errorf("store size %v (the store says %d now)", v, st.Size())
	}
	if v := get(model.PromName(model.LevelKubemon, model.StoreSizeLimit)); v != 8<<30 {
		t.Errorf("store size limit %v, want 8 GiB", v)
	}
	// The data directory's filesystem, as statfs says at the test's end.
	avail, size, err := volumeBytes(dir)
	if err != nil {
		t.Fatal(err)
	}
	if v := get(model.PromName(model.LevelKubemon, model.StoreVolumeSize)); v != float64(size) || !(size > 0) {
		t.Errorf("data volume size %v, statfs says %d", v, size)
	}
	// Free space moves as anything on the machine writes: within 1 %.
	if v := get(model.PromName(model.LevelKubemon, model.StoreVolumeAvailable)); !(v > 0 && math.Abs(v-float64(avail)) <= 0.01*float64(size)) {
		t.Errorf("data volume free %v, statfs says %d of %d", v, avail, size)
	}
	// The position was the present less the settle time; 50 s passed.
	if v := get(model.PromName(model.LevelKubemon, model.SinkLag), model.LabelSink, "down"); !(math.Abs(v-60) <= 1) {
		t.Errorf("the down sink's lag %v s, want 60 (50 s + its 10 s settle time)", v)
	}
}
