package rules

import (
	"context"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/kubemon/kubemon/internal/model"
)

// parsePack renders and parses the default pack.
func parsePack(t *testing.T) *rulefmt.RuleGroups {
	t.Helper()
	b, err := DefaultPack()
	if err != nil {
		t.Fatal(err)
	}
	rgs, errs := parseFile(DefaultPackFile, b, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		t.Fatalf("the default pack does not parse: %v\n%s", errs, b)
	}
	return rgs
}

var labelRef = regexp.MustCompile(`\$labels\.([A-Za-z_][A-Za-z0-9_]*)`)

// TestPackNames: every series the pack selects is one kubemon writes
// (internal/model's table), and every $labels.<key> its annotations use is
// a label key of those series.
func TestPackNames(t *testing.T) {
	rgs := parsePack(t)
	p := parser.NewParser(parser.Options{})
	n := 0
	for _, g := range rgs.Groups {
		for _, r := range g.Rules {
			n++
			expr, err := p.ParseExpr(r.Expr)
			if err != nil {
				t.Fatalf("%s: %v", r.Alert, err)
			}
			var keys []string // label keys every selected series has
			selectors := 0
			parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
				vs, ok := node.(*parser.VectorSelector)
				if !ok {
					return nil
				}
				selectors++
				l, m, ok := model.ParseSeriesName(vs.Name)
				if !ok {
					t.Errorf("%s: selects %q, which is not a series of the metric table", r.Alert, vs.Name)
					return nil
				}
				sk := model.SeriesLabelKeys(l, m)
				if keys == nil {
					keys = sk
				} else {
					keys = slices.DeleteFunc(keys, func(k string) bool { return !slices.Contains(sk, k) })
				}
				return nil
			})
			if selectors == 0 {
				t.Errorf("%s: selects no series", r.Alert)
			}
			for _, a := range r.Annotations {
				for _, m := range labelRef.FindAllStringSubmatch(a, -1) {
					if !slices.Contains(keys, m[1]) {
						t.Errorf("%s: annotation uses $labels.%s, not a label of its series (%v)", r.Alert, m[1], keys)
					}
				}
			}
		}
	}
	if n < 7 {
		t.Fatalf("the pack has %d rules, want at least 7", n)
	}
}

// TestPackRunbooks: every alert of the pack waits (for:), has a severity,
// a summary, a description and a runbook link to its section of
// docs/alerts.md, which documents its threshold.
func TestPackRunbooks(t *testing.T) {
	doc, err := os.ReadFile("../../docs/alerts.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(doc), "\n") {
		if h, ok := strings.CutPrefix(line, "### "); ok {
			anchors[strings.ToLower(strings.TrimSpace(h))] = true
		}
	}
	const base = "https://github.com/kubemon/kubemon/blob/main/docs/alerts.md#"
	for _, g := range parsePack(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			if r.For <= 0 {
				t.Errorf("%s: no for:", r.Alert)
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("%s: severity %q, want warning or critical", r.Alert, s)
			}
			for _, k := range []string{"summary", "description", "runbook_url"} {
				if r.Annotations[k] == "" {
					t.Errorf("%s: no %s annotation", r.Alert, k)
				}
			}
			anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], base)
			if !ok || anchor != strings.ToLower(r.Alert) {
				t.Errorf("%s: runbook_url %q, want %s%s", r.Alert, r.Annotations["runbook_url"], base, strings.ToLower(r.Alert))
			}
			if !anchors[anchor] {
				t.Errorf("%s: docs/alerts.md has no section \"### %s\"", r.Alert, r.Alert)
			}
		}
	}
}

// TestPackFires evaluates every alert of the pack over a store holding a
// healthy cluster, where none may fire, one where every threshold is
// crossed, where each must select the object that crossed it, and one
// whose crash loop ended over 15 minutes ago, where none may fire.
func TestPackFires(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	ctr := model.Object{Level: model.LevelContainer, Node: "n1", Namespace: "shop", Pod: "web-1", Container: "app"}
	node := model.Object{Level: model.LevelNode, Node: "n1"}
	sink := model.Object{Level: model.LevelKubemon, Sink: "influxdb"}
	self := model.Object{Level: model.LevelKubemon}
	objects := []model.Object{ctr, node, sink, self}
	// fill writes every object at each minute of the last 20, with the
	// values set gives it at that time.
	fill := func(e *env, set func(at time.Time, o model.Object, v *model.Values)) {
		t.Helper()
		for at := now.Add(-20 * time.Minute); !at.After(now); at = at.Add(time.Minute) {
			b := &model.Batch{Time: at}
			for _, o := range objects {
				en := model.Entry{Object: o, Time: at.UnixMilli(), Values: model.NewValues()}
				set(at, o, &en.Values)
				b.Entries = append(b.Entries, en)
			}
			if _, err := e.st.Append(context.Background(), b); err != nil {
				t.Fatal(err)
			}
		}
	}
	healthy := func(at time.Time, o model.Object, v *model.Values) {
		switch o {
		case ctr:
			v[model.Restarts], v[model.MemoryWorkingSet], v[model.MemoryLimit], v[model.OOMKills] = 1, 50, 100, 2
			v[model.CrashLoopBackOff] = 0
			m := float64(at.Unix()-now.Unix()) / 60 // counters: 600 periods a minute, 60 throttled
			v[model.CFSPeriods], v[model.CFSThrottledPeriods] = 1e6+600*m, 1e5+60*m
		case node:
			v[model.CPUUtilization], v[model.MemoryUtilization], v[model.KubeletUp] = 0.5, 0.5, 1
			v[model.FilesystemAvailable], v[model.FilesystemLimit], v[model.EphemeralStorageUsage] = 50, 100, 10
		case sink:
			v[model.SinkLag] = 75
		case self:
			v[model.StoreSize], v[model.StoreSizeLimit] = 95, 100
			v[model.StoreVolumeAvailable], v[model.StoreVolumeSize] = 50, 100
		}
	}
	crossed := func(at time.Time, o model.Object, v *model.Values) {
		recent := now.Sub(at) < 5*time.Minute
		switch o {
		case ctr:
			v[model.Restarts], v[model.MemoryWorkingSet], v[model.MemoryLimit], v[model.OOMKills] = 1, 95, 100, 2
			v[model.CrashLoopBackOff] = 0
			m := float64(at.Unix()-now.Unix()) / 60 // 600 periods a minute, 300 throttled
			v[model.CFSPeriods], v[model.CFSThrottledPeriods] = 1e6+600*m, 1e5+300*m
			if recent {
				v[model.Restarts] = 4                                     // three restarts in the last 5 minutes
				v[model.CrashLoopBackOff] = float64(at.Unix() % 120 / 60) // backing off, on and off
			}
			if now.Sub(at) < 2*time.Minute {
				v[model.OOMKills] = 3 // an OOM kill 2 minutes ago
			}
		case node:
			v[model.CPUUtilization], v[model.MemoryUtilization], v[model.KubeletUp] = 0.95, 0.95, 0
			v[model.FilesystemAvailable], v[model.FilesystemLimit], v[model.EphemeralStorageUsage] = 5, 100, 80
		case sink:
			v[model.SinkLag] = 1200
		case self:
			v[model.StoreSize], v[model.StoreSizeLimit] = 110, 100
			v[model.StoreVolumeAvailable], v[model.StoreVolumeSize] = 5, 100
		}
	}
	// recovered restarted three times, backing off, and was OOM-killed
	// until 7 minutes ago; nothing since: its crash loop is over, although
	// its restarts are still within 15 minutes.
	recovered := func(at time.Time, o model.Object, v *model.Values) {
		healthy(at, o, v)
		if o == ctr && now.Sub(at) < 12*time.Minute {
			v[model.Restarts], v[model.OOMKills] = 2, 3
			if now.Sub(at) < 10*time.Minute {
				v[model.Restarts] = 4
			}
			if now.Sub(at) >= 7*time.Minute {
				v[model.CrashLoopBackOff] = 1
			}
		}
	}
	p := parser.NewParser(parser.Options{})
	rgs := parsePack(t)
	for _, tc := range []struct {
		name string
		set  func(time.Time, model.Object, *model.Values)
		fire bool
	}{{"healthy", healthy, false}, {"crossed", crossed, true}, {"recovered", recovered, false}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			fill(e, tc.set)
			for _, g := range rgs.Groups {
				for _, r := range g.Rules {
					if r.Alert == "" {
						continue
					}
					q, err := e.engine.NewInstantQuery(context.Background(), e.st.Queryable(), nil, r.Expr, now)
					if err != nil {
						t.Fatal(err)
					}
					res := q.Exec(context.Background())
					if res.Err != nil {
						t.Fatalf("%s: %v", r.Alert, res.Err)
					}
					v, err := res.Vector()
					if err != nil {
						t.Fatalf("%s: %v", r.Alert, err)
					}
					q.Close()
					if !tc.fire {
						if len(v) != 0 {
							t.Errorf("%s fires over a healthy cluster: %v", r.Alert, v)
						}
						continue
					}
					if len(v) != 1 {
						t.Errorf("%s: %d alerts over a cluster past its threshold, want 1: %v", r.Alert, len(v), v)
						continue
					}
					// The object that crossed the threshold: the one whose
					// series the rule selects first.
					l, m := firstSeries(t, p, r.Expr)
					var want model.Object
					for _, o := range objects {
						if o.Level == l && (o.Sink != "") == slices.Contains(model.Metrics[m].Labels, model.LabelSink) {
							want = o
						}
					}
					for _, k := range model.SeriesLabelKeys(l, m) {
						if got := v[0].Metric.Get(k); got != want.Label(k) {
							t.Errorf("%s: %s=%q, want %q", r.Alert, k, got, want.Label(k))
						}
					}
				}
			}
		})
	}
}

// firstSeries is the level and metric of the first series expr selects.
func firstSeries(t *testing.T, p parser.Parser, expr string) (model.Level, model.MetricID) {
	t.Helper()
	e, err := p.ParseExpr(expr)
	if err != nil {
		t.Fatal(err)
	}
	var name string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok && name == "" {
			name = vs.Name
		}
		return nil
	})
	l, m, ok := model.ParseSeriesName(name)
	if !ok {
		t.Fatalf("%s selects no series of the metric table first", expr)
	}
	return l, m
}
