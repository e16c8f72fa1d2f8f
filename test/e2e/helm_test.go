package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHelmInstall: the Helm chart installs kubemon as the Kustomize base
// does (here with its generated serving certificate, so the APIServices
// verify TLS), `kubectl top` and the HTTP API work against its pod; the
// Kustomize install is put back afterwards for the other tests.
func TestHelmInstall(t *testing.T) {
	c := upCluster(t)
	if _, err := exec.LookPath("helm"); err != nil {
		t.Skip("SKIPPED: helm not on PATH; run hack/helm.sh (hack/test.sh does)")
	}
	overlay := filepath.Join(c.dir, "overlay")
	if _, err := os.Stat(overlay); err != nil {
		t.Skipf("SKIPPED: no Kustomize install to swap out (%v): the cluster runs kubemon on the host", err)
	}
	c.kubectl(t, "delete", "-k", overlay, "--wait=true")
	c.kubectl(t, "-n", "kube-system", "wait", "--for=delete", "pod", "-l", "app.kubernetes.io/name=kubemon", "--timeout=60s")
	defer c.installKustomize(t, overlay)

	helm := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("helm", append([]string{"--kubeconfig", filepath.Join(c.dir, "kubeconfig")}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	helm("install", "kubemon", filepath.Join(c.repo, "deploy/helm/kubemon"), "-n", "kube-system",
		"--set", "interval=5s", "--set", "tls.generate=true", "--wait", "--timeout", "3m")
	defer helm("uninstall", "kubemon", "-n", "kube-system", "--wait", "--timeout", "2m")

	for _, svc := range []string{"v1beta1.metrics.k8s.io", "v1alpha1.kubemon.io"} {
		var as struct {
			Spec struct {
				InsecureSkipTLSVerify bool   `json:"insecureSkipTLSVerify"`
				CABundle              string `json:"caBundle"`
			} `json:"spec"`
		}
		if err := json.Unmarshal([]byte(c.kubectl(t, "get", "apiservice", svc, "-o", "json")), &as); err != nil {
			t.Fatal(err)
		}
		if as.Spec.InsecureSkipTLSVerify || as.Spec.CABundle == "" {
			t.Errorf("APIService %s: insecureSkipTLSVerify %v, caBundle %d bytes; want verified TLS", svc, as.Spec.InsecureSkipTLSVerify, len(as.Spec.CABundle))
		}
		waitFor(t, 2*time.Minute, "APIService "+svc+" Available", func() bool {
			out, _ := kubectlWith(filepath.Join(c.dir, "kubeconfig"), "get", "apiservice", svc, "-o", `jsonpath={.status.conditions[?(@.type=="Available")].status}`)
			return out == "True"
		})
	}
	var top string
	waitFor(t, 2*time.Minute, "kubectl top nodes against the chart's kubemon", func() bool {
		out, err := kubectlWith(filepath.Join(c.dir, "kubeconfig"), "top", "nodes", "--no-headers")
		top = out
		return err == nil && strings.HasPrefix(out, "kmnode1 ")
	})
	t.Logf("kubectl top nodes (helm install): %s", strings.TrimSpace(top))
	waitFor(t, 2*time.Minute, "kubectl top pods -A to list kubemon's own pod", func() bool {
		out, err := kubectlWith(filepath.Join(c.dir, "kubeconfig"), "top", "pods", "-n", "kube-system", "-l", "app.kubernetes.io/instance=kubemon", "--no-headers")
		return err == nil && strings.HasPrefix(out, "kubemon-")
	})
	km := &proc{base: "http://" + c.podIP(t, "app.kubernetes.io/instance=kubemon") + ":8080", token: c.file(t, "viewer.token")}
	if code, b := km.get(t, "/api/v1/model/nodes/"); code != http.StatusOK || !strings.Contains(string(b), "kmnode1") {
		t.Errorf("model API with the viewer token: %d %s", code, b)
	}
	anon := &proc{base: km.base}
	if code, _ := anon.get(t, "/api/v1/model/nodes/"); code != http.StatusUnauthorized {
		t.Errorf("model API without a token: %d, want 401", code)
	}
}

// podIP is the IP of a ready, not terminating kube-system pod matching selector.
func (c *cluster) podIP(t *testing.T, selector string) string {
	t.Helper()
	pods := c.readyPods(t, selector)
	if len(pods) == 0 {
		t.Fatalf("no ready pod with %s", selector)
	}
	return pods[0].ip
}

// installKustomize applies the harness's overlay of deploy/ again and
// points kubemon.addr at the new pod once kubectl top works.
func (c *cluster) installKustomize(t *testing.T, overlay string) {
	t.Helper()
	c.kubectl(t, "apply", "-k", overlay)
	c.kubectl(t, "-n", "kube-system", "rollout", "status", "deployment/kubemon", "--timeout=180s")
	ip := c.podIP(t, "app.kubernetes.io/name=kubemon")
	for name, addr := range map[string]string{"kubemon.addr": ip + ":8080", "kubemon-metrics-api.addr": ip + ":4443"} {
		if err := os.WriteFile(filepath.Join(c.dir, name), []byte(addr+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 3*time.Minute, "kubectl top nodes after reinstalling from deploy/", func() bool {
		_, err := kubectlWith(filepath.Join(c.dir, "kubeconfig"), "top", "nodes")
		return err == nil
	})
}
