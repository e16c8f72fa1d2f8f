package scrape

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kubemon/kubemon/internal/model"
)

func TestClientErrors(t *testing.T) {
	valid := readFixture(t, "k8s-1.35_stats_summary.json")
	mux := http.NewServeMux()
	mux.HandleFunc("/ok/stats/summary", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		w.Write(valid)
	})
	mux.HandleFunc("/ok/pods", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"kind":"PodList","items":[{"metadata":{"name":"p","namespace":"ns"},"spec":{"containers":[{"name":"c","resources":{"requests":{"cpu":"250m","memory":"64Mi"}}}]}}]}`))
	})
	mux.HandleFunc("/big/stats/summary", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat(" ", 4096)))
	})
	mux.HandleFunc("/slow/stats/summary", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	mux.HandleFunc("/bad/stats/summary", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"node":`)) })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	c := NewClient(ClientOptions{BearerToken: "tok", Timeout: 200 * time.Millisecond, MaxBytes: 1024, FetchPods: true})
	ns, err := NewClient(ClientOptions{BearerToken: "tok", FetchPods: true}).Scrape(context.Background(), model.Target{Node: "n", URL: srv.URL + "/ok"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ns.Entries) == 0 || len(ns.Pods) != 1 || ns.Pods[0].Containers[0].CPURequest != 0.25 || ns.Pods[0].Containers[0].MemoryRequest != 64<<20 {
		t.Fatalf("scrape: %d entries, pods %+v", len(ns.Entries), ns.Pods)
	}
	tests := []struct {
		name, path, want string
		is               error
	}{
		{"unauthorized", "/ok", "401 Unauthorized", nil},
		{"oversized", "/big", "over 1024 bytes", ErrTooLarge},
		{"slow", "/slow", "deadline exceeded", context.DeadlineExceeded},
		{"malformed", "/bad", "decode summary", nil},
		{"not found", "/nope", "404", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := c
			if tt.name == "unauthorized" {
				cl = NewClient(ClientOptions{})
			}
			_, err := cl.Scrape(context.Background(), model.Target{Node: "n", URL: srv.URL + tt.path})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want errors.Is %v", err, tt.is)
			}
		})
	}
}

type fakeScraper struct {
	mu    sync.Mutex
	calls map[string][]time.Time
	slow  map[string]bool
}

func (f *fakeScraper) Scrape(ctx context.Context, t model.Target) (*model.NodeStats, error) {
	f.mu.Lock()
	f.calls[t.Node] = append(f.calls[t.Node], time.Now())
	slow := f.slow[t.Node]
	f.mu.Unlock()
	if slow {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if t.Node == "failing" {
		return nil, errors.New("boom")
	}
	return &model.NodeStats{Node: t.Node}, nil
}

func TestManager(t *testing.T) {
	f := &fakeScraper{calls: map[string][]time.Time{}, slow: map[string]bool{"slow": true}}
	var mu sync.Mutex
	targets := []model.Target{{Node: "a"}, {Node: "b"}, {Node: "slow"}, {Node: "failing"}}
	got := map[string]int{}
	var failed []*model.NodeStats
	reg := prometheus.NewRegistry()
	m := NewManager(ManagerOptions{
		Interval: 100 * time.Millisecond, Scraper: f, Registerer: reg,
		Targets: func() []model.Target { mu.Lock(); defer mu.Unlock(); return targets },
		Handle: func(_ context.Context, t model.Target, s *model.NodeStats, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				got[t.Node]++
			} else {
				failed = append(failed, s)
			}
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = m.Run(ctx); close(done) }()
	time.Sleep(550 * time.Millisecond)
	// A node removed from the targets stops being scraped.
	mu.Lock()
	targets = targets[1:]
	mu.Unlock()
	m.Reconcile(ctx)
	f.mu.Lock()
	aCalls := len(f.calls["a"])
	f.mu.Unlock()
	time.Sleep(300 * time.Millisecond)
	// The state of each node's last scrape, as /api/v1/targets shows it.
	var health []string
	for _, st := range m.Targets() {
		health = append(health, st.Target.Node+"="+st.Health+":"+st.LastError)
		if st.Health != HealthUnknown && (st.LastScrape.IsZero() || st.LastDuration <= 0) {
			t.Errorf("%s: last scrape %v, %v", st.Target.Node, st.LastScrape, st.LastDuration)
		}
	}
	if want := []string{"b=up:", "failing=down:boom", "slow=unknown:"}; !slices.Equal(health, want) {
		t.Errorf("Targets() = %q, want %q (the slow node's scrape never ended)", health, want)
	}
	cancel()
	<-done

	mu.Lock()
	defer mu.Unlock()
	// The slow node never answers, yet the others were scraped every interval.
	if got["b"] < 4 || got["a"] < 3 {
		t.Errorf("scrapes a=%d b=%d: a slow node must not delay the others", got["a"], got["b"])
	}
	f.mu.Lock()
	if len(f.calls["a"]) != aCalls {
		t.Errorf("removed node scraped %d more times", len(f.calls["a"])-aCalls)
	}
	// Successive scrapes of one node are about one interval apart, and
	// never less than half of one (a late timer skips the next slot).
	bc := f.calls["b"]
	for i := 1; i < len(bc); i++ {
		if d := bc[i].Sub(bc[i-1]); d < 50*time.Millisecond {
			t.Errorf("scrapes of b %v apart, want ~100ms", d)
		}
	}
	f.mu.Unlock()
	if n := testutil.ToFloat64(m.failures.WithLabelValues("failing")); n < 4 {
		t.Errorf("failures for the failing node: %v", n)
	}
	// A failed scrape hands on its node and start time (the node's
	// KubeletUp 0 is stamped with it), nothing else.
	for _, s := range failed {
		if s == nil || s.Node != "failing" || s.ScrapeTime.IsZero() || time.Since(s.ScrapeTime) > time.Minute || s.Entries != nil {
			t.Errorf("a failed scrape's stats: %+v", s)
		}
	}
	if len(failed) < 4 {
		t.Errorf("%d failed scrapes handled", len(failed))
	}
}

func TestOffsetSpread(t *testing.T) {
	const n, interval = 1000, 10 * time.Second
	var buckets [10]int
	for i := range n {
		off := Offset("node-"+string(rune('a'+i%26))+time.Duration(i).String(), interval)
		if off < 0 || off >= interval {
			t.Fatalf("offset %v outside the interval", off)
		}
		buckets[off/time.Second]++
	}
	for i, b := range buckets {
		if b < n/10/2 || b > n/10*2 {
			t.Errorf("second %d holds %d of %d nodes: offsets are not spread", i, b, n)
		}
	}
	if a, b := Offset("x", interval), Offset("x", interval); a != b {
		t.Error("offset is not stable")
	}
}

func TestNextSlot(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct{ now, want time.Duration }{
		{0, 3 * time.Second},
		{3 * time.Second, 13 * time.Second},
		{4 * time.Second, 13 * time.Second},
		{12 * time.Second, 13 * time.Second},
	}
	for _, tt := range tests {
		if got := nextSlot(base.Add(tt.now), 10*time.Second, 3*time.Second); !got.Equal(base.Add(tt.want)) {
			t.Errorf("now+%v: %v, want +%v", tt.now, got.Sub(base), tt.want)
		}
	}
}

func TestPodsCache(t *testing.T) {
	payloads := [][]byte{readFixture(t, "k8s-1.34_stats_summary.json"), readFixture(t, "k8s-1.35_stats_summary.json")}
	var which, podsCalls atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/stats/summary", func(w http.ResponseWriter, r *http.Request) { w.Write(payloads[which.Load()]) })
	mux.HandleFunc("/pods", func(w http.ResponseWriter, r *http.Request) {
		podsCalls.Add(1)
		w.Write([]byte(`{"items":[]}`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := NewClient(ClientOptions{FetchPods: true})
	tg := model.Target{Node: "n", URL: srv.URL}
	scrape := func() {
		t.Helper()
		if _, err := c.Scrape(context.Background(), tg); err != nil {
			t.Fatal(err)
		}
	}
	scrape()
	scrape()
	if n := podsCalls.Load(); n != 1 {
		t.Errorf("same pods and start times: /pods fetched %d times, want 1", n)
	}
	which.Store(1) // other pods
	scrape()
	if n := podsCalls.Load(); n != 2 {
		t.Errorf("pods changed: /pods fetched %d times, want 2", n)
	}
	c.Forget("n")
	scrape()
	if n := podsCalls.Load(); n != 3 {
		t.Errorf("after Forget: /pods fetched %d times, want 3", n)
	}
	c.o.PodsMaxAge = time.Nanosecond
	scrape()
	if n := podsCalls.Load(); n != 4 {
		t.Errorf("cache older than PodsMaxAge: /pods fetched %d times, want 4", n)
	}
}

// TestScrapeTimeoutIsWhole: the timeout bounds one scrape as a whole, not
// each of its requests: three requests each just under the timeout fail
// the scrape instead of taking three timeouts.
func TestScrapeTimeoutIsWhole(t *testing.T) {
	const timeout = 600 * time.Millisecond
	slow := func(body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(timeout * 2 / 3):
			case <-r.Context().Done():
				return
			}
			w.Write(body)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/stats/summary", slow(readFixture(t, "k8s-1.35_stats_summary.json")))
	mux.HandleFunc("/metrics/cadvisor", slow(readFixture(t, "k8s-1.35_metrics_cadvisor.txt")))
	mux.HandleFunc("/pods", slow([]byte(`{"items":[]}`)))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := NewClient(ClientOptions{FetchPods: true, Cadvisor: true, Timeout: timeout})
	start := time.Now()
	_, err := c.Scrape(context.Background(), model.Target{Node: "n", URL: srv.URL})
	took := time.Since(start)
	if err == nil {
		t.Errorf("three requests of %v each under a %v timeout: no error after %v, want the scrape cut at the timeout", timeout*2/3, timeout, took)
	}
	if took > timeout*3/2 {
		t.Errorf("the scrape took %v, want it bounded near the %v timeout", took, timeout)
	}
}

// TestShape: the pods' shape ignores their order, the node and system
// containers, and changes with any pod, container or start time.
func TestShape(t *testing.T) {
	e := func(l model.Level, ns, pod, c string, start int64) model.Entry {
		return model.Entry{Object: model.Object{Level: l, Node: "n", Namespace: ns, Pod: pod, Container: c}, Start: start}
	}
	base := []model.Entry{
		e(model.LevelNode, "", "", "", 1),
		e(model.LevelPod, "a", "p", "", 10),
		e(model.LevelContainer, "a", "p", "c", 11),
		e(model.LevelContainer, "a", "p", "d", 12),
	}
	h := shape(base)
	if h == 0 {
		t.Fatal("shape of two containers is 0")
	}
	same := [][]model.Entry{
		{base[3], base[0], base[2], base[1]},
		append([]model.Entry{e(model.LevelSysContainer, "", "", "kubelet", 5)}, base...),
		{e(model.LevelNode, "", "", "", 99), base[1], base[2], base[3]},
	}
	for i, es := range same {
		if got := shape(es); got != h {
			t.Errorf("case %d: shape %x, want %x", i, got, h)
		}
	}
	differ := [][]model.Entry{
		{base[0], base[1], base[2]},
		{base[0], base[1], base[2], e(model.LevelContainer, "a", "p", "d", 13)},
		{base[0], base[1], base[2], e(model.LevelContainer, "a", "p", "e", 12)},
		{base[0], base[1], base[2], e(model.LevelContainer, "b", "p", "d", 12)},
		{base[0], base[1], base[2], e(model.LevelContainer, "a", "q", "d", 12)},
		{base[0], e(model.LevelPod, "a", "p", "", 9), base[2], base[3]},
		{base[0], base[1], e(model.LevelContainer, "a", "pc", "", 11), base[3]}, // the separators count
	}
	for i, es := range differ {
		if got := shape(es); got == h {
			t.Errorf("case %d: shape unchanged", i)
		}
	}
}
