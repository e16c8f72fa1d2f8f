package e2e

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/testutil/thanos"
)

// TestShardInCluster: the sharded install as a user makes it, in the real
// test cluster: deploy/optional/shards applied over the harness's overlay,
// its ConfigMap pointed at a real Thanos (a receiver and a querier on the
// cluster's host address, which the pods reach). Three members each hold
// a Lease in kube-system (the component's Role); the node is scraped by
// exactly two of them; every member answers for the whole cluster through
// Thanos Query (--query-url): kubectl top nodes, the node's kubelet_up
// deduplicated to one series, and the cluster's CPU roll-up, which the
// generated recording rules evaluate over Thanos, holds the node's values
// (one node: the sum is the node). One of the node's scrapers is SIGKILLed,
// and killed again at every restart: within two intervals the other two
// members scrape it.
func TestShardInCluster(t *testing.T) {
	c := upCluster(t)
	overlay := filepath.Join(c.dir, "overlay")
	if _, err := os.Stat(overlay); err != nil {
		t.Skipf("SKIPPED: no Kustomize install to shard (%v): the cluster runs kubemon on the host", err)
	}
	const interval = 5 * time.Second // the test cluster's
	th := thanos.Start(t, thanos.Options{Binary: buildPeer(t, c.repo, "thanos"), Receivers: 1, Host: c.file(t, "host.ip"),
		ExtraReplicaLabels: []string{memberLabel}, DedupFunc: "chain"})
	dir := filepath.Join(c.dir, "overlay-shards")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	component, _ := filepath.Rel(dir, filepath.Join(c.repo, "deploy/optional/shards"))
	kz := fmt.Sprintf(`resources: [../overlay]
components: [%s]
patches:
  - target: {kind: ConfigMap, name: kubemon-shards}
    patch: |-
      - {op: replace, path: /data/queryURL, value: %q}
      - {op: replace, path: /data/remoteWriteURL, value: %q}
`, component, th.Querier.URL(), th.Receivers[0].WriteURL())
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(kz), 0o644); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	c.kubectl(t, "apply", "-k", dir)
	defer func() {
		c.installKustomize(t, overlay) // back to the one replica the other tests use
		c.kubectl(t, "-n", "kube-system", "delete", "configmap/kubemon-shards", "role/kubemon-shards", "rolebinding/kubemon-shards", "--ignore-not-found")
	}()
	c.kubectl(t, "-n", "kube-system", "rollout", "status", "deployment/kubemon", "--timeout=300s")
	token := c.file(t, "viewer.token")
	var pods []replicaPod
	waitFor(t, 2*time.Minute, "three ready members", func() bool { pods = c.readyPods(t, "app.kubernetes.io/name=kubemon"); return len(pods) == 3 })
	ms := map[string]*proc{}
	for _, p := range pods {
		ms[p.name] = &proc{base: "http://" + p.ip + ":8080", token: token}
	}

	// A Lease per member, held by its pod.
	var holders []string
	waitFor(t, 3*interval, "a Lease per member", func() bool {
		out := c.kubectl(t, "-n", "kube-system", "get", "leases", "-l", "kubemon.io/ring=kubemon", "-o", "jsonpath={.items[*].spec.holderIdentity}")
		holders = strings.Fields(out)
		for _, p := range pods {
			if !slices.Contains(holders, p.name) {
				return false
			}
		}
		return true
	})
	t.Logf("Leases held by %v", holders)

	// The node, scraped by exactly two members.
	const node = "kmnode1" // the test cluster's one node
	scrapersOf := func(among []replicaPod) []string {
		var out []string
		for _, p := range among {
			if slices.Contains(scraped(t, ms[p.name]), node) {
				out = append(out, p.name)
			}
		}
		return out
	}
	var owners []string
	waitFor(t, 3*interval, "the node scraped by exactly two members", func() bool { owners = scrapersOf(pods); return len(owners) == 2 })
	for _, p := range pods {
		if got := ms[p.name].metric(t, "kubemon_shard_members"); got != 3 {
			t.Errorf("%s: kubemon_shard_members = %v, want 3", p.name, got)
		}
	}
	t.Logf("%s is scraped by %v", node, owners)

	// Every member answers for the whole cluster through Thanos: one
	// kubelet_up series (the two scrapers' deduplicated), kubectl top.
	up := sel(model.LevelNode, model.KubeletUp)
	for _, p := range pods {
		waitFor(t, 3*time.Minute, p.name+" answering for the node through Thanos", func() bool {
			return len(ms[p.name].query(t, up)) == 1
		})
	}
	// The sinks write a little behind the present, so the node's CPU rate
	// reaches Thanos a while after kubelet_up did.
	var top string
	var topErr error
	waitFor(t, 3*time.Minute, "kubectl top nodes through the sharded members", func() bool {
		top, topErr = kubectlWith(filepath.Join(c.dir, "kubeconfig"), "top", "nodes", "--no-headers")
		return topErr == nil
	})
	if !strings.HasPrefix(strings.TrimSpace(top), node+" ") {
		t.Errorf("kubectl top nodes through the sharded members: %q, want the node %s", top, node)
	}

	// The cluster's CPU roll-up, recorded over Thanos by the generated
	// rules: each of its samples is one of the node's values (the sum over
	// one node), read at most a few intervals late.
	nodeCPU, clusterCPU := name(model.LevelNode, model.CPUUsageRate), name(model.LevelCluster, model.CPUUsageRate)
	var rolled []rawSeries
	waitFor(t, 3*time.Minute, "five samples of the cluster's CPU roll-up through Thanos", func() bool {
		n := ms[pods[0].name].query(t, fmt.Sprintf("count_over_time(%s[5m])", clusterCPU))
		return len(n) == 1 && n[0].v(t) >= 5
	})
	at := strconv.FormatInt(time.Now().Unix(), 10)
	rolled = ms[pods[0].name].rawSamples(t, fmt.Sprintf("%s[5m]", clusterCPU), at)
	nodes := ms[pods[0].name].rawSamples(t, fmt.Sprintf("%s[6m]", nodeCPU), at)
	if len(rolled) != 1 || len(nodes) != 1 {
		t.Fatalf("through Thanos: %d series of %s and %d of %s, want 1 and 1", len(rolled), clusterCPU, len(nodes), nodeCPU)
	}
	matched, worstLag := 0, 0.0
	for i, ts := range rolled[0].times {
		if ts < float64(began.Unix()) {
			continue
		}
		v := rolled[0].values[i]
		// The newest node sample at or before the evaluation holding v.
		lag := math.NaN()
		for j := len(nodes[0].times) - 1; j >= 0; j-- {
			if nt := nodes[0].times[j]; nt <= ts && math.Abs(nodes[0].values[j]-v) <= 1e-9*math.Max(1, math.Abs(v)) {
				lag = ts - nt
				break
			}
		}
		if !(lag >= 0 && lag <= 120) {
			var near []string
			for j, nt := range nodes[0].times {
				if nt >= ts-120 && nt <= ts+30 {
					near = append(near, fmt.Sprintf("%s=%v", time.Unix(int64(nt), 0).Format("15:04:05"), nodes[0].values[j]))
				}
			}
			t.Errorf("%s at %s = %v: no sample of %s within 2 minutes before it holds that value; its samples around: %v",
				clusterCPU, time.Unix(int64(ts), 0).Format("15:04:05"), v, nodeCPU, near)
			continue
		}
		matched++
		worstLag = max(worstLag, lag)
	}
	if t.Failed() { // each member's copy, to tell which disagreed
		for _, q := range []string{nodeCPU + "[4m]", clusterCPU + "[4m]", "node_cpu_usage_seconds_total[4m]"} {
			resp, err := http.Get(th.Querier.URL() + "/api/v1/query?dedup=false&time=" + at + "&query=" + url.QueryEscape(q))
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				t.Logf("Thanos, not deduplicated, %s: %s", q, b)
			}
		}
	}
	t.Logf("%s: %d samples recorded over Thanos, each a value of %s, at most %.0f s behind it", clusterCPU, matched, nodeCPU, worstLag)
	if matched < 5 {
		t.Errorf("%d samples of %s matched, want at least 5", matched, clusterCPU)
	}

	// One of the node's scrapers dies, and dies again at every restart:
	// its Lease (one interval) runs out and the other two scrape the node.
	var victim replicaPod
	var survivors []replicaPod
	for _, p := range pods {
		if p.name == owners[0] {
			victim = p
		} else {
			survivors = append(survivors, p)
		}
	}
	stop := make(chan struct{})
	killed := make(chan int)
	go func() {
		kills := 0
		defer func() { killed <- kills }()
		for {
			for _, pid := range kubemonPIDs(victim.uid) {
				if syscall.Kill(pid, syscall.SIGKILL) == nil {
					kills++
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	killAt := time.Now()
	waitFor(t, 6*interval, "the node scraped by both survivors", func() bool { return len(scrapersOf(survivors)) == 2 })
	took := time.Since(killAt)
	close(stop)
	t.Logf("SIGKILLed %s (%d kills); %s scraped by %s and %s %s after the first kill", victim.name, <-killed, node, survivors[0].name, survivors[1].name, took.Round(100*time.Millisecond))
	// Two intervals, and the 200 ms poll of waitFor.
	if !(took <= 2*interval+200*time.Millisecond) {
		t.Errorf("the node had two scrapers again %s after the kill, want within two intervals (%s)", took.Round(100*time.Millisecond), 2*interval)
	}
}
