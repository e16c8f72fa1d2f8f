package sim

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"testing"
	"time"
)

// BenchmarkSummary measures one node's /stats/summary generation (30 pods × 2 containers).
func BenchmarkSummary(b *testing.B) {
	for _, mode := range []Mode{ModeRealistic, ModeConstant} {
		b.Run(string(mode), func(b *testing.B) {
			clk := newFakeClock(testEpoch)
			c, err := New(Options{Nodes: 1, PodsPerNode: 30, ContainersPerPod: 2, Mode: mode, Now: clk.Now})
			if err != nil {
				b.Fatal(err)
			}
			h := &nodeHandler{c: c}
			req := httptest.NewRequest(http.MethodGet, "/stats/summary", nil)
			b.ReportAllocs()
			var size int
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				size = rec.Body.Len()
			}
			b.ReportMetric(float64(size), "bytes/op-body")
		})
	}
}

func BenchmarkMetricsResource(b *testing.B) { benchPath(b, "/metrics/resource") }
func BenchmarkPods(b *testing.B)            { benchPath(b, "/pods") }

// BenchmarkMetricsCadvisor measures one node's /metrics/cadvisor (30 pods ×
// 2 containers) in each payload (bytes/op-body is the payload's size).
func BenchmarkMetricsCadvisor(b *testing.B) {
	for _, p := range []CadvisorPayload{CadvisorKubelet, CadvisorLean} {
		b.Run(string(p), func(b *testing.B) { benchPath(b, "/metrics/cadvisor", func(o *Options) { o.Cadvisor = p }) })
	}
}

func benchPath(b *testing.B, path string, opts ...func(*Options)) {
	clk := newFakeClock(testEpoch)
	o := Options{Nodes: 1, PodsPerNode: 30, ContainersPerPod: 2, Now: clk.Now}
	for _, f := range opts {
		f(&o)
	}
	c, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	h := &nodeHandler{c: c}
	req := httptest.NewRequest(http.MethodGet, path, nil)
	b.ReportAllocs()
	var rec discardRecorder
	for b.Loop() {
		rec = discardRecorder{ResponseRecorder: httptest.NewRecorder()}
		h.ServeHTTP(&rec, req)
	}
	b.ReportMetric(float64(rec.n), "bytes/op-body")
}

type discardRecorder struct {
	*httptest.ResponseRecorder
	n int
}

func (d *discardRecorder) Write(p []byte) (int, error) { d.n += len(p); return len(p), nil }

// TestLargeCluster starts the 5,000-node × 30-pod cluster and checks start
// time, memory and a few scrapes. Skipped with -short.
func TestLargeCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("large cluster test skipped in -short mode")
	}
	if os.Getenv("SIM_SKIP_LARGE") != "" {
		t.Skip("SIM_SKIP_LARGE set")
	}
	runtime.GC()
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)
	start := time.Now()
	c, _ := startCluster(t, Options{Nodes: 5000, PodsPerNode: 30, ContainersPerPod: 2})
	elapsed := time.Since(start)
	runtime.GC()
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	heap := int64(m1.HeapAlloc) - int64(m0.HeapAlloc)
	t.Logf("5000×30×2: New+Start %v, heap +%d MiB, sys %d MiB, goroutines %d", elapsed, heap>>20, m1.Sys>>20, runtime.NumGoroutine())
	limit := 10 * time.Second
	if raceEnabled {
		limit = 60 * time.Second
	}
	if elapsed > limit {
		t.Errorf("start took %v", elapsed)
	}
	if heap > 512<<20 {
		t.Errorf("heap grew by %d MiB", heap>>20)
	}
	nodes := c.Nodes()
	for _, i := range []int{0, 2500, 4999} {
		s := getSummary(t, nodes[i])
		if len(s.Pods) != 30 {
			t.Errorf("node %d: %d pods", i, len(s.Pods))
		}
	}
	// Memory does not grow with requests.
	for i := 0; i < 200; i++ {
		resp, err := testClient.Get(nodeURL(nodes[i*25], "/stats/summary"))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	runtime.GC()
	var m2 runtime.MemStats
	runtime.ReadMemStats(&m2)
	t.Logf("after 200 scrapes: heap %d MiB (was %d MiB)", m2.HeapAlloc>>20, m1.HeapAlloc>>20)
	if int64(m2.HeapAlloc)-int64(m1.HeapAlloc) > 64<<20 {
		t.Errorf("heap grew by %d MiB over 200 scrapes", (int64(m2.HeapAlloc)-int64(m1.HeapAlloc))>>20)
	}
	// Truth over the whole cluster.
	ts := time.Now()
	tr := c.Truth(testEpoch)
	t.Logf("Truth of %d containers in %v", len(tr.Containers), time.Since(ts))
	if len(tr.Containers) != 5000*30*2 {
		t.Errorf("truth has %d containers", len(tr.Containers))
	}
}
