package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubemon/kubemon/internal/model"
)

type burstResult struct {
	calls    int
	failures []topFailure
	err      error
}

// burst asks the metrics API (nodes, and kube-system's pods, in turn) from
// workers clients without pause until until, as kubeconfig's user.
func burst(kubeconfig string, workers int, until time.Time) burstResult {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return burstResult{err: err}
	}
	cfg.Timeout = 20 * time.Second
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return burstResult{err: err}
	}
	var (
		mu  sync.Mutex
		r   burstResult
		wg  sync.WaitGroup
		api = strings.TrimSuffix(cfg.Host, "/") + "/apis/metrics.k8s.io/v1beta1/"
	)
	for w := range workers {
		wg.Go(func() {
			for i := w; time.Now().Before(until); i++ {
				path := "nodes"
				if i%2 == 1 {
					path = "namespaces/kube-system/pods"
				}
				resp, err := hc.Get(api + path)
				what := ""
				if err != nil {
					what = fmt.Sprintf("GET %s: %v", path, err)
				} else {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"usage"`) {
						what = fmt.Sprintf("GET %s: %s: %.300s", path, resp.Status, body)
					}
				}
				mu.Lock()
				r.calls++
				if what != "" {
					r.failures = append(r.failures, topFailure{time.Now(), what})
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return r
}

// replicaPod is one ready pod (a kubemon replica) in the test cluster.
type replicaPod struct{ name, uid, ip string }

// readyPods lists the ready pods in kube-system that match selector,
// sorted by name.
func (c *cluster) readyPods(t *testing.T, selector string) []replicaPod {
	t.Helper()
	var list struct {
		Items []struct {
			Metadata struct {
				Name, UID         string
				DeletionTimestamp *string `json:"deletionTimestamp"`
			} `json:"metadata"`
			Status struct {
				PodIP      string `json:"podIP"`
				Conditions []struct{ Type, Status string }
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(c.kubectl(t, "-n", "kube-system", "get", "pods", "-l", selector, "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	var out []replicaPod
	for _, p := range list.Items {
		for _, cond := range p.Status.Conditions {
			if cond.Type == "Ready" && cond.Status == "True" && p.Metadata.DeletionTimestamp == nil && p.Status.PodIP != "" {
				out = append(out, replicaPod{p.Metadata.Name, p.Metadata.UID, p.Status.PodIP})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// kubemonPIDs are the PIDs of the kubemon processes in the pod with uid,
// found through their cgroups (the node's processes are visible from this
// host's PID namespace).
func kubemonPIDs(uid string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != "kubemon" {
			continue
		}
		// kubemon serve, not the front door beside it (kubemon frontdoor).
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if args := strings.Split(string(cmdline), "\x00"); err != nil || len(args) < 2 || args[1] != "serve" {
			continue
		}
		cg, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup"))
		if err != nil {
			continue
		}
		// cgroupfs names the pod's cgroup pod<uid> (dashes kept); the
		// systemd driver, pod<uid with underscores>.slice.
		if strings.Contains(string(cg), "pod"+uid) || strings.Contains(string(cg), "pod"+strings.ReplaceAll(uid, "-", "_")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestReplicaKill: kubemon with deploy/optional/ha (two replicas, each
// scraping every node) in the real test cluster. One replica's process is
// SIGKILLed and killed again at every restart for 2 minutes; all along,
// `kubectl top nodes` and `kubectl top pods` never fail (the other
// replica serves the metrics API, and the killed replica's front door
// hands it the connections that reach the pod before Kubernetes withdraws
// it from the Service). When it comes back it fills the hole
// from its peer by remote read, and afterwards both replicas return the
// same raw samples over the whole window, hole included. The rollout to
// two replicas itself starts both new pods with empty stores: each fills
// the history before it from a ready peer.
func TestReplicaKill(t *testing.T) {
	c := upCluster(t)
	overlay := filepath.Join(c.dir, "overlay")
	if _, err := os.Stat(overlay); err != nil {
		t.Skipf("SKIPPED: no Kustomize install to make highly available (%v): the cluster runs kubemon on the host", err)
	}
	ha := filepath.Join(c.dir, "overlay-ha")
	if err := os.MkdirAll(ha, 0o755); err != nil {
		t.Fatal(err)
	}
	component, _ := filepath.Rel(ha, filepath.Join(c.repo, "deploy/optional/ha"))
	// The harness's overlay gives kubemon a serving certificate that the
	// APIServices verify; the front door serves that port now, so it gets
	// the certificate too, as deploy/optional/ha tells a user to do.
	kz := fmt.Sprintf(`resources: [../overlay]
components: [%s]
patches:
  - target: {kind: Deployment, name: kubemon}
    patch: |
      - {op: test, path: /spec/template/spec/containers/1/name, value: frontdoor}
      - {op: add, path: /spec/template/spec/containers/1/args/-, value: "--tls-cert-file=/tls/tls.crt"}
      - {op: add, path: /spec/template/spec/containers/1/args/-, value: "--tls-private-key-file=/tls/tls.key"}
      - {op: add, path: /spec/template/spec/containers/1/volumeMounts/-, value: {name: tls, mountPath: /tls, readOnly: true}}
`, component)
	if err := os.WriteFile(filepath.Join(ha, "kustomization.yaml"), []byte(kz), 0o644); err != nil {
		t.Fatal(err)
	}
	token := c.file(t, "viewer.token")
	kubeconfig := filepath.Join(c.dir, "kubeconfig")
	// Some history before the rollout, which both new pods must get.
	before := time.Now()
	c.kubectl(t, "apply", "-k", ha)
	defer c.installKustomize(t, overlay) // back to the one replica the other tests use
	c.kubectl(t, "-n", "kube-system", "rollout", "status", "deployment/kubemon", "--timeout=300s")
	var pods []replicaPod
	waitFor(t, 2*time.Minute, "two ready replicas", func() bool { pods = c.readyPods(t, "app.kubernetes.io/name=kubemon"); return len(pods) == 2 })
	km := map[string]*proc{}
	for _, p := range pods {
		km[p.name] = &proc{base: "http://" + p.ip + ":8080", token: token}
	}
	const ok = `kubemon_replica_fills_total{result="ok"}`
	for _, p := range pods {
		waitFor(t, 3*time.Minute, p.name+" filled from its peer after the rollout", func() bool { return km[p.name].metric(t, ok) >= 1 })
	}
	t.Logf("replicas %s and %s filled their history from a peer after the rollout (%.0f s and %.0f s of hole)",
		pods[0].name, pods[1].name, km[pods[0].name].metric(t, "kubemon_replica_hole_seconds"), km[pods[1].name].metric(t, "kubemon_replica_hole_seconds"))

	// kubectl top, every half second, from now until the end.
	var (
		mu           sync.Mutex
		calls        int
		failures     []topFailure
		stop         = make(chan struct{})
		topDone      = make(chan struct{})
		victim, peer = pods[0], pods[1]
	)
	go func() {
		defer close(topDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Millisecond):
			}
			args := []string{"top", "nodes", "--no-headers"}
			if i%2 == 1 {
				args = []string{"top", "pods", "-n", "kube-system", "--no-headers"}
			}
			out, err := kubectlWith(kubeconfig, args...)
			mu.Lock()
			calls++
			if err != nil || strings.TrimSpace(out) == "" {
				failures = append(failures, topFailure{time.Now(), fmt.Sprintf("kubectl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(out))})
			}
			mu.Unlock()
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-topDone
	}()
	time.Sleep(30 * time.Second)

	// SIGKILL the victim's kubemon, and every kubemon the kubelet restarts
	// in its pod, for 2 minutes.
	pids := kubemonPIDs(victim.uid)
	if len(pids) != 1 {
		t.Fatalf("kubemon processes in pod %s (uid %s): %v, want 1", victim.name, victim.uid, pids)
	}
	// Besides kubectl top, six clients ask the metrics API through the
	// apiserver without pause from a second before the kill to three
	// seconds after it, so that requests are in flight in the kubemon
	// when it dies.
	burstDone := make(chan burstResult, 1)
	go func() { burstDone <- burst(kubeconfig, 6, time.Now().Add(4*time.Second)) }()
	time.Sleep(time.Second)
	killAt := time.Now()
	t.Logf("%s: SIGKILL %s's kubemon (PID %d)", killAt.Format("15:04:05.000"), victim.name, pids[0])
	kills := 0
	for time.Since(killAt) < 2*time.Minute {
		for _, pid := range kubemonPIDs(victim.uid) {
			if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
				kills++
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	killedFor := time.Since(killAt)
	b := <-burstDone
	if b.err != nil {
		t.Fatalf("metrics API burst: %v", b.err)
	}
	t.Logf("metrics API burst: %d requests from kill-1s to kill+3s, %d failed", b.calls, len(b.failures))
	if b.calls < 20 {
		t.Errorf("the burst made only %d requests, want at least 20", b.calls)
	}
	// What the victim's front door saw at the kill: "connection reset" or
	// "EOF" is a request in flight, "connection refused" one after.
	for _, l := range strings.Split(c.kubectl(t, "-n", "kube-system", "logs", victim.name, "-c", "frontdoor"), "\n") {
		if strings.Contains(l, "the local kubemon failed") {
			t.Logf("%s's front door: %s", victim.name, l)
			break
		}
	}
	mu.Lock()
	calls += b.calls
	failures = append(failures, b.failures...)
	mu.Unlock()
	t.Logf("SIGKILLed %s's kubemon %d times over %s (the kubelet's restarts included)", victim.name, kills, killedFor.Round(time.Second))

	// It comes back (the kubelet's crash-loop back-off decides when),
	// fills the hole from its peer, and serves again.
	var back time.Time
	waitFor(t, 6*time.Minute, victim.name+" ready again and filled from its peer", func() bool {
		for _, p := range c.readyPods(t, "app.kubernetes.io/name=kubemon") {
			if p.name == victim.name && km[victim.name].metric(t, ok) >= 1 {
				back = time.Now()
				return true
			}
		}
		return false
	})
	hole := km[victim.name].metric(t, "kubemon_replica_hole_seconds")
	// The samples the victim holds from the kill to its last start are its
	// peer's; from then on, its own.
	restarted := time.Unix(int64(km[victim.name].metric(t, "process_start_time_seconds")), 0)
	if !restarted.After(killAt) {
		t.Fatalf("%s's kubemon started at %s, before the kill at %s", victim.name, restarted, killAt)
	}
	t.Logf("%s back %s after the first kill; it filled a hole of %.0f s", victim.name, back.Sub(killAt).Round(time.Second), hole)
	if !(hole >= killedFor.Seconds()) {
		t.Errorf("hole %.0f s, want at least the %s it was killed for", hole, killedFor.Round(time.Second))
	}
	time.Sleep(10 * time.Second) // kubectl top past the return as well
	close(stop)
	<-topDone
	mu.Lock()
	t.Logf("kubectl top: %d calls from 30 s before the kill to 10 s after the return, %d failed", calls, len(failures))
	if want := int(back.Sub(killAt).Seconds()); calls < want {
		t.Errorf("only %d kubectl top calls, want at least %d (one a second)", calls, want)
	}
	// Requests the apiserver sends to the killed replica's pod, in the
	// second or two before Kubernetes withdraws it from the Service (the
	// kubelet notices the dead container, the pod turns unready, its
	// EndpointSlice drops it), and those in flight at the SIGKILL, are
	// answered by the peer through the pod's front door. Not one may fail.
	for i, f := range failures {
		if i == 20 {
			t.Errorf("... and %d more failures", len(failures)-i)
			break
		}
		t.Errorf("the metrics API failed at kill%+.1fs: %s", f.at.Sub(killAt).Seconds(), f.what)
	}
	mu.Unlock()

	// The rollout kept the history: both new pods hold the node's samples
	// from before it, copied from the pod they replaced.
	end := time.Now().Add(-15 * time.Second).Truncate(time.Second)
	at := strconv.FormatInt(end.Unix(), 10)
	for _, p := range pods {
		q := fmt.Sprintf("%s[%ds]", name(model.LevelNode, model.CPUUsageRate), int(end.Sub(before).Seconds())+60)
		old := 0
		for _, s := range km[p.name].rawSamples(t, q, at) {
			for _, ts := range s.times {
				if ts < float64(before.Unix()) {
					old++
				}
			}
		}
		t.Logf("%s holds %d samples of the node's CPU from the minute before the rollout", p.name, old)
		if old < 3 {
			t.Errorf("%s: %d samples from before the rollout, want the history it replaced (at least 3 in that minute)", p.name, old)
		}
	}

	// Both replicas, the same raw samples over the whole window: from
	// shortly before the kill (the replicas' own start-up, a minute
	// earlier, is behind them) to a few intervals ago.
	window := end.Sub(killAt.Add(-25 * time.Second)).Round(time.Second)
	const interval = 5 * time.Second // the test cluster's
	names := []string{
		name(model.LevelNode, model.CPUUsageRate), name(model.LevelNode, model.MemoryWorkingSet), name(model.LevelNode, model.KubeletUp),
		name(model.LevelPod, model.CPUUsageRate), name(model.LevelContainer, model.MemoryWorkingSet),
		name(model.LevelContainer, model.CPUUsage), name(model.LevelNamespace, model.CPUUsageRate), name(model.LevelCluster, model.CPUUsageRate),
	}
	for _, n := range names {
		q := fmt.Sprintf("%s[%ds]", n, int(window.Seconds()))
		a, b := indexRaw(km[victim.name].rawSamples(t, q, at)), indexRaw(km[peer.name].rawSamples(t, q, at))
		if len(b) == 0 {
			t.Errorf("%s: the peer holds no series", n)
			continue
		}
		// Every sample at the same time on both; inside the hole the very
		// samples (copied from the peer); outside it each replica's own
		// read of the same kubelet at the same slot, whose values agree
		// but for what the kubelet reads live (CRI stats, stamped to the
		// second) between two requests milliseconds apart, or a few hundred
		// on a loaded machine: a pod busy on half a core then moves its CPU
		// counter by tens of milliseconds between the two reads, which over
		// a 5 s interval is up to about 0.02 cores in a rate (measured once
		// in CI: 0.188 against 0.177 for a namespace). So 5 %, plus 0.025
		// cores for CPU rates.
		abs := 1e-3
		if strings.HasSuffix(n, "_cores") {
			abs = 0.025
		}
		total, inHole, missing, extra, holeDiffer, outDiffer := 0, 0, 0, 0, 0, 0
		var examples []string
		note := func(format string, a ...any) {
			if len(examples) < 4 {
				examples = append(examples, fmt.Sprintf(format, a...))
			}
		}
		// The hole: from the kill to the end of the victim's fill, three
		// intervals after its last start (its own samples up to there were
		// left to the peer's).
		hole0, hole1 := float64(killAt.UnixMilli())/1000, float64(restarted.Add(3*interval).Unix())
		for key, bs := range b {
			as := a[key]
			ai := map[float64]float64{}
			for i, ts := range as.times {
				ai[ts] = as.values[i]
			}
			bi := map[float64]bool{}
			for i, ts := range bs.times {
				bi[ts] = true
				total++
				v, found := ai[ts]
				in := ts > hole0 && ts <= hole1
				if in {
					inHole++
				}
				switch w := bs.values[i]; {
				case !found:
					missing++
					note("%s at kill%+.1fs: missing on %s", key, ts-hole0, victim.name)
				case in && v != w:
					holeDiffer++
					note("%s at kill%+.1fs (in the hole): %v, peer %v", key, ts-hole0, v, w)
				case !in && !(math.Abs(v-w) <= 0.05*math.Abs(w)+abs):
					outDiffer++
					note("%s at kill%+.1fs: %v, peer %v", key, ts-hole0, v, w)
				}
			}
			for _, ts := range as.times {
				if !bi[ts] {
					extra++
					note("%s at kill%+.1fs: only on %s", key, ts-hole0, victim.name)
				}
			}
		}
		t.Logf("%s: %d series, %d samples (%d inside the hole); on %s: %d missing, %d extra, %d differ in the hole, %d beyond the tolerance outside it",
			n, len(b), total, inHole, victim.name, missing, extra, holeDiffer, outDiffer)
		if total < 10 || inHole < 5 {
			t.Errorf("%s: %d samples compared, %d inside the hole; want at least 10 and 5", n, total, inHole)
		}
		if missing+extra+holeDiffer+outDiffer > 0 {
			t.Errorf("%s: the replicas differ: %s", n, strings.Join(examples, "; "))
		}
	}
}

// topFailure is a failed kubectl top call.
type topFailure struct {
	at   time.Time
	what string
}

// indexRaw keys raw series by their labels.
func indexRaw(rs []rawSeries) map[string]rawSeries {
	out := map[string]rawSeries{}
	for _, s := range rs {
		keys := make([]string, 0, len(s.Metric))
		for k, v := range s.Metric {
			keys = append(keys, k+"="+v)
		}
		sort.Strings(keys)
		out[strings.Join(keys, ",")] = s
	}
	return out
}
