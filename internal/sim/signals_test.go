package sim

import (
	"math"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	v1 "k8s.io/api/core/v1"
)

// sigView is what a node's endpoints say of one container at one time.
type sigView struct {
	inSummary, inResource, inCadvisor bool
	status                            v1.ContainerStatus
	oomEvents                         float64 // container_oom_events_total; NaN without the cgroup
	periods, throttled, throttledSec  float64 // CFS counters; NaN without
	cpuNs                             uint64  // the summary's usageCoreNanoSeconds
	truth                             TruthContainer
}

func labelOf(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// view reads every endpoint of node n for container ns/pod/ctr.
func view(t *testing.T, c *Cluster, clk *fakeClock, n NodeInfo, ns, pod, ctr string) sigView {
	t.Helper()
	v := sigView{oomEvents: math.NaN(), periods: math.NaN(), throttled: math.NaN(), throttledSec: math.NaN()}
	for _, p := range getSummary(t, n).Pods {
		if p.PodRef.Namespace == ns && p.PodRef.Name == pod {
			for _, cs := range p.Containers {
				if cs.Name == ctr {
					v.inSummary, v.cpuNs = true, u(cs.CPU.UsageCoreNanoSeconds)
				}
			}
		}
	}
	match := func(m *dto.Metric) bool {
		return labelOf(m, "namespace") == ns && labelOf(m, "pod") == pod && labelOf(m, "container") == ctr
	}
	res := parseProm(t, mustGet(t, nodeURL(n, "/metrics/resource")))
	for _, m := range res["container_cpu_usage_seconds_total"].GetMetric() {
		v.inResource = v.inResource || match(m)
	}
	cad := parseProm(t, mustGet(t, nodeURL(n, "/metrics/cadvisor")))
	for _, m := range cad["container_cpu_usage_seconds_total"].GetMetric() {
		v.inCadvisor = v.inCadvisor || match(m)
	}
	counter := func(fam string) float64 {
		for _, m := range cad[fam].GetMetric() {
			if match(m) {
				return m.GetCounter().GetValue()
			}
		}
		return math.NaN()
	}
	v.oomEvents = counter("container_oom_events_total")
	v.periods = counter("container_cpu_cfs_periods_total")
	v.throttled = counter("container_cpu_cfs_throttled_periods_total")
	v.throttledSec = counter("container_cpu_cfs_throttled_seconds_total")
	for _, p := range getPods(t, n).Items {
		if p.Namespace == ns && p.Name == pod {
			for _, st := range p.Status.ContainerStatuses {
				if st.Name == ctr {
					v.status = st
				}
			}
		}
	}
	v.truth = truthMap(c.Truth(clk.Now()))[ctrKey{ns, pod, ctr}]
	return v
}

// pickContainer is a container of node 0 in constant mode, with a CPU limit
// when limited, else without one.
func pickContainer(t *testing.T, c *Cluster, limited bool) (ns, pod, ctr string) {
	t.Helper()
	for _, tc := range c.Truth(c.opts.Now()).Containers {
		if tc.Node == c.Nodes()[0].Name && (tc.CFS != nil) == limited {
			return tc.Namespace, tc.Pod, tc.Container
		}
	}
	t.Fatalf("no container with limited=%v on node 0", limited)
	return "", "", ""
}

func postFault(t *testing.T, c *Cluster, pod, ctr, fault string, want int) {
	t.Helper()
	q := url.Values{"pod": {pod}, "container": {ctr}, "fault": {fault}}
	if rec := handlerGet(t, c.Handler(), http.MethodPost, "/sim/fault?"+q.Encode()); rec.Code != want {
		t.Fatalf("POST /sim/fault?%s: %d %s, want %d", q.Encode(), rec.Code, rec.Body, want)
	}
}

// TestFaultOOM: an OOM kill of the main process restarts the container
// with reason OOMKilled; cAdvisor's OOM counter belonged to the killed
// run's cgroup, so the new run's is 0; the truth counts the kill.
func TestFaultOOM(t *testing.T) {
	c, clk := startCluster(t, Options{Nodes: 1, PodsPerNode: 6, Mode: ModeConstant})
	n := c.Nodes()[0]
	ns, pod, ctr := pickContainer(t, c, false)
	before := view(t, c, clk, n, ns, pod, ctr)
	if before.truth.OOMKills != 0 || before.oomEvents != 0 || before.status.LastTerminationState.Terminated != nil {
		t.Fatalf("before: truth %+v, oom events %v, status %+v", before.truth, before.oomEvents, before.status)
	}
	clk.Advance(10 * time.Second)
	killedAt := clk.Now().Truncate(time.Second)
	postFault(t, c, ns+"/"+pod, ctr, "oom", http.StatusNoContent)
	clk.Advance(4 * time.Second)
	after := view(t, c, clk, n, ns, pod, ctr)
	term := after.status.LastTerminationState.Terminated
	if after.status.RestartCount != before.status.RestartCount+1 || term == nil || term.Reason != "OOMKilled" || term.ExitCode != 137 ||
		!term.FinishedAt.Time.Equal(killedAt) || after.status.State.Running == nil || !after.status.State.Running.StartedAt.Time.Equal(killedAt) {
		t.Errorf("after the kill: status %+v", after.status)
	}
	if after.truth.OOMKills != 1 || after.truth.OOMEvents != 0 || after.truth.LastTerminationReason != "OOMKilled" || after.truth.RestartCount != after.status.RestartCount {
		t.Errorf("after the kill: truth %+v", after.truth)
	}
	if !after.inSummary || after.oomEvents != 0 || after.cpuNs >= before.cpuNs+10*uint64(after.truth.CPUMillicores*1e6) {
		t.Errorf("after the kill: in summary %v, cAdvisor OOM events %v, CPU %d ns (before %d)", after.inSummary, after.oomEvents, after.cpuNs, before.cpuNs)
	}
	// Another kill through the Go API counts again.
	clk.Advance(time.Second)
	if err := c.SetContainerFault(ns, pod, ctr, FaultOOM); err != nil {
		t.Fatal(err)
	}
	if got := view(t, c, clk, n, ns, pod, ctr).truth; got.OOMKills != 2 || got.RestartCount != before.truth.RestartCount+2 {
		t.Errorf("after a second kill: truth %+v", got)
	}
}

// TestFaultOOMProcess: another process OOM-killed: the container runs on,
// its cAdvisor OOM counter rises, the pod status shows nothing.
func TestFaultOOMProcess(t *testing.T) {
	c, clk := startCluster(t, Options{Nodes: 1, PodsPerNode: 6, Mode: ModeConstant})
	n := c.Nodes()[0]
	ns, pod, ctr := pickContainer(t, c, true)
	before := view(t, c, clk, n, ns, pod, ctr)
	postFault(t, c, ns+"/"+pod, ctr, "oom-process", http.StatusNoContent)
	postFault(t, c, ns+"/"+pod, ctr, "oom-process", http.StatusNoContent)
	clk.Advance(5 * time.Second)
	after := view(t, c, clk, n, ns, pod, ctr)
	if after.oomEvents != 2 || after.truth.OOMEvents != 2 || after.truth.OOMKills != 2 {
		t.Errorf("cAdvisor OOM events %v, truth %+v, want 2 kills", after.oomEvents, after.truth)
	}
	if after.status.RestartCount != before.status.RestartCount || after.status.LastTerminationState.Terminated != nil || after.cpuNs <= before.cpuNs {
		t.Errorf("the container must run on: status %+v, CPU %d -> %d", after.status, before.cpuNs, after.cpuNs)
	}
	// A restart starts a new cgroup: its counter from 0, the truth's total stays.
	if err := c.Restart(ns, pod, ctr); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if v := view(t, c, clk, n, ns, pod, ctr); v.oomEvents != 0 || v.truth.OOMEvents != 0 || v.truth.OOMKills != 2 {
		t.Errorf("after a restart: cAdvisor OOM events %v, truth %+v", v.oomEvents, v.truth)
	}
}

// TestFaultCrashLoop follows a crash loop on the simulated clock: the
// container exits (Error, 1) at once and 3 s after each restart; the
// kubelet restarts it after 10, 20, 40 ... s, meanwhile waiting in
// CrashLoopBackOff with no stats on any endpoint; cleared, the next run
// keeps running.
func TestFaultCrashLoop(t *testing.T) {
	c, clk := startCluster(t, Options{Nodes: 1, PodsPerNode: 6, Mode: ModeConstant})
	n := c.Nodes()[0]
	ns, pod, ctr := pickContainer(t, c, true)
	clk.Advance(time.Second - time.Duration(clk.Now().Nanosecond())) // on a whole second
	F := clk.Now()
	r0 := view(t, c, clk, n, ns, pod, ctr).status.RestartCount
	postFault(t, c, ns+"/"+pod, ctr, "crashloop", http.StatusNoContent)
	// Crashes at F, F+13, F+36, F+79; restarts at F+10, F+33, F+76.
	for _, step := range []struct {
		at       time.Duration
		waiting  bool
		restarts int32
		backoff  string
	}{
		{0, true, 0, "back-off 10s"},
		{9 * time.Second, true, 0, "back-off 10s"},
		{10 * time.Second, false, 1, ""},
		{12 * time.Second, false, 1, ""},
		{13 * time.Second, true, 1, "back-off 20s"},
		{33 * time.Second, false, 2, ""},
		{36 * time.Second, true, 2, "back-off 40s"},
		{75 * time.Second, true, 2, "back-off 40s"},
		{76 * time.Second, false, 3, ""},
	} {
		clk.Advance(F.Add(step.at).Sub(clk.Now()))
		v := view(t, c, clk, n, ns, pod, ctr)
		st := v.status
		at := "F+" + strconv.Itoa(int(step.at/time.Second)) + "s"
		if st.RestartCount != r0+step.restarts || v.truth.RestartCount != st.RestartCount {
			t.Errorf("%s: restartCount %d (truth %d), want %d", at, st.RestartCount, v.truth.RestartCount, r0+step.restarts)
		}
		term := st.LastTerminationState.Terminated
		if term == nil || term.Reason != "Error" || term.ExitCode != 1 {
			t.Errorf("%s: lastState %+v, want terminated Error with exit code 1", at, st.LastTerminationState)
		}
		if step.waiting {
			w := st.State.Waiting
			if w == nil || w.Reason != "CrashLoopBackOff" || len(w.Message) < len(step.backoff) || w.Message[:len(step.backoff)] != step.backoff || st.Ready {
				t.Errorf("%s: state %+v ready %v, want waiting CrashLoopBackOff with %q", at, st.State, st.Ready, step.backoff)
			}
			if v.inSummary || v.inResource || v.inCadvisor || v.truth.State != "waiting" || v.truth.WaitingReason != "CrashLoopBackOff" || v.truth.CPUMillicores != 0 {
				t.Errorf("%s: waiting, yet summary %v, resource %v, cAdvisor %v, truth %+v", at, v.inSummary, v.inResource, v.inCadvisor, v.truth)
			}
		} else if st.State.Running == nil || !v.inSummary || !v.inResource || !v.inCadvisor || v.truth.State != "running" {
			t.Errorf("%s: state %+v, summary %v, resource %v, cAdvisor %v, truth %+v: want it running", at, st.State, v.inSummary, v.inResource, v.inCadvisor, v.truth)
		}
	}
	// Cleared while running (F+77): that run goes on.
	clk.Advance(time.Second)
	postFault(t, c, ns+"/"+pod, ctr, "none", http.StatusNoContent)
	clk.Advance(10 * time.Minute)
	if v := view(t, c, clk, n, ns, pod, ctr); v.status.RestartCount != r0+3 || v.status.State.Running == nil || v.truth.OOMKills != 0 {
		t.Errorf("10 minutes after the fault was cleared: status %+v, truth %+v", v.status, v.truth)
	}
}

// TestFaultThrottle: a throttled container has 9 of its 10 CFS periods a
// second throttled, exactly, until cleared; one without a CPU limit cannot
// be throttled (409).
func TestFaultThrottle(t *testing.T) {
	c, clk := startCluster(t, Options{Nodes: 1, PodsPerNode: 6, Mode: ModeConstant})
	n := c.Nodes()[0]
	ns, pod, ctr := pickContainer(t, c, true)
	w0 := view(t, c, clk, n, ns, pod, ctr)
	if w0.throttled != 0 || !(w0.periods > 0) || w0.truth.CFS == nil || w0.truth.CFS.ThrottledPeriodsPerSecond != 0 {
		t.Fatalf("constant mode before the fault: periods %v, throttled %v, truth %+v", w0.periods, w0.throttled, w0.truth.CFS)
	}
	postFault(t, c, ns+"/"+pod, ctr, "throttle", http.StatusNoContent)
	clk.Advance(20 * time.Second)
	w1 := view(t, c, clk, n, ns, pod, ctr)
	wait := throttleWait(w1.truth.CFS.CPULimitMillicores)
	if d := w1.periods - w0.periods; d != 200 {
		t.Errorf("%v periods in 20 s, want 200", d)
	}
	if d := w1.throttled - w0.throttled; d != 180 {
		t.Errorf("%v throttled periods in 20 s, want 180", d)
	}
	if d := w1.throttledSec - w0.throttledSec; !(math.Abs(d-180*wait) <= 1e-6) {
		t.Errorf("%v s throttled in 20 s, want %v", d, 180*wait)
	}
	cfs := w1.truth.CFS
	if cfs.Periods != uint64(w1.periods) || cfs.ThrottledPeriods != uint64(w1.throttled) || cfs.ThrottledPeriodsPerSecond != 9 ||
		cfs.PeriodsPerSecond != 10 || !(math.Abs(cfs.ThrottledSecondsPerSecond-9*wait) <= 1e-12) {
		t.Errorf("truth %+v, want the counters of /metrics/cadvisor and 9 of 10 periods a second throttled", cfs)
	}
	postFault(t, c, ns+"/"+pod, ctr, "none", http.StatusNoContent)
	clk.Advance(20 * time.Second)
	w2 := view(t, c, clk, n, ns, pod, ctr)
	if w2.throttled != w1.throttled || w2.periods-w1.periods != 200 || w2.truth.CFS.ThrottledPeriodsPerSecond != 0 {
		t.Errorf("after clearing: throttled %v -> %v, periods %v -> %v, truth %+v", w1.throttled, w2.throttled, w1.periods, w2.periods, w2.truth.CFS)
	}

	ns, pod, ctr = pickContainer(t, c, false)
	postFault(t, c, ns+"/"+pod, ctr, "throttle", http.StatusConflict)
	if v := view(t, c, clk, n, ns, pod, ctr); !math.IsNaN(v.periods) || v.truth.CFS != nil {
		t.Errorf("a container without a CPU limit has CFS counters: %v, %+v", v.periods, v.truth.CFS)
	}
}

// TestContainerFaultErrors: the endpoint's answers to bad requests.
func TestContainerFaultErrors(t *testing.T) {
	c, _ := startCluster(t, Options{Nodes: 1, PodsPerNode: 8, Mode: ModeConstant})
	ns, pod, ctr := pickContainer(t, c, false)
	postFault(t, c, ns+"/"+pod, ctr, "explode", http.StatusBadRequest)
	postFault(t, c, pod, ctr, "oom", http.StatusBadRequest)
	postFault(t, c, ns+"/"+pod, "", "oom", http.StatusBadRequest)
	postFault(t, c, ns+"/"+pod+"x", ctr, "oom", http.StatusNotFound)
	postFault(t, c, ns+"/"+pod, ctr+"x", "oom", http.StatusNotFound)
	if _, err := ParseContainerFault("throttle"); err != nil {
		t.Error(err)
	}
	for f := ContainerFaultNone; f <= FaultThrottle; f++ {
		if g, err := ParseContainerFault(f.String()); err != nil || g != f {
			t.Errorf("%v: parsed back as %v, %v", f, g, err)
		}
	}
}

// TestTruthAtTime: /sim/truth?time= evaluates a past second, the faults of
// then included; a future time is refused.
func TestTruthAtTime(t *testing.T) {
	c, clk := startCluster(t, Options{Nodes: 1, PodsPerNode: 8, Mode: ModeConstant})
	ns, pod, ctr := pickContainer(t, c, false)
	t0 := clk.Now().Unix()
	clk.Advance(30 * time.Second)
	if err := c.SetContainerFault(ns, pod, ctr, FaultOOM); err != nil {
		t.Fatal(err)
	}
	clk.Advance(30 * time.Second)
	h := c.Handler()
	var then, now Truth
	decodeStrict(t, handlerGet(t, h, http.MethodGet, "/sim/truth?time="+strconv.FormatInt(t0, 10)).Body.Bytes(), &then)
	decodeStrict(t, handlerGet(t, h, http.MethodGet, "/sim/truth").Body.Bytes(), &now)
	k := ctrKey{ns, pod, ctr}
	if then.Time.Unix() != t0 || truthMap(then)[k].OOMKills != 0 || truthMap(now)[k].OOMKills != 1 {
		t.Errorf("then (%v) %d kills, now %d: want 0 and 1", then.Time, truthMap(then)[k].OOMKills, truthMap(now)[k].OOMKills)
	}
	if rec := handlerGet(t, h, http.MethodGet, "/sim/truth?time="+strconv.FormatInt(clk.Now().Unix()+60, 10)); rec.Code != http.StatusBadRequest {
		t.Errorf("a future time: %d", rec.Code)
	}
}

// TestRealisticSignals: in realistic mode, over hours, some containers are
// throttled (only ones with a CPU limit, their counters never going down
// within a run), some OOM-killed (truth and pod status agree), and counters
// are consistent with the truth.
func TestRealisticSignals(t *testing.T) {
	c, clk := startCluster(t, Options{Nodes: 4, PodsPerNode: 30})
	throttled, oomRestarted, oomProcess := map[ctrKey]bool{}, map[ctrKey]bool{}, map[ctrKey]bool{}
	prev := map[ctrKey]TruthContainer{}
	for step := range 24 {
		for _, tc := range c.Truth(clk.Now()).Containers {
			k := ctrKey{tc.Namespace, tc.Pod, tc.Container}
			if tc.CFS != nil {
				if tc.CFS.ThrottledPeriods > tc.CFS.Periods || tc.CFS.ThrottledPeriodsPerSecond < 0 || tc.CFS.ThrottledPeriodsPerSecond > 10 {
					t.Fatalf("%v: %+v", k, tc.CFS)
				}
				if p, ok := prev[k]; ok && p.CFS != nil && p.RestartCount == tc.RestartCount && tc.CFS.ThrottledPeriods < p.CFS.ThrottledPeriods {
					t.Errorf("%v: throttled periods went down within a run: %d -> %d", k, p.CFS.ThrottledPeriods, tc.CFS.ThrottledPeriods)
				}
				if tc.CFS.ThrottledPeriodsPerSecond > 0 {
					throttled[k] = true
				}
			}
			if p, ok := prev[k]; ok && tc.OOMKills < p.OOMKills {
				t.Errorf("%v: OOM kills went down: %d -> %d", k, p.OOMKills, tc.OOMKills)
			}
			if tc.LastTerminationReason == "OOMKilled" {
				oomRestarted[k] = true
			}
			if tc.OOMEvents > 0 {
				oomProcess[k] = true
			}
			if tc.OOMKills < tc.OOMEvents {
				t.Errorf("%v: %d OOM kills, %d in this run", k, tc.OOMKills, tc.OOMEvents)
			}
			prev[k] = tc
		}
		if step == 0 { // the pod status agrees with the truth
			for _, n := range c.Nodes() {
				for _, p := range getPods(t, n).Items {
					for _, st := range p.Status.ContainerStatuses {
						tc := prev[ctrKey{p.Namespace, p.Name, st.Name}]
						reason := ""
						if st.LastTerminationState.Terminated != nil {
							reason = st.LastTerminationState.Terminated.Reason
						}
						if reason != tc.LastTerminationReason || st.RestartCount != tc.RestartCount {
							t.Errorf("%s/%s/%s: status %q %d, truth %q %d", p.Namespace, p.Name, st.Name, reason, st.RestartCount, tc.LastTerminationReason, tc.RestartCount)
						}
					}
				}
			}
		}
		clk.Advance(10 * time.Minute)
	}
	t.Logf("over 4 h of 120 pods: %d containers throttled, %d OOM-killed and restarted, %d with another process OOM-killed", len(throttled), len(oomRestarted), len(oomProcess))
	if len(throttled) == 0 || len(oomRestarted) == 0 || len(oomProcess) == 0 {
		t.Errorf("realistic mode: %d throttled, %d OOM-restarted, %d OOM-killed processes: want some of each", len(throttled), len(oomRestarted), len(oomProcess))
	}
}
