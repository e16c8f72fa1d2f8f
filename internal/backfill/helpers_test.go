package backfill

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/sim"
	"github.com/kubemon/kubemon/internal/store"
)

// series is one series read back from a store: its samples (times in Unix
// ms, values) and, apart, its staleness markers.
type series struct {
	labels labels.Labels
	ts     []int64
	vs     []float64
	stale  []int64
}

// data is a store's series by their labels' String().
type data map[string]*series

// read reads every series with a sample or marker in [mint, maxt).
func read(t testing.TB, q storage.Queryable, mint, maxt int64) data {
	t.Helper()
	qr, err := q.Querier(mint, maxt-1)
	if err != nil {
		t.Fatal(err)
	}
	defer qr.Close()
	out := data{}
	set := qr.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+"))
	for set.Next() {
		s := &series{labels: set.At().Labels()}
		it := set.At().Iterator(nil)
		for it.Next() != 0 {
			ts, v := it.At()
			if ts < mint || ts >= maxt {
				continue
			}
			if value.IsStaleNaN(v) {
				s.stale = append(s.stale, ts)
				continue
			}
			s.ts, s.vs = append(s.ts, ts), append(s.vs, v)
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		if len(s.ts) > 0 || len(s.stale) > 0 {
			out[s.labels.String()] = s
		}
	}
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// openStore opens dir as kubemon does (internal/store) and reads it.
func openStore(t testing.TB, dir string, mint, maxt int64) data {
	t.Helper()
	st, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	return read(t, st.Queryable(), mint, maxt)
}

// clone copies d deeply, for the fault-injection tests.
func (d data) clone() data {
	out := data{}
	for k, s := range d {
		out[k] = &series{labels: s.labels, ts: slices.Clone(s.ts), vs: slices.Clone(s.vs), stale: slices.Clone(s.stale)}
	}
	return out
}

func (d data) names() map[string]bool {
	out := map[string]bool{}
	for _, s := range d {
		out[s.labels.Get(labels.MetricName)] = true
	}
	return out
}

// level is the level of a series by its name's prefix (longest first:
// system_container before container).
func level(name string) (model.Level, bool) {
	best, found := model.Level(0), false
	for l := model.Level(0); l < model.NumLevels; l++ {
		if strings.HasPrefix(name, l.Prefix()+"_") && (!found || len(l.Prefix()) > len(best.Prefix())) {
			best, found = l, true
		}
	}
	return best, found
}

// metricOf is the metric of a series name at its level.
func metricOf(name string) (model.Level, model.MetricID, bool) {
	l, ok := level(name)
	if !ok {
		return 0, 0, false
	}
	for _, m := range model.Metrics {
		if model.PromName(l, m.ID) == name {
			return l, m.ID, true
		}
	}
	return 0, 0, false
}

// problems collects what a check found wrong, at most a few of each kind.
type problems []string

func (p *problems) add(format string, a ...any) { *p = append(*p, fmt.Sprintf(format, a...)) }

func (p problems) report(t testing.TB, what string) {
	t.Helper()
	if len(p) == 0 {
		return
	}
	show := p
	if len(show) > 20 {
		show = show[:20]
	}
	t.Errorf("%s: %d problems:\n  %s", what, len(p), strings.Join(show, "\n  "))
}

// checkCounts: every series matching keep has exactly n samples, at
// distinct times spaced one interval apart (node-level series at their
// node's offset, roll-ups on the interval's multiples), all of them numbers
// (no NaN but staleness markers, which are kept apart).
func checkCounts(d data, n int, interval time.Duration, keep func(*series) bool) problems {
	var p problems
	for k, s := range d {
		if !keep(s) {
			continue
		}
		if len(s.ts) != n {
			p.add("%s: %d samples, want %d", k, len(s.ts), n)
		}
		for i, v := range s.vs {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				p.add("%s: sample %d at %s is %v", k, i, msTime(s.ts[i]), v)
				break
			}
			if i > 0 && s.ts[i]-s.ts[i-1] != interval.Milliseconds() {
				p.add("%s: samples at %s and %s, want %s apart", k, msTime(s.ts[i-1]), msTime(s.ts[i]), interval)
				break
			}
		}
	}
	return p
}

// checkSeriesSet: a and b hold the same series (labels included).
func checkSeriesSet(a, b data, aName, bName string) problems {
	var p problems
	for _, k := range setOf(a) {
		if b[k] == nil {
			p.add("%s only in %s", k, aName)
		}
	}
	for _, k := range setOf(b) {
		if a[k] == nil {
			p.add("%s only in %s", k, bName)
		}
	}
	return p
}

// setOf is d's series, sorted.
func setOf(d data) []string {
	out := make([]string, 0, len(d))
	for k := range d {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkTruth (constant mode): every container's CPU and disk IO rates, the
// pods' and nodes' CPU and the cluster's equal the simulator's truth within
// 1 %, at every sample.
func checkTruth(d data, truth sim.Truth) problems {
	var p problems
	type key struct{ node, ns, pod, ctr string }
	cpu := map[key]float64{}
	rd, wr := map[key]float64{}, map[key]float64{}
	var cluster float64
	for _, c := range truth.Containers {
		cores := c.CPUMillicores / 1000
		cpu[key{c.Node, c.Namespace, c.Pod, c.Container}] = cores
		cpu[key{c.Node, c.Namespace, c.Pod, ""}] += cores
		cpu[key{c.Node, "", "", ""}] += cores
		rd[key{c.Node, c.Namespace, c.Pod, c.Container}] = c.DiskReadBytesPerSecond
		wr[key{c.Node, c.Namespace, c.Pod, c.Container}] = c.DiskWriteBytesPerSecond
		cluster += cores
	}
	near := func(got, want float64) bool { return math.Abs(got-want) <= 0.01*math.Abs(want) } // false for NaN
	seen := map[string]int{}
	for k, s := range d {
		l := s.labels
		id := key{l.Get(model.LabelNode), l.Get(model.LabelNamespace), l.Get(model.LabelPod), l.Get(model.LabelContainer)}
		var want map[key]float64
		switch l.Get(labels.MetricName) {
		case model.PromName(model.LevelContainer, model.CPUUsageRate), model.PromName(model.LevelPod, model.CPUUsageRate),
			model.PromName(model.LevelNode, model.CPUUsageRate):
			want = cpu
		case model.PromName(model.LevelContainer, model.DiskIOReadRate):
			want = rd
		case model.PromName(model.LevelContainer, model.DiskIOWriteRate):
			want = wr
		case model.PromName(model.LevelCluster, model.CPUUsageRate):
			want = map[key]float64{{}: cluster}
		default:
			continue
		}
		w, ok := want[id]
		if !ok {
			p.add("%s: not in the simulator's truth", k)
			continue
		}
		seen[l.Get(labels.MetricName)]++
		for i, v := range s.vs {
			if !near(v, w) {
				p.add("%s at %s: %v, the simulator's truth is %v", k, msTime(s.ts[i]), v, w)
				break
			}
		}
	}
	containers := len(truth.Containers)
	for name, n := range map[string]int{
		model.PromName(model.LevelContainer, model.CPUUsageRate):    containers,
		model.PromName(model.LevelContainer, model.DiskIOReadRate):  containers,
		model.PromName(model.LevelContainer, model.DiskIOWriteRate): containers,
		model.PromName(model.LevelCluster, model.CPUUsageRate):      1,
	} {
		if seen[name] != n {
			p.add("%s: %d series checked against the truth, want %d", name, seen[name], n)
		}
	}
	return p
}

// checkCounters (constant mode): every counter series rises between
// consecutive samples by its rate series' value times the time between
// them (within 1 %), block boundaries included: no reset, no gap.
func checkCounters(d data) problems {
	var p problems
	checked := 0
	for k, s := range d {
		l, m, ok := metricOf(s.labels.Get(labels.MetricName))
		if !ok || model.Metrics[m].Kind != model.Counter {
			continue
		}
		var rate model.MetricID
		hasRate := false
		for _, r := range model.Metrics {
			if r.RateOf != nil && *r.RateOf == m {
				rate, hasRate = r.ID, true
			}
		}
		if !hasRate || !model.Metrics[rate].Levels.Has(l) {
			continue
		}
		rl := labels.NewBuilder(s.labels).Set(labels.MetricName, model.PromName(l, rate)).Labels()
		rs := d[rl.String()]
		if rs == nil {
			p.add("%s: no rate series %s", k, rl)
			continue
		}
		checked++
		for i := 1; i < len(s.ts); i++ {
			dv, dt := s.vs[i]-s.vs[i-1], float64(s.ts[i]-s.ts[i-1])/1000
			j, found := slices.BinarySearch(rs.ts, s.ts[i])
			if !found {
				p.add("%s: no rate at %s", k, msTime(s.ts[i]))
				break
			}
			want := rs.vs[j] * dt
			if !(dv >= 0) || !(math.Abs(dv-want) <= 0.01*math.Abs(want)+1e-9) {
				p.add("%s: from %s to %s rose by %v, its rate says %v", k, msTime(s.ts[i-1]), msTime(s.ts[i]), dv, want)
				break
			}
		}
	}
	if checked == 0 {
		p.add("no counter with a rate series checked")
	}
	return p
}

// blockMetas reads the metas of the blocks in dir.
func blockMetas(t testing.TB, dir string) []tsdb.BlockMeta {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []tsdb.BlockMeta
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name(), "meta.json"))
		if err != nil {
			continue
		}
		var m tsdb.BlockMeta
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].MinTime < out[j].MinTime })
	return out
}

// checkBlocks: the blocks cover [start, end) without gap or overlap, each
// within one 2-hour slot of the grid, cut only at its multiples.
func checkBlocks(metas []tsdb.BlockMeta, start, end time.Time) problems {
	var p problems
	bd := blockDuration.Milliseconds()
	if len(metas) == 0 {
		p.add("no block")
		return p
	}
	if got := metas[0].MinTime; got != start.UnixMilli() {
		p.add("first block starts at %s, want %s", msTime(got), msTime(start.UnixMilli()))
	}
	if got := metas[len(metas)-1].MaxTime; got != end.UnixMilli() {
		p.add("last block ends at %s, want %s", msTime(got), msTime(end.UnixMilli()))
	}
	for i, m := range metas {
		if i > 0 && m.MinTime != metas[i-1].MaxTime {
			p.add("block %d starts at %s, the one before ends at %s", i, msTime(m.MinTime), msTime(metas[i-1].MaxTime))
		}
		if i > 0 && m.MinTime%bd != 0 {
			p.add("block %d starts at %s, not on the 2 h grid", i, msTime(m.MinTime))
		}
		if i < len(metas)-1 && m.MaxTime%bd != 0 {
			p.add("block %d ends at %s, not on the 2 h grid", i, msTime(m.MaxTime))
		}
		if (m.MinTime/bd) != ((m.MaxTime-1)/bd) || m.MaxTime <= m.MinTime {
			p.add("block %d [%s, %s) is not inside one 2 h slot", i, msTime(m.MinTime), msTime(m.MaxTime))
		}
		if m.Stats.NumSamples == 0 {
			p.add("block %d is empty", i)
		}
	}
	return p
}
