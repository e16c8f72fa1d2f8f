package e2e

import (
	"testing"
)

// TestUIPagesEventsOff: with --events.enabled=false, /api/v1/events
// answers 404 and the object pages show a quiet note where their events
// would be: no error, no warning, no events table, no event marker. When
// the runtime info says eventsEnabled: false, and the pages ask for no
// events at all (no failed request, no console error).
func TestUIPagesEventsOff(t *testing.T) {
	t.Parallel()
	p := startDemo(t, "--sim-mode", "constant", "--nodes", "2", "--pods-per-node", "3", "--interval", "5s",
		"--data-dir", t.TempDir(), "--events.enabled=false")
	waitCycles(t, p, 3)
	if code, body := p.get(t, "/api/v1/events"); code != 404 {
		t.Fatalf("/api/v1/events with events off: %d %s, want 404", code, body)
	}
	var info struct {
		Data map[string]any `json:"data"`
	}
	p.getJSON(t, "/api/v1/status/runtimeinfo", &info)
	if enabled, says := info.Data["eventsEnabled"]; enabled != false || !says {
		t.Fatalf("runtimeinfo says eventsEnabled %v (present: %v) with --events.enabled=false", enabled, says)
	}
	o := pickObjects(t, p)
	b := newBrowser(t)
	for _, pg := range []struct{ name, route string }{
		{"node", "#/node/" + o.node},
		{"namespace", "#/namespace/" + o.namespace},
		{"workload", "#/workload/" + o.namespace + "/" + o.workloadKind + "/" + o.workload},
		{"pod", "#/pod/" + o.namespace + "/" + o.pod},
		{"container", "#/container/" + o.namespace + "/" + o.pod + "/" + o.container},
	} {
		b.open(t, p.base+"/"+pg.route)
		for _, prob := range b.takeProblems() {
			t.Errorf("%s: %s", pg.name, prob)
		}
		if n := eval[int](t, b, `document.querySelectorAll('[data-testid="events"] [data-testid="events-off"]').length`); n != 1 {
			t.Errorf("%s: %d events-off notes in the Events card, want 1 (card: %q)", pg.name, n,
				eval[string](t, b, `(document.querySelector('[data-testid="events"]') || {}).innerText || ""`))
		}
		if n := eval[int](t, b, `document.querySelectorAll('[data-testid="table-events"], [data-testid="events"] .notice, .notice-error, [role="alert"]').length`); n != 0 {
			t.Errorf("%s: %d events tables, notices or errors shown with events off: %q", pg.name, n,
				eval[string](t, b, `document.body.innerText.slice(0, 2000)`))
		}
		charts := jsonOf[map[string]shownMarkers](t, evalJSON(t, b, `JSON.stringify((window.kubemon && window.kubemon.charts) || {})`))
		if len(charts) == 0 {
			t.Errorf("%s: no charts", pg.name)
		}
		for name, c := range charts {
			if c.EventsQuery != "" {
				t.Errorf("%s: chart %s's event markers say they were read from %s", pg.name, name, c.EventsQuery)
			}
			for _, m := range c.Markers {
				if m.Kind == "event" {
					t.Errorf("%s: chart %s draws an event marker %+v", pg.name, name, m)
				}
			}
		}
		b.screenshot(t, "events-off-"+pg.name)
	}
}
