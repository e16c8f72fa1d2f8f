package replica

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/kubemon/kubemon/internal/store"
)

const step = 15 * time.Second

// series are the test's series: a counter-like, a gauge and one that ends
// with a staleness marker inside the hole (a pod that went away).
var series = []labels.Labels{
	labels.FromStrings("__name__", "node_cpu_usage_cores", "node", "n1"),
	labels.FromStrings("__name__", "container_memory_working_set_bytes", "namespace", "default", "pod", "web-1", "container", "web"),
	labels.FromStrings("__name__", "pod_cpu_usage_cores", "namespace", "default", "pod", "gone-1"),
}

// value of series i at t: distinct per series and time.
func sampleValue(i int, t int64) float64 { return float64(i+1)*1e6 + float64(t/1000%100000) }

// openStore opens a store in dir.
func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(store.Options{Dir: dir, Retention: 72 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// write appends every series' samples at each step in [from, to]; the
// third series ends at gone with a staleness marker.
func write(t *testing.T, db *tsdb.DB, from, to, gone time.Time) {
	t.Helper()
	app := db.Appender(context.Background())
	for ts := from; !ts.After(to); ts = ts.Add(step) {
		for i, ls := range series {
			v := sampleValue(i, ts.UnixMilli())
			if i == 2 {
				if ts.After(gone) {
					continue
				}
				if ts.Equal(gone) {
					v = math.Float64frombits(value.StaleNaN)
				}
			}
			if _, err := app.Append(0, ls, ts.UnixMilli(), v); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
}

type sample struct {
	t int64
	v uint64 // bits, so staleness markers compare
}

// raw reads every sample of every series in [from, to].
func raw(t *testing.T, db *tsdb.DB, from, to time.Time) map[string][]sample {
	t.Helper()
	q, err := db.Querier(from.UnixMilli(), to.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	all := labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")
	ss := q.Select(context.Background(), true, nil, all)
	out := map[string][]sample{}
	var it chunkenc.Iterator
	for ss.Next() {
		it = ss.At().Iterator(it)
		for it.Next() == chunkenc.ValFloat {
			ts, v := it.At()
			out[ss.At().Labels().String()] = append(out[ss.At().Labels().String()], sample{ts, math.Float64bits(v)})
		}
	}
	if err := ss.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFillHole: a replica down from 13:40 to 16:10 (a hole across two
// 2-hour block boundaries, with a series that ended inside it) reads the
// hole from its peer; afterwards both stores hold the same samples over
// the whole window, bit for bit (staleness marker included). The first
// peer answers 500 and is passed over; the bearer token comes from the
// token file at each request.
func TestFillHole(t *testing.T) {
	day := time.Now().UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour)
	t0 := day.Add(12 * time.Hour)
	down := day.Add(13*time.Hour + 40*time.Minute)
	up := day.Add(16*time.Hour + 10*time.Minute)
	end := day.Add(17 * time.Hour)
	gone := day.Add(15 * time.Hour)

	peer := openStore(t, t.TempDir())
	defer peer.Close()
	write(t, peer.DB(), t0, end, gone)

	dirA := t.TempDir()
	a := openStore(t, dirA)
	write(t, a.DB(), t0, down, gone)

	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("secret-1"), 0o600); err != nil {
		t.Fatal(err)
	}
	var reads, badReads atomic.Int64
	h := ReadHandler(peer.DB(), slog.New(slog.DiscardHandler), nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer secret-1" {
			badReads.Add(1)
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		if r.URL.Path != ReadPath {
			http.NotFound(w, r)
			return
		}
		reads.Add(1)
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "broken", http.StatusInternalServerError)
	}))
	defer broken.Close()

	reg := prometheus.NewRegistry()
	// The clock says the replica restarted at up; its own samples resume
	// from up + Settle (written below, as its scrapes would).
	f, err := New(Options{DB: a.DB(), Interval: step, Retention: 72 * time.Hour, BearerTokenFile: tokenFile,
		Peers: func(context.Context) ([]string, error) { return []string{broken.URL, srv.URL}, nil },
		Now:   func() time.Time { return up }, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	from, to := f.Hole()
	// The hole starts a margin (three intervals, 45 s) before the newest
	// local sample.
	if want := down.Add(-45 * time.Second); from != want.UnixMilli() || to != up.Add(3*step).UnixMilli() {
		t.Fatalf("hole (%s, %s], want (%s, %s]", time.UnixMilli(from).UTC(), time.UnixMilli(to).UTC(), want, up.Add(3*step))
	}
	write(t, a.DB(), up.Add(3*step), end, gone)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f.fill(ctx)
	if err := ctx.Err(); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(f.fills.WithLabelValues("ok")); got != 1 {
		t.Fatalf("fills ok = %v, want 1 (error: %v)", got, testutil.ToFloat64(f.fills.WithLabelValues("error")))
	}
	// 13:40–16:10:45 crosses 14:00 and 16:00: three block ranges, three reads.
	if n := reads.Load(); n != 3 || badReads.Load() != 0 {
		t.Errorf("peer reads %d (unauthorized %d), want 3 and 0", n, badReads.Load())
	}
	// The blocks load when the store next reloads; reopening loads them.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a = openStore(t, dirA)
	defer a.Close()
	if n := len(a.DB().Blocks()); n < 3 {
		t.Errorf("%d blocks after the fill, want at least the 3 filled", n)
	}

	want, got := raw(t, peer.DB(), t0, end), raw(t, a.DB(), t0, end)
	if len(want) != len(series) {
		t.Fatalf("peer holds %d series, want %d", len(want), len(series))
	}
	total := 0
	for k, ws := range want {
		gs := got[k]
		total += len(ws)
		if len(gs) != len(ws) {
			t.Errorf("%s: %d samples after the fill, peer %d", k, len(gs), len(ws))
			continue
		}
		for i := range ws {
			if gs[i] != ws[i] {
				t.Errorf("%s: sample %d = %v, peer %v", k, i, gs[i], ws[i])
				break
			}
		}
	}
	// 12:00–17:00 every 15 s is 1,201 times; the third series stops at 15:00.
	if want := 1201*2 + 721; total != want {
		t.Errorf("%d samples compared, want %d", total, want)
	}
	if got := testutil.ToFloat64(f.samples); !(got > 0) || got != float64(countIn(want, from, to)) {
		t.Errorf("filled samples %v, want the peer's %d in the hole", got, countIn(want, from, to))
	}
}

func countIn(m map[string][]sample, from, to int64) int {
	n := 0
	for _, ss := range m {
		for _, s := range ss {
			if s.t > from && s.t <= to {
				n++
			}
		}
	}
	return n
}

// TestFillEmptyStore: a new replica (an empty store) fills the whole
// retention from its peer.
func TestFillEmptyStore(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Minute)
	peer := openStore(t, t.TempDir())
	defer peer.Close()
	write(t, peer.DB(), now.Add(-3*time.Hour), now, now.Add(-time.Hour))
	srv := httptest.NewServer(ReadHandler(peer.DB(), slog.New(slog.DiscardHandler), nil))
	defer srv.Close()

	dir := t.TempDir()
	a := openStore(t, dir)
	f, err := New(Options{DB: a.DB(), Interval: step, Retention: 2 * time.Hour, Settle: time.Millisecond, Lag: time.Millisecond,
		Peers: func(context.Context) ([]string, error) { return []string{srv.URL}, nil },
		Now:   func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if from, _ := f.Hole(); from != now.Add(-2*time.Hour).UnixMilli() {
		t.Fatalf("hole starts %s, want the retention's start %s", time.UnixMilli(from).UTC(), now.Add(-2*time.Hour))
	}
	f.fill(context.Background())
	a.Close()
	a = openStore(t, dir)
	defer a.Close()
	got := raw(t, a.DB(), now.Add(-3*time.Hour), now)
	want := raw(t, peer.DB(), now.Add(-2*time.Hour).Add(time.Millisecond), now)
	if len(want) != len(series) || len(got) != len(want) {
		t.Fatalf("%d series after the fill, peer %d (want %d)", len(got), len(want), len(series))
	}
	for k, ws := range want {
		if gs := got[k]; fmt.Sprint(gs) != fmt.Sprint(ws) {
			t.Errorf("%s: %d samples after the fill, peer %d over the retention", k, len(gs), len(ws))
		}
	}
}

// TestFillNoPeer: with no peer listed the fill retries, then gives up
// without failing, leaving the store as it was.
func TestFillNoPeer(t *testing.T) {
	a := openStore(t, t.TempDir())
	defer a.Close()
	reg := prometheus.NewRegistry()
	f, err := New(Options{DB: a.DB(), Interval: 10 * time.Millisecond, Retention: time.Hour, Settle: time.Millisecond, Lag: time.Millisecond, GiveUp: 50 * time.Millisecond,
		Peers: func(context.Context) ([]string, error) { return nil, nil }, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if f.Attempted() {
		t.Fatal("attempted before Run")
	}
	// Run lasts as long as kubemon: it returns only when its context ends.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	for deadline := time.Now().Add(10 * time.Second); !f.Attempted(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("not attempted 10 s after Run began")
		}
	}
	time.Sleep(200 * time.Millisecond) // past GiveUp
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) before its context ended", err)
	default:
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(f.fills.WithLabelValues("no_peer")); !(n >= 2) {
		t.Errorf("no_peer attempts %v, want at least 2", n)
	}
	if n := testutil.ToFloat64(f.fills.WithLabelValues("given_up")); n != 1 {
		t.Errorf("given_up %v, want 1", n)
	}
	if n := len(a.DB().Blocks()); n != 0 {
		t.Errorf("%d blocks, want none", n)
	}
}

// TestFillBadPeer: a peer that is not an HTTP URL, or answers garbage, is
// an error naming the peer; nothing is written.
func TestFillBadPeer(t *testing.T) {
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write([]byte("not snappy"))
	}))
	defer garbage.Close()
	a := openStore(t, t.TempDir())
	defer a.Close()
	f, err := New(Options{DB: a.DB(), Interval: step, Retention: time.Hour, Settle: time.Millisecond, Lag: time.Millisecond,
		Peers: func(context.Context) ([]string, error) { return []string{"ftp://x", garbage.URL}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	err = f.fillOnce(context.Background())
	if err == nil || !strings.Contains(err.Error(), "peer ftp://x") || !strings.Contains(err.Error(), "peer "+garbage.URL) {
		t.Fatalf("err %v, want both peers named", err)
	}
	entries, _ := os.ReadDir(a.DB().Dir())
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "01") || e.Name() == "replica-fill.tmp" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}
