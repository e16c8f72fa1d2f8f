package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
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

// packRule is a rule of the default pack as /api/v1/rules lists it.
type packRule struct {
	Query    string
	Duration time.Duration // its for:
}

func (p *proc) packRule(t *testing.T, alert string) packRule {
	t.Helper()
	var r struct {
		Data struct {
			Groups []struct {
				File  string `json:"file"`
				Rules []struct {
					Name     string  `json:"name"`
					Query    string  `json:"query"`
					Duration float64 `json:"duration"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	p.getJSON(t, "/api/v1/rules", &r)
	for _, g := range r.Data.Groups {
		for _, rule := range g.Rules {
			if rule.Name == alert && g.File == "kubemon:default-rules.yml" {
				return packRule{Query: rule.Query, Duration: time.Duration(rule.Duration * float64(time.Second))}
			}
		}
	}
	t.Fatalf("the default pack has no rule %s", alert)
	return packRule{}
}

// holds reports whether kubemon's evaluation of q now selects a series
// with the labels kv; it may run outside the test's goroutine (no t).
func (p *proc) holds(q string, kv ...string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/api/v1/query?query="+url.QueryEscape(q), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Result []sample `json:"result"`
		} `json:"data"`
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("query %s: %s", q, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return false, fmt.Errorf("query %s: %w", q, err)
	}
next:
	for _, s := range r.Data.Result {
		for i := 0; i+1 < len(kv); i += 2 {
			if s.Metric[kv[i]] != kv[i+1] {
				continue next
			}
		}
		return true, nil
	}
	return false, nil
}

// watch follows one alert of the default pack from the start: when its
// condition first held in kubemon's store, and when Alertmanager first had
// it.
type watch struct {
	alert string
	kv    []string
	rule  packRule

	mu          sync.Mutex
	since, seen time.Time
	at          amserver.Alert
	err         error
}

// watchAlert polls every 250 ms until the test ends.
func watchAlert(t *testing.T, p *proc, am *amserver.Server, alert string, kv ...string) *watch {
	w := &watch{alert: alert, kv: kv, rule: p.packRule(t, alert)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			held, err := p.holds(w.rule.Query, kv...)
			all, aerr := am.Alerts()
			now := time.Now()
			w.mu.Lock()
			if err != nil || aerr != nil {
				w.err = errors.Join(err, aerr)
			}
			if held && w.since.IsZero() {
				w.since = now
			}
			for _, a := range all {
				if a.Labels["alertname"] == alert && w.seen.IsZero() && labelsHave(a.Labels, kv) {
					w.seen, w.at = now, a
				}
			}
			w.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	return w
}

// firesInTime waits until Alertmanager has w's alert: it must arrive
// within its for plus one interval (and slack, for a delivery, a poll, a
// loaded machine) of its condition first holding in kubemon's store, with
// a severity, a summary, its runbook and the external label cluster.
func firesInTime(t *testing.T, w *watch, interval, slack time.Duration, cluster string) amserver.Alert {
	t.Helper()
	waitFor(t, 6*time.Minute, w.alert+" at Alertmanager", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return !w.seen.IsZero()
	})
	w.mu.Lock()
	since, seen, a, err := w.since, w.seen, w.at, w.err
	w.mu.Unlock()
	if err != nil {
		t.Logf("%s: the last poll failed: %v", w.alert, err)
	}
	switch late := seen.Sub(since); {
	case since.IsZero() || since.After(seen):
		t.Errorf("%s reached Alertmanager at %s, before its condition was seen to hold (%s)", w.alert, seen, since)
	case late > w.rule.Duration+interval+slack:
		t.Errorf("%s reached Alertmanager %s after its condition held, want within its for (%s) plus an interval (%s)", w.alert, late, w.rule.Duration, interval)
	default:
		t.Logf("%s reached Alertmanager %s after its condition held (for: %s)", w.alert, late.Round(100*time.Millisecond), w.rule.Duration)
	}
	if a.Labels["severity"] == "" || a.Labels["cluster"] != cluster || a.Annotations["summary"] == "" ||
		!strings.HasSuffix(a.Annotations["runbook_url"], "#"+strings.ToLower(w.alert)) {
		t.Errorf("%s at Alertmanager: %+v", w.alert, a)
	}
	return a
}

func labelsHave(ls map[string]string, kv []string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		if ls[kv[i]] != kv[i+1] {
			return false
		}
	}
	return true
}

// TestAlerts runs kubemon demo (constant mode, a 2 s interval) with the
// default rule pack and rule files, sending to a real Alertmanager
// (Debian's prometheus-alertmanager on loopback) and to a webhook:
//   - a rule true over a known window of time fires at Alertmanager within
//     its for plus one interval of the window's start, with its labels,
//     the external label and annotations filled from the store, and is
//     resolved there within an interval of the window's end; the webhook
//     gets it firing and resolved;
//   - a rule file turned bad while kubemon runs is refused with its line
//     (log, kubemon_rules_last_reload_successful 0, SIGHUP too), and its
//     rule keeps firing; fixed, it loads;
//   - the default pack's alerts for the simulator's faults — an OOM kill,
//     a crash loop, a kubelet that stops answering — reach Alertmanager
//     within their for plus one interval of their condition holding in the
//     store, and are resolved there after recovery.
func TestAlerts(t *testing.T) {
	t.Parallel() // about 8 minutes, mostly waiting for the pack's windows
	am := amserver.Start(t)
	hook := newHookReceiver(t)
	dir := t.TempDir()
	const (
		interval = 2 * time.Second
		hold     = 4 * time.Second // the for: of E2EWindow
		slack    = 5 * time.Second // a delivery, a poll, a loaded machine
	)
	from := time.Now().Add(40 * time.Second).Truncate(time.Second)
	to := from.Add(20 * time.Second)
	rulesFile := filepath.Join(dir, "e2e.yml")
	writeRules(t, rulesFile, fmt.Sprintf(`groups:
  - name: e2e
    rules:
      - alert: E2EWindow
        expr: count(%s) and on() (vector(time()) >= %d < %d)
        for: 4s
        labels:
          severity: page
        annotations:
          summary: "{{ $value }} nodes report, {{ $externalLabels.cluster }}"
`, name(model.LevelNode, model.Uptime), from.Unix(), to.Unix()))
	extra := filepath.Join(dir, "extra-1.yml")
	writeRules(t, extra, "groups:\n  - name: extra\n    rules:\n      - alert: E2EAlwaysOn\n        expr: vector(1)\n        for: 0s\n")

	p := startDemo(t, "--nodes", "3", "--pods-per-node", "2", "--sim-mode", "constant", "--interval", interval.String(),
		"--rules.evaluation-interval", interval.String(), "--data-dir", filepath.Join(dir, "data"), "--rules", rulesFile, "--rules", filepath.Join(dir, "extra-*.yml"),
		"--alertmanager-url", am.URL(), "--alert-webhook-url", hook.srv.URL+"/hook", "--alert-external-label", "cluster=e2e")

	// The faults, at once, each on its own node: an OOM kill of one
	// container, a crash loop of another, and a third node's kubelet down.
	restarts := sel(model.LevelContainer, model.Restarts)
	waitFor(t, 30*time.Second, "containers on 3 nodes", func() bool {
		nodes := map[string]bool{}
		for _, s := range p.query(t, restarts) {
			nodes[s.Metric[model.LabelNode]] = true
		}
		return len(nodes) == 3
	})
	byNode := map[string]map[string]string{}
	for _, s := range p.query(t, restarts) {
		byNode[s.Metric[model.LabelNode]] = s.Metric
	}
	var nodes []string
	for n := range byNode {
		nodes = append(nodes, n)
	}
	slices.Sort(nodes)
	oomC, crashC, downNode := byNode[nodes[0]], byNode[nodes[1]], nodes[2]
	ctrKV := func(c map[string]string) []string {
		return []string{model.LabelNamespace, c[model.LabelNamespace], model.LabelPod, c[model.LabelPod], model.LabelContainer, c[model.LabelContainer]}
	}
	fault := func(c map[string]string, f string) {
		t.Helper()
		p.post(t, "/sim/fault?"+url.Values{"pod": {c[model.LabelNamespace] + "/" + c[model.LabelPod]}, "container": {c[model.LabelContainer]}, "fault": {f}}.Encode())
	}
	fault(oomC, "oom")
	oomAt := time.Now()
	fault(crashC, "crashloop")
	var crashOver time.Time
	p.post(t, "/sim/fault?"+url.Values{"node": {downNode}, "fault": {"down"}}.Encode())
	downAt := time.Now()

	oomW := watchAlert(t, p, am, "KubemonContainerOOMKilled", ctrKV(oomC)...)
	crashW := watchAlert(t, p, am, "KubemonContainerCrashLooping", ctrKV(crashC)...)
	downW := watchAlert(t, p, am, "KubemonKubeletDown", model.LabelNode, downNode)

	// resolves waits until Alertmanager no longer has the alert (it was
	// sent resolved: its endsAt while firing is minutes ahead), at most
	// within after recovered.
	resolves := func(t *testing.T, recovered time.Time, within time.Duration, alert string, kv ...string) {
		t.Helper()
		waitFor(t, time.Until(recovered.Add(within+slack)), alert+" resolved at Alertmanager", func() bool { return len(amAlert(t, am, alert, kv...)) == 0 })
		t.Logf("%s resolved at Alertmanager %s after recovery", alert, time.Since(recovered).Round(100*time.Millisecond))
	}

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

	t.Run("OOM kill", func(t *testing.T) {
		a := firesInTime(t, oomW, interval, slack, "e2e")
		if !strings.Contains(a.Annotations["description"], "killed for want of memory 1 times") {
			t.Errorf("KubemonContainerOOMKilled's description %q, want one kill", a.Annotations["description"])
		}
	})

	t.Run("crash loop", func(t *testing.T) {
		a := firesInTime(t, crashW, interval, slack, "e2e")
		if !strings.Contains(a.Annotations["description"], "CrashLoopBackOff") {
			t.Errorf("KubemonContainerCrashLooping's description %q", a.Annotations["description"])
		}
		fault(crashC, "none") // the run after the current back-off goes on
		crashOver = time.Now()
	})

	t.Run("kubelet down", func(t *testing.T) {
		firesInTime(t, downW, interval, slack, "e2e")
		if took := time.Since(downAt); took < 3*time.Minute {
			t.Errorf("KubemonKubeletDown fired %s after the kubelet stopped answering, before its for (3m)", took)
		}
		if others := amAlert(t, am, "KubemonKubeletDown"); len(others) != 1 {
			t.Errorf("KubemonKubeletDown for %d nodes, want only %s: %+v", len(others), downNode, others)
		}
		p.post(t, "/sim/fault?"+url.Values{"node": {downNode}, "fault": {"none"}}.Encode())
		// The next scrape stores node_kubelet_up 1: resolved at the next
		// evaluation.
		resolves(t, time.Now(), 2*interval, "KubemonKubeletDown", model.LabelNode, downNode)
	})

	t.Run("recovery", func(t *testing.T) {
		// The OOM kill leaves the 5-minute window; the crash loop's last
		// back-off (at most the 80 s one it was in) ends and its 5-minute
		// window passes.
		resolves(t, oomAt, 5*time.Minute+2*interval, "KubemonContainerOOMKilled", ctrKV(oomC)...)
		if crashOver.IsZero() {
			t.Fatal("the crash loop was not ended")
		}
		resolves(t, crashOver, 80*time.Second+5*time.Minute+2*interval, "KubemonContainerCrashLooping", ctrKV(crashC)...)
	})
}
