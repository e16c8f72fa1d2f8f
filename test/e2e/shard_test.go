package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/testutil/thanos"
)

// memberLabel is the label each member's remote write adds (its name),
// which Thanos Query deduplicates on like the receivers' replica label.
const memberLabel = "kubemon_replica"

// simCluster is `peers cluster` (hack/bench/peers): simulated kubelets
// behind a real etcd and kube-apiserver on loopback.
type simCluster struct {
	cmd        *exec.Cmd
	kubeconfig string
}

// startSimCluster builds and runs `peers cluster` with nodes × pods and
// waits until the apiserver holds them.
func startSimCluster(t *testing.T, repo string, nodes, pods int) *simCluster {
	t.Helper()
	out, err := exec.Command(filepath.Join(repo, "hack/cluster/build.sh")).Output()
	if err != nil {
		t.Fatalf("hack/cluster/build.sh: %v", err)
	}
	k8sDir := strings.TrimSpace(string(out))
	etcds, _ := filepath.Glob(filepath.Join(filepath.Dir(k8sDir), "etcd-*", "etcd"))
	if len(etcds) == 0 {
		t.Fatalf("no etcd beside %s (hack/cluster/build.sh builds it)", k8sDir)
	}
	bin := t.TempDir()
	for name, src := range map[string]string{"peers": "./hack/bench/peers", "pki": "./hack/cluster/pki"} {
		b := exec.Command("go", "build", "-o", filepath.Join(bin, name), src)
		b.Dir = repo
		if out, err := b.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", src, err, out)
		}
	}
	work := t.TempDir()
	c := &simCluster{cmd: exec.Command(filepath.Join(bin, "peers"), "cluster", "-nodes", fmt.Sprint(nodes), "-pods", fmt.Sprint(pods),
		"-work", work, "-pki", filepath.Join(bin, "pki"), "-k8s-dir", k8sDir, "-etcd", etcds[len(etcds)-1])}
	logf, err := os.Create(filepath.Join(work, "peers.log"))
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = c.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = c.cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(work, "peers.log"))
			t.Logf("peers cluster log:\n%s", b)
		}
	})
	waitFor(t, 3*time.Minute, "the simulated cluster in the apiserver", func() bool {
		b, err := os.ReadFile(filepath.Join(work, "cluster.json"))
		if err != nil {
			return false
		}
		var m map[string]string
		if json.Unmarshal(b, &m) != nil {
			return false
		}
		c.kubeconfig = m["kubeconfig"]
		return c.kubeconfig != ""
	})
	return c
}

var servingRE = regexp.MustCompile(`msg="kubemon serving" addr=(http://\S+)`)

// startServe runs `kubemon serve` with args and waits until it logs its address.
func startServe(t *testing.T, args ...string) *proc {
	t.Helper()
	return launch(t, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...), servingRE, false, 60*time.Second)
}

// scraped is the nodes p scrapes, from its /api/v1/targets.
func scraped(t *testing.T, p *proc) []string {
	t.Helper()
	var r struct {
		Data struct {
			ActiveTargets []struct {
				Labels map[string]string `json:"labels"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	p.getJSON(t, "/api/v1/targets", &r)
	var out []string
	for _, tg := range r.Data.ActiveTargets {
		out = append(out, tg.Labels[model.LabelNode])
	}
	return out
}

// scrapers counts, for each node, the members that scrape it.
func scrapers(t *testing.T, ms []*proc) map[string]int {
	t.Helper()
	c := map[string]int{}
	for _, m := range ms {
		for _, n := range scraped(t, m) {
			c[n]++
		}
	}
	return c
}

// allTwice reports whether each of nodes nodes has exactly two scrapers.
func allTwice(c map[string]int, nodes int) bool {
	if len(c) != nodes {
		return false
	}
	for _, k := range c {
		if k != 2 {
			return false
		}
	}
	return true
}

// TestShardRing: three kubemon members share a simulated cluster of 300
// nodes behind a real apiserver (their Leases in it) and remote-write to a
// real Thanos (three receivers, replication factor 3); every node is
// scraped by exactly two members. One member is SIGKILLed: within two
// intervals every node has two scrapers again. A receiver is SIGKILLed
// for 30 s. A fourth member takes about a quarter of the scrapes. Through
// Thanos Query every node's kubelet_up has no gap, and a member's PromQL
// API (--query-url) answers for all 300 nodes.
func TestShardRing(t *testing.T) {
	t.Parallel()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	const (
		nodes    = 300
		interval = 10 * time.Second
	)
	th := thanos.Start(t, thanos.Options{Binary: buildPeer(t, repo, "thanos"), Receivers: 3, ReplicationFactor: 3,
		ExtraReplicaLabels: []string{memberLabel}, DedupFunc: "chain"})
	cl := startSimCluster(t, repo, nodes, 2)
	began := time.Now()
	member := func(i int) *proc {
		return startServe(t, "--kubeconfig", cl.kubeconfig, "--data-dir", filepath.Join(t.TempDir(), "data"),
			"--interval", interval.String(), "--events.enabled=false",
			"--shard", "--shard.identity", fmt.Sprintf("m%d", i), "--shard.namespace", "default",
			"--sink", fmt.Sprintf("remotewrite:%s?label=%s:m%d", th.Receivers[i%3].WriteURL(), memberLabel, i),
			"--query-url", th.Querier.URL())
	}
	ms := []*proc{member(0), member(1), member(2)}
	waitFor(t, 3*interval, "every node scraped by exactly two of three members", func() bool { return allTwice(scrapers(t, ms), nodes) })
	for i, m := range ms {
		if got := m.metric(t, "kubemon_shard_members"); got != 3 {
			t.Errorf("m%d: kubemon_shard_members = %v, want 3", i, got)
		}
		if n := len(scraped(t, m)); !(n >= 150 && n <= 250) {
			t.Errorf("m%d scrapes %d nodes, want about 200", i, n)
		}
	}

	// A member dies: the other two take its nodes within two intervals.
	t.Logf("SIGKILL m2 (pid %d)", ms[2].cmd.Process.Pid)
	ms[2].kill()
	killed := time.Now()
	survivors := ms[:2]
	waitFor(t, 4*interval, "every node scraped by both survivors", func() bool { return allTwice(scrapers(t, survivors), nodes) })
	took := time.Since(killed)
	t.Logf("every node had two scrapers again %s after the kill", took.Round(100*time.Millisecond))
	if !(took <= 2*interval) {
		t.Errorf("nodes reassigned %s after the kill, want within two intervals (%s)", took.Round(100*time.Millisecond), 2*interval)
	}

	// A receiver dies for 30 s while the members write.
	th.Receivers[1].Kill()
	rxDown := time.Now()
	time.Sleep(30 * time.Second)
	th.Receivers[1].Restart()
	rxUp := time.Now()

	// m2 comes back, then a fourth member joins: it takes about a quarter
	// of the scrapes and no other scrape moves.
	ms[2] = member(2)
	m2Back := time.Now()
	waitFor(t, 3*interval, "three members again", func() bool { return allTwice(scrapers(t, ms), nodes) })
	before := map[string][]string{}
	for i, m := range ms {
		before[fmt.Sprintf("m%d", i)] = scraped(t, m)
	}
	ms = append(ms, member(3))
	m3Joined := time.Now()
	waitFor(t, 3*interval, "every node scraped by exactly two of four members", func() bool {
		return len(scraped(t, ms[3])) > 0 && allTwice(scrapers(t, ms), nodes)
	})
	moved, total := 0, 0
	for i, m := range ms {
		now := scraped(t, m)
		total += len(now)
		for _, n := range now {
			if !slices.Contains(before[fmt.Sprintf("m%d", i)], n) {
				moved++
				if i != 3 {
					t.Errorf("m%d took node %s from another member when m3 joined", i, n)
				}
			}
		}
	}
	t.Logf("the fourth member took %d of %d scrapes (%.0f %%)", moved, total, 100*float64(moved)/float64(total))
	if frac := float64(moved) / float64(total); !(frac >= 0.15 && frac <= 0.35) {
		t.Errorf("the fourth member took %.0f %% of the scrapes, want about 25 %%", 100*frac)
	}

	// Through Thanos: every node's kubelet_up, deduplicated, every interval
	// from the ring's start until data delivered by all members (the sinks
	// read about a minute behind the present), across the member's and the
	// receiver's deaths.
	// The window ends two intervals after the fourth member settled in, so
	// that its last interval holds the four-member ring only.
	time.Sleep(2 * interval)
	from := began.Add(2 * interval).UnixMilli()
	to := time.Now().UnixMilli()
	waitFor(t, 3*time.Minute, "the members' sinks delivering past the window", func() bool {
		for _, m := range ms {
			if positionMs(t, m, "remotewrite") <= to {
				return false
			}
		}
		return true
	})
	up := sel(model.LevelNode, model.KubeletUp)
	got := storeSamples(t, ms[0], up, from, to) // m0's PromQL API reads Thanos Query
	if len(got) != nodes {
		t.Fatalf("through Thanos: %d nodes have %s in %s … %s, want %d", len(got), up, stamp(from), stamp(to), nodes)
	}
	worst, worstNode, worstGaps := time.Duration(0), "", []string(nil)
	for k, ss := range got {
		ts := make([]int64, len(ss))
		for i, s := range ss {
			ts[i] = s.T
		}
		if gaps, longest := cadence(ts, from, to, interval*3/2+time.Second); longest > worst {
			worst, worstNode, worstGaps = longest, k, gaps
		}
	}
	t.Logf("through Thanos: %d nodes, longest gap %s (%s)", len(got), worst, worstNode)
	if !(worst <= interval*3/2+time.Second) {
		t.Errorf("through Thanos: %s has a gap of %s, want none beyond an interval", worstNode, worst)
		t.Logf("events: began %s, m2 killed %s, receiver-1 down %s … %s, m2 back %s, m3 joined %s", stamp(began.UnixMilli()), stamp(killed.UnixMilli()),
			stamp(rxDown.UnixMilli()), stamp(rxUp.UnixMilli()), stamp(m2Back.UnixMilli()), stamp(m3Joined.UnixMilli()))
		if worstNode != "" {
			t.Logf("%s: gaps %v", worstNode, worstGaps)
			node := labelOf(worstNode, model.LabelNode)
			q := fmt.Sprintf("%s{%s=%q}[%dms]", up, model.LabelNode, node, to-from)
			body, err := getURL(th.Querier.URL() + "/api/v1/query?dedup=false&time=" + fmt.Sprintf("%.3f", float64(to)/1000) + "&query=" + url.QueryEscape(q))
			var m struct {
				Data struct {
					Result []struct {
						Metric map[string]string `json:"metric"`
						Values [][2]any          `json:"values"`
					} `json:"result"`
				} `json:"data"`
			}
			if err == nil && json.Unmarshal(body, &m) == nil {
				for _, s := range m.Data.Result {
					var ts []int64
					for _, v := range s.Values {
						f, _ := v[0].(float64)
						ts = append(ts, int64(f*1000))
					}
					gaps, _ := cadence(ts, from, to, interval*3/2+time.Second)
					t.Logf("  undeduplicated %v: %d samples, gaps %v", s.Metric, len(ts), gaps)
				}
			}
		}
	}
	// Scraped by exactly two members each, as Thanos holds it (without
	// deduplication): two member labels per node.
	q := fmt.Sprintf("count by (%s) (count by (%s, %s) (count_over_time(%s[%ds] @ %d)))", model.LabelNode, model.LabelNode, memberLabel, up, int(interval.Seconds()), to/1000)
	var r struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	body, err := getURL(th.Querier.URL() + "/api/v1/query?dedup=false&query=" + url.QueryEscape(q))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Data.Result) != nodes {
		t.Fatalf("Thanos without deduplication: %d nodes, want %d", len(r.Data.Result), nodes)
	}
	for _, s := range r.Data.Result {
		if s.Value[1] != "2" {
			t.Errorf("node %s written by %v members at %s, want 2", s.Metric[model.LabelNode], s.Value[1], stamp(to))
			break
		}
	}
}

// getURL returns the body of a 200 answer to GET u.
func getURL(u string) ([]byte, error) {
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, b)
	}
	return b, nil
}
