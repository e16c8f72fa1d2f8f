package e2e

import (
	"fmt"
	"os"
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
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		br.open(b, p.base+"/#/nodes")
		b.StartTimer()
		start := eval[float64](b, br, `(() => { const t = performance.now(); document.body.dataset.state = "navigating"; location.hash = `+strconv.Quote(pod)+`; return t })()`)
		br.waitReady(b, pod)
		ms = append(ms, readyMs(b, br)-start)
	}
	b.StopTimer()
	reportTimes(b, ms)
	if probs := br.takeProblems(); len(probs) > 0 {
		b.Errorf("problems: %q", probs)
	}
}
