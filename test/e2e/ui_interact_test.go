package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kubemon/kubemon/internal/model"
)

// TestUIInteractions drives the UI as a user does on a cluster whose usage
// moves (realistic mode): the right-sizing page's numbers, computed here
// from the raw samples, and dragging on a chart to zoom.
func TestUIInteractions(t *testing.T) {
	t.Parallel()
	const interval = 5 * time.Second
	p := startDemo(t, "--sim-mode", "realistic", "--nodes", "5", "--pods-per-node", "8",
		"--interval", interval.String(), "--data-dir", t.TempDir())
	waitCycles(t, p, 12)
	b := newBrowser(t)
	b.size(t, desktop)
	t.Run("rightsizing", func(t *testing.T) { checkRightsizing(t, b, p) })
	t.Run("zoom", func(t *testing.T) { checkZoom(t, b, p, interval) })
}

// rsRow is a right-sizing row: a workload's container (replicas joined).
type rsRow struct {
	replicas                                       float64
	cpuRequest, cpuP50, cpuP95, cpuMax             float64
	memoryRequest, memoryP50, memoryP95, memoryMax float64
}

// checkRightsizing opens the right-sizing page over a 1-hour window and
// compares every row with what this test computes from the raw samples the
// API returns for the same window (quantiles as PromQL's
// quantile_over_time defines them, replicas joined on pod_info in Go), and
// the suggestions, verdicts and totals with the rules docs/ui.md states.
func checkRightsizing(t *testing.T, b *browser, p *proc) {
	b.open(t, p.base+"/#/rightsizing?window=1h")
	b.screenshot(t, "rightsizing-realistic")
	// The time the page evaluated its queries at (unix seconds).
	at := eval[string](t, b, `document.body.dataset.time || ""`)
	if at == "" {
		t.Fatal("the page does not say at what time it evaluated its queries (body data-time)")
	}
	want := rightsizingFromSamples(t, p, at, "1h")
	if len(want) < 6 {
		t.Fatalf("only %d containers with usage in the window", len(want))
	}

	type shownRow struct {
		Key     string            `json:"key"`
		Values  map[string]string `json:"values"`
		CPU     string            `json:"cpu"`
		Memory  string            `json:"memory"`
		Verdict string            `json:"verdict"`
	}
	rows := jsonOf[[]shownRow](t, evalJSON(t, b, `JSON.stringify([...document.querySelectorAll('[data-testid="table-rightsizing"] [data-testid="row"]')].map(r => {
		const pill = r.querySelector('[data-col="verdict"] .pill') || {dataset: {}, textContent: ""};
		return {key: r.dataset.key, cpu: pill.dataset.cpu || "", memory: pill.dataset.memory || "", verdict: pill.textContent,
			values: Object.fromEntries([...r.querySelectorAll('[data-col][data-value]')].map(c => [c.dataset.col, c.dataset.value]))};
	}))`))
	if len(rows) != len(want) {
		t.Errorf("the page shows %d rows, the samples give %d", len(rows), len(want))
	}
	num := func(row shownRow, col string) float64 {
		v, err := strconv.ParseFloat(row.Values[col], 64)
		if err != nil {
			return math.NaN() // never within anything
		}
		return v
	}
	var (
		compared, varying  int
		counts             = map[string]int{}
		wastedCPU, wastedM float64
	)
	for _, row := range rows {
		w, ok := want[row.Key]
		if !ok {
			t.Errorf("row %s: no such container in the samples", row.Key)
			continue
		}
		for _, c := range []struct {
			col  string
			want float64
		}{
			{"replicas", w.replicas},
			{"cpu_request", w.cpuRequest}, {"cpu_p50", w.cpuP50}, {"cpu_p95", w.cpuP95}, {"cpu_max", w.cpuMax},
			{"memory_request", w.memoryRequest}, {"memory_p50", w.memoryP50}, {"memory_p95", w.memoryP95}, {"memory_max", w.memoryMax},
		} {
			if math.IsNaN(c.want) { // e.g. no request: the cell must be empty
				if v, ok := row.Values[c.col]; ok {
					t.Errorf("row %s, %s: shows %q where the samples have none", row.Key, c.col, v)
				}
				continue
			}
			if got := num(row, c.col); !within(got, c.want, 1e-9) {
				t.Errorf("row %s, %s: shows %v, the samples give %v", row.Key, c.col, got, c.want)
			}
			compared++
		}
		if w.cpuMax > w.cpuP50 || w.memoryMax > w.memoryP50 {
			varying++
		}
		sc, sm := suggestCPU(w.cpuP95), suggestMemory(w.memoryMax)
		if got := num(row, "cpu_suggested"); !within(got, sc, 1e-9) {
			t.Errorf("row %s: suggests %v CPU, the rule gives %v (p95 %v)", row.Key, got, sc, w.cpuP95)
		}
		if got := num(row, "memory_suggested"); !within(got, sm, 1e-9) {
			t.Errorf("row %s: suggests %v bytes, the rule gives %v (max %v)", row.Key, got, sm, w.memoryMax)
		}
		vc, vm := resourceVerdict(w.cpuRequest, w.cpuP95, sc, 0.1), resourceVerdict(w.memoryRequest, w.memoryP95, sm, 128<<20)
		if row.CPU != vc || row.Memory != vm {
			t.Errorf("row %s: verdicts CPU %q memory %q, the rules give %q and %q (CPU request %v p95 %v; memory request %v p95 %v)",
				row.Key, row.CPU, row.Memory, vc, vm, w.cpuRequest, w.cpuP95, w.memoryRequest, w.memoryP95)
		}
		v := combineVerdicts(vc, vm)
		if strings.TrimSpace(row.Verdict) != v {
			t.Errorf("row %s: the verdict reads %q, want %q", row.Key, row.Verdict, v)
		}
		counts[v]++
		if !math.IsNaN(w.cpuRequest) {
			wastedCPU += max(0, w.cpuRequest-sc) * w.replicas
		}
		if !math.IsNaN(w.memoryRequest) {
			wastedM += max(0, w.memoryRequest-sm) * w.replicas
		}
	}
	if compared < 9*len(want)/2 {
		t.Errorf("only %d numbers compared over %d rows", compared, len(want))
	}
	if varying < len(want)/2 {
		t.Errorf("only %d of %d containers' usage varies over the window: the check needs moving data", varying, len(want))
	}
	totals := map[string]float64{}
	for _, s := range jsonOf[[]shownStat](t, evalJSON(t, b, `JSON.stringify([...document.querySelectorAll('[data-testid="rightsizing-totals"] [data-testid^="stat-"]')].map(e => ({id: e.dataset.testid, value: e.dataset.value || ""})))`)) {
		v, err := strconv.ParseFloat(s.Value, 64)
		if err != nil {
			t.Errorf("total %s: %q", s.ID, s.Value)
		}
		totals[s.ID] = v
	}
	for id, w := range map[string]float64{
		"stat-over-provisioned": float64(counts["over-provisioned"]), "stat-under-provisioned": float64(counts["under-provisioned"]),
		"stat-ok": float64(counts["ok"]), "stat-wasted-cpu": wastedCPU, "stat-wasted-memory": wastedM,
	} {
		if got, ok := totals[id]; !ok || !within(got, w, 1e-6) {
			t.Errorf("total %s: shows %v (present %v), the samples give %v", id, got, ok, w)
		}
	}
	t.Logf("right-sizing: %d rows, %d numbers equal to the samples' (%d with usage varying); verdicts %v; wasted %.3f cores, %.0f MiB",
		len(rows), compared, varying, counts, wastedCPU, wastedM/(1<<20))
	if probs := b.takeProblems(); len(probs) > 0 {
		t.Errorf("problems: %q", probs)
	}
}

// rightsizingFromSamples computes the right-sizing rows at time at (unix
// seconds) over window w from the raw samples of each container.
func rightsizingFromSamples(t *testing.T, p *proc, at, w string) map[string]*rsRow {
	t.Helper()
	raw := func(l model.Level, m model.MetricID) []rawSeries {
		return p.rawSamples(t, name(l, m)+"["+w+"]", at)
	}
	// Each pod's workload, from its info series (a pod of none is its own
	// row, kind "Pod").
	owner := map[string]string{}
	for _, s := range raw(model.LevelPod, model.Info) {
		ns, pod := s.Metric[model.LabelNamespace], s.Metric[model.LabelPod]
		kind, wl := s.Metric[model.LabelWorkloadKind], s.Metric[model.LabelWorkload]
		if wl == "" {
			kind, wl = "Pod", pod
		}
		owner[ns+"/"+pod] = ns + "/" + kind + "/" + wl
	}
	rows := map[string]*rsRow{}
	row := func(s rawSeries) *rsRow {
		o, ok := owner[s.Metric[model.LabelNamespace]+"/"+s.Metric[model.LabelPod]]
		if !ok {
			return nil
		}
		k := o + "/" + s.Metric[model.LabelContainer]
		if rows[k] == nil {
			nan := math.NaN()
			rows[k] = &rsRow{cpuRequest: nan, cpuP50: nan, cpuP95: nan, cpuMax: nan, memoryRequest: nan, memoryP50: nan, memoryP95: nan, memoryMax: nan}
		}
		return rows[k]
	}
	// The row takes the largest value among the replicas.
	maxInto := func(dst *float64, v float64) {
		if math.IsNaN(*dst) || v > *dst {
			*dst = v
		}
	}
	for _, s := range raw(model.LevelContainer, model.CPUUsageRate) {
		if r := row(s); r != nil {
			maxInto(&r.cpuP50, quantile(0.5, s.values))
			maxInto(&r.cpuP95, quantile(0.95, s.values))
			maxInto(&r.cpuMax, slices.Max(s.values))
		}
	}
	for _, s := range raw(model.LevelContainer, model.MemoryWorkingSet) {
		if r := row(s); r != nil {
			maxInto(&r.memoryP50, quantile(0.5, s.values))
			maxInto(&r.memoryP95, quantile(0.95, s.values))
			maxInto(&r.memoryMax, slices.Max(s.values))
		}
	}
	// A replica counts when it runs at the evaluation time: the instant
	// selector's answer (which knows the deleted pods' staleness markers).
	for _, s := range p.queryAt(t, name(model.LevelContainer, model.MemoryWorkingSet), at) {
		if r := row(rawSeries{Metric: s.Metric}); r != nil {
			r.replicas++
		}
	}
	for _, s := range raw(model.LevelContainer, model.CPURequest) {
		if r := row(s); r != nil {
			maxInto(&r.cpuRequest, s.values[len(s.values)-1])
		}
	}
	for _, s := range raw(model.LevelContainer, model.MemoryRequest) {
		if r := row(s); r != nil {
			maxInto(&r.memoryRequest, s.values[len(s.values)-1])
		}
	}
	// Rows are the containers with usage in the window.
	for k, r := range rows {
		if math.IsNaN(r.cpuP95) && math.IsNaN(r.memoryP95) {
			delete(rows, k)
		}
	}
	return rows
}

// queryAt runs an instant query at time at (unix seconds).
func (p *proc) queryAt(t *testing.T, q, at string) []sample {
	t.Helper()
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []sample `json:"result"`
		} `json:"data"`
	}
	p.getJSON(t, "/api/v1/query?query="+url.QueryEscape(q)+"&time="+at, &r)
	if r.Status != "success" {
		t.Fatalf("%s at %s: status %s", q, at, r.Status)
	}
	return r.Data.Result
}

// rawSeries is a series' raw samples (a range selector's answer).
type rawSeries struct {
	Metric map[string]string
	times  []float64
	values []float64
}

// rawSamples evaluates a range selector at time at and returns each
// series' raw samples, oldest first.
func (p *proc) rawSamples(t *testing.T, q, at string) []rawSeries {
	t.Helper()
	var r struct {
		Status string `json:"status"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string    `json:"metric"`
				Values [][2]json.RawMessage `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	p.getJSON(t, "/api/v1/query?query="+url.QueryEscape(q)+"&time="+at, &r)
	if r.Status != "success" || r.Data.ResultType != "matrix" {
		t.Fatalf("%s: status %s, result type %s", q, r.Status, r.Data.ResultType)
	}
	out := make([]rawSeries, 0, len(r.Data.Result))
	for _, s := range r.Data.Result {
		rs := rawSeries{Metric: s.Metric}
		for _, pv := range s.Values {
			var ts float64
			var vs string
			if json.Unmarshal(pv[0], &ts) != nil || json.Unmarshal(pv[1], &vs) != nil {
				t.Fatalf("%s: point %s", q, pv)
			}
			v, err := strconv.ParseFloat(vs, 64)
			if err != nil {
				t.Fatal(err)
			}
			rs.times, rs.values = append(rs.times, ts), append(rs.values, v)
		}
		if len(rs.values) > 0 {
			out = append(out, rs)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s at %s: no samples", q, at)
	}
	return out
}

// quantile is PromQL's quantile_over_time: the φ-quantile of the values,
// interpolated linearly between the two nearest ranks (rank φ·(n−1)).
func quantile(phi float64, values []float64) float64 {
	v := slices.Clone(values)
	slices.Sort(v)
	rank := phi * float64(len(v)-1)
	lo := math.Floor(rank)
	hi := math.Min(lo+1, float64(len(v)-1))
	w := rank - lo
	return v[int(lo)]*(1-w) + v[int(hi)]*w
}

// suggestCPU is the UI's suggested CPU request: p95 × 1.2 rounded up to
// 10m, at least 10m (docs/ui.md).
func suggestCPU(p95 float64) float64 {
	return math.Max(1, math.Ceil(math.Round(p95*1.2/0.01*1e6)/1e6)) / 100
}

// suggestMemory is the UI's suggested memory request: max × 1.2 rounded up
// to 1 MiB, at least 1 MiB.
func suggestMemory(maxBytes float64) float64 {
	const mi = 1 << 20
	return math.Max(mi, math.Ceil(maxBytes*1.2/mi)*mi)
}

// resourceVerdict is the UI's verdict for one resource: under-provisioned
// with no request or p95 above it; over-provisioned when the request is
// above 2 × p95 and more than minWaste above the suggestion.
func resourceVerdict(request, p95, suggested, minWaste float64) string {
	switch {
	case math.IsNaN(p95):
		return "no data"
	case math.IsNaN(request) || request <= 0 || p95 > request:
		return "under-provisioned"
	case request > 2*p95 && request-suggested > minWaste:
		return "over-provisioned"
	}
	return "ok"
}

func combineVerdicts(a, b string) string {
	switch {
	case a == "under-provisioned" || b == "under-provisioned":
		return "under-provisioned"
	case a == "over-provisioned" || b == "over-provisioned":
		return "over-provisioned"
	case a == "no data" && b == "no data":
		return "no data"
	}
	return "ok"
}

// checkZoom drags across a pod's CPU chart, as a user zooms: the URL takes
// the dragged range (from, to), every chart is redrawn over it with the
// API's data, the URL opened afresh shows the same range (it can be
// shared), and Back returns to the range before.
func checkZoom(t *testing.T, b *browser, p *proc, interval time.Duration) {
	o := pickObjects(t, p)
	// 150 s of history, all of it stored: the drag takes 20–80 % of it.
	cluster := name(model.LevelCluster, model.CPUUsageRate)
	waitFor(t, 3*time.Minute, "150 s of history", func() bool {
		r := p.query(t, "count_over_time("+cluster+"[10m])")
		return len(r) == 1 && r[0].v(t) >= 150/interval.Seconds()+2
	})
	end := time.Now().Add(-interval - 3*time.Second).Unix()
	route := fmt.Sprintf("#/pod/%s/%s?from=%d&to=%d", o.namespace, o.pod, end-150, end)
	b.open(t, p.base+"/"+route)
	before := jsonOf[map[string]shownChart](t, evalJSON(t, b, `JSON.stringify(window.kubemon.charts)`))["cpu"]
	if !(before.End-before.Start >= 140) {
		t.Fatalf("the 150-second chart spans %v s", before.End-before.Start)
	}
	// The plot area (uPlot's overlay), in the viewport.
	box := jsonOf[struct{ X, Y, W, H float64 }](t, evalJSON(t, b, `(() => {
		const el = document.querySelector('[data-testid="chart-cpu"] .u-over');
		el.scrollIntoView({block: "center"});
		const r = el.getBoundingClientRect();
		return JSON.stringify({x: r.left, y: r.top, w: r.width, h: r.height});
	})()`))
	if !(box.W > 100 && box.H > 50) {
		t.Fatalf("the CPU chart's plot area is %+v", box)
	}
	y := box.Y + box.H/2
	x0, x1 := box.X+0.2*box.W, box.X+0.8*box.W
	b.do(t, "dragging across the CPU chart",
		chromedp.Evaluate[chromedp.Void](`document.body.dataset.state = "navigating"`),
		chromedp.MouseEvent(chromedp.MouseMoved, x0, y),
		chromedp.MouseEvent(chromedp.MousePressed, x0, y, chromedp.ButtonLeft, chromedp.ClickCount(1)),
		chromedp.MouseEvent(chromedp.MouseMoved, (x0+x1)/2, y, chromedp.ButtonLeft),
		chromedp.MouseEvent(chromedp.MouseMoved, x1, y, chromedp.ButtonLeft),
		chromedp.MouseEvent(chromedp.MouseReleased, x1, y, chromedp.ButtonLeft, chromedp.ClickCount(1)),
	)
	b.waitReady(t, "after the drag")
	hash := eval[string](t, b, `location.hash`)
	u, err := url.Parse(strings.TrimPrefix(hash, "#"))
	if err != nil {
		t.Fatal(err)
	}
	from, errF := strconv.ParseFloat(u.Query().Get("from"), 64)
	to, errT := strconv.ParseFloat(u.Query().Get("to"), 64)
	if errF != nil || errT != nil || from == float64(end-150) {
		t.Fatalf("after the drag the URL is %s, with no new from and to", hash)
	}
	// The drag covered 20 % to 80 % of the plot: 60 % of the range, where it was.
	span := before.End - before.Start
	if !within(to-from, 0.6*span, 0.05) || !within(from-before.Start, 0.2*span, 0.1) {
		t.Errorf("dragging over 20–80 %% of %v–%v zoomed to %v–%v", before.Start, before.End, from, to)
	}
	zoomed := jsonOf[map[string]shownChart](t, evalJSON(t, b, `JSON.stringify(window.kubemon.charts)`))
	if len(zoomed) < 4 {
		t.Errorf("after the zoom %d charts", len(zoomed))
	}
	for name, c := range zoomed {
		if !(math.Abs(c.Start-from) <= c.Step && math.Abs(c.End-to) <= c.Step) {
			t.Errorf("chart %s spans %v–%v after zooming to %v–%v", name, c.Start, c.End, from, to)
		}
	}
	pg := uiPage{name: "pod zoomed", charts: []string{"cpu", "memory", "network", "filesystem"}, minStats: 6}
	stats, charts, points := checkShown(t, b, p, pg, 0)
	t.Logf("zoomed to %v–%v (%.0f s of %.0f): %d charts, %d points, %d numbers equal to the API's", from, to, to-from, span, charts, points, stats)
	b.screenshot(t, "pod-zoomed")

	// Back returns to the range before.
	b.do(t, "going back", chromedp.Evaluate[chromedp.Void](`document.body.dataset.state = "navigating"`), chromedp.NavigateBack())
	b.waitReady(t, "after Back")
	if h := eval[string](t, b, `location.hash`); h != route {
		t.Errorf("Back leads to %s, want %s", h, route)
	}
	// The zoomed URL, opened afresh (shared), shows the same range.
	b.open(t, p.base+"/"+hash)
	if again := jsonOf[map[string]shownChart](t, evalJSON(t, b, `JSON.stringify(window.kubemon.charts)`))["cpu"]; again.Start != zoomed["cpu"].Start || again.End != zoomed["cpu"].End {
		t.Errorf("the shared URL %s draws %v–%v, the zoom drew %v–%v", hash, again.Start, again.End, zoomed["cpu"].Start, zoomed["cpu"].End)
	}
	if probs := b.takeProblems(); len(probs) > 0 {
		t.Errorf("problems: %q", probs)
	}
}
