package promapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"

	"github.com/kubemon/kubemon/internal/store"
	"github.com/kubemon/kubemon/internal/testutil/golden"
)

// fixedRules is a RulesRetriever over groups built and evaluated by the
// test.
type fixedRules []*rules.Group

func (f fixedRules) RuleGroups() []*rules.Group { return f }

func (f fixedRules) AlertingRules() []*rules.AlertingRule {
	var out []*rules.AlertingRule
	for _, g := range f {
		out = append(out, g.AlertingRules()...)
	}
	return out
}

// rulesEnv serves the API with two groups of rules, evaluated twice with
// Prometheus's rule manager code: at t0 and two minutes later.
func rulesEnv(t *testing.T) (*testEnv, time.Time) {
	t.Helper()
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: 10 * time.Second, LookbackDelta: 5 * time.Minute})
	t.Cleanup(func() { engine.Close() })
	opts := &rules.ManagerOptions{
		QueryFunc: rules.EngineQueryFunc(engine, st.Queryable()), Queryable: st.Queryable(), AppendableV2: st.DB(),
		NotifyFunc: func(context.Context, string, ...*rules.Alert) {}, Context: context.Background(), ResendDelay: time.Minute,
	}
	p := parser.NewParser(parser.Options{})
	expr := func(s string) parser.Expr {
		e, err := p.ParseExpr(s)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	alert := func(name, q string, hold time.Duration, ls, anns labels.Labels) *rules.AlertingRule {
		return rules.NewAlertingRule(name, expr(q), hold, 0, ls, anns, labels.EmptyLabels(), "", true, nil)
	}
	g1 := rules.NewGroup(rules.GroupOptions{Name: "things", File: "/etc/kubemon/rules/a.yml", Interval: 15 * time.Second, Opts: opts, Rules: []rules.Rule{
		alert("HighThing", "vector(2) > 1", time.Minute, labels.FromStrings("severity", "warning"), labels.FromStrings("summary", "thing is {{ $value }}")),
		alert("Quiet", "vector(0) > 1", 5*time.Minute, labels.FromStrings("severity", "critical"), labels.EmptyLabels()),
		rules.NewRecordingRule("job:thing:sum", expr("vector(3)"), labels.FromStrings("source", "test")),
	}})
	g2 := rules.NewGroup(rules.GroupOptions{Name: "now", File: "/etc/kubemon/rules/b.yml", Interval: time.Minute, Limit: 10, Opts: opts, Rules: []rules.Rule{
		alert("Now", "vector(1)", 0, labels.EmptyLabels(), labels.EmptyLabels()),
	}})
	for _, ts := range []time.Time{t0, t0.Add(2 * time.Minute)} {
		for _, g := range []*rules.Group{g1, g2} {
			rules.DefaultEvalIterationFunc(context.Background(), g, ts)
		}
	}
	e := newTestEnv(t, st.Queryable(), nil)
	mux := http.NewServeMux()
	e.api.RegisterRules(mux, fixedRules{g1, g2})
	e.srv.Config.Handler = mux
	return e, t0
}

// getBody GETs path with params and returns the status and body.
func getBody(t *testing.T, e *testEnv, path string, params url.Values) (int, []byte) {
	t.Helper()
	u := e.srv.URL + path
	if params != nil {
		u += "?" + params.Encode()
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// normalize replaces what differs from run to run (how long an evaluation
// took, when it ran) after checking it is there: every evaluation has
// happened (a non-zero lastEvaluation) and took a duration.
func normalize(t *testing.T, v any) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			switch k {
			case "evaluationTime":
				if f, ok := x.(float64); !ok || !(f >= 0) {
					t.Errorf("evaluationTime %v, want seconds", x)
				}
				v[k] = "<seconds>"
			case "lastEvaluation":
				ts, err := time.Parse(time.RFC3339Nano, x.(string))
				if err != nil || ts.Year() < 2026 {
					t.Errorf("lastEvaluation %v: not a time of the evaluation", x)
				}
				v[k] = "<time>"
			default:
				normalize(t, x)
			}
		}
	case []any:
		for _, x := range v {
			normalize(t, x)
		}
	}
}

// TestRulesGolden keeps the answers of /api/v1/rules and /api/v1/alerts in
// testdata: Prometheus's format, field by field.
func TestRulesGolden(t *testing.T) {
	e, _ := rulesEnv(t)
	for _, tc := range []struct{ path, file string }{
		{"/api/v1/rules", "rules.golden.json"},
		{"/api/v1/alerts", "alerts.golden.json"},
	} {
		code, body := getBody(t, e, tc.path, nil)
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", tc.path, code, body)
		}
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatal(err)
		}
		normalize(t, v)
		// Re-encoded with sorted keys, indented.
		var out bytes.Buffer
		enc := json.NewEncoder(&out)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		golden.Check(t, "./internal/api/promapi", tc.file, out.Bytes())
	}
}

// rulesAnswer decodes an /api/v1/rules answer.
type rulesAnswer struct {
	Status string `json:"status"`
	Data   struct {
		Groups []struct {
			Name  string `json:"name"`
			File  string `json:"file"`
			Rules []struct {
				Name   string            `json:"name"`
				Type   string            `json:"type"`
				State  string            `json:"state"`
				Health string            `json:"health"`
				Alerts []json.RawMessage `json:"alerts"`
			} `json:"rules"`
		} `json:"groups"`
		GroupNextToken string `json:"groupNextToken"`
	} `json:"data"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
}

func TestRulesParams(t *testing.T) {
	e, _ := rulesEnv(t)
	get := func(params url.Values) (int, rulesAnswer) {
		t.Helper()
		code, body := getBody(t, e, "/api/v1/rules", params)
		var a rulesAnswer
		if err := json.Unmarshal(body, &a); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		return code, a
	}
	list := func(a rulesAnswer) string {
		var out []string
		for _, g := range a.Data.Groups {
			for _, r := range g.Rules {
				out = append(out, g.Name+"/"+r.Name)
			}
		}
		return strings.Join(out, " ")
	}
	for _, tc := range []struct {
		params url.Values
		want   string
	}{
		{nil, "things/HighThing things/Quiet things/job:thing:sum now/Now"},
		{url.Values{"type": {"alert"}}, "things/HighThing things/Quiet now/Now"},
		{url.Values{"type": {"RECORD"}}, "things/job:thing:sum"},
		{url.Values{"rule_name[]": {"Quiet", "Now"}}, "things/Quiet now/Now"},
		{url.Values{"rule_group[]": {"now"}}, "now/Now"},
		{url.Values{"file[]": {"/etc/kubemon/rules/a.yml"}}, "things/HighThing things/Quiet things/job:thing:sum"},
		{url.Values{"match[]": {`{severity="warning"}`}}, "things/HighThing"},
		{url.Values{"rule_name[]": {"nothing"}}, ""},
	} {
		code, a := get(tc.params)
		if code != http.StatusOK || a.Status != "success" {
			t.Errorf("%v: %d %+v", tc.params, code, a)
			continue
		}
		if got := list(a); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.params, got, tc.want)
		}
	}

	_, a := get(url.Values{"exclude_alerts": {"true"}})
	for _, g := range a.Data.Groups {
		for _, r := range g.Rules {
			if r.Alerts != nil {
				t.Errorf("exclude_alerts=true: %s has alerts %s", r.Name, r.Alerts)
			}
		}
	}
	_, a = get(nil)
	if r := a.Data.Groups[0].Rules[0]; r.State != "firing" || r.Health != "ok" || len(r.Alerts) != 1 {
		t.Errorf("HighThing: state %s, health %s, %d alerts; want firing, ok, 1", r.State, r.Health, len(r.Alerts))
	}
	if r := a.Data.Groups[0].Rules[1]; r.State != "inactive" || r.Alerts == nil || len(r.Alerts) != 0 {
		t.Errorf("Quiet: state %s, alerts %s; want inactive, []", r.State, r.Alerts)
	}

	// Pages of one group.
	_, p1 := get(url.Values{"group_limit": {"1"}})
	if list(p1) != "things/HighThing things/Quiet things/job:thing:sum" || p1.Data.GroupNextToken == "" {
		t.Fatalf("first page %q, token %q", list(p1), p1.Data.GroupNextToken)
	}
	_, p2 := get(url.Values{"group_limit": {"1"}, "group_next_token": {p1.Data.GroupNextToken}})
	if list(p2) != "now/Now" || p2.Data.GroupNextToken != "" {
		t.Fatalf("second page %q, token %q", list(p2), p2.Data.GroupNextToken)
	}

	for _, tc := range []struct {
		params url.Values
		want   string
	}{
		{url.Values{"type": {"both"}}, `invalid parameter "type": not supported value "both"`},
		{url.Values{"exclude_alerts": {"maybe"}}, `invalid parameter "exclude_alerts"`},
		{url.Values{"group_limit": {"0"}}, "group_limit needs to be greater than 0"},
		{url.Values{"group_limit": {"x"}}, "group_limit needs to be a valid number"},
		{url.Values{"group_next_token": {"abc"}}, "group_limit needs to be present"},
		{url.Values{"group_limit": {"1"}, "group_next_token": {"abc"}}, "invalid group_next_token 'abc'"},
		{url.Values{"match[]": {`{severity=~".*"}`}}, "match[] must contain at least one non-empty matcher"},
		{url.Values{"match[]": {`{`}}, `invalid parameter "match[]"`},
	} {
		code, a := get(tc.params)
		if code != http.StatusBadRequest || a.ErrorType != "bad_data" || !strings.Contains(a.Error, tc.want) {
			t.Errorf("%v: %d %s %q, want 400 bad_data with %q", tc.params, code, a.ErrorType, a.Error, tc.want)
		}
	}
}

// TestRulesNone: without rules both endpoints answer with empty lists, as
// Prometheus does.
func TestRulesNone(t *testing.T) {
	e := newTestEnv(t, emptyQueryable(t).Queryable(), nil)
	mux := http.NewServeMux()
	e.api.RegisterRules(mux, nil)
	e.srv.Config.Handler = mux
	for path, want := range map[string]string{
		"/api/v1/rules":  `{"status":"success","data":{"groups":[]}}`,
		"/api/v1/alerts": `{"status":"success","data":{"alerts":[]}}`,
	} {
		code, body := getBody(t, e, path, nil)
		if code != http.StatusOK || string(body) != want {
			t.Errorf("%s: %d %s, want %s", path, code, body, want)
		}
	}
}

func emptyQueryable(t *testing.T) *store.Store {
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
