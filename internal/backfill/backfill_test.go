package backfill

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/sim"
	"github.com/kubemon/kubemon/internal/store"
)

// end is the tests' history's end: not on the 2-hour grid, so the first
// and last blocks are partial.
var end = time.Date(2026, 11, 28, 13, 0, 0, 0, time.UTC)

// constantInterval is the constant-mode history's sample spacing: 15 s,
// or 5 min under the race detector (same range, same blocks).
var constantInterval = map[bool]time.Duration{false: 15 * time.Second, true: 5 * time.Minute}[raceEnabled]

var constantRun struct {
	once       sync.Once
	dir        string
	start, end time.Time
	err        error
}

// constantBackfill is 3 nodes × 3 pods × 2 containers, constant usage, 6 h
// at 15 s (1,440 intervals over four blocks; under the race detector at
// 5 min), written once for the tests that read it.
func constantBackfill(t *testing.T) (dir string, start, stop time.Time) {
	t.Helper()
	r := &constantRun
	r.once.Do(func() {
		r.dir, r.err = os.MkdirTemp("", "kubemon-backfill-test-")
		if r.err != nil {
			return
		}
		o := Options{Dir: filepath.Join(r.dir, "data"), Nodes: 3, PodsPerNode: 3, Mode: sim.ModeConstant,
			Interval: constantInterval, Duration: 6 * time.Hour, End: end}
		r.start, r.end = o.Range()
		r.err = Run(context.Background(), o)
	})
	if r.err != nil {
		t.Fatal(r.err)
	}
	return filepath.Join(r.dir, "data"), r.start, r.end
}

func TestMain(m *testing.M) {
	code := m.Run()
	if constantRun.dir != "" {
		os.RemoveAll(constantRun.dir)
	}
	os.Exit(code)
}

// TestBackfillConstant writes a constant-usage history and reads it back
// through internal/store, as `kubemon demo --data-dir` would: every series
// has one sample per interval, rates are the simulator's truth, counters
// run on across the block boundaries, the blocks lie on the 2-hour grid,
// and every series of the model's catalogue that the simulator's payloads
// feed is there.
func TestBackfillConstant(t *testing.T) {
	dir, start, stop := constantBackfill(t)
	d := openStore(t, dir, start.UnixMilli(), stop.UnixMilli())
	n := int(stop.Sub(start) / constantInterval)
	if want := int(6 * time.Hour / constantInterval); n != want {
		t.Fatalf("%d intervals, want %d", n, want)
	}
	checkCounts(d, n, constantInterval, func(*series) bool { return true }).report(t, "sample counts")
	for k, s := range d {
		if len(s.stale) > 0 {
			t.Errorf("%s: staleness markers at %v in constant mode (nothing vanishes)", k, s.stale)
		}
	}
	cl, err := sim.New(sim.Options{Nodes: 3, PodsPerNode: 3, Mode: sim.ModeConstant, Now: func() time.Time { return start }})
	if err != nil {
		t.Fatal(err)
	}
	checkTruth(d, cl.Truth(start)).report(t, "rates against the simulator's truth")
	checkCounters(d).report(t, "counters")
	checkBlocks(blockMetas(t, dir), start, stop).report(t, "blocks")

	checkCatalogue(t, d)
}

// checkCatalogue: every series is in the model's catalogue with its label
// keys, and every series of the catalogue is there but those the
// simulator's payloads cannot feed: the namespace info series (it needs the
// Kubernetes API's namespaces) and the system containers' network,
// filesystem and disk IO (kubelets report only CPU and memory for them).
// TestMatchesLive compares the series with a live run's, labels and all.
func checkCatalogue(t *testing.T, d data) {
	t.Helper()
	catalogue := map[string]model.Series{}
	for _, s := range model.AllSeries() {
		catalogue[s.Name] = s
	}
	names := d.names()
	for name := range names {
		if _, ok := catalogue[name]; !ok {
			t.Errorf("series %s is not in the model's catalogue", name)
		}
	}
	for _, s := range d {
		c := catalogue[s.labels.Get(labels.MetricName)]
		var keys []string
		s.labels.Range(func(l labels.Label) {
			if l.Name != labels.MetricName && !strings.HasPrefix(l.Name, model.LabelKubeLabelPrefix) {
				keys = append(keys, l.Name)
			}
		})
		if strings.Join(keys, ",") != strings.Join(c.Labels, ",") {
			t.Errorf("%s: label keys %v, the catalogue's %v", s.labels, keys, c.Labels)
		}
	}
	for name, s := range catalogue {
		unfed := s.Metric.ID == model.Info && s.Level == model.LevelNamespace ||
			s.Level == model.LevelSysContainer && (strings.Contains(name, "_network_") || strings.Contains(name, "_filesystem_") || strings.Contains(name, "_disk_io_")) ||
			s.Level == model.LevelKubemon // kubemon's own (sinks, store): app stores them, not the pipeline
		if !names[name] && !unfed {
			t.Errorf("series %s of the model's catalogue is missing", name)
		}
		if names[name] && unfed {
			t.Errorf("series %s is there: the test's list of series the simulator cannot feed is out of date", name)
		}
	}
}

// TestBackfillRealistic: with time-varying usage, pod churn and restarts,
// the nodes, system containers and cluster have a sample every interval,
// pods come and go (their series end with staleness markers, and new pods'
// begin), and counters reset only where a container restarted.
func TestBackfillRealistic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	iv := map[bool]time.Duration{false: time.Minute, true: 5 * time.Minute}[raceEnabled]
	o := Options{Dir: dir, Nodes: 3, PodsPerNode: 3, Interval: iv, Duration: 6 * time.Hour, End: end}
	start, stop := o.Range()
	if err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	d := openStore(t, dir, start.UnixMilli(), stop.UnixMilli())
	n := int(o.Duration / o.Interval)
	checkCounts(d, n, o.Interval, func(s *series) bool {
		l, _ := level(s.labels.Get(labels.MetricName))
		return l == model.LevelNode || l == model.LevelSysContainer || l == model.LevelCluster
	}).report(t, "node, system container and cluster sample counts")
	checkBlocks(blockMetas(t, dir), start, stop).report(t, "blocks")

	pods, ended, begun := map[string]bool{}, 0, 0
	restarts := 0.0
	for _, s := range d {
		name := s.labels.Get(labels.MetricName)
		if len(s.ts) == 0 {
			t.Errorf("%s: only staleness markers (at %v), no sample", s.labels, s.stale)
			continue
		}
		switch name {
		case model.PromName(model.LevelPod, model.CPUUsageRate):
			pods[s.labels.Get(model.LabelPod)] = true
			if len(s.stale) > 0 {
				ended++
			}
			if s.ts[0] > start.UnixMilli()+time.Minute.Milliseconds() {
				begun++
			}
		case model.PromName(model.LevelCluster, model.Restarts):
			restarts = s.vs[len(s.vs)-1] - s.vs[0]
		}
		for i, v := range s.vs {
			if math.IsNaN(v) {
				t.Errorf("%s at %s: NaN", s.labels, msTime(s.ts[i]))
				break
			}
		}
	}
	if len(pods) <= 9 || ended == 0 || begun == 0 {
		t.Errorf("pod churn: %d pods over 6 h in 9 slots, %d ended with a staleness marker, %d began inside the range; want pods to come and go", len(pods), ended, begun)
	}
	if restarts <= 0 {
		t.Logf("no container restarted in the range (cluster restart count rose by %v)", restarts)
	}
	// PromQL's rate over the stored counters agrees with the stored rates
	// over the whole range (a counter that jumped at a block boundary
	// would not).
	st, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got := instant(t, st, "sum(increase("+model.PromName(model.LevelNode, model.CPUUsage)+"[6h]))", stop.Add(-time.Millisecond))
	want := instant(t, st, "sum(sum_over_time("+model.PromName(model.LevelNode, model.CPUUsageRate)+"[6h])) * "+strconv.Itoa(int(iv.Seconds())), stop.Add(-time.Millisecond))
	if !(math.Abs(got-want) <= 0.03*want) {
		t.Errorf("the nodes' CPU over 6 h: %v core-seconds from the counters, %v from the rates", got, want)
	}
}

// instant evaluates a PromQL expression that yields one number.
func instant(t testing.TB, st *store.Store, expr string, at time.Time) float64 {
	t.Helper()
	eng := promql.NewEngine(promql.EngineOpts{MaxSamples: 50_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	q, err := eng.NewInstantQuery(context.Background(), st.Queryable(), nil, expr, at)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	res := q.Exec(context.Background())
	if res.Err != nil {
		t.Fatalf("%s: %v", expr, res.Err)
	}
	switch v := res.Value.(type) {
	case promql.Vector:
		if len(v) != 1 {
			t.Fatalf("%s: %d results, want 1: %v", expr, len(v), v)
		}
		return v[0].F
	case promql.Scalar:
		return v.V
	}
	t.Fatalf("%s: %T", expr, res.Value)
	return 0
}

// TestChecksCatchFaults: each check of the tests above fails on data that
// is wrong the way it guards against.
func TestChecksCatchFaults(t *testing.T) {
	dir, start, stop := constantBackfill(t)
	good := openStore(t, dir, start.UnixMilli(), stop.UnixMilli())
	cl, err := sim.New(sim.Options{Nodes: 3, PodsPerNode: 3, Mode: sim.ModeConstant, Now: func() time.Time { return start }})
	if err != nil {
		t.Fatal(err)
	}
	truth := cl.Truth(start)
	iv := constantInterval
	n := int(6 * time.Hour / iv)
	all := func(*series) bool { return true }
	pick := func(d data, name string) *series {
		for _, s := range d {
			if s.labels.Get(labels.MetricName) == name {
				return s
			}
		}
		t.Fatalf("no series %s", name)
		return nil
	}
	ctrCPU := model.PromName(model.LevelContainer, model.CPUUsageRate)
	ctrCounter := model.PromName(model.LevelContainer, model.CPUUsage)
	cases := []struct {
		name  string
		fault func(d data)
		check func(d data) problems
	}{
		{"a sample missing", func(d data) {
			s := pick(d, ctrCPU)
			s.ts, s.vs = append(s.ts[:10:10], s.ts[11:]...), append(s.vs[:10:10], s.vs[11:]...)
		}, func(d data) problems { return checkCounts(d, n, iv, all) }},
		{"a NaN", func(d data) { pick(d, ctrCPU).vs[7] = math.NaN() }, func(d data) problems { return checkCounts(d, n, iv, all) }},
		{"a NaN rate", func(d data) { pick(d, ctrCPU).vs[7] = math.NaN() }, func(d data) problems { return checkTruth(d, truth) }},
		{"a rate 2 % off", func(d data) { pick(d, ctrCPU).vs[9] *= 1.02 }, func(d data) problems { return checkTruth(d, truth) }},
		{"a rate series missing", func(d data) { delete(d, pick(d, ctrCPU).labels.String()) }, func(d data) problems { return checkTruth(d, truth) }},
		{"a series missing", func(d data) { delete(d, pick(d, ctrCounter).labels.String()) }, func(d data) problems { return checkSeriesSet(d, good, "faulty", "good") }},
		{"a label changed", func(d data) {
			s := pick(d, ctrCounter)
			delete(d, s.labels.String())
			s.labels = labels.NewBuilder(s.labels).Set(model.LabelNode, "elsewhere").Labels()
			d[s.labels.String()] = s
		}, func(d data) problems { return checkSeriesSet(d, good, "faulty", "good") }},
		{"a counter reset at a block boundary", func(d data) {
			s := pick(d, ctrCounter)
			for i := range s.vs {
				if s.ts[i] >= time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC).UnixMilli() {
					s.vs[i] -= s.vs[0]
				}
			}
		}, checkCounters},
		{"a counter jump", func(d data) { pick(d, ctrCounter).vs[50] += 3 }, checkCounters},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if p := c.check(good); len(p) > 0 {
				t.Fatalf("the check fails on good data: %v", p[:min(3, len(p))])
			}
			bad := good.clone()
			c.fault(bad)
			if p := c.check(bad); len(p) == 0 {
				t.Errorf("the check passes data with %s", c.name)
			}
		})
	}

	metas := blockMetas(t, dir)
	for name, fault := range map[string]func(m []struct{ min, max *int64 }){
		"a gap":              func(m []struct{ min, max *int64 }) { *m[1].min += 1000 },
		"off the grid":       func(m []struct{ min, max *int64 }) { *m[1].max -= 1000; *m[2].min -= 1000 },
		"a short last block": func(m []struct{ min, max *int64 }) { *m[len(m)-1].max -= 1000 },
	} {
		bad := append(metas[:0:0], metas...)
		ptrs := make([]struct{ min, max *int64 }, len(bad))
		for i := range bad {
			ptrs[i].min, ptrs[i].max = &bad[i].MinTime, &bad[i].MaxTime
		}
		fault(ptrs)
		if p := checkBlocks(bad, start, stop); len(p) == 0 {
			t.Errorf("checkBlocks passes blocks with %s", name)
		}
	}
}

// TestPlan: blocks are cut at the multiples of 2 h since the Unix epoch.
func TestPlan(t *testing.T) {
	at := func(h, m int) int64 { return time.Date(2026, 11, 28, h, m, 0, 0, time.UTC).UnixMilli() }
	for _, c := range []struct {
		name       string
		start, end int64
		want       []block
	}{
		{"aligned", at(0, 0), at(4, 0), []block{{at(0, 0), at(2, 0)}, {at(2, 0), at(4, 0)}}},
		{"partial ends", at(1, 30), at(4, 15), []block{{at(1, 30), at(2, 0)}, {at(2, 0), at(4, 0)}, {at(4, 0), at(4, 15)}}},
		{"inside one slot", at(2, 10), at(3, 50), []block{{at(2, 10), at(3, 50)}}},
		{"one interval", at(5, 59), at(6, 0), []block{{at(5, 59), at(6, 0)}}},
	} {
		got := plan(time.UnixMilli(c.start), time.UnixMilli(c.end))
		if len(got) != len(c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s: block %d is %v, want %v", c.name, i, got[i], c.want[i])
			}
		}
	}
}

// TestValidate: every bad option is reported, each with what it wants.
func TestValidate(t *testing.T) {
	now := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	ok := Options{Dir: "d", Now: func() time.Time { return now }}
	for _, c := range []struct {
		name string
		edit func(*Options)
		want string // "" for valid
	}{
		{"defaults", func(*Options) {}, ""},
		{"no directory", func(o *Options) { o.Dir = "" }, "data directory (--data-dir): must be set"},
		{"sub-second interval", func(o *Options) { o.Interval = 500 * time.Millisecond }, "interval 500ms: want 1s to 1h"},
		{"interval over an hour", func(o *Options) { o.Interval = 2 * time.Hour }, "interval 2h0m0s: want 1s to 1h"},
		{"negative duration", func(o *Options) { o.Duration = -time.Hour }, "duration -1h0m0s: must be positive"},
		{"less than an interval", func(o *Options) { o.Duration = 5 * time.Second }, "duration 5s: want at least one interval (10s)"},
		{"not whole intervals", func(o *Options) { o.Duration = 25 * time.Second }, "duration 25s: want a whole number of intervals (10s)"},
		{"future end", func(o *Options) { o.End = now.Add(time.Hour) }, "end 2026-11-29T01:00:00Z: in the future"},
		{"bad mode", func(o *Options) { o.Mode = "chaos" }, `sim mode "chaos": want "realistic" or "constant"`},
		{"too many nodes", func(o *Options) { o.Nodes = 100001 }, "sim: Nodes must be <= 100000"},
		{"too many pods", func(o *Options) { o.Nodes, o.PodsPerNode = 10000, 1000 }, "sim: Nodes*PodsPerNode must be <= 5000000"},
		{"negative nodes", func(o *Options) { o.Nodes = -1 }, "nodes -1: must be at least 1"},
		{"negative workers", func(o *Options) { o.Workers = -2 }, "workers -2: must be at least 1"},
		{"a 7-day week at 15 s", func(o *Options) { o.Duration, o.Interval = 7*24*time.Hour, 15*time.Second }, ""},
	} {
		o := ok
		c.edit(&o)
		err := o.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	// Several problems are reported together.
	o := ok
	o.Dir, o.Interval, o.Mode = "", time.Millisecond, "x"
	if err := o.Validate(); err == nil || strings.Count(err.Error(), "\n") < 2 {
		t.Errorf("three problems reported as %v", err)
	}
}

// TestDefaults: End defaults to now truncated to the interval (10 s, demo's).
func TestDefaults(t *testing.T) {
	now := time.Date(2026, 11, 29, 0, 0, 17, 300e6, time.UTC)
	start, stop := Options{Dir: "d", Now: func() time.Time { return now }}.Range()
	if want := time.Date(2026, 11, 29, 0, 0, 10, 0, time.UTC); !stop.Equal(want) || !start.Equal(want.Add(-DefaultDuration)) {
		t.Errorf("range [%s, %s), want [%s, %s)", start, stop, want.Add(-DefaultDuration), want)
	}
}

// TestRefusesConflicts: blocks overlapping the range and a live store's
// WAL are refused, with nothing written; a range beside earlier blocks is
// accepted and the two sets of blocks join.
func TestRefusesConflicts(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir, Nodes: 1, PodsPerNode: 1, Interval: time.Minute, Duration: time.Hour, End: end}
	if err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	before := blockMetas(t, dir)

	overlap := o
	overlap.End = end.Add(30 * time.Minute)
	err := Run(context.Background(), overlap)
	if err == nil || !strings.Contains(err.Error(), "already holds blocks in [2026-11-28T12:30:00Z, 2026-11-28T13:30:00Z): ") {
		t.Errorf("overlapping range: %v", err)
	}
	if got := blockMetas(t, dir); len(got) != len(before) {
		t.Errorf("%d blocks after a refused run, want %d", len(got), len(before))
	}

	earlier := o
	earlier.End = end.Add(-time.Hour)
	if err := Run(context.Background(), earlier); err != nil {
		t.Fatalf("range before the existing blocks: %v", err)
	}
	checkBlocks(blockMetas(t, dir), end.Add(-2*time.Hour), end).report(t, "two backfills' blocks")

	// A store kubemon ran on: its WAL holds data of unknown range.
	live := t.TempDir()
	st, err := store.Open(store.Options{Dir: live})
	if err != nil {
		t.Fatal(err)
	}
	e := model.Entry{Object: model.Object{Level: model.LevelCluster}, Time: time.Now().UnixMilli(), Values: model.NewValues()}
	e.Values[model.CPUUsageRate] = 1
	if _, err := st.Append(context.Background(), &model.Batch{Entries: []model.Entry{e}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	o.Dir = live
	if err := Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "holds a store that kubemon has run on") {
		t.Errorf("live store: %v", err)
	}

	// A file where the directory should be.
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	o.Dir = file
	if err := Run(context.Background(), o); err == nil {
		t.Error("a file as the data directory: no error")
	}
}

// TestCancel: a cancelled backfill returns the context's error and leaves
// nothing behind (a directory it created is removed).
func TestCancel(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new")
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	o := Options{Dir: dir, Nodes: 2, PodsPerNode: 2, Interval: 15 * time.Second, Duration: 4 * time.Hour, End: end,
		ProgressEvery: time.Millisecond, Logger: slog.New(onProgress{func() { once.Do(cancel) }})}
	err := Run(ctx, o)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, want context.Canceled", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the directory the cancelled run created is still there (%v)", err)
	}
}

// onProgress is a log handler that calls f at each progress line.
type onProgress struct{ f func() }

func (h onProgress) Enabled(context.Context, slog.Level) bool { return true }
func (h onProgress) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h onProgress) WithGroup(string) slog.Handler            { return h }
func (h onProgress) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "backfill progress" {
		h.f()
	}
	return nil
}
