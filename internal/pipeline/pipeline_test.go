package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/model"
)

var c1 = model.Object{Level: model.LevelContainer, Node: "n", Namespace: "ns", Pod: "p", Container: "c1"}

func entry(o model.Object, t, start int64, vals map[model.MetricID]float64) model.Entry {
	e := model.Entry{Object: o, Time: t, Start: start, Values: model.NewValues()}
	for m, v := range vals {
		e.Values[m] = v
	}
	return e
}

func TestRates(t *testing.T) {
	type obs struct {
		t, start int64   // ms
		cpu      float64 // counter, seconds
		want     float64 // rate, cores; NaN: none
	}
	nan := math.NaN()
	tests := []struct {
		name string
		seq  []obs
	}{
		{"steady", []obs{{10_000, 1, 100, nan}, {20_000, 1, 105, 0.5}, {30_000, 1, 112, 0.7}}},
		{"stale repeat keeps the baseline", []obs{{10_000, 1, 100, nan}, {10_000, 1, 100, nan}, {20_000, 1, 110, 1}}},
		{"stale repeat repeats the rate", []obs{{10_000, 1, 100, nan}, {20_000, 1, 105, 0.5}, {20_000, 1, 105, 0.5}, {30_000, 1, 112, 0.7}}},
		{"an older observation gives none", []obs{{10_000, 1, 100, nan}, {20_000, 1, 105, 0.5}, {15_000, 1, 103, nan}, {30_000, 1, 112, 0.7}}},
		{"restart after the previous observation", []obs{{10_000, 1, 100, nan}, {20_000, 15_000, 2.5, 0.5}}},
		{"restart before the previous observation is unknowable", []obs{{10_000, 1, 100, nan}, {20_000, 5_000, 2.5, nan}, {30_000, 5_000, 7.5, 0.5}}},
		{"decrease without a start time is a reset", []obs{{10_000, 0, 100, nan}, {20_000, 0, 3, nan}, {30_000, 0, 8, 0.5}}},
		{"decrease with the same start is a reset", []obs{{10_000, 1, 100, nan}, {20_000, 1, 3, nan}}},
		{"zero increase", []obs{{10_000, 1, 100, nan}, {20_000, 1, 100, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRater()
			for i, o := range tt.seq {
				es := []model.Entry{entry(c1, o.t, o.start, map[model.MetricID]float64{model.CPUUsage: o.cpu})}
				r.Rates(es)
				got := es[0].Values[model.CPUUsageRate]
				if math.IsNaN(o.want) != math.IsNaN(got) || (!math.IsNaN(got) && math.Abs(got-o.want) > 1e-12) {
					t.Fatalf("observation %d: rate %v, want %v", i, got, o.want)
				}
				if got < 0 {
					t.Fatalf("negative rate %v", got)
				}
			}
		})
	}
}

func TestRatesForgetsGoneObjects(t *testing.T) {
	r := NewRater()
	r.Rates([]model.Entry{entry(c1, 1000, 1, map[model.MetricID]float64{model.CPUUsage: 1})})
	r.Rates(nil)
	es := []model.Entry{entry(c1, 2000, 1, map[model.MetricID]float64{model.CPUUsage: 2})}
	r.Rates(es)
	if !math.IsNaN(es[0].Values[model.CPUUsageRate]) {
		t.Fatalf("rate from a forgotten baseline: %v", es[0].Values[model.CPUUsageRate])
	}
	if len(r.prev) != 1 {
		t.Fatalf("rater keeps %d objects, want 1", len(r.prev))
	}
}

// TestNodeRateNotFromPods: a scrape that repeats the node's stats (the
// kubelet renews them every 10-15 s, the scrape comes every 5 s) while its
// pods' are live gives the node its own last rate (none before it had
// one), never the sum of its pods' rates, which leaves out the kubelet,
// the runtime and the system. A node without
// a counter of its own still gets its pods' sum (network, here).
func TestNodeRateNotFromPods(t *testing.T) {
	nodeO := model.Object{Level: model.LevelNode, Node: "n"}
	podO := model.Object{Level: model.LevelPod, Node: "n", Namespace: "ns", Pod: "p"}
	stats := func(nodeT, podT int64, nodeCPU, podCPU float64) *model.NodeStats {
		return &model.NodeStats{Node: "n", Entries: []model.Entry{
			entry(nodeO, nodeT, 1, map[model.MetricID]float64{model.CPUUsage: nodeCPU}),
			entry(podO, podT, 1, map[model.MetricID]float64{model.CPUUsage: podCPU, model.NetworkRx: podCPU * 1000}),
			entry(c1, podT, 1, map[model.MetricID]float64{model.CPUUsage: podCPU}),
		}}
	}
	r := NewRater()
	rate := func(es []model.Entry, o model.Object, m model.MetricID) float64 {
		for _, e := range es {
			if e.Object == o {
				return e.Values[m]
			}
		}
		t.Fatalf("no %+v", o)
		return 0
	}
	Node(r, stats(10_000, 10_000, 100, 10), nil, model.NodeMeta{})
	es := Node(r, stats(10_000, 15_000, 100, 10.5), nil, model.NodeMeta{}) // the node's stats repeated
	if got := rate(es, nodeO, model.CPUUsageRate); !math.IsNaN(got) {
		t.Errorf("node CPU rate %v on a repeat of its stats, want none (its pods' sum is 0.1)", got)
	}
	if got := rate(es, nodeO, model.NetworkRxRate); !(math.Abs(got-100) <= 1e-9) {
		t.Errorf("node network rate %v, want its pods' 100", got)
	}
	es = Node(r, stats(20_000, 20_000, 110, 11), nil, model.NodeMeta{})
	if got := rate(es, nodeO, model.CPUUsageRate); !(math.Abs(got-1) <= 1e-9) {
		t.Errorf("node CPU rate %v once its stats are renewed, want its own 1", got)
	}
	// Repeated again: its own rate again (the same sample), not the pods'.
	es = Node(r, stats(20_000, 25_000, 110, 12), nil, model.NodeMeta{})
	if got := rate(es, nodeO, model.CPUUsageRate); !(math.Abs(got-1) <= 1e-9) {
		t.Errorf("node CPU rate %v on a repeat of renewed stats, want its own 1 again (its pods' sum is 0.2)", got)
	}
}

func TestNodeRollupAndEnrich(t *testing.T) {
	nodeO := model.Object{Level: model.LevelNode, Node: "n"}
	podO := model.Object{Level: model.LevelPod, Node: "n", Namespace: "ns", Pod: "p"}
	c2 := c1
	c2.Container = "c2"
	mk := func(t int64, scale float64) *model.NodeStats {
		return &model.NodeStats{
			Node: "n",
			Entries: []model.Entry{
				entry(nodeO, t, 1, map[model.MetricID]float64{model.CPUUsage: 50 * scale, model.MemoryWorkingSet: 9e9}),
				entry(podO, t, 1, map[model.MetricID]float64{model.CPUUsage: 5 * scale, model.MemoryWorkingSet: 999, model.NetworkRx: 1000 * scale}),
				entry(c1, t, 1, map[model.MetricID]float64{model.CPUUsage: 1 * scale, model.MemoryWorkingSet: 100}),
				entry(c2, t, 1, map[model.MetricID]float64{model.CPUUsage: 3 * scale, model.MemoryWorkingSet: 300}),
			},
			Pods: []model.PodMeta{{Namespace: "ns", Name: "p", WorkloadKind: "Deployment", Workload: "web", Containers: []model.ContainerMeta{
				{Name: "c1", CPURequest: 0.25, CPULimit: 1, MemoryRequest: 64, MemoryLimit: math.NaN(), Restarts: 2},
				{Name: "c2", CPURequest: 0.5, CPULimit: math.NaN(), MemoryRequest: 128, MemoryLimit: 256},
			}}},
		}
	}
	meta := model.NodeMeta{CPUCapacity: 4, CPUAllocatable: 3, MemoryCapacity: 16e9, MemoryAllocatable: 12e9}
	r := NewRater()
	first, second := mk(10_000, 1), mk(20_000, 2)
	Node(r, first, first.Pods, meta)
	es := Node(r, second, second.Pods, meta) // counters double over 10 s
	get := func(o model.Object, m model.MetricID) float64 {
		for _, e := range es {
			if e.Object == o {
				return e.Values[m]
			}
		}
		t.Fatalf("no %+v", o)
		return 0
	}
	checks := []struct {
		o    model.Object
		m    model.MetricID
		want float64
	}{
		{c1, model.CPUUsageRate, 0.1},
		{c2, model.CPUUsageRate, 0.3},
		{c1, model.CPURequest, 0.25},
		{c1, model.Restarts, 2},
		{podO, model.CPUUsageRate, 0.4},        // sum of containers, not the pod cgroup's 0.5
		{podO, model.MemoryWorkingSet, 400},    // sum of containers
		{podO, model.NetworkRxRate, 100},       // the pod's own
		{podO, model.CPURequest, 0.75},         // sum
		{podO, model.CPULimit, 1},              // c2 has none
		{podO, model.MemoryLimit, 256},         // c1 has none
		{podO, model.Restarts, 2},              // sum
		{nodeO, model.CPUUsageRate, 5},         // the node's own
		{nodeO, model.MemoryWorkingSet, 9e9},   // the node's own
		{nodeO, model.CPURequest, 0.75},        // filled from pods
		{nodeO, model.NetworkRxRate, 100},      // filled from pods
		{nodeO, model.CPUAllocatable, 3},       // from meta
		{nodeO, model.CPUUtilization, 5.0 / 3}, // usage / allocatable
		{nodeO, model.CPUReservation, 0.25},    // requests / allocatable
		{nodeO, model.MemoryUtilization, 0.75}, // working set / allocatable
		{nodeO, model.MemoryReservation, 192 / 12e9},
	}
	for _, c := range checks {
		if got := get(c.o, c.m); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%s{%s} = %v, want %v", model.PromName(c.o.Level, c.m), c.o.Pod+c.o.Container, got, c.want)
		}
	}
}

func TestAggregate(t *testing.T) {
	web := &model.PodMeta{WorkloadKind: "Deployment", Workload: "web"}
	es := []model.Entry{
		entry(model.Object{Level: model.LevelNode, Node: "a"}, 1, 0, map[model.MetricID]float64{model.CPUUsageRate: 2, model.CPUAllocatable: 4, model.CPURequest: 1}),
		entry(model.Object{Level: model.LevelNode, Node: "b"}, 1, 0, map[model.MetricID]float64{model.CPUUsageRate: 1, model.CPUAllocatable: 8, model.CPURequest: 2}),
		{Object: model.Object{Level: model.LevelPod, Node: "a", Namespace: "x", Pod: "p1"}, Values: vals(model.CPUUsageRate, 0.5), Pod: web},
		{Object: model.Object{Level: model.LevelPod, Node: "b", Namespace: "x", Pod: "p2"}, Values: vals(model.CPUUsageRate, 0.25), Pod: web},
		{Object: model.Object{Level: model.LevelPod, Node: "b", Namespace: "y", Pod: "p3"}, Values: vals(model.CPUUsageRate, 1)},
		// A container entry is not summed into namespaces (its pod is).
		entry(model.Object{Level: model.LevelContainer, Node: "b", Namespace: "y", Pod: "p3", Container: "c"}, 1, 0, map[model.MetricID]float64{model.CPUUsageRate: 1}),
	}
	out := Aggregate(es, 42)
	want := map[model.Object]map[model.MetricID]float64{
		{Level: model.LevelNamespace, Namespace: "x"}:                                             {model.CPUUsageRate: 0.75},
		{Level: model.LevelNamespace, Namespace: "y"}:                                             {model.CPUUsageRate: 1},
		{Level: model.LevelWorkload, Namespace: "x", WorkloadKind: "Deployment", Workload: "web"}: {model.CPUUsageRate: 0.75},
		{Level: model.LevelCluster}:                                                               {model.CPUUsageRate: 3, model.CPUAllocatable: 12, model.CPURequest: 3, model.CPUUtilization: 0.25, model.CPUReservation: 0.25},
	}
	got := map[model.Object]model.Entry{}
	for _, e := range out {
		got[e.Object] = e
		if e.Time != 42 {
			t.Errorf("%+v time %d, want 42", e.Object, e.Time)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d aggregates, want %d: %+v", len(got), len(want), got)
	}
	for o, ms := range want {
		for m, v := range ms {
			if g := got[o].Values[m]; math.Abs(g-v) > 1e-12 {
				t.Errorf("%s %+v = %v, want %v", model.PromName(o.Level, m), o, g, v)
			}
		}
	}
}

func vals(m model.MetricID, v float64) model.Values {
	x := model.NewValues()
	x[m] = v
	return x
}

// TestRatesPerCounterTime: counters read from another endpoint (disk IO from
// /metrics/cadvisor) get their rates over their own observation times.
func TestRatesPerCounterTime(t *testing.T) {
	r := NewRater()
	mk := func(t, io int64, cpu, read float64) []model.Entry {
		e := entry(c1, t, 1, map[model.MetricID]float64{model.CPUUsage: cpu, model.DiskIORead: read})
		e.CadvisorTime = io
		return []model.Entry{e}
	}
	r.Rates(mk(10_000, 11_000, 1, 1000))
	es := mk(20_000, 16_000, 2, 6000) // cadvisor observed 5 s apart, the summary 10 s
	r.Rates(es)
	if got := es[0].Values[model.CPUUsageRate]; got != 0.1 {
		t.Errorf("cpu rate %v, want 0.1", got)
	}
	if got := es[0].Values[model.DiskIOReadRate]; got != 1000 {
		t.Errorf("disk read rate %v, want 1000 B/s (5000 B over the 5 s between cAdvisor observations)", got)
	}
	if got := es[0].TimeOf(model.DiskIOReadRate); got != 16_000 {
		t.Errorf("disk rate stamped %d, want 16000", got)
	}
}

func TestNamespaceInfo(t *testing.T) {
	es := Aggregate([]model.Entry{{Object: model.Object{Level: model.LevelPod, Namespace: "a", Pod: "p"}, Values: vals(model.CPUUsageRate, 1)}}, 7)
	es = NamespaceInfo(es, map[string]map[string]string{"a": {"team": "x"}, "empty": nil}, 7)
	got := map[string]model.Entry{}
	for _, e := range es {
		got[e.Object.Namespace] = e
	}
	if a := got["a"]; a.Values[model.Info] != 1 || a.Labels["team"] != "x" || a.Values[model.CPUUsageRate] != 1 {
		t.Errorf("a: %+v", a)
	}
	if e, ok := got["empty"]; !ok || e.Values[model.Info] != 1 || e.Time != 7 || !math.IsNaN(e.Values[model.CPUUsageRate]) {
		t.Errorf("a namespace without pods: %+v %v", e, ok)
	}
}

// TestCollectorEndsVanishedObjects: a pod that leaves a node's scrape, and
// a namespace that leaves the roll-ups, come back as Gone entries once.
func TestCollectorEndsVanishedObjects(t *testing.T) {
	var batches []*model.Batch
	c := NewCollector(CollectorOptions{Interval: time.Second, Emit: func(_ context.Context, b *model.Batch) { batches = append(batches, b) }})
	tgt := model.Target{Node: "n"}
	nodeO := model.Object{Level: model.LevelNode, Node: "n"}
	podA := model.Object{Level: model.LevelPod, Node: "n", Namespace: "a", Pod: "p"}
	podB := model.Object{Level: model.LevelPod, Node: "n", Namespace: "b", Pod: "q"}
	scrape := func(ts int64, objs ...model.Object) {
		var es []model.Entry
		for _, o := range objs {
			es = append(es, entry(o, ts, 1, map[model.MetricID]float64{model.MemoryWorkingSet: 1}))
		}
		c.Handle(context.Background(), tgt, &model.NodeStats{Node: "n", ScrapeTime: time.UnixMilli(ts), Entries: es}, nil)
	}
	gone := func(b *model.Batch) []model.Object {
		var out []model.Object
		for _, e := range b.Entries {
			if e.Gone {
				out = append(out, e.Object)
			}
		}
		return out
	}
	scrape(1000, nodeO, podA, podB)
	c.Cycle(context.Background(), time.UnixMilli(1500))
	scrape(2000, nodeO, podA)
	c.Cycle(context.Background(), time.UnixMilli(2500))
	scrape(3000, nodeO, podA)
	if len(batches) != 5 {
		t.Fatalf("%d batches", len(batches))
	}
	if g := gone(batches[0]); len(g) != 0 {
		t.Errorf("first scrape: gone %v", g)
	}
	if g := gone(batches[2]); len(g) != 1 || g[0] != podB {
		t.Errorf("second scrape: gone %v, want pod q", g)
	}
	if g := gone(batches[3]); len(g) != 1 || g[0] != (model.Object{Level: model.LevelNamespace, Namespace: "b"}) {
		t.Errorf("second cycle: gone %v, want namespace b", g)
	}
	if g := gone(batches[4]); len(g) != 0 {
		t.Errorf("third scrape: gone %v, want none (already ended)", g)
	}
}

// TestCollectorEndsRemovedNodes: a node that leaves discovery ends all its
// objects' series at the next cycle.
func TestCollectorEndsRemovedNodes(t *testing.T) {
	var batches []*model.Batch
	targets := []model.Target{{Node: "n"}}
	c := NewCollector(CollectorOptions{Interval: time.Second, Targets: func() []model.Target { return targets },
		Emit: func(_ context.Context, b *model.Batch) { batches = append(batches, b) }})
	nodeO := model.Object{Level: model.LevelNode, Node: "n"}
	es := []model.Entry{entry(nodeO, 1000, 1, map[model.MetricID]float64{model.MemoryWorkingSet: 1}), entry(c1, 1000, 1, map[model.MetricID]float64{model.MemoryWorkingSet: 1})}
	c.Handle(context.Background(), targets[0], &model.NodeStats{Node: "n", ScrapeTime: time.UnixMilli(1000), Entries: es}, nil)
	c.Cycle(context.Background(), time.UnixMilli(1500))
	targets = nil
	c.Cycle(context.Background(), time.UnixMilli(2500))
	last := batches[len(batches)-1]
	ended := map[model.Object]bool{}
	for _, e := range last.Entries {
		if e.Gone {
			ended[e.Object] = true
		}
	}
	if !ended[nodeO] || !ended[c1] || !ended[model.Object{Level: model.LevelCluster}] {
		t.Errorf("after the node left: ended %v, want the node, its container and the cluster roll-up", ended)
	}
}

// TestCollectorReady: ready means recent data from most expected nodes;
// failing scrapes never make it ready, and data gone stale makes it
// unready again.
func TestCollectorReady(t *testing.T) {
	now := time.Unix(1000, 0)
	nodes := []model.Target{{Node: "a"}, {Node: "b"}, {Node: "c"}, {Node: "d"}}
	c := NewCollector(CollectorOptions{Interval: 10 * time.Second, Targets: func() []model.Target { return nodes },
		Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }})
	ok := func(names ...string) {
		for _, n := range names {
			o := model.Object{Level: model.LevelNode, Node: n}
			c.Handle(context.Background(), model.Target{Node: n}, &model.NodeStats{Node: n, ScrapeTime: now,
				Entries: []model.Entry{entry(o, now.UnixMilli(), 1, map[model.MetricID]float64{model.MemoryWorkingSet: 1})}}, nil)
		}
	}
	fail := func(names ...string) {
		for _, n := range names {
			c.Handle(context.Background(), model.Target{Node: n}, nil, errors.New("connection refused"))
		}
	}
	cycle := func() {
		now = now.Add(10 * time.Second)
		c.Cycle(context.Background(), now)
	}
	for i, step := range []struct {
		ok, fail []string
		want     bool
	}{
		{nil, []string{"a", "b", "c", "d"}, false}, // every scrape fails: never ready
		{nil, []string{"a", "b", "c", "d"}, false},
		{[]string{"a", "b"}, []string{"c", "d"}, false}, // half is not most
		{[]string{"a", "b", "c"}, []string{"d"}, true},
		{nil, []string{"a", "b", "c", "d"}, true}, // data 1 and 2 intervals old is recent
		{nil, []string{"a", "b", "c", "d"}, true},
		{nil, []string{"a", "b", "c", "d"}, false}, // 4 intervals without data: not ready again
		{[]string{"a", "b", "c", "d"}, nil, true},
	} {
		ok(step.ok...)
		fail(step.fail...)
		cycle()
		if got := c.Ready(); got != step.want {
			t.Errorf("step %d (%d ok, %d failing): ready %v, want %v", i, len(step.ok), len(step.fail), got, step.want)
		}
	}
	empty := NewCollector(CollectorOptions{Interval: time.Second, Targets: func() []model.Target { return nil },
		Logger: slog.New(slog.DiscardHandler)})
	empty.Cycle(context.Background(), time.Now())
	if !empty.Ready() {
		t.Error("no node expected: want ready")
	}
}

// TestCollectorPartial: a shard member's collector emits its nodes' pods
// and nodes as they come, and no roll-up above the node at the cycle (a
// sum over its part of the cluster would be wrong); the same scrapes
// without Partial give the namespace and cluster roll-ups.
func TestCollectorPartial(t *testing.T) {
	for _, partial := range []bool{false, true} {
		var batches []*model.Batch
		c := NewCollector(CollectorOptions{Interval: time.Second, Partial: partial, Emit: func(_ context.Context, b *model.Batch) { batches = append(batches, b) }})
		nodeO := model.Object{Level: model.LevelNode, Node: "n"}
		pod := model.Object{Level: model.LevelPod, Node: "n", Namespace: "a", Pod: "p"}
		es := []model.Entry{entry(nodeO, 1000, 1, map[model.MetricID]float64{model.MemoryWorkingSet: 5}), entry(pod, 1000, 1, map[model.MetricID]float64{model.MemoryWorkingSet: 3})}
		c.Handle(context.Background(), model.Target{Node: "n"}, &model.NodeStats{Node: "n", ScrapeTime: time.UnixMilli(1000), Entries: es}, nil)
		c.Cycle(context.Background(), time.UnixMilli(1500))
		if len(batches) != 2 {
			t.Fatalf("partial=%v: %d batches, want the node's and the cycle's", partial, len(batches))
		}
		levels := map[model.Level]int{}
		for _, e := range batches[0].Entries {
			levels[e.Object.Level]++
		}
		if levels[model.LevelPod] != 1 || levels[model.LevelNode] == 0 {
			t.Errorf("partial=%v: the node's batch has levels %v, want its pod and node", partial, levels)
		}
		rollups := map[model.Level]int{}
		for _, e := range batches[1].Entries {
			rollups[e.Object.Level]++
		}
		if partial && len(batches[1].Entries) != 0 {
			t.Errorf("partial: the cycle emitted roll-ups %v, want none", rollups)
		}
		if !partial && (rollups[model.LevelNamespace] != 1 || rollups[model.LevelCluster] != 1) {
			t.Errorf("whole: the cycle's roll-ups %v, want a namespace and the cluster", rollups)
		}
	}
}

// TestCollectorSumsAsNodesArrive: a cycle's roll-ups are the sums of the
// nodes that reported during it, each counted once (its first scrape of
// the cycle), and the next cycle starts from nothing.
func TestCollectorSumsAsNodesArrive(t *testing.T) {
	var batches []*model.Batch
	c := NewCollector(CollectorOptions{Interval: time.Second, Emit: func(_ context.Context, b *model.Batch) { batches = append(batches, b) }})
	scrape := func(node string, ts int64, nodeMem, podMem float64) {
		es := []model.Entry{
			entry(model.Object{Level: model.LevelNode, Node: node}, ts, 1, map[model.MetricID]float64{model.MemoryWorkingSet: nodeMem}),
			entry(model.Object{Level: model.LevelPod, Node: node, Namespace: "a", Pod: "p-" + node}, ts, 1, map[model.MetricID]float64{model.MemoryWorkingSet: podMem}),
		}
		c.Handle(context.Background(), model.Target{Node: node}, &model.NodeStats{Node: node, ScrapeTime: time.UnixMilli(ts), Entries: es}, nil)
	}
	rollups := func(b *model.Batch) map[model.Level]float64 {
		out := map[model.Level]float64{}
		for _, e := range b.Entries {
			if _, dup := out[e.Object.Level]; dup {
				t.Fatalf("two %v roll-ups in one cycle: %+v", e.Object.Level, b.Entries)
			}
			out[e.Object.Level] = e.Values[model.MemoryWorkingSet]
		}
		return out
	}
	scrape("n1", 1000, 100, 10)
	scrape("n2", 1100, 200, 20)
	scrape("n1", 1400, 400, 40) // a second scrape of n1 in the cycle: not counted
	c.Cycle(context.Background(), time.UnixMilli(1500))
	scrape("n1", 2000, 1000, 1)
	c.Cycle(context.Background(), time.UnixMilli(2500))
	if len(batches) != 6 {
		t.Fatalf("%d batches, want 4 scrapes' and 2 cycles'", len(batches))
	}
	first, second := rollups(batches[3]), rollups(batches[5])
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"first cycle's cluster", first[model.LevelCluster], 300},
		{"first cycle's namespace", first[model.LevelNamespace], 30},
		{"second cycle's cluster", second[model.LevelCluster], 1000},
		{"second cycle's namespace", second[model.LevelNamespace], 1},
	} {
		if !(math.Abs(c.got-c.want) <= 1e-9) {
			t.Errorf("%s: working set %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestCollectorGrace: while a cycle's grace runs, a scrape of one of its
// slots that ended late still counts in it, and a scrape of the next
// cycle's slot waits for the next cycle (once, not again with that cycle's
// own scrapes).
func TestCollectorGrace(t *testing.T) {
	var rollups []*model.Batch
	c := NewCollector(CollectorOptions{Interval: time.Second, Emit: func(_ context.Context, b *model.Batch) {
		if len(b.Entries) > 0 && b.Entries[0].Object.Level != model.LevelContainer && b.Entries[0].Object.Node == "" {
			rollups = append(rollups, b)
		}
	}})
	scrape := func(node string, slot int64, mem float64) {
		es := []model.Entry{entry(model.Object{Level: model.LevelNode, Node: node}, slot, 1, map[model.MetricID]float64{model.MemoryWorkingSet: mem})}
		c.Handle(context.Background(), model.Target{Node: node}, &model.NodeStats{Node: node, ScrapeTime: time.UnixMilli(slot), Entries: es}, nil)
	}
	cluster := func(b *model.Batch) float64 {
		n := 0
		v := math.NaN()
		for _, e := range b.Entries {
			if e.Object.Level == model.LevelCluster {
				n++
				v = e.Values[model.MemoryWorkingSet]
			}
		}
		if n != 1 {
			t.Fatalf("%d cluster roll-ups in the cycle at %d, want 1", n, b.Time.UnixMilli())
		}
		return v
	}
	c.openCycle(time.UnixMilli(2000))
	scrape("n1", 1200, 10)
	scrape("n2", 1900, 20)  // its slot in the cycle, arriving in the grace
	scrape("n3", 2050, 400) // next cycle's slot, arriving in the grace
	c.Cycle(context.Background(), time.UnixMilli(2000))
	scrape("n1", 2200, 1)
	scrape("n2", 2900, 2)
	scrape("n3", 2950, 4000) // n3's second scrape of the cycle: not counted
	c.openCycle(time.UnixMilli(3000))
	c.Cycle(context.Background(), time.UnixMilli(3000))
	if len(rollups) != 2 {
		t.Fatalf("%d roll-up batches, want 2", len(rollups))
	}
	for i, want := range []float64{30, 403} {
		if got := cluster(rollups[i]); !(math.Abs(got-want) <= 1e-9) {
			t.Errorf("cycle %d: cluster working set %v, want %v", i+1, got, want)
		}
	}
}

// TestSeen: objects that leave an observation get one Gone entry, at the
// given time; a steady observation allocates nothing.
func TestSeen(t *testing.T) {
	obj := func(p string) model.Entry {
		return model.Entry{Object: model.Object{Level: model.LevelPod, Node: "n", Namespace: "ns", Pod: p}}
	}
	var s Seen
	if gone := s.Vanished([]model.Entry{obj("a"), obj("b"), obj("b")}, 1); len(gone) != 0 {
		t.Fatalf("first observation: %v gone", gone)
	}
	gone := s.Vanished([]model.Entry{obj("b"), obj("c"), {Object: obj("a").Object, Gone: true}}, 2)
	if len(gone) != 1 || gone[0].Object != obj("a").Object || gone[0].Time != 2 || !gone[0].Gone {
		t.Fatalf("a left: %+v", gone)
	}
	if gone := s.Vanished([]model.Entry{obj("b"), obj("c")}, 3); len(gone) != 0 {
		t.Fatalf("a went twice: %+v", gone)
	}
	steady := []model.Entry{obj("b"), obj("c")}
	if n := testing.AllocsPerRun(100, func() { s.Vanished(steady, 4) }); n != 0 {
		t.Errorf("a steady observation allocates %v times", n)
	}
	all := s.All(5)
	if len(all) != 2 || !all[0].Gone || all[0].Time != 5 {
		t.Fatalf("All: %+v", all)
	}
}
