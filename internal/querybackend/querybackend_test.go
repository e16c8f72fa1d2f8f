package querybackend

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/kubemon/kubemon/internal/api/promapi"
)

// t0 is the first sample's time, in milliseconds.
var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC).UnixMilli()

const step = 15_000 // ms

// backend is a TSDB with an hour of container-shaped series, served by
// kubemon's Prometheus API (the PromQL engine over the TSDB) as a backend.
func backend(t *testing.T) (*tsdb.DB, *httptest.Server) {
	t.Helper()
	db, err := tsdb.Open(t.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	app := db.Appender(context.Background())
	for pod := range 20 {
		ns := fmt.Sprintf("ns%d", pod%3)
		for i := range 240 {
			if pod == 7 && i >= 100 && i < 140 { // a hole in one series
				continue
			}
			ts := t0 + int64(i)*step
			for _, s := range []struct {
				name string
				v    float64
			}{
				{"container_cpu_usage_cores", 0.01*float64(pod) + 0.001*float64(i%17)},
				{"container_memory_working_set_bytes", float64(1<<20*(pod+1) + i*4096)},
			} {
				l := labels.FromStrings("__name__", s.name, "namespace", ns, "pod", fmt.Sprintf("pod-%02d", pod), "container", "app")
				if _, err := app.Append(0, l, ts, s.v); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	api, err := promapi.New(promapi.Options{Queryable: db})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return db, srv
}

type point struct {
	t int64
	f float64
}

func collect(t *testing.T, set storage.SeriesSet) map[string][]point {
	t.Helper()
	out := map[string][]point{}
	var prev labels.Labels
	for set.Next() {
		s := set.At()
		if !prev.IsEmpty() && labels.Compare(prev, s.Labels()) >= 0 {
			t.Errorf("series not sorted: %s after %s", s.Labels(), prev)
		}
		prev = s.Labels()
		it := s.Iterator(nil)
		var ps []point
		for it.Next() != 0 {
			ts, f := it.At()
			ps = append(ps, point{ts, f})
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		out[s.Labels().String()] = ps
	}
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSelectMatchesLocal(t *testing.T) {
	db, srv := backend(t)
	remote, err := New(Options{URL: srv.URL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	end := t0 + 239*step
	cases := []struct {
		name       string
		start, end int64
		ms         []*labels.Matcher
	}{
		{"one series, whole hour", t0, end, []*labels.Matcher{
			labels.MustNewMatcher(labels.MatchEqual, "__name__", "container_cpu_usage_cores"),
			labels.MustNewMatcher(labels.MatchEqual, "pod", "pod-03")}},
		{"regexp, across the hole", t0 + 90*step, t0 + 150*step, []*labels.Matcher{
			labels.MustNewMatcher(labels.MatchEqual, "__name__", "container_memory_working_set_bytes"),
			labels.MustNewMatcher(labels.MatchRegexp, "pod", "pod-0[5-9]")}},
		{"bounds on samples (inclusive)", t0 + 10*step, t0 + 20*step, []*labels.Matcher{
			labels.MustNewMatcher(labels.MatchRegexp, "__name__", "container_.*"),
			labels.MustNewMatcher(labels.MatchNotEqual, "namespace", "ns1")}},
		{"nothing in range", t0 - 3600_000, t0 - 1, []*labels.Matcher{
			labels.MustNewMatcher(labels.MatchEqual, "__name__", "container_cpu_usage_cores")}},
		{"no such series", t0, end, []*labels.Matcher{
			labels.MustNewMatcher(labels.MatchEqual, "__name__", "nope")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lq, err := db.Querier(c.start, c.end)
			if err != nil {
				t.Fatal(err)
			}
			defer lq.Close()
			rq, err := remote.Querier(c.start, c.end)
			if err != nil {
				t.Fatal(err)
			}
			want := collect(t, lq.Select(ctx, true, nil, c.ms...))
			got := collect(t, rq.Select(ctx, true, nil, c.ms...))
			if len(got) != len(want) {
				t.Fatalf("%d series, want %d", len(got), len(want))
			}
			n := 0
			for k, w := range want {
				g, ok := got[k]
				if !ok {
					t.Errorf("series %s missing", k)
					continue
				}
				if len(g) != len(w) {
					t.Errorf("%s: %d samples, want %d", k, len(g), len(w))
					continue
				}
				for i := range w {
					if g[i].t != w[i].t || !(math.Abs(g[i].f-w[i].f) <= 1e-12*math.Abs(w[i].f)) {
						t.Errorf("%s: sample %d = %v, want %v", k, i, g[i], w[i])
						break
					}
				}
				n += len(w)
			}
			t.Logf("%d series, %d samples", len(want), n)
		})
	}
}

// TestEngineOverBackend runs PromQL on the local engine over the backend
// and over the TSDB directly: the answers must be the same.
func TestEngineOverBackend(t *testing.T) {
	db, srv := backend(t)
	remote, err := New(Options{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	eng := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e7, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	ctx := context.Background()
	for _, q := range []string{
		`sum by (namespace) (container_cpu_usage_cores)`,
		`topk(3, container_cpu_usage_cores{namespace="ns1"})`,
		`avg_over_time(container_memory_working_set_bytes{pod="pod-07"}[10m])`,
		`max_over_time(container_cpu_usage_cores[1h])`,
	} {
		for _, ts := range []int64{t0 + 30*step, t0 + 125*step, t0 + 239*step} {
			at := time.UnixMilli(ts)
			run := func(qa storage.Queryable) promql.Vector {
				qry, err := eng.NewInstantQuery(ctx, qa, nil, q, at)
				if err != nil {
					t.Fatal(err)
				}
				defer qry.Close()
				res := qry.Exec(ctx)
				if res.Err != nil {
					t.Fatalf("%s at %d: %v", q, ts, res.Err)
				}
				v, err := res.Vector()
				if err != nil {
					t.Fatal(err)
				}
				// The order of a vector is unspecified.
				slices.SortFunc(v, func(a, b promql.Sample) int { return labels.Compare(a.Metric, b.Metric) })
				return v
			}
			want, got := run(db), run(remote)
			if len(want) == 0 {
				t.Fatalf("%s at %d: no result from the TSDB", q, ts)
			}
			if len(got) != len(want) {
				t.Fatalf("%s at %d: %d results over the backend, want %d", q, ts, len(got), len(want))
			}
			for i := range want {
				if !labels.Equal(got[i].Metric, want[i].Metric) || !(math.Abs(got[i].F-want[i].F) <= 1e-9*math.Abs(want[i].F)) {
					t.Errorf("%s at %d: %s %v, want %s %v", q, ts, got[i].Metric, got[i].F, want[i].Metric, want[i].F)
				}
			}
		}
	}
}

func TestLabelsAndSeries(t *testing.T) {
	_, srv := backend(t)
	remote, err := New(Options{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	q, err := remote.Querier(t0, t0+239*step)
	if err != nil {
		t.Fatal(err)
	}
	names, _, err := q.LabelNames(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, ",") != "__name__,container,namespace,pod" {
		t.Errorf("label names %v", names)
	}
	vals, _, err := q.LabelValues(ctx, "namespace", nil, labels.MustNewMatcher(labels.MatchEqual, "pod", "pod-04"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(vals, ",") != "ns1" {
		t.Errorf("namespace of pod-04: %v, want ns1", vals)
	}
	vals, _, err = q.LabelValues(ctx, "pod", &storage.LabelHints{Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(vals, ",") != "pod-00,pod-01,pod-02,pod-03,pod-04" {
		t.Errorf("first five pods %v", vals)
	}
	set := q.Select(ctx, true, &storage.SelectHints{Start: t0, End: t0 + 239*step, Func: "series"},
		labels.MustNewMatcher(labels.MatchEqual, "namespace", "ns2"))
	got := collect(t, set)
	// pods 2, 5, 8, 11, 14, 17 × two names
	if len(got) != 12 {
		t.Errorf("%d series in ns2, want 12: %v", len(got), got)
	}
	for k, ps := range got {
		if len(ps) != 0 {
			t.Errorf("series %s has %d samples from the series API", k, len(ps))
		}
	}
}

func TestBadBackends(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "http://", "http://h/?a=b", "::"} {
		if _, err := New(Options{URL: u}); err == nil {
			t.Errorf("New(%q): no error", u)
		}
	}
	ms := labels.MustNewMatcher(labels.MatchEqual, "__name__", "x")
	cases := []struct {
		name    string
		handler http.HandlerFunc
		opts    Options
		want    string
	}{
		{"error envelope", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusUnprocessableEntity)
			fmt.Fprint(w, `{"status":"error","errorType":"execution","error":"query processing would load too many samples"}`)
		}, Options{}, "422 Unprocessable Entity: execution: query processing would load too many samples"},
		{"not JSON", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprint(w, "<html>upstream down</html>")
		}, Options{}, `502 Bad Gateway: "<html>upstream down</html>"`},
		{"wrong result type", func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
		}, Options{}, `result type "vector", want matrix`},
		{"bad sample", func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"x"},"values":[[1,"zz"]]}]}}`)
		}, Options{}, `sample value`},
		{"too big", func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"matrix","result":[`+strings.Repeat(" ", 4096)+`]}}`)
		}, Options{MaxBytes: 1024}, "answer over 1024 bytes"},
		{"slow", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body) // then the server sees the client go
			<-r.Context().Done()
		}, Options{Timeout: 100 * time.Millisecond}, "context deadline exceeded"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(c.handler)
			defer srv.Close()
			c.opts.URL = srv.URL
			remote, err := New(c.opts)
			if err != nil {
				t.Fatal(err)
			}
			q, _ := remote.Querier(0, 1000)
			set := q.Select(context.Background(), true, nil, ms)
			if set.Next() {
				t.Fatal("a series from a failed query")
			}
			if set.Err() == nil || !strings.Contains(set.Err().Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", set.Err(), c.want)
			}
			if !strings.Contains(set.Err().Error(), srv.URL) {
				t.Errorf("error %v does not name the backend", set.Err())
			}
		})
	}
}
