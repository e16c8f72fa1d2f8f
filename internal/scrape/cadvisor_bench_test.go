package scrape

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/sim"
)

// simCadvisor is one simulated node's /metrics/cadvisor (30 pods × 2
// containers) in the given payload.
func simCadvisor(tb testing.TB, p sim.CadvisorPayload) []byte {
	tb.Helper()
	now := func() time.Time { return time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC) }
	cl, err := sim.New(sim.Options{Nodes: 1, PodsPerNode: 30, ContainersPerPod: 2, Now: now, Cadvisor: p})
	if err != nil {
		tb.Fatal(err)
	}
	rec := httptest.NewRecorder()
	cl.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/nodes/"+cl.Nodes()[0].Name+"/proxy/metrics/cadvisor", nil))
	if rec.Code != http.StatusOK {
		tb.Fatalf("sim /metrics/cadvisor: %d %s", rec.Code, rec.Body)
	}
	b, _ := io.ReadAll(rec.Body)
	return b
}

// BenchmarkDecodeCadvisor decodes one node's /metrics/cadvisor, as the
// extras beside the Summary (DecodeCadvisorExtras) and as the whole source
// (DecodeCadvisor): the simulator's kubelet-shaped payload, its lean one
// and the real 1.35 fixture.
func BenchmarkDecodeCadvisor(b *testing.B) {
	payloads := []struct {
		name string
		data func(testing.TB) []byte
	}{
		{"sim-kubelet", func(tb testing.TB) []byte { return simCadvisor(tb, sim.CadvisorKubelet) }},
		{"sim-lean", func(tb testing.TB) []byte { return simCadvisor(tb, sim.CadvisorLean) }},
		{"fixture-1.35", func(tb testing.TB) []byte { return readFixture(tb, "k8s-1.35_metrics_cadvisor.txt") }},
	}
	for _, p := range payloads {
		data := p.data(b)
		b.Run("extras/"+p.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeCadvisorExtras(data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("full/"+p.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			now := time.Now()
			for b.Loop() {
				if _, err := DecodeCadvisor(data, "n", now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
