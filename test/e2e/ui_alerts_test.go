package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kubemon/kubemon/internal/model"
)

// The checks of what the web UI shows about alerts and Kubernetes events:
// the Alerts page against /api/v1/alerts and /api/v1/rules, the events
// tables of the object pages against /api/v1/events, and the charts'
// markers (restarts, OOM kills, Warning events, firing alerts) against the
// series and events they are drawn from.

// Prometheus's names for alerts (rules.AlertMetricName, AlertNameLabel,
// AlertStateLabel).
const (
	alertsSeries = "ALERTS"
	alertName    = "alertname"
	alertState   = "alertstate"
)

// uiRules is a rule file for the UI tests: an alert that fires for any
// container that restarted (the test restarts one), one that stays pending
// (its for: is an hour), one whose every evaluation fails (health err,
// with its error) and a recording rule.
func uiRules(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ui-rules.yml")
	ctr := by(model.LabelNamespace, model.LabelPod, model.LabelContainer, model.LabelNode)
	cpu := name(model.LevelContainer, model.CPUUsageRate)
	rules := fmt.Sprintf(`groups:
  - name: ui
    rules:
      - alert: UIContainerRestarted
        expr: max by (%[1]s) (%[2]s) > 0
        for: 0s
        labels: {severity: critical}
        annotations:
          summary: "{{ $labels.%[3]s }} of {{ $labels.%[4]s }} restarted"
          description: "It restarted {{ $value }} times."
          runbook_url: "https://example.com/runbooks#uicontainerrestarted"
      - alert: UINodesPending
        expr: count(%[5]s) > 0
        for: 1h
        labels: {severity: info}
        annotations: {summary: "{{ $value }} nodes report"}
      - alert: UIBroken
        expr: %[6]s + on() group_left %[6]s
      - record: ui:pods:count
        expr: count(%[7]s)
`, ctr, name(model.LevelContainer, model.Restarts), model.LabelContainer, model.LabelPod,
		name(model.LevelNode, model.Uptime), cpu, name(model.LevelPod, model.Info))
	if err := os.WriteFile(path, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// restartForUI restarts o's container in the simulator and waits until
// kubemon fires UIContainerRestarted for it (and has stored two
// evaluations of it) and keeps its BackOff event.
func restartForUI(t testing.TB, p *proc, o uiObjects) {
	t.Helper()
	p.post(t, "/sim/restart?"+url.Values{"namespace": {o.namespace}, "pod": {o.pod}, "container": {o.container}}.Encode())
	firing := alertsSeries + match(alertName, "UIContainerRestarted", alertState, "firing", model.LabelNamespace, o.namespace, model.LabelPod, o.pod)
	waitFor(t, 60*time.Second, "UIContainerRestarted firing twice in the store", func() bool {
		r := p.query(t, "count_over_time("+firing+"[5m])")
		return len(r) == 1 && r[0].v(t) >= 2
	})
	waitFor(t, 30*time.Second, "the BackOff event of "+o.pod, func() bool {
		for _, e := range uiEvents(t, p, "api/v1/events?"+url.Values{"namespace": {o.namespace}, "kind": {"Pod"}, "name": {o.pod}}.Encode()) {
			if e.Reason == "BackOff" && e.Type == "Warning" {
				return true
			}
		}
		return false
	})
}

// uiEvent is an event of /api/v1/events, with what the UI uses of it.
type uiEvent struct {
	UID            string    `json:"uid"`
	FirstTime      time.Time `json:"firstTime"`
	LastTime       time.Time `json:"lastTime"`
	Count          int       `json:"count"`
	Type           string    `json:"type"`
	Reason         string    `json:"reason"`
	Message        string    `json:"message"`
	InvolvedObject struct {
		Kind, Namespace, Name, UID, FieldPath string
	} `json:"involvedObject"`
}

// uiEvents is the events answer of a relative URL (as the UI asks for it).
func uiEvents(t testing.TB, p *proc, rel string) []uiEvent {
	t.Helper()
	var env struct {
		Status string    `json:"status"`
		Data   []uiEvent `json:"data"`
	}
	p.getJSON(t, "/"+strings.TrimPrefix(rel, "/"), &env)
	if env.Status != "success" {
		t.Fatalf("%s: status %q", rel, env.Status)
	}
	return env.Data
}

// unixMs is t as the browser reads an RFC 3339 time (Date.parse: whole
// milliseconds), in unix seconds.
func unixMs(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

// containerOfField is the container an event's fieldPath names.
var containerOfField = regexp.MustCompile(`^spec\.(?:initContainers|containers|ephemeralContainers)\{(.+)\}$`)

func fieldContainer(fieldPath string) string {
	if m := containerOfField.FindStringSubmatch(fieldPath); m != nil {
		return m[1]
	}
	return ""
}

// shownEvents is an events table: the URL it was read from and its rows.
type shownEvents struct {
	Query     string `json:"query"`
	PodsQuery string `json:"podsQuery"`
	PodsTime  string `json:"podsTime"`
	Rows      []struct {
		Key     string            `json:"key"`
		Warning bool              `json:"warning"`
		Type    string            `json:"type"`
		Values  map[string]string `json:"values"`
	} `json:"rows"`
}

// pageEvents is what the page's events table should show: the answer of
// its URL, kept as the page keeps it (a workload's: its own events, its
// pods' over the range and its ReplicaSets' or Jobs').
func pageEvents(t testing.TB, p *proc, pg uiPage, tb shownEvents) []uiEvent {
	t.Helper()
	evs := uiEvents(t, p, tb.Query)
	if tb.PodsQuery == "" {
		return evs
	}
	var r struct {
		Data struct {
			Result []sample `json:"result"`
		} `json:"data"`
	}
	p.getJSON(t, "/api/v1/query?query="+url.QueryEscape(tb.PodsQuery)+"&time="+tb.PodsTime, &r)
	pods := map[string]bool{}
	for _, s := range r.Data.Result {
		pods[s.Metric[model.LabelPod]] = true
	}
	if len(pods) == 0 {
		t.Errorf("%s: the events table's pods query %s answers no pods", pg.name, tb.PodsQuery)
	}
	// The page's route names the workload: #/workload/NS/KIND/NAME.
	parts := strings.Split(strings.SplitN(strings.TrimPrefix(pg.route, "#/"), "?", 2)[0], "/")
	kind, wl := parts[2], parts[3]
	rs := regexp.MustCompile("^" + regexp.QuoteMeta(wl) + "-[a-z0-9]+$")
	job := regexp.MustCompile("^" + regexp.QuoteMeta(wl) + "-[0-9]+$")
	var out []uiEvent
	for _, e := range evs {
		o := e.InvolvedObject
		if (o.Kind == kind && o.Name == wl) || (o.Kind == "Pod" && pods[o.Name]) ||
			(kind == "Deployment" && o.Kind == "ReplicaSet" && rs.MatchString(o.Name)) || (kind == "CronJob" && o.Kind == "Job" && job.MatchString(o.Name)) {
			out = append(out, e)
		}
	}
	return out
}

// checkEventsTable compares the page's events table, when it has one, row
// for row with what /api/v1/events answers for the URL it was read from:
// the same events (by UID), their last and first times and counts, and
// every Warning highlighted. It returns the rows compared and the Warning
// events.
func checkEventsTable(t testing.TB, b *browser, p *proc, pg uiPage) (rows int, warnings []uiEvent) {
	t.Helper()
	raw := evalJSON(t, b, `(() => { const tb = document.querySelector('[data-testid="table-events"]');
		if (!tb) return "null";
		return JSON.stringify({query: tb.dataset.query || "", podsQuery: tb.dataset.podsQuery || "", podsTime: tb.dataset.podsTime || "",
			rows: [...tb.querySelectorAll('[data-testid="row"]')].map(r => ({key: r.dataset.key, type: r.dataset.type || "",
				warning: r.classList.contains("row-warning"),
				values: Object.fromEntries([...r.querySelectorAll('[data-col][data-value]')].map(c => [c.dataset.col, c.dataset.value]))}))}) })()`)
	if string(raw) == "null" {
		return 0, nil
	}
	tb := jsonOf[shownEvents](t, raw)
	if !strings.HasPrefix(tb.Query, "api/v1/events?") {
		t.Fatalf("%s: the events table says it was read from %q, want a relative api/v1/events URL", pg.name, tb.Query)
	}
	if pg.events != "" && !strings.Contains("&"+strings.TrimPrefix(tb.Query, "api/v1/events?")+"&", "&"+pg.events+"&") {
		t.Errorf("%s: the events table was read from %s, want %s", pg.name, tb.Query, pg.events)
	}
	want := pageEvents(t, p, pg, tb)
	if pg.name == "node" {
		// Not only the Node object's: its pods' too.
		pods := 0
		for _, e := range want {
			if e.InvolvedObject.Kind == "Pod" {
				pods++
			}
		}
		if pods == 0 {
			t.Errorf("%s: %s answers no pod's event (%d events)", pg.name, tb.Query, len(want))
		}
	}
	byUID := map[string]uiEvent{}
	for _, e := range want {
		byUID[e.UID] = e
		if e.Type == "Warning" {
			warnings = append(warnings, e)
		}
	}
	if len(tb.Rows) != len(want) {
		t.Errorf("%s: the events table has %d rows, %s answers %d events", pg.name, len(tb.Rows), tb.Query, len(want))
	}
	for _, r := range tb.Rows {
		e, ok := byUID[r.Key]
		if !ok {
			t.Errorf("%s: the events table shows event %s, which %s does not answer", pg.name, r.Key, tb.Query)
			continue
		}
		rows++
		num := func(col string) float64 {
			f, err := strconv.ParseFloat(r.Values[col], 64)
			if err != nil {
				t.Errorf("%s: event %s, column %s: %q", pg.name, r.Key, col, r.Values[col])
			}
			return f
		}
		if got := num("last"); math.Abs(got-unixMs(e.LastTime)) > 1e-6 {
			t.Errorf("%s: event %s (%s) last seen %v, the API %v", pg.name, r.Key, e.Reason, got, e.LastTime)
		}
		if got := num("first"); math.Abs(got-unixMs(e.FirstTime)) > 1e-6 {
			t.Errorf("%s: event %s (%s) first seen %v, the API %v", pg.name, r.Key, e.Reason, got, e.FirstTime)
		}
		if got := num("count"); got != float64(e.Count) {
			t.Errorf("%s: event %s (%s) count %v, the API %d", pg.name, r.Key, e.Reason, got, e.Count)
		}
		if r.Type != e.Type || r.Warning != (e.Type == "Warning") {
			t.Errorf("%s: event %s (%s) of type %s shown as %q (highlighted %v)", pg.name, r.Key, e.Reason, e.Type, r.Type, r.Warning)
		}
	}
	return rows, warnings
}

// shownMarker is a chart marker as the page drew it.
type shownMarker struct {
	Time  float64  `json:"time"`
	End   *float64 `json:"end"`
	Kind  string   `json:"kind"`
	Label string   `json:"label"`
}

// shownMarkers is a chart's markers and where they came from.
type shownMarkers struct {
	Start, End, Step float64
	MarkerQuery      []string      `json:"markerQuery"`
	EventsQuery      string        `json:"eventsQuery"`
	Markers          []shownMarker `json:"markers"`
}

// labeledMatrix runs a range query and returns its series with their labels.
func labeledMatrix(t testing.TB, p *proc, q string, start, end, step float64) []struct {
	Metric map[string]string
	Points [][2]float64
} {
	t.Helper()
	v := url.Values{"query": {q}, "start": {strconv.FormatFloat(start, 'f', -1, 64)},
		"end": {strconv.FormatFloat(end, 'f', -1, 64)}, "step": {strconv.FormatFloat(step, 'f', -1, 64)}}
	var r struct {
		Data struct {
			Result []struct {
				Metric map[string]string    `json:"metric"`
				Values [][2]json.RawMessage `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	p.getJSON(t, "/api/v1/query_range?"+v.Encode(), &r)
	out := make([]struct {
		Metric map[string]string
		Points [][2]float64
	}, len(r.Data.Result))
	for i, s := range r.Data.Result {
		out[i].Metric = s.Metric
		for _, pv := range s.Values {
			var ts float64
			var vs string
			if json.Unmarshal(pv[0], &ts) != nil || json.Unmarshal(pv[1], &vs) != nil {
				t.Fatalf("query_range %s: point %s", q, pv)
			}
			f, err := strconv.ParseFloat(vs, 64)
			if err != nil {
				t.Fatal(err)
			}
			out[i].Points = append(out[i].Points, [2]float64{ts, f})
		}
	}
	return out
}

// wantMarkers computes a chart's markers from its marker queries and its
// events, as docs/ui.md defines them: a restart or OOM kill where the
// counter went up; a band over each run of points (at most a step apart)
// of an ALERTS series whose alertstate is firing (a node's page: only
// alerts without a pod); a Warning event at the time it last happened (a
// container's page: the events of the container or of the pod as a whole).
func wantMarkers(t testing.TB, p *proc, pg uiPage, c shownMarkers, events []uiEvent) []shownMarker {
	t.Helper()
	var out []shownMarker
	restarts, ooms := name(model.LevelContainer, model.Restarts), name(model.LevelContainer, model.OOMKills)
	for _, q := range c.MarkerQuery {
		for _, s := range labeledMatrix(t, p, q, c.Start, c.End, c.Step) {
			switch s.Metric["__name__"] {
			case restarts, ooms:
				kind := "restart"
				if s.Metric["__name__"] == ooms {
					kind = "oom"
				}
				for i := 1; i < len(s.Points); i++ {
					if s.Points[i][1] > s.Points[i-1][1] {
						out = append(out, shownMarker{Time: s.Points[i][0], Kind: kind})
					}
				}
			case alertsSeries:
				if s.Metric[alertState] != "firing" || (pg.name == "node" && s.Metric[model.LabelPod] != "") {
					continue
				}
				var run *shownMarker
				for _, pt := range s.Points {
					if run != nil && pt[0]-*run.End <= c.Step+1e-6 {
						e := pt[0]
						run.End = &e
						continue
					}
					if run != nil {
						out = append(out, *run)
					}
					e := pt[0]
					run = &shownMarker{Time: pt[0], End: &e, Kind: "alert", Label: s.Metric[alertName]}
				}
				if run != nil {
					out = append(out, *run)
				}
			default:
				t.Errorf("%s: marker query %s answers a series %v that is neither a counter of restarts or OOM kills nor %s", pg.name, q, s.Metric, alertsSeries)
			}
		}
	}
	for _, e := range events {
		if e.Type != "Warning" {
			continue
		}
		if pg.name == "container" {
			parts := strings.Split(strings.TrimPrefix(pg.route, "#/"), "/")
			if ctr := fieldContainer(e.InvolvedObject.FieldPath); ctr != "" && ctr != parts[3] {
				continue
			}
		}
		out = append(out, shownMarker{Time: unixMs(e.LastTime), Kind: "event", Label: e.Reason})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Time != out[j].Time {
			return out[i].Time < out[j].Time
		}
		return out[i].Kind < out[j].Kind
	})
	return out
}

// checkMarkers compares every chart's markers with wantMarkers (those up to
// settle before the chart's end: later samples may have been stored after
// the page asked; a band running into that time may have grown) and checks
// that each chart has the kinds pg.markers names. It returns the markers
// compared.
func checkMarkers(t testing.TB, b *browser, p *proc, pg uiPage, events []uiEvent, settle time.Duration) int {
	t.Helper()
	charts := jsonOf[map[string]shownMarkers](t, evalJSON(t, b, `JSON.stringify((window.kubemon && window.kubemon.charts) || {})`))
	compared := 0
	for name, c := range charts {
		final := c.End - settle.Seconds()
		want := wantMarkers(t, p, pg, c, events)
		var got []shownMarker
		for _, m := range c.Markers {
			if m.Time <= final {
				got = append(got, m)
			}
		}
		var w []shownMarker
		for _, m := range want {
			if m.Time <= final {
				w = append(w, m)
			}
		}
		if len(got) != len(w) {
			t.Errorf("%s: chart %s draws %d markers up to %v s before its end, the data has %d:\n drawn %+v\n want  %+v", pg.name, name, len(got), settle.Seconds(), len(w), got, w)
			continue
		}
		for i := range w {
			g, x := got[i], w[i]
			if g.Kind != x.Kind || math.Abs(g.Time-x.Time) > 1e-6 || !strings.Contains(g.Label, x.Label) {
				t.Errorf("%s: chart %s, marker %d: drawn %s at %v (%q), want %s at %v (%q)", pg.name, name, i, g.Kind, g.Time, g.Label, x.Kind, x.Time, x.Label)
				continue
			}
			if x.Kind == "alert" {
				switch {
				case g.End == nil:
					t.Errorf("%s: chart %s: the %s band at %v has no end", pg.name, name, x.Label, x.Time)
				case *x.End <= final-c.Step && *g.End != *x.End:
					t.Errorf("%s: chart %s: the %s band from %v ends at %v, the data at %v", pg.name, name, x.Label, x.Time, *g.End, *x.End)
				case *g.End > *x.End || *g.End < x.Time:
					t.Errorf("%s: chart %s: the %s band from %v ends at %v, past the data's %v", pg.name, name, x.Label, x.Time, *g.End, *x.End)
				}
			}
			compared++
		}
		for _, kind := range pg.markers {
			n := 0
			for _, m := range c.Markers {
				if m.Kind == kind {
					n++
				}
			}
			if n == 0 {
				t.Errorf("%s: chart %s has no %s marker (markers %+v)", pg.name, name, kind, c.Markers)
			}
		}
		// The legend under the chart names every kind drawn.
		legend := eval[[]string](t, b, fmt.Sprintf(`[...document.querySelectorAll('[data-testid="chart-%s"] [data-testid="chart-markers"] li')].map(li => li.dataset.kind)`, name))
		kinds := map[string]bool{}
		for _, m := range c.Markers {
			kinds[m.Kind] = true
		}
		if len(legend) != len(kinds) {
			t.Errorf("%s: chart %s's legend lists %v, it draws %v", pg.name, name, legend, kinds)
		}
	}
	return compared
}

// labelsKey is the UI's key of an alert: its labels as {name="value",…},
// names sorted, values as JSON strings.
func labelsKey(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("{")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(",")
		}
		var v bytes.Buffer
		enc := json.NewEncoder(&v)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(labels[k])
		b.WriteString(k + "=" + strings.TrimSpace(v.String()))
	}
	b.WriteString("}")
	return b.String()
}

// uiAlert is an alert of /api/v1/alerts with everything the page shows.
type uiAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
	ActiveAt    time.Time         `json:"activeAt"`
	Value       string            `json:"value"`
}

// uiRuleGroup is a group of /api/v1/rules.
type uiRuleGroup struct {
	Name  string `json:"name"`
	File  string `json:"file"`
	Rules []struct {
		Name      string    `json:"name"`
		Type      string    `json:"type"`
		State     string    `json:"state"`
		Health    string    `json:"health"`
		LastError string    `json:"lastError"`
		Alerts    []uiAlert `json:"alerts"`
	} `json:"rules"`
}

// checkAlertsPage compares the Alerts page with /api/v1/alerts and
// /api/v1/rules: its counts, the badge in the navigation, every alert
// (labels, state, active since, value, a link to each object its labels
// name, its runbook), every rule group and rule (health, last error). It
// returns the values compared.
func checkAlertsPage(t testing.TB, b *browser, p *proc, pg uiPage) int {
	t.Helper()
	var ar struct {
		Data struct {
			Alerts []uiAlert `json:"alerts"`
		} `json:"data"`
	}
	p.getJSON(t, "/api/v1/alerts", &ar)
	var rr struct {
		Data struct {
			Groups []uiRuleGroup `json:"groups"`
		} `json:"data"`
	}
	p.getJSON(t, "/api/v1/rules", &rr)
	compared := 0

	firing, pending, rules, errs := 0, 0, 0, 0
	for _, a := range ar.Data.Alerts {
		switch a.State {
		case "firing":
			firing++
		case "pending":
			pending++
		}
	}
	for _, g := range rr.Data.Groups {
		for _, r := range g.Rules {
			rules++
			if r.Health == "err" {
				errs++
			}
		}
	}
	stats := jsonOf[map[string]string](t, evalJSON(t, b, `JSON.stringify(Object.fromEntries([...document.querySelectorAll('[data-testid^="stat-"]')].map(e => [e.dataset.testid, e.dataset.value || ""])))`))
	for id, want := range map[string]int{"firing": firing, "pending": pending, "rules": rules, "rule-errors": errs, "rule-groups": len(rr.Data.Groups)} {
		if got := stats["stat-"+id]; got != strconv.Itoa(want) {
			t.Errorf("%s: stat %s shows %q, the APIs give %d", pg.name, id, got, want)
		}
		compared++
	}
	if badge := eval[string](t, b, `document.querySelector('[data-testid="alerts-badge"]').dataset.count`); badge != strconv.Itoa(firing) {
		t.Errorf("%s: the navigation's badge says %q alerts firing, the API %d", pg.name, badge, firing)
	}

	type shownRow struct {
		Key    string            `json:"key"`
		State  string            `json:"state"`
		Health string            `json:"health"`
		Values map[string]string `json:"values"`
		Cells  map[string]string `json:"cells"`
		Links  []string          `json:"links"`
		Class  string            `json:"class"`
	}
	rowsOf := func(table string) []shownRow {
		return jsonOf[[]shownRow](t, evalJSON(t, b, fmt.Sprintf(`JSON.stringify([...document.querySelectorAll('[data-testid="table-%s"] [data-testid="row"]')].map(r => ({
			key: r.dataset.key, state: r.dataset.state || "", health: r.dataset.health || "", class: r.className,
			values: Object.fromEntries([...r.querySelectorAll('[data-col][data-value]')].map(c => [c.dataset.col, c.dataset.value])),
			cells: Object.fromEntries([...r.querySelectorAll('[data-col]')].map(c => [c.dataset.col, c.innerText])),
			links: [...r.querySelectorAll('a[data-testid^="link-"], a[data-testid="runbook"]')].map(a => a.dataset.testid + " " + a.getAttribute("href"))})))`, table)))
	}

	alerts := map[string]uiAlert{}
	for _, a := range ar.Data.Alerts {
		alerts[labelsKey(a.Labels)] = a
	}
	shown := rowsOf("alerts")
	if len(shown) != len(alerts) {
		t.Errorf("%s: %d alerts shown, the API has %d", pg.name, len(shown), len(alerts))
	}
	for _, r := range shown {
		a, ok := alerts[r.Key]
		if !ok {
			t.Errorf("%s: alert %s shown, not in the API's answer", pg.name, r.Key)
			continue
		}
		if r.State != a.State || !strings.Contains(r.Class, "row-"+a.State) || !strings.Contains(r.Cells["state"], a.State) {
			t.Errorf("%s: alert %s shown %q (%q), the API says %s", pg.name, r.Key, r.State, r.Cells["state"], a.State)
		}
		if since, err := strconv.ParseFloat(r.Values["since"], 64); err != nil || math.Abs(since-unixMs(a.ActiveAt)) > 1e-6 {
			t.Errorf("%s: alert %s active since %q, the API %v", pg.name, r.Key, r.Values["since"], a.ActiveAt)
		}
		if r.Values["value"] != a.Value {
			t.Errorf("%s: alert %s's value %q, the API %q", pg.name, r.Key, r.Values["value"], a.Value)
		}
		if s := a.Annotations["summary"]; s != "" && !strings.Contains(r.Cells["summary"], s) {
			t.Errorf("%s: alert %s's summary %q, the API %q", pg.name, r.Key, r.Cells["summary"], s)
		}
		if sev := a.Labels["severity"]; sev != "" && !strings.Contains(r.Cells["severity"], sev) {
			t.Errorf("%s: alert %s's severity %q, the API %q", pg.name, r.Key, r.Cells["severity"], sev)
		}
		// A link to every object the labels name.
		l := a.Labels
		var wantLinks []string
		if ns := l[model.LabelNamespace]; ns != "" {
			wantLinks = append(wantLinks, "link-namespace #/namespace/"+url.PathEscape(ns))
			if pod := l[model.LabelPod]; pod != "" {
				wantLinks = append(wantLinks, "link-pod #/pod/"+url.PathEscape(ns)+"/"+url.PathEscape(pod))
				if c := l[model.LabelContainer]; c != "" {
					wantLinks = append(wantLinks, "link-container #/container/"+url.PathEscape(ns)+"/"+url.PathEscape(pod)+"/"+url.PathEscape(c))
				}
			}
		}
		if n := l[model.LabelNode]; n != "" {
			wantLinks = append(wantLinks, "link-node #/node/"+url.PathEscape(n))
		}
		if rb := a.Annotations["runbook_url"]; rb != "" {
			wantLinks = append(wantLinks, "runbook "+rb)
		}
		for _, w := range wantLinks {
			found := false
			for _, g := range r.Links {
				// Links keep the page's range parameters.
				if g == w || strings.HasPrefix(g, w+"?") {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: alert %s has no link %q (links %q)", pg.name, r.Key, w, r.Links)
			}
		}
		compared++
	}

	groups := map[string]bool{}
	ruleRows := map[string]struct{ health, lastError string }{}
	for _, g := range rr.Data.Groups {
		groups[g.File+":"+g.Name] = true
		for i, r := range g.Rules {
			ruleRows[fmt.Sprintf("%s:%s#%d", g.File, g.Name, i)] = struct{ health, lastError string }{r.Health, r.LastError}
		}
	}
	gs := rowsOf("rule-groups")
	if len(gs) != len(groups) {
		t.Errorf("%s: %d rule groups shown, the API has %d", pg.name, len(gs), len(groups))
	}
	for _, r := range gs {
		if !groups[r.Key] {
			t.Errorf("%s: rule group %s shown, not in the API's answer", pg.name, r.Key)
		}
	}
	rs := rowsOf("rules")
	if len(rs) != len(ruleRows) {
		t.Errorf("%s: %d rules shown, the API has %d", pg.name, len(rs), len(ruleRows))
	}
	for _, r := range rs {
		want, ok := ruleRows[r.Key]
		if !ok {
			t.Errorf("%s: rule %s shown, not in the API's answer", pg.name, r.Key)
			continue
		}
		if r.Health != want.health || (want.lastError != "" && !strings.Contains(r.Cells["last_error"], want.lastError[:min(40, len(want.lastError))])) {
			t.Errorf("%s: rule %s shown with health %q and error %q, the API: %q, %q", pg.name, r.Key, r.Health, r.Cells["last_error"], want.health, want.lastError)
		}
		compared++
	}
	return compared
}

// checkMarkerTips opens o's pod page over the last 15 minutes and moves the
// cursor over its CPU chart's Warning event and alert band: the tooltip
// says what each is (the kind, the event's reason, the alert's name).
func checkMarkerTips(t testing.TB, b *browser, base string, o uiObjects) {
	t.Helper()
	b.open(t, base+"/#/pod/"+o.namespace+"/"+o.pod+"?range=15m")
	c := jsonOf[map[string]shownMarkers](t, evalJSON(t, b, `JSON.stringify(window.kubemon.charts)`))["cpu"]
	box := jsonOf[struct{ X, Y, W, H float64 }](t, evalJSON(t, b, `(() => {
		const el = document.querySelector('[data-testid="chart-cpu"] .u-over');
		el.scrollIntoView({block: "center"});
		const r = el.getBoundingClientRect();
		return JSON.stringify({x: r.left, y: r.top, w: r.width, h: r.height});
	})()`))
	if !(box.W > 100 && box.H > 50) {
		t.Fatalf("the CPU chart's plot area is %+v", box)
	}
	for _, want := range []struct{ kind, title string }{{"event", "Warning event"}, {"alert", "Alert firing"}} {
		var m *shownMarker
		for i := range c.Markers {
			if c.Markers[i].Kind == want.kind {
				m = &c.Markers[i]
				break
			}
		}
		if m == nil {
			t.Errorf("the pod's CPU chart over 15 minutes has no %s marker: %+v", want.kind, c.Markers)
			continue
		}
		at := m.Time
		if m.End != nil {
			at = (m.Time + *m.End) / 2
		}
		x := box.X + (at-c.Start)/(c.End-c.Start)*box.W
		b.do(t, "moving the cursor over the "+want.kind+" marker", chromedp.MouseEvent(chromedp.MouseMoved, x, box.Y+box.H/2))
		tip := eval[string](t, b, `(() => { const el = document.querySelector('[data-testid="chart-cpu"] .chart-tip'); return el && !el.hidden ? el.innerText : "" })()`)
		// The label's first word: the event's reason, the alert's name.
		what := strings.Fields(m.Label)[0]
		if !strings.Contains(tip, want.title) || !strings.Contains(tip, strings.TrimSuffix(what, ":")) || strings.Contains(tip, "null") || strings.Contains(tip, "undefined") {
			t.Errorf("over the %s marker %q the tooltip says %q, want %q and %q", want.kind, m.Label, tip, want.title, what)
		}
	}
	b.screenshot(t, "pod-marker-tooltip")
	// Away from the plot the tooltip goes.
	b.do(t, "moving the cursor away", chromedp.MouseEvent(chromedp.MouseMoved, 1, 1))
	if tip := eval[bool](t, b, `document.querySelector('[data-testid="chart-cpu"] .chart-tip').hidden`); !tip {
		t.Errorf("the marker tooltip stays after the cursor left the chart")
	}
}
