package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	promrules "github.com/prometheus/prometheus/rules"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/store"
)

// env is a store, an engine and what a Manager needs of them.
type env struct {
	st     *store.Store
	engine *promql.Engine
	reg    *prometheus.Registry

	mu     sync.Mutex
	alerts []*promrules.Alert // every alert notified, in order
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{st: st, reg: prometheus.NewRegistry(), engine: promql.NewEngine(promql.EngineOpts{
		MaxSamples: 1e6, Timeout: 10 * time.Second, LookbackDelta: 5 * time.Minute,
	})}
	t.Cleanup(func() { e.engine.Close() })
	return e
}

func (e *env) options(files ...string) Options {
	return Options{
		Files: files, Interval: 100 * time.Millisecond, Engine: e.engine,
		Queryable: e.st.Queryable(), Appendable: e.st.DB(), Registerer: e.reg,
		PollInterval: 50 * time.Millisecond,
		Notify: func(_ context.Context, _ string, alerts ...*promrules.Alert) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.alerts = append(e.alerts, alerts...)
		},
	}
}

// notified returns the alerts notified so far.
func (e *env) notified() []*promrules.Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*promrules.Alert(nil), e.alerts...)
}

// query runs an instant query at now.
func (e *env) query(t *testing.T, q string) promql.Vector {
	t.Helper()
	qry, err := e.engine.NewInstantQuery(context.Background(), e.st.Queryable(), nil, q, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer qry.Close()
	res := qry.Exec(context.Background())
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	v, err := res.Vector()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// run runs m until the test ends.
func run(t *testing.T, m *Manager) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10 s of its context's end")
		}
	})
}

// writeFile replaces path's content at once (written beside, renamed), so
// that a poll never reads half a file.
func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

func waitUntil(t *testing.T, timeout time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// groupNames lists "file:group" of every group evaluated.
func groupNames(m *Manager) []string {
	var out []string
	for _, g := range m.RuleGroups() {
		out = append(out, filepath.Base(g.File())+":"+g.Name())
	}
	return out
}

func TestLoadGood(t *testing.T) {
	e := newEnv(t)
	m, err := New(e.options("testdata/good.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(groupNames(m), " "), "good.yml:example good.yml:example-slow"; got != want {
		t.Fatalf("groups %q, want %q", got, want)
	}
	g := m.RuleGroups()[1]
	if g.Interval() != time.Minute {
		t.Errorf("group %s: interval %s, want its own 1m", g.Name(), g.Interval())
	}
	if g := m.RuleGroups()[0]; g.Interval() != 100*time.Millisecond {
		t.Errorf("group %s: interval %s, want the default 100ms", g.Name(), g.Interval())
	}
	if n := len(m.AlertingRules()); n != 2 {
		t.Errorf("%d alerting rules, want 2", n)
	}
	if v := testutil.ToFloat64(m.reloadOK); v != 1 {
		t.Errorf("kubemon_rules_last_reload_successful %v, want 1", v)
	}
	if v := testutil.ToFloat64(m.ruleCount); v != 3 {
		t.Errorf("kubemon_rules_rules %v, want 3", v)
	}
}

// TestLoadBad: every bad file is refused with its name and the line of the
// problem, and New fails.
func TestLoadBad(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string // substrings of the error
	}{
		{"testdata/bad_expr.yml", []string{`testdata/bad_expr.yml:7:15: group "broken", rule 2, "Broken": could not parse expression`}},
		{"testdata/bad_yaml.yml", []string{`testdata/bad_yaml.yml: yaml: unmarshal errors:`, `line 7: mapping key "for" already defined at line 6`}},
		{"testdata/bad_field.yml", []string{"testdata/bad_field.yml: yaml: unmarshal errors:", "line 5: field expresion not found"}},
		{"testdata/missing.yml", []string{"testdata/missing.yml: no such rule file"}},
		{"testdata/notes.txt", []string{"testdata/notes.txt: a rule file must end in .yml or .yaml"}},
		{"testdata/[", []string{`rule files "testdata/[": syntax error in pattern`}},
	} {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			e := newEnv(t)
			_, err := New(e.options("testdata/good.yml", tc.file))
			if err == nil {
				t.Fatalf("New(%s): no error", tc.file)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "good.yml") {
				t.Errorf("error %q names the good file", err)
			}
		})
	}
}

// TestLoadErrorsAll: several bad files are all reported at once.
func TestLoadErrorsAll(t *testing.T) {
	e := newEnv(t)
	_, err := New(e.options("testdata/bad_expr.yml", "testdata/bad_yaml.yml"))
	if err == nil || !strings.Contains(err.Error(), "bad_expr.yml:7:") || !strings.Contains(err.Error(), "line 7: mapping key") {
		t.Fatalf("error %v: want both files' problems", err)
	}
}

func TestGlob(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"b.yaml", "a.yml", "README.md"} {
		src := "testdata/good.yml"
		if f == "README.md" {
			src = "testdata/notes.txt"
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e := newEnv(t)
	// The same file twice (through the glob and by name) is loaded once;
	// a glob matching nothing is no error.
	m, err := New(e.options(filepath.Join(dir, "*"), filepath.Join(dir, "a.yml"), filepath.Join(dir, "none-*.yml")))
	if err != nil {
		t.Fatal(err)
	}
	want := "a.yml:example a.yml:example-slow b.yaml:example b.yaml:example-slow"
	if got := strings.Join(groupNames(m), " "); got != want {
		t.Fatalf("groups %q, want %q", got, want)
	}
}

func TestTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.yml")
	if err := os.WriteFile(path, make([]byte, MaxFileBytes+1), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := New(newEnv(t).options(path))
	if err == nil || !strings.Contains(err.Error(), path+": larger than") {
		t.Fatalf("error %v, want the file named as too large", err)
	}
}

func TestGroupIntervalTooShort(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fast.yml")
	if err := os.WriteFile(path, []byte("groups:\n  - name: fast\n    interval: 10ms\n    rules:\n      - record: a:b\n        expr: vector(1)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := New(newEnv(t).options(path))
	if err == nil || !strings.Contains(err.Error(), path+`: group "fast": interval 10ms: want at least 1s`) {
		t.Fatalf("error %v", err)
	}
}

// TestRecordingRuleInStore: a recording rule over kubemon's series writes
// its result into the store, where PromQL reads it back.
func TestRecordingRuleInStore(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	b := &model.Batch{Time: now}
	for i, v := range []float64{0.25, 0.5} {
		en := model.Entry{Object: model.Object{Level: model.LevelContainer, Node: "n1", Namespace: "shop", Pod: fmt.Sprintf("web-%d", i), Container: "app"},
			Time: now.UnixMilli(), Values: model.NewValues()}
		en.Values[model.CPUUsageRate] = v
		b.Entries = append(b.Entries, en)
	}
	if _, err := e.st.Append(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	cpu := model.PromName(model.LevelContainer, model.CPUUsageRate)
	record := "test:" + cpu + ":sum"
	path := filepath.Join(t.TempDir(), "record.yml")
	rule := fmt.Sprintf("groups:\n  - name: record\n    rules:\n      - record: %s\n        expr: sum by (%s) (%s)\n", record, model.LabelNamespace, cpu)
	if err := os.WriteFile(path, []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := New(e.options(path))
	if err != nil {
		t.Fatal(err)
	}
	run(t, m)
	var got promql.Vector
	waitUntil(t, 10*time.Second, "the recording rule's series in the store", func() bool {
		got = e.query(t, record)
		return len(got) > 0
	})
	if len(got) != 1 {
		t.Fatalf("%s: %d series, want 1: %v", record, len(got), got)
	}
	if v, ns := got[0].F, got[0].Metric.Get(model.LabelNamespace); !(v == 0.75) || ns != "shop" {
		t.Fatalf("%s = %v{%s=%q}, want 0.75{%s=\"shop\"}", record, v, model.LabelNamespace, ns, model.LabelNamespace)
	}
	// The rule reports itself healthy, evaluated.
	r := m.RuleGroups()[0].Rules()[0]
	if r.Health() != promrules.HealthGood || r.GetEvaluationTimestamp().IsZero() {
		t.Errorf("rule health %q, last evaluation %v", r.Health(), r.GetEvaluationTimestamp())
	}
}

// TestAlertFiresAndResolves: an alert fires after its `for`, is notified
// with its labels and annotations, is stored as ALERTS, and is notified
// resolved once its expression no longer holds.
func TestAlertFiresAndResolves(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	flag := filepath.Join(dir, "flag.yml")
	write := func(v int) {
		t.Helper()
		rule := fmt.Sprintf(`groups:
  - name: alerts
    rules:
      - alert: Flag
        expr: vector(%d) > 0
        for: 300ms
        labels:
          severity: page
        annotations:
          summary: "flag is {{ $value }}"
`, v)
		writeFile(t, flag, []byte(rule))
	}
	write(1)
	m, err := New(e.options(flag))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	run(t, m)
	waitUntil(t, 10*time.Second, "the alert to be notified firing", func() bool { return len(e.notified()) > 0 })
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("notified after %s, before its for (300ms)", took)
	}
	a := e.notified()[0]
	if a.State != promrules.StateFiring || a.Labels.Get("alertname") != "Flag" || a.Labels.Get("severity") != "page" ||
		a.Annotations.Get("summary") != "flag is 1" || !a.ResolvedAt.IsZero() {
		t.Fatalf("alert notified: state %s, labels %s, annotations %s, resolved %v", a.State, a.Labels, a.Annotations, a.ResolvedAt)
	}
	waitUntil(t, 10*time.Second, "ALERTS in the store", func() bool {
		return len(e.query(t, `ALERTS{alertname="Flag",alertstate="firing",severity="page"}`)) == 1
	})
	if as := m.AlertingRules(); len(as) != 1 || len(as[0].ActiveAlerts()) != 1 {
		t.Fatalf("alerting rules %v", as)
	}

	write(0) // the expression no longer holds: vector(0) > 0 is empty
	waitUntil(t, 10*time.Second, "the alert to be notified resolved", func() bool {
		for _, a := range e.notified() {
			if !a.ResolvedAt.IsZero() && a.Labels.Get("alertname") == "Flag" {
				return true
			}
		}
		return false
	})
}

// TestReloadKeepsPrevious: a rule file gone bad while kubemon runs is
// reported (log, kubemon_rules_last_reload_successful 0, the error naming
// file and line) and the rules before keep evaluating; fixed, it loads.
func TestReloadKeepsPrevious(t *testing.T) {
	e := newEnv(t)
	path := filepath.Join(t.TempDir(), "rules.yml")
	good, err := os.ReadFile("testdata/good.yml")
	if err != nil {
		t.Fatal(err)
	}
	bad, err := os.ReadFile("testdata/bad_expr.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, good, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := New(e.options(path))
	if err != nil {
		t.Fatal(err)
	}
	run(t, m)
	waitUntil(t, 10*time.Second, "the first evaluation", func() bool { return !m.RuleGroups()[0].GetLastEvaluation().IsZero() })

	writeFile(t, path, bad)
	waitUntil(t, 10*time.Second, "the bad file to be refused", func() bool {
		return testutil.ToFloat64(m.reloads.WithLabelValues("failure")) == 1
	})
	if v := testutil.ToFloat64(m.reloadOK); v != 0 {
		t.Errorf("kubemon_rules_last_reload_successful %v after a bad file, want 0", v)
	}
	if err := m.Reload(); err == nil || !strings.Contains(err.Error(), path+`:7:15: group "broken", rule 2, "Broken"`) {
		t.Errorf("Reload: %v, want the file and line of the problem", err)
	}
	// The bad file is not retried at every poll, only when it changes.
	time.Sleep(200 * time.Millisecond)
	if v := testutil.ToFloat64(m.reloads.WithLabelValues("failure")); v != 2 { // the poll's and Reload's
		t.Errorf("%v failed reloads, want 2 (a bad file is tried once per change)", v)
	}
	if got := strings.Join(groupNames(m), " "); got != "rules.yml:example rules.yml:example-slow" {
		t.Fatalf("groups after the bad file %q, want the good file's", got)
	}
	before := m.RuleGroups()[0].GetLastEvaluation()
	waitUntil(t, 10*time.Second, "the previous rules to keep evaluating", func() bool {
		return m.RuleGroups()[0].GetLastEvaluation().After(before)
	})

	fixed := strings.Replace(string(bad), "sum(rate(x[5m])", "sum(rate(x[5m]))", 1)
	writeFile(t, path, []byte(fixed))
	waitUntil(t, 10*time.Second, "the fixed file to load", func() bool { return testutil.ToFloat64(m.reloadOK) == 1 })
	if got := strings.Join(groupNames(m), " "); got != "rules.yml:broken" {
		t.Fatalf("groups after the fix %q, want rules.yml:broken", got)
	}
	if ts := testutil.ToFloat64(m.reloadTime); !(math.Abs(ts-float64(time.Now().Unix())) < 60) {
		t.Errorf("kubemon_rules_last_reload_success_timestamp_seconds %v, not now", ts)
	}
}

func TestExternalLabelsInTemplates(t *testing.T) {
	e := newEnv(t)
	path := filepath.Join(t.TempDir(), "ext.yml")
	if err := os.WriteFile(path, []byte(`groups:
  - name: ext
    rules:
      - alert: Ext
        expr: vector(1)
        annotations:
          summary: "in {{ $externalLabels.cluster }}"
`), 0o644); err != nil {
		t.Fatal(err)
	}
	o := e.options(path)
	o.ExternalLabels = labels.FromStrings("cluster", "prod")
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	run(t, m)
	waitUntil(t, 10*time.Second, "the alert", func() bool { return len(e.notified()) > 0 })
	if s := e.notified()[0].Annotations.Get("summary"); s != "in prod" {
		t.Fatalf("summary %q, want \"in prod\"", s)
	}
}

// TestWarnsOfUnstoredSeries: each load names every rule, of the default
// pack and of the files, that selects a series the store keeps out, and
// only those.
func TestWarnsOfUnstoredSeries(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "user.yml")
	writeFile(t, file, []byte(`groups:
  - name: user
    rules:
      - record: namespace:limit:sum
        expr: sum by (namespace) (container_memory_limit_bytes) / sum by (namespace) (container_memory_limit_bytes)
      - record: node:cpu:max
        expr: max(node_cpu_usage_cores)
`))
	drop := store.DropTable([]string{"container_memory_limit_bytes", "container_cpu_cfs_*"})
	var logs strings.Builder
	o := e.options(file)
	o.DefaultRules = true
	o.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	o.NotStored = func(name string) bool {
		l, m, ok := model.ParseSeriesName(name)
		return ok && drop[l][m]
	}
	if _, err := New(o); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var r struct {
			Msg, Rule string
			Series    []string
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if strings.HasPrefix(r.Msg, "a rule reads series that are not stored") {
			got[r.Rule] = strings.Join(r.Series, " ")
		}
	}
	want := map[string]string{
		"KubemonContainerMemoryNearLimit":   "container_memory_limit_bytes",
		"KubemonContainerCPUThrottlingHigh": "container_cpu_cfs_throttled_periods_total container_cpu_cfs_periods_total",
		"namespace:limit:sum":               "container_memory_limit_bytes",
	}
	if len(got) != len(want) {
		t.Errorf("warned of %d rules, want %d: %v", len(got), len(want), got)
	}
	for r, s := range want {
		if got[r] != s {
			t.Errorf("%s: warned of %q, want %q", r, got[r], s)
		}
	}
}
