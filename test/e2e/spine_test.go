package e2e

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

type ckey struct{ ns, pod, container string }

// TestConstantClusterAccuracy: a 50-node × 20-pod simulated cluster in
// constant mode. After two cycles every container's CPU rate (model API and
// PromQL) matches the simulator's truth within 1 %, memory exactly, and
// every roll-up equals the sum of its parts.
func TestConstantClusterAccuracy(t *testing.T) {
	p := startDemo(t, "--sim-mode", "constant", "--nodes", "50", "--pods-per-node", "20",
		"--interval", "2s", "--scrape-timeout", "1s", "--data-dir", t.TempDir())
	waitFor(t, 30*time.Second, "/readyz", func() bool { c, _ := p.get(t, "/readyz"); return c == 200 })
	waitFor(t, 60*time.Second, "rates for all 2000 containers", func() bool {
		r := p.query(t, "count(container_cpu_usage_cores)")
		return len(r) == 1 && r[0].v(t) == 2000
	})
	// PromQL's rate() only extrapolates to a window's start when the series
	// began before it: wait until 10 s windows are full.
	waitFor(t, 60*time.Second, "full 10 s windows", func() bool {
		r := p.query(t, "min(count_over_time(container_cpu_usage_seconds_total[10s]))")
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

	// PromQL over the raw counters.
	checkAll := func(q string, want func(i int) float64, tol float64) {
		t.Helper()
		res := p.query(t, q)
		if len(q) > 120 {
			q = q[:120] + "…"
		}
		if len(res) != 2000 {
			t.Fatalf("%s: %d series, want 2000", q, len(res))
		}
		bad := 0
		for _, s := range res {
			i, ok := byKey[ckey{s.Metric["namespace"], s.Metric["pod"], s.Metric["container"]}]
			if !ok {
				t.Fatalf("%s: unknown container %v", q, s.Metric)
			}
			if got, w := s.v(t), want(i); math.Abs(got-w) > tol*w {
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
		ts := sampleTimes(t, p, fmt.Sprintf(`container_cpu_usage_seconds_total{node=%q}[12s]`, n))
		first, last := ts[0], ts[len(ts)-1]
		rates = append(rates, fmt.Sprintf(`rate(container_cpu_usage_seconds_total{node=%q}[%dms] @ %.3f)`, n, last-first+1, float64(last)/1000))
	}
	checkAll(strings.Join(rates, " or "), cpu, 0.01)
	checkAll("container_cpu_usage_cores", cpu, 0.01)
	checkAll("container_memory_working_set_bytes", func(i int) float64 { return float64(tr.Containers[i].MemoryWorkingSetBytes) }, 0)
	// Disk IO comes from /metrics/cadvisor (the demo reads it), rated over
	// cAdvisor's own observation times.
	checkAll("container_disk_io_read_bytes_per_second", func(i int) float64 { return tr.Containers[i].DiskReadBytesPerSecond }, 0.01)
	checkAll("container_disk_io_write_bytes_per_second", func(i int) float64 { return tr.Containers[i].DiskWriteBytesPerSecond }, 0.01)

	// The model API, container by container.
	bad := 0
	for _, c := range tr.Containers {
		base := fmt.Sprintf("/api/v1/model/namespaces/%s/pods/%s/containers/%s/metrics/", c.Namespace, c.Pod, c.Container)
		if got := latest(t, p, base+"cpu/usage_rate"); math.Abs(got-c.CPUMillicores) > 0.01*c.CPUMillicores {
			if bad++; bad < 5 {
				t.Errorf("%s cpu/usage_rate = %v m, want %v m", base, got, c.CPUMillicores)
			}
		}
		if got := latest(t, p, base+"memory/working_set"); got != float64(c.MemoryWorkingSetBytes) {
			if bad++; bad < 5 {
				t.Errorf("%s memory/working_set = %v, want %v", base, got, c.MemoryWorkingSetBytes)
			}
		}
	}
	if bad > 0 {
		t.Errorf("model API: %d values off", bad)
	}

	// Roll-ups equal the sums of their parts, at every level.
	for _, m := range []string{"cpu_usage_cores", "memory_working_set_bytes", "cpu_request_cores", "memory_request_bytes", "disk_io_write_bytes_per_second"} {
		for _, q := range []string{
			fmt.Sprintf("pod_%[1]s - on(namespace,pod,node) sum by (namespace,pod,node) (container_%[1]s)", m),
			fmt.Sprintf("namespace_%[1]s - on(namespace) sum by (namespace) (pod_%[1]s)", m),
			fmt.Sprintf("node_%[1]s - on(node) sum by (node) (pod_%[1]s)", m),
			// Workloads: pods joined to their owner through pod_info.
			fmt.Sprintf("workload_%[1]s - on(namespace,workload_kind,workload) sum by (namespace,workload_kind,workload) "+
				"(pod_%[1]s * on(namespace,pod) group_left(workload_kind,workload) pod_info)", m),
			fmt.Sprintf("cluster_%[1]s - on() sum(node_%[1]s)", m),
		} {
			res := p.query(t, q)
			if len(res) == 0 {
				t.Errorf("%s: no result", q)
			}
			for _, s := range res {
				if d := s.v(t); math.Abs(d) > 1e-6 {
					t.Errorf("%s: %v differs by %v", q, s.Metric, d)
				}
			}
		}
	}
	var total float64
	for _, c := range tr.Containers {
		total += c.CPUMillicores
	}
	if got := latest(t, p, "/api/v1/model/metrics/cpu/usage_rate"); math.Abs(got-total) > 0.01*total {
		t.Errorf("cluster cpu/usage_rate = %v m, want %v m", got, total)
	}
	if n := p.scalar(t, "count(namespace_cpu_usage_cores)"); n < 2 {
		t.Errorf("%v namespaces", n)
	}
	if n := p.scalar(t, "count(pod_info)"); n != 1000 {
		t.Errorf("%v pod_info series, want 1000", n)
	}
	if n := p.scalar(t, "count(workload_cpu_usage_cores)"); n < 2 {
		t.Errorf("%v workloads", n)
	}
	if u := p.scalar(t, "cluster_cpu_utilization_ratio"); u <= 0 || u > 1 {
		t.Errorf("cluster utilization %v", u)
	}

	// A restart gives neither a negative nor a spiked rate.
	c := tr.Containers[7]
	sel := fmt.Sprintf(`{namespace=%q,pod=%q,container=%q}`, c.Namespace, c.Pod, c.Container)
	p.post(t, "/sim/restart?"+url.Values{"namespace": {c.Namespace}, "pod": {c.Pod}, "container": {c.Container}}.Encode())
	waitFor(t, 30*time.Second, "the restart to show", func() bool {
		r := p.query(t, "container_restart_count"+sel)
		return len(r) == 1 && r[0].v(t) == 1
	})
	time.Sleep(6 * time.Second) // three more cycles
	want := c.CPUMillicores / 1000
	for _, s := range rawSamples(t, p, "container_cpu_usage_cores"+sel+"[20s]") {
		if s < 0 || math.Abs(s-want) > 0.01*want {
			t.Errorf("rate around the restart %v, want %v", s, want)
		}
	}
	for _, s := range p.query(t, "max_over_time(rate(container_cpu_usage_seconds_total"+sel+"[6s])[20s:1s])") {
		if v := s.v(t); v < 0 || v > want*1.05 {
			t.Errorf("PromQL rate around the restart peaks at %v, want ≤ %v", v, want)
		}
	}
}

// latest is the newest value of a model API metric.
func latest(t *testing.T, p *proc, path string) float64 {
	t.Helper()
	var r struct {
		Metrics []struct {
			Value      uint64   `json:"value"`
			FloatValue *float64 `json:"floatValue"`
		} `json:"metrics"`
	}
	p.getJSON(t, path, &r)
	if len(r.Metrics) == 0 {
		t.Fatalf("%s: no points", path)
	}
	m := r.Metrics[len(r.Metrics)-1]
	if m.FloatValue != nil {
		return *m.FloatValue
	}
	return float64(m.Value)
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

// rawSamples returns the values of every series of a range-vector query.
func rawSamples(t *testing.T, p *proc, q string) []float64 {
	t.Helper()
	var out []float64
	for _, series := range matrix(t, p, q) {
		for _, v := range series {
			f, err := strconv.ParseFloat(v[1].(string), 64)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, f)
		}
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
// payload from one node is a logged, counted failure, and every other
// node's data is still stored in that cycle.
func TestFaultyNode(t *testing.T) {
	p := startDemo(t, "--nodes", "6", "--pods-per-node", "5", "--interval", "2s", "--scrape-timeout", "1s",
		"--scrape-max-bytes", "8388608", "--data-dir", t.TempDir())
	waitFor(t, 30*time.Second, "/readyz", func() bool { c, _ := p.get(t, "/readyz"); return c == 200 })
	var nodes []string
	p.getJSON(t, "/api/v1/model/nodes/", &nodes)
	if len(nodes) != 6 {
		t.Fatalf("nodes %v", nodes)
	}
	bad := nodes[2]
	for _, fault := range []string{"malformed", "truncated", "slow", "oversized", "down"} {
		t.Run(fault, func(t *testing.T) {
			failures := fmt.Sprintf(`kubemon_scrape_failures_total{node=%q}`, bad)
			before := p.metric(t, failures)
			from := time.Now()
			p.post(t, "/sim/fault?node="+bad+"&fault="+fault)
			waitFor(t, 20*time.Second, "two failures", func() bool { return p.metric(t, failures) >= before+2 })
			time.Sleep(2500 * time.Millisecond) // one more cycle
			for _, n := range nodes {
				var r struct {
					LatestTimestamp time.Time `json:"latestTimestamp"`
				}
				p.getJSON(t, "/api/v1/model/nodes/"+n+"/metrics/memory/working_set", &r)
				if n == bad && r.LatestTimestamp.After(from) {
					t.Errorf("faulty node %s has data from %v", n, r.LatestTimestamp)
				}
				if n != bad && !r.LatestTimestamp.After(from.Add(time.Second)) {
					t.Errorf("node %s last stored %v, before %v: a faulty node held it up", n, r.LatestTimestamp, from)
				}
			}
			if !strings.Contains(p.Logs(), "node="+bad) {
				t.Errorf("no logged error naming %s", bad)
			}
			p.post(t, "/sim/fault?node="+bad+"&fault=none")
		})
	}
}

// TestKillAndRestart: kubemon killed with SIGKILL and started again on the
// same data directory still answers for the time before the kill.
func TestKillAndRestart(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--sim-mode", "constant", "--nodes", "3", "--pods-per-node", "4", "--interval", "1s", "--data-dir", dir}
	p := startDemo(t, args...)
	var before struct {
		Metrics []struct {
			Timestamp time.Time `json:"timestamp"`
			Value     uint64    `json:"value"`
		} `json:"metrics"`
	}
	waitFor(t, 30*time.Second, "five cluster points", func() bool {
		p.getJSON(t, "/api/v1/model/metrics/cpu/usage_rate", &before)
		return len(before.Metrics) >= 5
	})
	killedAt := time.Now()
	p.kill()

	p2 := startDemo(t, args...)
	var after struct {
		Metrics []struct {
			Timestamp time.Time `json:"timestamp"`
			Value     uint64    `json:"value"`
		} `json:"metrics"`
	}
	p2.getJSON(t, "/api/v1/model/metrics/cpu/usage_rate?end="+killedAt.UTC().Format(time.RFC3339), &after)
	if len(after.Metrics) < len(before.Metrics) {
		t.Fatalf("after restart %d points before the kill, want ≥ %d", len(after.Metrics), len(before.Metrics))
	}
	for i, m := range before.Metrics {
		if !after.Metrics[i].Timestamp.Equal(m.Timestamp) || after.Metrics[i].Value != m.Value {
			t.Errorf("point %d: %+v after restart, %+v before", i, after.Metrics[i], m)
		}
	}
	if n := p2.scalar(t, fmt.Sprintf("count_over_time(cluster_cpu_usage_cores[1m] @ %d)", killedAt.Unix())); n < 5 {
		t.Errorf("PromQL sees %v points before the kill", n)
	}
}
