package remotewrite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"

	"github.com/kubemon/kubemon/internal/sink"
	"github.com/kubemon/kubemon/internal/version"
)

// received is one request a test server got.
type received struct {
	header http.Header
	method string
	req    prompb.WriteRequest
}

// recorder is a remote write endpoint that decodes and keeps every request
// and answers what answer says (204 when it returns 0).
type recorder struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	got    []received
	answer func(n int, r *http.Request, w http.ResponseWriter) int // n counts requests from 0
}

func newRecorder(t *testing.T, answer func(n int, r *http.Request, w http.ResponseWriter) int) *recorder {
	rec := &recorder{t: t, answer: answer}
	rec.srv = httptest.NewServer(rec)
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	wr, err := decodeBody(body)
	if err != nil {
		rec.t.Errorf("decoding a request: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rec.mu.Lock()
	n := len(rec.got)
	rec.got = append(rec.got, received{header: r.Header.Clone(), method: r.Method, req: wr})
	rec.mu.Unlock()
	status := 0
	if rec.answer != nil {
		status = rec.answer(n, r, w)
	}
	if status == 0 {
		w.WriteHeader(http.StatusNoContent)
	}
}

func (rec *recorder) requests() []received {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.got)
}

// decodeBody decodes a request with github.com/golang/snappy, the decoder
// Prometheus' receiver uses, and prompb.
func decodeBody(body []byte) (prompb.WriteRequest, error) {
	var wr prompb.WriteRequest
	pb, err := snappy.Decode(nil, body)
	if err != nil {
		return wr, fmt.Errorf("snappy: %w", err)
	}
	if err := wr.Unmarshal(pb); err != nil {
		return wr, fmt.Errorf("protobuf: %w", err)
	}
	return wr, nil
}

func newWriter(t *testing.T, o Options) *Writer {
	t.Helper()
	w, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return w
}

func series(name string, kv []string, samples ...sink.Sample) sink.Series {
	return sink.Series{Labels: labels.FromStrings(append([]string{"__name__", name}, kv...)...), Samples: samples}
}

// pbLabels spells a sorted label set.
func pbLabels(kv ...string) []prompb.Label {
	var out []prompb.Label
	for i := 0; i < len(kv); i += 2 {
		out = append(out, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

// sameSeries compares two series exactly: labels, timestamps, value bits
// (a NaN matches only the same NaN, so a staleness marker must stay one).
func sameSeries(got, want prompb.TimeSeries) error {
	if !slices.EqualFunc(got.Labels, want.Labels, func(a, b prompb.Label) bool { return a.Name == b.Name && a.Value == b.Value }) {
		return fmt.Errorf("labels %v, want %v", got.Labels, want.Labels)
	}
	if len(got.Samples) != len(want.Samples) {
		return fmt.Errorf("%d samples, want %d", len(got.Samples), len(want.Samples))
	}
	for i := range got.Samples {
		g, w := got.Samples[i], want.Samples[i]
		if g.Timestamp != w.Timestamp || math.Float64bits(g.Value) != math.Float64bits(w.Value) {
			return fmt.Errorf("sample %d: %v@%d (bits %#x), want %v@%d (bits %#x)", i, g.Value, g.Timestamp, math.Float64bits(g.Value), w.Value, w.Timestamp, math.Float64bits(w.Value))
		}
	}
	if len(got.Exemplars) != 0 || len(got.Histograms) != 0 {
		return fmt.Errorf("%d exemplars and %d histograms, want none", len(got.Exemplars), len(got.Histograms))
	}
	return nil
}

func TestEncoding(t *testing.T) {
	rec := newRecorder(t, nil)
	w := newWriter(t, Options{URL: rec.srv.URL + "/api/v1/write", ExternalLabels: map[string]string{"cluster": "prod"}})
	stale := math.Float64frombits(value.StaleNaN)
	batch := []sink.Series{
		series("container_cpu_usage_cores", []string{"namespace", "shop", "pod", "web-0", "container", "app", "node", "node-1"},
			sink.Sample{T: 1_700_000_000_000, V: 0.25}, sink.Sample{T: 1_700_000_015_000, V: 0.5}, sink.Sample{T: 1_700_000_030_000, V: stale}),
		series("node_filesystem_inodes_free", []string{"node", "node-1"},
			sink.Sample{T: 1_700_000_000_000, V: 18446744073709551615}, sink.Sample{T: 1_700_000_015_000, V: 0}),
		series("pod_cpu_usage_cores", []string{"namespace", "shop", "pod", "web-0", "node", "node-1"},
			sink.Sample{T: -1, V: 1e-300}, sink.Sample{T: 1_700_000_015_000, V: -2.5}, sink.Sample{T: 1_700_000_015_001, V: math.Inf(1)}),
	}
	if err := w.Write(context.Background(), batch); err != nil {
		t.Fatalf("Write: %v", err)
	}
	got := rec.requests()
	if len(got) != 1 {
		t.Fatalf("%d requests, want 1", len(got))
	}
	h := got[0].header
	for k, v := range map[string]string{
		"Content-Encoding":                  "snappy",
		"Content-Type":                      "application/x-protobuf",
		"User-Agent":                        "kubemon/" + version.Version,
		"X-Prometheus-Remote-Write-Version": "0.1.0",
	} {
		if h.Get(k) != v {
			t.Errorf("header %s: %q, want %q", k, h.Get(k), v)
		}
	}
	if got[0].method != http.MethodPost {
		t.Errorf("method %s, want POST", got[0].method)
	}
	want := []prompb.TimeSeries{
		{
			Labels:  pbLabels("__name__", "container_cpu_usage_cores", "cluster", "prod", "container", "app", "namespace", "shop", "node", "node-1", "pod", "web-0"),
			Samples: []prompb.Sample{{Timestamp: 1_700_000_000_000, Value: 0.25}, {Timestamp: 1_700_000_015_000, Value: 0.5}, {Timestamp: 1_700_000_030_000, Value: stale}},
		},
		{
			Labels:  pbLabels("__name__", "node_filesystem_inodes_free", "cluster", "prod", "node", "node-1"),
			Samples: []prompb.Sample{{Timestamp: 1_700_000_000_000, Value: 18446744073709551615}, {Timestamp: 1_700_000_015_000, Value: 0}},
		},
		{
			Labels:  pbLabels("__name__", "pod_cpu_usage_cores", "cluster", "prod", "namespace", "shop", "node", "node-1", "pod", "web-0"),
			Samples: []prompb.Sample{{Timestamp: -1, Value: 1e-300}, {Timestamp: 1_700_000_015_000, Value: -2.5}, {Timestamp: 1_700_000_015_001, Value: math.Inf(1)}},
		},
	}
	ts := got[0].req.Timeseries
	if len(ts) != len(want) {
		t.Fatalf("%d series, want %d", len(ts), len(want))
	}
	for i := range want {
		if err := sameSeries(ts[i], want[i]); err != nil {
			t.Errorf("series %d: %v", i, err)
		}
	}
	if !value.IsStaleNaN(ts[0].Samples[2].Value) {
		t.Errorf("the staleness marker arrived as %#x, want StaleNaN %#x", math.Float64bits(ts[0].Samples[2].Value), value.StaleNaN)
	}
	if len(got[0].req.Metadata) != 0 {
		t.Errorf("metadata %v, want none", got[0].req.Metadata)
	}
}

func TestExternalLabels(t *testing.T) {
	rec := newRecorder(t, nil)
	w := newWriter(t, Options{URL: rec.srv.URL, ExternalLabels: map[string]string{
		"cluster": "prod", "A_first": "a", "zz_last": "z", "node": "from-external", "region": "eu",
	}})
	batch := []sink.Series{
		// Its own cluster and node win over the external ones.
		series("m", []string{"cluster", "own", "node", "n1"}, sink.Sample{T: 1, V: 1}),
		series("m", []string{"pod", "p"}, sink.Sample{T: 1, V: 2}),
		{Labels: labels.FromStrings("zz_last", "own"), Samples: []sink.Sample{{T: 1, V: 3}}},
	}
	if err := w.Write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	ts := rec.requests()[0].req.Timeseries
	want := [][]prompb.Label{
		pbLabels("A_first", "a", "__name__", "m", "cluster", "own", "node", "n1", "region", "eu", "zz_last", "z"),
		pbLabels("A_first", "a", "__name__", "m", "cluster", "prod", "node", "from-external", "pod", "p", "region", "eu", "zz_last", "z"),
		pbLabels("A_first", "a", "cluster", "prod", "node", "from-external", "region", "eu", "zz_last", "own"),
	}
	for i := range want {
		if err := sameSeries(prompb.TimeSeries{Labels: ts[i].Labels}, prompb.TimeSeries{Labels: want[i]}); err != nil {
			t.Errorf("series %d: %v", i, err)
		}
		if !slices.IsSortedFunc(ts[i].Labels, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) }) {
			t.Errorf("series %d: labels not sorted: %v", i, ts[i].Labels)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{}, "want http:// or https://"},
		{Options{URL: "ftp://x/y"}, "want http:// or https://"},
		{Options{URL: "http://"}, "want http:// or https://"},
		{Options{URL: "http://[::1"}, "URL"},
		{Options{URL: "http://x", Timeout: -time.Second}, "negative"},
		{Options{URL: "http://x", MaxSamplesPerSend: -1}, "negative"},
		{Options{URL: "http://x", ExternalLabels: map[string]string{"1abc": "v"}}, `"1abc"`},
		{Options{URL: "http://x", ExternalLabels: map[string]string{"a-b": "v"}}, `"a-b"`},
		{Options{URL: "http://x", ExternalLabels: map[string]string{"__name__": "v"}}, `"__name__"`},
		{Options{URL: "http://x", ExternalLabels: map[string]string{"cluster": ""}}, "empty value"},
		{Options{URL: "http://x", Headers: map[string]string{"Content-Encoding": "gzip"}}, "Content-Encoding"},
		{Options{URL: "http://x", Headers: map[string]string{"authorization": "x"}}, "Authorization"},
		{Options{URL: "http://x", Username: "u", Password: "p", PasswordFile: "/f"}, "password"},
		{Options{URL: "http://x", BearerToken: "t", BearerTokenFile: "/f"}, "bearer_token"},
		{Options{URL: "http://x", Username: "u", BearerToken: "t"}, "at most one"},
		{Options{URL: "http://x", CertFile: "/c"}, "key file"},
		{Options{URL: "http://x", CAFile: filepath.Join(dir, "missing.pem")}, "missing.pem"},
	} {
		_, err := New(tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v): %v, want an error containing %q", tc.o, err, tc.want)
		}
	}
	w, err := New(Options{URL: "https://user:secret@remote:9090/api/v1/write"})
	if err != nil {
		t.Fatal(err)
	}
	if w.timeout != DefaultTimeout || w.max != DefaultMaxSamplesPerSend {
		t.Errorf("defaults: timeout %v, max %d", w.timeout, w.max)
	}
	if strings.Contains(w.name, "secret") {
		t.Errorf("the URL's password shows in %q", w.name)
	}
}

func TestSplit(t *testing.T) {
	rec := newRecorder(t, nil)
	w := newWriter(t, Options{URL: rec.srv.URL, MaxSamplesPerSend: 5})
	mk := func(name string, n int) sink.Series {
		s := series(name, nil)
		for i := range n {
			s.Samples = append(s.Samples, sink.Sample{T: int64(1000 * (i + 1)), V: float64(i)})
		}
		return s
	}
	batch := []sink.Series{mk("a", 3), mk("b", 7), mk("c", 0), mk("d", 2), mk("e", 1)}
	if err := w.Write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	// Requests of 5, 5, 3 samples: a[0:3] b[0:2] | b[2:7] | d[0:2] e[0:1].
	type part struct {
		name   string
		t0, t1 int64
	}
	want := [][]part{
		{{"a", 1000, 3000}, {"b", 1000, 2000}},
		{{"b", 3000, 7000}},
		{{"d", 1000, 2000}, {"e", 1000, 1000}},
	}
	got := rec.requests()
	if len(got) != len(want) {
		t.Fatalf("%d requests, want %d", len(got), len(want))
	}
	for i := range want {
		var parts []part
		for _, ts := range got[i].req.Timeseries {
			parts = append(parts, part{ts.Labels[0].Value, ts.Samples[0].Timestamp, ts.Samples[len(ts.Samples)-1].Timestamp})
		}
		if !slices.Equal(parts, want[i]) {
			t.Errorf("request %d: %v, want %v", i, parts, want[i])
		}
	}

	// A random batch: every request but the last is full, and each
	// series' samples arrive complete and in order.
	rec = newRecorder(t, nil)
	w = newWriter(t, Options{URL: rec.srv.URL, MaxSamplesPerSend: 97})
	r := rand.New(rand.NewPCG(1, 2))
	batch = nil
	total := 0
	for i := range 300 {
		n := r.IntN(31)
		total += n
		batch = append(batch, mk(fmt.Sprintf("s%03d", i), n))
	}
	if err := w.Write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	got = rec.requests()
	if wantN := (total + 96) / 97; len(got) != wantN {
		t.Fatalf("%d requests for %d samples, want %d", len(got), total, wantN)
	}
	seen := map[string][]prompb.Sample{}
	var order []string
	for i, g := range got {
		n := 0
		for _, ts := range g.req.Timeseries {
			n += len(ts.Samples)
			name := ts.Labels[0].Value
			if len(ts.Samples) == 0 {
				t.Errorf("request %d: series %s without samples", i, name)
			}
			if _, ok := seen[name]; !ok {
				order = append(order, name)
			}
			seen[name] = append(seen[name], ts.Samples...)
		}
		if n > 97 || (i < len(got)-1 && n != 97) {
			t.Errorf("request %d of %d: %d samples", i+1, len(got), n)
		}
	}
	var wantOrder []string
	for _, s := range batch {
		if len(s.Samples) == 0 {
			continue
		}
		name := s.Labels.Get("__name__")
		wantOrder = append(wantOrder, name)
		for j, x := range s.Samples {
			if j >= len(seen[name]) || seen[name][j].Timestamp != x.T || seen[name][j].Value != x.V {
				t.Fatalf("series %s: got %v, want %v", name, seen[name], s.Samples)
			}
		}
		if len(seen[name]) != len(s.Samples) {
			t.Fatalf("series %s: %d samples, want %d", name, len(seen[name]), len(s.Samples))
		}
	}
	if !slices.Equal(order, wantOrder) {
		t.Errorf("series order %v, want %v", order, wantOrder)
	}
	t.Logf("%d samples of %d series in %d requests of at most 97", total, len(batch), len(got))
}

func TestEmptyBatch(t *testing.T) {
	rec := newRecorder(t, nil)
	w := newWriter(t, Options{URL: rec.srv.URL})
	for _, b := range [][]sink.Series{nil, {series("m", nil)}} {
		if err := w.Write(context.Background(), b); err != nil {
			t.Errorf("Write(%v): %v", b, err)
		}
	}
	if n := len(rec.requests()); n != 0 {
		t.Errorf("%d requests for empty batches, want 0", n)
	}
}

func TestAuthAndHeaders(t *testing.T) {
	dir := t.TempDir()
	passFile := filepath.Join(dir, "password")
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(passFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokenFile, []byte("token-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder(t, func(_ int, r *http.Request, w http.ResponseWriter) int {
		if u, p, ok := r.BasicAuth(); ok && u == "kubemon" && p == "s3cret" {
			return 0
		}
		if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer token-") {
			return 0
		}
		http.Error(w, "unauthorized: bad credentials", http.StatusUnauthorized)
		return http.StatusUnauthorized
	})
	batch := []sink.Series{series("m", nil, sink.Sample{T: 1, V: 1})}
	for _, tc := range []struct {
		name string
		o    Options
		ok   bool
	}{
		{"basic", Options{Username: "kubemon", Password: "s3cret"}, true},
		{"basic password file", Options{Username: "kubemon", PasswordFile: passFile}, true},
		{"basic wrong password", Options{Username: "kubemon", Password: "guess"}, false},
		{"bearer token file", Options{BearerTokenFile: tokenFile, Headers: map[string]string{"X-Scope-OrgID": "tenant-a", "THANOS-TENANT": "t"}}, true},
		{"none", Options{}, false},
	} {
		tc.o.URL = rec.srv.URL
		err := newWriter(t, tc.o).Write(context.Background(), batch)
		if tc.ok != (err == nil) {
			t.Errorf("%s: %v", tc.name, err)
		}
		if !tc.ok {
			if retry, _ := sink.IsRetryable(err); retry || !strings.Contains(err.Error(), "401 Unauthorized: unauthorized: bad credentials") {
				t.Errorf("%s: %v (retryable %v), want a 401 with the server's message, not retryable", tc.name, err, retry)
			}
		}
	}
	got := rec.requests()
	if u, p, _ := (&http.Request{Header: got[1].header}).BasicAuth(); u != "kubemon" || p != "s3cret" {
		t.Errorf("password file: sent %q:%q", u, p)
	}
	h := got[3].header
	if h.Get("Authorization") != "Bearer token-1" || h.Get("X-Scope-OrgID") != "tenant-a" || h.Get("Thanos-Tenant") != "t" {
		t.Errorf("bearer token file and headers: sent %v", h)
	}
	if h.Get("X-Prometheus-Remote-Write-Version") != "0.1.0" || h.Get("User-Agent") != "kubemon/"+version.Version {
		t.Errorf("extra headers replaced the protocol's: %v", h)
	}

	// A rotated token is read again.
	w := newWriter(t, Options{URL: rec.srv.URL, BearerTokenFile: tokenFile})
	if err := w.Write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokenFile, []byte("token-2"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	got = rec.requests()
	if a, b := got[len(got)-2].header.Get("Authorization"), got[len(got)-1].header.Get("Authorization"); a != "Bearer token-1" || b != "Bearer token-2" {
		t.Errorf("token rotation: sent %q then %q", a, b)
	}
}

func TestTLS(t *testing.T) {
	p := newPKI(t, "remote.test")
	var mu sync.Mutex
	var clientCN []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		clientCN = append(clientCN, r.TLS.PeerCertificates[0].Subject.CommonName)
		mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.TLS = p.serverTLS(t)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes below
	srv.StartTLS()
	t.Cleanup(srv.Close)
	batch := []sink.Series{series("m", nil, sink.Sample{T: 1, V: 1})}
	for _, tc := range []struct {
		name string
		o    Options
		err  string // "" = success
	}{
		{"CA, server name, client certificate", Options{CAFile: p.caFile, ServerName: "remote.test", CertFile: p.clientCert, KeyFile: p.clientKey}, ""},
		{"insecure skip verify", Options{InsecureSkipVerify: true, CertFile: p.clientCert, KeyFile: p.clientKey}, ""},
		{"system roots", Options{ServerName: "remote.test", CertFile: p.clientCert, KeyFile: p.clientKey}, "certificate signed by unknown authority"},
		{"wrong server name", Options{CAFile: p.caFile, CertFile: p.clientCert, KeyFile: p.clientKey}, "127.0.0.1"},
		{"no client certificate", Options{CAFile: p.caFile, ServerName: "remote.test"}, "certificate"},
	} {
		tc.o.URL = srv.URL + "/api/v1/write"
		err := newWriter(t, tc.o).Write(context.Background(), batch)
		if tc.err == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		retry, _ := sink.IsRetryable(err)
		if err == nil || !strings.Contains(err.Error(), tc.err) || !retry {
			t.Errorf("%s: %v (retryable %v), want a retryable error containing %q", tc.name, err, retry, tc.err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(clientCN, []string{"kubemon", "kubemon"}) {
		t.Errorf("client certificates seen: %v", clientCN)
	}
}

func TestRetryClassification(t *testing.T) {
	for _, tc := range []struct {
		status int
		header string
		body   string
		retry  bool
		after  time.Duration
		msg    string
	}{
		{status: 400, body: "out of order sample\n", msg: "400 Bad Request: out of order sample"},
		{status: 401, body: "no", msg: "401 Unauthorized: no"},
		{status: 413, body: "too big", msg: "413 Request Entity Too Large: too big"},
		{status: 429, header: "3", body: "ingestion rate limit exceeded", retry: true, after: 3 * time.Second, msg: "429 Too Many Requests: ingestion rate limit exceeded"},
		{status: 503, body: "overloaded", retry: true, msg: "503 Service Unavailable: overloaded"},
		{status: 500, header: "1", body: "TSDB not ready", retry: true, after: time.Second, msg: "TSDB not ready"},
	} {
		rec := newRecorder(t, func(_ int, _ *http.Request, w http.ResponseWriter) int {
			if tc.header != "" {
				w.Header().Set("Retry-After", tc.header)
			}
			http.Error(w, tc.body, tc.status)
			return tc.status
		})
		err := newWriter(t, Options{URL: rec.srv.URL}).Write(context.Background(), []sink.Series{series("m", nil, sink.Sample{T: 1, V: 1})})
		retry, after := sink.IsRetryable(err)
		if err == nil || retry != tc.retry || after != tc.after || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%d: %v (retryable %v after %v), want retryable %v after %v with %q", tc.status, err, retry, after, tc.retry, tc.after, tc.msg)
		}
	}
}

func TestHangingServer(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	batch := []sink.Series{series("m", nil, sink.Sample{T: 1, V: 1})}
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		ctx     time.Duration
	}{
		{"ctx deadline", 0, 300 * time.Millisecond},
		{"Options.Timeout", 300 * time.Millisecond, time.Hour},
	} {
		w := newWriter(t, Options{URL: srv.URL, Timeout: tc.timeout})
		ctx, cancel := context.WithTimeout(context.Background(), tc.ctx)
		start := time.Now()
		err := w.Write(ctx, batch)
		took := time.Since(start)
		cancel()
		retry, _ := sink.IsRetryable(err)
		if !retry || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: %v (retryable %v), want a retryable deadline error", tc.name, err, retry)
		}
		if !(took >= 300*time.Millisecond && took < 5*time.Second) {
			t.Errorf("%s: returned after %v, want about 300ms", tc.name, took)
		}
		t.Logf("%s: returned after %v: %v", tc.name, took.Round(time.Millisecond), err)
	}
}

func TestConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	err = newWriter(t, Options{URL: "http://" + addr + "/api/v1/write"}).Write(context.Background(), []sink.Series{series("m", nil, sink.Sample{T: 1, V: 1})})
	if retry, _ := sink.IsRetryable(err); !retry || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("%v (retryable %v), want a retryable connection refused", err, retry)
	}
}

// splitBatch is 3 series of 2 samples: 3 requests of 2 samples each.
func splitBatch() []sink.Series {
	var b []sink.Series
	for _, n := range []string{"a", "b", "c"} {
		b = append(b, series(n, []string{"pod", "p"}, sink.Sample{T: 1000, V: 1}, sink.Sample{T: 2000, V: 2}))
	}
	return b
}

// names lists the first series name of each request.
func names(rs []received) string {
	var out []string
	for _, r := range rs {
		out = append(out, r.req.Timeseries[0].Labels[0].Value)
	}
	return strings.Join(out, ",")
}

func TestRefusedRequestDoesNotStopTheBatch(t *testing.T) {
	rec := newRecorder(t, func(n int, _ *http.Request, w http.ResponseWriter) int {
		if n == 1 {
			http.Error(w, "out of order sample", http.StatusBadRequest)
			return http.StatusBadRequest
		}
		return 0
	})
	err := newWriter(t, Options{URL: rec.srv.URL, MaxSamplesPerSend: 2}).Write(context.Background(), splitBatch())
	if retry, _ := sink.IsRetryable(err); err == nil || retry || !strings.Contains(err.Error(), "2 of 6 samples refused: server answered 400 Bad Request: out of order sample") {
		t.Errorf("%v (retryable %v), want 2 of 6 samples refused with the server's message", err, retry)
	}
	if got := names(rec.requests()); got != "a,b,c" {
		t.Errorf("requests %s, want a,b,c", got)
	}
}

func TestResume(t *testing.T) {
	var mu sync.Mutex
	failed := map[int]bool{}
	var answers []int // status by request number, 0 = 204
	set := func(a []int) {
		mu.Lock()
		defer mu.Unlock()
		failed, answers = map[int]bool{}, a
	}
	rec := newRecorder(t, func(n int, _ *http.Request, w http.ResponseWriter) int {
		mu.Lock()
		defer mu.Unlock()
		if n < len(answers) && answers[n] != 0 && !failed[n] {
			failed[n] = true
			if answers[n] == http.StatusServiceUnavailable {
				w.Header().Set("Retry-After", "1")
			}
			http.Error(w, "injected", answers[n])
			return answers[n]
		}
		return 0
	})
	w := newWriter(t, Options{URL: rec.srv.URL, MaxSamplesPerSend: 2})
	ctx := context.Background()

	// Request 2 of 3 fails with 503: the retry resumes at request 2.
	set([]int{0, 503})
	err := w.Write(ctx, splitBatch())
	retry, after := sink.IsRetryable(err)
	if !retry || after != time.Second || !strings.Contains(err.Error(), "request 2 of 3 (2 samples)") {
		t.Fatalf("%v (retryable %v after %v), want request 2 of 3 retryable after 1s", err, retry, after)
	}
	if err := w.Write(ctx, splitBatch()); err != nil { // an equal batch, not the same slice
		t.Fatal(err)
	}
	if got := names(rec.requests()); got != "a,b,b,c" {
		t.Errorf("requests %s, want a,b,b,c (a not sent again)", got)
	}
	if len(w.progress) != 0 {
		t.Errorf("%d batches remembered after success", len(w.progress))
	}
	// Delivered batches are not remembered: sending it again sends it all.
	if err := w.Write(ctx, splitBatch()); err != nil {
		t.Fatal(err)
	}
	if got := names(rec.requests()[4:]); got != "a,b,c" {
		t.Errorf("requests %s, want a,b,c", got)
	}

	// Request 1 refused, request 2 failing: the retry sends 2 and 3 and
	// then reports request 1's refusal.
	rec.mu.Lock()
	rec.got = nil
	rec.mu.Unlock()
	set([]int{400, 503})
	err = w.Write(ctx, splitBatch())
	if retry, _ := sink.IsRetryable(err); !retry {
		t.Fatalf("%v, want retryable", err)
	}
	err = w.Write(ctx, splitBatch())
	if retry, _ := sink.IsRetryable(err); retry || err == nil || !strings.Contains(err.Error(), "2 of 6 samples refused: server answered 400 Bad Request: injected") {
		t.Errorf("%v (retryable %v), want request 1's refusal", err, retry)
	}
	if got := names(rec.requests()); got != "a,b,b,c" {
		t.Errorf("requests %s, want a,b,b,c", got)
	}

	// Another batch does not resume where this one stopped.
	rec.mu.Lock()
	rec.got = nil
	rec.mu.Unlock()
	set([]int{0, 503})
	if err := w.Write(ctx, splitBatch()); err == nil {
		t.Fatal("want the injected 503")
	}
	other := splitBatch()
	other[2].Samples[1].V = 2.5
	if err := w.Write(ctx, other); err != nil {
		t.Fatal(err)
	}
	if got := names(rec.requests()); got != "a,b,a,b,c" {
		t.Errorf("requests %s, want a,b,a,b,c", got)
	}
}

func TestProgressBound(t *testing.T) {
	w := newWriter(t, Options{URL: "http://x"})
	for i := range maxProgress + 10 {
		w.remember(uint64(i), progress{next: 1})
	}
	if len(w.progress) != maxProgress {
		t.Fatalf("%d remembered, want %d", len(w.progress), maxProgress)
	}
	for i := range 10 {
		if _, ok := w.progress[uint64(i)]; ok {
			t.Errorf("batch %d, among the oldest, was kept", i)
		}
	}
}

func TestConcurrentWrites(t *testing.T) {
	var mu sync.Mutex
	samples := 0
	rec := newRecorder(t, func(_ int, r *http.Request, _ http.ResponseWriter) int { return 0 })
	w := newWriter(t, Options{URL: rec.srv.URL, MaxSamplesPerSend: 7, ExternalLabels: map[string]string{"cluster": "c"}})
	var wg sync.WaitGroup
	for shard := range 8 {
		wg.Go(func() {
			for i := range 20 {
				var b []sink.Series
				for j := range 5 {
					b = append(b, series("m", []string{"shard", fmt.Sprint(shard), "s", fmt.Sprint(j)}, sink.Sample{T: int64(i*10 + 1), V: 1}, sink.Sample{T: int64(i*10 + 2), V: 2}))
				}
				if err := w.Write(context.Background(), b); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				samples += 10
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	n := 0
	for _, r := range rec.requests() {
		for _, ts := range r.req.Timeseries {
			n += len(ts.Samples)
		}
	}
	if n != samples || n != 8*20*10 {
		t.Errorf("server got %d samples, writers sent %d, want %d", n, samples, 8*20*10)
	}
}
