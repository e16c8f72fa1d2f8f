package influxdb

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/sink"
)

// request is one request a recorder received.
type request struct {
	method, path string
	query        url.Values
	header       http.Header
	gzipped      bool
	body         string // decompressed
}

// recorder is a plain HTTP server that records what it is sent and answers
// 204 to writes and an empty result to queries, or what answer() says.
type recorder struct {
	srv *httptest.Server
	mu  sync.Mutex
	req []request
	// answer, when set, gives the status and body of the n-th write
	// (from 0); status 0 means the default.
	answer func(n int) (int, string)
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) serve(w http.ResponseWriter, req *http.Request) {
	var body io.Reader = req.Body
	gz := req.Header.Get("Content-Encoding") == "gzip"
	if gz {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, "bad gzip: "+err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if strings.HasSuffix(req.URL.Path, "/query") {
		v, err := url.ParseQuery(string(b))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		b = []byte(v.Get("q"))
	}
	r.mu.Lock()
	n := 0
	for _, q := range r.req {
		if !strings.HasSuffix(q.path, "/query") {
			n++
		}
	}
	r.req = append(r.req, request{req.Method, req.URL.Path, req.URL.Query(), req.Header.Clone(), gz, string(b)})
	answer := r.answer
	r.mu.Unlock()
	if strings.HasSuffix(req.URL.Path, "/query") {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"results":[{"statement_id":0}]}`)
		return
	}
	if answer != nil {
		if status, msg := answer(n); status != 0 {
			http.Error(w, msg, status)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *recorder) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.req)
}

func (r *recorder) writes() []request {
	var out []request
	for _, q := range r.requests() {
		if !strings.HasSuffix(q.path, "/query") {
			out = append(out, q)
		}
	}
	return out
}

// lines are every line written, in order.
func (r *recorder) lines() []string {
	var out []string
	for _, q := range r.writes() {
		out = append(out, strings.Split(strings.TrimSuffix(q.body, "\n"), "\n")...)
	}
	return out
}

const t0 = int64(1_767_225_600_000) // 2026-01-01T00:00:00Z

func series(name string, kv []string, samples ...sink.Sample) sink.Series {
	return sink.Series{Labels: labels.FromStrings(append([]string{labels.MetricName, name}, kv...)...), Samples: samples}
}

func s1(v float64) sink.Sample { return sink.Sample{T: t0, V: v} }

var (
	ctrLabels   = []string{model.LabelNamespace, "shop", model.LabelPod, "web-7d9f-abcde", model.LabelContainer, "nginx", model.LabelNode, "node-1"}
	podIDLabels = []string{model.LabelNamespace, "shop", model.LabelPod, "web-7d9f-abcde", model.LabelNode, "node-1"}
	podInfo     = series(model.PromName(model.LevelPod, model.Info), append(slices.Clone(podIDLabels),
		model.LabelWorkloadKind, "Deployment", model.LabelWorkload, "web", model.LabelKubeLabels, "app:web,tier:front end", "label_app", "web"), s1(1))
)

// everyLevel is cpu/usage_rate at every level, with the pod's info series
// after the series that need it.
func everyLevel() []sink.Series {
	cpu := model.CPUUsageRate
	return []sink.Series{
		series(model.PromName(model.LevelContainer, cpu), ctrLabels, s1(0.25)),
		series(model.PromName(model.LevelPod, cpu), podIDLabels, s1(0.5)),
		series(model.PromName(model.LevelNamespace, cpu), []string{model.LabelNamespace, "shop"}, s1(1.5)),
		series(model.PromName(model.LevelWorkload, cpu), []string{model.LabelNamespace, "shop", model.LabelWorkloadKind, "Deployment", model.LabelWorkload, "web"}, s1(0.75)),
		series(model.PromName(model.LevelNode, cpu), []string{model.LabelNode, "node-1"}, s1(3.125)),
		series(model.PromName(model.LevelSysContainer, cpu), []string{model.LabelContainer, "kubelet", model.LabelNode, "node-1"}, s1(0.0625)),
		series(model.PromName(model.LevelCluster, cpu), nil, s1(12)),
		podInfo,
	}
}

func newWriter(t *testing.T, o Options) *Writer {
	t.Helper()
	w, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestKubemonLevel: kubemon's own series (a sink's lag, the store's size)
// are written with type=kubemon and the sink's name as a tag.
func TestKubemonLevel(t *testing.T) {
	r := newRecorder(t)
	w := newWriter(t, Options{URL: r.srv.URL, Database: "k8s", ClusterName: "prod"})
	if err := w.Write(context.Background(), []sink.Series{
		series(model.PromName(model.LevelKubemon, model.SinkLag), []string{model.LabelSink, "influxdb-1"}, s1(72)),
		series(model.PromName(model.LevelKubemon, model.StoreSize), nil, s1(1<<20)),
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		model.Metrics[model.SinkLag].Heapster + `,cluster_name=prod,sink_name=influxdb-1,type=kubemon value=72 1767225600000`,
		model.Metrics[model.StoreSize].Heapster + `,cluster_name=prod,type=kubemon value=1.048576e+06 1767225600000`,
	}
	if got := r.lines(); !slices.Equal(got, want) {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestEveryLevelTags(t *testing.T) {
	r := newRecorder(t)
	w := newWriter(t, Options{URL: r.srv.URL, Database: "k8s", ClusterName: "prod"})
	if err := w.Write(context.Background(), everyLevel()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`cpu/usage_rate,cluster_name=prod,container_name=nginx,hostname=node-1,labels=app:web\,tier:front\ end,namespace_name=shop,nodename=node-1,pod_name=web-7d9f-abcde,type=pod_container value=250 1767225600000`,
		`cpu/usage_rate,cluster_name=prod,hostname=node-1,labels=app:web\,tier:front\ end,namespace_name=shop,nodename=node-1,pod_name=web-7d9f-abcde,type=pod value=500 1767225600000`,
		`cpu/usage_rate,cluster_name=prod,namespace_name=shop,type=ns value=1500 1767225600000`,
		`cpu/usage_rate,cluster_name=prod,namespace_name=shop,type=workload,workload_kind=Deployment,workload_name=web value=750 1767225600000`,
		`cpu/usage_rate,cluster_name=prod,hostname=node-1,nodename=node-1,type=node value=3125 1767225600000`,
		`cpu/usage_rate,cluster_name=prod,container_name=kubelet,hostname=node-1,nodename=node-1,type=sys_container value=62.5 1767225600000`,
		`cpu/usage_rate,cluster_name=prod,type=cluster value=12000 1767225600000`,
	}
	if got := r.lines(); !slices.Equal(got, want) {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Every line is valid line protocol, as InfluxDB's own decoder reads it.
	for _, q := range r.writes() {
		dec := lineprotocol.NewDecoderWithBytes([]byte(q.body))
		n := 0
		for dec.Next() {
			if _, err := dec.Measurement(); err != nil {
				t.Fatal(err)
			}
			for k, _, err := dec.NextTag(); k != nil || err != nil; k, _, err = dec.NextTag() {
				if err != nil {
					t.Fatal(err)
				}
			}
			k, v, err := dec.NextField()
			if err != nil || string(k) != "value" || v.Kind() != lineprotocol.Float {
				t.Fatalf("field %s=%v (%v), want a float value", k, v, err)
			}
			if _, err := dec.Time(lineprotocol.Millisecond, time.Time{}); err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != 7 {
			t.Errorf("decoded %d points, want 7", n)
		}
	}
	if s := w.Stats(); s.Points != 7 || s.Requests != 1 || s.SkippedInfo != 1 || s.Skipped() != 1 {
		t.Errorf("stats %+v, want 7 points in 1 request, the info sample skipped", s)
	}
}

func TestWithFieldsAndScales(t *testing.T) {
	r := newRecorder(t)
	w := newWriter(t, Options{URL: r.srv.URL, Database: "k8s", WithFields: true})
	node := []string{model.LabelNode, "n1"}
	batch := []sink.Series{
		series(model.PromName(model.LevelNode, model.CPUUsageRate), node, s1(1.5)),
		series(model.PromName(model.LevelNode, model.CPUUsage), node, s1(12.5)),               // seconds → ns
		series(model.PromName(model.LevelNode, model.MemoryWorkingSet), node, s1(1234567890)), // bytes
		series(model.PromName(model.LevelNode, model.Uptime), node, s1(3600.5)),               // seconds → ms
		series(model.PromName(model.LevelNode, model.Restarts), node, s1(3)),
		series(model.PromName(model.LevelNode, model.CPUUtilization), node, s1(0.375)),
	}
	if err := w.Write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`cpu,hostname=n1,nodename=n1,type=node usage_rate=1500 1767225600000`,
		`cpu,hostname=n1,nodename=n1,type=node usage=1.25e+10 1767225600000`,
		`memory,hostname=n1,nodename=n1,type=node working_set=1.23456789e+09 1767225600000`,
		`uptime,hostname=n1,nodename=n1,type=node value=3.6005e+06 1767225600000`,
		`restart_count,hostname=n1,nodename=n1,type=node value=3 1767225600000`,
		`cpu,hostname=n1,nodename=n1,type=node node_utilization=0.375 1767225600000`,
	}
	if got := r.lines(); !slices.Equal(got, want) {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// The Heapster names of every metric at every level: a measurement each
// (cpu/usage_rate ...), or with withfields the part before the first "/".
func TestNamesOfEveryMetric(t *testing.T) {
	n := 0
	for _, s := range model.AllSeries() {
		p, f := plainNames[s.Level][s.Metric.ID], fieldsNames[s.Level][s.Metric.ID]
		if s.Metric.ID == model.Info || s.Metric.Heapster == "" {
			if p.measurement != "" || f.measurement != "" {
				t.Errorf("%s is written (%v, %v), want skipped", s.Name, p, f)
			}
			continue
		}
		n++
		if p != (names{s.Metric.Heapster, "value"}) {
			t.Errorf("%s: %v, want %s value", s.Name, p, s.Metric.Heapster)
		}
		if f.measurement+"/"+f.field != s.Metric.Heapster && !(f.field == "value" && f.measurement == s.Metric.Heapster) {
			t.Errorf("%s withfields: %v, want %s split at the first /", s.Name, f, s.Metric.Heapster)
		}
	}
	if n < 150 {
		t.Errorf("only %d series written", n)
	}
}

func TestLabelsFromInfoAcrossBatches(t *testing.T) {
	r := newRecorder(t)
	w := newWriter(t, Options{URL: r.srv.URL, Database: "k8s"})
	ctx := context.Background()
	usage := func(ts int64) sink.Series {
		return series(model.PromName(model.LevelContainer, model.MemoryWorkingSet), ctrLabels, sink.Sample{T: ts, V: 100})
	}
	info := func(lbl string, samples ...sink.Sample) sink.Series {
		return series(model.PromName(model.LevelPod, model.Info), append(slices.Clone(podIDLabels), model.LabelKubeLabels, lbl), samples...)
	}
	stale := math.Float64frombits(value.StaleNaN)
	steps := []struct {
		batch []sink.Series
		want  string // the labels tag of the usage point
	}{
		{[]sink.Series{usage(t0)}, ""},                                                                 // no info yet
		{[]sink.Series{info("app:web", sink.Sample{T: t0, V: 1})}, ""},                                 // info alone: nothing written
		{[]sink.Series{usage(t0 + 1000)}, "app:web"},                                                   // remembered from the earlier batch
		{[]sink.Series{usage(t0 + 2000), info("app:api", sink.Sample{T: t0 + 2000, V: 1})}, "app:api"}, // same batch first, even after
		// A relabelling: the old info ends with a staleness marker, the
		// new one starts; the newest non-stale sample wins whatever the
		// order of the series.
		{[]sink.Series{info("app:v3", sink.Sample{T: t0 + 3000, V: 1}), info("app:api", sink.Sample{T: t0 + 2000, V: 1}, sink.Sample{T: t0 + 3000, V: stale}), usage(t0 + 3000)}, "app:v3"},
		// An older info (another shard late) does not go back.
		{[]sink.Series{info("app:old", sink.Sample{T: t0 + 500, V: 1}), usage(t0 + 4000)}, "app:v3"},
	}
	for i, st := range steps {
		before := len(r.lines())
		if err := w.Write(ctx, st.batch); err != nil {
			t.Fatal(err)
		}
		got := r.lines()[before:]
		var usageLines []string
		for _, l := range got {
			if strings.HasPrefix(l, "memory/working_set,") {
				usageLines = append(usageLines, l)
			}
		}
		hasUsage := false
		for _, s := range st.batch {
			hasUsage = hasUsage || s.Labels.Get(labels.MetricName) != podInfo.Labels.Get(labels.MetricName)
		}
		if !hasUsage {
			if len(got) != 0 {
				t.Errorf("step %d: wrote %q, want nothing", i, got)
			}
			continue
		}
		if len(usageLines) != 1 {
			t.Fatalf("step %d: lines %q", i, got)
		}
		tag := ""
		if _, rest, ok := strings.Cut(usageLines[0], ",labels="); ok {
			tag, _, _ = strings.Cut(rest, ",namespace_name=")
			tag = strings.ReplaceAll(tag, `\,`, ",")
		}
		if tag != st.want {
			t.Errorf("step %d: labels tag %q, want %q (%s)", i, tag, st.want, usageLines[0])
		}
	}
}

// TestLabelsFromObservedBatch: after a restart mid-window the exporter
// shows the writer the batches delivered before (sink.Observer): the pods'
// labels come from their info series there, and nothing is sent for them.
func TestLabelsFromObservedBatch(t *testing.T) {
	r := newRecorder(t)
	w := newWriter(t, Options{URL: r.srv.URL, Database: "k8s"})
	var _ sink.Observer = w
	info := series(model.PromName(model.LevelPod, model.Info), append(slices.Clone(podIDLabels), model.LabelKubeLabels, "app:seen"), sink.Sample{T: t0, V: 1})
	usage := series(model.PromName(model.LevelContainer, model.MemoryWorkingSet), ctrLabels, sink.Sample{T: t0, V: 100})
	w.Observe([]sink.Series{info, usage})
	if got := r.lines(); len(got) != 0 {
		t.Fatalf("Observe sent %q", got)
	}
	if err := w.Write(context.Background(), []sink.Series{series(model.PromName(model.LevelContainer, model.MemoryWorkingSet), ctrLabels, sink.Sample{T: t0 + 1000, V: 100})}); err != nil {
		t.Fatal(err)
	}
	got := r.lines()
	if len(got) != 1 || !strings.Contains(got[0], ",labels=app:seen,") {
		t.Errorf("after Observe: %q, want one point tagged labels=app:seen", got)
	}
}

func TestSkipped(t *testing.T) {
	r := newRecorder(t)
	w := newWriter(t, Options{URL: r.srv.URL, Database: "k8s"})
	node := []string{model.LabelNode, "n1"}
	name := model.PromName(model.LevelNode, model.MemoryUsage)
	batch := []sink.Series{
		series("up", []string{"job", "kubelet"}, s1(1), sink.Sample{T: t0 + 1, V: 1}),                        // not kubemon's
		series("node_memory_bogus_bytes", node, s1(1)),                                                       // not kubemon's either
		series(model.PromName(model.LevelNamespace, model.Info), []string{model.LabelNamespace, "a"}, s1(1)), // info
		// A tag value line protocol cannot carry (the lines after it are
		// still written).
		series(name, []string{model.LabelNode, "n0"}, s1(4)),
		series(name, []string{model.LabelNode, "bad\x01node"}, s1(7)),
		series(name, node,
			sink.Sample{T: t0, V: 5},
			sink.Sample{T: t0 + 1000, V: math.NaN()},
			sink.Sample{T: t0 + 2000, V: math.Inf(1)},
			sink.Sample{T: t0 + 3000, V: math.Inf(-1)},
			sink.Sample{T: t0 + 4000, V: 6},
			sink.Sample{T: t0 + 5000, V: math.Float64frombits(value.StaleNaN)},
		),
		// A value that overflows once scaled to Heapster's unit.
		series(model.PromName(model.LevelNode, model.CPUUsage), node, sink.Sample{T: t0, V: math.MaxFloat64}),
	}
	if err := w.Write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`memory/usage,hostname=n0,nodename=n0,type=node value=4 1767225600000`,
		`memory/usage,hostname=n1,nodename=n1,type=node value=5 1767225600000`,
		`memory/usage,hostname=n1,nodename=n1,type=node value=6 1767225604000`,
	}
	if got := r.lines(); !slices.Equal(got, want) {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	want2 := Stats{Points: 3, Requests: 1, SkippedUnknown: 3, SkippedInfo: 1, SkippedStale: 1, SkippedNonFinite: 4, SkippedInvalid: 1}
	if s := w.Stats(); s != want2 || s.Skipped() != 10 {
		t.Errorf("stats %+v, want %+v", s, want2)
	}
	// A batch with nothing to write sends nothing.
	if err := w.Write(context.Background(), batch[:3]); err != nil {
		t.Fatal(err)
	}
	if n := len(r.writes()); n != 1 {
		t.Errorf("%d write requests, want 1", n)
	}
}

// bigBatch has n points: 100 node series of n/100 samples (and one more
// series for the rest).
func bigBatch(n int) []sink.Series {
	var out []sink.Series
	for i := 0; n > 0; i++ {
		k := min(n, n/100+1)
		s := series(model.PromName(model.LevelNode, model.MemoryWorkingSet), []string{model.LabelNode, fmt.Sprintf("node-%03d", i)})
		for j := range k {
			s.Samples = append(s.Samples, sink.Sample{T: t0 + int64(j)*15000, V: float64(i*1000 + j)})
		}
		out = append(out, s)
		n -= k
	}
	return out
}

func TestSplitAndGzip(t *testing.T) {
	for _, gz := range []bool{true, false} {
		r := newRecorder(t)
		w := newWriter(t, Options{URL: r.srv.URL, Database: "k8s", DisableGzip: !gz})
		if err := w.Write(context.Background(), bigBatch(12_001)); err != nil {
			t.Fatal(err)
		}
		var sizes []int
		seen := map[string]bool{}
		for _, q := range r.writes() {
			if q.gzipped != gz || (q.header.Get("Content-Encoding") == "gzip") != gz {
				t.Errorf("gzip %v: request gzipped %v", gz, q.gzipped)
			}
			lines := strings.Split(strings.TrimSuffix(q.body, "\n"), "\n")
			sizes = append(sizes, len(lines))
			for _, l := range lines {
				seen[l] = true
			}
			if q.path != "/write" || q.query.Get("db") != "k8s" || q.query.Get("precision") != "ms" || q.query.Has("rp") {
				t.Errorf("request %s?%s", q.path, q.query.Encode())
			}
		}
		if !slices.Equal(sizes, []int{5000, 5000, 2001}) || len(seen) != 12_001 {
			t.Errorf("gzip %v: requests of %v points (%d distinct), want 5000, 5000, 2001", gz, sizes, len(seen))
		}
		if s := w.Stats(); s.Points != 12_001 || s.Requests != 3 {
			t.Errorf("stats %+v", s)
		}
	}
}

func TestCreateDatabaseOnce(t *testing.T) {
	r := newRecorder(t)
	w := newWriter(t, Options{URL: r.srv.URL + "/prefix/", Database: `k8s "prod"`, RetentionPolicy: "a week", RetentionDuration: 7 * 24 * time.Hour, User: "admin", Password: "s3cret"})
	for range 3 {
		if err := w.Write(context.Background(), everyLevel()); err != nil {
			t.Fatal(err)
		}
	}
	var queries []string
	for _, q := range r.requests() {
		if u, p, ok := (&http.Request{Header: q.header}).BasicAuth(); !ok || u != "admin" || p != "s3cret" {
			t.Errorf("%s: basic auth %q %q %v", q.path, u, p, ok)
		}
		switch q.path {
		case "/prefix/query":
			queries = append(queries, q.body)
		case "/prefix/write":
			if q.query.Get("db") != `k8s "prod"` || q.query.Get("rp") != "a week" {
				t.Errorf("write to %v", q.query)
			}
		default:
			t.Errorf("request to %s", q.path)
		}
	}
	want := []string{`CREATE DATABASE "k8s \"prod\""`, `CREATE RETENTION POLICY "a week" ON "k8s \"prod\"" DURATION 7d REPLICATION 1 DEFAULT`}
	if !slices.Equal(queries, want) {
		t.Errorf("queries %q, want %q", queries, want)
	}
}

func TestV2Request(t *testing.T) {
	r := newRecorder(t)
	w := newWriter(t, Options{URL: r.srv.URL, Bucket: "k8s/autogen", Org: "ops", Token: "user:pw"})
	if err := w.Write(context.Background(), everyLevel()); err != nil {
		t.Fatal(err)
	}
	reqs := r.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want one write (nothing is created with the 2.x API)", len(reqs))
	}
	q := reqs[0]
	if q.path != "/api/v2/write" || q.query.Get("org") != "ops" || q.query.Get("bucket") != "k8s/autogen" || q.query.Get("precision") != "ms" {
		t.Errorf("request %s?%s", q.path, q.query.Encode())
	}
	if a := q.header.Get("Authorization"); a != "Token user:pw" {
		t.Errorf("Authorization %q", a)
	}
}

func TestNewRejects(t *testing.T) {
	for _, o := range []Options{
		{Database: "k8s"},
		{URL: "influxdb:8086", Database: "k8s"},
		{URL: "http://x"},
		{URL: "http://x", Database: "k8s", Bucket: "b"},
		{URL: "http://x", Bucket: "b", User: "u"},
		{URL: "http://x", Database: "k8s", Token: "t"},
		{URL: "http://x", Database: "k8s", RetentionDuration: time.Hour},
		{URL: "http://x", Database: "k8s", RetentionPolicy: "p", RetentionDuration: time.Minute},
		{URL: "http://x", Database: "k8s", Timeout: -time.Second},
		{URL: "https://x", Database: "k8s", CAFile: "/nonexistent.pem"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

func TestDurationLit(t *testing.T) {
	for d, want := range map[time.Duration]string{
		7 * 24 * time.Hour: "7d", 36 * time.Hour: "36h", 90 * time.Minute: "90m",
		time.Hour + time.Second: "3601s", time.Hour + time.Millisecond: "3600001ms",
	} {
		if got := durationLit(d); got != want {
			t.Errorf("durationLit(%v) = %s, want %s", d, got, want)
		}
	}
}

func TestErrorClassification(t *testing.T) {
	conflict := `{"error":"partial write: field type conflict: input field \"value\" on measurement \"cpu/usage_rate\" is type float, already exists as type integer dropped=7"}`
	for _, tc := range []struct {
		status int
		body   string
		retry  bool
		want   string
	}{
		{400, conflict, false, "400 Bad Request: " + conflict},
		{401, `{"error":"authorization failed"}`, false, "authorization failed"},
		{413, `{"error":"Request Entity Too Large"}`, false, "413"},
		{429, "slow down", true, "slow down"},
		{500, `{"error":"timeout"}`, true, "timeout"},
		{503, "engine: cache maximum memory size exceeded", true, "cache maximum memory size exceeded"},
	} {
		r := newRecorder(t)
		r.answer = func(int) (int, string) { return tc.status, tc.body }
		w := newWriter(t, Options{URL: r.srv.URL, Bucket: "k8s"})
		err := w.Write(context.Background(), everyLevel())
		if err == nil {
			t.Fatalf("%d: no error", tc.status)
		}
		if retry, _ := sink.IsRetryable(err); retry != tc.retry {
			t.Errorf("%d: retryable %v, want %v: %v", tc.status, retry, tc.retry, err)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d: error %q lacks %q", tc.status, err, tc.want)
		}
		if s := w.Stats(); s.Points != 0 || s.Failed != 7 {
			t.Errorf("%d: stats %+v", tc.status, s)
		}
	}
}

// A retryable failure ends the Write at once; another failure does not stop
// the rest of the batch, and the first such error is returned.
func TestPartialFailure(t *testing.T) {
	for _, tc := range []struct {
		status   int
		requests int
		points   uint64
	}{{503, 1, 0}, {400, 3, 7001}} {
		r := newRecorder(t)
		r.answer = func(n int) (int, string) {
			if n == 0 {
				return tc.status, "first request refused"
			}
			return 0, ""
		}
		w := newWriter(t, Options{URL: r.srv.URL, Database: "k8s"})
		err := w.Write(context.Background(), bigBatch(12_001))
		if err == nil || !strings.Contains(err.Error(), "first request refused") {
			t.Errorf("%d: error %v", tc.status, err)
		}
		if n := len(r.writes()); n != tc.requests {
			t.Errorf("%d: %d requests, want %d", tc.status, n, tc.requests)
		}
		if s := w.Stats(); s.Points != tc.points || s.Failed != 5000 {
			t.Errorf("%d: stats %+v", tc.status, s)
		}
	}
}

// A 404 "database not found" (the database was dropped) has the database
// created again and the request sent once more.
func TestDatabaseRecreated(t *testing.T) {
	r := newRecorder(t)
	r.answer = func(n int) (int, string) {
		if n == 1 {
			return http.StatusNotFound, `{"error":"database not found: \"k8s\""}`
		}
		return 0, ""
	}
	w := newWriter(t, Options{URL: r.srv.URL, Database: "k8s"})
	for range 2 {
		if err := w.Write(context.Background(), everyLevel()); err != nil {
			t.Fatal(err)
		}
	}
	var paths []string
	for _, q := range r.requests() {
		paths = append(paths, q.path)
	}
	want := []string{"/query", "/write", "/write", "/query", "/write"}
	if !slices.Equal(paths, want) {
		t.Errorf("requests %v, want %v", paths, want)
	}
	if s := w.Stats(); s.Points != 14 || s.Requests != 2 {
		t.Errorf("stats %+v", s)
	}
}

// A server that accepts the connection and never answers: the Write returns
// by its context's deadline, or by Options.Timeout, with a retryable error.
func TestHangingServer(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	for _, tc := range []struct {
		name     string
		ctx      time.Duration
		timeout  time.Duration
		deadline time.Duration
	}{
		{"ctx deadline", 300 * time.Millisecond, time.Minute, 300 * time.Millisecond},
		{"Options.Timeout", time.Minute, 300 * time.Millisecond, 300 * time.Millisecond},
	} {
		for _, o := range []Options{{URL: srv.URL, Bucket: "b"}, {URL: srv.URL, Database: "k8s"}} { // 1.x hangs in CREATE DATABASE
			o.Timeout = tc.timeout
			w := newWriter(t, o)
			ctx, cancel := context.WithTimeout(context.Background(), tc.ctx)
			start := time.Now()
			err := w.Write(ctx, everyLevel())
			took := time.Since(start)
			cancel()
			if retry, _ := sink.IsRetryable(err); !retry || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s: error %v, want a retryable deadline", tc.name, err)
			}
			if !(took >= tc.deadline && took < tc.deadline+2*time.Second) {
				t.Errorf("%s: returned after %v, want about %v", tc.name, took, tc.deadline)
			}
		}
	}
}

// A refused connection is retryable.
func TestConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	w := newWriter(t, Options{URL: u, Bucket: "b"})
	err := w.Write(context.Background(), everyLevel())
	if retry, _ := sink.IsRetryable(err); !retry {
		t.Errorf("error %v, want retryable", err)
	}
}

func TestTLS(t *testing.T) {
	var got bytes.Buffer
	var mu sync.Mutex
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		fmt.Fprintln(&got, r.URL.Path)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	srv.StartTLS()
	t.Cleanup(srv.Close)
	// Untrusted certificate: refused (and retryable: it may be a
	// certificate rotation under way).
	w := newWriter(t, Options{URL: srv.URL, Bucket: "b"})
	if err := w.Write(context.Background(), everyLevel()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted server: %v", err)
	}
	// Trusted through CAFile.
	ca := t.TempDir() + "/ca.pem"
	if err := writePEM(ca, srv.Certificate().Raw); err != nil {
		t.Fatal(err)
	}
	w = newWriter(t, Options{URL: srv.URL, Bucket: "b", CAFile: ca})
	if err := w.Write(context.Background(), everyLevel()); err != nil {
		t.Errorf("with CAFile: %v", err)
	}
	w = newWriter(t, Options{URL: srv.URL, Bucket: "b", InsecureSkipVerify: true})
	if err := w.Write(context.Background(), everyLevel()); err != nil {
		t.Errorf("with InsecureSkipVerify: %v", err)
	}
	if s := got.String(); s != "/api/v2/write\n/api/v2/write\n" {
		t.Errorf("requests %q", s)
	}
}

func writePEM(path string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
}
