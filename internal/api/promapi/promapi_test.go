package promapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/testutil/promsel"
	"github.com/kubemon/kubemon/internal/version"
)

// The test data's series: two of kubemon's, named by the model, and one it
// does not write. Their label keys are kubemon's (model.Label*).
var (
	cpuMetric = model.PromName(model.LevelContainer, model.CPUUsage)
	memMetric = model.PromName(model.LevelContainer, model.MemoryWorkingSet)
)

const (
	coresMetric = "machine_cpu_cores"

	scrapeInterval = 10 * time.Second
	numScrapes     = 61 // t0 .. t0+10m inclusive
)

var (
	// t0 is the first sample; now is the last one (t0 + 10m).
	t0  = time.Unix(1_700_000_000, 0).UTC()
	now = t0.Add(time.Duration(numScrapes-1) * scrapeInterval)
)

// cpuSeries are counters growing by perSecond every second.
var cpuSeries = []struct {
	namespace, pod, container, node string
	perSecond                       float64
}{
	{"default", "web-1", "app", "node-a", 0.5},
	{"default", "web-2", "app", "node-b", 1.0},
	{"kube-system", "coredns-1", "coredns", "node-a", 0.5},
}

// memValue is the gauge value of memMetric of pod web-1 at scrape i.
func memValue(i int) float64 { return 100e6 + float64(i)*1000 }

func cpuLabels(ns, pod, container, node string) labels.Labels {
	return labels.FromStrings("__name__", cpuMetric, model.LabelNamespace, ns, model.LabelPod, pod, model.LabelContainer, container, model.LabelNode, node)
}

// sel is the PromQL selector name{k1="v1",...} (name may be empty). A key
// may end with its operator (=~, !=, !~); the default is =.
func sel(name string, kv ...string) string { return name + promsel.Matchers(kv...) }

// sumBy is "sum by (label) (expr)".
func sumBy(label, expr string) string { return "sum by (" + label + ") (" + expr + ")" }

// openTestDB opens a TSDB in a temporary directory and fills it with:
//   - the three cpuSeries counters, sampled every 10s for 10m;
//   - memMetric of container app of pod default/web-1 on node-a = memValue(i);
//   - memMetric of container coredns of pod kube-system/coredns-1 on node-a = 5e7;
//   - coresMetric of node-a = 8 and of node-b = 4.
func openTestDB(t *testing.T) *tsdb.DB {
	t.Helper()
	db, err := tsdb.Open(t.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		t.Fatalf("tsdb.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("closing tsdb: %v", err)
		}
	})

	app := db.Appender(context.Background())
	add := func(ls labels.Labels, ts time.Time, v float64) {
		t.Helper()
		if _, err := app.Append(0, ls, ts.UnixMilli(), v); err != nil {
			t.Fatalf("append %s: %v", ls, err)
		}
	}
	for i := range numScrapes {
		ts := t0.Add(time.Duration(i) * scrapeInterval)
		secs := float64(i) * scrapeInterval.Seconds()
		for _, s := range cpuSeries {
			add(cpuLabels(s.namespace, s.pod, s.container, s.node), ts, s.perSecond*secs)
		}
		add(labels.FromStrings("__name__", memMetric, model.LabelNamespace, "default", model.LabelPod, "web-1", model.LabelContainer, "app", model.LabelNode, "node-a"), ts, memValue(i))
		add(labels.FromStrings("__name__", memMetric, model.LabelNamespace, "kube-system", model.LabelPod, "coredns-1", model.LabelContainer, "coredns", model.LabelNode, "node-a"), ts, 5e7)
		add(labels.FromStrings("__name__", coresMetric, model.LabelNode, "node-a"), ts, 8)
		add(labels.FromStrings("__name__", coresMetric, model.LabelNode, "node-b"), ts, 4)
	}
	if err := app.Commit(); err != nil {
		t.Fatalf("commit: %v", err)
	}
	return db
}

type testEnv struct {
	api *API
	srv *httptest.Server
	reg *prometheus.Registry
}

func newTestEnv(t *testing.T, q storage.Queryable, mod func(*Options)) *testEnv {
	t.Helper()
	reg := prometheus.NewRegistry()
	o := Options{
		Queryable:  q,
		Registerer: reg,
		Now:        func() time.Time { return now },
	}
	if mod != nil {
		mod(&o)
	}
	api, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		if err := api.Close(); err != nil {
			t.Errorf("API.Close: %v", err)
		}
	})
	return &testEnv{api: api, srv: srv, reg: reg}
}

// envelope is the response envelope. Decoding uses DisallowUnknownFields,
// so a response with any other top-level member fails the test.
type envelope struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
	Infos     []string        `json:"infos"`
}

type queryData struct {
	ResultType string          `json:"resultType"`
	Result     json.RawMessage `json:"result"`
}

// point is a [<unix seconds>, "<value>"] pair, keeping the raw timestamp
// text so its exact formatting can be asserted.
type point struct {
	T string // raw JSON number
	V string
}

func (p *point) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if len(raw) != 2 {
		return fmt.Errorf("point has %d elements, want 2: %s", len(raw), b)
	}
	var n json.Number
	if err := json.Unmarshal(raw[0], &n); err != nil {
		return fmt.Errorf("point timestamp %s is not a number: %w", raw[0], err)
	}
	if err := json.Unmarshal(raw[1], &p.V); err != nil {
		return fmt.Errorf("point value %s is not a string: %w", raw[1], err)
	}
	p.T = n.String()
	return nil
}

func (p point) float(t *testing.T) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(p.V, 64)
	if err != nil {
		t.Fatalf("value %q: %v", p.V, err)
	}
	return f
}

type vectorSample struct {
	Metric map[string]string `json:"metric"`
	Value  point             `json:"value"`
}

type matrixSeries struct {
	Metric map[string]string `json:"metric"`
	Values []point           `json:"values"`
}

func strictDecode(t *testing.T, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
}

// do sends a GET (params in the URL) or a POST (params as a form body).
func (e *testEnv) do(t *testing.T, method, path string, params url.Values) (int, envelope) {
	t.Helper()
	var req *http.Request
	var err error
	switch method {
	case http.MethodPost:
		req, err = http.NewRequest(method, e.srv.URL+path, strings.NewReader(params.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	default:
		u := e.srv.URL + path
		if len(params) > 0 {
			u += "?" + params.Encode()
		}
		req, err = http.NewRequest(method, u, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type = %q, want application/json", method, path, ct)
	}
	var env envelope
	strictDecode(t, body, &env)
	return resp.StatusCode, env
}

// mustSucceed does the request and requires a 200 success envelope.
func (e *testEnv) mustSucceed(t *testing.T, method, path string, params url.Values) envelope {
	t.Helper()
	code, env := e.do(t, method, path, params)
	if code != http.StatusOK || env.Status != "success" {
		t.Fatalf("%s %s?%s: code %d, envelope %+v", method, path, params.Encode(), code, env)
	}
	if env.ErrorType != "" || env.Error != "" {
		t.Fatalf("success envelope has error members: %+v", env)
	}
	return env
}

func decodeQuery[T any](t *testing.T, env envelope, wantType string) T {
	t.Helper()
	var qd queryData
	strictDecode(t, env.Data, &qd)
	if qd.ResultType != wantType {
		t.Fatalf("resultType = %q, want %q (result %s)", qd.ResultType, wantType, qd.Result)
	}
	var res T
	strictDecode(t, qd.Result, &res)
	return res
}

func unixString(tm time.Time) string {
	return strconv.FormatFloat(float64(tm.UnixMilli())/1000, 'f', -1, 64)
}

func approx(a, b float64) bool { return math.Abs(a-b) <= 1e-9 }

func vectorByLabel(t *testing.T, vec []vectorSample, label string) map[string]float64 {
	t.Helper()
	m := map[string]float64{}
	for _, s := range vec {
		m[s.Metric[label]] = s.Value.float(t)
	}
	return m
}

func TestInstantQueryVector(t *testing.T) {
	e := newTestEnv(t, openTestDB(t), nil)
	nowStr := unixString(now)

	tests := []struct {
		name   string
		method string
		params url.Values
		// want maps the value of byLabel to the expected value.
		byLabel string
		want    map[string]float64
		wantTS  string
	}{
		{
			name:    "rate of the counters at the default time (now)",
			method:  http.MethodGet,
			params:  url.Values{"query": {"rate(" + cpuMetric + "[1m])"}},
			byLabel: model.LabelPod,
			want:    map[string]float64{"web-1": 0.5, "web-2": 1.0, "coredns-1": 0.5},
			wantTS:  nowStr,
		},
		{
			name:    "rate of one container via POST form",
			method:  http.MethodPost,
			params:  url.Values{"query": {"rate(" + sel(cpuMetric, model.LabelNamespace, "default", model.LabelPod, "web-1", model.LabelContainer, "app") + "[1m])"}},
			byLabel: model.LabelPod,
			want:    map[string]float64{"web-1": 0.5},
			wantTS:  nowStr,
		},
		{
			name:    "sum by namespace",
			method:  http.MethodGet,
			params:  url.Values{"query": {sumBy(model.LabelNamespace, "rate("+cpuMetric+"[1m])")}},
			byLabel: model.LabelNamespace,
			want:    map[string]float64{"default": 1.5, "kube-system": 0.5},
			wantTS:  nowStr,
		},
		{
			name:    "sum by namespace via POST form with explicit time",
			method:  http.MethodPost,
			params:  url.Values{"query": {sumBy(model.LabelNamespace, "rate("+cpuMetric+"[2m])")}, "time": {unixString(t0.Add(5 * time.Minute))}},
			byLabel: model.LabelNamespace,
			want:    map[string]float64{"default": 1.5, "kube-system": 0.5},
			wantTS:  unixString(t0.Add(5 * time.Minute)),
		},
		{
			name:    "gauge at an RFC3339 time",
			method:  http.MethodGet,
			params:  url.Values{"query": {sel(memMetric, model.LabelPod, "web-1")}, "time": {t0.Add(2 * time.Minute).Format(time.RFC3339)}},
			byLabel: model.LabelPod,
			want:    map[string]float64{"web-1": memValue(12)},
			wantTS:  unixString(t0.Add(2 * time.Minute)),
		},
		{
			name:    "gauge between scrapes uses the last sample; fractional time kept to the millisecond",
			method:  http.MethodGet,
			params:  url.Values{"query": {sel(memMetric, model.LabelPod, "web-1")}, "time": {unixString(t0) + ".0156"}},
			byLabel: model.LabelPod,
			want:    map[string]float64{"web-1": memValue(0)},
			wantTS:  unixString(t0) + ".016",
		},
		{
			name:    "limit truncates",
			method:  http.MethodGet,
			params:  url.Values{"query": {`sort_desc(` + coresMetric + `)`}, "limit": {"1"}},
			byLabel: model.LabelNode,
			want:    map[string]float64{"node-a": 8},
			wantTS:  nowStr,
		},
		{
			name:    "no data is an empty vector",
			method:  http.MethodGet,
			params:  url.Values{"query": {"no_such_metric"}},
			byLabel: model.LabelPod,
			want:    map[string]float64{},
			wantTS:  nowStr,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := e.mustSucceed(t, tc.method, "/api/v1/query", tc.params)
			vec := decodeQuery[[]vectorSample](t, env, "vector")
			if vec == nil {
				t.Fatalf("result is null, want an array")
			}
			got := vectorByLabel(t, vec, tc.byLabel)
			if len(got) != len(tc.want) || len(vec) != len(tc.want) {
				t.Fatalf("got %d samples %v, want %v", len(vec), got, tc.want)
			}
			for k, want := range tc.want {
				if g, ok := got[k]; !ok || !approx(g, want) {
					t.Errorf("%s=%q: got %v (present %v), want %v", tc.byLabel, k, g, ok, want)
				}
			}
			for _, s := range vec {
				if s.Value.T != tc.wantTS {
					t.Errorf("timestamp = %s, want %s", s.Value.T, tc.wantTS)
				}
			}
			if tc.params.Get("limit") != "" {
				if !slices.Contains(env.Warnings, "results truncated due to limit") {
					t.Errorf("warnings = %q, want truncation warning", env.Warnings)
				}
			} else if len(env.Warnings) != 0 {
				t.Errorf("unexpected warnings %q", env.Warnings)
			}
		})
	}
}

func TestInstantQueryRateLabels(t *testing.T) {
	e := newTestEnv(t, openTestDB(t), nil)
	env := e.mustSucceed(t, http.MethodGet, "/api/v1/query", url.Values{
		"query": {"rate(" + sel(cpuMetric, model.LabelPod, "web-1") + "[1m])"},
	})
	vec := decodeQuery[[]vectorSample](t, env, "vector")
	if len(vec) != 1 {
		t.Fatalf("got %d samples, want 1", len(vec))
	}
	want := map[string]string{model.LabelNamespace: "default", model.LabelPod: "web-1", model.LabelContainer: "app", model.LabelNode: "node-a"}
	if fmt.Sprint(vec[0].Metric) != fmt.Sprint(want) {
		t.Errorf("metric = %v, want %v", vec[0].Metric, want)
	}
	if v := vec[0].Value.float(t); !approx(v, 0.5) {
		t.Errorf("rate = %v, want 0.5", v)
	}
}

func TestInstantQueryOtherResultTypes(t *testing.T) {
	e := newTestEnv(t, openTestDB(t), nil)
	at := unixString(t0.Add(3 * time.Minute))

	t.Run("scalars including special values", func(t *testing.T) {
		for _, tc := range []struct{ query, want string }{
			{"1/0", "+Inf"},
			{"-1/0", "-Inf"},
			{"0/0", "NaN"},
			{"2.5 * 2", "5"},
			{"1e-9", "1e-09"},
			{"1e22", "1e+22"},
			{"scalar(" + sel(coresMetric, model.LabelNode, "node-b") + ")", "4"},
		} {
			env := e.mustSucceed(t, http.MethodGet, "/api/v1/query", url.Values{"query": {tc.query}, "time": {at}})
			p := decodeQuery[point](t, env, "scalar")
			if p.V != tc.want || p.T != at {
				t.Errorf("%s = %+v, want [%s, %q]", tc.query, p, at, tc.want)
			}
		}
	})

	t.Run("string", func(t *testing.T) {
		env := e.mustSucceed(t, http.MethodGet, "/api/v1/query", url.Values{"query": {`"hello \"kubemon\""`}, "time": {at}})
		p := decodeQuery[point](t, env, "string")
		if p.V != `hello "kubemon"` || p.T != at {
			t.Errorf("got %+v", p)
		}
	})

	t.Run("range selector is a matrix", func(t *testing.T) {
		env := e.mustSucceed(t, http.MethodGet, "/api/v1/query", url.Values{"query": {sel(memMetric, model.LabelPod, "web-1") + "[30s]"}})
		m := decodeQuery[[]matrixSeries](t, env, "matrix")
		if len(m) != 1 {
			t.Fatalf("got %d series, want 1", len(m))
		}
		if m[0].Metric["__name__"] != memMetric {
			t.Errorf("metric = %v", m[0].Metric)
		}
		// The range is left-open: (now-30s, now] holds 3 samples.
		if len(m[0].Values) != 3 {
			t.Fatalf("got %d points, want 3: %+v", len(m[0].Values), m[0].Values)
		}
		for i, p := range m[0].Values {
			idx := numScrapes - 3 + i
			wantT := unixString(t0.Add(time.Duration(idx) * scrapeInterval))
			if p.T != wantT || p.float(t) != memValue(idx) {
				t.Errorf("point %d = %+v, want [%s, %v]", i, p, wantT, memValue(idx))
			}
		}
	})

	t.Run("at modifier and negative offset are enabled", func(t *testing.T) {
		env := e.mustSucceed(t, http.MethodGet, "/api/v1/query", url.Values{
			"query": {sel(memMetric, model.LabelPod, "web-1") + " @ " + unixString(t0.Add(time.Minute)) + " + 0 * " + sel(memMetric, model.LabelPod, "web-1") + " offset -1m"},
			"time":  {unixString(t0.Add(2 * time.Minute))},
		})
		vec := decodeQuery[[]vectorSample](t, env, "vector")
		if len(vec) != 1 || vec[0].Value.float(t) != memValue(6) {
			t.Errorf("got %+v, want value %v", vec, memValue(6))
		}
	})

	t.Run("subquery without step", func(t *testing.T) {
		env := e.mustSucceed(t, http.MethodGet, "/api/v1/query", url.Values{
			"query": {"max_over_time(rate(" + sel(cpuMetric, model.LabelPod, "web-2") + "[1m])[5m:])"},
		})
		vec := decodeQuery[[]vectorSample](t, env, "vector")
		if len(vec) != 1 || !approx(vec[0].Value.float(t), 1.0) {
			t.Errorf("got %+v, want 1.0", vec)
		}
	})
}

func TestRangeQuery(t *testing.T) {
	e := newTestEnv(t, openTestDB(t), nil)
	start, end := t0.Add(5*time.Minute), now

	tests := []struct {
		name       string
		method     string
		params     url.Values
		wantSeries int
		wantPoints int
		wantStep   time.Duration
		check      func(t *testing.T, s matrixSeries, i int, p point, ts time.Time)
	}{
		{
			name:   "rate, unix seconds and duration step",
			method: http.MethodGet,
			params: url.Values{
				"query": {"rate(" + sel(cpuMetric, model.LabelPod, "web-1") + "[1m])"},
				"start": {unixString(start)}, "end": {unixString(end)}, "step": {"1m"},
			},
			wantSeries: 1, wantPoints: 6, wantStep: time.Minute,
			check: func(t *testing.T, _ matrixSeries, _ int, p point, _ time.Time) {
				if v := p.float(t); !approx(v, 0.5) {
					t.Errorf("rate = %v, want 0.5", v)
				}
			},
		},
		{
			name:   "gauge, RFC3339 times and float-seconds step, POST form",
			method: http.MethodPost,
			params: url.Values{
				"query": {sel(memMetric, model.LabelPod, "web-1")},
				"start": {start.Format(time.RFC3339Nano)}, "end": {end.Format(time.RFC3339Nano)}, "step": {"30"},
			},
			wantSeries: 1, wantPoints: 11, wantStep: 30 * time.Second,
			check: func(t *testing.T, s matrixSeries, _ int, p point, ts time.Time) {
				if s.Metric["__name__"] != memMetric {
					t.Errorf("metric = %v", s.Metric)
				}
				idx := int(ts.Sub(t0) / scrapeInterval)
				if v := p.float(t); v != memValue(idx) {
					t.Errorf("value at %s = %v, want %v", ts, v, memValue(idx))
				}
			},
		},
		{
			name:   "sum by namespace",
			method: http.MethodGet,
			params: url.Values{
				"query": {sumBy(model.LabelNamespace, "rate("+cpuMetric+"[1m])")},
				"start": {unixString(start)}, "end": {unixString(end)}, "step": {"120s"},
			},
			wantSeries: 2, wantPoints: 3, wantStep: 2 * time.Minute,
			check: func(t *testing.T, s matrixSeries, _ int, p point, _ time.Time) {
				want := map[string]float64{"default": 1.5, "kube-system": 0.5}[s.Metric[model.LabelNamespace]]
				if len(s.Metric) != 1 || !approx(p.float(t), want) {
					t.Errorf("%v: %v, want %v", s.Metric, p.V, want)
				}
			},
		},
		{
			name:   "start == end gives one point",
			method: http.MethodGet,
			params: url.Values{
				"query": {coresMetric},
				"start": {unixString(end)}, "end": {unixString(end)}, "step": {"15s"},
			},
			wantSeries: 2, wantPoints: 1, wantStep: 15 * time.Second,
		},
		{
			name:   "exactly MaxPoints+1 points is allowed",
			method: http.MethodGet,
			params: url.Values{
				"query": {"vector(1)"},
				"start": {"0"}, "end": {"11000"}, "step": {"1"},
			},
			wantSeries: 1, wantPoints: 11001, wantStep: time.Second,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := e.mustSucceed(t, tc.method, "/api/v1/query_range", tc.params)
			m := decodeQuery[[]matrixSeries](t, env, "matrix")
			if len(m) != tc.wantSeries {
				t.Fatalf("got %d series, want %d", len(m), tc.wantSeries)
			}
			rangeStart, err := parseTime(tc.params.Get("start"))
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range m {
				if len(s.Values) != tc.wantPoints {
					t.Fatalf("%v: got %d points, want %d", s.Metric, len(s.Values), tc.wantPoints)
				}
				for i, p := range s.Values {
					ts := rangeStart.Add(time.Duration(i) * tc.wantStep)
					if p.T != unixString(ts) {
						t.Fatalf("%v point %d: timestamp %s, want %s", s.Metric, i, p.T, unixString(ts))
					}
					if tc.check != nil {
						tc.check(t, s, i, p, ts)
					}
				}
			}
		})
	}
}

func TestSeries(t *testing.T) {
	e := newTestEnv(t, openTestDB(t), nil)
	cpu := func(ns, pod, container, node string) map[string]string {
		return map[string]string{"__name__": cpuMetric, model.LabelNamespace: ns, model.LabelPod: pod, model.LabelContainer: container, model.LabelNode: node}
	}
	cores := func(node string) map[string]string {
		return map[string]string{"__name__": coresMetric, model.LabelNode: node}
	}

	tests := []struct {
		name     string
		method   string
		params   url.Values
		want     []map[string]string
		truncate bool
	}{
		{
			name:   "one selector, sorted",
			method: http.MethodGet,
			params: url.Values{"match[]": {cpuMetric}},
			want: []map[string]string{
				cpu("default", "web-1", "app", "node-a"),
				cpu("default", "web-2", "app", "node-b"),
				cpu("kube-system", "coredns-1", "coredns", "node-a"),
			},
		},
		{
			name:   "overlapping selectors are de-duplicated and merged in order",
			method: http.MethodGet,
			params: url.Values{"match[]": {coresMetric, sel(cpuMetric, model.LabelNamespace, "kube-system"), sel("", model.LabelNode, "node-b", "__name__=~", "machine.*")}},
			want: []map[string]string{
				cpu("kube-system", "coredns-1", "coredns", "node-a"),
				cores("node-a"),
				cores("node-b"),
			},
		},
		{
			name:   "POST form with time range",
			method: http.MethodPost,
			params: url.Values{"match[]": {sel("", "__name__=~", ".+", model.LabelNode, "node-b")}, "start": {unixString(t0)}, "end": {now.Format(time.RFC3339)}},
			want: []map[string]string{
				cpu("default", "web-2", "app", "node-b"),
				cores("node-b"),
			},
		},
		{
			name:   "time range without data is an empty array",
			method: http.MethodGet,
			params: url.Values{"match[]": {cpuMetric}, "start": {unixString(now.Add(time.Hour))}, "end": {unixString(now.Add(2 * time.Hour))}},
			want:   []map[string]string{},
		},
		{
			name:     "limit",
			method:   http.MethodGet,
			params:   url.Values{"match[]": {cpuMetric}, "limit": {"2"}},
			want:     []map[string]string{cpu("default", "web-1", "app", "node-a"), cpu("default", "web-2", "app", "node-b")},
			truncate: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := e.mustSucceed(t, tc.method, "/api/v1/series", tc.params)
			if string(env.Data) == "null" {
				t.Fatal("data is null, want an array")
			}
			var got []map[string]string
			strictDecode(t, env.Data, &got)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
			if tc.truncate != slices.Contains(env.Warnings, "results truncated due to limit") {
				t.Errorf("warnings = %q, truncated want %v", env.Warnings, tc.truncate)
			}
		})
	}
}

func TestLabels(t *testing.T) {
	e := newTestEnv(t, openTestDB(t), nil)
	allNames := []string{cpuMetric, memMetric, coresMetric}
	slices.Sort(allNames)
	allLabels := []string{"__name__", model.LabelContainer, model.LabelNamespace, model.LabelNode, model.LabelPod}
	slices.Sort(allLabels)
	coresLabels := []string{"__name__", model.LabelNode}
	slices.Sort(coresLabels)
	values := func(label string) string { return "/api/v1/label/" + label + "/values" }

	tests := []struct {
		name     string
		method   string
		path     string
		params   url.Values
		want     []string
		truncate bool
	}{
		{"label names", http.MethodGet, "/api/v1/labels", nil,
			allLabels, false},
		{"label names with match[]", http.MethodGet, "/api/v1/labels", url.Values{"match[]": {coresMetric}},
			coresLabels, false},
		{"label names with two match[]", http.MethodPost, "/api/v1/labels", url.Values{"match[]": {coresMetric, memMetric}},
			allLabels, false},
		{"label names with time range and limit", http.MethodGet, "/api/v1/labels", url.Values{"start": {unixString(t0)}, "end": {unixString(now)}, "limit": {"2"}},
			allLabels[:2], true},
		{"label names outside the data", http.MethodGet, "/api/v1/labels", url.Values{"start": {"0"}, "end": {"10"}},
			[]string{}, false},
		{"metric names", http.MethodGet, "/api/v1/label/__name__/values", nil,
			allNames, false},
		{"pods", http.MethodGet, values(model.LabelPod), nil,
			[]string{"coredns-1", "web-1", "web-2"}, false},
		{"pods with match[]", http.MethodGet, values(model.LabelPod), url.Values{"match[]": {memMetric}},
			[]string{"coredns-1", "web-1"}, false},
		{"nodes with overlapping match[] are de-duplicated", http.MethodPost, values(model.LabelNode),
			url.Values{"match[]": {sel("", model.LabelNamespace, "default"), coresMetric, sel("", model.LabelPod, "coredns-1")}},
			[]string{"node-a", "node-b"}, false},
		{"namespaces with match[] and time range", http.MethodGet, values(model.LabelNamespace),
			url.Values{"match[]": {sel("", model.LabelNode, "node-b")}, "start": {unixString(t0)}, "end": {unixString(now)}},
			[]string{"default"}, false},
		// The node label with its second character escaped (U__n_6f_de for "node").
		{"escaped label name", http.MethodGet, values(fmt.Sprintf("U__%s_%x_%s", model.LabelNode[:1], model.LabelNode[1], model.LabelNode[2:])), nil,
			[]string{"node-a", "node-b"}, false},
		{"unknown label", http.MethodGet, "/api/v1/label/nope/values", nil,
			[]string{}, false},
		{"values with limit", http.MethodGet, values(model.LabelPod), url.Values{"limit": {"1"}},
			[]string{"coredns-1"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := e.mustSucceed(t, tc.method, tc.path, tc.params)
			if string(env.Data) == "null" {
				t.Fatal("data is null, want an array")
			}
			var got []string
			strictDecode(t, env.Data, &got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if tc.truncate != slices.Contains(env.Warnings, "results truncated due to limit") {
				t.Errorf("warnings = %q, truncated want %v", env.Warnings, tc.truncate)
			}
		})
	}
}

func TestGrafanaHelperEndpoints(t *testing.T) {
	// As if stamped at link time (no test here runs in parallel).
	oldVersion, oldRevision := version.Version, version.Revision
	version.Version, version.Revision = "v0.1.0-3-gabc1234", "abc1234def5678abc1234def5678abc1234def56"
	t.Cleanup(func() { version.Version, version.Revision = oldVersion, oldRevision })
	e := newTestEnv(t, openTestDB(t), nil)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		env := e.mustSucceed(t, method, "/api/v1/metadata", nil)
		checkMetadata(t, method, env.Data)

		env = e.mustSucceed(t, method, "/api/v1/status/buildinfo", nil)
		var bi struct {
			Version   string `json:"version"`
			Revision  string `json:"revision"`
			Branch    string `json:"branch"`
			BuildUser string `json:"buildUser"`
			BuildDate string `json:"buildDate"`
			GoVersion string `json:"goVersion"`
		}
		strictDecode(t, env.Data, &bi)
		if bi.Version != version.Version || bi.Revision != version.Revision || bi.GoVersion != runtime.Version() ||
			bi.Branch != "" || bi.BuildUser != "" || bi.BuildDate != "" {
			t.Errorf("%s buildinfo = %+v, want version %q, revision %q, goVersion %q", method, bi, version.Version, version.Revision, runtime.Version())
		}

		env = e.mustSucceed(t, method, "/api/v1/query_exemplars", url.Values{
			"query": {cpuMetric}, "start": {unixString(t0)}, "end": {unixString(now)},
		})
		if string(env.Data) != "[]" {
			t.Errorf("%s exemplars data = %s, want []", method, env.Data)
		}
	}
}

// storageErrQueryable fails every Querier call with a storage error.
var storageErrQueryable = storage.QueryableFunc(func(int64, int64) (storage.Querier, error) {
	return nil, promql.ErrStorage{Err: errors.New("disk on fire")}
})

func TestErrors(t *testing.T) {
	db := openTestDB(t)
	e := newTestEnv(t, db, nil)
	small := newTestEnv(t, db, func(o *Options) { o.MaxSamples = 10; o.MaxPoints = 100 })
	broken := newTestEnv(t, storageErrQueryable, nil)
	failing := newTestEnv(t, storage.QueryableFunc(func(int64, int64) (storage.Querier, error) {
		return nil, errors.New("querier unavailable")
	}), nil)

	rangeParams := func(kv ...string) url.Values {
		v := url.Values{"query": {"up"}, "start": {"100"}, "end": {"200"}, "step": {"10"}}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return v
	}

	tests := []struct {
		name      string
		env       *testEnv
		method    string
		path      string
		params    url.Values
		code      int
		errorType string
		errSubstr string
	}{
		// /api/v1/query
		{"query: missing", e, "GET", "/api/v1/query", nil, 400, "bad_data", `invalid parameter "query": query must not be empty`},
		{"query: blank", e, "POST", "/api/v1/query", url.Values{"query": {"  "}}, 400, "bad_data", `invalid parameter "query"`},
		{"query: parse error", e, "GET", "/api/v1/query", url.Values{"query": {"rate("}}, 400, "bad_data", `invalid parameter "query": 1:6: parse error`},
		{"query: parse error via POST", e, "POST", "/api/v1/query", url.Values{"query": {"sum by (("}}, 400, "bad_data", `invalid parameter "query"`},
		{"query: bad time", e, "GET", "/api/v1/query", url.Values{"query": {"1"}, "time": {"yesterday"}}, 400, "bad_data", `invalid parameter "time": invalid time value for 'time': cannot parse "yesterday" to a valid timestamp`},
		{"query: NaN time", e, "GET", "/api/v1/query", url.Values{"query": {"1"}, "time": {"NaN"}}, 400, "bad_data", `invalid parameter "time"`},
		{"query: bad timeout", e, "GET", "/api/v1/query", url.Values{"query": {"1"}, "timeout": {"soon"}}, 400, "bad_data", `invalid parameter "timeout": cannot parse "soon" to a valid duration`},
		{"query: zero timeout", e, "GET", "/api/v1/query", url.Values{"query": {"1"}, "timeout": {"0s"}}, 400, "bad_data", `invalid parameter "timeout": timeout must be positive`},
		{"query: negative timeout", e, "GET", "/api/v1/query", url.Values{"query": {"1"}, "timeout": {"-5"}}, 400, "bad_data", `invalid parameter "timeout"`},
		{"query: bad limit", e, "GET", "/api/v1/query", url.Values{"query": {"1"}, "limit": {"ten"}}, 400, "bad_data", `invalid parameter "limit"`},
		{"query: negative limit", e, "GET", "/api/v1/query", url.Values{"query": {"1"}, "limit": {"-1"}}, 400, "bad_data", `invalid parameter "limit": limit must be non-negative`},
		{"query: bad lookback_delta", e, "GET", "/api/v1/query", url.Values{"query": {"1"}, "lookback_delta": {"x"}}, 400, "bad_data", `invalid parameter "lookback_delta"`},
		{"query: type error", e, "GET", "/api/v1/query", url.Values{"query": {`rate(` + cpuMetric + `)`}}, 400, "bad_data", `invalid parameter "query"`},
		{"query: too many samples", small, "GET", "/api/v1/query", url.Values{"query": {cpuMetric + "[10m]"}}, 422, "execution", "query processing would load too many samples into memory"},
		{"query: duplicate labelset", e, "GET", "/api/v1/query", url.Values{"query": {"label_replace(" + coresMetric + ", " + strconv.Quote(model.LabelNode) + `, "x", "", "")`}}, 422, "execution", "vector cannot contain metrics with the same labelset"},
		{"query: timeout", e, "GET", "/api/v1/query", url.Values{"query": {cpuMetric}, "timeout": {"0.000000001"}}, 503, "timeout", "query timed out"},
		{"query: storage error", broken, "GET", "/api/v1/query", url.Values{"query": {cpuMetric}}, 500, "internal", "disk on fire"},
		{"query: querier error", failing, "GET", "/api/v1/query", url.Values{"query": {cpuMetric}}, 422, "execution", "querier unavailable"},

		// /api/v1/query_range
		{"range: missing query", e, "GET", "/api/v1/query_range", rangeParams("query", ""), 400, "bad_data", `invalid parameter "query": query must not be empty`},
		{"range: missing start", e, "GET", "/api/v1/query_range", rangeParams("start", ""), 400, "bad_data", `invalid parameter "start": cannot parse "" to a valid timestamp`},
		{"range: bad start", e, "GET", "/api/v1/query_range", rangeParams("start", "2024-13-01T00:00:00Z"), 400, "bad_data", `invalid parameter "start"`},
		{"range: bad end", e, "POST", "/api/v1/query_range", rangeParams("end", "later"), 400, "bad_data", `invalid parameter "end": cannot parse "later" to a valid timestamp`},
		{"range: end before start", e, "GET", "/api/v1/query_range", rangeParams("start", "300"), 400, "bad_data", `invalid parameter "end": end timestamp must not be before start time`},
		{"range: missing step", e, "GET", "/api/v1/query_range", rangeParams("step", ""), 400, "bad_data", `invalid parameter "step": cannot parse "" to a valid duration`},
		{"range: bad step", e, "GET", "/api/v1/query_range", rangeParams("step", "fast"), 400, "bad_data", `invalid parameter "step"`},
		{"range: zero step", e, "GET", "/api/v1/query_range", rangeParams("step", "0"), 400, "bad_data", `invalid parameter "step": zero or negative query resolution step widths are not accepted. Try a positive integer`},
		{"range: negative step", e, "POST", "/api/v1/query_range", rangeParams("step", "-60"), 400, "bad_data", `zero or negative query resolution step`},
		{"range: negative duration step", e, "GET", "/api/v1/query_range", rangeParams("step", "-1m"), 400, "bad_data", `invalid parameter "step": cannot parse "-1m" to a valid duration`},
		{"range: too many points", e, "GET", "/api/v1/query_range", rangeParams("start", "0", "end", "11001", "step", "1"), 400, "bad_data", "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"},
		{"range: too many points with MaxPoints", small, "GET", "/api/v1/query_range", rangeParams("start", "0", "end", "101", "step", "1"), 400, "bad_data", "exceeded maximum resolution of 100 points per timeseries."},
		{"range: bad timeout", e, "GET", "/api/v1/query_range", rangeParams("timeout", "1x"), 400, "bad_data", `invalid parameter "timeout"`},
		{"range: parse error", e, "GET", "/api/v1/query_range", rangeParams("query", "up{"), 400, "bad_data", `invalid parameter "query"`},
		{"range: too many samples", small, "GET", "/api/v1/query_range", url.Values{"query": {cpuMetric}, "start": {unixString(t0)}, "end": {unixString(now)}, "step": {"10"}}, 422, "execution", "too many samples"},
		{"range: timeout", e, "GET", "/api/v1/query_range", rangeParams("timeout", "0.000000001"), 503, "timeout", "query timed out"},
		{"range: storage error", broken, "POST", "/api/v1/query_range", rangeParams("query", cpuMetric), 500, "internal", "disk on fire"},

		// /api/v1/series
		{"series: no match[]", e, "GET", "/api/v1/series", nil, 400, "bad_data", "no match[] parameter provided"},
		{"series: bad matcher", e, "GET", "/api/v1/series", url.Values{"match[]": {sel("", model.LabelPod+"=~", "(")}}, 400, "bad_data", `invalid parameter "match[]"`},
		{"series: unparseable selector", e, "POST", "/api/v1/series", url.Values{"match[]": {"rate(x[1m])"}}, 400, "bad_data", `invalid parameter "match[]"`},
		{"series: only empty matchers", e, "GET", "/api/v1/series", url.Values{"match[]": {sel("", model.LabelPod, "")}}, 400, "bad_data", "match[] must contain at least one non-empty matcher"},
		{"series: bad start", e, "GET", "/api/v1/series", url.Values{"match[]": {"up"}, "start": {"x"}}, 400, "bad_data", `invalid parameter "start": invalid time value for 'start'`},
		{"series: end before start", e, "GET", "/api/v1/series", url.Values{"match[]": {"up"}, "start": {"10"}, "end": {"5"}}, 400, "bad_data", "end timestamp must not be before start time"},
		{"series: bad limit", e, "GET", "/api/v1/series", url.Values{"match[]": {"up"}, "limit": {"1.5"}}, 400, "bad_data", `invalid parameter "limit"`},
		{"series: querier error", failing, "GET", "/api/v1/series", url.Values{"match[]": {"up"}}, 422, "execution", "querier unavailable"},
		{"series: storage error", broken, "GET", "/api/v1/series", url.Values{"match[]": {"up"}}, 500, "internal", "disk on fire"},

		// /api/v1/labels and /api/v1/label/<name>/values
		{"labels: bad matcher", e, "GET", "/api/v1/labels", url.Values{"match[]": {"{"}}, 400, "bad_data", `invalid parameter "match[]"`},
		{"labels: bad end", e, "POST", "/api/v1/labels", url.Values{"end": {"tomorrow"}}, 400, "bad_data", `invalid parameter "end"`},
		{"labels: end before start", e, "GET", "/api/v1/labels", url.Values{"start": {now.Format(time.RFC3339)}, "end": {t0.Format(time.RFC3339)}}, 400, "bad_data", "end timestamp must not be before start time"},
		{"labels: querier error", failing, "GET", "/api/v1/labels", nil, 422, "execution", "querier unavailable"},
		{"values: bad matcher", e, "GET", "/api/v1/label/" + model.LabelPod + "/values", url.Values{"match[]": {strings.TrimSuffix(sel("", model.LabelPod, "a"), "}")}}, 400, "bad_data", `invalid parameter "match[]"`},
		{"values: bad start", e, "GET", "/api/v1/label/" + model.LabelPod + "/values", url.Values{"start": {"-"}}, 400, "bad_data", `invalid parameter "start"`},
		{"values: invalid label name", e, "GET", "/api/v1/label/%FF/values", nil, 400, "bad_data", "invalid label name"},
		{"values: storage error", broken, "GET", "/api/v1/label/" + model.LabelPod + "/values", nil, 500, "internal", "disk on fire"},

		// Others.
		{"exemplars: bad query", e, "GET", "/api/v1/query_exemplars", url.Values{"query": {"up{"}}, 400, "bad_data", `invalid parameter "query"`},
		{"exemplars: end before start", e, "GET", "/api/v1/query_exemplars", url.Values{"query": {"up"}, "start": {"10"}, "end": {"1"}}, 400, "bad_data", "end timestamp must not be before start time"},
		{"metadata: bad limit", e, "GET", "/api/v1/metadata", url.Values{"limit": {"x"}}, 400, "bad_data", `invalid parameter "limit"`},
		{"metadata: bad limit_per_metric", e, "GET", "/api/v1/metadata", url.Values{"limit_per_metric": {"x"}}, 400, "bad_data", `invalid parameter "limit_per_metric"`},
		{"method not allowed", e, "DELETE", "/api/v1/query", url.Values{"query": {"1"}}, 405, "bad_data", "method DELETE not allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, env := tc.env.do(t, tc.method, tc.path, tc.params)
			if code != tc.code || env.Status != "error" || env.ErrorType != tc.errorType {
				t.Fatalf("got code %d status %q errorType %q (%q), want %d error %q", code, env.Status, env.ErrorType, env.Error, tc.code, tc.errorType)
			}
			if !strings.Contains(env.Error, tc.errSubstr) {
				t.Errorf("error = %q, want it to contain %q", env.Error, tc.errSubstr)
			}
			if env.Data != nil || env.Warnings != nil {
				t.Errorf("error envelope has data/warnings: %+v", env)
			}
		})
	}
}

func TestCanceledRequest(t *testing.T) {
	e := newTestEnv(t, openTestDB(t), nil)
	mux := http.NewServeMux()
	e.api.Register(mux)

	for _, target := range []string{
		"/api/v1/query?query=" + url.QueryEscape(cpuMetric),
		"/api/v1/query_range?query=" + url.QueryEscape(cpuMetric) + "&start=0&end=600&step=60",
	} {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)

		var env envelope
		strictDecode(t, rec.Body.Bytes(), &env)
		if rec.Code != 499 || env.Status != "error" || env.ErrorType != "canceled" {
			t.Errorf("%s: code %d envelope %+v, want 499 canceled", target, rec.Code, env)
		}
	}
}

func TestExactJSON(t *testing.T) {
	e := newTestEnv(t, openTestDB(t), nil)
	get := func(path string, params url.Values) string {
		t.Helper()
		resp, err := e.srv.Client().Get(e.srv.URL + path + "?" + params.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	at := unixString(t0.Add(time.Minute))
	// cores is coresMetric's labels of node n as JSON (__name__ sorts first).
	cores := func(n string) string { return fmt.Sprintf(`{"__name__":%q,%q:%q}`, coresMetric, model.LabelNode, n) }
	tests := []struct {
		path   string
		params url.Values
		want   string
	}{
		{"/api/v1/query", url.Values{"query": {sel(coresMetric, model.LabelNode, "node-b")}, "time": {at}},
			`{"status":"success","data":{"resultType":"vector","result":[{"metric":` + cores("node-b") + `,"value":[1700000060,"4"]}]}}`},
		{"/api/v1/query", url.Values{"query": {"1/0"}, "time": {"1700000060.5"}},
			`{"status":"success","data":{"resultType":"scalar","result":[1700000060.500,"+Inf"]}}`},
		{"/api/v1/query", url.Values{"query": {"vector(0.25)"}, "time": {"1700000060.007"}},
			`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000060.007,"0.25"]}]}}`},
		{"/api/v1/query_range", url.Values{"query": {`max(` + coresMetric + `)`}, "start": {at}, "end": {unixString(t0.Add(2 * time.Minute))}, "step": {"30s"}},
			`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1700000060,"8"],[1700000090,"8"],[1700000120,"8"]]}]}}`},
		{"/api/v1/series", url.Values{"match[]": {coresMetric}},
			`{"status":"success","data":[` + cores("node-a") + `,` + cores("node-b") + `]}`},
		{"/api/v1/label/" + model.LabelNode + "/values", nil,
			`{"status":"success","data":["node-a","node-b"]}`},
		{"/api/v1/series", url.Values{"match[]": {coresMetric}, "limit": {"1"}},
			`{"status":"success","data":[` + cores("node-a") + `],"warnings":["results truncated due to limit"]}`},
		{"/api/v1/query", url.Values{"query": {"up("}},
			`{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:4: parse error: unclosed left parenthesis"}`},
	}
	for _, tc := range tests {
		if got := get(tc.path, tc.params); got != tc.want {
			t.Errorf("%s?%s\n got %s\nwant %s", tc.path, tc.params.Encode(), got, tc.want)
		}
	}
}

func TestMetrics(t *testing.T) {
	e := newTestEnv(t, openTestDB(t), nil)
	e.mustSucceed(t, http.MethodGet, "/api/v1/query", url.Values{"query": {"1"}})
	e.mustSucceed(t, http.MethodPost, "/api/v1/query", url.Values{"query": {"2"}})
	e.do(t, http.MethodGet, "/api/v1/query_range", nil)
	e.mustSucceed(t, http.MethodGet, "/api/v1/label/"+model.LabelPod+"/values", nil)

	// A second API on the same registry shares the collectors.
	if _, err := New(Options{Queryable: storageErrQueryable, Registerer: e.reg}); err != nil {
		t.Fatalf("second New on the same registry: %v", err)
	}

	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	histCounts := map[string]uint64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := ""
			for _, lp := range m.GetLabel() {
				key += lp.GetName() + "=" + lp.GetValue() + ","
			}
			switch mf.GetName() {
			case "kubemon_promapi_requests_total":
				counts[key] = m.GetCounter().GetValue()
			case "kubemon_promapi_request_duration_seconds":
				histCounts[key] = m.GetHistogram().GetSampleCount()
			}
		}
	}
	want := map[string]float64{
		"code=200,endpoint=query,":        2,
		"code=400,endpoint=query_range,":  1,
		"code=200,endpoint=label_values,": 1,
	}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("requests_total = %v, want %v", counts, want)
	}
	for k, v := range want {
		if histCounts[k] != uint64(v) {
			t.Errorf("request_duration_seconds{%s} count = %d, want %v", k, histCounts[k], v)
		}
	}
}

func TestNewValidation(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without Queryable succeeded")
	}
	if _, err := New(Options{Queryable: storageErrQueryable, MaxPoints: -1}); err == nil {
		t.Error("New with negative MaxPoints succeeded")
	}
	if _, err := New(Options{Queryable: storageErrQueryable, MaxConcurrency: -1}); err == nil {
		t.Error("New with negative MaxConcurrency succeeded")
	}
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Queryable: storageErrQueryable, ActiveQueryDir: filepath.Join(notDir, "queries")}); err == nil || !strings.Contains(err.Error(), "active query log") {
		t.Errorf("New with an unusable ActiveQueryDir: %v", err)
	}
	a, err := New(Options{Queryable: storageErrQueryable})
	if err != nil {
		t.Fatal(err)
	}
	if a.lookbackDelta != 5*time.Minute || a.queryTimeout != 2*time.Minute || a.maxPoints != 11_000 || a.now == nil || a.logger == nil {
		t.Errorf("defaults not applied: %+v", a)
	}
	if n := a.tracker.GetMaxConcurrent(); n != 20 || DefaultMaxConcurrency != 20 {
		t.Errorf("max concurrency %d (default %d), want Prometheus's 20", n, DefaultMaxConcurrency)
	}
	if err := a.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}
