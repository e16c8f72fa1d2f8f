package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	v1 "k8s.io/api/core/v1"
	stats "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

// testEpoch has a sub-second part to exercise truncation.
var testEpoch = time.Date(2026, 6, 26, 10, 14, 35, 730e6, time.UTC)

// startCluster creates and starts a cluster with a fake clock and registers cleanup.
func startCluster(t testing.TB, opts Options) (*Cluster, *fakeClock) {
	t.Helper()
	clk := newFakeClock(testEpoch)
	if opts.Now == nil {
		opts.Now = clk.Now
	}
	c, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c, clk
}

var testClient = &http.Client{Timeout: 60 * time.Second}

func nodeURL(n NodeInfo, p string) string {
	return "http://" + n.Address + ":" + strconv.Itoa(n.Port) + p
}

func httpGet(t testing.TB, url string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := testClient.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read: %v", url, err)
	}
	return resp.StatusCode, resp.Header, b
}

func mustGet(t testing.TB, url string) []byte {
	t.Helper()
	code, _, b := httpGet(t, url)
	if code != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", url, code, b)
	}
	return b
}

func decodeStrict(t testing.TB, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %T: %v", v, err)
	}
}

func getSummary(t testing.TB, n NodeInfo) *stats.Summary {
	t.Helper()
	var s stats.Summary
	decodeStrict(t, mustGet(t, nodeURL(n, "/stats/summary")), &s)
	return &s
}

func getPods(t testing.TB, n NodeInfo) *v1.PodList {
	t.Helper()
	var l v1.PodList
	decodeStrict(t, mustGet(t, nodeURL(n, "/pods")), &l)
	return &l
}

func parseProm(t testing.TB, b []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	return fams
}

// handlerGet serves a request through the cluster Handler.
func handlerGet(t testing.TB, h http.Handler, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec
}

func u(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}

type ctrKey struct{ ns, pod, ctr string }

func truthMap(tr Truth) map[ctrKey]TruthContainer {
	m := make(map[ctrKey]TruthContainer, len(tr.Containers))
	for _, c := range tr.Containers {
		m[ctrKey{c.Namespace, c.Pod, c.Container}] = c
	}
	return m
}

type (
	dtoLabelPair    = dto.LabelPair
	dtoMetricFamily = dto.MetricFamily
)

func newTextParser() expfmt.TextParser { return expfmt.NewTextParser(model.LegacyValidation) }

// kubemonCgroup reports whether a cAdvisor series belongs to a cgroup
// kubemon reads (as scrape.cgroupOf keeps them): the root (id "/"), a pod's
// own cgroup or a container; not the kubepods, QoS or system cgroups nor a
// pod's sandbox (pause) container, which the kubelet payload also has.
func kubemonCgroup(l map[string]string) bool {
	switch {
	case l["id"] == "/":
		return true
	case l["pod"] == "":
		return false
	case l["container"] == "":
		return strings.HasPrefix(path.Base(l["id"]), "pod")
	}
	return true
}
