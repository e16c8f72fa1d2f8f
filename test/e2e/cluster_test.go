package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/model"
)

// cluster is a running hack/cluster harness with kubemon.
type cluster struct {
	dir  string
	repo string
}

var (
	shared     *cluster
	reused     *cluster
	sharedErr  error
	sharedOnce sync.Once
)

// upCluster returns the harness (a real apiserver and a real node) with
// kubemon, started once for all tests and stopped by TestMain, or skips
// when this machine cannot run it (not root). KUBEMON_E2E_CLUSTER_DIR
// names one already running instead.
func upCluster(t *testing.T) *cluster {
	t.Helper()
	if os.Getenv("KUBEMON_E2E_CLUSTER") == "0" {
		t.Skip("KUBEMON_E2E_CLUSTER=0")
	}
	if os.Geteuid() != 0 {
		t.Skip("the cluster harness needs root (namespaces, mounts, cgroups)")
	}
	sharedOnce.Do(func() {
		repo, err := filepath.Abs("../..")
		if err != nil {
			sharedErr = err
			return
		}
		// A cluster already up (KUBEMON=1 hack/cluster/up.sh DIR) is used
		// as it is and left running: for working on one test.
		if dir := os.Getenv("KUBEMON_E2E_CLUSTER_DIR"); dir != "" {
			reused = &cluster{dir: dir, repo: repo}
			return
		}
		// One cluster at a time on this machine (they share node kmnode1
		// and 10.77.0.x): wait for another test run's, held until this
		// process ends. up.sh refuses to take over a running one.
		if sharedErr = lockClusters(); sharedErr != nil {
			return
		}
		dir, err := os.MkdirTemp("", "kubemon-cluster-")
		if err != nil {
			sharedErr = err
			return
		}
		shared = &cluster{dir: dir, repo: repo}
		up := exec.Command(filepath.Join(repo, "hack/cluster/up.sh"), dir)
		up.Env = append(os.Environ(), "KUBEMON=1", "KUBEMON_INTERVAL=5s")
		if out, err := up.CombinedOutput(); err != nil {
			var logs strings.Builder
			for _, l := range []string{"node", "kubelet", "containerd"} {
				b, _ := os.ReadFile(filepath.Join(dir, "logs", l+".log"))
				if len(b) > 3000 {
					b = b[len(b)-3000:]
				}
				fmt.Fprintf(&logs, "--- %s.log (tail)\n%s\n", l, b)
			}
			sharedErr = fmt.Errorf("up.sh: %w\n%s\n%s", err, out, logs.String())
		}
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	if reused != nil {
		return reused
	}
	t.Cleanup(func() {
		if t.Failed() {
			shared.dumpLogs(t)
		}
	})
	return shared
}

// loadgenDeployment is a Deployment of one replica of the harness's
// loadgen image (host network, 1 s grace) in namespace ns, labelled
// app=name, whose one container runs with args (a YAML list) and
// resources (a YAML map).
func loadgenDeployment(ns, name, container, args, resources string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: %[2]s}}
  template:
    metadata: {labels: {app: %[2]s}}
    spec:
      hostNetwork: true
      terminationGracePeriodSeconds: 1
      containers:
      - name: %[3]s
        image: localhost/loadgen:kubemon
        imagePullPolicy: Never
        args: %[4]s
        resources: %[5]s
`, ns, name, container, args, resources)
}

// clusterLock is held from the first upCluster to the end of the process.
var clusterLock *os.File

// lockClusters takes the machine-wide e2e cluster lock, waiting (and
// saying so) while another test process holds it.
func lockClusters() error {
	f, err := os.OpenFile("/run/lock/kubemon-e2e-cluster.lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: another test run's cluster is up; waiting for it to stop")
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return fmt.Errorf("e2e cluster lock: %w", err)
		}
	}
	clusterLock = f
	return nil
}

func (c *cluster) dumpLogs(t *testing.T) {
	if out, err := exec.Command("kubectl", "--kubeconfig", filepath.Join(c.dir, "kubeconfig"), "-n", "kube-system",
		"logs", "deployment/kubemon", "--tail=40").CombinedOutput(); err == nil || len(out) > 0 {
		t.Logf("--- kubemon pod log (tail)\n%s", out)
	}
	for _, l := range []string{"kubemon", "kubelet", "kube-proxy", "kube-apiserver"} {
		b, _ := os.ReadFile(filepath.Join(c.dir, "logs", l+".log"))
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		t.Logf("--- %s.log (tail)\n%s", l, b)
	}
}

// downCluster stops the shared harness, if one was started.
func downCluster() {
	if shared == nil {
		return
	}
	down := exec.Command(filepath.Join(shared.repo, "hack/cluster/down.sh"), shared.dir)
	if b, err := down.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "down.sh: %v\n%s", err, b)
		return
	}
	os.RemoveAll(shared.dir)
}

func (c *cluster) kubectl(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("kubectl", append([]string{"--kubeconfig", filepath.Join(c.dir, "kubeconfig")}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (c *cluster) apply(t *testing.T, manifest string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "m.yaml")
	if err := os.WriteFile(f, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	c.kubectl(t, "apply", "-f", f)
}

// kubemon is the harness's kubemon (the pod installed from deploy/) as a
// proc for the API helpers, reading with the kubemon-viewer token.
func (c *cluster) kubemon(t *testing.T) *proc {
	t.Helper()
	return &proc{base: "http://" + c.file(t, "kubemon.addr"), token: c.file(t, "viewer.token")}
}

// file is the trimmed content of the harness's file name.
func (c *cluster) file(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// kubemonLogs is what kubemon's pod logged (JSON lines), decoded.
func (c *cluster) kubemonLogs(t *testing.T) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(c.kubectl(t, "-n", "kube-system", "logs", "deployment/kubemon", "--tail=-1"), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			lines = append(lines, m)
		}
	}
	return lines
}

// logged reports whether some line has every field of want (values
// compared as fmt.Sprint).
func logged(lines []map[string]any, want map[string]any) bool {
next:
	for _, l := range lines {
		for k, v := range want {
			if fmt.Sprint(l[k]) != fmt.Sprint(v) {
				continue next
			}
		}
		return true
	}
	return false
}

const loadgen = `apiVersion: apps/v1
kind: Deployment
metadata: {name: loadgen, namespace: default, labels: {app: loadgen}}
spec:
  replicas: 1
  selector: {matchLabels: {app: loadgen}}
  template:
    metadata: {labels: {app: loadgen, tier: test}}
    spec:
      hostNetwork: true
      terminationGracePeriodSeconds: 1
      containers:
      - name: burn
        image: localhost/loadgen:kubemon
        imagePullPolicy: Never
        args: ["-millicores", "200", "-mebibytes", "64"]
        resources: {requests: {cpu: 100m, memory: 32Mi}, limits: {memory: 256Mi}}
`

// TestRealCluster: kubemon against a real apiserver and a real kubelet with
// webhook authentication and authorization.
func TestRealCluster(t *testing.T) {
	c := upCluster(t)
	km := c.kubemon(t)
	c.apply(t, loadgen)
	c.kubectl(t, "rollout", "status", "deployment/loadgen", "--timeout=120s")

	burn := match(model.LabelNamespace, "default", model.LabelContainer, "burn")
	cpuRate := name(model.LevelContainer, model.CPUUsageRate)
	waitFor(t, 90*time.Second, "the load generator's CPU rate in kubemon", func() bool {
		r := km.query(t, cpuRate+burn)
		return len(r) == 1
	})
	// The kubelet refreshes its stats every 10-15 s, and a rate is stored
	// only when they change; skip the start-up (64 MiB being touched) and
	// average the rates of the next 30 s: at least two refreshes.
	time.Sleep(35 * time.Second)
	cpu := km.query(t, "avg_over_time("+cpuRate+burn+"[30s])")
	if len(cpu) != 1 {
		t.Fatalf("cpu: %v", cpu)
	}
	s := cpu[0]
	if v := s.v(t); math.Abs(v-0.2) > 0.3*0.2 {
		t.Errorf("CPU %v cores, want 0.2 ± 30%%", v)
	}
	if s.Metric[model.LabelNode] != "kmnode1" || !strings.HasPrefix(s.Metric[model.LabelPod], "loadgen-") {
		t.Errorf("labels %v", s.Metric)
	}
	ws := km.scalar(t, name(model.LevelContainer, model.MemoryWorkingSet)+burn)
	if want := float64(64 << 20); math.Abs(ws-want) > 0.1*want {
		t.Errorf("working set %v MiB, want 64 MiB ± 10%%", ws/(1<<20))
	}
	info := km.query(t, sel(model.LevelPod, model.Info, model.LabelNamespace, "default", model.LabelPod, s.Metric[model.LabelPod]))
	if len(info) != 1 || info[0].Metric[model.LabelWorkloadKind] != "Deployment" || info[0].Metric[model.LabelWorkload] != "loadgen" ||
		info[0].Metric[model.LabelKubeLabelPrefix+"app"] != "loadgen" || info[0].Metric[model.LabelKubeLabelPrefix+"tier"] != "test" {
		t.Errorf("%s %v", name(model.LevelPod, model.Info), info)
	}
	if n := km.query(t, sel(model.LevelNamespace, model.Info, model.LabelNamespace, "kube-system",
		model.LabelKubeLabelPrefix+"kubernetes_io_metadata_name", "kube-system")); len(n) != 1 {
		t.Errorf("%s of a namespace without pods: %v", name(model.LevelNamespace, model.Info), n)
	}
	if n := km.query(t, sel(model.LevelWorkload, model.CPUUsageRate,
		model.LabelNamespace, "default", model.LabelWorkloadKind, "Deployment", model.LabelWorkload, "loadgen")); len(n) != 1 {
		t.Errorf("no workload roll-up for the Deployment: %v", n)
	}
	// The model API agrees, averaged from 30 s ago: one point is the rate
	// between two of the kubelet's refreshes, which a loaded machine can
	// starve (CI saw 126 m in one), and a loaded kubelet refreshed only
	// once in 30 s in another run, so wait up to a minute for a second.
	from := time.Now().Add(-30 * time.Second).UTC().Format(time.RFC3339)
	path := fmt.Sprintf("/api/v1/model/namespaces/default/pods/%s/containers/burn/metrics/%s?start=%s", s.Metric[model.LabelPod], heapster(model.CPUUsageRate), from)
	mc, n := meanPoints(t, km, path)
	for deadline := time.Now().Add(time.Minute); n < 2 && time.Now().Before(deadline); {
		time.Sleep(2 * time.Second)
		mc, n = meanPoints(t, km, path)
	}
	if n < 2 || !(math.Abs(mc-200) <= 60) {
		t.Errorf("model API %s: %v m over %d points since %s, want at least 2 and 200 m ± 30%%", heapster(model.CPUUsageRate), mc, n, from)
	}
}

// ghost is a fake kubelet address that counts connections and can hang.
type ghost struct {
	ln    net.Listener
	conns atomic.Int64
	hang  atomic.Bool
	mu    sync.Mutex
	open  []net.Conn
}

// newGhost listens on ip, an address of this host that kubemon's pod
// reaches (the node's veth peer).
func newGhost(t *testing.T, ip string) *ghost {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	g := &ghost{ln: ln}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			g.conns.Add(1)
			if g.hang.Load() {
				g.mu.Lock()
				g.open = append(g.open, conn) // never answer
				g.mu.Unlock()
				continue
			}
			conn.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		g.mu.Lock()
		for _, c := range g.open {
			c.Close()
		}
		g.mu.Unlock()
	})
	return g
}

// TestNodesComeAndGo: a node added to the API is scraped, a kubelet that
// stops answering delays no other node, and a node deleted from the API
// stops being scraped within one interval.
func TestNodesComeAndGo(t *testing.T) {
	c := upCluster(t)
	km := c.kubemon(t)
	hostIP := c.file(t, "host.ip")
	g := newGhost(t, hostIP)
	port := g.ln.Addr().(*net.TCPAddr).Port
	c.apply(t, "apiVersion: v1\nkind: Node\nmetadata: {name: ghost}\n")
	c.kubectl(t, "patch", "node", "ghost", "--subresource=status", "--type=merge", "-p",
		fmt.Sprintf(`{"status":{"addresses":[{"type":"InternalIP","address":%q}],"daemonEndpoints":{"kubeletEndpoint":{"Port":%d}}}}`, hostIP, port))
	waitFor(t, 30*time.Second, "kubemon to scrape the new node", func() bool { return g.conns.Load() >= 2 })

	// A kubelet that never answers: the real node's data keeps coming every interval.
	g.hang.Store(true)
	last := func() float64 {
		return km.scalar(t, "max(timestamp("+sel(model.LevelNode, model.CPUUsage, model.LabelNode, "kmnode1")+"))")
	}
	t0 := last()
	time.Sleep(16 * time.Second) // three 5 s intervals
	if t1 := last(); t1-t0 < 10 {
		t.Errorf("the real node's newest sample moved %v s in 16 s while another node hung", t1-t0)
	}
	if km.metric(t, `kubemon_scrape_failures_total{node="ghost"}`) < 1 {
		t.Error("the hanging node's failures are not counted")
	}

	c.kubectl(t, "delete", "node", "ghost")
	time.Sleep(6 * time.Second) // one interval (and a scrape already under way)
	n := g.conns.Load()
	time.Sleep(11 * time.Second)
	if m := g.conns.Load(); m != n {
		t.Errorf("a deleted node was dialled %d more times", m-n)
	}
}

// TestKubeletAuthorization: with webhook authorization on, a token without
// RBAC on nodes/stats gets a clear per-node error; the manifest's role works
// (TestRealCluster).
func TestKubeletAuthorization(t *testing.T) {
	c := upCluster(t)
	c.apply(t, `apiVersion: v1
kind: ServiceAccount
metadata: {name: nostats, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: nostats}
rules:
- apiGroups: [""]
  resources: [nodes, pods, namespaces]
  verbs: [get, list, watch]
- apiGroups: [apps]
  resources: [replicasets]
  verbs: [get, list, watch]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: nostats}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: nostats}
subjects: [{kind: ServiceAccount, name: nostats, namespace: kube-system}]
`)
	kc := c.kubeconfigFor(t, "kube-system", "nostats")
	cmd := exec.Command(binary, "serve", "--kubeconfig", kc, "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--interval", "2s")
	var logs strings.Builder
	var mu sync.Mutex
	cmd.Stderr = writerFunc(func(b []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return logs.Write(b) })
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	waitFor(t, 60*time.Second, "a per-node authorization error", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(logs.String(), "node=kmnode1") && strings.Contains(logs.String(), "403 Forbidden")
	})
	mu.Lock()
	defer mu.Unlock()
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "403 Forbidden") {
			t.Logf("logged: %s", l)
			break
		}
	}
}

// kubeconfigFor writes a kubeconfig that authenticates as the service
// account namespace/name with a fresh token (and nothing else).
func (c *cluster) kubeconfigFor(t *testing.T, namespace, name string) string {
	t.Helper()
	token := strings.TrimSpace(c.kubectl(t, "-n", namespace, "create", "token", name))
	base, err := os.ReadFile(filepath.Join(c.dir, "kubemon.kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	kc := filepath.Join(t.TempDir(), name+".kubeconfig")
	lines := strings.Split(string(base), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "users:") {
			lines[i] = fmt.Sprintf(`users: [{name: kubemon, user: {token: %q}}]`, token)
		}
	}
	if err := os.WriteFile(kc, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	return kc
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// serve runs `kubemon serve` with args on a free loopback port until the
// test ends.
func serve(t *testing.T, args ...string) *proc {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := &proc{base: "http://" + addr}
	p.cmd = exec.Command(binary, append([]string{"serve", "--listen", addr, "--data-dir", t.TempDir()}, args...)...)
	p.cmd.Stderr = writerFunc(func(b []byte) (int, error) { p.mu.Lock(); defer p.mu.Unlock(); return p.logs.Write(b) })
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.stop(t) })
	return p
}

// TestRealSources: the node proxy and the /metrics/resource and
// /metrics/cadvisor sources work against a real kubelet.
func TestRealSources(t *testing.T) {
	c := upCluster(t)
	c.apply(t, loadgen)
	c.kubectl(t, "rollout", "status", "deployment/loadgen", "--timeout=120s")
	kc := filepath.Join(c.dir, "kubeconfig")
	for source, args := range map[string][]string{
		"node proxy": {"--kubelet-node-proxy"},
		"resource":   {"--kubelet-endpoint", "resource"},
		"cadvisor":   {"--kubelet-endpoint", "cadvisor"},
	} {
		t.Run(source, func(t *testing.T) {
			p := serve(t, append([]string{"--kubeconfig", kc, "--interval", "2s"}, args...)...)
			waitFor(t, 60*time.Second, "a CPU rate for kmnode1", func() bool {
				code, _ := p.get(t, "/healthz")
				if code != 200 {
					return false
				}
				r := p.query(t, sel(model.LevelNode, model.CPUUsageRate, model.LabelNode, "kmnode1"))
				return len(r) == 1 && r[0].v(t) > 0
			})
			if n := p.scalar(t, "count("+sel(model.LevelContainer, model.MemoryWorkingSet, model.LabelNode, "kmnode1")+")"); n < 1 {
				t.Errorf("%v containers with a working set", n)
			}
			if strings.Contains(p.Logs(), "scrape failed") {
				t.Errorf("scrape failures:\n%s", p.Logs())
			}
			if source == "cadvisor" {
				cadvisorPodNetwork(t, c, p, serve(t, "--kubeconfig", kc, "--interval", "2s"))
			}
		})
	}
}

// cadvisorPodNetwork: the cAdvisor source (p) stores the same pods'
// network counters as the Summary source (ref) on the real containerd
// node, where the kubelet's cAdvisor puts a pod's network on its sandbox,
// and no container-level network. Host-network pods are left out: the
// sources count different interfaces of the node's network namespace for
// them (the Summary the CRI's, cAdvisor every one; this node has no eth0),
// and their traffic is the node's anyway.
func cadvisorPodNetwork(t *testing.T, c *cluster, p, ref *proc) {
	t.Helper()
	hostNet := map[string]bool{}
	for _, l := range strings.Split(c.kubectl(t, "get", "pods", "-A", "-o",
		`jsonpath={range .items[?(@.spec.hostNetwork==true)]}{.metadata.namespace}/{.metadata.name}{"\n"}{end}`), "\n") {
		hostNet[l] = true
	}
	waitFor(t, time.Minute, "the Summary-source kubemon ready", func() bool { code, _ := ref.get(t, "/readyz"); return code == http.StatusOK })
	podNet := func(p *proc, m model.MetricID) map[string]float64 {
		out := map[string]float64{}
		for _, s := range p.query(t, sel(model.LevelPod, m, model.LabelNode, "kmnode1")) {
			out[s.Metric[model.LabelNamespace]+"/"+s.Metric[model.LabelPod]] = s.v(t)
		}
		return out
	}
	waitFor(t, time.Minute, "the pods' network from both sources", func() bool {
		a, b := podNet(p, model.NetworkRx), podNet(ref, model.NetworkRx)
		return len(a) > 0 && len(a) == len(b)
	})
	for _, m := range [][2]model.MetricID{{model.NetworkRx, model.NetworkRxRate}, {model.NetworkTx, model.NetworkTxRate}} {
		// Each source reads the kubelet at its own moments (the kubelet's
		// stats are up to ~10 s old, each kubemon's scrape 2 s apart): within
		// 2 %, 64 KiB, or what the pod sends or receives in 12 s (a
		// host-network pod counts the node's traffic, two kubemons'
		// scrapes of its kubelet among it).
		a, b, rate := podNet(p, m[0]), podNet(ref, m[0]), podNet(ref, m[1])
		compared := 0
		for pod, va := range a {
			if hostNet[pod] {
				continue
			}
			compared++
			vb, ok := b[pod]
			if tol := math.Max(math.Max(0.02*vb, 64<<10), 12*rate[pod]); !ok || !(math.Abs(va-vb) <= tol) {
				t.Errorf("%s of %s: cAdvisor source %v, Summary source %v (present: %v; tolerance %.0f)", name(model.LevelPod, m[0]), pod, va, vb, ok, tol)
			}
		}
		if compared == 0 {
			t.Errorf("%s: no pod on the pod network to compare (%d pods, host-network ones: %v)", name(model.LevelPod, m[0]), len(a), hostNet)
		}
		t.Logf("%s: %d pods on the pod network compared, %d on the host's left out", name(model.LevelPod, m[0]), compared, len(a)-compared)
	}
	if r := p.query(t, sel(model.LevelContainer, model.NetworkRx)); len(r) != 0 {
		t.Errorf("the cAdvisor source stores container network: %v", r)
	}
}
