package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/model"
)

// uiPage is one view of the web UI.
type uiPage struct {
	name  string // for screenshots
	route string // the URL's fragment, "#/..."
	// charts and stats name what the view must show (data-testid
	// suffixes); tables the tables that must have rows; markers the kinds
	// of marker every chart must draw.
	charts, tables, markers []string
	minStats                int
	// events, when set, is a parameter the events table must be read
	// with (the node page: node=NAME, the events on the node).
	events string
}

// uiObjects are the names a UI test browses to.
type uiObjects struct {
	node, namespace, pod, container, workloadKind, workload string
}

// pickObjects chooses a pod with a workload, and its node, namespace and
// first container, from what kubemon stores.
func pickObjects(t testing.TB, p *proc) uiObjects {
	t.Helper()
	var o uiObjects
	info := p.query(t, sel(model.LevelPod, model.Info)+`{`+model.LabelWorkload+`!=""}`)
	sort.Slice(info, func(i, j int) bool { return info[i].Metric[model.LabelPod] < info[j].Metric[model.LabelPod] })
	for _, s := range info {
		ctrs := p.query(t, sel(model.LevelContainer, model.CPUUsageRate, model.LabelNamespace, s.Metric[model.LabelNamespace], model.LabelPod, s.Metric[model.LabelPod]))
		if len(ctrs) == 0 {
			continue
		}
		sort.Slice(ctrs, func(i, j int) bool {
			return ctrs[i].Metric[model.LabelContainer] < ctrs[j].Metric[model.LabelContainer]
		})
		o = uiObjects{node: s.Metric[model.LabelNode], namespace: s.Metric[model.LabelNamespace], pod: s.Metric[model.LabelPod],
			container: ctrs[0].Metric[model.LabelContainer], workloadKind: s.Metric[model.LabelWorkloadKind], workload: s.Metric[model.LabelWorkload]}
		break
	}
	if o.pod == "" || o.node == "" || o.workload == "" {
		t.Fatalf("no pod with a workload and a container's CPU rate among %d pods", len(info))
	}
	return o
}

// uiPages are the views TestUIPages checks; o's container has restarted
// (restartForUI), so its pod, container, namespace and workload pages have
// events, a Warning among them, and a firing alert.
func uiPages(o uiObjects) []uiPage {
	usage := []string{"cpu", "memory"}
	all := []string{"restart", "event", "alert"}
	return []uiPage{
		{name: "overview", route: "#/", charts: usage, minStats: 6, tables: []string{"top-pods-cpu", "top-pods-memory"}},
		{name: "nodes", route: "#/nodes", tables: []string{"nodes"}},
		// The node's events are those on it: its pods' (the restarted
		// container's BackOff among them, a Warning marked on its charts).
		{name: "node", route: "#/node/" + o.node, charts: []string{"cpu", "memory", "network", "filesystem"}, tables: []string{"pods", "events"}, minStats: 2,
			markers: []string{"event"}, events: url.Values{"node": {o.node}}.Encode()},
		{name: "namespaces", route: "#/namespaces", tables: []string{"namespaces"}},
		{name: "namespace", route: "#/namespace/" + o.namespace, charts: usage, tables: []string{"pods", "events"}, markers: []string{"event", "alert"}},
		{name: "workloads", route: "#/workloads", tables: []string{"workloads"}},
		{name: "workload", route: "#/workload/" + o.namespace + "/" + o.workloadKind + "/" + o.workload, charts: usage, tables: []string{"pods", "events"},
			markers: []string{"event", "alert"}},
		{name: "pods", route: "#/pods", tables: []string{"pods"}},
		{name: "pod", route: "#/pod/" + o.namespace + "/" + o.pod, charts: []string{"cpu", "memory", "network", "filesystem"}, tables: []string{"containers", "events"}, markers: all},
		{name: "container", route: "#/container/" + o.namespace + "/" + o.pod + "/" + o.container, charts: usage, tables: []string{"events"}, markers: all},
		{name: "rightsizing", route: "#/rightsizing?window=1h", tables: []string{"rightsizing"}},
		{name: "alerts", route: "#/alerts", tables: []string{"alerts", "rule-groups", "rules"}},
	}
}

// shownStat is a number a page shows, with the query it came from.
type shownStat struct {
	ID    string `json:"id"`
	Query string `json:"query"`
	Value string `json:"value"`
	Time  string `json:"time"`
}

// shownChart is a chart's data as the page drew it (window.kubemon.charts).
type shownChart struct {
	Start  float64 `json:"start"`
	End    float64 `json:"end"`
	Step   float64 `json:"step"`
	Series []struct {
		Label  string       `json:"label"`
		Query  string       `json:"query"`
		Values [][2]float64 `json:"values"`
	} `json:"series"`
}

// checkShown compares what the page shows with what kubemon's API
// answers: every stat tile's number with its query's value, every chart's
// series point for point with the same range query; and checks that the
// charts and tables page names are there and not empty.
func checkShown(t testing.TB, b *browser, p *proc, pg uiPage, settle time.Duration) (stats, charts, points int) {
	t.Helper()
	shown := jsonOf[[]shownStat](t, evalJSON(t, b, `JSON.stringify([...document.querySelectorAll('[data-testid^="stat-"]')].map(e => ({
		id: e.dataset.testid, query: e.dataset.query || "", value: e.dataset.value || "", time: e.dataset.time || ""})))`))
	compared := 0
	for _, s := range shown {
		if s.Query == "" {
			continue
		}
		shown, err := strconv.ParseFloat(s.Value, 64)
		if err != nil {
			t.Errorf("%s: %s shows %q, not a number", pg.name, s.ID, s.Value)
			continue
		}
		q := "/api/v1/query?query=" + url.QueryEscape(s.Query)
		if s.Time != "" {
			q += "&time=" + url.QueryEscape(s.Time)
		}
		var r struct {
			Data struct {
				Result []sample `json:"result"`
			} `json:"data"`
		}
		p.getJSON(t, q, &r)
		if len(r.Data.Result) != 1 {
			t.Errorf("%s: %s's query %s answers %d samples, want 1", pg.name, s.ID, s.Query, len(r.Data.Result))
			continue
		}
		// Without the time the page evaluated at, a value that moves
		// (an uptime) may have moved since.
		tol := 1e-9
		if s.Time == "" {
			tol = 0.01
		}
		if want := r.Data.Result[0].v(t); !within(shown, want, tol) {
			t.Errorf("%s: %s shows %v, its query %s answers %v", pg.name, s.ID, shown, s.Query, want)
		}
		compared++
	}
	if compared < pg.minStats {
		t.Errorf("%s: %d numbers with their queries compared, want at least %d", pg.name, compared, pg.minStats)
	}

	drawn := jsonOf[map[string]shownChart](t, evalJSON(t, b, `JSON.stringify((window.kubemon && window.kubemon.charts) || {})`))
	for _, want := range pg.charts {
		if _, ok := drawn[want]; !ok {
			t.Errorf("%s: no chart %q (charts: %v)", pg.name, want, keys(drawn))
		}
		if n := eval[int](t, b, fmt.Sprintf(`document.querySelectorAll('[data-testid="chart-%s"] canvas').length`, want)); n == 0 {
			t.Errorf("%s: chart %q has no canvas", pg.name, want)
		}
	}
	for name, c := range drawn {
		chartPoints := 0
		for _, s := range c.Series {
			if s.Query == "" {
				t.Errorf("%s: chart %s, series %q names no query", pg.name, name, s.Label)
				continue
			}
			// The points up to `settle` before the chart's end are final;
			// later ones may still have been stored after the page asked.
			got := map[int64]float64{}
			for _, v := range s.Values {
				if v[0] <= c.End-settle.Seconds() {
					got[int64(v[0])] = v[1]
				}
			}
			want := map[int64]float64{}
			for _, pts := range matrixAt(t, p, s.Query, c.Start, c.End, c.Step) {
				for _, pt := range pts {
					if pt[0] <= c.End-settle.Seconds() {
						want[int64(pt[0])] = pt[1]
					}
				}
			}
			if len(want) == 0 {
				t.Errorf("%s: chart %s, series %q: its query %s has no points up to %v before the end", pg.name, name, s.Label, s.Query, settle)
				continue
			}
			diff := 0
			for ts, w := range want {
				if g, ok := got[ts]; !ok || !within(g, w, 1e-9) {
					if diff++; diff <= 3 {
						t.Errorf("%s: chart %s, series %q at %d: drawn %v (present %v), the API %v", pg.name, name, s.Label, ts, g, ok, w)
					}
				}
			}
			if len(got) != len(want) {
				t.Errorf("%s: chart %s, series %q: %d points drawn, the API has %d", pg.name, name, s.Label, len(got), len(want))
			}
			chartPoints += len(want)
		}
		if chartPoints == 0 {
			t.Errorf("%s: chart %s has no points", pg.name, name)
		}
		points += chartPoints
	}
	for _, tb := range pg.tables {
		if n := eval[int](t, b, fmt.Sprintf(`document.querySelectorAll('[data-testid="table-%s"] [data-testid="row"]').length`, tb)); n == 0 {
			t.Errorf("%s: table %q has no rows", pg.name, tb)
		}
	}
	compared += checkTables(t, b, p, pg)
	events, warnings := checkEventsTable(t, b, p, pg)
	markers := checkMarkers(t, b, p, pg, warnings, settle)
	alerts := 0
	if eval[int](t, b, `document.querySelectorAll('[data-testid="table-alerts"]').length`) > 0 {
		alerts = checkAlertsPage(t, b, p, pg)
	}
	if events+markers+alerts > 0 {
		t.Logf("%s: %d events (%d Warning), %d chart markers and %d alert and rule values equal to the APIs'", pg.name, events, len(warnings), markers, alerts)
	}
	compared += events + markers + alerts
	return compared, len(drawn), points
}

// shownTable is a table's columns read from one query, and its rows.
type shownTable struct {
	ID      string `json:"id"`
	Columns []struct {
		Col   string `json:"col"`
		Query string `json:"query"`
	} `json:"columns"`
	Rows []struct {
		Key    string            `json:"key"`
		Values map[string]string `json:"values"`
	} `json:"rows"`
}

// keyLabels are the label sets a table row's data-key is made of.
var keyLabels = [][]string{
	{model.LabelNode}, {model.LabelNamespace}, {model.LabelNamespace, model.LabelPod},
	{model.LabelNamespace, model.LabelPod, model.LabelContainer},
	{model.LabelNamespace, model.LabelWorkloadKind, model.LabelWorkload},
	{model.LabelNamespace, model.LabelWorkloadKind, model.LabelWorkload, model.LabelContainer}, // right-sizing
}

// checkTables compares every table cell of a column read from one query
// (its header's data-query) with that query's answer for the row's
// object, evaluated at the time the page evaluated it. It returns the
// cells compared.
func checkTables(t testing.TB, b *browser, p *proc, pg uiPage) int {
	t.Helper()
	tables := jsonOf[[]shownTable](t, evalJSON(t, b, `JSON.stringify([...document.querySelectorAll('[data-testid^="table-"]')].map(tb => ({
		id: tb.dataset.testid,
		columns: [...tb.querySelectorAll('th[data-query]')].map(th => ({col: th.dataset.col, query: th.dataset.query})),
		rows: [...tb.querySelectorAll('[data-testid="row"]')].map(r => ({key: r.dataset.key,
			values: Object.fromEntries([...r.querySelectorAll('[data-col][data-value]')].map(c => [c.dataset.col, c.dataset.value]))}))})))`))
	// The page evaluated every query at one time (body data-time).
	at := eval[string](t, b, `document.body.dataset.time || ""`)
	if at == "" {
		t.Fatalf("%s: the page does not say at what time it evaluated its queries (body data-time)", pg.name)
	}
	compared := 0
	for _, tb := range tables {
		for _, c := range tb.Columns {
			var r struct {
				Data struct {
					Result []sample `json:"result"`
				} `json:"data"`
			}
			p.getJSON(t, "/api/v1/query?query="+url.QueryEscape(c.Query)+"&time="+at, &r)
			byKey := map[string]float64{}
			for _, s := range r.Data.Result {
				for _, ls := range keyLabels {
					parts := make([]string, 0, len(ls))
					for _, l := range ls {
						parts = append(parts, s.Metric[l])
					}
					byKey[strings.Join(parts, "/")] = s.v(t)
				}
			}
			for _, row := range tb.Rows {
				shown, ok := row.Values[c.Col]
				if !ok {
					continue
				}
				want, ok := byKey[row.Key]
				if !ok {
					continue // the row's object has no value for this query now
				}
				got, err := strconv.ParseFloat(shown, 64)
				if err != nil || !within(got, want, 1e-9) {
					t.Errorf("%s: table %s, row %s, column %s: shows %q, its query %s answers %v", pg.name, tb.ID, row.Key, c.Col, shown, c.Query, want)
				}
				compared++
			}
		}
	}
	return compared
}

// matrixAt runs a range query and returns each series' points as
// [unix seconds, value].
func matrixAt(t testing.TB, p *proc, q string, start, end, step float64) [][][2]float64 {
	t.Helper()
	v := url.Values{"query": {q}, "start": {strconv.FormatFloat(start, 'f', -1, 64)},
		"end": {strconv.FormatFloat(end, 'f', -1, 64)}, "step": {strconv.FormatFloat(step, 'f', -1, 64)}}
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Values [][2]json.RawMessage `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	p.getJSON(t, "/api/v1/query_range?"+v.Encode(), &r)
	out := make([][][2]float64, 0, len(r.Data.Result))
	for _, s := range r.Data.Result {
		pts := make([][2]float64, 0, len(s.Values))
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
			pts = append(pts, [2]float64{ts, f})
		}
		out = append(out, pts)
	}
	return out
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// waitCycles waits until kubemon is ready and has stored n cycles of the
// cluster's CPU rate: the pages show values a scrape interval back, and
// charts need a history.
func waitCycles(t testing.TB, p *proc, n int) {
	t.Helper()
	waitFor(t, 30*time.Second, "/readyz", func() bool { c, _ := p.get(t, "/readyz"); return c == 200 })
	cluster := name(model.LevelCluster, model.CPUUsageRate)
	waitFor(t, time.Duration(n+14)*5*time.Second, fmt.Sprintf("%d cycles of %s", n, cluster), func() bool {
		r := p.query(t, "count_over_time("+cluster+"[10m])")
		return len(r) == 1 && r[0].v(t) >= float64(n)
	})
}

// TestUIPages: every view of the web UI, on a desktop and a phone-width
// window, loads without a console error or a failed request, shows numbers
// and charts equal to what the API answers for their queries, events
// tables equal to /api/v1/events, chart markers (restarts, Warning events,
// firing alerts) where the data puts them, an Alerts page equal to
// /api/v1/alerts and /api/v1/rules (a rule file of the test's fires for a
// container it restarts), and is kept as a screenshot; a click path goes
// cluster → node → pod → container, and from the Alerts page to the
// alert's pod.
func TestUIPages(t *testing.T) {
	t.Parallel()
	const interval = 5 * time.Second
	p := startDemo(t, "--sim-mode", "constant", "--nodes", "6", "--pods-per-node", "8",
		"--interval", interval.String(), "--rules.evaluation-interval", interval.String(), "--data-dir", t.TempDir(), "--rules", uiRules(t))
	waitCycles(t, p, 4)
	o := pickObjects(t, p)
	restartForUI(t, p, o)
	b := newBrowser(t)
	settle := interval + 3*time.Second // a scrape's samples are stored when it ends
	for _, vp := range []viewport{desktop, phone} {
		b.size(t, vp)
		for _, pg := range uiPages(o) {
			b.open(t, p.base+"/"+pg.route)
			shot := b.screenshot(t, pg.name+"-"+vp.name)
			if probs := b.takeProblems(); len(probs) > 0 {
				t.Errorf("%s (%s): %d problems: %q", pg.name, vp.name, len(probs), probs)
			}
			// Nothing but the tables' own scrolling is wider than a phone.
			if w := eval[int](t, b, `document.documentElement.scrollWidth - window.innerWidth`); w > 8 {
				t.Errorf("%s (%s): the page is %d px wider than the window", pg.name, vp.name, w)
			}
			if vp == desktop {
				stats, charts, points := checkShown(t, b, p, pg, settle)
				t.Logf("%s: %d numbers and %d charts (%d points) equal to the API's; %s", pg.name, stats, charts, points, shot)
			}
		}
	}

	b.size(t, desktop)
	checkMarkerTips(t, b, p.base, o)

	// A user's click path, from the cluster down to a container.
	b.open(t, p.base+"/#/nodes")
	for _, step := range []struct{ link, want string }{
		{`[data-testid="table-nodes"] a[data-testid="link-node"]`, "#/node/"},
		{`[data-testid="table-pods"] a[data-testid="link-pod"]`, "#/pod/"},
		{`[data-testid="table-containers"] a[data-testid="link-container"]`, "#/container/"},
	} {
		b.click(t, step.link)
		if hash := eval[string](t, b, `location.hash`); !strings.HasPrefix(hash, step.want) {
			t.Errorf("after clicking %s the page is %s, want %s…", step.link, hash, step.want)
		}
	}
	// From the Alerts page to the restarted container's pod.
	b.open(t, p.base+"/#/alerts")
	b.click(t, `[data-testid="table-alerts"] [data-testid="row"][data-state="firing"] a[data-testid="link-pod"]`)
	if hash, want := eval[string](t, b, `location.hash`), "#/pod/"+o.namespace+"/"+o.pod; hash != want {
		t.Errorf("the firing alert's pod link leads to %s, want %s", hash, want)
	}
	if probs := b.takeProblems(); len(probs) > 0 {
		t.Errorf("click path: %q", probs)
	}
}

// TestUISubPath: behind a reverse proxy that serves kubemon under a
// sub-path, typed with or without its trailing slash, every asset and API
// call of the UI goes through the sub-path and the pages work; nothing is
// configured for it.
func TestUISubPath(t *testing.T) {
	t.Parallel()
	p := startDemo(t, "--sim-mode", "constant", "--nodes", "3", "--pods-per-node", "4", "--interval", "5s", "--data-dir", t.TempDir())
	waitCycles(t, p, 4)
	const prefix = "/clusters/prod/monitoring/kubemon"
	target, err := url.Parse(p.base)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	mux := http.NewServeMux()
	mux.Handle(prefix+"/", http.StripPrefix(prefix, rp))
	// Anything outside the prefix is a mistake of the UI's.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "outside the sub-path", http.StatusTeapot) })
	proxy := httptest.NewServer(mux)
	t.Cleanup(proxy.Close)

	o := pickObjects(t, p)
	b := newBrowser(t)
	for _, start := range []string{proxy.URL + prefix, proxy.URL + prefix + "/"} {
		b.open(t, start)
		b.click(t, `a[href="#/nodes"]`)
		b.click(t, `[data-testid="table-nodes"] a[data-testid="link-node"]`)
		b.open(t, proxy.URL+prefix+"/#/pod/"+o.namespace+"/"+o.pod)
		reqs := b.takeRequests()
		if len(reqs) < 5 {
			t.Errorf("from %s: only %d requests seen", start, len(reqs))
		}
		for _, r := range reqs {
			if r == "about:blank" || strings.HasPrefix(r, "data:") {
				continue
			}
			if !strings.HasPrefix(r, proxy.URL+prefix+"/") && r != proxy.URL+prefix {
				t.Errorf("from %s: the UI requested %s, outside the sub-path %s", start, r, prefix)
			}
		}
		if probs := b.takeProblems(); len(probs) > 0 {
			t.Errorf("from %s: %q", start, probs)
		}
	}
	b.screenshot(t, "subpath-pod")
}
