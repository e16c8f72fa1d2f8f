package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/model"
)

// TestKubemonPod: kubemon runs as the pod deploy/ describes, from the image
// hack/image.sh built, stamped with this checkout's revision.
func TestKubemonPod(t *testing.T) {
	c := upCluster(t)
	var pod struct {
		Spec struct {
			ServiceAccountName string `json:"serviceAccountName"`
			SecurityContext    struct {
				RunAsNonRoot *bool `json:"runAsNonRoot"`
				RunAsUser    *int  `json:"runAsUser"`
			} `json:"securityContext"`
			Containers []struct {
				Image           string   `json:"image"`
				Args            []string `json:"args"`
				SecurityContext struct {
					ReadOnlyRootFilesystem *bool `json:"readOnlyRootFilesystem"`
				} `json:"securityContext"`
			} `json:"containers"`
		} `json:"spec"`
		Status struct {
			ContainerStatuses []struct {
				Ready        bool `json:"ready"`
				RestartCount int  `json:"restartCount"`
			} `json:"containerStatuses"`
		} `json:"status"`
	}
	out := c.kubectl(t, "-n", "kube-system", "get", "pods", "-l", "app.kubernetes.io/name=kubemon", "-o", "jsonpath={.items[0]}")
	if err := json.Unmarshal([]byte(out), &pod); err != nil {
		t.Fatalf("kubemon pod: %v\n%s", err, out)
	}
	if len(pod.Spec.Containers) != 1 || len(pod.Status.ContainerStatuses) != 1 {
		t.Fatalf("kubemon pod has %d containers, %d statuses; want 1", len(pod.Spec.Containers), len(pod.Status.ContainerStatuses))
	}
	ct := pod.Spec.Containers[0]
	if ct.Image != "localhost/kubemon:dev" || pod.Spec.ServiceAccountName != "kubemon" {
		t.Errorf("image %q, service account %q", ct.Image, pod.Spec.ServiceAccountName)
	}
	if u := pod.Spec.SecurityContext.RunAsUser; u == nil || *u == 0 || ct.SecurityContext.ReadOnlyRootFilesystem == nil || !*ct.SecurityContext.ReadOnlyRootFilesystem {
		t.Errorf("security context: runAsUser %v, readOnlyRootFilesystem %v", u, ct.SecurityContext.ReadOnlyRootFilesystem)
	}
	for _, a := range ct.Args {
		if a == "--kubelet-insecure-tls" || a == "--auth=none" {
			t.Errorf("the pod runs with %s", a)
		}
	}
	if st := pod.Status.ContainerStatuses[0]; !st.Ready || st.RestartCount != 0 {
		t.Errorf("kubemon container ready=%v restarts=%d", st.Ready, st.RestartCount)
	}

	rev, err := exec.Command("git", "-C", c.repo, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-parse: %v", err)
	}
	head := strings.TrimSpace(string(rev))
	if v := c.kubectl(t, "-n", "kube-system", "exec", "deployment/kubemon", "--", "/kubemon", "version"); !strings.Contains(v, head) {
		t.Errorf("kubemon version in the image: %q, want revision %s", v, head)
	}
	km := c.kubemon(t)
	code, b := km.get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics with the viewer token: %d %s", code, b)
	}
	if !regexp.MustCompile(`kubemon_build_info\{[^}]*revision="` + head + `"`).Match(b) {
		t.Errorf("kubemon_build_info does not carry revision %s", head)
	}
}

// runProbe runs the probe image as a pod (with the ServiceAccount sa, or
// no token when sa is "") that GETs each URL, and returns the status code
// it got for each.
func runProbe(t *testing.T, c *cluster, name, sa string, urls ...string) map[string]string {
	t.Helper()
	mount := "false"
	if sa != "" {
		mount = "true"
	} else {
		sa = "default"
	}
	args, _ := json.Marshal(urls)
	c.kubectl(t, "-n", "default", "delete", "pod", name, "--ignore-not-found", "--wait=true")
	c.apply(t, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: default}
spec:
  serviceAccountName: %s
  automountServiceAccountToken: %s
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: probe
    image: localhost/probe:kubemon
    imagePullPolicy: Never
    args: %s
`, name, sa, mount, args))
	t.Cleanup(func() {
		_, _ = kubectlWith(c.dir+"/kubeconfig", "-n", "default", "delete", "pod", name, "--wait=false")
	})
	c.kubectl(t, "-n", "default", "wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/"+name, "--timeout=90s")
	got := map[string]string{}
	s := bufio.NewScanner(strings.NewReader(c.kubectl(t, "-n", "default", "logs", name)))
	for s.Scan() {
		code, u, _ := strings.Cut(s.Text(), " ")
		got[strings.TrimSuffix(strings.Fields(u + " ")[0], ":")] = code
	}
	return got
}

// TestHTTPAPIAuth: kubemon's HTTP API answers pods only with a token that
// Kubernetes authenticates and the kubemon-viewer role authorizes; the
// probes stay open; people reach it through kubectl proxy under their own
// RBAC.
func TestHTTPAPIAuth(t *testing.T) {
	c := upCluster(t)
	c.apply(t, `apiVersion: v1
kind: ServiceAccount
metadata: {name: norole, namespace: default}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: grafana, namespace: default}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: grafana-kubemon-viewer}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kubemon-viewer}
subjects: [{kind: ServiceAccount, name: grafana, namespace: default}]
`)
	// Through the Service (kube-proxy), as clients in the cluster call it.
	ip := strings.TrimSpace(c.kubectl(t, "-n", "kube-system", "get", "service", "kubemon", "-o", "jsonpath={.spec.clusterIP}"))
	base := "http://" + ip
	promql := base + "/api/v1/query?query=" + url.QueryEscape("sum("+name(model.LevelNode, model.CPUUsageRate)+")")
	modelAPI := base + "/api/v1/model/nodes/"
	metrics := base + "/metrics"
	health := base + "/healthz"
	// The alerting and events APIs (issue 12) show cluster data too.
	rules, alerts, events := base+"/api/v1/rules", base+"/api/v1/alerts", base+"/api/v1/events?namespace=kube-system"
	data := []string{promql, modelAPI, metrics, rules, alerts, events}
	for _, tc := range []struct {
		pod, sa string
		data    string // status of the data endpoints
	}{
		{"probe-anonymous", "", "401"},
		{"probe-norole", "norole", "403"},
		{"probe-viewer", "grafana", "200"},
	} {
		got := runProbe(t, c, tc.pod, tc.sa, append(data, health)...)
		if len(got) != len(data)+1 {
			t.Errorf("%s: %d answers, want %d: %v", tc.pod, len(got), len(data)+1, got)
		}
		for _, u := range data {
			if got[u] != tc.data {
				t.Errorf("%s: GET %s: %q, want %s", tc.pod, u, got[u], tc.data)
			}
		}
		if got[health] != "200" {
			t.Errorf("%s: GET %s: %q, want 200 (probes are open)", tc.pod, health, got[health])
		}
	}
	logs := c.kubemonLogs(t)
	for _, want := range []map[string]any{
		{"msg": "http request not authenticated", "status": 401, "path": "/api/v1/query"},
		{"msg": "http request forbidden", "status": 403, "user": "system:serviceaccount:default:norole", "path": "/api/v1/model/nodes/"},
	} {
		if !logged(logs, want) {
			t.Errorf("kubemon's log (%d lines) has no line with %v", len(logs), want)
		}
	}

	// A person, through kubectl proxy and the kubemon.io APIService: the
	// cluster admin reads, a user without the role is refused.
	query := "/apis/kubemon.io/v1alpha1/api/v1/query?query=" + url.QueryEscape("sum("+name(model.LevelNode, model.CPUUsageRate)+")")
	admin := kubectlProxy(t, c.dir+"/kubeconfig")
	code, body := httpGet(t, admin+query)
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []sample `json:"result"`
		} `json:"data"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &r) != nil || r.Status != "success" || len(r.Data.Result) != 1 || !(r.Data.Result[0].v(t) > 0) {
		t.Errorf("admin through kubectl proxy: %d %s", code, body)
	}
	if code, body := httpGet(t, admin+"/apis/kubemon.io/v1alpha1/api/v1/model/nodes/"); code != http.StatusOK || !strings.Contains(string(body), "kmnode1") {
		t.Errorf("admin through kubectl proxy, model API: %d %s", code, body)
	}
	nobody := kubectlProxy(t, c.kubeconfigFor(t, "default", "norole"))
	if code, body := httpGet(t, nobody+query); code != http.StatusForbidden {
		t.Errorf("user without the role through kubectl proxy: %d %s, want 403", code, body)
	}
	viewer := kubectlProxy(t, c.kubeconfigFor(t, "default", "grafana"))
	if code, body := httpGet(t, viewer+query); code != http.StatusOK {
		t.Errorf("kubemon-viewer through kubectl proxy: %d %s, want 200", code, body)
	}
}

// kubectlProxy runs `kubectl proxy` with kubeconfig on a free port and
// returns its base URL; it stops with the test.
func kubectlProxy(t *testing.T, kubeconfig string) string {
	t.Helper()
	cmd := exec.Command("kubectl", "--kubeconfig", kubeconfig, "proxy", "--port=0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	found := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			if m := regexp.MustCompile(`Starting to serve on (\S+)`).FindStringSubmatch(s.Text()); m != nil {
				found <- "http://" + m[1]
			}
		}
	}()
	select {
	case u := <-found:
		return u
	case <-time.After(20 * time.Second):
		t.Fatal("kubectl proxy printed no address in 20 s")
		return ""
	}
}

func httpGet(t *testing.T, u string) (int, []byte) {
	t.Helper()
	c := &http.Client{Timeout: 20 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
