package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/notify"
	"github.com/kubemon/kubemon/internal/testutil/amserver"
)

// hookReceiver is a webhook on loopback recording every message.
type hookReceiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	msgs []notify.WebhookMessage
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m notify.WebhookMessage
		if err := json.Unmarshal(b, &m); err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("webhook got %s %s (%s): %v", r.Method, b, r.Header.Get("Content-Type"), err)
			http.Error(w, "bad message", http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.msgs = append(h.msgs, m)
		h.mu.Unlock()
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// alerts returns the alerts of alertname received with status.
func (h *hookReceiver) alerts(alertname, status string) []notify.WebhookAlert {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []notify.WebhookAlert
	for _, m := range h.msgs {
		for _, a := range m.Alerts {
			if a.Labels["alertname"] == alertname && a.Status == status {
				out = append(out, a)
			}
		}
	}
	return out
}

// amAlert finds the alerts of alertname at the Alertmanager whose labels
// include kv.
func amAlert(t *testing.T, am *amserver.Server, alertname string, kv ...string) []amserver.Alert {
	t.Helper()
	all, err := am.Alerts()
	if err != nil {
		t.Fatal(err)
	}
	var out []amserver.Alert
next:
	for _, a := range all {
		if a.Labels["alertname"] != alertname {
			continue
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if a.Labels[kv[i]] != kv[i+1] {
				continue next
			}
		}
		out = append(out, a)
	}
	return out
}

// apiAlert is an alert of kubemon's /api/v1/alerts.
type apiAlert struct {
	Labels   map[string]string `json:"labels"`
	State    string            `json:"state"`
	ActiveAt time.Time         `json:"activeAt"`
	Value    string            `json:"value"`
}

func (p *proc) alerts(t *testing.T) []apiAlert {
	t.Helper()
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Alerts []apiAlert `json:"alerts"`
		} `json:"data"`
	}
	p.getJSON(t, "/api/v1/alerts", &r)
	if r.Status != "success" {
		t.Fatalf("/api/v1/alerts: %+v", r)
	}
	return r.Data.Alerts
}

// ruleNames lists "group/rule" of kubemon's /api/v1/rules with each rule's
// last evaluation.
func (p *proc) ruleNames(t *testing.T) map[string]time.Time {
	t.Helper()
	var r struct {
		Data struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []struct {
					Name           string    `json:"name"`
					Health         string    `json:"health"`
					LastEvaluation time.Time `json:"lastEvaluation"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	p.getJSON(t, "/api/v1/rules", &r)
	out := map[string]time.Time{}
	for _, g := range r.Data.Groups {
		for _, rule := range g.Rules {
			out[g.Name+"/"+rule.Name] = rule.LastEvaluation
		}
	}
	return out
}

func writeRules(t *testing.T, path, content string) {
	t.Helper()
	// Written beside and renamed, as an editor or a ConfigMap update does,
	// so that no poll reads half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestAlerts runs kubemon demo (constant mode, a 2 s interval) with the
// default rule pack and rule files, sending to a real Alertmanager
// (Debian's prometheus-alertmanager on loopback) and to a webhook:
//   - a rule true over a known window of time fires at Alertmanager within
//     its for plus one interval of the window's start, with its labels,
//     the external label and annotations filled from the store, and is
//     resolved there within an interval of the window's end; the webhook
//     gets it firing and resolved;
//   - a rule on a kubelet that stops answering (the simulator's node fault)
//     fires and resolves when the kubelet is back;
//   - a rule file turned bad while kubemon runs is refused with its line
//     (log, kubemon_rules_last_reload_successful 0, SIGHUP too), and its
//     rule keeps firing; fixed, it loads;
//   - the default pack's KubemonContainerCrashLooping fires at
//     Alertmanager within its for plus one interval of a simulated crash
//     loop (a container restarted three times).
func TestAlerts(t *testing.T) {
	am := amserver.Start(t)
	hook := newHookReceiver(t)
	dir := t.TempDir()
	const (
		interval = 2 * time.Second
		hold     = 4 * time.Second // the for: of the e2e rules
	)
	uptime := name(model.LevelNode, model.Uptime)
	from := time.Now().Add(40 * time.Second).Truncate(time.Second)
	to := from.Add(20 * time.Second)
	rulesFile := filepath.Join(dir, "e2e.yml")
	writeRules(t, rulesFile, fmt.Sprintf(`groups:
  - name: e2e
    rules:
      - alert: E2EWindow
        expr: count(%[1]s) and on() (vector(time()) >= %[2]d < %[3]d)
        for: 4s
        labels:
          severity: page
        annotations:
          summary: "{{ $value }} nodes report, {{ $externalLabels.cluster }}"
      - alert: E2EKubeletDown
        expr: time() - timestamp(%[1]s) > 8
        for: 2s
        labels:
          severity: page
        annotations:
          summary: "kubelet of {{ $labels.%[4]s }} silent for {{ $value }} s"
`, uptime, from.Unix(), to.Unix(), model.LabelNode))
	extra := filepath.Join(dir, "extra-1.yml")
	writeRules(t, extra, "groups:\n  - name: extra\n    rules:\n      - alert: E2EAlwaysOn\n        expr: vector(1)\n        for: 0s\n")

	p := startDemo(t, "--nodes", "3", "--pods-per-node", "2", "--sim-mode", "constant", "--interval", interval.String(),
		"--data-dir", filepath.Join(dir, "data"), "--rules", rulesFile, "--rules", filepath.Join(dir, "extra-*.yml"),
		"--alertmanager-url", am.URL(), "--alert-webhook-url", hook.srv.URL+"/hook", "--alert-external-label", "cluster=e2e")

	// A crash loop: three restarts of one container, at once. It fires
	// two minutes (the pack's for) later, checked at the end.
	waitFor(t, 30*time.Second, "the first samples", func() bool { return len(p.query(t, sel(model.LevelContainer, model.Restarts))) > 0 })
	c := p.query(t, sel(model.LevelContainer, model.Restarts))[0].Metric
	ns, pod, ctr := c[model.LabelNamespace], c[model.LabelPod], c[model.LabelContainer]
	for range 3 {
		p.post(t, "/sim/restart?"+url.Values{"namespace": {ns}, "pod": {pod}, "container": {ctr}}.Encode())
	}
	crashSel := sel(model.LevelContainer, model.Restarts, model.LabelNamespace, ns, model.LabelPod, pod, model.LabelContainer, ctr)
	var crashFrom time.Time // when the pack's expression first held
	waitFor(t, 30*time.Second, "the restarts in the store", func() bool {
		r := p.query(t, fmt.Sprintf("max_over_time(%[1]s[15m]) - min_over_time(%[1]s[15m]) >= 2", crashSel))
		crashFrom = time.Now()
		return len(r) == 1
	})

	t.Run("window", func(t *testing.T) {
		var seen time.Time
		var got []amserver.Alert
		waitFor(t, time.Until(from)+hold+interval+30*time.Second, "E2EWindow at Alertmanager", func() bool {
			got = amAlert(t, am, "E2EWindow")
			seen = time.Now()
			return len(got) > 0
		})
		a := got[0]
		if len(got) != 1 || a.Labels["severity"] != "page" || a.Labels["cluster"] != "e2e" || a.Annotations["summary"] != "3 nodes report, e2e" || a.Status.State != "active" {
			t.Errorf("E2EWindow at Alertmanager: %+v", got)
		}
		// Fired (startsAt) within for plus one interval of the window's
		// start, and delivered within seconds of firing.
		if a.StartsAt.Before(from) || a.StartsAt.After(from.Add(hold+interval)) {
			t.Errorf("E2EWindow fired at %s, want within %s + %s of %s", a.StartsAt, hold, interval, from)
		}
		if lag := seen.Sub(a.StartsAt); lag > 5*time.Second {
			t.Errorf("E2EWindow reached Alertmanager %s after it fired", lag)
		}
		for _, x := range p.alerts(t) {
			if x.Labels["alertname"] == "E2EWindow" && (x.State != "firing" || a.StartsAt.Sub(x.ActiveAt) > hold+interval || x.Value != "3e+00") {
				t.Errorf("/api/v1/alerts: %+v (fired at %s)", x, a.StartsAt)
			}
		}
		waitFor(t, time.Until(to)+interval+30*time.Second, "E2EWindow resolved at Alertmanager", func() bool {
			return len(amAlert(t, am, "E2EWindow")) == 0
		})
		if late := time.Since(to); late > interval+5*time.Second {
			t.Errorf("E2EWindow resolved %s after its window ended", late)
		}
		// Long before its endsAt while firing (4 × the 1 m resend delay):
		// resolved, not expired.
		waitFor(t, 10*time.Second, "the webhook's resolved notification", func() bool { return len(hook.alerts("E2EWindow", "resolved")) == 1 })
		fired := hook.alerts("E2EWindow", "firing")
		if len(fired) != 1 || fired[0].Labels["cluster"] != "e2e" || fired[0].Annotations["summary"] != "3 nodes report, e2e" || fired[0].StartsAt.Sub(a.StartsAt).Abs() > time.Millisecond {
			t.Errorf("webhook firing notifications %+v, want one like Alertmanager's %+v", fired, a)
		}
		if r := hook.alerts("E2EWindow", "resolved")[0]; r.EndsAt.Before(to) || r.Fingerprint != fired[0].Fingerprint {
			t.Errorf("webhook resolved notification %+v", r)
		}
	})

	t.Run("kubelet down", func(t *testing.T) {
		node := p.query(t, uptime)[0].Metric[model.LabelNode]
		p.post(t, "/sim/fault?"+url.Values{"node": {node}, "fault": {"down"}}.Encode())
		down := time.Now()
		var got []amserver.Alert
		waitFor(t, 60*time.Second, "E2EKubeletDown at Alertmanager", func() bool {
			got = amAlert(t, am, "E2EKubeletDown", model.LabelNode, node)
			return len(got) > 0
		})
		// Silent for 8 s, then the for (2 s), an interval, a scrape's.
		if took := time.Since(down); took > 8*time.Second+2*time.Second+2*interval+5*time.Second {
			t.Errorf("E2EKubeletDown reached Alertmanager %s after the kubelet stopped answering", took)
		}
		if others := amAlert(t, am, "E2EKubeletDown"); len(others) != 1 {
			t.Errorf("E2EKubeletDown for %d nodes, want only %s: %+v", len(others), node, others)
		}
		p.post(t, "/sim/fault?"+url.Values{"node": {node}, "fault": {"none"}}.Encode())
		back := time.Now()
		waitFor(t, 60*time.Second, "E2EKubeletDown resolved at Alertmanager", func() bool {
			return len(amAlert(t, am, "E2EKubeletDown")) == 0
		})
		if took := time.Since(back); took > 2*interval+5*time.Second {
			t.Errorf("E2EKubeletDown resolved %s after the kubelet answered again", took)
		}
	})

	t.Run("bad rule file", func(t *testing.T) {
		waitFor(t, 30*time.Second, "E2EAlwaysOn at Alertmanager", func() bool { return len(amAlert(t, am, "E2EAlwaysOn")) == 1 })
		writeRules(t, extra, "groups:\n  - name: extra\n    rules:\n      - alert: E2EAlwaysOn\n        expr: vector(1) +\n")
		waitFor(t, 30*time.Second, "the bad file refused", func() bool {
			return p.metric(t, "kubemon_rules_last_reload_successful") == 0 && p.metric(t, `kubemon_rules_reloads_total{result="failure"}`) == 1
		})
		// (the log quotes the error: \" for ")
		line := regexp.MustCompile(regexp.QuoteMeta(extra) + `:5:15: group \\?"extra\\?", rule 1, \\?"E2EAlwaysOn\\?": could not parse expression`)
		if !line.MatchString(p.Logs()) {
			t.Errorf("no log of the bad file with its line (%s); logs:\n%s", line, p.Logs())
		}
		// SIGHUP reloads; the file is still bad.
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "the SIGHUP reload", func() bool { return p.metric(t, `kubemon_rules_reloads_total{result="failure"}`) == 2 })
		// The rules loaded before keep evaluating, and the alert firing.
		before := p.ruleNames(t)["extra/E2EAlwaysOn"]
		waitFor(t, 30*time.Second, "E2EAlwaysOn evaluated after the bad file", func() bool { return p.ruleNames(t)["extra/E2EAlwaysOn"].After(before) })
		if len(amAlert(t, am, "E2EAlwaysOn")) != 1 {
			t.Errorf("E2EAlwaysOn left Alertmanager after its file went bad")
		}
		writeRules(t, extra, "groups:\n  - name: extra\n    rules:\n      - alert: E2EAlwaysOnFixed\n        expr: vector(1)\n")
		waitFor(t, 30*time.Second, "the fixed file loaded", func() bool {
			_, ok := p.ruleNames(t)["extra/E2EAlwaysOnFixed"]
			return ok && p.metric(t, "kubemon_rules_last_reload_successful") == 1
		})
		if _, ok := p.ruleNames(t)["extra/E2EAlwaysOn"]; ok {
			t.Errorf("E2EAlwaysOn still evaluated after its file replaced it")
		}
	})

	t.Run("crash loop", func(t *testing.T) {
		const packHold = 2 * time.Minute // KubemonContainerCrashLooping's for:
		var got []amserver.Alert
		waitFor(t, time.Until(crashFrom)+packHold+interval+30*time.Second, "KubemonContainerCrashLooping at Alertmanager", func() bool {
			got = amAlert(t, am, "KubemonContainerCrashLooping", model.LabelNamespace, ns, model.LabelPod, pod, model.LabelContainer, ctr)
			return len(got) > 0
		})
		if late := time.Since(crashFrom); late > packHold+interval+5*time.Second {
			t.Errorf("KubemonContainerCrashLooping reached Alertmanager %s after the restarts were stored, want within %s + %s", late, packHold, interval)
		}
		a := got[0]
		if a.Labels["severity"] != "warning" || a.Labels["cluster"] != "e2e" || !strings.Contains(a.Annotations["description"], "restarted 3 times") ||
			!strings.HasSuffix(a.Annotations["runbook_url"], "#kubemoncontainercrashlooping") {
			t.Errorf("KubemonContainerCrashLooping at Alertmanager: %+v", a)
		}
	})
}
