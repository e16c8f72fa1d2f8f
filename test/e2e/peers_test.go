package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// The peer comparison of issue 13 (item 5): metrics-server v0.8.0, built
// from its own module by hack/peers/build.sh, runs on the host beside the
// harness's kubemon, installed as users install it (RBAC for its
// ServiceAccount, authentication and authorization delegated to the
// apiserver, kubelet TLS verified with the cluster CA), and is read
// directly on its port; kubemon is read through the apiserver, where the
// harness registered it as v1beta1.metrics.k8s.io.

// peersWorkload: pods with steady CPU and memory, of different sizes.
const peersWorkload = `apiVersion: v1
kind: Namespace
metadata: {name: peers}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: peers-reader, namespace: peers}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: peers-metrics-reader}
rules:
- apiGroups: [metrics.k8s.io]
  resources: [pods, nodes]
  verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: peers-metrics-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: peers-metrics-reader}
subjects: [{kind: ServiceAccount, name: peers-reader, namespace: peers}]
` + peersPod + peersPod + peersPod

const peersPod = `---
apiVersion: v1
kind: Pod
metadata: {name: load-%s, namespace: peers, labels: {app: peers-load}}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers:
  - name: burn
    image: localhost/loadgen:kubemon
    imagePullPolicy: Never
    args: ["-millicores", "%d", "-mebibytes", "%d"]
    resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {memory: 256Mi}}
`

// metricsServerRBAC is metrics-server v0.8.0's manifests/base/rbac.yaml
// less system:aggregated-metrics-reader, which kubemon's deploy/ owns on
// this cluster.
const metricsServerRBAC = `apiVersion: v1
kind: ServiceAccount
metadata: {name: metrics-server, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: metrics-server-auth-reader, namespace: kube-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: extension-apiserver-authentication-reader}
subjects: [{kind: ServiceAccount, name: metrics-server, namespace: kube-system}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "metrics-server:system:auth-delegator"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:auth-delegator"}
subjects: [{kind: ServiceAccount, name: metrics-server, namespace: kube-system}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:metrics-server"}
rules:
- apiGroups: [""]
  resources: [nodes/metrics]
  verbs: [get]
- apiGroups: [""]
  resources: [pods, nodes]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:metrics-server"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:metrics-server"}
subjects: [{kind: ServiceAccount, name: metrics-server, namespace: kube-system}]
`

// Agreement required between kubemon and metrics-server: 5 % of
// metrics-server's figure, or these absolute floors where that is less.
// The floors only matter near zero, where 5 % is below what either can
// resolve: a container's CPU over a ~10 s window moves by a few
// millicores with scheduling noise, and an idle working set by a few
// pages. The loads here (≥ 50m, ≥ 16 MiB) are well above them.
const (
	agreeRel      = 0.05
	agreeCPUFloor = 0.002   // cores (2m)
	agreeMemFloor = 1 << 20 // bytes (1 MiB)
)

// buildPeer runs hack/peers/build.sh for peer and returns the binary's
// path, logging what the build cost (minutes cold, nothing warm).
func buildPeer(t *testing.T, repo, peer string) string {
	t.Helper()
	start := time.Now()
	cmd := exec.Command(filepath.Join(repo, "hack/peers/build.sh"), peer)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hack/peers/build.sh %s: %v\n%s", peer, err, stderr.String())
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		t.Logf("hack/peers/build.sh %s:\n%s", peer, s)
	}
	bin := strings.TrimSpace(string(out))
	t.Logf("%s: %s (build.sh took %s)", peer, bin, time.Since(start).Round(100*time.Millisecond))
	return bin
}

// metricsServer is a metrics-server process on a loopback port.
type metricsServer struct {
	cmd    *exec.Cmd
	base   string // https://127.0.0.1:port
	client *http.Client
	token  string
	mu     sync.Mutex
	logs   strings.Builder
}

func (m *metricsServer) Logs() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.logs.String()
}

// startMetricsServer runs bin as metrics-server installs it, with the
// ServiceAccount token kubeconfig kc.
func startMetricsServer(t *testing.T, c *cluster, bin, kc string) *metricsServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	certDir := t.TempDir()
	m := &metricsServer{base: fmt.Sprintf("https://127.0.0.1:%d", port)}
	m.cmd = exec.Command(bin,
		"--kubeconfig", kc, "--authentication-kubeconfig", kc, "--authorization-kubeconfig", kc,
		"--bind-address", "127.0.0.1", "--secure-port", fmt.Sprint(port), "--cert-dir", certDir,
		"--kubelet-preferred-address-types", "InternalIP", "--kubelet-use-node-status-port",
		"--kubelet-certificate-authority", filepath.Join(c.dir, "pki", "ca.crt"),
		// Its minimum (kubemon here: 5 s); the request timeout must stay
		// under 90 % of it.
		"--metric-resolution", "10s", "--kubelet-request-timeout", "8s",
		"-v", "2")
	m.cmd.Stderr = writerFunc(func(b []byte) (int, error) { m.mu.Lock(); defer m.mu.Unlock(); return m.logs.Write(b) })
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("metrics-server PID %d on %s", m.cmd.Process.Pid, m.base)
	t.Cleanup(func() {
		// By PID: SIGTERM, then SIGKILL after 20 s.
		_ = m.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = m.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = m.cmd.Process.Kill()
			<-done
			t.Errorf("metrics-server did not stop within 20 s of SIGTERM")
		}
		if t.Failed() {
			l := m.Logs()
			if len(l) > 6000 {
				l = l[len(l)-6000:]
			}
			t.Logf("--- metrics-server log (tail)\n%s", l)
		}
	})
	// Its self-signed serving certificate (and the CA that signed it),
	// written to --cert-dir at start: the client verifies it.
	var pem []byte
	waitFor(t, 60*time.Second, "metrics-server's serving certificate", func() bool {
		pem, err = os.ReadFile(filepath.Join(certDir, "apiserver.crt"))
		return err == nil && len(pem) > 0
	})
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", filepath.Join(certDir, "apiserver.crt"))
	}
	m.client = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return m
}

// get reads path from metrics-server with its bearer token.
func (m *metricsServer) get(path string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+m.token)
	resp, err := m.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// usageRead is one object's usage in one metrics.k8s.io answer.
type usageRead struct {
	ts     time.Time // the newer of the two samples behind the CPU rate (seconds)
	window time.Duration
	cpu    float64 // cores
	mem    float64 // working set bytes
}

// decodeUsage decodes a NodeMetricsList or PodMetricsList into reads keyed
// "node/NAME" or "pod/NAMESPACE/NAME" (a pod's usage is the sum of its
// containers'). A quantity that does not parse, a bad window or a NaN is an
// error.
func decodeUsage(body []byte) (map[string]usageRead, error) {
	var list struct {
		Kind  string `json:"kind"`
		Items []struct {
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
			Timestamp  time.Time         `json:"timestamp"`
			Window     string            `json:"window"`
			Usage      map[string]string `json:"usage"`
			Containers []struct {
				Name  string            `json:"name"`
				Usage map[string]string `json:"usage"`
			} `json:"containers"`
		} `json:"items"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("%w: %.300s", err, body)
	}
	q := func(u map[string]string, r string) (float64, error) {
		s, ok := u[r]
		if !ok {
			return 0, fmt.Errorf("no %s", r)
		}
		v, err := resource.ParseQuantity(s)
		if err != nil {
			return 0, err
		}
		f := v.AsApproximateFloat64()
		if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
			return 0, fmt.Errorf("%s %s", r, s)
		}
		return f, nil
	}
	out := map[string]usageRead{}
	for _, it := range list.Items {
		w, err := time.ParseDuration(it.Window)
		if err != nil || w <= 0 {
			return nil, fmt.Errorf("%s/%s: window %q", it.Metadata.Namespace, it.Metadata.Name, it.Window)
		}
		r := usageRead{ts: it.Timestamp, window: w}
		key := "node/" + it.Metadata.Name
		usages := []map[string]string{it.Usage}
		if list.Kind == "PodMetricsList" {
			key = "pod/" + it.Metadata.Namespace + "/" + it.Metadata.Name
			usages = usages[:0]
			for _, ct := range it.Containers {
				usages = append(usages, ct.Usage)
			}
			if len(usages) == 0 {
				return nil, fmt.Errorf("%s: no containers", key)
			}
		}
		for _, u := range usages {
			cpu, err := q(u, "cpu")
			if err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
			mem, err := q(u, "memory")
			if err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
			r.cpu += cpu
			r.mem += mem
		}
		out[key] = r
	}
	return out, nil
}

// peerSeries is one side's distinct reads of one object, by timestamp.
type peerSeries map[int64]usageRead

// TestMetricsServerAgrees: on the real test cluster, kubemon's NodeMetrics
// and PodMetrics agree with metrics-server v0.8.0's, for the same node
// and pods, within 5 %.
//
// Both compute CPU as the rate between the two newest kubelet samples
// (timestamp: the newer; window: the time between them) and memory as the
// newest working set, so each is read every 2 s for two minutes and, per
// object, the time-weighted mean CPU (Σ rate·window / Σ window) and the
// mean working set of the distinct samples each reported over the span
// both cover are compared.
//
// Single reads are not compared: kubemon reads /stats/summary, whose
// timestamps have whole seconds, metrics-server /metrics/resource, whose
// timestamps have milliseconds, so a read's window, and so its rate, can
// differ by up to 1 s / window even for the same kubelet samples (the
// errors cancel over consecutive windows, hence the means). Reads with the
// same timestamp and windows within 1 s (mostly the same kubelet samples)
// are paired and the median and largest difference of their rates logged.
func TestMetricsServerAgrees(t *testing.T) {
	if os.Getenv("KUBEMON_E2E_CLUSTER") == "0" || os.Geteuid() != 0 {
		upCluster(t) // skips, saying why
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	// Built before the cluster is taken: the first build takes minutes.
	bin := buildPeer(t, repo, "metrics-server")
	if out, err := exec.Command(bin, "--version").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "v0.8.0" {
		t.Fatalf("%s --version: %q, %v", bin, out, err)
	}

	c := upCluster(t)
	c.apply(t, metricsServerRBAC)
	t.Cleanup(func() {
		_, _ = c.kubectlErr("delete", "--ignore-not-found", "-n", "kube-system", "serviceaccount/metrics-server", "rolebinding/metrics-server-auth-reader")
		_, _ = c.kubectlErr("delete", "--ignore-not-found", "clusterrolebinding/metrics-server:system:auth-delegator",
			"clusterrolebinding/system:metrics-server", "clusterrole/system:metrics-server")
	})
	pods := []struct {
		name          string
		millicores, m int
	}{{"small", 50, 16}, {"medium", 150, 48}, {"large", 300, 96}}
	var args []any
	for _, p := range pods {
		args = append(args, p.name, p.millicores, p.m)
	}
	c.apply(t, fmt.Sprintf(peersWorkload, args...))
	t.Cleanup(func() {
		_, _ = c.kubectlErr("delete", "namespace", "peers", "--wait=false")
		_, _ = c.kubectlErr("delete", "--ignore-not-found", "clusterrolebinding/peers-metrics-reader", "clusterrole/peers-metrics-reader")
	})
	c.kubectl(t, "-n", "peers", "wait", "--for=condition=Ready", "pod", "-l", "app=peers-load", "--timeout=120s")

	ms := startMetricsServer(t, c, bin, c.kubeconfigFor(t, "kube-system", "metrics-server"))
	ms.token = strings.TrimSpace(c.kubectl(t, "-n", "peers", "create", "token", "peers-reader"))
	node := "node/kmnode1"
	want := []string{node}
	for _, p := range pods {
		want = append(want, "pod/peers/load-"+p.name)
	}
	paths := []string{"/apis/metrics.k8s.io/v1beta1/nodes", "/apis/metrics.k8s.io/v1beta1/namespaces/peers/pods"}
	readKubemon := func() (map[string]usageRead, error) {
		all := map[string]usageRead{}
		for _, p := range paths {
			out, err := c.kubectlErr("get", "--raw", p)
			if err != nil {
				return nil, fmt.Errorf("kubemon %s: %w: %s", p, err, out)
			}
			m, err := decodeUsage([]byte(out))
			if err != nil {
				return nil, fmt.Errorf("kubemon %s: %w", p, err)
			}
			for k, v := range m {
				all[k] = v
			}
		}
		return all, nil
	}
	readMS := func() (map[string]usageRead, error) {
		all := map[string]usageRead{}
		for _, p := range paths {
			code, body, err := ms.get(p)
			if err != nil {
				return nil, fmt.Errorf("metrics-server %s: %w", p, err)
			}
			if code != http.StatusOK {
				return nil, fmt.Errorf("metrics-server %s: %d: %.300s", p, code, body)
			}
			m, err := decodeUsage(body)
			if err != nil {
				return nil, fmt.Errorf("metrics-server %s: %w", p, err)
			}
			for k, v := range m {
				all[k] = v
			}
		}
		return all, nil
	}
	has := func(m map[string]usageRead) bool {
		for _, k := range want {
			if _, ok := m[k]; !ok {
				return false
			}
		}
		return true
	}
	start := time.Now()
	var lastErr error
	waitFor(t, 3*time.Minute, "the node and every pod in both metrics-server and kubemon", func() bool {
		time.Sleep(time.Second)
		a, err := readKubemon()
		if err != nil {
			lastErr = err
			return false
		}
		b, err := readMS()
		if err != nil {
			lastErr = err
			return false
		}
		lastErr = fmt.Errorf("kubemon has %d, metrics-server %d of %d objects", len(a), len(b), len(want))
		return has(a) && has(b)
	})
	t.Logf("both serve the node and %d pods %s after metrics-server started (last: %v)", len(pods), time.Since(start).Round(time.Second), lastErr)
	// A token without metrics.k8s.io rights (the namespace's default
	// ServiceAccount) is refused: authorization is the apiserver's.
	noRights := &metricsServer{base: ms.base, client: ms.client, token: strings.TrimSpace(c.kubectl(t, "-n", "peers", "create", "token", "default"))}
	if code, body, err := noRights.get(paths[0]); code != http.StatusForbidden {
		t.Errorf("metrics-server answered %d (%v) to a token without metrics.k8s.io rights; want 403 (delegated authorization): %.300s", code, err, body)
	}

	// Two minutes of reads, every 2 s, both sides each time.
	km, ref := map[string]peerSeries{}, map[string]peerSeries{}
	for _, k := range want {
		km[k], ref[k] = peerSeries{}, peerSeries{}
	}
	reads := 0
	for end := time.Now().Add(2 * time.Minute); time.Now().Before(end); time.Sleep(2 * time.Second) {
		a, err := readKubemon()
		if err != nil {
			t.Fatal(err)
		}
		b, err := readMS()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range want {
			ra, oka := a[k]
			rb, okb := b[k]
			if !oka || !okb {
				t.Fatalf("%s missing after it was served (kubemon %v, metrics-server %v)", k, oka, okb)
			}
			km[k][ra.ts.Unix()] = ra
			ref[k][rb.ts.Unix()] = rb
		}
		reads++
	}

	compared := 0
	for _, k := range want {
		cmp, err := comparePeer(km[k], ref[k])
		if err != nil {
			t.Errorf("%s: %v", k, err)
			continue
		}
		okCPU := agrees(cmp.cpuA, cmp.cpuB, agreeCPUFloor)
		okMem := agrees(cmp.memA, cmp.memB, agreeMemFloor)
		t.Logf("%-22s cpu kubemon %.4f metrics-server %.4f cores (%+.2f %%), working set kubemon %.1f metrics-server %.1f MiB (%+.2f %%); %d/%d samples over %s; single reads paired: %d, cpu rates differ by %.1f %% (median) and %.1f %% at most (windows %s vs %s)",
			k, cmp.cpuA, cmp.cpuB, 100*(cmp.cpuA/cmp.cpuB-1), cmp.memA/(1<<20), cmp.memB/(1<<20), 100*(cmp.memA/cmp.memB-1),
			cmp.nA, cmp.nB, cmp.span, cmp.paired, 100*cmp.rateMedDiff, 100*cmp.rateMaxDiff, cmp.rateMaxWindows[0], cmp.rateMaxWindows[1])
		if !okCPU || !okMem {
			t.Errorf("%s: kubemon and metrics-server disagree by more than %.0f %% (cpu %v vs %v cores, working set %v vs %v bytes)",
				k, 100*agreeRel, cmp.cpuA, cmp.cpuB, cmp.memA, cmp.memB)
		}
		if strings.HasPrefix(k, "pod/") {
			compared++
		}
	}
	t.Logf("%d reads of each over %s; %d pods and the node compared", reads, 2*time.Minute, compared)
	if compared < 2 {
		t.Errorf("only %d pods compared; want at least 2", compared)
	}
	if l := ms.Logs(); strings.Contains(l, "Failed to scrape node") {
		t.Errorf("metrics-server failed scrapes:\n%s", l)
	}
}

// agrees reports whether a is within agreeRel of the reference b, or
// within floor of it; NaN never agrees.
func agrees(a, b, floor float64) bool {
	d := math.Abs(a - b)
	return d <= math.Max(agreeRel*math.Abs(b), floor)
}

type peerComparison struct {
	cpuA, cpuB, memA, memB float64
	nA, nB                 int
	span                   time.Duration
	// Single reads paired (same timestamp, windows within 1 s): how
	// many, the median and largest relative difference of their CPU
	// rates, and the windows (kubemon's, metrics-server's) of the largest.
	paired                   int
	rateMedDiff, rateMaxDiff float64
	rateMaxWindows           [2]time.Duration
}

// comparePeer compares a (kubemon) with b (metrics-server) over the
// span both cover: from the later of their first timestamps to the
// earlier of their last. Each side's CPU is the time-weighted mean of the
// rates it reported there, its memory the mean working set.
func comparePeer(a, b peerSeries) (peerComparison, error) {
	var c peerComparison
	first := func(s peerSeries) (lo, hi int64) {
		lo, hi = math.MaxInt64, math.MinInt64
		for ts := range s {
			lo, hi = min(lo, ts), max(hi, ts)
		}
		return lo, hi
	}
	loA, hiA := first(a)
	loB, hiB := first(b)
	lo, hi := max(loA, loB), min(hiA, hiB)
	if len(a) == 0 || len(b) == 0 || hi <= lo {
		return c, fmt.Errorf("no common span (kubemon %d samples, metrics-server %d)", len(a), len(b))
	}
	c.span = time.Duration(hi-lo) * time.Second
	mean := func(s peerSeries) (cpu, mem float64, n int) {
		var cs, w float64
		for ts, r := range s {
			if ts < lo || ts > hi {
				continue
			}
			cs += r.cpu * r.window.Seconds()
			w += r.window.Seconds()
			mem += r.mem
			n++
		}
		return cs / w, mem / float64(n), n
	}
	c.cpuA, c.memA, c.nA = mean(a)
	c.cpuB, c.memB, c.nB = mean(b)
	if c.nA < 3 || c.nB < 3 {
		return c, fmt.Errorf("too few samples in the common span %s: kubemon %d, metrics-server %d", c.span, c.nA, c.nB)
	}
	keys := make([]int64, 0, len(a))
	for ts := range a {
		keys = append(keys, ts)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	var diffs []float64
	for _, ts := range keys {
		rb, ok := b[ts]
		ra := a[ts]
		// The same newer sample (same second) and the same older one
		// (windows within kubemon's 1 s resolution).
		if !ok || (ra.window-rb.window).Abs() >= time.Second || rb.cpu <= 0 {
			continue
		}
		c.paired++
		d := math.Abs(ra.cpu/rb.cpu - 1)
		diffs = append(diffs, d)
		if d > c.rateMaxDiff {
			c.rateMaxDiff, c.rateMaxWindows = d, [2]time.Duration{ra.window, rb.window}
		}
	}
	if len(diffs) > 0 {
		sort.Float64s(diffs)
		c.rateMedDiff = diffs[len(diffs)/2]
	}
	for _, v := range []float64{c.cpuA, c.cpuB, c.memA, c.memB} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return c, fmt.Errorf("a NaN or infinite mean: %+v", c)
		}
	}
	return c, nil
}
