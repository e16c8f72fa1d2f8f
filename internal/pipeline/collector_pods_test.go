package pipeline

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/model"
)

// TestCollectorPodsFromDiscovery: pod metadata comes from discovery when the
// collector has it (the kubelet's /pods in NodeStats is then ignored), and
// from the scrape's NodeStats.Pods otherwise.
func TestCollectorPodsFromDiscovery(t *testing.T) {
	ctr := model.Object{Level: model.LevelContainer, Node: "n", Namespace: "ns", Pod: "p", Container: "c"}
	pod := model.Object{Level: model.LevelPod, Node: "n", Namespace: "ns", Pod: "p"}
	meta := func(req float64, workload string) []model.PodMeta {
		return []model.PodMeta{{Namespace: "ns", Name: "p", WorkloadKind: "Deployment", Workload: workload,
			Containers: []model.ContainerMeta{{Name: "c", CPURequest: req, CPULimit: math.NaN(), MemoryRequest: math.NaN(), MemoryLimit: math.NaN()}}}}
	}
	kubelet, discovered := meta(0.1, "from-kubelet"), meta(0.7, "from-discovery")

	for _, tc := range []struct {
		name         string
		pods         func(string) []model.PodMeta
		wantReq      float64
		wantWorkload string
	}{
		{"discovery", func(node string) []model.PodMeta {
			if node != "n" {
				t.Errorf("pods asked for node %q, want n", node)
			}
			return discovered
		}, 0.7, "from-discovery"},
		{"kubelet", nil, 0.1, "from-kubelet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []model.Entry
			c := NewCollector(CollectorOptions{Interval: time.Second, Pods: tc.pods,
				Emit: func(_ context.Context, b *model.Batch) { got = append(got, b.Entries...) }})
			stats := &model.NodeStats{Node: "n", ScrapeTime: time.UnixMilli(1000), Pods: kubelet, Entries: []model.Entry{
				entry(ctr, 1000, 1, map[model.MetricID]float64{model.MemoryWorkingSet: 5}),
				entry(pod, 1000, 1, map[model.MetricID]float64{model.MemoryWorkingSet: 5}),
			}}
			c.Handle(context.Background(), model.Target{Node: "n"}, stats, nil)
			found := 0
			for _, e := range got {
				switch e.Object {
				case ctr:
					found++
					if v := e.Values[model.CPURequest]; !(math.Abs(v-tc.wantReq) <= 1e-12) {
						t.Errorf("container cpu request %v, want %v", v, tc.wantReq)
					}
				case pod:
					found++
					if e.Pod == nil || e.Pod.Workload != tc.wantWorkload {
						t.Errorf("pod metadata %+v, want workload %s", e.Pod, tc.wantWorkload)
					}
				}
			}
			if found != 2 {
				t.Fatalf("found %d of the container and pod entries in %d emitted", found, len(got))
			}
		})
	}
}
