package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	stats "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

func TestNewValidation(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"defaults", Options{}, ""},
		{"explicit", Options{Nodes: 2, PodsPerNode: 5, ContainersPerPod: 3, Mode: ModeConstant, Seed: 7}, ""},
		{"negative nodes", Options{Nodes: -1}, "Nodes must be >= 1"},
		{"too many nodes", Options{Nodes: 100001}, "Nodes must be <= 100000"},
		{"negative pods", Options{PodsPerNode: -3}, "PodsPerNode must be >= 0"},
		{"negative containers", Options{ContainersPerPod: -1}, "ContainersPerPod must be >= 1"},
		{"too many containers", Options{ContainersPerPod: 51}, "ContainersPerPod must be <= 50"},
		{"unknown mode", Options{Mode: "chaotic"}, `unknown Mode "chaotic"`},
		{"too many pods", Options{Nodes: 100000, PodsPerNode: 100}, "Nodes*PodsPerNode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.opts)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if c == nil {
					t.Fatal("nil cluster")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error = %v, want containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestDefaultsAndNodeInfo(t *testing.T) {
	c, _ := startCluster(t, Options{})
	nodes := c.Nodes()
	if len(nodes) != 3 {
		t.Fatalf("got %d nodes, want 3", len(nodes))
	}
	for i, n := range nodes {
		want := []string{"sim-node-0001", "sim-node-0002", "sim-node-0003"}[i]
		if n.Name != want {
			t.Errorf("node %d name %q, want %q", i, n.Name, want)
		}
		if n.Address != "127.0.0.1" || n.Port == 0 {
			t.Errorf("node %s address %s:%d", n.Name, n.Address, n.Port)
		}
		if n.CPUAllocatableMillicores >= n.CPUCapacityMillicores || n.MemoryAllocatableBytes >= n.MemoryCapacityBytes {
			t.Errorf("node %s allocatable not below capacity: %+v", n.Name, n)
		}
		if n.Labels["kubernetes.io/hostname"] != n.Name || n.Labels["node.kubernetes.io/instance-type"] == "" {
			t.Errorf("node %s labels %v", n.Name, n.Labels)
		}
		if b := mustGet(t, nodeURL(n, "/healthz")); string(b) != "ok" {
			t.Errorf("healthz = %q", b)
		}
		if code, _, _ := httpGet(t, nodeURL(n, "/nope")); code != http.StatusNotFound {
			t.Errorf("unknown path status %d", code)
		}
	}
	s := getSummary(t, nodes[0])
	if len(s.Pods) != 10 || len(s.Pods[0].Containers) != 2 {
		t.Fatalf("got %d pods with %d containers, want 10 with 2", len(s.Pods), len(s.Pods[0].Containers))
	}
}

func TestNodeNameWidth(t *testing.T) {
	for _, tt := range []struct {
		nodes int
		first string
		last  string
	}{
		{1, "sim-node-0001", "sim-node-0001"},
		{12, "sim-node-0001", "sim-node-0012"},
		{12345, "sim-node-00001", "sim-node-12345"},
	} {
		c, err := New(Options{Nodes: tt.nodes, PodsPerNode: 1, ContainersPerPod: 1})
		if err != nil {
			t.Fatal(err)
		}
		ns := c.Nodes()
		if ns[0].Name != tt.first || ns[len(ns)-1].Name != tt.last {
			t.Errorf("nodes=%d: names %s..%s, want %s..%s", tt.nodes, ns[0].Name, ns[len(ns)-1].Name, tt.first, tt.last)
		}
	}
}

// TestConstantRatesExact checks that rates computed from two scrapes equal
// the truth exactly and that roll-ups are exact sums in constant mode.
func TestConstantRatesExact(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts Options
	}{
		{"3x10x2", Options{Nodes: 3, PodsPerNode: 10, ContainersPerPod: 2, Mode: ModeConstant}},
		{"2x30x3 seed 42", Options{Nodes: 2, PodsPerNode: 30, ContainersPerPod: 3, Mode: ModeConstant, Seed: 42}},
		{"1x1x1", Options{Nodes: 1, PodsPerNode: 1, ContainersPerPod: 1, Mode: ModeConstant}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, clk := startCluster(t, tt.opts)
			nodes := c.Nodes()
			before := make([]*stats.Summary, len(nodes))
			for i, n := range nodes {
				before[i] = getSummary(t, n)
			}
			clk.Advance(10 * time.Second)
			truth := truthMap(c.Truth(clk.Now()))
			for i, n := range nodes {
				after := getSummary(t, n)
				checkConstantNode(t, before[i], after, truth)
			}
		})
	}
}

func checkConstantNode(t *testing.T, before, after *stats.Summary, truth map[ctrKey]TruthContainer) {
	t.Helper()
	dt := after.Node.CPU.Time.Sub(before.Node.CPU.Time.Time)
	if dt != 10*time.Second {
		t.Fatalf("node cpu time advanced %v, want 10s", dt)
	}
	rate := func(b, a *stats.CPUStats) float64 {
		return float64(u(a.UsageCoreNanoSeconds)-u(b.UsageCoreNanoSeconds)) / dt.Seconds() / 1e6 // millicores
	}
	var nodeRate float64
	var nodeNano, nodeWS uint64
	for pi := range after.Pods {
		pa, pb := &after.Pods[pi], &before.Pods[pi]
		if pa.PodRef != pb.PodRef {
			t.Fatalf("pod %d changed in constant mode: %v -> %v", pi, pb.PodRef, pa.PodRef)
		}
		var podRate float64
		var podNano, podWS uint64
		for ci := range pa.Containers {
			ca, cb := &pa.Containers[ci], &pb.Containers[ci]
			tr, ok := truth[ctrKey{pa.PodRef.Namespace, pa.PodRef.Name, ca.Name}]
			if !ok {
				t.Fatalf("container %s/%s/%s missing from truth", pa.PodRef.Namespace, pa.PodRef.Name, ca.Name)
			}
			r := rate(cb.CPU, ca.CPU)
			if r != tr.CPUMillicores {
				t.Errorf("%s/%s: scraped rate %v m, truth %v m", pa.PodRef.Name, ca.Name, r, tr.CPUMillicores)
			}
			if tr.CPUMillicores != math.Trunc(tr.CPUMillicores) || tr.CPUMillicores < 10 || tr.CPUMillicores > 800 {
				t.Errorf("%s/%s: constant rate %v not a whole number of millicores in [10,800]", pa.PodRef.Name, ca.Name, tr.CPUMillicores)
			}
			if got := float64(u(ca.CPU.UsageNanoCores)) / 1e6; got != tr.CPUMillicores {
				t.Errorf("%s/%s: usageNanoCores %v m, truth %v m", pa.PodRef.Name, ca.Name, got, tr.CPUMillicores)
			}
			ws := u(ca.Memory.WorkingSetBytes)
			if ws != tr.MemoryWorkingSetBytes || ws%(1<<20) != 0 || ws < 16<<20 || ws > 512<<20 {
				t.Errorf("%s/%s: working set %d, truth %d (want whole MiB in [16,512])", pa.PodRef.Name, ca.Name, ws, tr.MemoryWorkingSetBytes)
			}
			if !(u(ca.Memory.UsageBytes) >= ws && ws >= u(ca.Memory.RSSBytes)) {
				t.Errorf("%s/%s: want usage >= ws >= rss, got %d %d %d", pa.PodRef.Name, ca.Name,
					u(ca.Memory.UsageBytes), ws, u(ca.Memory.RSSBytes))
			}
			podRate += r
			podNano += u(ca.CPU.UsageNanoCores)
			podWS += ws
		}
		if r := rate(pb.CPU, pa.CPU); r != podRate {
			t.Errorf("pod %s rate %v, Σ containers %v", pa.PodRef.Name, r, podRate)
		}
		if u(pa.CPU.UsageNanoCores) != podNano {
			t.Errorf("pod %s usageNanoCores %d, Σ containers %d", pa.PodRef.Name, u(pa.CPU.UsageNanoCores), podNano)
		}
		if u(pa.Memory.WorkingSetBytes) != podWS {
			t.Errorf("pod %s working set %d, Σ containers %d", pa.PodRef.Name, u(pa.Memory.WorkingSetBytes), podWS)
		}
		nodeRate += podRate
		nodeNano += podNano
		nodeWS += podWS
	}
	if r := rate(before.Node.CPU, after.Node.CPU); r != nodeRate {
		t.Errorf("node rate %v, Σ pods %v", r, nodeRate)
	}
	if u(after.Node.CPU.UsageNanoCores) != nodeNano {
		t.Errorf("node usageNanoCores %d, Σ pods %d", u(after.Node.CPU.UsageNanoCores), nodeNano)
	}
	if u(after.Node.Memory.WorkingSetBytes) != nodeWS {
		t.Errorf("node working set %d, Σ pods %d", u(after.Node.Memory.WorkingSetBytes), nodeWS)
	}
	for _, sc := range after.Node.SystemContainers {
		if sc.Name == stats.SystemContainerPods {
			if u(sc.CPU.UsageNanoCores) != nodeNano || u(sc.Memory.WorkingSetBytes) != nodeWS {
				t.Errorf("pods system container %d ns/s %d B, want %d %d", u(sc.CPU.UsageNanoCores), u(sc.Memory.WorkingSetBytes), nodeNano, nodeWS)
			}
		}
	}
}

// TestTimesTruncated checks every time field equals the request time truncated to the second.
func TestTimesTruncated(t *testing.T) {
	for _, mode := range []Mode{ModeConstant, ModeRealistic} {
		t.Run(string(mode), func(t *testing.T) {
			c, clk := startCluster(t, Options{Nodes: 1, Mode: mode})
			want := clk.Now().Truncate(time.Second)
			b := mustGet(t, nodeURL(c.Nodes()[0], "/stats/summary"))
			var generic any
			if err := json.Unmarshal(b, &generic); err != nil {
				t.Fatal(err)
			}
			n := 0
			var walk func(v any, key string)
			walk = func(v any, key string) {
				switch x := v.(type) {
				case map[string]any:
					for k, e := range x {
						walk(e, k)
					}
				case []any:
					for _, e := range x {
						walk(e, key)
					}
				case string:
					if key != "time" {
						return
					}
					n++
					if x != want.UTC().Format(time.RFC3339) {
						t.Errorf("time field %q, want %s", x, want.UTC().Format(time.RFC3339))
					}
				}
			}
			walk(generic, "")
			if n < 100 {
				t.Errorf("only %d time fields found", n)
			}
		})
	}
}

func TestRestart(t *testing.T) {
	for _, mode := range []Mode{ModeConstant, ModeRealistic} {
		t.Run(string(mode), func(t *testing.T) {
			c, clk := startCluster(t, Options{Nodes: 2, PodsPerNode: 5, Mode: mode, Seed: 3})
			node := c.Nodes()[1]
			s0 := getSummary(t, node)
			p0 := getPods(t, node)
			// Pick the first pod whose containers have not restarted yet.
			pi := 0
			for ; pi < len(p0.Items); pi++ {
				if p0.Items[pi].Status.ContainerStatuses[1].RestartCount == 0 {
					break
				}
			}
			pod := p0.Items[pi]
			ns, name, ctr := pod.Namespace, pod.Name, pod.Spec.Containers[1].Name
			if s0.Pods[pi].PodRef.Name != name {
				t.Fatalf("summary/pods order differs: %s vs %s", s0.Pods[pi].PodRef.Name, name)
			}

			clk.Advance(20 * time.Second)
			restartAt := clk.Now().Truncate(time.Second)
			// Through the HTTP control endpoint.
			q := url.Values{"namespace": {ns}, "pod": {name}, "container": {ctr}}
			if rec := handlerGet(t, c.Handler(), http.MethodPost, "/sim/restart?"+q.Encode()); rec.Code != http.StatusNoContent {
				t.Fatalf("POST /sim/restart: %d %s", rec.Code, rec.Body)
			}
			clk.Advance(5 * time.Second)
			s1 := getSummary(t, node)
			p1 := getPods(t, node)

			cb, ca := s0.Pods[pi].Containers[1], s1.Pods[pi].Containers[1]
			if u(ca.CPU.UsageCoreNanoSeconds) >= u(cb.CPU.UsageCoreNanoSeconds) {
				t.Errorf("container counter did not drop: %d -> %d", u(cb.CPU.UsageCoreNanoSeconds), u(ca.CPU.UsageCoreNanoSeconds))
			}
			// Counter restarted from 0 at restartAt: it equals ∫ over 5 s.
			if mode == ModeConstant && u(ca.CPU.UsageCoreNanoSeconds) != 5*u(ca.CPU.UsageNanoCores) {
				t.Errorf("counter after restart %d, want 5 s × %d", u(ca.CPU.UsageCoreNanoSeconds), u(ca.CPU.UsageNanoCores))
			}
			if !ca.StartTime.Time.Equal(restartAt) {
				t.Errorf("container startTime %v, want %v", ca.StartTime, restartAt)
			}
			if u(ca.Memory.PageFaults) >= u(cb.Memory.PageFaults) && u(cb.Memory.PageFaults) > 0 {
				t.Errorf("page faults did not restart: %d -> %d", u(cb.Memory.PageFaults), u(ca.Memory.PageFaults))
			}
			// The other container is untouched.
			if u(s1.Pods[pi].Containers[0].CPU.UsageCoreNanoSeconds) <= u(s0.Pods[pi].Containers[0].CPU.UsageCoreNanoSeconds) {
				t.Errorf("sibling container counter did not increase")
			}
			if u(s1.Pods[pi].CPU.UsageCoreNanoSeconds) <= u(s0.Pods[pi].CPU.UsageCoreNanoSeconds) {
				t.Errorf("pod counter dropped: %d -> %d", u(s0.Pods[pi].CPU.UsageCoreNanoSeconds), u(s1.Pods[pi].CPU.UsageCoreNanoSeconds))
			}
			if u(s1.Node.CPU.UsageCoreNanoSeconds) <= u(s0.Node.CPU.UsageCoreNanoSeconds) {
				t.Errorf("node counter dropped")
			}
			st0, st1 := p0.Items[pi].Status.ContainerStatuses[1], p1.Items[pi].Status.ContainerStatuses[1]
			if st1.RestartCount != st0.RestartCount+1 {
				t.Errorf("restartCount %d -> %d, want +1", st0.RestartCount, st1.RestartCount)
			}
			if st1.State.Running == nil || !st1.State.Running.StartedAt.Time.Equal(restartAt) {
				t.Errorf("state.running %+v, want startedAt %v", st1.State.Running, restartAt)
			}
			if st1.LastTerminationState.Terminated == nil || st1.ContainerID == st0.ContainerID {
				t.Errorf("want lastState.terminated and a new containerID, got %+v %s", st1.LastTerminationState, st1.ContainerID)
			}
			if tr := truthMap(c.Truth(clk.Now()))[ctrKey{ns, name, ctr}]; tr.RestartCount != st1.RestartCount {
				t.Errorf("truth restartCount %d, /pods %d", tr.RestartCount, st1.RestartCount)
			}

			// A second restart through the Go API.
			clk.Advance(3 * time.Second)
			if err := c.Restart(ns, name, ctr); err != nil {
				t.Fatal(err)
			}
			p2 := getPods(t, node)
			if got := p2.Items[pi].Status.ContainerStatuses[1].RestartCount; got != st0.RestartCount+2 {
				t.Errorf("restartCount after second restart %d, want %d", got, st0.RestartCount+2)
			}

			// Errors.
			for _, bad := range [][3]string{{ns, name, "nope"}, {ns, name + "x", ctr}, {"nope", name, ctr}, {ns, "x", ctr}} {
				if err := c.Restart(bad[0], bad[1], bad[2]); err == nil {
					t.Errorf("Restart(%q) succeeded", bad)
				}
			}
			q = url.Values{"namespace": {"nope"}, "pod": {name}, "container": {ctr}}
			if rec := handlerGet(t, c.Handler(), http.MethodPost, "/sim/restart?"+q.Encode()); rec.Code != http.StatusNotFound {
				t.Errorf("bad restart status %d", rec.Code)
			}
		})
	}
}

// TestRestartEveryPod restarts the first container of every pod of a larger
// cluster; names must decode to their slots.
func TestRestartEveryPod(t *testing.T) {
	clk := newFakeClock(testEpoch)
	c, err := New(Options{Nodes: 50, PodsPerNode: 30, Now: clk.Now, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	tr := c.Truth(clk.Now())
	seen := map[ctrKey]bool{}
	for _, tc := range tr.Containers {
		k := ctrKey{tc.Namespace, tc.Pod, ""}
		if seen[k] {
			continue
		}
		seen[k] = true
		if err := c.Restart(tc.Namespace, tc.Pod, tc.Container); err != nil {
			t.Fatalf("Restart(%s/%s/%s): %v", tc.Namespace, tc.Pod, tc.Container, err)
		}
	}
	after := truthMap(c.Truth(clk.Now()))
	for _, tc := range tr.Containers {
		got := after[ctrKey{tc.Namespace, tc.Pod, tc.Container}]
		if seen[ctrKey{tc.Namespace, tc.Pod, ""}] && got.RestartCount < tc.RestartCount {
			t.Fatalf("restart count decreased")
		}
	}
	if len(seen) != 50*30 {
		t.Fatalf("restarted %d pods, want %d (pod names not unique?)", len(seen), 50*30)
	}
}

// TestRealisticCounters walks a realistic cluster through 8 hours of fake time.
func TestRealisticCounters(t *testing.T) {
	clk := newFakeClock(testEpoch)
	c, err := New(Options{Nodes: 3, PodsPerNode: 20, ContainersPerPod: 2, Seed: 5, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	type ctrState struct {
		ns       uint64
		restarts int32
		start    int64
		pf       uint64
	}
	ctrs := map[string]ctrState{}
	pods := map[string]uint64{}
	podNames := map[string]bool{}
	nodes := make([]uint64, len(c.nodes))
	nodeNet := make([]uint64, len(c.nodes))
	initialPods := 0
	restarts := 0
	step := int64(47)
	T0 := testEpoch.Unix()
	for T := T0; T < T0+8*3600; T += step {
		for ni := range c.nodes {
			ev := c.evalNode(ni, T)
			sum := c.buildSummary(ev, false)
			if cur := u(sum.Node.CPU.UsageCoreNanoSeconds); cur <= nodes[ni] {
				t.Fatalf("T+%d node %d counter %d <= %d", T-T0, ni, cur, nodes[ni])
			} else {
				nodes[ni] = cur
			}
			if cur := u(sum.Node.Network.RxBytes); cur < nodeNet[ni] {
				t.Fatalf("node rx decreased")
			} else {
				nodeNet[ni] = cur
			}
			if u(sum.Node.CPU.UsageNanoCores) > uint64(c.nodes[ni].cpuCap)*1e6 {
				t.Fatalf("node %d usage %d nanocores above capacity %d m", ni, u(sum.Node.CPU.UsageNanoCores), c.nodes[ni].cpuCap)
			}
			for _, p := range sum.Pods {
				if T == T0 {
					initialPods++
				}
				podNames[p.PodRef.UID] = true
				if prev, ok := pods[p.PodRef.UID]; ok && u(p.CPU.UsageCoreNanoSeconds) < prev {
					t.Fatalf("pod %s counter decreased %d -> %d", p.PodRef.Name, prev, u(p.CPU.UsageCoreNanoSeconds))
				}
				pods[p.PodRef.UID] = u(p.CPU.UsageCoreNanoSeconds)
				var sumCtr uint64
				for _, ct := range p.Containers {
					key := p.PodRef.UID + "/" + ct.Name
					cur := ctrState{u(ct.CPU.UsageCoreNanoSeconds), 0, ct.StartTime.Unix(), u(ct.Memory.PageFaults)}
					sumCtr += u(ct.CPU.UsageNanoCores)
					if prev, ok := ctrs[key]; ok {
						if cur.start != prev.start {
							restarts++
						} else if cur.ns < prev.ns || cur.pf < prev.pf {
							t.Fatalf("T+%d container %s counter decreased without restart: %d -> %d", T-T0, key, prev.ns, cur.ns)
						}
					}
					ctrs[key] = cur
					if u(ct.Memory.UsageBytes) < u(ct.Memory.WorkingSetBytes) || u(ct.Memory.WorkingSetBytes) < u(ct.Memory.RSSBytes) {
						t.Fatalf("memory ordering violated for %s", key)
					}
					if ct.CPU.UsageNanoCores == nil || *ct.CPU.UsageNanoCores == 0 {
						t.Fatalf("zero usage for %s", key)
					}
				}
				if sumCtr != u(p.CPU.UsageNanoCores) {
					t.Fatalf("pod rate %d != Σ containers %d", u(p.CPU.UsageNanoCores), sumCtr)
				}
			}
		}
	}
	if len(podNames) < 2*initialPods {
		t.Errorf("pods did not churn: %d distinct pods over 8h, %d at start", len(podNames), initialPods)
	}
	if restarts == 0 {
		t.Errorf("no spontaneous restarts observed in 8h")
	}
	t.Logf("8h: %d distinct pods (%d at start), %d container restarts", len(podNames), initialPods, restarts)
}

// TestRealisticRateFromScrapes checks scraped mean rates are close to truth.
func TestRealisticRateFromScrapes(t *testing.T) {
	c, clk := startCluster(t, Options{Nodes: 1, PodsPerNode: 10, Seed: 9})
	n := c.Nodes()[0]
	s0 := getSummary(t, n)
	clk.Advance(2 * time.Second)
	s1 := getSummary(t, n)
	truth := truthMap(c.Truth(clk.Now().Add(-time.Second))) // midpoint
	for pi := range s1.Pods {
		if s1.Pods[pi].PodRef.UID != s0.Pods[pi].PodRef.UID {
			continue
		}
		for ci, ct := range s1.Pods[pi].Containers {
			if !ct.StartTime.Equal(&s0.Pods[pi].Containers[ci].StartTime) {
				continue
			}
			r := float64(u(ct.CPU.UsageCoreNanoSeconds)-u(s0.Pods[pi].Containers[ci].CPU.UsageCoreNanoSeconds)) / 2e6
			tr := truth[ctrKey{s1.Pods[pi].PodRef.Namespace, s1.Pods[pi].PodRef.Name, ct.Name}]
			if math.Abs(r-tr.CPUMillicores) > 0.01*tr.CPUMillicores+0.01 {
				t.Errorf("%s/%s mean rate %.3f m, truth at midpoint %.3f m", s1.Pods[pi].PodRef.Name, ct.Name, r, tr.CPUMillicores)
			}
		}
	}
}

func TestDeterministic(t *testing.T) {
	get := func(seed int64, mode Mode) map[string][]byte {
		c, _ := startCluster(t, Options{Nodes: 2, PodsPerNode: 8, Seed: seed, Mode: mode})
		out := map[string][]byte{}
		for _, p := range []string{"/stats/summary", "/metrics/resource", "/metrics/cadvisor", "/pods"} {
			out[p] = mustGet(t, nodeURL(c.Nodes()[1], p))
		}
		tr, _ := json.Marshal(c.Truth(testEpoch))
		out["truth"] = tr
		return out
	}
	for _, mode := range []Mode{ModeRealistic, ModeConstant} {
		a, b, other := get(7, mode), get(7, mode), get(8, mode)
		for k := range a {
			if !bytes.Equal(a[k], b[k]) {
				t.Errorf("%s %s differs between two clusters with the same seed", mode, k)
			}
			if bytes.Equal(a[k], other[k]) {
				t.Errorf("%s %s identical for different seeds", mode, k)
			}
		}
	}
}

func TestPayloadFormats(t *testing.T) {
	c, clk := startCluster(t, Options{Nodes: 2, PodsPerNode: 12, ContainersPerPod: 2, Seed: 4})
	h := c.Handler()
	for _, n := range c.Nodes() {
		sum := getSummary(t, n)
		if sum.Node.NodeName != n.Name {
			t.Errorf("nodeName %q, want %q", sum.Node.NodeName, n.Name)
		}
		checkSummaryShape(t, sum)

		// /metrics/resource agrees with the summary.
		fams := parseProm(t, mustGet(t, nodeURL(n, "/metrics/resource")))
		for _, name := range []string{"node_cpu_usage_seconds_total", "node_memory_working_set_bytes", "container_cpu_usage_seconds_total",
			"container_memory_working_set_bytes", "container_start_time_seconds", "pod_cpu_usage_seconds_total",
			"pod_memory_working_set_bytes", "resource_scrape_error"} {
			if fams[name] == nil {
				t.Errorf("/metrics/resource lacks %s", name)
			}
		}
		wantTS := clk.Now().Truncate(time.Second).UnixMilli()
		if got := fams["node_cpu_usage_seconds_total"].Metric[0]; got.GetTimestampMs() != wantTS ||
			got.GetCounter().GetValue() != float64(u(sum.Node.CPU.UsageCoreNanoSeconds))/1e9 {
			t.Errorf("node_cpu_usage_seconds_total %v @%d, summary %d ns @%d", got.GetCounter().GetValue(), got.GetTimestampMs(), u(sum.Node.CPU.UsageCoreNanoSeconds), wantTS)
		}
		byCtr := map[ctrKey]float64{}
		for _, m := range fams["container_memory_working_set_bytes"].Metric {
			l := labelMap(m.Label)
			byCtr[ctrKey{l["namespace"], l["pod"], l["container"]}] = m.GetGauge().GetValue()
		}
		cpuByCtr := map[ctrKey]float64{}
		for _, m := range fams["container_cpu_usage_seconds_total"].Metric {
			l := labelMap(m.Label)
			cpuByCtr[ctrKey{l["namespace"], l["pod"], l["container"]}] = m.GetCounter().GetValue()
		}
		// /metrics/cadvisor agrees with the summary.
		cfams := parseProm(t, mustGet(t, nodeURL(n, "/metrics/cadvisor")))
		for _, name := range []string{"container_cpu_usage_seconds_total", "container_memory_working_set_bytes", "container_memory_rss",
			"container_network_receive_bytes_total", "container_fs_usage_bytes", "container_start_time_seconds", "machine_cpu_cores"} {
			if cfams[name] == nil {
				t.Errorf("/metrics/cadvisor lacks %s", name)
			}
		}
		cadCPU := map[ctrKey]float64{}
		cadNet := map[ctrKey]float64{}
		for _, m := range cfams["container_cpu_usage_seconds_total"].Metric {
			l := labelMap(m.Label)
			for _, want := range []string{"container", "cpu", "id", "image", "name", "namespace", "pod"} {
				if _, ok := l[want]; !ok {
					t.Fatalf("cadvisor series lacks label %s: %v", want, l)
				}
			}
			if !kubemonCgroup(l) {
				continue // kubepods, QoS and system cgroups, sandboxes
			}
			cadCPU[ctrKey{l["namespace"], l["pod"], l["container"]}] = m.GetCounter().GetValue()
		}
		for _, m := range cfams["container_network_receive_bytes_total"].Metric {
			l := labelMap(m.Label)
			if !kubemonCgroup(l) {
				continue
			}
			cadNet[ctrKey{l["namespace"], l["pod"], l["container"]}] = m.GetCounter().GetValue()
		}
		if got := cadCPU[ctrKey{}]; got != float64(u(sum.Node.CPU.UsageCoreNanoSeconds))/1e9 {
			t.Errorf("cadvisor root cpu %v, summary node %d", got, u(sum.Node.CPU.UsageCoreNanoSeconds))
		}
		for _, p := range sum.Pods {
			if got, want := cadCPU[ctrKey{p.PodRef.Namespace, p.PodRef.Name, ""}], float64(u(p.CPU.UsageCoreNanoSeconds))/1e9; got != want {
				t.Errorf("cadvisor pod %s cpu %v, summary %v", p.PodRef.Name, got, want)
			}
			if got, want := cadNet[ctrKey{p.PodRef.Namespace, p.PodRef.Name, ""}], float64(u(p.Network.RxBytes)); got != want {
				t.Errorf("cadvisor pod %s rx %v, summary %v", p.PodRef.Name, got, want)
			}
			for _, ct := range p.Containers {
				k := ctrKey{p.PodRef.Namespace, p.PodRef.Name, ct.Name}
				if byCtr[k] != float64(u(ct.Memory.WorkingSetBytes)) {
					t.Errorf("resource ws %v, summary %d for %v", byCtr[k], u(ct.Memory.WorkingSetBytes), k)
				}
				want := float64(u(ct.CPU.UsageCoreNanoSeconds)) / 1e9
				if cpuByCtr[k] != want || cadCPU[k] != want {
					t.Errorf("cpu seconds resource %v cadvisor %v summary %v for %v", cpuByCtr[k], cadCPU[k], want, k)
				}
			}
		}

		// /pods agrees with the summary.
		pods := getPods(t, n)
		checkPodsAgainstSummary(t, n, pods, sum)
	}

	// Cluster-wide endpoints.
	rec := handlerGet(t, h, http.MethodGet, "/api/v1/nodes")
	var nl v1.NodeList
	decodeStrict(t, rec.Body.Bytes(), &nl)
	if len(nl.Items) != 2 {
		t.Fatalf("NodeList has %d items", len(nl.Items))
	}
	for i, node := range nl.Items {
		info := c.Nodes()[i]
		if node.Name != info.Name || int(node.Status.DaemonEndpoints.KubeletEndpoint.Port) != info.Port {
			t.Errorf("node %d: %s port %d, want %s %d", i, node.Name, node.Status.DaemonEndpoints.KubeletEndpoint.Port, info.Name, info.Port)
		}
		if node.Status.Capacity.Cpu().MilliValue() != info.CPUCapacityMillicores || node.Status.Allocatable.Memory().Value() != info.MemoryAllocatableBytes {
			t.Errorf("node %s capacity mismatch", node.Name)
		}
		for _, r := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory, v1.ResourcePods, v1.ResourceEphemeralStorage} {
			if _, ok := node.Status.Capacity[r]; !ok {
				t.Errorf("node %s capacity lacks %s", node.Name, r)
			}
			if _, ok := node.Status.Allocatable[r]; !ok {
				t.Errorf("node %s allocatable lacks %s", node.Name, r)
			}
		}
		var ready, internal, hostname bool
		for _, cnd := range node.Status.Conditions {
			ready = ready || (cnd.Type == v1.NodeReady && cnd.Status == v1.ConditionTrue)
		}
		for _, a := range node.Status.Addresses {
			internal = internal || (a.Type == v1.NodeInternalIP && a.Address == "127.0.0.1")
			hostname = hostname || (a.Type == v1.NodeHostName && a.Address == node.Name)
		}
		if !ready || !internal || !hostname {
			t.Errorf("node %s ready=%v internalIP=%v hostname=%v", node.Name, ready, internal, hostname)
		}
		if node.Labels["kubernetes.io/hostname"] != node.Name {
			t.Errorf("node %s labels %v", node.Name, node.Labels)
		}
	}
	rec = handlerGet(t, h, http.MethodGet, "/api/v1/nodes/"+c.Nodes()[1].Name)
	var one v1.Node
	decodeStrict(t, rec.Body.Bytes(), &one)
	if one.Name != c.Nodes()[1].Name {
		t.Errorf("GET node: %s", one.Name)
	}
	if rec := handlerGet(t, h, http.MethodGet, "/api/v1/nodes/nope"); rec.Code != http.StatusNotFound {
		t.Errorf("unknown node status %d", rec.Code)
	}

	rec = handlerGet(t, h, http.MethodGet, "/api/v1/pods")
	var pl v1.PodList
	decodeStrict(t, rec.Body.Bytes(), &pl)
	if len(pl.Items) != 24 {
		t.Fatalf("PodList has %d items, want 24", len(pl.Items))
	}
	uids := map[string]bool{}
	for _, p := range pl.Items {
		if uids[string(p.UID)] {
			t.Errorf("duplicate pod uid %s", p.UID)
		}
		uids[string(p.UID)] = true
	}
	// Per node, through the field selector, equals the kubelet's /pods.
	rec = handlerGet(t, h, http.MethodGet, "/api/v1/pods?fieldSelector=spec.nodeName%3D"+c.Nodes()[1].Name)
	var pl1 v1.PodList
	decodeStrict(t, rec.Body.Bytes(), &pl1)
	kp := getPods(t, c.Nodes()[1])
	if len(pl1.Items) != len(kp.Items) {
		t.Fatalf("fieldSelector list has %d pods, kubelet %d", len(pl1.Items), len(kp.Items))
	}
	for i := range kp.Items {
		if pl1.Items[i].UID != kp.Items[i].UID {
			t.Errorf("pod %d: %s vs %s", i, pl1.Items[i].Name, kp.Items[i].Name)
		}
	}
	// Pagination.
	var all []string
	cont := ""
	for page := 0; page < 10; page++ {
		rec = handlerGet(t, h, http.MethodGet, "/api/v1/pods?limit=10&continue="+cont)
		var p v1.PodList
		decodeStrict(t, rec.Body.Bytes(), &p)
		for _, it := range p.Items {
			all = append(all, string(it.UID))
		}
		cont = p.Continue
		if cont == "" {
			break
		}
	}
	if len(all) != 24 {
		t.Errorf("paginated list returned %d pods, want 24", len(all))
	}
	// Namespaced list.
	rec = handlerGet(t, h, http.MethodGet, "/api/v1/namespaces/kube-system/pods")
	var nsl v1.PodList
	decodeStrict(t, rec.Body.Bytes(), &nsl)
	for _, p := range nsl.Items {
		if p.Namespace != "kube-system" {
			t.Errorf("namespaced list returned %s/%s", p.Namespace, p.Name)
		}
	}
	// Kubelet endpoints through the API server proxy path.
	rec = handlerGet(t, h, http.MethodGet, "/api/v1/nodes/"+c.Nodes()[0].Name+"/proxy/stats/summary")
	var proxied stats.Summary
	decodeStrict(t, rec.Body.Bytes(), &proxied)
	if proxied.Node.NodeName != c.Nodes()[0].Name {
		t.Errorf("proxied summary for %s", proxied.Node.NodeName)
	}
	// Truth endpoint equals Truth(now).
	rec = handlerGet(t, h, http.MethodGet, "/sim/truth")
	var tr Truth
	decodeStrict(t, rec.Body.Bytes(), &tr)
	want := c.Truth(clk.Now())
	if !tr.Time.Equal(want.Time) || len(tr.Containers) != len(want.Containers) || !reflect.DeepEqual(tr.Containers[5], want.Containers[5]) {
		t.Errorf("/sim/truth differs from Truth(now)")
	}
	// only_cpu_and_memory.
	var small stats.Summary
	decodeStrict(t, mustGet(t, nodeURL(c.Nodes()[0], "/stats/summary?only_cpu_and_memory=true")), &small)
	if small.Node.Fs != nil || small.Pods[0].Network != nil || small.Pods[0].CPU == nil {
		t.Errorf("only_cpu_and_memory summary has the wrong shape")
	}
}

func labelMap(lp []*dtoLabelPair) map[string]string {
	m := make(map[string]string, len(lp))
	for _, l := range lp {
		m[l.GetName()] = l.GetValue()
	}
	return m
}

func checkSummaryShape(t *testing.T, s *stats.Summary) {
	t.Helper()
	n := s.Node
	if n.CPU == nil || n.CPU.PSI == nil || n.Memory == nil || n.Memory.AvailableBytes == nil || n.Memory.RSSBytes == nil ||
		n.Memory.PageFaults == nil || n.Memory.MajorPageFaults == nil || n.Network == nil || n.Network.Name != "eth0" ||
		len(n.Network.Interfaces) == 0 || n.Fs == nil || n.Fs.InodesFree == nil || n.Runtime == nil || n.Runtime.ImageFs == nil ||
		n.Rlimit == nil || n.Swap == nil || n.IO == nil || n.IO.PSI == nil || n.StartTime.IsZero() {
		t.Fatalf("node stats incomplete: %+v", n)
	}
	names := map[string]bool{}
	for _, sc := range n.SystemContainers {
		names[sc.Name] = true
	}
	if !names["kubelet"] || !names["pods"] {
		t.Errorf("system containers %v, want kubelet and pods", names)
	}
	if u(n.Fs.AvailableBytes)+u(n.Fs.UsedBytes) != u(n.Fs.CapacityBytes) {
		t.Errorf("node fs available+used != capacity")
	}
	for _, p := range s.Pods {
		if p.PodRef.UID == "" || p.StartTime.IsZero() || p.CPU == nil || p.Memory == nil || p.Network == nil ||
			p.EphemeralStorage == nil || p.ProcessStats == nil || p.Swap == nil || len(p.VolumeStats) == 0 || p.IO == nil {
			t.Fatalf("pod stats incomplete: %+v", p)
		}
		var eph uint64
		for _, c := range p.Containers {
			if c.CPU == nil || c.Memory == nil || c.Rootfs == nil || c.Logs == nil || c.Swap == nil || c.IO == nil || c.CPU.PSI == nil {
				t.Fatalf("container stats incomplete: %+v", c)
			}
			if c.StartTime.Before(&p.StartTime) {
				t.Errorf("container %s started before its pod", c.Name)
			}
			if u(c.Memory.UsageBytes) < u(c.Memory.WorkingSetBytes) || u(c.Memory.WorkingSetBytes) < u(c.Memory.RSSBytes) {
				t.Errorf("container %s memory ordering", c.Name)
			}
			eph += u(c.Rootfs.UsedBytes) + u(c.Logs.UsedBytes)
		}
		if u(p.EphemeralStorage.UsedBytes) < eph {
			t.Errorf("pod %s ephemeral storage %d < Σ rootfs+logs %d", p.PodRef.Name, u(p.EphemeralStorage.UsedBytes), eph)
		}
	}
}

func checkPodsAgainstSummary(t *testing.T, n NodeInfo, pods *v1.PodList, sum *stats.Summary) {
	t.Helper()
	if len(pods.Items) != len(sum.Pods) {
		t.Fatalf("/pods has %d pods, summary %d", len(pods.Items), len(sum.Pods))
	}
	var reqCPU, reqMem int64
	for i, p := range pods.Items {
		sp := sum.Pods[i]
		if p.Name != sp.PodRef.Name || p.Namespace != sp.PodRef.Namespace || string(p.UID) != sp.PodRef.UID {
			t.Fatalf("pod %d: /pods %s/%s %s, summary %v", i, p.Namespace, p.Name, p.UID, sp.PodRef)
		}
		if p.Spec.NodeName != n.Name || p.Status.Phase != v1.PodRunning || p.Labels["app"] == "" {
			t.Errorf("pod %s: nodeName %s phase %s labels %v", p.Name, p.Spec.NodeName, p.Status.Phase, p.Labels)
		}
		if p.Status.StartTime == nil || !p.Status.StartTime.Equal(&sp.StartTime) {
			t.Errorf("pod %s startTime %v, summary %v", p.Name, p.Status.StartTime, sp.StartTime)
		}
		if len(p.OwnerReferences) > 0 {
			if p.OwnerReferences[0].Kind == "ReplicaSet" && !strings.HasPrefix(p.OwnerReferences[0].Name, p.Labels["app"]+"-"+p.Labels["pod-template-hash"]) {
				t.Errorf("pod %s owner %s labels %v", p.Name, p.OwnerReferences[0].Name, p.Labels)
			}
		}
		for ci, cs := range p.Status.ContainerStatuses {
			sc := sp.Containers[ci]
			if cs.Name != sc.Name || p.Spec.Containers[ci].Image == "" || cs.State.Running == nil ||
				!cs.State.Running.StartedAt.Equal(&sc.StartTime) {
				t.Errorf("pod %s container %d status %+v vs summary %s %v", p.Name, ci, cs, sc.Name, sc.StartTime)
			}
			reqCPU += p.Spec.Containers[ci].Resources.Requests.Cpu().MilliValue()
			reqMem += p.Spec.Containers[ci].Resources.Requests.Memory().Value()
		}
	}
	if reqCPU > n.CPUAllocatableMillicores || reqMem > n.MemoryAllocatableBytes {
		t.Errorf("node %s requests %dm %dB exceed allocatable %dm %dB", n.Name, reqCPU, reqMem, n.CPUAllocatableMillicores, n.MemoryAllocatableBytes)
	}
}

// TestWorkloadMix checks owners, QoS and resources over a larger cluster.
func TestWorkloadMix(t *testing.T) {
	clk := newFakeClock(testEpoch)
	c, err := New(Options{Nodes: 40, PodsPerNode: 30, Seed: 2, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	namespaces := map[string]int{}
	var noLimits, noRequests int
	T := clk.Now().Unix()
	for ni := range c.nodes {
		ev := c.evalNode(ni, T)
		var reqCPU, reqMem int64
		for pi := range ev.pods {
			p := c.podObject(ni, &ev.pods[pi], T)
			if len(p.OwnerReferences) == 0 {
				kinds["<none>"]++
			} else {
				kinds[p.OwnerReferences[0].Kind]++
			}
			namespaces[p.Namespace]++
			for _, ct := range p.Spec.Containers {
				if ct.Resources.Limits == nil {
					noLimits++
				}
				if ct.Resources.Requests == nil {
					noRequests++
				}
				reqCPU += ct.Resources.Requests.Cpu().MilliValue()
				reqMem += ct.Resources.Requests.Memory().Value()
			}
		}
		if reqCPU > c.nodes[ni].cpuAlloc || reqMem > c.nodes[ni].memAlloc {
			t.Errorf("node %d requests exceed allocatable", ni)
		}
	}
	for _, k := range []string{"ReplicaSet", "StatefulSet", "DaemonSet", "Job", "<none>"} {
		if kinds[k] == 0 {
			t.Errorf("no pods owned by %s: %v", k, kinds)
		}
	}
	if kinds["ReplicaSet"] < kinds["StatefulSet"] {
		t.Errorf("want mostly ReplicaSet pods: %v", kinds)
	}
	if len(namespaces) != 6 {
		t.Errorf("namespaces %v, want 6", namespaces)
	}
	if noLimits == 0 || noRequests == 0 {
		t.Errorf("want some containers without limits (%d) and without requests (%d)", noLimits, noRequests)
	}
	t.Logf("owners %v namespaces %v", kinds, namespaces)
}

func TestFaults(t *testing.T) {
	c, _ := startCluster(t, Options{Nodes: 2, PodsPerNode: 10})
	nodes := c.Nodes()
	target, other := nodes[0], nodes[1]
	normal := mustGet(t, nodeURL(target, "/stats/summary"))

	tests := []struct {
		fault Fault
		check func(t *testing.T, path string)
	}{
		{FaultDown, func(t *testing.T, path string) {
			if code, _, _ := httpGet(t, nodeURL(target, path)); code != http.StatusInternalServerError {
				t.Errorf("status %d, want 500", code)
			}
		}},
		{FaultMalformed, func(t *testing.T, path string) {
			code, _, b := httpGet(t, nodeURL(target, path))
			if code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			if path == "/stats/summary" {
				var s stats.Summary
				if err := json.Unmarshal(b, &s); err == nil {
					t.Errorf("malformed body decoded")
				}
			} else if _, err := parsePromErr(b); err == nil {
				t.Errorf("malformed exposition parsed")
			}
		}},
		{FaultTruncated, func(t *testing.T, path string) {
			code, _, b := httpGet(t, nodeURL(target, path))
			if code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			if path == "/stats/summary" {
				var s stats.Summary
				if err := json.Unmarshal(b, &s); err == nil {
					t.Errorf("truncated body decoded")
				}
				if d := len(b) - len(normal)/2; d < -len(normal)/10 || d > len(normal)/10 {
					t.Errorf("truncated body %d bytes, normal %d", len(b), len(normal))
				}
			}
		}},
		{FaultOversized, func(t *testing.T, path string) {
			if raceEnabled && path != "/stats/summary" {
				t.Skip("64 MiB text bodies are slow under -race")
			}
			resp, err := testClient.Get(nodeURL(target, path))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) < 64<<20 {
				t.Errorf("oversized body %d bytes, want >= 64 MiB", len(b))
			}
			if path == "/stats/summary" {
				if !bytes.HasPrefix(b, []byte(`{"node":{"nodeName":"`)) || !bytes.HasSuffix(b, []byte("]}\n")) {
					t.Errorf("oversized body does not look like a Summary")
				}
				if !raceEnabled && !json.Valid(b) { // json.Valid over 64 MiB is slow under -race
					t.Errorf("oversized body is not valid JSON")
				}
			}
		}},
		{FaultSlow, func(t *testing.T, path string) {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, nodeURL(target, path), nil)
			start := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("slow request answered after %v", time.Since(start))
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v, want deadline exceeded", err)
			}
			// Healthy node unaffected meanwhile.
			if code, _, _ := httpGet(t, nodeURL(other, path)); code != http.StatusOK {
				t.Errorf("other node status %d", code)
			}
		}},
	}
	for _, tt := range tests {
		for _, path := range []string{"/stats/summary", "/metrics/resource", "/metrics/cadvisor"} {
			t.Run(tt.fault.String()+path, func(t *testing.T) {
				c.SetFault(target.Name, tt.fault)
				defer c.SetFault(target.Name, FaultNone)
				tt.check(t, path)
				if code, _, _ := httpGet(t, nodeURL(other, path)); code != http.StatusOK {
					t.Errorf("fault leaked to other node: %d", code)
				}
			})
		}
	}
	// Cleared fault: normal again. Fault set via HTTP.
	getSummary(t, target)
	if rec := handlerGet(t, c.Handler(), http.MethodPost, "/sim/fault?node="+target.Name+"&fault=down"); rec.Code != http.StatusNoContent {
		t.Fatalf("POST /sim/fault: %d", rec.Code)
	}
	if code, _, _ := httpGet(t, nodeURL(target, "/stats/summary")); code != http.StatusInternalServerError {
		t.Errorf("after POST fault=down status %d", code)
	}
	c.SetFault("*", FaultNone)
	getSummary(t, target)
	if rec := handlerGet(t, c.Handler(), http.MethodPost, "/sim/fault?node=nope&fault=down"); rec.Code != http.StatusNotFound {
		t.Errorf("unknown node fault status %d", rec.Code)
	}
	if rec := handlerGet(t, c.Handler(), http.MethodPost, "/sim/fault?node="+target.Name+"&fault=weird"); rec.Code != http.StatusBadRequest {
		t.Errorf("unknown fault status %d", rec.Code)
	}
}

// TestSlowFaultEndsOnClose checks a pending slow response ends when the cluster closes.
func TestSlowFaultEndsOnClose(t *testing.T) {
	c, err := New(Options{Nodes: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.SetFault(c.Nodes()[0].Name, FaultSlow)
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get(nodeURL(c.Nodes()[0], "/stats/summary"))
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Logf("slow request ended after Close: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("slow request still pending 5 s after Close")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestStartLifecycle(t *testing.T) {
	c, err := New(Options{Nodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	if c.Nodes()[0].Port != 0 {
		t.Errorf("port before Start %d", c.Nodes()[0].Port)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err == nil {
		t.Errorf("second Start succeeded")
	}
	ports := map[int]bool{}
	for _, n := range c.Nodes() {
		ports[n.Port] = true
	}
	if len(ports) != 2 {
		t.Errorf("ports %v, want 2 distinct", ports)
	}
	n := c.Nodes()[0]
	mustGet(t, nodeURL(n, "/healthz"))
	cancel() // cancelling the Start context stops the servers
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(nodeURL(n, "/healthz"))
		if err != nil {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("server still up after context cancel")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close after cancel: %v", err)
	}
	if err := c.Start(context.Background()); err == nil {
		t.Errorf("Start after Close succeeded")
	}
}

// TestConcurrentScrapes runs parallel scrapes, restarts and fault changes (for -race).
func TestConcurrentScrapes(t *testing.T) {
	c, clk := startCluster(t, Options{Nodes: 4, PodsPerNode: 10, Mode: ModeRealistic})
	tr := c.Truth(clk.Now())
	errc := make(chan error, 16)
	for w := 0; w < 8; w++ {
		go func() {
			for i := 0; i < 10; i++ {
				n := c.Nodes()[(w+i)%4]
				path := []string{"/stats/summary", "/metrics/resource", "/metrics/cadvisor", "/pods"}[i%4]
				resp, err := testClient.Get(nodeURL(n, path))
				if err != nil {
					errc <- err
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if w == 0 {
					tc := tr.Containers[i]
					_ = c.Restart(tc.Namespace, tc.Pod, tc.Container)
					clk.Advance(time.Second)
				}
			}
			errc <- nil
		}()
	}
	for w := 0; w < 8; w++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

func parsePromErr(b []byte) (map[string]*dtoMetricFamily, error) {
	p := newTextParser()
	return p.TextToMetricFamilies(bytes.NewReader(b))
}

// TestCatalogRequestsWithinLimits: no simulated container asks for more
// than its limit (the apiserver would refuse the pod), and the requests
// are a mix of above and below the typical usage, as on real clusters.
func TestCatalogRequestsWithinLimits(t *testing.T) {
	var above, below int
	for _, wl := range buildCatalog(1, 3, 400, 3) {
		for _, c := range wl.ctrs {
			if (c.cpuLim > 0 && c.cpuReq > c.cpuLim) || (c.memLim > 0 && c.memReq > c.memLim) {
				t.Errorf("%s/%s: requests %dm %d B above limits %dm %d B", wl.name, c.name, c.cpuReq, c.memReq, c.cpuLim, c.memLim)
			}
			switch {
			case c.cpuReq == 0:
			case float64(c.cpuReq) > 2*c.baseMilli:
				above++
			case float64(c.cpuReq) < c.baseMilli:
				below++
			}
		}
	}
	if above < 100 || below < 100 {
		t.Errorf("CPU requests: %d far above the typical usage, %d below: want both common", above, below)
	}
}

// TestSummaryIndented checks that /stats/summary comes as the kubelet sends
// it (go-restful pretty-prints: one space a level, as in the fixtures of
// ../shared/fixtures), so that a decoder does the real work on it.
func TestSummaryIndented(t *testing.T) {
	c, _ := startCluster(t, Options{Nodes: 1, PodsPerNode: 2})
	body := mustGet(t, nodeURL(c.Nodes()[0], "/stats/summary"))
	var compact, indented bytes.Buffer
	if err := json.Compact(&compact, body); err != nil {
		t.Fatal(err)
	}
	if err := json.Indent(&indented, compact.Bytes(), "", " "); err != nil {
		t.Fatal(err)
	}
	indented.WriteByte('\n')
	if !bytes.HasPrefix(body, []byte("{\n \"node\": {\n  \"nodeName\": ")) || !bytes.Equal(body, indented.Bytes()) {
		t.Errorf("not indented one space a level:\n%.200s", body)
	}
	if ws := bytes.Count(body, []byte(" ")); ws*5 < len(body) {
		t.Errorf("%d spaces in %d bytes, want a fifth at least", ws, len(body))
	}
}
