package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/testutil/influxd"
)

// The Grafana dashboards in deploy/grafana: one set for an InfluxDB data
// source over what kubemon's influxdb sink writes (Heapster's schema), one
// for a Prometheus data source pointed at kubemon's own query API.
// $KUBEMON_GRAFANA_DASHBOARDS names another directory of the same layout
// (influxdb/*.json, prometheus/*.json), e.g. a copy being edited.
func dashDir() string {
	if d := os.Getenv("KUBEMON_GRAFANA_DASHBOARDS"); d != "" {
		return d
	}
	return "../../deploy/grafana"
}

// The values Grafana would put in for its macros: a 15-minute dashboard
// range drawn at a 30 s interval.
const (
	dashRange    = 15 * time.Minute
	dashInterval = 30 * time.Second
)

var dashMacros = map[string]string{
	"timeFilter":      "time > now() - 15m",
	"__timeFilter":    "time > now() - 15m",
	"__interval":      "30s",
	"interval":        "30s",
	"__interval_ms":   "30000",
	"__range":         "15m",
	"__range_s":       "900",
	"__range_ms":      "900000",
	"__rate_interval": "1m",
}

// dashSource says what each subdirectory's dashboards must use: the data
// source plugin and the name of the __inputs entry every panel, target and
// variable refers to as ${NAME} (what makes Grafana's import ask for it).
var dashSource = map[string]struct{ plugin, input string }{
	"influxdb":   {"influxdb", "DS_INFLUXDB"},
	"prometheus": {"prometheus", "DS_PROMETHEUS"},
}

// The parts of Grafana's dashboard JSON the test reads.
type dashDS struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type dashTarget struct {
	RefID        string  `json:"refId"`
	Datasource   *dashDS `json:"datasource"`
	Query        string  `json:"query"` // InfluxQL
	RawQuery     bool    `json:"rawQuery"`
	Alias        string  `json:"alias"`
	Expr         string  `json:"expr"` // PromQL
	LegendFormat string  `json:"legendFormat"`
}

type dashPanel struct {
	ID          int     `json:"id"`
	Type        string  `json:"type"`
	Title       string  `json:"title"`
	Repeat      string  `json:"repeat"`
	Datasource  *dashDS `json:"datasource"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Targets []dashTarget `json:"targets"`
	Panels  []dashPanel  `json:"panels"` // a collapsed row's
}

type dashVar struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Datasource *dashDS         `json:"datasource"`
	Query      json.RawMessage `json:"query"` // a string, or {"query": "..."}
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
}

func (v dashVar) query() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(v.Query, &o)
	return o.Query
}

type dashFile struct {
	Inputs []struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		PluginID string `json:"pluginId"`
	} `json:"__inputs"`
	UID           string      `json:"uid"`
	Title         string      `json:"title"`
	SchemaVersion int         `json:"schemaVersion"`
	Panels        []dashPanel `json:"panels"`
	Templating    struct {
		List []dashVar `json:"list"`
	} `json:"templating"`
}

// dashboard is one dashboard file, its panels flattened out of their rows
// (a panel in a repeated row repeats with it).
type grafanaDashboard struct {
	path   string // relative to deploy/grafana, e.g. influxdb/pods.json
	kind   string // influxdb or prometheus
	title  string
	panels []dashPanel
	vars   []dashVar
	nQuery int // targets
}

// loadDashboards reads every dashboard, checks what Grafana's import and
// kubemon's series contract need of it, and counts its panels and targets:
// a dashboard without panels, or a panel without targets, fails here.
func loadDashboards(t *testing.T) []*grafanaDashboard {
	t.Helper()
	dir := dashDir()
	files, err := filepath.Glob(filepath.Join(dir, "*", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out []*grafanaDashboard
	uids := map[string]string{}
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f)
		kind := filepath.Dir(rel)
		src, ok := dashSource[kind]
		if !ok {
			t.Errorf("%s: a dashboard outside influxdb/ and prometheus/", rel)
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var df dashFile
		if err := json.Unmarshal(b, &df); err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		d := &grafanaDashboard{path: rel, kind: kind, title: df.Title, vars: df.Templating.List}
		errorf := func(format string, args ...any) { t.Errorf(rel+": "+format, args...) }
		if df.UID == "" || df.Title == "" || df.SchemaVersion < 36 {
			errorf("uid %q, title %q, schemaVersion %d: want a uid, a title and schemaVersion 36 or later", df.UID, df.Title, df.SchemaVersion)
		}
		if other, dup := uids[df.UID]; dup {
			errorf("uid %q is also %s's", df.UID, other)
		}
		uids[df.UID] = rel
		if len(df.Inputs) != 1 || df.Inputs[0].Name != src.input || df.Inputs[0].Type != "datasource" || df.Inputs[0].PluginID != src.plugin {
			errorf("__inputs = %+v, want one datasource input %s of plugin %s", df.Inputs, src.input, src.plugin)
		}
		want := dashDS{Type: src.plugin, UID: "${" + src.input + "}"}
		checkDS := func(what string, ds *dashDS) {
			if ds == nil || *ds != want {
				errorf("%s: datasource %+v, want %+v", what, ds, want)
			}
		}
		var walk func(ps []dashPanel, rowRepeat string)
		walk = func(ps []dashPanel, rowRepeat string) {
			for _, p := range ps {
				if p.Type == "row" {
					rowRepeat = p.Repeat
					walk(p.Panels, p.Repeat)
					continue
				}
				if p.Repeat == "" {
					p.Repeat = rowRepeat
				}
				what := fmt.Sprintf("panel %d %q", p.ID, p.Title)
				if p.Type != "timeseries" {
					errorf("%s: type %q, want timeseries", what, p.Type)
				}
				if p.FieldConfig.Defaults.Unit == "" {
					errorf("%s: no unit", what)
				}
				checkDS(what, p.Datasource)
				if len(p.Targets) == 0 {
					errorf("%s: no targets", what)
				}
				for _, tg := range p.Targets {
					checkDS(what+" target "+tg.RefID, tg.Datasource)
					q := tg.Expr
					if kind == "influxdb" {
						q = tg.Query
						if !tg.RawQuery {
							errorf("%s target %s: rawQuery is false (Grafana would build the query from the editor's fields, not run this text)", what, tg.RefID)
						}
						for _, part := range []string{"$timeFilter", "GROUP BY time($__interval)", "fill(null)"} {
							if !strings.Contains(q, part) {
								errorf("%s target %s: no %s in %s", what, tg.RefID, part, q)
							}
						}
					}
					if strings.TrimSpace(q) == "" {
						errorf("%s target %s: no query", what, tg.RefID)
					}
					d.nQuery++
				}
				d.panels = append(d.panels, p)
			}
		}
		walk(df.Panels, "")
		if len(d.panels) == 0 {
			errorf("no panels")
		}
		for _, v := range d.vars {
			if v.Type != "query" {
				errorf("variable %s: type %q; the test knows query variables only", v.Name, v.Type)
				continue
			}
			checkDS("variable "+v.Name, v.Datasource)
			if v.query() == "" {
				errorf("variable %s: no query", v.Name)
			}
		}
		out = append(out, d)
	}
	for _, kind := range []string{"influxdb", "prometheus"} {
		for _, name := range []string{"cluster.json", "pods.json"} {
			if !slices.ContainsFunc(out, func(d *grafanaDashboard) bool { return d.path == filepath.Join(kind, name) }) {
				t.Errorf("%s/%s: missing", kind, name)
			}
		}
	}
	for _, d := range out {
		t.Logf("%s (%q): %d panels, %d targets, %d variables", d.path, d.title, len(d.panels), d.nQuery, len(d.vars))
	}
	if t.Failed() {
		t.FailNow()
	}
	return out
}

// dashVarRE matches Grafana's variable syntaxes: $name, ${name} and [[name]].
var dashVarRE = regexp.MustCompile(`\$(\w+)|\$\{(\w+)\}|\[\[(\w+)\]\]`)

// The characters Grafana escapes in a multi-value variable's values: for
// InfluxQL's /regex/ (escapeRegex) and inside a PromQL string
// (prometheusSpecialRegexEscape).
var (
	dashInfluxSpecialRE = regexp.MustCompile(`[\\^$*+?.()|\[\]{}/]`)
	dashPromSpecialRE   = regexp.MustCompile(`[\\^$*+?.()|\[\]{}']`)
)

// dashInterpolate fills Grafana's macros and the variables in q as Grafana does
// for the data source kind: a multi-value or include-All variable in a
// regular expression, its values escaped and joined as (a|b); a
// single-value variable as it is. A variable the dashboard does not define
// is an error.
func dashInterpolate(q, kind string, vars []dashVar, vals map[string][]string) (string, error) {
	var bad []string
	out := dashVarRE.ReplaceAllStringFunc(q, func(m string) string {
		sm := dashVarRE.FindStringSubmatch(m)
		vn := sm[1] + sm[2] + sm[3]
		if v, ok := dashMacros[vn]; ok {
			return v
		}
		i := slices.IndexFunc(vars, func(v dashVar) bool { return v.Name == vn })
		values, ok := vals[vn]
		if i < 0 || !ok {
			bad = append(bad, m)
			return m
		}
		if !vars[i].Multi && !vars[i].IncludeAll {
			return values[0]
		}
		esc := make([]string, len(values))
		for j, v := range values {
			if kind == "influxdb" {
				esc[j] = dashInfluxSpecialRE.ReplaceAllString(v, `\$0`)
			} else { // inside a PromQL string: the backslash itself escaped
				esc[j] = dashPromSpecialRE.ReplaceAllString(v, `\\$0`)
			}
		}
		if len(esc) == 1 {
			return esc[0]
		}
		return "(" + strings.Join(esc, "|") + ")"
	})
	if len(bad) > 0 {
		return "", fmt.Errorf("undefined or unresolved variables %v in %s", bad, q)
	}
	return out, nil
}

// dashRunner runs one data source kind's queries against a real server.
type dashRunner interface {
	// varValues runs a variable's (interpolated) query and returns its
	// values, sorted (the dashboards sort variables alphabetically).
	varValues(t *testing.T, q string) []string
	// nonEmpty runs a panel target's (interpolated) query as Grafana
	// would and reports whether it drew anything: a series with at least
	// one value that is not null.
	nonEmpty(t *testing.T, q string) (bool, string)
}

// dashStats are one dashboard's figures.
type dashStats struct {
	varQueries, panelQueries int
	repeats                  int // panel queries of repeated panels (once per value)
}

// runDashboard resolves the dashboard's variables by running their own
// queries (prefer names a value to pick for a single-value variable, which
// must be among the answers; otherwise the first answer is taken, and a
// multi-value variable gets every answer, as Grafana's All), then runs every
// target of every panel, a repeated panel once for each value of its
// variable.
func runDashboard(t *testing.T, d *grafanaDashboard, r dashRunner, prefer map[string]string) (dashStats, map[string][]string) {
	t.Helper()
	var st dashStats
	vals := map[string][]string{}
	for _, v := range d.vars {
		q, err := dashInterpolate(v.query(), d.kind, d.vars, vals)
		if err != nil {
			t.Fatalf("variable %s: %v", v.Name, err)
		}
		got := r.varValues(t, q)
		st.varQueries++
		if len(got) == 0 {
			t.Fatalf("variable %s: %s answered no values", v.Name, q)
		}
		switch p, ok := prefer[v.Name]; {
		case v.Multi || v.IncludeAll:
			vals[v.Name] = got
		case ok:
			if !slices.Contains(got, p) {
				t.Fatalf("variable %s: %s answered %q, without %q", v.Name, q, got, p)
			}
			vals[v.Name] = []string{p}
		default:
			vals[v.Name] = got[:1]
		}
		t.Logf("variable %s = %q (of %d values of %s)", v.Name, vals[v.Name], len(got), q)
	}
	for _, p := range d.panels {
		scopes := []map[string][]string{vals}
		if p.Repeat != "" {
			all, ok := vals[p.Repeat]
			if !ok {
				t.Fatalf("panel %q repeats over %q, which is no variable", p.Title, p.Repeat)
			}
			scopes = nil
			for _, one := range all {
				s := map[string][]string{}
				for k, v := range vals {
					s[k] = v
				}
				s[p.Repeat] = []string{one}
				scopes = append(scopes, s)
			}
		}
		for _, scope := range scopes {
			for _, tg := range p.Targets {
				raw := tg.Expr
				if d.kind == "influxdb" {
					raw = tg.Query
				}
				q, err := dashInterpolate(raw, d.kind, d.vars, scope)
				if err != nil {
					t.Errorf("panel %q target %s: %v", p.Title, tg.RefID, err)
					continue
				}
				st.panelQueries++
				if p.Repeat != "" {
					st.repeats++
				}
				if ok, why := r.nonEmpty(t, q); !ok {
					t.Errorf("panel %q target %s: %s: %s", p.Title, tg.RefID, why, q)
				}
			}
		}
	}
	return st, vals
}

// TestDashboardQueries runs every query of the Grafana dashboards in
// deploy/grafana, the variables' included, against real servers fed by
// `kubemon demo`: the InfluxDB set against Debian's influxd that kubemon's
// influxdb sink writes to, the Prometheus set against kubemon's own query
// API. A query that fails, or that draws nothing (no series, or only
// nulls), fails the test; so do a series name or label key kubemon does
// not write, or a Heapster measurement, type or tag the sink does not.
//
// No panel is allowed to be empty. The one choice made to get there: the
// simulated cluster, like a real one, has pods without requests or limits
// (BestEffort pods, containers without a CPU limit), whose request and limit
// lines are legitimately empty; the pod shown by the Pods dashboards is
// therefore the oldest pod that has CPU and memory requests and limits,
// found by a query of its own and required to be among the answers of the
// dashboard's pod variable (and its namespace among the namespace
// variable's).
func TestDashboardQueries(t *testing.T) {
	dashes := loadDashboards(t)
	// A name kubemon does not write is reported here, and its query runs
	// all the same (and comes back empty) below.
	for _, e := range checkDashboardContract(dashes) {
		t.Error(e)
	}

	haveInflux := true
	if _, err := os.Stat(influxd.Debian); err != nil {
		haveInflux = false
	}
	var srv *influxd.Server
	args := []string{"--nodes", "3", "--pods-per-node", "10", "--interval", "2s", "--data-dir", t.TempDir()}
	if haveInflux {
		srv = influxd.Start(t, influxd.Debian)
		args = append(args, "--sink", "influxdb:"+srv.URL+"?db=k8s")
	}
	p := startDemo(t, args...)
	waitFor(t, 30*time.Second, "/readyz", func() bool { c, _ := p.get(t, "/readyz"); return c == http.StatusOK })
	// Rates are stored from a node's second scrape on, and their roll-ups
	// (namespaces, the cluster) at the end of the cycle after: wait until
	// every node, pod and namespace and the cluster have them.
	waitFor(t, 60*time.Second, "rates of every node, pod and namespace and of the cluster in kubemon's store", func() bool {
		count := func(l model.Level, m model.MetricID) float64 {
			r := p.query(t, "count("+name(l, m)+")")
			if len(r) != 1 {
				return -1
			}
			return r[0].v(t)
		}
		pods := count(model.LevelPod, model.Uptime)
		namespaces := -1.0
		if r := p.query(t, "count(count by ("+model.LabelNamespace+") ("+name(model.LevelPod, model.CPUUsageRate)+"))"); len(r) == 1 {
			namespaces = r[0].v(t)
		}
		return count(model.LevelNode, model.CPUUsageRate) == 3 && count(model.LevelNode, model.NetworkRxRate) == 3 &&
			pods > 0 && count(model.LevelPod, model.CPUUsageRate) == pods && count(model.LevelPod, model.NetworkRxRate) == pods &&
			count(model.LevelCluster, model.CPUUsageRate) == 1 && count(model.LevelCluster, model.NetworkRxRate) == 1 &&
			namespaces > 0 && count(model.LevelNamespace, model.CPUUsageRate) == namespaces
	})

	byKind := func(kind string) (out []*grafanaDashboard) {
		for _, d := range dashes {
			if d.kind == kind {
				out = append(out, d)
			}
		}
		return out
	}
	var summary []string
	run := func(t *testing.T, kind string, r dashRunner, prefer map[string]string) {
		for _, d := range byKind(kind) {
			t.Run(filepath.Base(d.path), func(t *testing.T) {
				st, vals := runDashboard(t, d, r, prefer)
				dashNegativeControl(t, d, r, vals)
				line := fmt.Sprintf("%s: %d panels, %d targets; ran %d variable queries and %d panel queries (%d of them for the repeated panels, once per value)",
					d.path, len(d.panels), d.nQuery, st.varQueries, st.panelQueries, st.repeats)
				t.Log(line)
				summary = append(summary, line)
			})
		}
	}

	t.Run("prometheus", func(t *testing.T) {
		r := &dashPromRunner{p: p}
		run(t, "prometheus", r, r.podWithRequestsAndLimits(t))
	})

	t.Run("influxdb", func(t *testing.T) {
		if !haveInflux {
			t.Skipf("SKIPPED: %s is missing: install Debian's influxdb package with hack/deps.sh; the InfluxDB dashboards were not run", influxd.Debian)
		}
		r := &dashInfluxRunner{srv: srv}
		// The sink writes a window once nothing more can land in it: the
		// clock-skew tolerance (1 minute here) and the scrape timeout
		// behind the present.
		waitFor(t, 3*time.Minute, "three cycles of every node's rates in InfluxDB", func() bool {
			if !r.hasDatabase(t) {
				return false
			}
			for _, m := range []model.MetricID{model.CPUUsageRate, model.NetworkRxRate} {
				s := srv.Query(t, "k8s", fmt.Sprintf(`SELECT count("value") FROM %q WHERE "type" = 'node' GROUP BY "nodename"`, heapster(m)))
				if len(s) != 3 {
					return false
				}
				for _, x := range s {
					if n, err := x.Floats("count"); err != nil || len(n) == 0 || !(n[0] >= 3) {
						return false
					}
				}
			}
			return true
		})
		run(t, "influxdb", r, r.podWithRequestsAndLimits(t))
	})
	sort.Strings(summary)
	t.Logf("dashboards:\n  %s", strings.Join(summary, "\n  "))
}

// dashPromRunner runs the Prometheus dashboards against kubemon's query API,
// with the requests Grafana's Prometheus data source makes.
type dashPromRunner struct{ p *proc }

type dashPromAnswer struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

// call sends the request (a POST form, as Grafana sends queries) and
// returns the answer's data; anything but a success fails the test.
func (r *dashPromRunner) call(t *testing.T, method, path string, form url.Values) json.RawMessage {
	t.Helper()
	var req *http.Request
	var err error
	if method == http.MethodPost {
		req, err = http.NewRequest(method, r.p.base+path, strings.NewReader(form.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		req, err = http.NewRequest(method, r.p.base+path+"?"+form.Encode(), nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	if r.p.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.p.token)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s %v: %v", method, path, form, err)
	}
	defer resp.Body.Close()
	var a dashPromAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatalf("%s %s %v: %s: %v", method, path, form, resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK || a.Status != "success" {
		t.Fatalf("%s %s %v: %s: %s %s", method, path, form, resp.Status, a.ErrorType, a.Error)
	}
	return a.Data
}

func (r *dashPromRunner) window() url.Values {
	end := time.Now()
	return url.Values{
		"start": {strconv.FormatInt(end.Add(-dashRange).Unix(), 10)},
		"end":   {strconv.FormatInt(end.Unix(), 10)},
	}
}

var dashLabelValuesRE = regexp.MustCompile(`^\s*label_values\(\s*(?:(.*\S)\s*,\s*)?(\w+)\s*\)\s*$`)

// varValues answers label_values(selector, label) as Grafana does, from
// /api/v1/series over the dashboard's range, and checks that
// /api/v1/label/<label>/values (newer Grafanas' request) gives the same.
func (r *dashPromRunner) varValues(t *testing.T, q string) []string {
	t.Helper()
	m := dashLabelValuesRE.FindStringSubmatch(q)
	if m == nil {
		t.Fatalf("variable query %q: the test knows label_values(...) only", q)
	}
	selector, label := m[1], m[2]
	form := r.window()
	var fromSeries []string
	if selector != "" {
		form.Set("match[]", selector)
		var series []map[string]string
		if err := json.Unmarshal(r.call(t, http.MethodPost, "/api/v1/series", form), &series); err != nil {
			t.Fatal(err)
		}
		for _, s := range series {
			if v := s[label]; v != "" && !slices.Contains(fromSeries, v) {
				fromSeries = append(fromSeries, v)
			}
		}
		sort.Strings(fromSeries)
	}
	var values []string
	if err := json.Unmarshal(r.call(t, http.MethodGet, "/api/v1/label/"+label+"/values", form), &values); err != nil {
		t.Fatal(err)
	}
	sort.Strings(values)
	if selector != "" && !slices.Equal(values, fromSeries) {
		t.Errorf("%s: /api/v1/series gives %q, /api/v1/label/%s/values %q", q, fromSeries, label, values)
	}
	return values
}

// nonEmpty runs the expression as a panel does: a range query over the
// dashboard's range at its interval.
func (r *dashPromRunner) nonEmpty(t *testing.T, q string) (bool, string) {
	t.Helper()
	form := r.window()
	form.Set("query", q)
	form.Set("step", strconv.Itoa(int(dashInterval.Seconds())))
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Values [][2]any          `json:"values"`
		} `json:"result"`
	}
	if err := json.Unmarshal(r.call(t, http.MethodPost, "/api/v1/query_range", form), &data); err != nil {
		t.Fatal(err)
	}
	if data.ResultType != "matrix" {
		return false, "result type " + data.ResultType
	}
	if len(data.Result) == 0 {
		return false, "no series"
	}
	for _, s := range data.Result {
		for _, v := range s.Values {
			if str, ok := v[1].(string); ok {
				if f, err := strconv.ParseFloat(str, 64); err == nil && !math.IsNaN(f) {
					return true, ""
				}
			}
		}
	}
	return false, fmt.Sprintf("%d series, every value NaN", len(data.Result))
}

// podWithRequestsAndLimits finds the oldest running pod with CPU and memory
// requests and limits.
func (r *dashPromRunner) podWithRequestsAndLimits(t *testing.T) map[string]string {
	t.Helper()
	on := " and on(" + by(model.LabelNamespace, model.LabelPod) + ") "
	q := "topk(1, " + name(model.LevelPod, model.Uptime) +
		on + name(model.LevelPod, model.CPURequest) + on + name(model.LevelPod, model.CPULimit) +
		on + name(model.LevelPod, model.MemoryRequest) + on + name(model.LevelPod, model.MemoryLimit) + ")"
	res := r.p.query(t, q)
	if len(res) != 1 {
		t.Fatalf("%s: %d samples; the simulated cluster has no pod with requests and limits?", q, len(res))
	}
	ns, pod := res[0].Metric[model.LabelNamespace], res[0].Metric[model.LabelPod]
	t.Logf("pod shown: %s/%s, up %.0f s", ns, pod, res[0].v(t))
	return map[string]string{"namespace": ns, "pod": pod}
}

// dashInfluxRunner runs the InfluxDB dashboards against influxd, in database
// k8s (the sink's and Heapster's default).
type dashInfluxRunner struct{ srv *influxd.Server }

func (r *dashInfluxRunner) hasDatabase(t *testing.T) bool {
	for _, s := range r.srv.Query(t, "", "SHOW DATABASES") {
		for _, row := range s.Values {
			if len(row) > 0 && row[0] == "k8s" {
				return true
			}
		}
	}
	return false
}

// varValues runs SHOW TAG VALUES and returns the "value" column.
func (r *dashInfluxRunner) varValues(t *testing.T, q string) []string {
	t.Helper()
	var out []string
	for _, s := range r.srv.Query(t, "k8s", q) {
		c := s.Column("value")
		if c < 0 {
			t.Fatalf("%s: series %s has no value column: %v", q, s.Name, s.Columns)
		}
		for _, row := range s.Values {
			if v, ok := row[c].(string); ok && !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	sort.Strings(out)
	return out
}

func (r *dashInfluxRunner) nonEmpty(t *testing.T, q string) (bool, string) {
	t.Helper()
	series := r.srv.Query(t, "k8s", q)
	if len(series) == 0 {
		return false, "no series"
	}
	for _, s := range series {
		for _, row := range s.Values {
			for i, v := range row {
				if s.Columns[i] != "time" && v != nil {
					return true, ""
				}
			}
		}
	}
	return false, fmt.Sprintf("%d series, every value null", len(series))
}

// podWithRequestsAndLimits finds the oldest pod with CPU and memory
// requests and limits in the last 15 minutes, from the sink's type=pod points.
func (r *dashInfluxRunner) podWithRequestsAndLimits(t *testing.T) map[string]string {
	t.Helper()
	type key struct{ ns, pod string }
	last := func(m model.MetricID) map[key]float64 {
		q := fmt.Sprintf(`SELECT last("value") FROM %q WHERE "type" = 'pod' AND %s GROUP BY "namespace_name", "pod_name"`,
			heapster(m), dashMacros["timeFilter"])
		out := map[key]float64{}
		for _, s := range r.srv.Query(t, "k8s", q) {
			if v, err := s.Floats("last"); err == nil && len(v) > 0 {
				out[key{s.Tags["namespace_name"], s.Tags["pod_name"]}] = v[0]
			}
		}
		return out
	}
	uptime := last(model.Uptime)
	for _, m := range []model.MetricID{model.CPURequest, model.CPULimit, model.MemoryRequest, model.MemoryLimit} {
		has := last(m)
		for k := range uptime {
			if _, ok := has[k]; !ok {
				delete(uptime, k)
			}
		}
	}
	var best key
	for k, up := range uptime {
		if best == (key{}) || up > uptime[best] || (up == uptime[best] && k.ns+"/"+k.pod < best.ns+"/"+best.pod) {
			best = k
		}
	}
	if best == (key{}) {
		t.Fatal("InfluxDB holds no pod with requests and limits")
	}
	t.Logf("pod shown: %s/%s, up %.0f s", best.ns, best.pod, uptime[best]/1000)
	return map[string]string{"namespace": best.ns, "pod": best.pod}
}

// The tags kubemon's influxdb sink writes on a level's points (Heapster's:
// internal/sink/influxdb), as kubemon's label keys map onto them.
var dashInfluxTagOf = map[string][]string{
	model.LabelNamespace:    {"namespace_name"},
	model.LabelPod:          {"pod_name"},
	model.LabelContainer:    {"container_name"},
	model.LabelNode:         {"nodename", "hostname"},
	model.LabelWorkloadKind: {"workload_kind"},
	model.LabelWorkload:     {"workload_name"},
}

func dashInfluxTags(l model.Level) []string {
	tags := []string{"type", "cluster_name"}
	for _, k := range l.LabelKeys() {
		tags = append(tags, dashInfluxTagOf[k]...)
	}
	if l == model.LevelPod || l == model.LevelContainer {
		tags = append(tags, "labels")
	}
	return tags
}

var (
	dashInfluxFromRE  = regexp.MustCompile(`FROM "([^"]+)"`)
	dashInfluxTypeRE  = regexp.MustCompile(`"type" = '([^']+)'`)
	dashInfluxCondRE  = regexp.MustCompile(`"(\w+)" (?:=~|!~|=|!=|<>)`)
	dashInfluxGroupRE = regexp.MustCompile(`GROUP BY (.*?)(?: fill\(|$)`)
	dashInfluxKeyRE   = regexp.MustCompile(`WITH KEY = "(\w+)"`)
	dashInfluxAliasRE = regexp.MustCompile(`\$tag_(\w+)`)
	dashLegendRE      = regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`)
)

// checkDashboardContract checks every name a dashboard uses against what
// kubemon writes, before any server runs: for PromQL, the series names and
// the label keys of matchers and legends (internal/model's contract); for
// InfluxQL, the measurement (a Heapster name), the type tag value (a level
// that has that metric) and the tag keys of conditions, GROUP BY, aliases
// and variables.
func checkDashboardContract(dashes []*grafanaDashboard) (errs []string) {
	// Placeholder values: what is checked here is names, not data.
	placeholders := func(d *grafanaDashboard) map[string][]string {
		v := map[string][]string{}
		for _, x := range d.vars {
			v[x.Name] = []string{"x"}
		}
		return v
	}
	levelOfType := map[string]model.Level{}
	for l := range model.NumLevels {
		levelOfType[l.Heapster()] = l
	}
	p := parser.NewParser(parser.Options{})
	for _, d := range dashes {
		vals := placeholders(d)
		type q struct{ what, text, legend string }
		var qs []q
		for _, pn := range d.panels {
			for _, tg := range pn.Targets {
				what := fmt.Sprintf("panel %q target %s", pn.Title, tg.RefID)
				if d.kind == "influxdb" {
					qs = append(qs, q{what, tg.Query, tg.Alias})
				} else {
					qs = append(qs, q{what, tg.Expr, tg.LegendFormat})
				}
			}
		}
		for _, v := range d.vars {
			qs = append(qs, q{"variable " + v.Name, v.query(), ""})
		}
		for _, x := range qs {
			text, err := dashInterpolate(x.text, d.kind, d.vars, vals)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: %s: %v", d.path, x.what, err))
				continue
			}
			errorf := func(format string, args ...any) {
				errs = append(errs, fmt.Sprintf(d.path+": "+x.what+": "+format, args...))
			}
			if d.kind == "prometheus" {
				if m := dashLabelValuesRE.FindStringSubmatch(text); m != nil {
					text = m[1]
					if text == "" {
						continue
					}
					x.legend = "{{" + m[2] + "}}"
				}
				expr, err := p.ParseExpr(text)
				if err != nil {
					errorf("%v: %s", err, text)
					continue
				}
				var keys []string
				unknown := false
				parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
					vs, ok := n.(*parser.VectorSelector)
					if !ok {
						return nil
					}
					l, m, ok := model.ParseSeriesName(vs.Name)
					if !ok {
						errorf("series %q is not one kubemon writes", vs.Name)
						unknown = true
						return nil
					}
					lk := model.SeriesLabelKeys(l, m)
					keys = append(keys, lk...)
					for _, mt := range vs.LabelMatchers {
						if mt.Name != "__name__" && !slices.Contains(lk, mt.Name) {
							errorf("series %s has no label %q (it has %v)", vs.Name, mt.Name, lk)
						}
					}
					return nil
				})
				for _, m := range dashLegendRE.FindAllStringSubmatch(x.legend, -1) {
					if !unknown && !slices.Contains(keys, m[1]) {
						errorf("legend label %q is none of the series' labels %v", m[1], keys)
					}
				}
				continue
			}
			// InfluxQL.
			froms := dashInfluxFromRE.FindAllStringSubmatch(text, -1)
			if len(froms) != 1 {
				errorf("want one measurement, FROM \"...\": %s", text)
				continue
			}
			meas := froms[0][1]
			metric, ok := model.ByHeapster(meas)
			if !ok || metric.ID == model.Info {
				errorf("measurement %q is no Heapster name kubemon's sink writes", meas)
				continue
			}
			var levels []model.Level
			if ty := dashInfluxTypeRE.FindStringSubmatch(text); ty != nil {
				l, ok := levelOfType[ty[1]]
				if !ok || !metric.Levels.Has(l) {
					errorf("measurement %q has no points of type %q", meas, ty[1])
					continue
				}
				levels = []model.Level{l}
			} else {
				for l := range model.NumLevels {
					if metric.Levels.Has(l) {
						levels = append(levels, l)
					}
				}
			}
			var tags []string
			for _, l := range levels {
				tags = append(tags, dashInfluxTags(l)...)
			}
			var used, grouped []string
			for _, m := range dashInfluxCondRE.FindAllStringSubmatch(text, -1) {
				used = append(used, m[1])
			}
			if g := dashInfluxGroupRE.FindStringSubmatch(text); g != nil {
				for _, m := range regexp.MustCompile(`"(\w+)"`).FindAllStringSubmatch(g[1], -1) {
					grouped = append(grouped, m[1])
				}
			}
			if k := dashInfluxKeyRE.FindStringSubmatch(text); k != nil {
				used = append(used, k[1])
			}
			for _, k := range append(used, grouped...) {
				if !slices.Contains(tags, k) {
					var types []string
					for _, l := range levels {
						types = append(types, l.Heapster())
					}
					errorf("measurement %q has no tag %q in points of type %v (tags %v)", meas, k, types, tags)
				}
			}
			for _, m := range dashInfluxAliasRE.FindAllStringSubmatch(x.legend, -1) {
				if !slices.Contains(grouped, m[1]) {
					errorf("alias $tag_%s: the query does not GROUP BY %q", m[1], m[1])
				}
			}
		}
	}
	return errs
}

// dashNegativeControl shows that an empty answer is caught: the dashboard's
// first query, with the variables' values it was run with but its
// measurement or series name misspelled, must draw nothing.
func dashNegativeControl(t *testing.T, d *grafanaDashboard, r dashRunner, vals map[string][]string) {
	t.Helper()
	p := d.panels[0]
	tg := p.Targets[0]
	raw := tg.Expr
	if d.kind == "influxdb" {
		raw = tg.Query
	}
	bad := dashMisspell(d.kind, raw)
	if bad == raw {
		t.Fatalf("negative control: nothing to misspell in %s", raw)
	}
	q, err := dashInterpolate(bad, d.kind, d.vars, vals)
	if err != nil {
		t.Fatalf("negative control: %v", err)
	}
	if ok, _ := r.nonEmpty(t, q); ok {
		t.Errorf("negative control: %s (misspelled) drew data: the emptiness check has no teeth", q)
	} else {
		t.Logf("negative control: %s (misspelled) draws nothing and would fail", q)
	}
}

// misspell appends "_misspelled" to the query's measurement (InfluxQL) or
// first series name (PromQL).
func dashMisspell(kind, q string) string {
	if kind == "influxdb" {
		return dashInfluxFromRE.ReplaceAllString(q, `FROM "${1}_misspelled"`)
	}
	for _, n := range model.SeriesNames() {
		if i := strings.Index(q, n); i >= 0 {
			return q[:i+len(n)] + "_misspelled" + q[i+len(n):]
		}
	}
	return q
}

// clone copies a dashboard deeply enough for mutate to change its queries.
func (d *grafanaDashboard) clone() *grafanaDashboard {
	c := *d
	c.panels = slices.Clone(d.panels)
	for i := range c.panels {
		c.panels[i].Targets = slices.Clone(c.panels[i].Targets)
	}
	c.vars = slices.Clone(d.vars)
	for i := range c.vars {
		c.vars[i].Query = slices.Clone(c.vars[i].Query)
	}
	return &c
}

// TestDashboardContractCatchesMistakes: the contract check (run by
// TestDashboardQueries before any server starts) reports each kind of
// mistake a dashboard edit can make, on copies of the real dashboards.
func TestDashboardContractCatchesMistakes(t *testing.T) {
	dashes := loadDashboards(t)
	if errs := checkDashboardContract(dashes); len(errs) > 0 {
		t.Fatalf("the dashboards themselves break the contract:\n%s", strings.Join(errs, "\n"))
	}
	for _, tc := range []struct {
		kind, old, new string
		want           string // in a reported error
	}{
		{"influxdb", `FROM "memory/working_set"`, `FROM "memory/workingset"`, `"memory/workingset" is no Heapster name`},
		{"influxdb", `"type" = 'node'`, `"type" = 'nodes'`, `no points of type "nodes"`},
		{"influxdb", `"type" = 'pod_container'`, `"type" = 'cluster'`, `no tag "pod_name"`},
		{"influxdb", `"nodename" =~`, `"node_name" =~`, `no tag "node_name"`},
		{"influxdb", `$tag_pod_name`, `$tag_podname`, `does not GROUP BY "podname"`},
		{"influxdb", `WITH KEY = "namespace_name"`, `WITH KEY = "namespace"`, `no tag "namespace"`},
		{"prometheus", `node_cpu_usage_cores`, `node_cpu_usage_core`, `"node_cpu_usage_core" is not one kubemon writes`},
		{"prometheus", `pod="$pod"`, `pod_name="$pod"`, `no label "pod_name"`},
		{"prometheus", `{{container}}`, `{{container_name}}`, `legend label "container_name"`},
		{"prometheus", `, node)`, `, nodename)`, `legend label "nodename"`},
		{"prometheus", `cluster_memory_working_set_bytes`, `cluster_memory_working_set`, `"cluster_memory_working_set" is not one kubemon writes`},
	} {
		changed := 0
		var mutated []*grafanaDashboard
		for _, d := range dashes {
			c := d.clone()
			if d.kind == tc.kind {
				for i := range c.panels {
					for j := range c.panels[i].Targets {
						tg := &c.panels[i].Targets[j]
						for _, f := range []*string{&tg.Query, &tg.Expr, &tg.Alias, &tg.LegendFormat} {
							if n := strings.ReplaceAll(*f, tc.old, tc.new); n != *f {
								*f, changed = n, changed+1
							}
						}
					}
				}
				for i := range c.vars {
					if q := c.vars[i].query(); strings.Contains(q, tc.old) {
						b, _ := json.Marshal(strings.ReplaceAll(q, tc.old, tc.new))
						c.vars[i].Query, changed = b, changed+1
					}
				}
			}
			mutated = append(mutated, c)
		}
		if changed == 0 {
			t.Errorf("%s %q → %q: no dashboard has %q; the case tests nothing", tc.kind, tc.old, tc.new, tc.old)
			continue
		}
		errs := checkDashboardContract(mutated)
		if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, tc.want) }) {
			t.Errorf("%s %q → %q (%d places): no error with %q; got %q", tc.kind, tc.old, tc.new, changed, tc.want, errs)
		}
	}
}
