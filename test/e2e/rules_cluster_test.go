package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/model"
)

// patchRules sets (content != "") or removes the file name of the
// installed kubemon's rules ConfigMap (deploy/kustomization.yaml's
// kubemon-rules).
func (c *cluster) patchRules(t *testing.T, name, content string) {
	t.Helper()
	if content == "" {
		c.kubectl(t, "-n", "kube-system", "patch", "configmap", "kubemon-rules", "--type", "json",
			"-p", fmt.Sprintf(`[{"op":"remove","path":"/data/%s"}]`, name))
		return
	}
	p, err := json.Marshal(map[string]any{"data": map[string]string{name: content}})
	if err != nil {
		t.Fatal(err)
	}
	c.kubectl(t, "-n", "kube-system", "patch", "configmap", "kubemon-rules", "--type", "merge", "-p", string(p))
}

// kubemonPod is the installed kubemon's pod name and its container's
// restart count.
func (c *cluster) kubemonPod(t *testing.T) (string, string) {
	t.Helper()
	out := strings.Fields(c.kubectl(t, "-n", "kube-system", "get", "pods", "-l", "app.kubernetes.io/name=kubemon",
		"-o", "jsonpath={range .items[*]}{.metadata.name} {.status.containerStatuses[0].restartCount}{\"\\n\"}{end}"))
	if len(out) != 2 {
		t.Fatalf("kubemon pods: %q, want one", out)
	}
	return out[0], out[1]
}

// TestRulesConfigMap: the kubemon installed from deploy/ takes its rules
// from the ConfigMap kubemon-rules, as a user edits it: a rule file added
// to the ConfigMap reaches the pod (a directory mount, so the kubelet
// updates it) and is evaluated without a restart — listed by
// /api/v1/rules, its recording rule's series stored with the value the
// query gives; the file turned bad is refused (the reload metrics) while
// the rule loaded before keeps evaluating; removed, the rule goes.
func TestRulesConfigMap(t *testing.T) {
	// Mostly waiting for the kubelet to update the volume (about a minute,
	// three times): run beside the simulator's tests, after every other
	// cluster test (none of them parallel), none of which may restart
	// kubemon while its rules file is bad.
	t.Parallel()
	c := upCluster(t)
	km := c.kubemon(t)
	pod, restarts := c.kubemonPod(t)
	const file, group, record = "e2e.yaml", "e2e-configmap", "e2e:node_uptime:count"
	// Its own interval: the installed kubemon evaluates the rest every minute.
	good := fmt.Sprintf("groups:\n  - name: %s\n    interval: 15s\n    rules:\n      - record: %s\n        expr: count(%s)\n",
		group, record, name(model.LevelNode, model.Uptime))
	t.Cleanup(func() {
		// Never leave a bad file behind: a kubemon restarted with one exits.
		_, _ = kubectlWith(c.dir+"/kubeconfig", "-n", "kube-system", "patch", "configmap", "kubemon-rules", "--type", "json",
			"-p", `[{"op":"remove","path":"/data/`+file+`"}]`)
	})
	c.patchRules(t, file, good)
	added := time.Now()
	// The kubelet refreshes a ConfigMap volume within its sync period (1 m)
	// plus its cache's TTL; kubemon looks every 5 s.
	var evaluated time.Time
	waitFor(t, 3*time.Minute, "the ConfigMap's rule in /api/v1/rules", func() bool {
		evaluated = km.ruleNames(t)[group+"/"+record]
		return !evaluated.IsZero()
	})
	t.Logf("the rule was evaluated %s after the ConfigMap was patched", time.Since(added).Round(time.Second))
	want := km.scalar(t, "count("+name(model.LevelNode, model.Uptime)+")")
	waitFor(t, time.Minute, record+" stored", func() bool {
		r := km.query(t, record)
		return len(r) == 1 && r[0].v(t) == want
	})
	if !(want >= 1) {
		t.Errorf("count of node series: %v", want)
	}

	failures := `kubemon_rules_reloads_total{result="failure"}`
	before := km.metric(t, failures)
	c.patchRules(t, file, strings.Replace(good, "expr: count(", "expr: count((", 1))
	waitFor(t, 3*time.Minute, "the bad file refused", func() bool {
		return km.metric(t, failures) > before && km.metric(t, "kubemon_rules_last_reload_successful") == 0
	})
	refused := time.Now()
	waitFor(t, time.Minute, "the rule evaluated after the bad file", func() bool {
		return km.ruleNames(t)[group+"/"+record].After(refused)
	})
	var logged bool
	for _, l := range c.kubemonLogs(t) {
		if msg, _ := l["err"].(string); strings.Contains(msg, file) && strings.Contains(msg, "parse") {
			logged = true
		}
	}
	if !logged {
		t.Errorf("kubemon's log has no line naming the bad %s and its parse error", file)
	}

	c.patchRules(t, file, "")
	waitFor(t, 3*time.Minute, "the rule removed", func() bool {
		_, ok := km.ruleNames(t)[group+"/"+record]
		return !ok && km.metric(t, "kubemon_rules_last_reload_successful") == 1
	})
	if p, r := c.kubemonPod(t); p != pod || r != restarts {
		t.Errorf("kubemon's pod %s (%s restarts) is now %s (%s restarts): the rules were to reload without a restart", pod, restarts, p, r)
	}
}
