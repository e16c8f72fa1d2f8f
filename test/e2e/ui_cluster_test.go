package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestUIThroughKubectlProxy: the web UI of the kubemon installed in the
// test cluster, as a person opens it: through kubectl proxy and the
// kubemon.io APIService, under their own RBAC, with nothing configured for
// the sub-path. Every page of a click path loads without a console error or
// a failed request, down to a container of the real node. Through the
// apiserver's service proxy (which does not pass the caller's identity on)
// every asset still loads from under the proxy's path and the page asks for
// credentials instead of failing silently.
func TestUIThroughKubectlProxy(t *testing.T) {
	c := upCluster(t)
	proxy := kubectlProxy(t, c.dir+"/kubeconfig")
	b := newBrowser(t)

	base := proxy + "/apis/kubemon.io/v1alpha1/"
	b.open(t, base)
	b.screenshot(t, "cluster-overview")
	b.click(t, `a[href="#/nodes"]`)
	b.click(t, `[data-testid="table-nodes"] a[data-testid="link-node"]`)
	if hash := eval[string](t, b, `location.hash`); hash != "#/node/kmnode1" {
		t.Errorf("the node link led to %s, want #/node/kmnode1", hash)
	}
	b.click(t, `[data-testid="table-pods"] a[data-testid="link-pod"]`)
	b.click(t, `[data-testid="table-containers"] a[data-testid="link-container"]`)
	b.screenshot(t, "cluster-container")
	for _, r := range b.takeRequests() {
		if r != "about:blank" && !strings.HasPrefix(r, "data:") && !strings.HasPrefix(r, base) {
			t.Errorf("the UI requested %s, outside %s", r, base)
		}
	}
	if probs := b.takeProblems(); len(probs) > 0 {
		t.Errorf("through kubectl proxy: %q", probs)
	}

	// The service proxy: assets load, API calls are refused (401), and the
	// page says how to get in.
	svc := proxy + "/api/v1/namespaces/kube-system/services/kubemon:http/proxy/"
	b.do(t, "opening "+svc, navigateFresh(svc)...)
	waitFor(t, 30*time.Second, "the page's answer to the refused API calls", func() bool {
		return eval[string](t, b, `document.body.dataset.state || ""`) == "error"
	})
	panel := eval[string](t, b, `(document.querySelector('[data-testid="auth-panel"]') || {innerText: ""}).innerText`)
	if !strings.Contains(panel, "kubectl proxy") || !strings.Contains(panel, "/apis/kubemon.io/v1alpha1/") {
		t.Errorf("through the service proxy the page shows %q, want the way in (kubectl proxy, /apis/kubemon.io/v1alpha1/)", panel)
	}
	b.screenshot(t, "cluster-service-proxy")
	reqs := b.takeRequests()
	assets := 0
	for _, r := range reqs {
		if r == "about:blank" || strings.HasPrefix(r, "data:") {
			continue
		}
		if !strings.HasPrefix(r, svc) {
			t.Errorf("through the service proxy the UI requested %s, outside %s", r, svc)
		}
		if strings.Contains(r, "/proxy/ui/") {
			assets++
		}
	}
	if assets < 3 {
		t.Errorf("through the service proxy %d assets were requested, want the page's scripts and styles", assets)
	}
	refused := regexp.MustCompile(`^HTTP 401 for ` + regexp.QuoteMeta(svc) + `api/v1/`)
	for _, p := range b.takeProblems() {
		if !refused.MatchString(p) && !strings.Contains(p, "status of 401") {
			t.Errorf("through the service proxy: %s (only the API's 401s are expected)", p)
		}
	}
}
