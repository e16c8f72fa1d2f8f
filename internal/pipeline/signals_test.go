package pipeline

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/model"
)

// sigPod is the metadata of pod ns/p (UID u1) with containers c1 and c2.
func sigPod(c1, c2 model.ContainerMeta) []model.PodMeta {
	c1.Name, c2.Name = "c1", "c2"
	for _, c := range []*model.ContainerMeta{&c1, &c2} {
		c.CPURequest, c.CPULimit, c.MemoryRequest, c.MemoryLimit = math.NaN(), math.NaN(), math.NaN(), math.NaN()
	}
	return []model.PodMeta{{Namespace: "ns", Name: "p", UID: "u1", WorkloadKind: "Deployment", Workload: "web", Containers: []model.ContainerMeta{c1, c2}}}
}

var (
	sigNode = model.Object{Level: model.LevelNode, Node: "n"}
	sigPodO = model.Object{Level: model.LevelPod, Node: "n", Namespace: "ns", Pod: "p"}
	sigC2   = model.Object{Level: model.LevelContainer, Node: "n", Namespace: "ns", Pod: "p", Container: "c2"}
)

func findEntry(t *testing.T, es []model.Entry, o model.Object) *model.Entry {
	t.Helper()
	var found *model.Entry
	for i := range es {
		if es[i].Object == o {
			if found != nil {
				t.Fatalf("%+v twice", o)
			}
			found = &es[i]
		}
	}
	if found == nil {
		t.Fatalf("no entry of %+v", o)
	}
	return found
}

// TestEnrichWaitingContainer: a container of a known pod without stats (it
// waits in CrashLoopBackOff) gets an entry from the pod's metadata alone,
// so its restarts and crash loop are stored and summed into its pod.
func TestEnrichWaitingContainer(t *testing.T) {
	pods := sigPod(model.ContainerMeta{Restarts: 1}, model.ContainerMeta{Restarts: 7, Waiting: model.ReasonCrashLoopBackOff})
	pods[0].Containers[1].CPURequest = 0.5
	stats := []model.Entry{
		entry(sigNode, 5000, 1, map[model.MetricID]float64{model.CPUUsage: 1}),
		entry(sigPodO, 4000, 1, map[model.MetricID]float64{model.CPUUsage: 1}),
		entry(c1, 4100, 1, map[model.MetricID]float64{model.CPUUsage: 1}),
		// A container of a pod discovery does not know gets nothing.
		entry(model.Object{Level: model.LevelContainer, Node: "n", Namespace: "ns", Pod: "other", Container: "x"}, 4000, 1, nil),
	}
	es := Node(NewRater(), &model.NodeStats{Node: "n", Entries: stats}, pods, model.NodeMeta{})
	if len(es) != 5 {
		t.Fatalf("%d entries, want the 4 scraped and c2's", len(es))
	}
	w := findEntry(t, es, sigC2)
	if w.Time != 4000 || w.Start != 0 || w.Pod == nil || w.Values[model.Restarts] != 7 || w.Values[model.CrashLoopBackOff] != 1 ||
		w.Values[model.CPURequest] != 0.5 || w.Values.Has(model.CPUUsage) || w.Values[model.OOMKills] != 0 {
		t.Errorf("the waiting container's entry: %+v", w)
	}
	if r := findEntry(t, es, c1); r.Values[model.CrashLoopBackOff] != 0 || r.Values[model.Restarts] != 1 {
		t.Errorf("the running container: crash loop %v, restarts %v", r.Values[model.CrashLoopBackOff], r.Values[model.Restarts])
	}
	p := findEntry(t, es, sigPodO)
	if p.Values[model.Restarts] != 8 || p.Values[model.CrashLoopBackOff] != 1 {
		t.Errorf("pod: restarts %v, crash loop %v, want 8 and 1", p.Values[model.Restarts], p.Values[model.CrashLoopBackOff])
	}
	if n := findEntry(t, es, sigNode); n.Values[model.CrashLoopBackOff] != 1 || n.Values[model.Restarts] != 8 {
		t.Errorf("node: crash loop %v, restarts %v", n.Values[model.CrashLoopBackOff], n.Values[model.Restarts])
	}
	other := findEntry(t, es, model.Object{Level: model.LevelContainer, Node: "n", Namespace: "ns", Pod: "other", Container: "x"})
	if other.Values.Has(model.CrashLoopBackOff) || other.Values.Has(model.OOMKills) || other.Values.Has(model.Restarts) {
		t.Errorf("a container without metadata: %v %v %v: absent is not zero", other.Values[model.CrashLoopBackOff], other.Values[model.OOMKills], other.Values[model.Restarts])
	}
}

// oomStep is one observation of container c1: the pod status' last
// termination, whether it runs (its run's start) and cAdvisor's OOM events
// of the run, and the OOM kills expected after it.
type oomStep struct {
	name     string
	t        int64 // ms
	uid      string
	last     model.Termination
	start    int64 // ms; 0: waiting (no stats)
	events   float64
	want     float64
	wantRate float64 // NaN: none
}

func TestCountOOMKills(t *testing.T) {
	nan := math.NaN()
	oom := func(started, finished int64) model.Termination {
		return model.Termination{Reason: model.ReasonOOMKilled, ExitCode: 137, Started: started, Finished: finished}
	}
	errored := model.Termination{Reason: "Error", ExitCode: 1, Started: 50_000, Finished: 60_000}
	for _, tt := range []struct {
		name  string
		steps []oomStep
	}{
		{"the main process killed, seen in the pod status", []oomStep{
			{"baseline: an earlier kill counts nothing", 100_000, "u1", oom(1_000, 2_000), 2_000, 0, 0, nan},
			{"no change", 110_000, "u1", oom(1_000, 2_000), 2_000, 0, 0, 0},
			{"killed and restarted", 120_000, "u1", oom(2_000, 115_000), 115_000, 0, 1, 0.1},
			{"the same termination again", 130_000, "u1", oom(2_000, 115_000), 115_000, 0, 1, 0},
			{"killed again, crash looping: waiting", 140_000, "u1", oom(115_000, 135_000), 0, 0, 2, 0.1},
			{"a termination other than OOM", 150_000, "u1", errored, 0, 0, 2, 0},
		}},
		{"another process killed, seen by cAdvisor", []oomStep{
			{"baseline: the run's earlier kills count nothing", 100_000, "u1", model.Termination{}, 1_000, 3, 0, nan},
			{"one more", 110_000, "u1", model.Termination{}, 1_000, 4, 1, 0.1},
			{"two more", 120_000, "u1", model.Termination{}, 1_000, 6, 3, 0.2},
			{"a restart (not OOM): a new run, its count from 0", 130_000, "u1", errored, 125_000, 0, 3, 0},
			{"a new run with a kill already", 140_000, "u1", model.Termination{Reason: "Error", Started: 125_000, Finished: 135_000}, 136_000, 1, 4, 0.1},
		}},
		{"both see one kill: counted once", []oomStep{
			{"baseline", 100_000, "u1", model.Termination{}, 1_000, 0, 0, nan},
			// cAdvisor saw the run's count rise at 112 s (after the kill at
			// 111 s), then the run ended OOMKilled at 111 s.
			{"cAdvisor sees the kill", 112_000, "u1", model.Termination{}, 1_000, 1, 1, 0.083333},
			{"the pod status shows it", 120_000, "u1", oom(1_000, 111_000), 111_000, 0, 1, 0},
			// A process killed at 125 s (seen at 126 s), then the main
			// process at 130 s: two kills.
			{"a process killed", 126_000, "u1", oom(1_000, 111_000), 111_000, 1, 2, 0.166667},
			{"then the main process", 140_000, "u1", oom(111_000, 130_000), 130_000, 0, 3, 0.071429},
		}},
		{"another pod of the same name starts afresh", []oomStep{
			{"baseline", 100_000, "u1", oom(1_000, 2_000), 2_000, 0, 0, nan},
			{"killed", 110_000, "u1", oom(2_000, 105_000), 105_000, 0, 1, 0.1},
			{"a new pod with a killed container: its baseline", 120_000, "u2", oom(113_000, 115_000), 115_000, 0, 1, 0},
			{"killed", 130_000, "u2", oom(115_000, 125_000), 125_000, 0, 2, 0.1},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRater()
			for _, s := range tt.steps {
				pods := sigPod(model.ContainerMeta{LastTermination: s.last}, model.ContainerMeta{})
				pods[0].UID = s.uid
				es := []model.Entry{entry(sigPodO, s.t, 1, nil)}
				if s.start != 0 {
					c := entry(c1, s.t, s.start, map[model.MetricID]float64{model.CPUUsage: 1})
					c.OOMEvents = s.events
					es = append(es, c)
				}
				es = Node(r, &model.NodeStats{Node: "n", Entries: es}, pods, model.NodeMeta{})
				c := findEntry(t, es, c1)
				got, rate := c.Values[model.OOMKills], c.Values[model.OOMKillsRate]
				if !(got == s.want) || math.IsNaN(rate) != math.IsNaN(s.wantRate) || !math.IsNaN(rate) && !(math.Abs(rate-s.wantRate) <= 1e-6) {
					t.Fatalf("%s: %v OOM kills at %v/s, want %v at %v/s", s.name, got, rate, s.want, s.wantRate)
				}
				if p := findEntry(t, es, sigPodO); !math.IsNaN(rate) && !(p.Values[model.OOMKillsRate] >= rate) {
					t.Fatalf("%s: the pod's rate %v, its container's %v", s.name, p.Values[model.OOMKillsRate], rate)
				}
			}
		})
	}
	// Without the pod's metadata nothing is known: absent.
	r := NewRater()
	es := Node(r, &model.NodeStats{Node: "n", Entries: []model.Entry{entry(c1, 1000, 1, nil)}}, nil, model.NodeMeta{})
	if es[0].Values.Has(model.OOMKills) {
		t.Errorf("OOM kills %v without pod metadata", es[0].Values[model.OOMKills])
	}
	if len(r.oom) != 0 {
		t.Errorf("the rater keeps %d OOM states", len(r.oom))
	}
}

// TestThrottlingRatesAndRatios: CFS counters give per-second rates at the
// container (over cAdvisor's own times), pod, node and roll-up levels, and
// the throttled ratio is recomputed at each level from the summed rates
// (not averaged), absent where no period elapsed.
func TestThrottlingRatesAndRatios(t *testing.T) {
	c2 := c1
	c2.Container = "c2"
	idle := model.Object{Level: model.LevelContainer, Node: "n", Namespace: "ns", Pod: "q", Container: "idle"}
	podQ := model.Object{Level: model.LevelPod, Node: "n", Namespace: "ns", Pod: "q"}
	mk := func(t, cadv int64, k float64) *model.NodeStats {
		cfs := func(o model.Object, periods, throttled, secs float64) model.Entry {
			e := entry(o, t, 1, map[model.MetricID]float64{model.CPUUsage: k,
				model.CFSPeriods: periods * k, model.CFSThrottledPeriods: throttled * k, model.CFSThrottledTime: secs * k})
			e.CadvisorTime = cadv
			return e
		}
		return &model.NodeStats{Node: "n", Entries: []model.Entry{
			entry(sigNode, t, 1, map[model.MetricID]float64{model.CPUUsage: k}),
			entry(sigPodO, t, 1, map[model.MetricID]float64{model.CPUUsage: k}),
			cfs(c1, 100, 90, 9),    // per step: 100 periods, 90 throttled, 9 s
			cfs(c2, 100, 10, 0.5),  // 10 throttled
			cfs(idle, 0, 0, 0),     // no period elapsed
			entry(podQ, t, 1, nil), // its pod
		}}
	}
	r := NewRater()
	Node(r, mk(10_000, 9_000, 1), nil, model.NodeMeta{})
	es := Node(r, mk(20_000, 19_000, 2), nil, model.NodeMeta{CPUAllocatable: 4}) // 10 s of cAdvisor time later
	for _, w := range []struct {
		o    model.Object
		m    model.MetricID
		want float64
	}{
		{c1, model.CFSPeriodsRate, 10},
		{c1, model.CFSThrottledPeriodsRate, 9},
		{c1, model.CFSThrottledTimeRate, 0.9},
		{c1, model.CFSThrottledRatio, 0.9},
		{c2, model.CFSThrottledRatio, 0.1},
		{sigPodO, model.CFSPeriodsRate, 20},
		{sigPodO, model.CFSThrottledRatio, 0.5}, // (9 + 1) / 20
		{sigPodO, model.CFSThrottledTimeRate, 0.95},
		{idle, model.CFSPeriodsRate, 0},
		{idle, model.CFSThrottledRatio, math.NaN()},
		{podQ, model.CFSThrottledRatio, math.NaN()},
		{sigNode, model.CFSPeriodsRate, 20},
		{sigNode, model.CFSThrottledRatio, 0.5},
	} {
		got := findEntry(t, es, w.o).Values[w.m]
		if math.IsNaN(w.want) != math.IsNaN(got) || !math.IsNaN(got) && !(math.Abs(got-w.want) <= 1e-9) {
			t.Errorf("%s %+v = %v, want %v", model.PromName(w.o.Level, w.m), w.o, got, w.want)
		}
	}
	if n := findEntry(t, es, sigNode); n.Values.Has(model.CFSPeriods) {
		t.Errorf("the node has a CFS counter %v", n.Values[model.CFSPeriods])
	}
	// Roll-ups: a namespace's ratio is its pods' summed throttled periods
	// over their summed periods.
	web := &model.PodMeta{WorkloadKind: "Deployment", Workload: "web"}
	pod := func(name string, periods, throttled float64) model.Entry {
		return model.Entry{Object: model.Object{Level: model.LevelPod, Node: "n", Namespace: "x", Pod: name}, Pod: web,
			Values: vals2(model.CFSPeriodsRate, periods, model.CFSThrottledPeriodsRate, throttled)}
	}
	agg := Aggregate([]model.Entry{pod("a", 10, 9), pod("b", 30, 1),
		entry(sigNode, 1, 0, map[model.MetricID]float64{model.CFSPeriodsRate: 40, model.CFSThrottledPeriodsRate: 10})}, 7)
	for _, e := range agg {
		want := 0.25
		if !(math.Abs(e.Values[model.CFSThrottledRatio]-want) <= 1e-12) {
			t.Errorf("%s: throttled ratio %v, want %v", e.Object.Level, e.Values[model.CFSThrottledRatio], want)
		}
	}
	if len(agg) != 3 {
		t.Errorf("%d roll-ups, want namespace, workload, cluster", len(agg))
	}
}

func vals2(m1 model.MetricID, v1 float64, m2 model.MetricID, v2 float64) model.Values {
	v := vals(m1, v1)
	v[m2] = v2
	return v
}

// TestCollectorKubeletUp: every scrape gives its node's KubeletUp at the
// scrape's start time: 1, or 0 for a failed one (which changes nothing
// else); a node that leaves discovery ends it with the rest.
func TestCollectorKubeletUp(t *testing.T) {
	var batches []*model.Batch
	targets := []model.Target{{Node: "n"}}
	now := time.UnixMilli(50_000)
	c := NewCollector(CollectorOptions{Interval: time.Second, Targets: func() []model.Target { return targets }, Now: func() time.Time { return now },
		Emit: func(_ context.Context, b *model.Batch) { batches = append(batches, b) }})
	up := func(b *model.Batch) (float64, int64, int) {
		v, at, n := math.NaN(), int64(0), 0
		for _, e := range b.Entries {
			if e.Object == sigNode && e.Values.Has(model.KubeletUp) {
				v, at, n = e.Values[model.KubeletUp], e.Time, n+1
			}
		}
		return v, at, n
	}
	es := []model.Entry{entry(sigNode, 900, 1, map[model.MetricID]float64{model.MemoryWorkingSet: 1})}
	c.Handle(context.Background(), targets[0], &model.NodeStats{Node: "n", ScrapeTime: time.UnixMilli(1000), Entries: es}, nil)
	if v, at, n := up(batches[0]); v != 1 || at != 1000 || n != 1 {
		t.Errorf("a scrape: kubelet up %v at %d (%d entries), want 1 at its start, 1000", v, at, n)
	}
	c.Handle(context.Background(), targets[0], &model.NodeStats{Node: "n", ScrapeTime: time.UnixMilli(2000)}, errors.New("403 Forbidden"))
	if v, at, n := up(batches[1]); v != 0 || at != 2000 || n != 1 || len(batches[1].Entries) != 1 {
		t.Errorf("a failed scrape: kubelet up %v at %d, %d entries, want only 0 at 2000", v, at, len(batches[1].Entries))
	}
	c.Handle(context.Background(), targets[0], nil, errors.New("refused"))
	if v, at, _ := up(batches[2]); v != 0 || at != now.UnixMilli() {
		t.Errorf("a failed scrape without a start time: %v at %d, want 0 now", v, at)
	}
	c.Cycle(context.Background(), time.UnixMilli(2500))
	for _, e := range batches[3].Entries {
		if e.Object.Level == model.LevelCluster && e.Values.Has(model.KubeletUp) {
			t.Errorf("the cluster has kubelet up %v", e.Values[model.KubeletUp])
		}
	}
	targets = nil
	c.Cycle(context.Background(), time.UnixMilli(3500))
	ended := false
	for _, e := range batches[len(batches)-1].Entries {
		ended = ended || e.Gone && e.Object == sigNode
	}
	if !ended {
		t.Error("the node left discovery: its series (kubelet up with them) are not ended")
	}
}

// TestRunningPodsWithoutStats: a running pod of which the kubelet has no
// stats (its only container waits in CrashLoopBackOff: the kubelet lists a
// pod by its running containers) still gets its entries, its container's
// OOM kills go on being counted, and they roll up into the node; a pod
// that ended, or runs on another node, gets none.
func TestRunningPodsWithoutStats(t *testing.T) {
	meta := func(last model.Termination, waiting string) []model.PodMeta {
		pods := sigPod(model.ContainerMeta{Restarts: 4, Waiting: waiting, LastTermination: last}, model.ContainerMeta{})
		pods[0].Containers = pods[0].Containers[:1]
		pods[0].Phase, pods[0].Node = model.PhaseRunning, "n"
		done := model.PodMeta{Namespace: "ns", Name: "done", Node: "n", Phase: "Succeeded", Containers: []model.ContainerMeta{{Name: "x"}}}
		away := model.PodMeta{Namespace: "ns", Name: "away", Node: "other", Phase: model.PhaseRunning, Containers: []model.ContainerMeta{{Name: "y"}}}
		return append(pods, done, away)
	}
	oom := func(finished int64) model.Termination {
		return model.Termination{Reason: model.ReasonOOMKilled, ExitCode: 137, Started: finished - 1000, Finished: finished}
	}
	r := NewRater()
	scrape := func(ts int64, withPod bool, pods []model.PodMeta) []model.Entry {
		es := []model.Entry{entry(sigNode, ts, 1, map[model.MetricID]float64{model.CPUUsage: float64(ts)})}
		if withPod {
			es = append(es, entry(sigPodO, ts, 1, nil), entry(c1, ts, ts-500, map[model.MetricID]float64{model.CPUUsage: 1}))
		}
		return Node(r, &model.NodeStats{Node: "n", ScrapeTime: time.UnixMilli(ts + 100), Entries: es}, pods, model.NodeMeta{})
	}
	scrape(10_000, true, meta(oom(5_000), ""))                                   // running: the baseline
	es := scrape(20_000, false, meta(oom(15_000), model.ReasonCrashLoopBackOff)) // killed, waiting, no stats
	if len(es) != 3 {
		t.Fatalf("%d entries, want the node's, its running pod's and the pod's container's: %+v", len(es), es)
	}
	p, c := findEntry(t, es, sigPodO), findEntry(t, es, c1)
	if p.Time != 20_000 || c.Time != 20_000 || p.Values[model.Info] != 1 || p.Values[model.Restarts] != 4 || p.Values[model.CrashLoopBackOff] != 1 {
		t.Errorf("the pod without stats: %+v", p)
	}
	if c.Values[model.OOMKills] != 1 || c.Values[model.CrashLoopBackOff] != 1 || c.Values.Has(model.CPUUsage) {
		t.Errorf("its container: OOM kills %v, crash loop %v", c.Values[model.OOMKills], c.Values[model.CrashLoopBackOff])
	}
	if n := findEntry(t, es, sigNode); n.Values[model.CrashLoopBackOff] != 1 || n.Values[model.Restarts] != 4 {
		t.Errorf("the node: crash loop %v, restarts %v", n.Values[model.CrashLoopBackOff], n.Values[model.Restarts])
	}
	// A pod gone from the metadata is forgotten.
	scrape(30_000, false, meta(oom(15_000), model.ReasonCrashLoopBackOff)[1:])
	if len(r.oom) != 0 {
		t.Errorf("the pod left the metadata: %d OOM states kept", len(r.oom))
	}

	// While its pod is in the metadata, a container without any entry (its
	// pod not running: no entry is made) is remembered, and a kill in
	// between counts when it is seen again.
	r = NewRater()
	scrape(10_000, true, meta(oom(5_000), ""))
	pending := meta(oom(5_000), "")
	pending[0].Phase = "Pending"
	if es := scrape(20_000, false, pending); len(es) != 1 || len(r.oom) != 1 {
		t.Fatalf("a pod not running and without stats: %d entries, %d OOM states, want the node's and 1", len(es), len(r.oom))
	}
	es = scrape(30_000, true, meta(oom(25_000), ""))
	if c := findEntry(t, es, c1); c.Values[model.OOMKills] != 1 {
		t.Errorf("the kill while it had no entry: %v OOM kills, want 1", c.Values[model.OOMKills])
	}
}
