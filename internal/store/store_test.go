package store

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"

	"github.com/kubemon/kubemon/internal/model"
)

func batch(t int64, cpu float64) *model.Batch {
	c := model.Entry{
		Object: model.Object{Level: model.LevelContainer, Node: "n1", Namespace: "ns", Pod: "p", Container: "c"},
		Time:   t, Values: model.NewValues(),
	}
	c.Values[model.CPUUsage] = cpu
	c.Values[model.MemoryWorkingSet] = 1 << 20
	c.Values[model.NetworkRx] = 5 // not a container metric: must not be stored
	cl := model.Entry{Object: model.Object{Level: model.LevelCluster}, Time: t, Values: model.NewValues()}
	cl.Values[model.CPUUsageRate] = 0.5
	return &model.Batch{Entries: []model.Entry{c, cl}}
}

// series is the String() of the series of metric m at level l with the
// label pairs kv: the store's series named and labelled through the model.
func series(l model.Level, m model.MetricID, kv ...string) string {
	return labels.FromStrings(append([]string{labels.MetricName, model.PromName(l, m)}, kv...)...).String()
}

// nameIs matches the series of metric m at level l.
func nameIs(l model.Level, m model.MetricID) *labels.Matcher {
	return labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, model.PromName(l, m))
}

func samples(t *testing.T, s *Store, ms ...*labels.Matcher) map[string][][2]float64 {
	t.Helper()
	q, err := s.Queryable().Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	out := map[string][][2]float64{}
	set := q.Select(context.Background(), false, nil, ms...)
	for set.Next() {
		it := set.At().Iterator(nil)
		for it.Next() != 0 {
			ts, v := it.At()
			out[set.At().Labels().String()] = append(out[set.At().Labels().String()], [2]float64{float64(ts), v})
		}
	}
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAppendQueryReopen(t *testing.T) {
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	s, err := Open(Options{Dir: dir, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().UnixMilli()
	for i := range 3 {
		n, err := s.Append(context.Background(), batch(base+int64(i)*10_000, float64(i)))
		if err != nil || n != 3 {
			t.Fatalf("append %d: n=%d err=%v, want 3 samples", i, n, err)
		}
	}
	// A repeated timestamp with another value is counted and skipped (one
	// with the same value is a harmless no-op), and the rest of the batch is
	// still stored.
	b := batch(base+20_000, 99)
	b.Entries[1].Time = base + 30_000
	if n, err := s.Append(context.Background(), b); err != nil || n != 2 {
		t.Fatalf("append with a duplicate: n=%d err=%v, want 2 (memory no-op and cluster)", n, err)
	}
	if got := testutil.ToFloat64(s.rejected.WithLabelValues("duplicate")); got != 1 {
		t.Errorf("rejected duplicates %v, want 1", got)
	}

	all := samples(t, s, labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+"))
	want := map[string]int{
		series(model.LevelContainer, model.CPUUsage, model.LabelContainer, "c", model.LabelNamespace, "ns", model.LabelNode, "n1", model.LabelPod, "p"):         3,
		series(model.LevelContainer, model.MemoryWorkingSet, model.LabelContainer, "c", model.LabelNamespace, "ns", model.LabelNode, "n1", model.LabelPod, "p"): 3,
		series(model.LevelCluster, model.CPUUsageRate): 4,
	}
	if len(all) != len(want) {
		t.Errorf("series %v, want %v", keys(all), want)
	}
	for k, n := range want {
		if len(all[k]) != n {
			t.Errorf("%s: %d samples, want %d", k, len(all[k]), n)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := samples(t, s, nameIs(model.LevelContainer, model.CPUUsage))
	for _, v := range got {
		if len(v) != 3 || v[2][1] != 2 {
			t.Errorf("after reopen: %v", v)
		}
	}
	// Appending after a reopen works through the label path (the cache is new).
	if n, err := s.Append(context.Background(), batch(base+40_000, 5)); err != nil || n != 3 {
		t.Fatalf("append after reopen: n=%d err=%v", n, err)
	}
}

func TestRefCache(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := time.Now().UnixMilli()
	if _, err := s.Append(context.Background(), batch(base, 1)); err != nil {
		t.Fatal(err)
	}
	if s.refs.len() != 2 {
		t.Fatalf("%d cached objects, want 2", s.refs.len())
	}
	// Series unseen for longer than refTTL are forgotten at the next sweep;
	// appending to them again still works, through their labels.
	s.swept = time.Now().Add(-2 * refTTL)
	s.refs.each(func(r *objectRefs) { r.seen = time.Now().Add(-2 * refTTL).Unix() })
	b := batch(base+1000, 2)
	b.Entries = b.Entries[1:] // the cluster entry only
	if n, err := s.Append(context.Background(), b); err != nil || n != 1 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	if s.refs.len() != 1 {
		t.Fatalf("%d cached objects after the sweep, want 1", s.refs.len())
	}
	if n, err := s.Append(context.Background(), batch(base+2000, 3)); err != nil || n != 3 {
		t.Fatalf("after the sweep: n=%d err=%v", n, err)
	}
	// The container, forgotten, is cached again although the last batch
	// that started with it still points at its old entry.
	if s.refs.len() != 2 || s.refs.find(&batch(0, 0).Entries[0].Object) == nil {
		t.Fatalf("%d cached objects after the container's return, want 2 with the container", s.refs.len())
	}
}

func TestLabels(t *testing.T) {
	tests := []struct {
		o    model.Object
		m    model.MetricID
		want string
	}{
		{model.Object{Level: model.LevelContainer, Node: "n", Namespace: "ns", Pod: "p", Container: "c"}, model.CPUUsage,
			series(model.LevelContainer, model.CPUUsage, model.LabelContainer, "c", model.LabelNamespace, "ns", model.LabelNode, "n", model.LabelPod, "p")},
		{model.Object{Level: model.LevelPod, Node: "n", Namespace: "ns", Pod: "p"}, model.NetworkRxRate,
			series(model.LevelPod, model.NetworkRxRate, model.LabelNamespace, "ns", model.LabelNode, "n", model.LabelPod, "p")},
		{model.Object{Level: model.LevelNamespace, Namespace: "ns"}, model.MemoryWorkingSet,
			series(model.LevelNamespace, model.MemoryWorkingSet, model.LabelNamespace, "ns")},
		{model.Object{Level: model.LevelWorkload, Namespace: "ns", WorkloadKind: "Deployment", Workload: "web"}, model.CPURequest,
			series(model.LevelWorkload, model.CPURequest, model.LabelNamespace, "ns", model.LabelWorkload, "web", model.LabelWorkloadKind, "Deployment")},
		{model.Object{Level: model.LevelNode, Node: "n"}, model.CPUUtilization, series(model.LevelNode, model.CPUUtilization, model.LabelNode, "n")},
		{model.Object{Level: model.LevelSysContainer, Node: "n", Container: "kubelet"}, model.MemoryRSS,
			series(model.LevelSysContainer, model.MemoryRSS, model.LabelContainer, "kubelet", model.LabelNode, "n")},
		{model.Object{Level: model.LevelCluster}, model.MemoryCapacity, series(model.LevelCluster, model.MemoryCapacity)},
	}
	for _, tt := range tests {
		if got := Labels(tt.o, tt.m).String(); got != tt.want {
			t.Errorf("got %s, want %s", got, tt.want)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(Options{}); err == nil {
		t.Error("no dir: want an error")
	}
	if _, err := Open(Options{Dir: t.TempDir(), Retention: -time.Hour}); err == nil {
		t.Error("negative retention: want an error")
	}
}

func keys(m map[string][][2]float64) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	return k
}

func TestPodInfo(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	podE := func(ts int64, labels map[string]string) *model.Batch {
		e := model.Entry{Object: model.Object{Level: model.LevelPod, Node: "n", Namespace: "ns", Pod: "web-1"}, Time: ts, Values: model.NewValues(),
			Pod: &model.PodMeta{WorkloadKind: "Deployment", Workload: "web", Labels: labels}}
		e.Values[model.Info] = 1
		return &model.Batch{Entries: []model.Entry{e}}
	}
	base := time.Now().UnixMilli()
	for i, l := range []map[string]string{{"app": "web", "app.kubernetes.io/tier": "front"}, {"app": "web", "app.kubernetes.io/tier": "front"}, {"app": "web2"}} {
		if _, err := s.Append(context.Background(), podE(base+int64(i)*1000, l)); err != nil {
			t.Fatal(err)
		}
	}
	got := samples(t, s, nameIs(model.LevelPod, model.Info))
	pod := []string{model.LabelNamespace, "ns", model.LabelNode, "n", model.LabelPod, "web-1", model.LabelWorkload, "web", model.LabelWorkloadKind, "Deployment"}
	first := series(model.LevelPod, model.Info, append([]string{model.LabelKubeLabelPrefix + "app", "web", model.LabelKubeLabelPrefix + "app_kubernetes_io_tier", "front",
		model.LabelKubeLabels, "app:web,app.kubernetes.io/tier:front"}, pod...)...)
	second := series(model.LevelPod, model.Info, append([]string{model.LabelKubeLabelPrefix + "app", "web2", model.LabelKubeLabels, "app:web2"}, pod...)...)
	if len(got) != 2 || len(got[first]) != 3 || len(got[second]) != 1 {
		t.Fatalf("%s series: %v", model.PromName(model.LevelPod, model.Info), got)
	}
	// The relabelled pod's old series ends with a staleness marker.
	if v := got[first][2][1]; !value.IsStaleNaN(v) {
		t.Errorf("old %s ends with %v, want a staleness marker", model.PromName(model.LevelPod, model.Info), v)
	}
}

func TestNamespaceInfoSeries(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e := model.Entry{Object: model.Object{Level: model.LevelNamespace, Namespace: "shop"}, Time: time.Now().UnixMilli(),
		Values: model.NewValues(), Labels: map[string]string{"kubernetes.io/metadata.name": "shop"}}
	e.Values[model.Info] = 1
	if _, err := s.Append(context.Background(), &model.Batch{Entries: []model.Entry{e}}); err != nil {
		t.Fatal(err)
	}
	got := samples(t, s, nameIs(model.LevelNamespace, model.Info))
	want := series(model.LevelNamespace, model.Info, model.LabelKubeLabelPrefix+"kubernetes_io_metadata_name", "shop",
		model.LabelKubeLabels, "kubernetes.io/metadata.name:shop", model.LabelNamespace, "shop")
	if len(got) != 1 || len(got[want]) != 1 {
		t.Fatalf("%s: %v", model.PromName(model.LevelNamespace, model.Info), got)
	}
}

func TestGoneEndsSeries(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := time.Now().UnixMilli()
	if _, err := s.Append(context.Background(), batch(base, 1)); err != nil {
		t.Fatal(err)
	}
	gone := batch(base+1000, 0)
	gone.Entries = gone.Entries[:1]
	gone.Entries[0].Gone = true
	if _, err := s.Append(context.Background(), gone); err != nil {
		t.Fatal(err)
	}
	got := samples(t, s, labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, model.LevelContainer.Prefix()+"_.*"))
	if len(got) != 2 {
		t.Fatalf("series %v", got)
	}
	for k, v := range got {
		if len(v) != 2 || !value.IsStaleNaN(v[1][1]) || v[1][0] != float64(base+1000) {
			t.Errorf("%s = %v, want a value then a staleness marker", k, v)
		}
	}
	if s.refs.len() != 1 {
		t.Errorf("%d cached objects, want 1 (the cluster)", s.refs.len())
	}
}

func TestDrop(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir(), Drop: []string{model.LevelContainer.Prefix() + "_memory_*"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, err := s.Append(context.Background(), batch(time.Now().UnixMilli(), 1)); err != nil || n != 2 {
		t.Fatalf("n=%d err=%v, want 2 (the working set dropped)", n, err)
	}
	if got := samples(t, s, nameIs(model.LevelContainer, model.MemoryWorkingSet)); len(got) != 0 {
		t.Errorf("dropped series stored: %v", got)
	}
}

// TestRetentionSize: with a byte limit the oldest blocks are deleted so
// the store stays within it; without one they are all kept.
func TestRetentionSize(t *testing.T) {
	// 12 hours of samples, every 15 s, for 100 series: several 2 h blocks.
	fill := func(s *Store) (first int64) {
		t.Helper()
		end := time.Now().Add(-time.Minute).UnixMilli()
		first = end - 12*time.Hour.Milliseconds()
		app := s.DB().Appender(context.Background())
		for ts := first; ts <= end; ts += 15_000 {
			for i := range 100 {
				ls := labels.FromStrings(labels.MetricName, model.PromName(model.LevelContainer, model.CPUUsage), model.LabelPod, fmt.Sprint("p", i))
				if _, err := app.Append(0, ls, ts, float64(ts/1000+int64(i))); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := s.DB().Compact(context.Background()); err != nil {
			t.Fatal(err)
		}
		return first
	}
	size := func(s *Store) (n int, bytes int64) {
		for _, b := range s.DB().Blocks() {
			n++
			bytes += b.Size()
		}
		return n, bytes
	}

	unlimited, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer unlimited.Close()
	first := fill(unlimited)
	nAll, bytesAll := size(unlimited)
	if nAll < 3 {
		t.Fatalf("%d blocks from 12 h of samples, want at least 3", nAll)
	}

	// The WAL and head chunks count towards the limit too.
	limit := unlimited.DB().Head().Size() + bytesAll/2
	reg := prometheus.NewRegistry()
	limited, err := Open(Options{Dir: t.TempDir(), RetentionSize: limit, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer limited.Close()
	fill(limited)
	n, bytes := size(limited)
	if n == 0 || n >= nAll {
		t.Fatalf("%d blocks with a limit of %d bytes, want fewer than %d and at least 1", n, limit, nAll)
	}
	if total := bytes + limited.DB().Head().Size(); total > limit {
		t.Errorf("blocks and head hold %d bytes, over the limit of %d", total, limit)
	}
	if minT := limited.DB().Blocks()[0].Meta().MinTime; !(minT > first) {
		t.Errorf("oldest block starts at %d, want after the first sample %d (deleted)", minT, first)
	}
	if got := testutil.ToFloat64(mustGauge(t, reg, "prometheus_tsdb_retention_limit_bytes")); got != float64(limit) {
		t.Errorf("prometheus_tsdb_retention_limit_bytes %v, want %d", got, limit)
	}
	if _, err := Open(Options{Dir: t.TempDir(), RetentionSize: -1}); err == nil {
		t.Error("negative retention size: want an error")
	}
}

// mustGauge finds a gauge family in reg and returns it as a collector.
func mustGauge(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: "copy"},
				func() float64 { return mf.GetMetric()[0].GetGauge().GetValue() })
		}
	}
	t.Fatalf("no gauge %s", name)
	return nil
}

// TestSetFloor: samples stamped at or before the floor are left out and
// counted, the rest of the same batch is kept, and later ones are stored.
func TestSetFloor(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := time.Now().UnixMilli()
	s.SetFloor(base + 10_000)
	b := batch(base+10_000, 1)
	b.Entries[1].Time = base + 10_001 // the cluster's sample, just past the floor
	if n, err := s.Append(context.Background(), b); err != nil || n != 1 {
		t.Fatalf("append at the floor: n=%d err=%v, want 1 (the cluster's)", n, err)
	}
	if got := testutil.ToFloat64(s.rejected.WithLabelValues("filled_by_peer")); got != 2 {
		t.Errorf("rejected filled_by_peer %v, want the container's 2", got)
	}
	if n, err := s.Append(context.Background(), batch(base+20_000, 2)); err != nil || n != 3 {
		t.Fatalf("append past the floor: n=%d err=%v, want 3", n, err)
	}
	got := samples(t, s, nameIs(model.LevelContainer, model.CPUUsage))
	if len(got) != 1 {
		t.Fatalf("container CPU series %v, want 1", keys(got))
	}
	for _, v := range got {
		if len(v) != 1 || v[0] != [2]float64{float64(base + 20_000), 2} {
			t.Errorf("container CPU samples %v, want only the one past the floor", v)
		}
	}
	if cl := samples(t, s, nameIs(model.LevelCluster, model.CPUUsageRate)); len(cl) != 1 {
		t.Errorf("cluster CPU series %v, want 1", keys(cl))
	}
}

// TestInfoHash: the hash moves when any label, the workload or its kind
// moves, and not with the map's order.
func TestInfoHash(t *testing.T) {
	pod := func(kind, name string, l map[string]string) *model.Entry {
		return &model.Entry{Object: model.Object{Level: model.LevelPod}, Pod: &model.PodMeta{WorkloadKind: kind, Workload: name, Labels: l}}
	}
	base := pod("Deployment", "web", map[string]string{"app": "web", "tier": "front", "x": ""})
	h := InfoHash(base)
	for range 20 { // Go varies a map's order between iterations
		if got := InfoHash(pod("Deployment", "web", map[string]string{"x": "", "tier": "front", "app": "web"})); got != h {
			t.Fatalf("same labels, hash %x then %x", h, got)
		}
	}
	changed := map[string]*model.Entry{
		"a value":               pod("Deployment", "web", map[string]string{"app": "web2", "tier": "front", "x": ""}),
		"values swapped":        pod("Deployment", "web", map[string]string{"app": "front", "tier": "web", "x": ""}),
		"a label gone":          pod("Deployment", "web", map[string]string{"app": "web", "tier": "front"}),
		"key and value shifted": pod("Deployment", "web", map[string]string{"ap": "pweb", "tier": "front", "x": ""}),
		"the workload":          pod("Deployment", "api", map[string]string{"app": "web", "tier": "front", "x": ""}),
		"the kind":              pod("StatefulSet", "web", map[string]string{"app": "web", "tier": "front", "x": ""}),
		"kind and name shifted": pod("Deploymentw", "eb", map[string]string{"app": "web", "tier": "front", "x": ""}),
	}
	for name, e := range changed {
		if got := InfoHash(e); got == h || got == 0 {
			t.Errorf("%s: hash %x (unchanged %x)", name, got, h)
		}
	}
	if InfoHash(&model.Entry{Object: model.Object{Level: model.LevelNamespace}}) == 0 {
		t.Error("hash 0")
	}
}

// TestRefCacheOrder appends batches whose objects change places, come and
// go, with every object's hash the same (one chain) and with the real
// hash: each series must get its own object's values.
func TestRefCacheOrder(t *testing.T) {
	for _, collide := range []bool{false, true} {
		t.Run(fmt.Sprintf("collide=%v", collide), func(t *testing.T) {
			s, err := Open(Options{Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if collide {
				s.refs.hash = func(*model.Object) uint64 { return 7 }
			}
			pod := func(name string) model.Object {
				return model.Object{Level: model.LevelPod, Node: "n1", Namespace: "ns", Pod: name}
			}
			node := model.Object{Level: model.LevelNode, Node: "n1"}
			base := time.Now().UnixMilli()
			// Each cycle's batch starts with the node (the order's source);
			// the pods' value is their name's number plus the cycle.
			cycles := [][]string{{"1", "2", "3"}, {"2", "1", "3"}, {"1", "3"}, {"4", "1", "3", "2"}, {"4", "1", "3", "2"}}
			want := map[string][][2]float64{}
			for c, pods := range cycles {
				at := base + int64(c)*15000
				es := []model.Entry{{Object: node, Time: at, Values: model.NewValues()}}
				es[0].Values[model.CPUUsageRate] = 1
				for _, p := range pods {
					e := model.Entry{Object: pod("p" + p), Time: at, Values: model.NewValues()}
					v := float64(int(p[0]-'0')*100 + c)
					e.Values[model.CPUUsageRate] = v
					es = append(es, e)
					k := series(model.LevelPod, model.CPUUsageRate, model.LabelNamespace, "ns", model.LabelNode, "n1", model.LabelPod, "p"+p)
					want[k] = append(want[k], [2]float64{float64(at), v})
				}
				if c == 2 { // p2 deleted: its series end
					es = append(es, model.Entry{Object: pod("p2"), Time: at, Gone: true})
				}
				if _, err := s.Append(context.Background(), &model.Batch{Entries: es}); err != nil {
					t.Fatal(err)
				}
				if got, want := s.refs.len(), len(pods)+1; got != want {
					t.Fatalf("cycle %d: %d cached objects, want %d", c, got, want)
				}
			}
			got := samples(t, s, nameIs(model.LevelPod, model.CPUUsageRate))
			if len(got) != 4 {
				t.Fatalf("%d series, want 4: %v", len(got), got)
			}
			for k, w := range want {
				g := got[k]
				// p2's staleness marker at cycle 2 sits between its values.
				var vals [][2]float64
				for _, x := range g {
					if !value.IsStaleNaN(x[1]) {
						vals = append(vals, x)
					}
				}
				if fmt.Sprint(vals) != fmt.Sprint(w) {
					t.Errorf("%s = %v, want %v", k, g, w)
				}
			}
		})
	}
}
