package backfill

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/kubemon/kubemon/internal/app"
	"github.com/kubemon/kubemon/internal/config"
	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/scrape"
	"github.com/kubemon/kubemon/internal/sim"
	"github.com/kubemon/kubemon/internal/store"
)

// clusterCPU is the cluster's CPU rate series, spelled through the model.
var clusterCPU = model.PromName(model.LevelCluster, model.CPUUsageRate)

// TestMatchesLive runs kubemon as `kubemon demo` does (internal/app, the
// simulator's kubelets over HTTP, the scrape loops on the wall clock) for
// a few seconds, then backfills the same seconds of the same cluster into
// another directory, and compares the stores: the same series, labels
// included, and the same values at the times both stored. Realistic mode,
// demo's default.
func TestMatchesLive(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	iv := time.Second
	// The simulator anchors its nodes' boot times at its creation; the
	// backfill creates its own at the range's start, so the live one is
	// created at that instant too (a few seconds ahead of the wall clock).
	rangeStart := time.Now().Truncate(iv).Add(3 * iv)
	rangeEnd := rangeStart.Add(4 * iv)
	var created atomic.Bool
	cl, err := sim.New(sim.Options{Nodes: 3, PodsPerNode: 3, Now: func() time.Time {
		if created.CompareAndSwap(false, true) {
			return rangeStart
		}
		return time.Now()
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	targets := Targets(cl, func(n sim.NodeInfo) string { return "http://" + net.JoinHostPort(n.Address, strconv.Itoa(n.Port)) })

	// demo's configuration (cmd/kubemon parseDemo) at a 1 s interval.
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.Interval = iv
	cfg.Scrape.DiskIO = true
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, cfg, app.Options{Logger: slog.New(slog.DiscardHandler), Listener: ln,
			Targets: func() []model.Target { return targets }, Handlers: map[string]http.Handler{"/sim/": cl.Handler()}})
	}()
	select {
	case <-time.After(time.Until(rangeEnd.Add(1500 * time.Millisecond))):
	case err := <-done:
		t.Fatalf("kubemon stopped: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	bf := t.TempDir()
	// The demo's series kept out of its store, as `kubemon backfill` takes
	// them (its --metrics-drop defaults to demo's).
	if err := Run(context.Background(), Options{Dir: bf, Nodes: 3, PodsPerNode: 3, Interval: iv,
		Duration: rangeEnd.Sub(rangeStart), End: rangeEnd, Drop: cfg.MetricsDrop}); err != nil {
		t.Fatal(err)
	}
	mint, maxt := rangeStart.UnixMilli(), rangeEnd.UnixMilli()
	live, back := openStore(t, cfg.DataDir, mint, maxt), openStore(t, bf, mint, maxt)
	if len(live) < 100 {
		t.Fatalf("the live run stored %d series in [%s, %s)", len(live), rangeStart, rangeEnd)
	}
	for k, s := range live {
		if l, _, ok := metricOf(s.labels.Get(labels.MetricName)); ok && l == model.LevelKubemon {
			delete(live, k) // kubemon's own (its store's size): not the cluster's history
		}
	}
	checkSeriesSet(back, live, "the backfill", "the live store").report(t, "series")

	// Values: where both stored a sample at the same time, the same value.
	// Rates (and the CPU utilization, a rate's ratio) are left out (live, a
	// late scrape makes the rate's window two intervals long instead of
	// one; the values are then both right), and roll-ups (live, a late node
	// misses its cycle's roll-up).
	compared := 0
	for k, ls := range live {
		bs := back[k]
		l, m, ok := metricOf(ls.labels.Get(labels.MetricName))
		if bs == nil || !ok || model.Metrics[m].RateOf != nil || m == model.CPUUtilization ||
			l == model.LevelNamespace || l == model.LevelWorkload || l == model.LevelCluster {
			continue
		}
		at := map[int64]float64{}
		for i, ts := range bs.ts {
			at[ts] = bs.vs[i]
		}
		for i, ts := range ls.ts {
			if v, ok := at[ts]; ok {
				compared++
				if !(v == ls.vs[i]) && !(math.Abs(v-ls.vs[i]) <= 1e-9*math.Abs(v)) {
					t.Errorf("%s at %s: backfilled %v, live %v", k, msTime(ts), v, ls.vs[i])
				}
			}
		}
	}
	if compared < len(live) {
		t.Errorf("only %d samples stored at the same times by both, for %d series", compared, len(live))
	}
}

// TestDemoContinues: a store opened on the backfilled directory (as
// `kubemon demo --data-dir` opens it) answers PromQL over the history,
// takes the live data that follows it (the same chain appending through
// internal/store), compacts its head into a block overlapping the last
// backfilled one without an error, and then holds one sample per interval
// from the history's start to the live data's end.
func TestDemoContinues(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	iv := map[bool]time.Duration{false: 15 * time.Second, true: 2 * time.Minute}[raceEnabled]
	o := Options{Dir: dir, Nodes: 2, PodsPerNode: 2, Interval: iv, Duration: 3 * time.Hour, End: end}
	start, stop := o.Range()
	if err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	}()
	at := stop.Add(-time.Millisecond)
	if got, want := instant(t, st, "count_over_time("+clusterCPU+"[3h])", at), float64(3*time.Hour/iv); got != want {
		t.Errorf("count_over_time(%s[3h]) = %v, want %v (3 h / %s)", clusterCPU, got, want, iv)
	}

	// Live: kubemon's chain from the end of the history on, 4 h of it, so
	// that the head's first 2 hours are compactable.
	live := o
	live.defaults()
	src, err := newSource(&live, start)
	if err != nil {
		t.Fatal(err)
	}
	src.emit = func(ctx context.Context, b *model.Batch) {
		if _, err := st.Append(ctx, b); err != nil {
			t.Fatal(err) // samples the TSDB refuses (too old, out of order) are errors too
		}
	}
	liveEnd := stop.Add(4 * time.Hour)
	for e := stop.Add(iv); !e.After(liveEnd); e = e.Add(iv) {
		if _, err := src.cycle(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.DB().Compact(context.Background()); err != nil {
		t.Fatalf("compaction after the backfilled blocks: %v", err)
	}
	// The backfilled blocks [10:00, 12:00) and [12:00, 13:00), then the
	// live head's first block: the head starts at the newest block's end,
	// so its first block [13:00, 14:00) meets the backfilled ones without
	// overlapping them.
	var ranges []string
	var metas []tsdb.BlockMeta
	for _, b := range st.DB().Blocks() {
		ranges = append(ranges, msTime(b.Meta().MinTime)+"/"+msTime(b.Meta().MaxTime))
		metas = append(metas, b.Meta())
	}
	if want := []string{"2026-11-28T10:00:00Z/2026-11-28T12:00:00Z", "2026-11-28T12:00:00Z/2026-11-28T13:00:00Z",
		"2026-11-28T13:00:00Z/2026-11-28T14:00:00Z"}; !reflect.DeepEqual(ranges, want) {
		t.Errorf("blocks after compaction %v, want %v", ranges, want)
	}
	if ov := tsdb.OverlappingBlocks(metas); len(ov) > 0 {
		t.Errorf("overlapping blocks: %s", ov)
	}
	// One rate per interval from the history's start to the live data's
	// end but the first live cycle's (it has no earlier scrape to rate
	// against, as after any restart of kubemon).
	want := float64(liveEnd.Sub(start)/iv - 1)
	if got := instant(t, st, "count_over_time("+clusterCPU+"[10h])", liveEnd); got != want {
		t.Errorf("count_over_time(%s[10h]) = %v after the live data, want %v", clusterCPU, got, want)
	}
	if got := instant(t, st, "count(count_over_time("+model.PromName(model.LevelNode, model.CPUUsageRate)+"[10h]) == "+strconv.Itoa(int(want))+")", liveEnd); got != 2 {
		t.Errorf("%v nodes with one CPU rate per interval over the history and the live data, want 2", got)
	}
}

// TestDiskIOFilter: what the scrape client decodes from the simulator's
// /metrics/cadvisor beside the Summary (disk IO, CPU throttling, OOM
// events) is the same whether the transport passes the whole body or only
// those families.
func TestDiskIOFilter(t *testing.T) {
	t.Parallel()
	for _, mode := range []sim.Mode{sim.ModeRealistic, sim.ModeConstant} {
		var now atomic.Int64
		now.Store(end.Unix())
		cl, err := sim.New(sim.Options{Nodes: 2, PodsPerNode: 12, Mode: mode, Now: func() time.Time { return time.Unix(now.Load(), 0) }})
		if err != nil {
			t.Fatal(err)
		}
		full := &http.Client{Transport: plainTransport{cl.Handler()}}
		filtered := &http.Client{Transport: handlerTransport{cl.Handler()}}
		for _, n := range cl.Nodes() {
			for step := range 5 {
				now.Store(end.Add(time.Duration(step) * 17 * time.Minute).Unix())
				u := simBase + url.PathEscape(n.Name) + "/proxy/metrics/cadvisor"
				a, b := get(t, full, u), get(t, filtered, u)
				if len(b) >= len(a)/2 {
					t.Errorf("%s: the filtered body is %d bytes of %d", n.Name, len(b), len(a))
				}
				da, err := scrape.DecodeCadvisorExtras(a)
				if err != nil {
					t.Fatal(err)
				}
				db, err := scrape.DecodeCadvisorExtras(b)
				if err != nil {
					t.Fatal(err)
				}
				if len(da) < 12 || fmt.Sprint(da) != fmt.Sprint(db) { // Sprint: absent values are NaN
					t.Errorf("%s %s at step %d: cAdvisor extras of the whole body %v, of the filtered one %v", mode, n.Name, step, da, db)
				}
			}
		}
	}
}

// plainTransport is handlerTransport without the filter.
type plainTransport struct{ h http.Handler }

func (p plainTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rw := &responseBuffer{}
	rw.reset()
	p.h.ServeHTTP(rw, req)
	return &http.Response{StatusCode: rw.code, Header: rw.header, Body: io.NopCloser(&rw.body), Request: req}, nil
}

func get(t *testing.T, c *http.Client, u string) []byte {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", u, resp.StatusCode, err)
	}
	return b
}
