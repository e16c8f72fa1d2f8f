package promapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/kubemon/kubemon/internal/model"
)

// gate is a Queryable whose Selects wait until release is closed or their
// context ends (a slow query), then read the wrapped storage. Each Select
// is counted and announced on entered.
type gate struct {
	storage.Queryable
	release chan struct{}
	entered chan struct{}
	n       atomic.Int32
	once    sync.Once
}

func newGate(q storage.Queryable) *gate {
	return &gate{Queryable: q, release: make(chan struct{}), entered: make(chan struct{}, 100)}
}

// open releases every Select, now and later.
func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

// openAtEnd opens g when the test ends, before the test server closes
// (cleanups run last registered first), so that a failed test does not
// leave requests hanging.
func (g *gate) openAtEnd(t *testing.T) { t.Cleanup(g.open) }

func (g *gate) Querier(mint, maxt int64) (storage.Querier, error) {
	q, err := g.Queryable.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return &gatedQuerier{Querier: q, g: g}, nil
}

type gatedQuerier struct {
	storage.Querier
	g *gate
}

func (q *gatedQuerier) Select(ctx context.Context, sorted bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	q.g.n.Add(1)
	q.g.entered <- struct{}{}
	select {
	case <-q.g.release:
	case <-ctx.Done():
	}
	return q.Querier.Select(ctx, sorted, hints, ms...)
}

// waitFor waits until cond holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

type response struct {
	code int
	env  envelope
	err  error
}

// doAsync sends a GET in a goroutine; the response arrives on the channel.
func (e *testEnv) doAsync(path string, params url.Values) <-chan response {
	ch := make(chan response, 1)
	go func() {
		var r response
		resp, err := e.srv.Client().Get(e.srv.URL + path + "?" + params.Encode())
		if err != nil {
			r.err = err
		} else {
			r.code = resp.StatusCode
			r.err = json.NewDecoder(resp.Body).Decode(&r.env)
			resp.Body.Close()
		}
		ch <- r
	}()
	return ch
}

// recv returns the response from ch, failing the test after 10 s.
func recv(t *testing.T, what string, ch <-chan response) response {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("%s: %v", what, r.err)
		}
		return r
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no answer in 10 s", what)
		return response{}
	}
}

// wait waits for a Select to start, failing the test after 10 s.
func (g *gate) wait(t *testing.T, what string) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: did not reach storage in 10 s", what)
	}
}

func TestQueryMaxSamples(t *testing.T) {
	db := openTestDB(t)
	small := newTestEnv(t, db, func(o *Options) { o.MaxSamples = 60 })
	// Prometheus's message, type and status for ErrTooManySamples.
	const msg = "query processing would load too many samples into memory in query execution"
	for _, c := range []struct {
		path   string
		params url.Values
	}{
		{"/api/v1/query", url.Values{"query": {cpuMetric + "[10m]"}, "time": {unixString(now)}}}, // 3 × 61 samples
		{"/api/v1/query_range", url.Values{"query": {cpuMetric}, "start": {unixString(t0)}, "end": {unixString(now)}, "step": {"10"}}},
	} {
		code, env := small.do(t, http.MethodGet, c.path, c.params)
		if code != http.StatusUnprocessableEntity || env.Status != "error" || env.ErrorType != "execution" || env.Error != msg {
			t.Errorf("%s %v: %d %s %q, want 422 execution %q", c.path, c.params, code, env.ErrorType, env.Error, msg)
		}
	}
	// A range is left-open: [10m] holds 60 samples of a series, [601s] 61.
	small.mustSucceed(t, http.MethodGet, "/api/v1/query", url.Values{"query": {sel(cpuMetric, model.LabelPod, "web-1") + "[10m]"}, "time": {unixString(now)}})
	if code, env := small.do(t, http.MethodGet, "/api/v1/query", url.Values{"query": {sel(cpuMetric, model.LabelPod, "web-1") + "[601s]"}, "time": {unixString(now)}}); code != 422 || env.Error != msg {
		t.Errorf("61 samples, limit 60: %d %s %q", code, env.ErrorType, env.Error)
	}
	// The default is Prometheus's 50,000,000.
	if DefaultMaxSamples != 50_000_000 {
		t.Errorf("DefaultMaxSamples %d", DefaultMaxSamples)
	}
	newTestEnv(t, db, nil).mustSucceed(t, http.MethodGet, "/api/v1/query", url.Values{"query": {cpuMetric + "[10m]"}, "time": {unixString(now)}})
}

func TestQueryTimeout(t *testing.T) {
	db := openTestDB(t)
	g := newGate(db) // never released: every query is slower than any timeout
	e := newTestEnv(t, g, func(o *Options) { o.QueryTimeout = 200 * time.Millisecond })
	g.openAtEnd(t)
	for _, c := range []struct {
		name   string
		path   string
		params url.Values
	}{
		{"query", "/api/v1/query", url.Values{"query": {"sum(rate(" + cpuMetric + "[5m]))"}}},
		{"query_range", "/api/v1/query_range", url.Values{"query": {"sum(rate(" + cpuMetric + "[5m]))"}, "start": {unixString(t0)}, "end": {unixString(now)}, "step": {"10"}}},
		// The timeout parameter does not extend the configured timeout.
		{"query, longer timeout parameter", "/api/v1/query", url.Values{"query": {"sum(rate(" + cpuMetric + "[5m]))"}, "timeout": {"1h"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, env := e.do(t, http.MethodGet, c.path, c.params)
			if code != http.StatusServiceUnavailable || env.ErrorType != "timeout" || !strings.HasPrefix(env.Error, "query timed out in ") {
				t.Errorf("%d %+v, want 503 timeout", code, env)
			}
		})
	}
	// A shorter timeout parameter wins over the configured one.
	long := newTestEnv(t, g, func(o *Options) { o.QueryTimeout = time.Hour })
	code, env := long.do(t, http.MethodGet, "/api/v1/query", url.Values{"query": {cpuMetric}, "timeout": {"100ms"}})
	if code != http.StatusServiceUnavailable || env.ErrorType != "timeout" {
		t.Errorf("timeout=100ms, QueryTimeout 1h: %d %+v, want 503 timeout", code, env)
	}
	// And a query faster than the timeout succeeds.
	newTestEnv(t, db, func(o *Options) { o.QueryTimeout = time.Minute }).mustSucceed(t, http.MethodGet, "/api/v1/query", url.Values{"query": {"sum(rate(" + cpuMetric + "[5m]))"}})
}

func TestQueryConcurrency(t *testing.T) {
	for _, dir := range []string{"", "active"} {
		name := "in memory"
		if dir != "" {
			name = "active query log"
			dir = filepath.Join(t.TempDir(), dir)
		}
		t.Run(name, func(t *testing.T) {
			db := openTestDB(t)
			g := newGate(db)
			e := newTestEnv(t, g, func(o *Options) { o.MaxConcurrency = 1; o.ActiveQueryDir = dir })
			g.openAtEnd(t)
			q := func(query string, kv ...string) url.Values {
				v := url.Values{"query": {query}}
				for i := 0; i < len(kv); i += 2 {
					v.Set(kv[i], kv[i+1])
				}
				return v
			}

			// A takes the only slot and holds it in storage.
			a := e.doAsync("/api/v1/query", q("sum("+cpuMetric+")"))
			g.wait(t, "A")
			if dir != "" {
				b, err := os.ReadFile(filepath.Join(dir, "queries.active"))
				if err != nil || !strings.Contains(string(b), `"query":"sum(`+cpuMetric+`)"`) {
					t.Errorf("queries.active while A runs: %q, %v", b, err)
				}
			}

			// B waits for the slot until its own timeout, never reaching storage.
			code, env := e.do(t, http.MethodGet, "/api/v1/query", q(memMetric, "timeout", "1s"))
			if code != http.StatusServiceUnavailable || env.ErrorType != "timeout" || env.Error != "query timed out in query queue" {
				t.Errorf("B while A runs: %d %+v, want 503 timeout in the queue", code, env)
			}
			if n := g.n.Load(); n != 1 {
				t.Fatalf("B reached storage while A held the only slot: %d selects", n)
			}

			// C waits; D waits and is canceled while waiting.
			c := e.doAsync("/api/v1/query", q(coresMetric))
			waitFor(t, "C to wait for a slot", func() bool { return e.api.tracker.waiting.Load() == 1 })
			ctx, cancel := context.WithCancel(context.Background())
			d := make(chan int, 1)
			go func() {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/api/v1/query?"+q(memMetric).Encode(), nil)
				resp, err := e.srv.Client().Do(req)
				if err == nil {
					resp.Body.Close()
				}
				d <- 0
			}()
			waitFor(t, "D to wait for a slot", func() bool { return e.api.tracker.waiting.Load() == 2 })
			cancel()
			<-d
			waitFor(t, "D to leave the queue", func() bool { return e.api.tracker.waiting.Load() == 1 })
			if n := g.n.Load(); n != 1 {
				t.Fatalf("C or D reached storage while A held the only slot: %d selects", n)
			}

			// A ends, then C runs.
			g.open()
			for name, ch := range map[string]<-chan response{"A": a, "C": c} {
				if r := recv(t, name, ch); r.code != http.StatusOK || r.env.Status != "success" {
					t.Errorf("%s: %d %+v", name, r.code, r.env)
				}
			}
			if n := g.n.Load(); n != 2 {
				t.Errorf("%d selects, want 2 (A and C)", n)
			}
			if w := e.api.tracker.waiting.Load(); w != 0 {
				t.Errorf("%d queries still waiting", w)
			}
		})
	}
}

// TestQueryCanceledWaiting checks that a query whose request is canceled
// while it waits for a slot answers 499 "canceled", as Prometheus does.
func TestQueryCanceledWaiting(t *testing.T) {
	db := openTestDB(t)
	g := newGate(db)
	e := newTestEnv(t, g, func(o *Options) { o.MaxConcurrency = 1 })
	g.openAtEnd(t)
	a := e.doAsync("/api/v1/query", url.Values{"query": {cpuMetric}})
	g.wait(t, "A")
	mux := http.NewServeMux()
	e.api.Register(mux)
	ctx, cancel := context.WithCancel(context.Background())
	rec := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		r := httptest.NewRecorder()
		mux.ServeHTTP(r, httptest.NewRequestWithContext(ctx, http.MethodGet, "/api/v1/query?query="+url.QueryEscape(memMetric), nil))
		rec <- r
	}()
	waitFor(t, "the query to wait for a slot", func() bool { return e.api.tracker.waiting.Load() == 1 })
	cancel()
	var r *httptest.ResponseRecorder
	select {
	case r = <-rec:
	case <-time.After(10 * time.Second):
		t.Fatal("canceled query: no answer in 10 s")
	}
	var env envelope
	strictDecode(t, r.Body.Bytes(), &env)
	if r.Code != statusClientClosedConnection || env.ErrorType != "canceled" || env.Error != "query was canceled in query queue" {
		t.Errorf("canceled while waiting: %d %+v, want 499 canceled", r.Code, env)
	}
	g.open()
	if r := recv(t, "A", a); r.code != http.StatusOK {
		t.Errorf("A: %d %+v", r.code, r.env)
	}
}

// TestCloseEndsQueries checks that Close cancels the queries in flight and
// waits for them before closing the engine, and that queries after it are
// refused.
func TestCloseEndsQueries(t *testing.T) {
	db := openTestDB(t)
	g := newGate(db) // never released
	e := newTestEnv(t, g, func(o *Options) { o.MaxConcurrency = 1; o.ActiveQueryDir = t.TempDir() })
	g.openAtEnd(t)
	a := e.doAsync("/api/v1/query", url.Values{"query": {cpuMetric}})
	g.wait(t, "A")
	b := e.doAsync("/api/v1/query", url.Values{"query": {memMetric}})
	waitFor(t, "B to wait for a slot", func() bool { return e.api.tracker.waiting.Load() == 1 })
	if err := e.api.Close(); err != nil {
		t.Fatal(err)
	}
	for name, ch := range map[string]<-chan response{"A": a, "B": b} {
		if r := recv(t, name, ch); r.code != statusClientClosedConnection || r.env.ErrorType != "canceled" {
			t.Errorf("%s after Close: %d %+v, want 499 canceled", name, r.code, r.env)
		}
	}
	code, env := e.do(t, http.MethodGet, "/api/v1/query", url.Values{"query": {"1"}})
	if code != http.StatusServiceUnavailable || env.ErrorType != "unavailable" {
		t.Errorf("query after Close: %d %+v, want 503 unavailable", code, env)
	}
	if err := e.api.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
