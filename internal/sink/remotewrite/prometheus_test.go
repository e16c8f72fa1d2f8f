package remotewrite

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	pmodel "github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/sink"
	"github.com/kubemon/kubemon/internal/testutil/promserver"
)

// The tests below write to a real Prometheus (Debian's 2.42 through
// promserver) and read back through its HTTP API.

const (
	objectsPerSeries = 3      // objects per series name of the contract
	samplesPerSeries = 6      // one every step
	step             = 15_000 // ms
	externalCluster  = "it"
)

// kubemonBatch is a realistic batch: every series name of kubemon's
// contract (model.AllSeries) for three objects, with the contract's label
// keys, samplesPerSeries samples each from t0 on, values of every kind
// (fractions of cores, byte counts, a 2^64-1 counter, zeros); the first
// series ends with a staleness marker one step after its last sample, and
// one more series has its own cluster label (the external label must not
// replace it).
func kubemonBatch(t0 int64) []sink.Series {
	pods := []string{"web-7d9f8c6b5-x2k4p", "coredns-5d78c9869d-q8zl7", "checkout-0"}
	namespaces := []string{"shop", "kube-system", "monitoring"}
	workloads := []string{"web", "coredns", "checkout"}
	kinds := []string{"Deployment", "Deployment", "StatefulSet"}
	var batch []sink.Series
	for si, s := range model.AllSeries() {
		for o := range objectsPerSeries {
			b := labels.NewBuilder(labels.EmptyLabels())
			b.Set("__name__", s.Name)
			for _, k := range s.Labels {
				v := ""
				switch k {
				case model.LabelNode:
					v = fmt.Sprintf("node-%d", o+1)
				case model.LabelNamespace:
					v = namespaces[o]
				case model.LabelPod:
					v = pods[o]
				case model.LabelContainer:
					v = []string{"app", "istio-proxy", "app"}[o]
				case model.LabelWorkload:
					v = workloads[o]
				case model.LabelWorkloadKind:
					v = kinds[o]
				case model.LabelKubeLabels:
					v = "app:" + workloads[o] + ",tier:backend"
				default:
					v = k + "-" + fmt.Sprint(o)
				}
				b.Set(k, v)
			}
			if s.Metric.ID == model.Info {
				b.Set(model.LabelKubeLabelPrefix+"app", workloads[o])
			}
			if len(s.Labels) == 0 && o > 0 {
				continue // the cluster level has one object
			}
			ser := sink.Series{Labels: b.Labels()}
			for k := range samplesPerSeries {
				ser.Samples = append(ser.Samples, sink.Sample{T: t0 + int64(k)*step, V: sampleValue(si, o, k)})
			}
			batch = append(batch, ser)
		}
	}
	batch[0].Samples = append(batch[0].Samples, sink.Sample{T: t0 + samplesPerSeries*step, V: math.Float64frombits(value.StaleNaN)})
	batch = append(batch, sink.Series{
		Labels:  labels.FromStrings("__name__", "kubemon_remote_write_test_info", "cluster", "own"),
		Samples: []sink.Sample{{T: t0, V: 1}},
	})
	return batch
}

func sampleValue(series, object, k int) float64 {
	switch {
	case series == 1 && object == 0:
		return 18446744073709551615 // a counter beyond int64
	case series == 2 && object == 1:
		return 0
	case series%3 == 0:
		return float64(series*1000+object) + float64(k)*12.5 // counters, seconds
	case series%3 == 1:
		return 0.001*float64(series+1) + 0.0137*float64(object*samplesPerSeries+k) // cores
	default:
		return float64((series+1)*(object+1))*1048576 + float64(k*4096) // bytes
	}
}

func countSamples(batch []sink.Series) (samples, stale int) {
	for _, s := range batch {
		for _, x := range s.Samples {
			if value.IsStaleNaN(x.V) {
				stale++
			} else {
				samples++
			}
		}
	}
	return samples, stale
}

// wantLabels is a series' labels as Prometheus must answer them: with the
// external cluster label unless it has its own.
func wantLabels(ls labels.Labels) string {
	b := labels.NewBuilder(ls)
	if !ls.Has("cluster") {
		b.Set("cluster", externalCluster)
	}
	return b.Labels().String()
}

// checkStored reads back every series of batch from p (a range selector
// returns the raw samples, staleness markers left out) and compares them
// sample for sample: counts first, then timestamps exactly and values
// with == (a NaN or a missing sample fails).
func checkStored(t *testing.T, p *promserver.Server, batch []sink.Series, at time.Time) {
	t.Helper()
	wantSamples, _ := countSamples(batch)
	// Counts first. Every series answers an instant query just after the
	// newest sample (before the staleness marker).
	var newest int64
	for _, s := range batch {
		for _, x := range s.Samples {
			if !value.IsStaleNaN(x.V) {
				newest = max(newest, x.T)
			}
		}
	}
	v := p.Query(t, `count({__name__=~".+"})`, time.UnixMilli(newest+1)).(pmodel.Vector)
	if len(v) != 1 || int(v[0].Value) != len(batch) {
		t.Fatalf("Prometheus answers %v series, want %d", v, len(batch))
	}
	m := p.Query(t, `{__name__=~".+"}[1h]`, at).(pmodel.Matrix)
	n := 0
	for _, ss := range m {
		n += len(ss.Values)
	}
	if len(m) != len(batch) || n != wantSamples {
		t.Fatalf("Prometheus holds %d series and %d samples, want %d and %d", len(m), n, len(batch), wantSamples)
	}
	got := map[string][]pmodel.SamplePair{}
	for _, ss := range m {
		b := labels.NewBuilder(labels.EmptyLabels())
		for k, v := range ss.Metric {
			b.Set(string(k), string(v))
		}
		got[b.Labels().String()] = ss.Values
	}
	if len(got) != len(batch) {
		t.Fatalf("%d series read back, want %d", len(got), len(batch))
	}
	n = 0
	for _, s := range batch {
		key := wantLabels(s.Labels)
		pairs, ok := got[key]
		if !ok {
			t.Fatalf("series %s not read back (external label %s=%q missing or wrong?)", key, "cluster", externalCluster)
		}
		var want []sink.Sample
		for _, x := range s.Samples {
			if !value.IsStaleNaN(x.V) {
				want = append(want, x)
			}
		}
		if len(pairs) != len(want) {
			t.Fatalf("series %s: %d samples read back, want %d", key, len(pairs), len(want))
		}
		for i, x := range want {
			g := pairs[i]
			if int64(g.Timestamp) != x.T || !(float64(g.Value) == x.V) {
				t.Fatalf("series %s sample %d: %v@%d, want %v@%d", key, i, g.Value, g.Timestamp, x.V, x.T)
			}
			n++
		}
	}
	if n != wantSamples {
		t.Fatalf("compared %d samples, want %d", n, wantSamples)
	}
}

// testTimes puts the batch in the recent past (the TSDB accepts samples
// within an hour of its newest), on whole seconds; at is when to read.
func testTimes() (t0 int64, at time.Time) {
	now := time.Now().Truncate(time.Second)
	t0 = now.Add(-10 * time.Minute).UnixMilli()
	return t0, now
}

func TestPrometheusReceiver(t *testing.T) {
	p := promserver.Start(t)
	t0, at := testTimes()
	batch := kubemonBatch(t0)
	samples, stale := countSamples(batch)
	w := newWriter(t, Options{URL: p.WriteURL(), ExternalLabels: map[string]string{"cluster": externalCluster}})
	ctx := context.Background()
	if err := w.Write(ctx, batch); err != nil {
		t.Fatalf("Write: %v", err)
	}
	t.Logf("wrote %d series, %d samples and %d staleness marker in %d requests", len(batch), samples, stale, (samples+stale+DefaultMaxSamplesPerSend-1)/DefaultMaxSamplesPerSend)
	checkStored(t, p, batch, at)

	// The staleness marker ends the first series at once: just before it
	// the series answers its last value, just after it nothing, while a
	// series without a marker is still answered (5-minute lookback).
	tStale := time.UnixMilli(batch[0].Samples[samplesPerSeries].T)
	ended := wantLabels(batch[0].Labels)
	last := batch[0].Samples[samplesPerSeries-1].V
	sel := func(s sink.Series) string {
		var parts []string
		s.Labels.Range(func(l labels.Label) { parts = append(parts, fmt.Sprintf("%s=%q", l.Name, l.Value)) })
		return "{" + strings.Join(parts, ",") + "}"
	}
	if v := p.Query(t, sel(batch[0]), tStale.Add(-time.Millisecond)).(pmodel.Vector); len(v) != 1 || !(float64(v[0].Value) == last) {
		t.Errorf("%s just before its staleness marker: %v, want %v", ended, v, last)
	}
	if v := p.Query(t, sel(batch[0]), tStale.Add(time.Second)).(pmodel.Vector); len(v) != 0 {
		t.Errorf("%s after its staleness marker: %v, want nothing", ended, v)
	}
	if v := p.Query(t, sel(batch[1]), tStale.Add(time.Second)).(pmodel.Vector); len(v) != 1 {
		t.Errorf("%s (no marker) at the same time: %v, want its last sample", wantLabels(batch[1].Labels), v)
	}
	// The external label is on every series but the one with its own.
	// (At that time the ended series is not answered.)
	if v := p.Query(t, fmt.Sprintf(`count({cluster=%q})`, externalCluster), tStale.Add(time.Second)).(pmodel.Vector); len(v) != 1 || int(v[0].Value) != len(batch)-2 {
		t.Errorf("series with cluster=%q: %v, want %d", externalCluster, v, len(batch)-2)
	}
	if v := p.Query(t, `kubemon_remote_write_test_info`, time.UnixMilli(t0)).(pmodel.Vector); len(v) != 1 || v[0].Metric["cluster"] != "own" {
		t.Errorf("the series with its own cluster label: %v, want cluster=\"own\"", v)
	}

	// Sending the same batch again: Prometheus 2.42 (without an
	// out-of-order window) refuses each request holding a sample older than
	// its series' newest with 400 "out of order sample"; the refusal is not
	// retryable and changes nothing stored.
	err := w.Write(ctx, batch)
	if retry, _ := sink.IsRetryable(err); err == nil || retry || !strings.Contains(err.Error(), "400 Bad Request: out of order sample") {
		t.Errorf("sending the batch again: %v (retryable %v), want 400 out of order sample, not retryable", err, retry)
	}
	t.Logf("sending the batch again: %v", err)
	checkStored(t, p, batch, at)

	// A sample older than its series' newest, alone: 400 with
	// Prometheus' message, not retryable. A different value at the newest
	// sample's time: 400 duplicate sample.
	old := []sink.Series{{Labels: batch[5].Labels, Samples: []sink.Sample{{T: t0 + step, V: 42}}}}
	err = w.Write(ctx, old)
	if retry, _ := sink.IsRetryable(err); err == nil || retry || !strings.Contains(err.Error(), "1 of 1 samples refused: server answered 400 Bad Request: out of order sample") {
		t.Errorf("an out-of-order sample: %v (retryable %v), want 400 out of order sample, not retryable", err, retry)
	}
	dup := []sink.Series{{Labels: batch[5].Labels, Samples: []sink.Sample{{T: t0 + (samplesPerSeries-1)*step, V: 42}}}}
	err = w.Write(ctx, dup)
	if retry, _ := sink.IsRetryable(err); err == nil || retry || !strings.Contains(err.Error(), "400 Bad Request: duplicate sample for timestamp") {
		t.Errorf("a different value at the same time: %v (retryable %v), want 400 duplicate sample for timestamp, not retryable", err, retry)
	}
	checkStored(t, p, batch, at)
}

// With an out-of-order window, Prometheus takes a batch sent again
// (identical samples are no-ops) and the answers do not change.
func TestPrometheusReceiverResendWithOutOfOrderWindow(t *testing.T) {
	p := promserver.StartWith(t, promserver.Config{OutOfOrderWindow: time.Hour})
	t0, at := testTimes()
	batch := kubemonBatch(t0)
	w := newWriter(t, Options{URL: p.WriteURL(), ExternalLabels: map[string]string{"cluster": externalCluster}})
	for i := range 2 {
		if err := w.Write(context.Background(), batch); err != nil {
			t.Fatalf("Write %d: %v", i+1, err)
		}
		checkStored(t, p, batch, at)
	}
}

// A failure in the middle of a batch: the Exporter's retry of the batch
// resumes at the failed request, so Prometheus does not refuse the
// requests it already took as out of order, and everything arrives.
func TestPrometheusResumeAfterFailure(t *testing.T) {
	p := promserver.Start(t)
	target, err := url.Parse(p.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	var seen []int
	n := 0
	front := newHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		i := n
		mu.Unlock()
		if i == 2 {
			w.Header().Set("Retry-After", "2")
			http.Error(w, "injected outage", http.StatusServiceUnavailable)
			mu.Lock()
			seen = append(seen, http.StatusServiceUnavailable)
			mu.Unlock()
			return
		}
		rw := &statusWriter{ResponseWriter: w}
		proxy.ServeHTTP(rw, r)
		mu.Lock()
		seen = append(seen, rw.status)
		mu.Unlock()
	}))
	t0, at := testTimes()
	batch := kubemonBatch(t0)
	samples, stale := countSamples(batch)
	w := newWriter(t, Options{URL: front + "/api/v1/write", ExternalLabels: map[string]string{"cluster": externalCluster}})
	err = w.Write(context.Background(), batch)
	if retry, after := sink.IsRetryable(err); !retry || after != 2*time.Second || !strings.Contains(err.Error(), "request 2 of 2") {
		t.Fatalf("first Write: %v (retryable %v after %v), want request 2 of 2 retryable after 2s", err, retry, after)
	}
	if err := w.Write(context.Background(), batch); err != nil {
		t.Fatalf("the retry: %v", err)
	}
	mu.Lock()
	got := fmt.Sprint(seen)
	mu.Unlock()
	if got != "[204 503 204]" {
		t.Errorf("answers %s, want [204 503 204] (the first request not sent again)", got)
	}
	t.Logf("%d samples + %d marker in 2 requests; answers %s", samples, stale, got)
	checkStored(t, p, batch, at)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func newHTTPServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}

// An outage: while Prometheus is down (SIGKILL) writes fail retryably at
// once; after the restart the same batch is taken, and what was written
// before the kill survived it (the WAL).
func TestPrometheusOutage(t *testing.T) {
	p := promserver.Start(t)
	t0, at := testTimes()
	full := kubemonBatch(t0)
	before, after := halves(full, 3)
	w := newWriter(t, Options{URL: p.WriteURL(), ExternalLabels: map[string]string{"cluster": externalCluster}, Timeout: 5 * time.Second})
	ctx := context.Background()
	if err := w.Write(ctx, before); err != nil {
		t.Fatal(err)
	}
	p.Kill()
	start := time.Now()
	err := w.Write(ctx, after)
	// Refused on a new connection; on the connection kept alive since the
	// first write, a broken pipe or a reset, as CI once saw.
	down := errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
	if retry, _ := sink.IsRetryable(err); !retry || !down {
		t.Fatalf("writing to a killed Prometheus: %v (retryable %v), want a retryable connection refused, broken pipe or reset", err, retry)
	}
	t.Logf("while down (%v): %v", time.Since(start).Round(time.Millisecond), err)
	p.Restart()
	if err := w.Write(ctx, after); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	checkStored(t, p, full, at)
}

// halves splits each series' samples: the first k, and the rest.
func halves(batch []sink.Series, k int) (a, b []sink.Series) {
	for _, s := range batch {
		if len(s.Samples) <= k {
			a = append(a, s)
			continue
		}
		a = append(a, sink.Series{Labels: s.Labels, Samples: s.Samples[:k]})
		b = append(b, sink.Series{Labels: s.Labels, Samples: s.Samples[k:]})
	}
	return a, b
}

// passwordHash is the bcrypt hash (cost 4) of password, for Prometheus'
// basic_auth_users.
const (
	password     = "remote-write-secret"
	passwordHash = "$2a$04$GUQA6C7H6.CG8rAX8MD5juvuN3p1qA7jI/I7sXPlohfggv0dGZ4vi"
)

// Prometheus serving HTTPS with basic authentication (--web.config.file):
// the Writer verifies its certificate with the CA file and the server
// name, and authenticates with a password file; a wrong password is a
// 401, not retryable.
func TestPrometheusTLSAndBasicAuth(t *testing.T) {
	pk := newPKI(t, "prometheus.test")
	p := promserver.StartWith(t, promserver.Config{
		TLSCertFile: pk.serverCert, TLSKeyFile: pk.serverKey,
		BasicAuthUser: "kubemon", BasicAuthHash: passwordHash, BasicAuthPassword: password,
	})
	if !strings.HasPrefix(p.WriteURL(), "https://") {
		t.Fatalf("write URL %s, want https", p.WriteURL())
	}
	passFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(passFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t0, at := testTimes()
	batch := kubemonBatch(t0)
	o := Options{
		URL: p.WriteURL(), ExternalLabels: map[string]string{"cluster": externalCluster},
		CAFile: pk.caFile, ServerName: "prometheus.test", Username: "kubemon", PasswordFile: passFile,
	}
	if err := newWriter(t, o).Write(context.Background(), batch); err != nil {
		t.Fatalf("Write over TLS with basic auth: %v", err)
	}
	checkStored(t, p, batch, at)

	o.PasswordFile, o.Password = "", "wrong"
	err := newWriter(t, o).Write(context.Background(), batch)
	if retry, _ := sink.IsRetryable(err); err == nil || retry || !strings.Contains(err.Error(), "401 Unauthorized") {
		t.Errorf("a wrong password: %v (retryable %v), want 401, not retryable", err, retry)
	}
	o.Password, o.CAFile = password, ""
	err = newWriter(t, o).Write(context.Background(), batch)
	if retry, _ := sink.IsRetryable(err); err == nil || !retry || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Errorf("without the CA: %v (retryable %v), want a retryable certificate error", err, retry)
	}
}
