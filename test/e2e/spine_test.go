package e2e

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/model"
)

type ckey struct{ ns, pod, container string }

// TestConstantClusterAccuracy: a 50-node × 20-pod simulated cluster in
// constant mode. After two cycles every container's CPU rate (model API and
// PromQL) matches the simulator's truth within 1 %, memory exactly, every
// roll-up equals the sum of its parts and has as many series as the truth
// has objects, and a restarted container's rate has a sample in every
// interval, none negative or spiked.
func TestConstantClusterAccuracy(t *testing.T) {
	const interval = 2 * time.Second
	p := startDemo(t, "--sim-mode", "constant", "--nodes", "50", "--pods-per-node", "20",
		"--interval", interval.String(), "--scrape-timeout", "1s", "--data-dir", t.TempDir())
	waitFor(t, 30*time.Second, "/readyz", func() bool { c, _ := p.get(t, "/readyz"); return c == 200 })
	waitFor(t, 60*time.Second, "rates for all 2000 containers", func() bool {
		r := p.query(t, "count("+name(model.LevelContainer, model.CPUUsageRate)+")")
		return len(r) == 1 && r[0].v(t) == 2000
	})
	// PromQL's rate() only extrapolates to a window's start when the series
	// began before it: wait until 10 s windows are full.
	waitFor(t, 60*time.Second, "full 10 s windows", func() bool {
		r := p.query(t, "min(count_over_time("+name(model.LevelContainer, model.CPUUsage)+"[10s]))")
		return len(r) == 1 && r[0].v(t) >= 5
	})

	var tr truth
	p.getJSON(t, "/sim/truth", &tr)
	if len(tr.Containers) != 2000 {
		t.Fatalf("truth has %d containers, want 2000", len(tr.Containers))
	}
	byKey := map[ckey]int{}
	for i, c := range tr.Containers {
		byKey[ckey{c.Namespace, c.Pod, c.Container}] = i
	}
	if len(byKey) != 2000 {
		t.Fatalf("truth names %d distinct containers, want 2000", len(byKey))
	}

	// PromQL over the raw counters: one sample per container of the truth,
	// each within tol of it (a NaN or a missing container fails).
	checkAll := func(q string, want func(i int) float64, tol float64) {
		t.Helper()
		res := p.query(t, q)
		if len(q) > 120 {
			q = q[:120] + "…"
		}
		if len(res) != 2000 {
			t.Fatalf("%s: %d series, want 2000", q, len(res))
		}
		seen := make(map[int]bool, len(res))
		bad := 0
		for _, s := range res {
			i, ok := byKey[ckey{s.Metric[model.LabelNamespace], s.Metric[model.LabelPod], s.Metric[model.LabelContainer]}]
			if !ok || seen[i] {
				t.Fatalf("%s: unknown or repeated container %v", q, s.Metric)
			}
			seen[i] = true
			if got, w := s.v(t), want(i); !within(got, w, tol) {
				if bad++; bad < 5 {
					t.Errorf("%s %v = %v, want %v", q, s.Metric, got, w)
				}
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d of 2000 off", q, bad)
		}
	}
	cpu := func(i int) float64 { return tr.Containers[i].CPUMillicores / 1000 }
	// PromQL's rate() extrapolates to the window's edges, and only partly
	// when the gap to an edge exceeds 1.1 sample intervals; a loaded machine
	// makes kubelet (second-precision) timestamps irregular. So evaluate each
	// node's rate over a window whose edges sit on its stored samples: then
	// rate() is exactly the counters' slope.
	var nodes []string
	p.getJSON(t, "/api/v1/model/nodes/", &nodes)
	if len(nodes) != 50 {
		t.Fatalf("%d nodes listed, want 50", len(nodes))
	}
	var rates []string
	for _, n := range nodes {
		counter := sel(model.LevelContainer, model.CPUUsage, model.LabelNode, n)
		ts := sampleTimes(t, p, counter+"[12s]")
		first, last := ts[0], ts[len(ts)-1]
		rates = append(rates, fmt.Sprintf(`rate(%s[%dms] @ %.3f)`, counter, last-first+1, float64(last)/1000))
	}
	checkAll(strings.Join(rates, " or "), cpu, 0.01)
	checkAll(name(model.LevelContainer, model.CPUUsageRate), cpu, 0.01)
	checkAll(name(model.LevelContainer, model.MemoryWorkingSet), func(i int) float64 { return float64(tr.Containers[i].MemoryWorkingSetBytes) }, 0)
	// Disk IO comes from /metrics/cadvisor (the demo reads it), rated over
	// cAdvisor's own observation times.
	checkAll(name(model.LevelContainer, model.DiskIOReadRate), func(i int) float64 { return tr.Containers[i].DiskReadBytesPerSecond }, 0.01)
	checkAll(name(model.LevelContainer, model.DiskIOWriteRate), func(i int) float64 { return tr.Containers[i].DiskWriteBytesPerSecond }, 0.01)

	// The model API, container by container.
	bad := 0
	for _, c := range tr.Containers {
		base := fmt.Sprintf("/api/v1/model/namespaces/%s/pods/%s/containers/%s/metrics/", c.Namespace, c.Pod, c.Container)
		if got := latest(t, p, base+heapster(model.CPUUsageRate)); !within(got, c.CPUMillicores, 0.01) {
			if bad++; bad < 5 {
				t.Errorf("%s%s = %v m, want %v m", base, heapster(model.CPUUsageRate), got, c.CPUMillicores)
			}
		}
		if got := latest(t, p, base+heapster(model.MemoryWorkingSet)); !within(got, float64(c.MemoryWorkingSetBytes), 0) {
			if bad++; bad < 5 {
				t.Errorf("%s%s = %v, want %v", base, heapster(model.MemoryWorkingSet), got, c.MemoryWorkingSetBytes)
			}
		}
	}
	if bad > 0 {
		t.Errorf("model API: %d values off", bad)
	}

	// Roll-ups equal the sums of their parts, at every level (in constant
	// mode the node is the sum of its pods too: no system overhead), and
	// there are as many roll-up series as the truth has objects.
	end := cleanCycle(t, p, 50, interval)
	sums := []model.MetricID{model.CPUUsageRate, model.MemoryWorkingSet, model.CPURequest, model.CPULimit,
		model.MemoryRequest, model.MemoryLimit, model.DiskIOWriteRate}
	checkRollups(t, p, &tr, end, rollupSpec{
		sums:     sums,
		nodeSums: sums,
		counted:  []model.MetricID{model.CPUUsageRate, model.MemoryWorkingSet, model.DiskIOWriteRate},
	})

	var total float64
	for _, c := range tr.Containers {
		total += c.CPUMillicores
	}
	if got := latest(t, p, "/api/v1/model/metrics/"+heapster(model.CPUUsageRate)); !within(got, total, 0.01) {
		t.Errorf("cluster %s = %v m, want %v m", heapster(model.CPUUsageRate), got, total)
	}
	if n := p.scalar(t, "count("+name(model.LevelPod, model.Info)+")"); n != 1000 {
		t.Errorf("%v %s series, want 1000", n, name(model.LevelPod, model.Info))
	}
	at := fmt.Sprintf(" @ %.3f", float64(end)/1000)
	u := p.scalar(t, name(model.LevelCluster, model.CPUUtilization)+at)
	if want := p.scalar(t, name(model.LevelCluster, model.CPUUsageRate)+at) / p.scalar(t, name(model.LevelCluster, model.CPUAllocatable)+at); !(u > 0 && u <= 1) || !within(u, want, 1e-9) {
		t.Errorf("cluster utilization %v, want %v (usage / allocatable) in (0, 1]", u, want)
	}

	checkRestart(t, p, &tr, interval)
}

// checkRestart restarts a container of the constant-mode cluster and checks
// that its rate has a sample in every interval around the restart, each
// within 1 % of the truth (never negative nor spiked), and that PromQL's
// rate() of its counter stays within [0, 105 %] of the truth.
func checkRestart(t *testing.T, p *proc, tr *truth, interval time.Duration) {
	t.Helper()
	// A restart in the very second of a scrape leaves the new counter no
	// time to rate over, and the rate is then absent by design (see
	// pipeline.Rater); restart in a second the container's node is not
	// scraped in. Nodes are scraped at a fixed offset inside the interval,
	// so pick a container whose node's sample times all fall on seconds of
	// one parity (2 s interval).
	var (
		c     = tr.Containers[7]
		ctr   string // c's label matchers
		stamp int64  // Unix seconds of a recent scrape of c's node
	)
	cpuRate := name(model.LevelContainer, model.CPUUsageRate)
	for i := 7; i < len(tr.Containers) && stamp == 0; i += 41 {
		c = tr.Containers[i]
		ctr = match(model.LabelNamespace, c.Namespace, model.LabelPod, c.Pod, model.LabelContainer, c.Container)
		ts := sampleTimes(t, p, cpuRate+ctr+"[20s]")
		steady := len(ts) >= 5
		for j := range ts {
			steady = steady && ts[j]%1000 == 0 && (ts[j]-ts[0])%int64(interval/time.Millisecond) == 0
		}
		if steady {
			stamp = ts[len(ts)-1] / 1000
		}
	}
	if stamp == 0 {
		t.Fatalf("no container whose node is scraped at a steady second")
	}
	restartAt := time.Unix(stamp+1, 500e6) // mid-way between two scrapes
	for time.Until(restartAt) < 100*time.Millisecond {
		restartAt = restartAt.Add(interval)
	}
	time.Sleep(time.Until(restartAt))
	p.post(t, "/sim/restart?"+url.Values{"namespace": {c.Namespace}, "pod": {c.Pod}, "container": {c.Container}}.Encode())
	waitFor(t, 30*time.Second, "the restart to show", func() bool {
		r := p.query(t, name(model.LevelContainer, model.Restarts)+ctr)
		return len(r) == 1 && r[0].v(t) == 1
	})
	time.Sleep(3*interval + time.Second) // three more cycles, all stored
	end := time.Now().Add(-time.Second)
	want := c.CPUMillicores / 1000

	// Raw samples from three intervals before the restart to now: one in
	// every interval, each right.
	from := restartAt.Add(-3 * interval)
	pts := onlySeries(t, cpuRate+ctr,
		rangeSeries(t, p, fmt.Sprintf("%s%s[%dms] @ %.3f", cpuRate, ctr, end.Sub(from).Milliseconds(), float64(end.UnixMilli())/1000)))
	checkEveryInterval(t, cpuRate+ctr+" around the restart at "+restartAt.Format("15:04:05.000"), pts, from, end, interval)
	for _, pt := range pts {
		if v := pt.f(t); !(v >= 0 && within(v, want, 0.01)) {
			t.Errorf("rate around the restart %v at %v, want %v", v, time.UnixMilli(pt.T).Format("15:04:05"), want)
		}
	}
	// PromQL's rate() of the counter, reset and all.
	for _, f := range []string{"max_over_time", "min_over_time"} {
		q := fmt.Sprintf("%s(rate(%s%s[6s])[20s:1s] @ %.3f)", f, name(model.LevelContainer, model.CPUUsage), ctr, float64(end.UnixMilli())/1000)
		r := p.query(t, q)
		if len(r) != 1 {
			t.Errorf("%s: %d series, want 1", q, len(r))
			continue
		}
		if v := r[0].v(t); !(v >= 0 && v <= want*1.05) {
			t.Errorf("%s = %v, want within [0, %v]", q, v, want*1.05)
		}
	}
}

// checkEveryInterval fails unless the samples pts (oldest first) of one
// series have no gap longer than one interval (plus a second: kubelet times
// are truncated to the second) anywhere in [from, to].
func checkEveryInterval(t *testing.T, what string, pts []point, from, to time.Time, interval time.Duration) {
	t.Helper()
	maxGap := (interval + time.Second).Milliseconds()
	prev := from.UnixMilli()
	var stamps []string
	for _, pt := range pts {
		stamps = append(stamps, time.UnixMilli(pt.T).Format("05.000"))
	}
	for _, pt := range pts {
		if pt.T < from.UnixMilli() {
			continue
		}
		if pt.T-prev > maxGap {
			t.Errorf("%s: no sample from %s to %s (samples at seconds %v)", what,
				time.UnixMilli(prev).Format("15:04:05.000"), time.UnixMilli(pt.T).Format("15:04:05.000"), stamps)
		}
		prev = pt.T
	}
	if to.UnixMilli()-prev > maxGap {
		t.Errorf("%s: no sample from %s to %s (samples at seconds %v)", what,
			time.UnixMilli(prev).Format("15:04:05.000"), to.Format("15:04:05.000"), stamps)
	}
}

// TestRealisticRollups: in the default, realistic mode (usage that changes
// every second, node system overhead, pod churn, restarts), every roll-up
// of one cycle equals the sum of its parts (pod = Σ containers, namespace
// and workload = Σ pods, node requests and limits = Σ pods, cluster = Σ
// nodes), and the roll-up series are exactly as many as the truth has
// objects.
func TestRealisticRollups(t *testing.T) {
	const interval = 2 * time.Second
	p := startDemo(t, "--nodes", "8", "--pods-per-node", "10", "--interval", interval.String(), "--scrape-timeout", "1s",
		"--data-dir", t.TempDir())
	var tr truth
	p.getJSON(t, "/sim/truth", &tr)
	if len(tr.Containers) != 160 {
		t.Fatalf("truth has %d containers, want 160", len(tr.Containers))
	}
	waitFor(t, 30*time.Second, "/readyz", func() bool { c, _ := p.get(t, "/readyz"); return c == 200 })
	waitFor(t, 60*time.Second, "rates for all 160 containers", func() bool {
		r := p.query(t, "count("+name(model.LevelContainer, model.CPUUsageRate)+")")
		return len(r) == 1 && r[0].v(t) == 160
	})
	end := cleanCycle(t, p, 8, interval)
	p.getJSON(t, "/sim/truth", &tr) // pods churn, but every count stays
	checkRollups(t, p, &tr, end, rollupSpec{
		sums: []model.MetricID{model.CPUUsageRate, model.MemoryWorkingSet, model.CPURequest, model.CPULimit,
			model.MemoryRequest, model.MemoryLimit},
		// A node's usage is its own measurement (with system overhead);
		// its requests and limits are its pods'.
		nodeSums: []model.MetricID{model.CPURequest, model.CPULimit, model.MemoryRequest, model.MemoryLimit},
		counted:  []model.MetricID{model.CPUUsageRate, model.MemoryWorkingSet},
	})
	// The node's own usage includes the system's, so it is at least its pods'.
	at := func(q string, ms int64) string { return fmt.Sprintf("%s @ %.3f", q, float64(ms)/1000) }
	for _, m := range []model.MetricID{model.CPUUsageRate, model.MemoryWorkingSet} {
		own := vectorBy(t, p, at(name(model.LevelNode, m), end-1), model.LabelNode)
		pods := vectorBy(t, p, fmt.Sprintf("sum by (%s) (%s)", model.LabelNode, at(name(model.LevelPod, m), end-1)), model.LabelNode)
		if len(own) != 8 || len(pods) != 8 {
			t.Errorf("%s: %d nodes with their own value, %d with pods, want 8", name(model.LevelNode, m), len(own), len(pods))
		}
		for n, v := range own {
			if !(v > pods[n]) {
				t.Errorf("%s = %v, not above its pods' %v (system overhead)", sel(model.LevelNode, m, model.LabelNode, n), v, pods[n])
			}
		}
	}
}

// cleanCycle waits for the end of a cycle whose roll-ups can be checked
// against their parts, and returns it (Unix ms).
//
// The cycle-wide roll-ups (namespace, workload, cluster) are stamped with
// the cycle's end E and made of each node's newest scrape before it, which
// is stamped with the kubelet's (whole-second) time. So roll-ups are read
// at E and their parts at E − 1 ms, two fixed times: every query sees the
// same samples. A cycle is clean when
//   - every node's newest data at E − 1 ms was scraped in the cycle and the
//     cycle's roll-ups include every node (the cluster's capacity is the sum
//     of the nodes'): a node whose scrape is late is left out of that cycle,
//     by design;
//   - no container (re)started in it: its first observation has no rate (by
//     design), so PromQL would show the rate before the restart while the
//     pod sums without it, and a new pod's missing rate would be miscounted.
//
// Cycles that end within interval + 1 s of the call are skipped: their
// parts were scraped before it (callers wait for rates first).
func cleanCycle(t *testing.T, p *proc, nodes int, interval time.Duration) int64 {
	t.Helper()
	notBefore := time.Now().Add(interval + time.Second).UnixMilli()
	at := func(q string, ms int64) string { return fmt.Sprintf("%s @ %.3f", q, float64(ms)/1000) }
	clusterCap, nodeCap := name(model.LevelCluster, model.CPUCapacity), name(model.LevelNode, model.CPUCapacity)
	one := func(q string) float64 {
		r := p.query(t, q)
		if len(r) != 1 {
			return math.NaN()
		}
		return r[0].v(t)
	}
	var (
		last int64
		why  []string
	)
	deadline := time.Now().Add(20*interval + 10*time.Second)
	for time.Now().Before(deadline) {
		e := one("timestamp(" + clusterCap + ")")
		end := int64(math.Round(e * 1000))
		if math.IsNaN(e) || end == last || end < notBefore {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		last = end
		var reason string
		switch cl, sum, n, oldest, started := one(at(clusterCap, end)), one("sum("+at(nodeCap, end-1)+")"),
			len(p.query(t, at(nodeCap, end-1))), one("min(timestamp("+at(nodeCap, end-1)+"))"),
			len(p.query(t, fmt.Sprintf("%s < %d", at(name(model.LevelContainer, model.Uptime), end-1), int(interval.Seconds())))); {
		case n != nodes:
			reason = fmt.Sprintf("%d nodes, want %d", n, nodes)
		case !within(cl, sum, 1e-12):
			reason = fmt.Sprintf("cluster capacity %v, the nodes' %v: a node is missing from the cycle", cl, sum)
		case !(oldest*1000 >= float64(end-interval.Milliseconds())):
			reason = fmt.Sprintf("a node's newest sample (%v) is from before the cycle", oldest)
		case started > 0:
			reason = fmt.Sprintf("%d containers (re)started", started)
		}
		if reason == "" {
			if len(why) > 0 {
				t.Logf("cycles skipped: %s", strings.Join(why, "; "))
			}
			return end
		}
		why = append(why, fmt.Sprintf("%s: %s", time.UnixMilli(end).Format("15:04:05"), reason))
	}
	t.Fatalf("no cycle to check roll-ups in: %s", strings.Join(why, "; "))
	return 0
}

// rollupSpec says what checkRollups checks.
type rollupSpec struct {
	sums     []model.MetricID // pod = Σ containers, namespace = Σ pods, workload = Σ pods, cluster = Σ nodes
	nodeSums []model.MetricID // also node = Σ pods
	counted  []model.MetricID // every object has these: their series are counted against the truth
}

// checkRollups checks the roll-ups of the cycle that ended at end (Unix ms;
// see cleanCycle) against their parts, and counts their series against
// the truth.
func checkRollups(t *testing.T, p *proc, tr *truth, end int64, spec rollupSpec) {
	t.Helper()
	at := func(q string, ms int64) string { return fmt.Sprintf("%s @ %.3f", q, float64(ms)/1000) }
	parts := end - 1
	ns, pod, ctr, node := model.LabelNamespace, model.LabelPod, model.LabelContainer, model.LabelNode
	kind, wl := model.LabelWorkloadKind, model.LabelWorkload

	// What the truth implies: its containers, pods, namespaces and nodes,
	// one cluster, and the workloads its pods are named after.
	want := map[model.Level]int{model.LevelCluster: 1}
	seen := map[model.Level]map[string]bool{model.LevelContainer: {}, model.LevelPod: {}, model.LevelNamespace: {}, model.LevelNode: {}}
	for _, c := range tr.Containers {
		seen[model.LevelContainer][c.Namespace+"/"+c.Pod+"/"+c.Container] = true
		seen[model.LevelPod][c.Namespace+"/"+c.Pod] = true
		seen[model.LevelNamespace][c.Namespace] = true
		seen[model.LevelNode][c.Node] = true
	}
	for level, s := range seen {
		want[level] = len(s)
	}
	workloads := truthWorkloads(t, p, tr, parts)
	want[model.LevelWorkload] = len(workloads)
	if want[model.LevelNamespace] < 2 || want[model.LevelWorkload] < 2 {
		t.Fatalf("the truth has %d namespaces and %d workloads: too few to test roll-ups", want[model.LevelNamespace], want[model.LevelWorkload])
	}
	t.Logf("roll-ups of the cycle ending %s: truth has %v", time.UnixMilli(end).Format("15:04:05"), want)

	for _, m := range spec.sums {
		of := func(l model.Level) string { return name(l, m) }
		got := map[model.Level]map[string]float64{
			model.LevelPod: checkSums(t, p, of(model.LevelPod)+" = Σ containers", at(of(model.LevelPod), parts),
				fmt.Sprintf("sum by (%s) (%s)", by(ns, pod, node), at(of(model.LevelContainer), parts)), ns, pod, node),
			model.LevelNamespace: checkSums(t, p, of(model.LevelNamespace)+" = Σ pods", at(of(model.LevelNamespace), end),
				fmt.Sprintf("sum by (%s) (%s)", ns, at(of(model.LevelPod), parts)), ns),
			// Workloads: pods joined to their owner through the pod info series.
			model.LevelWorkload: checkSums(t, p, of(model.LevelWorkload)+" = Σ pods", at(of(model.LevelWorkload), end),
				fmt.Sprintf("sum by (%s) (%s * on(%s) group_left(%s) %s)", by(ns, kind, wl),
					at(of(model.LevelPod), parts), by(ns, pod), by(kind, wl), at(sel(model.LevelPod, model.Info, wl+"!=", ""), parts)), ns, kind, wl),
			model.LevelCluster: checkSums(t, p, of(model.LevelCluster)+" = Σ nodes", at(of(model.LevelCluster), end), fmt.Sprintf("sum(%s)", at(of(model.LevelNode), parts))),
		}
		if slices.Contains(spec.nodeSums, m) {
			got[model.LevelNode] = checkSums(t, p, of(model.LevelNode)+" = Σ pods", at(of(model.LevelNode), parts),
				fmt.Sprintf("sum by (%s) (%s)", node, at(of(model.LevelPod), parts)), node)
		}
		if !slices.Contains(spec.counted, m) {
			continue
		}
		got[model.LevelContainer] = vectorBy(t, p, at(of(model.LevelContainer), parts), ns, pod, ctr)
		if got[model.LevelNode] == nil {
			got[model.LevelNode] = vectorBy(t, p, at(of(model.LevelNode), parts), node)
		}
		for _, level := range []model.Level{model.LevelContainer, model.LevelPod, model.LevelNamespace, model.LevelWorkload, model.LevelNode, model.LevelCluster} {
			if n := len(got[level]); n != want[level] {
				t.Errorf("%s: %d series, the truth has %d", of(level), n, want[level])
			}
		}
		for w := range workloads {
			if _, ok := got[model.LevelWorkload][w]; !ok {
				t.Errorf("%s: no series for %s", of(model.LevelWorkload), w)
			}
		}
	}
}

// checkSums compares roll-ups with the sums of their parts: parent queries
// the roll-up series and parts the sums of their parts, one sample per key
// (the values of by). Every key must be on both sides (no roll-up missing,
// none without parts) and the values equal to within 1e-9 (a NaN fails).
// It returns the roll-ups.
func checkSums(t *testing.T, p *proc, what, parent, parts string, by ...string) map[string]float64 {
	t.Helper()
	got := vectorBy(t, p, parent, by...)
	want := vectorBy(t, p, parts, by...)
	bad := 0
	report := func(format string, args ...any) {
		t.Helper()
		if bad++; bad <= 5 {
			t.Errorf("%s: "+format, append([]any{what}, args...)...)
		}
	}
	for k, w := range want {
		if g, ok := got[k]; !ok {
			report("no roll-up for %q (its parts sum to %v)", k, w)
		} else if !within(g, w, 1e-9) {
			report("%q = %v, its parts sum to %v", k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			report("%q = %v has no parts", k, g)
		}
	}
	if len(got) == 0 {
		report("no roll-up series (%s)", parent)
	}
	if bad > 0 {
		t.Errorf("%s: %d differences, %d roll-up series (%s vs %s)", what, bad, len(got), parent, parts)
	}
	return got
}

// truthWorkloads returns the workloads ("namespace/kind/name") the truth's
// pods belong to. The truth has no owners, so the candidates are the
// workloads kubemon's pod_info names at time ms, and a truth pod belongs to
// the one its name is generated from (<deployment>-<hash>-<suffix>,
// <daemonset>-<suffix>, <statefulset>-<ordinal>, <cronjob>-<minute>-<suffix>);
// a pod named after none must be one of pod_info's pods without a workload.
func truthWorkloads(t *testing.T, p *proc, tr *truth, ms int64) map[string]bool {
	t.Helper()
	info := p.query(t, fmt.Sprintf("%s @ %.3f", name(model.LevelPod, model.Info), float64(ms)/1000))
	byNS := map[string][][2]string{} // namespace → (kind, name)
	infoBare, truthBare := 0, 0
	known := map[string]bool{}
	for _, s := range info {
		kind, wl, ns := s.Metric[model.LabelWorkloadKind], s.Metric[model.LabelWorkload], s.Metric[model.LabelNamespace]
		if wl == "" {
			infoBare++
			continue
		}
		if k := ns + "/" + kind + "/" + wl; !known[k] {
			known[k] = true
			byNS[ns] = append(byNS[ns], [2]string{kind, wl})
		}
	}
	out := map[string]bool{}
	pods := map[string]bool{}
	for _, c := range tr.Containers {
		if pods[c.Namespace+"/"+c.Pod] {
			continue
		}
		pods[c.Namespace+"/"+c.Pod] = true
		var owners []string
		for _, w := range byNS[c.Namespace] {
			if namedAfter(c.Pod, w[0], w[1]) {
				owners = append(owners, c.Namespace+"/"+w[0]+"/"+w[1])
			}
		}
		switch len(owners) {
		case 0:
			truthBare++
		case 1:
			out[owners[0]] = true
		default:
			t.Fatalf("pod %s/%s is named after %v", c.Namespace, c.Pod, owners)
		}
	}
	if len(info) != len(pods) || infoBare != truthBare {
		t.Errorf("%s: %d series (%d without a workload), the truth has %d pods (%d named after no workload)",
			name(model.LevelPod, model.Info), len(info), infoBare, len(pods), truthBare)
	}
	return out
}

var (
	genSuffix = regexp.MustCompile(`^[a-z0-9]{5}$`)
	genHash   = regexp.MustCompile(`^[a-z0-9]{10}$`)
	digits    = regexp.MustCompile(`^[0-9]+$`)
)

// namedAfter reports whether pod is named as Kubernetes names the pods of
// a workload of that kind and name.
func namedAfter(pod, kind, name string) bool {
	rest, ok := strings.CutPrefix(pod, name+"-")
	if !ok {
		return false
	}
	f := strings.Split(rest, "-")
	switch kind {
	case "Deployment":
		return len(f) == 2 && genHash.MatchString(f[0]) && genSuffix.MatchString(f[1])
	case "DaemonSet", "Job":
		return len(f) == 1 && genSuffix.MatchString(f[0])
	case "StatefulSet":
		return len(f) == 1 && digits.MatchString(f[0])
	case "CronJob":
		return len(f) == 2 && digits.MatchString(f[0]) && genSuffix.MatchString(f[1])
	}
	return false
}

// vectorBy runs an instant query and returns its values keyed by the
// values of labels, joined with "/"; a key seen twice fails the test.
func vectorBy(t *testing.T, p *proc, q string, labels ...string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, s := range p.query(t, q) {
		var k []string
		for _, l := range labels {
			k = append(k, s.Metric[l])
		}
		key := strings.Join(k, "/")
		if _, dup := out[key]; dup {
			t.Fatalf("%s: two samples for %q", q, key)
		}
		out[key] = s.v(t)
	}
	return out
}

// point is one raw sample: its time (Unix ms) and value as the API wrote it.
type point struct {
	T int64
	V string
}

func (pt point) f(t *testing.T) float64 {
	f, err := strconv.ParseFloat(pt.V, 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// rangeSeries runs a range-vector instant query and returns the raw samples
// of each series, oldest first, keyed by its labels ({a="x", b="y"}, sorted).
func rangeSeries(t *testing.T, p *proc, q string) map[string][]point {
	t.Helper()
	var r struct {
		Status string `json:"status"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	p.getJSON(t, "/api/v1/query?query="+url.QueryEscape(q), &r)
	if r.Status != "success" || r.Data.ResultType != "matrix" {
		t.Fatalf("query %s: %+v", q, r)
	}
	out := map[string][]point{}
	for _, s := range r.Data.Result {
		var ls []string
		for k, v := range s.Metric {
			ls = append(ls, fmt.Sprintf("%s=%q", k, v))
		}
		sort.Strings(ls)
		key := "{" + strings.Join(ls, ", ") + "}"
		for _, v := range s.Values {
			ts, _ := v[0].(float64)
			val, _ := v[1].(string)
			out[key] = append(out[key], point{T: int64(math.Round(ts * 1000)), V: val})
		}
	}
	return out
}

// onlySeries returns the samples of the one series of a rangeSeries result.
func onlySeries(t *testing.T, what string, m map[string][]point) []point {
	t.Helper()
	if len(m) != 1 {
		t.Fatalf("%s: %d series, want 1", what, len(m))
	}
	for _, pts := range m {
		return pts
	}
	return nil
}

// latest is the last point of a model API answer.
func latest(t *testing.T, p *proc, path string) float64 {
	t.Helper()
	v := points(t, p, path)
	if len(v) == 0 {
		t.Fatalf("%s: no points", path)
	}
	return v[len(v)-1]
}

// meanPoints is the mean of a model API answer's points, and how many
// there were (NaN for none).
func meanPoints(t *testing.T, p *proc, path string) (float64, int) {
	t.Helper()
	v := points(t, p, path)
	sum := 0.0
	for _, x := range v {
		sum += x
	}
	return sum / float64(len(v)), len(v)
}

// points are the values of a model API answer's points, oldest first.
func points(t *testing.T, p *proc, path string) []float64 {
	t.Helper()
	var r struct {
		Metrics []struct {
			Value      uint64   `json:"value"`
			FloatValue *float64 `json:"floatValue"`
		} `json:"metrics"`
	}
	p.getJSON(t, path, &r)
	v := make([]float64, 0, len(r.Metrics))
	for _, m := range r.Metrics {
		if m.FloatValue != nil {
			v = append(v, *m.FloatValue)
		} else {
			v = append(v, float64(m.Value))
		}
	}
	return v
}

// matrix runs a range-vector instant query and returns each series'
// [time, "value"] pairs.
func matrix(t *testing.T, p *proc, q string) [][][2]any {
	t.Helper()
	var r struct {
		Data struct {
			Result []struct {
				Values [][2]any `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	p.getJSON(t, "/api/v1/query?query="+url.QueryEscape(q), &r)
	var out [][][2]any
	for _, s := range r.Data.Result {
		out = append(out, s.Values)
	}
	if len(out) == 0 || len(out[0]) == 0 {
		t.Fatalf("%s: no samples", q)
	}
	return out
}

// sampleTimes returns the timestamps (ms) of the samples of the first series
// of a range-vector query, oldest first.
func sampleTimes(t *testing.T, p *proc, q string) []int64 {
	t.Helper()
	var out []int64
	for _, v := range matrix(t, p, q)[0] {
		out = append(out, int64(math.Round(v[0].(float64)*1000)))
	}
	return out
}

// TestFaultyNode: a malformed, truncated, slow, oversized or failing
// payload from one node is a failure kubemon counts and logs against that
// node, and every other node's data is still stored in every cycle.
func TestFaultyNode(t *testing.T) {
	const interval = 2 * time.Second
	p := startDemo(t, "--nodes", "6", "--pods-per-node", "5", "--interval", interval.String(), "--scrape-timeout", "1s",
		"--scrape-max-bytes", "8388608", "--data-dir", t.TempDir())
	waitFor(t, 30*time.Second, "/readyz", func() bool { c, _ := p.get(t, "/readyz"); return c == 200 })
	// The series the check follows exist: every node's and its 10 containers'.
	waitFor(t, 30*time.Second, "every node and container stored", func() bool {
		r := p.query(t, fmt.Sprintf("count by (%s) (%s)", model.LabelNode, name(model.LevelContainer, model.MemoryWorkingSet)))
		ok := len(r) == 6 && len(p.query(t, name(model.LevelNode, model.MemoryWorkingSet))) == 6
		for _, s := range r {
			ok = ok && s.v(t) == 10
		}
		return ok
	})
	var nodes []string
	p.getJSON(t, "/api/v1/model/nodes/", &nodes)
	if len(nodes) != 6 {
		t.Fatalf("nodes %v", nodes)
	}
	bad := nodes[2]
	failuresOf := func(n string) string { return fmt.Sprintf(`kubemon_scrape_failures_total{node=%q}`, n) }
	scrapeFailed := regexp.MustCompile(`^time=\S+ level=WARN msg="scrape failed" node=(\S+) err=(.*)$`)
	// What the logged error says, by fault (streaming 8 MiB can outlast
	// the timeout on a loaded machine).
	timeout := `deadline exceeded|timeout`
	cause := map[string]*regexp.Regexp{
		"malformed": regexp.MustCompile(`decode summary`),
		"truncated": regexp.MustCompile(`decode summary`),
		"slow":      regexp.MustCompile(timeout),
		"oversized": regexp.MustCompile(`response too large|` + timeout),
		"down":      regexp.MustCompile(`500 Internal Server Error`),
	}
	for _, fault := range []string{"malformed", "truncated", "slow", "oversized", "down"} {
		t.Run(fault, func(t *testing.T) {
			before := map[string]float64{}
			for _, n := range nodes {
				before[n] = p.metric(t, failuresOf(n))
			}
			logFrom := len(p.Logs())
			from := time.Now()
			p.post(t, "/sim/fault?node="+bad+"&fault="+fault)
			waitFor(t, 30*time.Second, "three failed scrapes", func() bool { return p.metric(t, failuresOf(bad)) >= before[bad]+3 })
			to := time.Now()
			time.Sleep(1500 * time.Millisecond) // what was scraped by then is stored

			// kubemon's own evidence: its failure counter and its scrape's
			// log line name the faulty node, and only it.
			for _, n := range nodes {
				if got := p.metric(t, failuresOf(n)); n != bad && got != before[n] {
					t.Errorf("%s = %v, was %v: a healthy node failed", failuresOf(n), got, before[n])
				}
			}
			logged := 0
			for _, line := range strings.Split(p.Logs()[logFrom:], "\n") {
				m := scrapeFailed.FindStringSubmatch(line)
				if m == nil {
					continue
				}
				if m[1] != bad {
					t.Errorf("a healthy node's scrape failed: %s", line)
					continue
				}
				if !cause[fault].MatchString(m[2]) {
					t.Errorf("scrape of %s failed with %s, want an error matching %q", bad, m[2], cause[fault])
				}
				logged++
			}
			if logged < 2 {
				t.Errorf("kubemon logged %d failed scrapes of %s, want ≥ 2; log:\n%s", logged, bad, p.Logs()[logFrom:])
			}

			// The other five nodes are stored in every cycle of the fault,
			// each with all its containers; the faulty node not at all.
			checkStoredEveryCycle(t, p, nodes, bad, from, to, interval)

			p.post(t, "/sim/fault?node="+bad+"&fault=none")
			cleared := time.Now()
			waitFor(t, 20*time.Second, bad+" stored again", func() bool {
				r := p.query(t, "timestamp("+sel(model.LevelNode, model.MemoryWorkingSet, model.LabelNode, bad)+")")
				return len(r) == 1 && r[0].v(t) > float64(cleared.UnixMilli())/1000
			})
		})
	}
}

// checkStoredEveryCycle checks that from from to to every node but bad has
// a node sample in every interval, each with all the node's containers
// stored at the same time, and that bad has none.
func checkStoredEveryCycle(t *testing.T, p *proc, nodes []string, bad string, from, to time.Time, interval time.Duration) {
	t.Helper()
	// From the last sample before from.
	window := fmt.Sprintf("[%dms] @ %.3f", to.Sub(from).Milliseconds()+interval.Milliseconds()+1000, float64(to.UnixMilli())/1000)
	ofNode := map[string][]point{}
	for key, pts := range rangeSeries(t, p, name(model.LevelNode, model.MemoryWorkingSet)+window) {
		ofNode[labelOf(key, model.LabelNode)] = pts
	}
	ctrs := map[string]map[int64]int{} // node → time → containers stored then
	for key, pts := range rangeSeries(t, p, name(model.LevelContainer, model.MemoryWorkingSet)+window) {
		n := labelOf(key, model.LabelNode)
		if ctrs[n] == nil {
			ctrs[n] = map[int64]int{}
		}
		for _, pt := range pts {
			ctrs[n][pt.T]++
		}
	}
	healthy := 0
	for _, n := range nodes {
		pts := ofNode[n]
		if n == bad {
			for _, pt := range pts {
				if pt.T > from.UnixMilli() {
					t.Errorf("faulty node %s stored at %s, after the fault at %s", n,
						time.UnixMilli(pt.T).Format("15:04:05.000"), from.Format("15:04:05.000"))
				}
			}
			continue
		}
		if len(pts) == 0 {
			t.Errorf("node %s: no samples in %s", n, window)
			continue
		}
		healthy++
		checkEveryInterval(t, "node "+n+" while "+bad+" failed", pts, from, to, interval)
		for _, pt := range pts {
			if c := ctrs[n][pt.T]; c != 10 {
				t.Errorf("node %s at %s: %d containers stored, want 10", n, time.UnixMilli(pt.T).Format("15:04:05"), c)
			}
		}
	}
	if healthy != len(nodes)-1 {
		t.Errorf("%d healthy nodes stored, want %d", healthy, len(nodes)-1)
	}
}

// labelOf returns the value of label l in a rangeSeries key.
func labelOf(key, l string) string {
	i := strings.Index(key, l+`="`)
	if i < 0 || (i > 0 && key[i-1] != '{' && key[i-1] != ' ') {
		return ""
	}
	v, err := strconv.QuotedPrefix(key[i+len(l)+1:])
	if err != nil {
		return ""
	}
	s, _ := strconv.Unquote(v)
	return s
}

// TestKillAndRestart: kubemon killed with SIGKILL and started again on the
// same data directory answers for the time before the kill exactly as it
// did before: every series of a sample of objects (three containers, two
// pods, a namespace, a workload, a node and the cluster), every point.
func TestKillAndRestart(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--sim-mode", "constant", "--nodes", "3", "--pods-per-node", "4", "--interval", "1s", "--data-dir", dir}
	started := time.Now()
	p := startDemo(t, args...)
	type modelPoints struct {
		Metrics []struct {
			Timestamp time.Time `json:"timestamp"`
			Value     uint64    `json:"value"`
		} `json:"metrics"`
	}
	waitFor(t, 30*time.Second, "ten cycles", func() bool {
		r := p.query(t, "count_over_time("+name(model.LevelCluster, model.CPUUsageRate)+"[1m])")
		return len(r) == 1 && r[0].v(t) >= 10
	})
	var tr truth
	p.getJSON(t, "/sim/truth", &tr)
	if len(tr.Containers) != 24 {
		t.Fatalf("truth has %d containers, want 24", len(tr.Containers))
	}
	workload := p.query(t, sel(model.LevelPod, model.Info, model.LabelWorkload+"!=", ""))
	if len(workload) == 0 {
		t.Fatalf("no pod has a workload")
	}

	// The sample: every series of each object, min the fewest series it has.
	type object struct {
		sel string
		min int
	}
	var objects []object
	for _, i := range []int{0, 3, 17} { // three pods, two nodes
		c := tr.Containers[i]
		objects = append(objects, object{match("__name__=~", anyOf(model.LevelContainer),
			model.LabelNamespace, c.Namespace, model.LabelPod, c.Pod, model.LabelContainer, c.Container), 10})
	}
	for _, i := range []int{0, 17} {
		c := tr.Containers[i]
		objects = append(objects, object{match("__name__=~", anyOf(model.LevelPod), model.LabelNamespace, c.Namespace, model.LabelPod, c.Pod), 10})
	}
	w := workload[0].Metric
	objects = append(objects,
		object{match("__name__=~", anyOf(model.LevelNamespace), model.LabelNamespace, tr.Containers[0].Namespace), 5},
		object{match("__name__=~", anyOf(model.LevelWorkload), model.LabelNamespace, w[model.LabelNamespace],
			model.LabelWorkloadKind, w[model.LabelWorkloadKind], model.LabelWorkload, w[model.LabelWorkload]), 5},
		object{match("__name__=~", anyOf(model.LevelNode), model.LabelNode, tr.Containers[0].Node), 10},
		object{match("__name__=~", anyOf(model.LevelCluster)), 10},
	)
	// Up to a time far enough back that everything scraped by then is stored.
	end := time.Now().Add(-3 * time.Second)
	rng := fmt.Sprintf("[%dms] @ %.3f", end.Sub(started).Milliseconds(), float64(end.UnixMilli())/1000)
	before := make([]map[string][]point, len(objects))
	series, samples := 0, 0
	for i, o := range objects {
		before[i] = rangeSeries(t, p, o.sel+rng)
		if len(before[i]) < o.min {
			t.Fatalf("%s: %d series, want ≥ %d", o.sel, len(before[i]), o.min)
		}
		for k, pts := range before[i] {
			if len(pts) < 5 {
				t.Fatalf("%s: %d samples before the kill, want ≥ 5", k, len(pts))
			}
			series++
			samples += len(pts)
		}
	}
	t.Logf("%d series of %d objects, %d samples up to %s", series, len(objects), samples, end.Format("15:04:05.000"))
	var modelBefore modelPoints
	p.getJSON(t, "/api/v1/model/metrics/"+heapster(model.CPUUsageRate)+"?end="+end.UTC().Format(time.RFC3339), &modelBefore)
	if len(modelBefore.Metrics) < 5 {
		t.Fatalf("model API: %d cluster points, want ≥ 5", len(modelBefore.Metrics))
	}
	p.kill()

	p2 := startDemo(t, args...)
	for i, o := range objects {
		after := rangeSeries(t, p2, o.sel+rng)
		for k, pts := range before[i] {
			if got := after[k]; !slices.Equal(got, pts) {
				t.Errorf("%s: %d samples after the restart, %d before; first difference: %s", k, len(got), len(pts), firstDiff(pts, got))
			}
		}
		for k, pts := range after {
			if _, ok := before[i][k]; !ok {
				t.Errorf("%s: %d samples after the restart, none before", k, len(pts))
			}
		}
	}
	var modelAfter modelPoints
	p2.getJSON(t, "/api/v1/model/metrics/"+heapster(model.CPUUsageRate)+"?end="+end.UTC().Format(time.RFC3339), &modelAfter)
	if len(modelAfter.Metrics) < len(modelBefore.Metrics) {
		t.Fatalf("model API after the restart: %d points before the kill, want ≥ %d", len(modelAfter.Metrics), len(modelBefore.Metrics))
	}
	for i, m := range modelBefore.Metrics {
		if !modelAfter.Metrics[i].Timestamp.Equal(m.Timestamp) || modelAfter.Metrics[i].Value != m.Value {
			t.Errorf("model API point %d: %+v after the restart, %+v before", i, modelAfter.Metrics[i], m)
		}
	}
}

// firstDiff describes where two sample lists first differ.
func firstDiff(want, got []point) string {
	for i := range want {
		if i >= len(got) {
			return fmt.Sprintf("%s = %s missing", time.UnixMilli(want[i].T).Format("15:04:05.000"), want[i].V)
		}
		if got[i] != want[i] {
			return fmt.Sprintf("%s = %s before, %s = %s after", time.UnixMilli(want[i].T).Format("15:04:05.000"), want[i].V,
				time.UnixMilli(got[i].T).Format("15:04:05.000"), got[i].V)
		}
	}
	if len(got) > len(want) {
		return fmt.Sprintf("%s = %s is new", time.UnixMilli(got[len(want)].T).Format("15:04:05.000"), got[len(want)].V)
	}
	return "none"
}
