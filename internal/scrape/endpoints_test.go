package scrape

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/sim"
)

// TestEndpointsAgree: every endpoint, read twice from the same simulated
// kubelets 10 s apart, gives each container's exact CPU rate and working
// set (the simulator's truth).
func TestEndpointsAgree(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	cl, err := sim.New(sim.Options{Nodes: 2, PodsPerNode: 5, ContainersPerPod: 2, Mode: sim.ModeConstant, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	truth := map[[3]string]sim.TruthContainer{}
	for _, c := range cl.Truth(now()).Containers {
		truth[[3]string{c.Namespace, c.Pod, c.Container}] = c
	}
	for _, src := range []Endpoint{EndpointSummary, EndpointResource, EndpointCadvisor} {
		t.Run(string(src), func(t *testing.T) {
			c := NewClient(ClientOptions{Endpoint: src})
			scrapeAll := func() map[model.Object]model.Entry {
				out := map[model.Object]model.Entry{}
				for _, n := range cl.Nodes() {
					ns, err := c.Scrape(context.Background(), model.Target{Node: n.Name, URL: fmt.Sprintf("http://%s:%d", n.Address, n.Port)})
					if err != nil {
						t.Fatal(err)
					}
					for _, e := range ns.Entries {
						out[e.Object] = e
					}
				}
				return out
			}
			first := scrapeAll()
			clock.Add(int64(10 * time.Second))
			second := scrapeAll()
			clock.Add(-int64(10 * time.Second))
			n := 0
			for o, e := range second {
				if o.Level != model.LevelContainer {
					continue
				}
				n++
				tr, ok := truth[[3]string{o.Namespace, o.Pod, o.Container}]
				if !ok {
					t.Fatalf("unknown container %+v", o)
				}
				p := first[o]
				rate := (e.Values[model.CPUUsage] - p.Values[model.CPUUsage]) / (float64(e.Time-p.Time) / 1000)
				if math.Abs(rate*1000-tr.CPUMillicores) > 1e-6*tr.CPUMillicores {
					t.Errorf("%s: %s/%s CPU %v m, truth %v m", src, o.Pod, o.Container, rate*1000, tr.CPUMillicores)
				}
				if e.Values[model.MemoryWorkingSet] != float64(tr.MemoryWorkingSetBytes) {
					t.Errorf("%s: %s/%s working set %v, truth %v", src, o.Pod, o.Container, e.Values[model.MemoryWorkingSet], tr.MemoryWorkingSetBytes)
				}
			}
			if n != 20 {
				t.Errorf("%d containers, want 20", n)
			}
		})
	}
}
