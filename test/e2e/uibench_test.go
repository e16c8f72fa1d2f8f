package e2e

import (
	"cmp"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The UI benchmarks measure the web UI on a store filled by `kubemon
// backfill` (hack/bench/ui.sh fills one and runs them, see
// docs/performance.md): KUBEMON_UI_BENCH_DIR is the data directory and
// KUBEMON_UI_BENCH_ARGS the simulator flags it was filled with, so that
// `kubemon demo` continues that cluster live. Each reports the median and
// the worst time from the start of the navigation until the view is ready
// (document.body.dataset.readyAt: every fetch done, the DOM and the charts
// drawn) as ms-median and ms-max.

func benchDemo(b *testing.B) *proc {
	b.Helper()
	dir := os.Getenv("KUBEMON_UI_BENCH_DIR")
	if dir == "" {
		b.Skip("SKIPPED: KUBEMON_UI_BENCH_DIR is not set: hack/bench/ui.sh fills a store and runs the UI benchmarks")
	}
	p := startDemo(b, append([]string{"--data-dir", dir}, strings.Fields(os.Getenv("KUBEMON_UI_BENCH_ARGS"))...)...)
	waitFor(b, 10*time.Minute, "/readyz", func() bool { c, _ := p.get(b, "/readyz"); return c == 200 })
	return p
}

// readyMs is when the view became ready, in ms since the navigation began.
func readyMs(b *testing.B, br *browser) float64 {
	b.Helper()
	v, err := strconv.ParseFloat(eval[string](b, br, `document.body.dataset.readyAt || ""`), 64)
	if err != nil {
		b.Fatalf("the page has no readyAt: %v", err)
	}
	return v
}

// logRequests writes the page's requests of its last load (the browser's
// resource timing: start and duration in ms from the navigation, and the
// server's part of it) to _output/ui-bench/NAME-requests.txt in the order
// they started, and logs the one that finished last, so that a slow view
// shows which request held it up.
func logRequests(b *testing.B, br *browser, name string, since float64) {
	b.Helper()
	type entry struct {
		Name     string  `json:"name"`
		Start    float64 `json:"startTime"`
		Duration float64 `json:"duration"`
		Server   float64 `json:"server"`
	}
	all := jsonOf[[]entry](b, evalJSON(b, br, `JSON.stringify(performance.getEntriesByType("resource").map((e) => ({name: e.name, startTime: e.startTime, duration: e.duration, server: e.responseStart - e.requestStart})))`))
	var es []entry
	for _, e := range all {
		if e.Start >= since {
			es = append(es, e)
		}
	}
	if len(es) == 0 {
		b.Fatal("the page made no requests")
	}
	slices.SortFunc(es, func(x, y entry) int { return cmp.Compare(x.Start, y.Start) })
	var out strings.Builder
	last := es[0]
	for _, e := range es {
		what := e.Name
		if u, err := url.Parse(what); err == nil {
			what = u.Path
			if q := u.Query().Get("query"); q != "" {
				what += " " + q
			}
		}
		fmt.Fprintf(&out, "start %6.0f ms  took %5.0f ms  server %5.0f ms  %s\n", e.Start-since, e.Duration, e.Server, what)
		if e.Start+e.Duration > last.Start+last.Duration {
			last = e
		}
	}
	path := filepath.Join(artifactDir(b, "ui-bench"), name+"-requests.txt")
	if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d requests (%s); the last ended at %.0f ms (server %.0f ms): %.200s", len(es), path, last.Start+last.Duration-since, last.Server, last.Name)
}

func reportTimes(b *testing.B, ms []float64) {
	b.Helper()
	if len(ms) == 0 {
		b.Fatal("nothing measured")
	}
	slices.Sort(ms)
	b.ReportMetric(ms[len(ms)/2], "ms-median")
	b.ReportMetric(ms[len(ms)-1], "ms-max")
	b.Logf("%d loads: median %.0f ms, max %.0f ms", len(ms), ms[len(ms)/2], ms[len(ms)-1])
}

// BenchmarkUIOverview: a fresh load of the overview (the first useful
// paint: tiles, charts over the default range, top pods and nodes).
func BenchmarkUIOverview(b *testing.B) {
	p := benchDemo(b)
	br := newBrowser(b)
	br.open(b, p.base+"/#/") // the browser's cache and the store's warmed
	var ms []float64
	b.ResetTimer()
	for range b.N {
		br.open(b, p.base+"/#/")
		ms = append(ms, readyMs(b, br))
	}
	b.StopTimer()
	reportTimes(b, ms)
	logRequests(b, br, "overview", 0)
	if probs := br.takeProblems(); len(probs) > 0 {
		b.Errorf("problems: %q", probs)
	}
}

// BenchmarkUIPod7d: from the overview, a pod's page with its charts over
// seven days, as a click would open it.
func BenchmarkUIPod7d(b *testing.B) {
	p := benchDemo(b)
	o := pickObjects(b, p)
	br := newBrowser(b)
	pod := fmt.Sprintf("#/pod/%s/%s?range=7d", o.namespace, o.pod)
	br.open(b, p.base+"/"+pod)
	var ms []float64
	var start float64
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		br.open(b, p.base+"/#/nodes")
		b.StartTimer()
		start = eval[float64](b, br, `(() => { const t = performance.now(); document.body.dataset.state = "navigating"; location.hash = `+strconv.Quote(pod)+`; return t })()`)
		br.waitReady(b, pod)
		ms = append(ms, readyMs(b, br)-start)
	}
	b.StopTimer()
	reportTimes(b, ms)
	logRequests(b, br, "pod7d", start)
	if probs := br.takeProblems(); len(probs) > 0 {
		b.Errorf("problems: %q", probs)
	}
}
