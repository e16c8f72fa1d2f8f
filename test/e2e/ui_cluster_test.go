package e2e

import (
	"fmt"
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
// credentials instead of failing silently. The Alerts page lists the default
// rule pack. A real pod's events — Scheduled, Pulled, Created, Started, and
// Killing once it is deleted — appear on its page, equal to what
// /api/v1/events answers through the proxy.
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

	// The Alerts page: the default rule pack, evaluated.
	b.open(t, base+"#/alerts")
	if n := eval[int](t, b, `document.querySelectorAll('[data-testid="table-rules"] [data-testid="row"]').length`); n == 0 {
		t.Errorf("through kubectl proxy the Alerts page lists no rules")
	}
	b.screenshot(t, "cluster-alerts")

	checkPodEventsPage(t, c, b, base)

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

// checkPodEventsPage starts a real pod and checks, through kubectl proxy at
// base, that its page shows its events as kubemon's API answers them: the
// scheduler's Scheduled and the kubelet's Pulled, Created and Started, then
// Killing once the pod is deleted.
func checkPodEventsPage(t *testing.T, c *cluster, b *browser, base string) {
	t.Helper()
	name := fmt.Sprintf("ui-events-%d", time.Now().UnixNano()%1_000_000)
	c.apply(t, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: default, labels: {app: ui-events}}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers:
  - name: burn
    image: localhost/loadgen:kubemon
    imagePullPolicy: Never
    args: ["-millicores", "10", "-mebibytes", "4"]
`, name))
	t.Cleanup(func() { c.kubectl(t, "delete", "pod", name, "--ignore-not-found", "--wait=false") })
	c.kubectl(t, "wait", "--for=condition=Ready", "pod/"+name, "--timeout=120s")
	// kubemon's API through the same proxy, as the page reads it.
	api := &proc{base: strings.TrimSuffix(base, "/")}
	byPod := "api/v1/events?namespace=default&kind=Pod&name=" + name
	reasons := func() map[string]bool {
		m := map[string]bool{}
		for _, e := range uiEvents(t, api, byPod) {
			m[e.Reason] = true
		}
		return m
	}
	started := []string{"Scheduled", "Pulled", "Created", "Started"}
	waitFor(t, 60*time.Second, strings.Join(started, ", ")+" of "+name+" in kubemon", func() bool {
		m := reasons()
		for _, r := range started {
			if !m[r] {
				return false
			}
		}
		return true
	})
	pg := uiPage{name: "real pod", route: "#/pod/default/" + name}
	shown := func(want []string) {
		t.Helper()
		b.open(t, base+pg.route)
		rows, _ := checkEventsTable(t, b, api, pg)
		got := eval[[]string](t, b, `[...document.querySelectorAll('[data-testid="table-events"] [data-testid="row"] [data-col="reason"]')].map(td => td.innerText)`)
		for _, r := range want {
			if !strings.Contains(" "+strings.Join(got, " ")+" ", " "+r+" ") {
				t.Errorf("the page of the real pod %s shows the events %q, no %s", name, got, r)
			}
		}
		t.Logf("the real pod %s's page shows %d events equal to the API's: %q", name, rows, got)
	}
	shown(started)
	b.screenshot(t, "cluster-pod-events")

	c.kubectl(t, "delete", "pod", name, "--wait=true", "--timeout=60s")
	waitFor(t, 60*time.Second, "Killing of "+name+" in kubemon", func() bool { return reasons()["Killing"] })
	shown(append(started, "Killing"))
	b.screenshot(t, "cluster-pod-events-killed")
}
