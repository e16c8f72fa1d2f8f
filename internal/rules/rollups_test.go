package rules

import (
	"context"
	"log/slog"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	pmodel "github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/pipeline"
	"github.com/kubemon/kubemon/internal/store"
)

// rollupEntries are three nodes and five pods in two namespaces, three of
// them in two workloads, one bare; every value distinct.
func rollupEntries(t int64) []model.Entry {
	var out []model.Entry
	seed := 1.0
	values := func(l model.Level) model.Values {
		v := model.NewValues()
		for m := range model.NumMetrics {
			if model.Metrics[m].Levels.Has(l) && model.Metrics[m].Kind != model.Counter && model.Metrics[m].Rollup == model.RollupSum {
				seed += 1.37
				v[m] = seed
			}
		}
		return v
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		out = append(out, model.Entry{Object: model.Object{Level: model.LevelNode, Node: n}, Time: t, Values: values(model.LevelNode)})
	}
	pods := []struct{ ns, name, node, kind, wl string }{
		{"shop", "web-1", "n1", "Deployment", "web"},
		{"shop", "web-2", "n2", "Deployment", "web"},
		{"shop", "db-0", "n3", "StatefulSet", "db"},
		{"shop", "debug", "n1", "", ""},
		{"ops", "agent-x", "n2", "DaemonSet", "agent"},
	}
	for _, p := range pods {
		meta := &model.PodMeta{Namespace: p.ns, Name: p.name, Node: p.node, WorkloadKind: p.kind, Workload: p.wl, Phase: model.PhaseRunning}
		v := values(model.LevelPod)
		v[model.Info] = 1
		out = append(out, model.Entry{Object: model.Object{Level: model.LevelPod, Node: p.node, Namespace: p.ns, Pod: p.name}, Time: t, Values: v, Pod: meta})
	}
	return out
}

// TestRollupsMatchPipeline: the roll-up rules, evaluated over a store that
// holds only pods and nodes (what sharded members write), give the
// namespace, workload and cluster series the pipeline's Aggregate makes
// from the same entries, every one of them, to the last bit of rounding.
func TestRollupsMatchPipeline(t *testing.T) {
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	at := time.Now().Truncate(time.Second)
	entries := rollupEntries(at.UnixMilli())
	if _, err := st.Append(context.Background(), &model.Batch{Time: at, Entries: entries}); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{} // "<series>{<labels>}" -> value
	for _, e := range pipeline.Aggregate(entries, at.UnixMilli()) {
		for m := range model.NumMetrics {
			if model.Metrics[m].Levels.Has(e.Object.Level) && !math.IsNaN(e.Values[m]) && model.Metrics[m].Rollup != model.RollupNone {
				want[key(model.PromName(e.Object.Level, m), objectLabels(e.Object))] = e.Values[m]
			}
		}
	}

	groups, errs := rulefmt.Parse(Rollups(15*time.Second), false, pmodel.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		t.Fatalf("the roll-up rules do not parse: %v", errs)
	}
	if len(groups.Groups) != 1 || groups.Groups[0].Interval.String() != "15s" {
		t.Fatalf("groups %+v, want one evaluated every 15s", groups.Groups)
	}
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	got := map[string]float64{}
	records := map[string]bool{}
	for _, r := range groups.Groups[0].Rules {
		records[r.Record] = true
		q, err := engine.NewInstantQuery(context.Background(), st.Queryable(), nil, r.Expr, at)
		if err != nil {
			t.Fatalf("%s: %v", r.Record, err)
		}
		res := q.Exec(context.Background())
		if res.Err != nil {
			t.Fatalf("%s: %v", r.Record, res.Err)
		}
		vec, err := res.Vector()
		if err != nil {
			t.Fatalf("%s: %v", r.Record, err)
		}
		for _, s := range vec {
			got[key(r.Record, s.Metric)] = s.F
		}
		q.Close()
	}
	// Every roll-up the pipeline makes of these metrics has its rule.
	compared := 0
	for k, w := range want {
		name := k[:strings.IndexByte(k, '{')]
		if !records[name] {
			t.Errorf("%s: no roll-up rule", name)
			continue
		}
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: the rules made no such series", k)
			continue
		}
		if !(math.Abs(g-w) <= 1e-9*math.Abs(w)) {
			t.Errorf("%s = %v by the rules, %v by the pipeline", k, g, w)
		}
		compared++
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("the rules made %s, which the pipeline does not", k)
		}
	}
	// 2 namespaces, 3 workloads and the cluster, each with its sums.
	if compared < 6*10 {
		t.Errorf("compared %d series, want at least 60", compared)
	}
	t.Logf("%d rules, %d roll-up series equal to the pipeline's", len(records), compared)
}

func objectLabels(o model.Object) labels.Labels {
	b := labels.NewScratchBuilder(3)
	switch o.Level {
	case model.LevelNamespace:
		b.Add(model.LabelNamespace, o.Namespace)
	case model.LevelWorkload:
		b.Add(model.LabelNamespace, o.Namespace)
		b.Add(model.LabelWorkloadKind, o.WorkloadKind)
		b.Add(model.LabelWorkload, o.Workload)
	}
	b.Sort()
	return b.Labels()
}

// key is name{sorted labels}, the series name label left out.
func key(name string, ls labels.Labels) string {
	var kv []string
	ls.Range(func(l labels.Label) {
		if l.Name != labels.MetricName {
			kv = append(kv, l.Name+"="+l.Value)
		}
	})
	sort.Strings(kv)
	return name + "{" + strings.Join(kv, ",") + "}"
}
