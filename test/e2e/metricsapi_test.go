package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/model"
)

// The metrics.k8s.io tests run on the harness, where up.sh registered the
// kubemon it started as the APIService v1beta1.metrics.k8s.io.

// kubectlErr runs kubectl with the admin kubeconfig and returns its output
// and error instead of failing.
func (c *cluster) kubectlErr(args ...string) (string, error) {
	return kubectlWith(filepath.Join(c.dir, "kubeconfig"), args...)
}

func kubectlWith(kubeconfig string, args ...string) (string, error) {
	out, err := exec.Command("kubectl", append([]string{"--kubeconfig", kubeconfig}, args...)...).CombinedOutput()
	return string(out), err
}

// metricsStamp returns the timestamp and window of a NodeMetrics or
// PodMetrics read through the apiserver (path under
// /apis/metrics.k8s.io/v1beta1).
func (c *cluster) metricsStamp(t *testing.T, path string) (time.Time, time.Duration) {
	t.Helper()
	var m struct {
		Timestamp time.Time `json:"timestamp"`
		Window    string    `json:"window"`
	}
	if err := json.Unmarshal([]byte(c.kubectl(t, "get", "--raw", "/apis/metrics.k8s.io/v1beta1/"+path)), &m); err != nil {
		t.Fatal(err)
	}
	d, err := time.ParseDuration(m.Window)
	if err != nil || d <= 0 {
		t.Fatalf("window %q of %s: %v", m.Window, path, err)
	}
	return m.Timestamp, d
}

// top runs a kubectl top command and returns its rows (no header) as
// fields, with the timestamp of the metrics object it printed: the command
// is retried until that object did not change while it ran, so its figures
// belong to one known sample (also returned: its window).
func (c *cluster) top(t *testing.T, object string, args ...string) ([][]string, time.Time, time.Duration) {
	t.Helper()
	for range 20 {
		before, window := c.metricsStamp(t, object)
		out := c.kubectl(t, append(append([]string{"top"}, args...), "--no-headers")...)
		if after, _ := c.metricsStamp(t, object); !after.Equal(before) {
			continue
		}
		var rows [][]string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			rows = append(rows, strings.Fields(l))
		}
		return rows, before, window
	}
	t.Fatalf("kubectl top %v: the metrics changed during every try", args)
	return nil, time.Time{}, 0
}

// modelAt returns the model API's value of a metric at the sample whose
// timestamp falls in the second ts (metrics.k8s.io timestamps have
// seconds).
func modelAt(t *testing.T, km *proc, path string, ts time.Time) float64 {
	t.Helper()
	var r struct {
		Metrics []struct {
			Timestamp  time.Time `json:"timestamp"`
			Value      uint64    `json:"value"`
			FloatValue *float64  `json:"floatValue"`
		} `json:"metrics"`
	}
	km.getJSON(t, path, &r)
	for _, m := range r.Metrics {
		if m.Timestamp.Truncate(time.Second).Equal(ts) {
			if m.FloatValue != nil {
				return *m.FloatValue
			}
			return float64(m.Value)
		}
	}
	t.Fatalf("%s: no point at %s among %d", path, ts, len(r.Metrics))
	return 0
}

// quantity parses kubectl top's "123m" and "64Mi".
func quantity(t *testing.T, s, unit string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, unit), 64)
	if err != nil || !strings.HasSuffix(s, unit) {
		t.Fatalf("%q: want a number of %s", s, unit)
	}
	return v
}

// agree checks kubectl top's CPU (millicores, rounded up) and memory (MiB,
// rounded down) against the model API's millicores and bytes.
func agree(t *testing.T, what, cpu, mem string, modelMilli, modelBytes float64) {
	t.Helper()
	if got := quantity(t, cpu, "m"); math.Abs(got-modelMilli) > 1 {
		t.Errorf("%s: kubectl top CPU %s, model API %.1f m", what, cpu, modelMilli)
	}
	if got, want := quantity(t, mem, "Mi"), math.Floor(modelBytes/(1<<20)); math.Abs(got-want) > 1 {
		t.Errorf("%s: kubectl top memory %s, model API %.0f Mi", what, mem, want)
	}
	t.Logf("%s: kubectl top %s %s, model API %.1fm %.1fMi", what, cpu, mem, modelMilli, modelBytes/(1<<20))
}

// TestKubectlTop: kubectl top nodes, top pods -A and top pod --containers,
// through the real apiserver, print kubemon's numbers.
func TestKubectlTop(t *testing.T) {
	c := upCluster(t)
	km := c.kubemon(t)
	c.apply(t, loadgen)
	c.kubectl(t, "rollout", "status", "deployment/loadgen", "--timeout=120s")
	pod := strings.TrimSpace(c.kubectl(t, "get", "pods", "-l", "app=loadgen", "--field-selector=status.phase=Running", "-o", "jsonpath={.items[0].metadata.name}"))
	sampler := startCPUSampler(t, "kmnode1", c.kubectl(t, "get", "pod", pod, "-o", "jsonpath={.status.containerStatuses[0].containerID}"))
	waitFor(t, 60*time.Second, "the load generator in kubectl top", func() bool {
		_, err := c.kubectlErr("top", "pod", pod)
		return err == nil
	})

	rows, ts, _ := c.top(t, "nodes/kmnode1", "nodes")
	if len(rows) != 1 || rows[0][0] != "kmnode1" || len(rows[0]) != 5 {
		t.Fatalf("kubectl top nodes: %v", rows)
	}
	agree(t, "node kmnode1", rows[0][1], rows[0][3],
		modelAt(t, km, "/api/v1/model/nodes/kmnode1/metrics/"+heapster(model.CPUUsageRate), ts),
		modelAt(t, km, "/api/v1/model/nodes/kmnode1/metrics/"+heapster(model.MemoryWorkingSet), ts))

	// A pod's usage is the sum of its containers' (as with metrics-server);
	// the load generator has one.
	ctr := "/api/v1/model/namespaces/default/pods/" + pod + "/containers/burn/metrics/"
	rows, ts, _ = c.top(t, "namespaces/default/pods/"+pod, "pods", "-A")
	found := false
	for _, r := range rows {
		if len(r) == 4 && r[0] == "default" && r[1] == pod {
			found = true
			agree(t, "pod "+pod, r[2], r[3], modelAt(t, km, ctr+heapster(model.CPUUsageRate), ts), modelAt(t, km, ctr+heapster(model.MemoryWorkingSet), ts))
		}
	}
	if !found {
		t.Fatalf("kubectl top pods -A has no default/%s: %v", pod, rows)
	}

	// The CPU check needs a window the cgroup sampler (started above)
	// covers whole: wait for one when the pod was already running.
	var window time.Duration
	waitFor(t, 90*time.Second, "a kubectl top window inside the cgroup samples", func() bool {
		rows, ts, window = c.top(t, "namespaces/default/pods/"+pod, "pod", pod, "--containers")
		return ts.Add(-window).After(sampler.first())
	})
	if len(rows) != 1 || len(rows[0]) != 4 || rows[0][0] != pod || rows[0][1] != "burn" {
		t.Fatalf("kubectl top pod --containers: %v", rows)
	}
	agree(t, "container burn", rows[0][2], rows[0][3], modelAt(t, km, ctr+heapster(model.CPUUsageRate), ts), modelAt(t, km, ctr+heapster(model.MemoryWorkingSet), ts))
	// The load generator asks for 200m; what it got on this machine is in
	// its cgroup, over the very window kubectl top's rate spans.
	truth := 1000 * sampler.rate(t, ts.Add(-window), ts)
	if truth < 50 {
		t.Fatalf("the load generator got only %.0fm of CPU: the check below would mean little", truth)
	}
	if cpu := quantity(t, rows[0][2], "m"); !(math.Abs(cpu-truth) <= 0.15*truth+15) {
		t.Errorf("kubectl top says %vm; the container's cgroup used %.1fm over the same window", cpu, truth)
	} else {
		t.Logf("kubectl top %vm; cgroup truth %.1fm", cpu, truth)
	}

	// Selectors reach kubemon through the apiserver.
	if out := c.kubectl(t, "top", "pods", "-A", "--no-headers", "-l", "app=loadgen"); !strings.Contains(out, pod) || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("top pods -l app=loadgen:\n%s", out)
	}
	if out, err := c.kubectlErr("top", "pods", "-A", "--no-headers", "-l", "app=nothing"); !strings.Contains(out, "No resources found") {
		t.Errorf("top pods -l app=nothing: %v\n%s", err, out)
	}
	var nodes struct {
		Items []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		} `json:"items"`
	}
	raw := c.kubectl(t, "get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes?labelSelector=kubernetes.io%2Fhostname%3Dkmnode1&fieldSelector=metadata.name%3Dkmnode1")
	if err := json.Unmarshal([]byte(raw), &nodes); err != nil || len(nodes.Items) != 1 {
		t.Errorf("nodes by label and field: %v %s", err, raw)
	}
	// The apiserver aggregated kubemon's OpenAPI document.
	if out := c.kubectl(t, "explain", "pods.containers", "--api-version=metrics.k8s.io/v1beta1"); !strings.Contains(out, "KIND:       PodMetrics") || !strings.Contains(out, "usage") {
		t.Errorf("kubectl explain pods.containers --api-version=metrics.k8s.io/v1beta1:\n%s", out)
	}
	// kubectl get prints kubemon's table for the metrics resources.
	if out := c.kubectl(t, "get", "nodes.metrics.k8s.io"); !strings.Contains(out, "WINDOW") || !strings.Contains(out, "kmnode1") {
		t.Errorf("kubectl get nodes.metrics.k8s.io:\n%s", out)
	}
}

// TestMetricsAPIRefusals: requests that did not come through the front
// proxy, or from users without RBAC, are refused (401/403) and logged;
// the aggregated reader role lets namespace viewers read their pods.
func TestMetricsAPIRefusals(t *testing.T) {
	c := upCluster(t)
	addr, err := os.ReadFile(filepath.Join(c.dir, "kubemon-metrics-api.addr"))
	if err != nil {
		t.Fatal(err)
	}
	base := "https://" + strings.TrimSpace(string(addr)) + "/apis/metrics.k8s.io/v1beta1/nodes"
	ca, err := os.ReadFile(filepath.Join(c.dir, "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	proxy, err := tls.LoadX509KeyPair(filepath.Join(c.dir, "pki", "front-proxy-client.crt"), filepath.Join(c.dir, "pki", "front-proxy-client.key"))
	if err != nil {
		t.Fatal(err)
	}
	do := func(cert *tls.Certificate, headers map[string]string) int {
		t.Helper()
		tc := &tls.Config{RootCAs: pool, ServerName: "kubemon.kube-system.svc"}
		if cert != nil {
			tc.Certificates = []tls.Certificate{*cert}
		}
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
		req, _ := http.NewRequest(http.MethodGet, base, nil)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name    string
		cert    *tls.Certificate
		headers map[string]string
		want    int
	}{
		{"no credentials", nil, nil, http.StatusForbidden},
		{"identity headers without the front proxy's certificate", nil,
			map[string]string{"X-Remote-User": "admin", "X-Remote-Group": "system:masters"}, http.StatusForbidden},
		{"a bad token", nil, map[string]string{"Authorization": "Bearer not-a-token"}, http.StatusUnauthorized},
		{"the front proxy for a user without RBAC", &proxy, map[string]string{"X-Remote-User": "mallory"}, http.StatusForbidden},
		{"the front proxy for a cluster admin", &proxy,
			map[string]string{"X-Remote-User": "admin", "X-Remote-Group": "system:masters"}, http.StatusOK},
	} {
		if got := do(tc.cert, tc.headers); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	logs := c.kubemonLogs(t)
	for _, want := range []map[string]any{
		{"msg": "metrics API request forbidden", "component": "metrics-api", "status": 403, "user": "system:anonymous"},
		{"msg": "metrics API request forbidden", "component": "metrics-api", "status": 403, "user": "mallory"},
		{"msg": "metrics API request not authenticated", "component": "metrics-api", "status": 401},
	} {
		if !logged(logs, want) {
			t.Errorf("kubemon's log (%d lines) has no line with %v", len(logs), want)
		}
	}

	// Through the apiserver: a service account with no role is refused; one
	// with the view role in default (which aggregates the metrics reader)
	// reads default's pods and nothing else.
	c.apply(t, `apiVersion: v1
kind: ServiceAccount
metadata: {name: nobody, namespace: default}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: viewer, namespace: default}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: viewer, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: ServiceAccount, name: viewer, namespace: default}]
`)
	as := func(sa string, args ...string) (string, error) {
		return kubectlWith(c.kubeconfigFor(t, "default", sa), args...)
	}
	if out, err := as("nobody", "top", "nodes"); err == nil || !strings.Contains(out, "forbidden") {
		t.Errorf("top nodes without RBAC: %v\n%s", err, out)
	}
	if out, err := as("viewer", "get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods"); err != nil {
		t.Errorf("viewer of default reading its pod metrics: %v\n%s", err, out)
	}
	if out, err := as("viewer", "get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/kube-system/pods"); err == nil || !strings.Contains(out, "forbidden") {
		t.Errorf("viewer of default reading kube-system's pod metrics: %v\n%s", err, out)
	}
}

// TestHorizontalPodAutoscaler: an HPA (autoscaling/v2, 50 % CPU target) on
// a Deployment of the load generator reads kubemon's metrics, reaches its
// maximum replicas under load and comes back to its minimum after.
func TestHorizontalPodAutoscaler(t *testing.T) {
	c := upCluster(t)
	ctl := filepath.Join(c.dir, "loadctl")
	if err := os.MkdirAll(ctl, 0o755); err != nil {
		t.Fatal(err)
	}
	load := func(milli int) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(ctl, "millicores"), []byte(strconv.Itoa(milli)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	load(150) // 150 % of the 100m request
	c.apply(t, fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: hpa}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: burner, namespace: hpa}
spec:
  replicas: 1
  selector: {matchLabels: {app: burner}}
  template:
    metadata: {labels: {app: burner}}
    spec:
      hostNetwork: true
      terminationGracePeriodSeconds: 1
      containers:
      - name: burn
        image: localhost/loadgen:kubemon
        imagePullPolicy: Never
        args: ["-millicores", "0", "-mebibytes", "16", "-control", "/ctl/millicores"]
        resources: {requests: {cpu: 100m, memory: 32Mi}, limits: {memory: 128Mi}}
        volumeMounts: [{name: ctl, mountPath: /ctl, readOnly: true}]
      volumes: [{name: ctl, hostPath: {path: %q, type: Directory}}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: burner, namespace: hpa}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: burner}
  minReplicas: 1
  maxReplicas: 3
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
  behavior:
    scaleUp: {stabilizationWindowSeconds: 0}
    scaleDown: {stabilizationWindowSeconds: 0, policies: [{type: Percent, value: 100, periodSeconds: 15}]}
`, ctl))
	t.Cleanup(func() { _, _ = c.kubectlErr("delete", "namespace", "hpa", "--wait=false") })

	status := func() (current, desired int, util string) {
		out, err := c.kubectlErr("-n", "hpa", "get", "hpa", "burner", "-o",
			"jsonpath={.status.currentReplicas} {.status.desiredReplicas} {.status.currentMetrics[0].resource.current.averageUtilization}")
		if err != nil {
			t.Logf("hpa status: %v %s", err, out)
			return 0, 0, ""
		}
		f := strings.Fields(out)
		if len(f) < 2 {
			return 0, 0, ""
		}
		current, _ = strconv.Atoi(f[0])
		desired, _ = strconv.Atoi(f[1])
		if len(f) > 2 {
			util = f[2]
		}
		return current, desired, util
	}
	start := time.Now()
	waitFor(t, 4*time.Minute, "the HPA to scale up to 3 replicas", func() bool {
		cur, _, util := status()
		return cur == 3 && util != ""
	})
	t.Logf("scaled up to 3 replicas in %s", time.Since(start).Round(time.Second))
	if out := c.kubectl(t, "-n", "hpa", "get", "deployment", "burner", "-o", "jsonpath={.spec.replicas}"); out != "3" {
		t.Errorf("deployment replicas %s, want 3", out)
	}

	load(0)
	start = time.Now()
	waitFor(t, 4*time.Minute, "the HPA to scale back down to 1 replica", func() bool {
		cur, desired, _ := status()
		return cur == 1 && desired == 1
	})
	t.Logf("scaled down to 1 replica %s after the load stopped", time.Since(start).Round(time.Second))
	if out := c.kubectl(t, "-n", "hpa", "get", "hpa", "burner", "-o", "jsonpath={.status.conditions[?(@.type==\"ScalingActive\")].status}"); out != "True" {
		t.Errorf("ScalingActive %q: the HPA could not read metrics", out)
	}
}
