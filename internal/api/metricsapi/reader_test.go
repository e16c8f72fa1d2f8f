package metricsapi

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/store"
)

// t0 is the time of the fixture's first sample; the second is 10 s later.
var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// fixture stores two cycles, 10 s apart, of node n1 and four containers:
//
//	node n1:     CPU 100 → 115 s (1.5 cores), working set 4 GiB
//	web/a/app:   CPU 10 → 15 s (500m), 64 MiB
//	web/a/side:  CPU 1 → 1.5 s (50m), 8 MiB
//	web/b/app:   CPU 50 → 55 s but no working set: incomplete
//	db/c/pg:     CPU 30 → 2 s: restarted between the samples, no rate
//
// and returns a Reader whose clock reads t0 + 1 min.
func fixture(t *testing.T) *Reader {
	t.Helper()
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	obj := func(l model.Level, ns, pod, ctr string) model.Object {
		return model.Object{Level: l, Node: "n1", Namespace: ns, Pod: pod, Container: ctr}
	}
	at := func(i int, o model.Object, cpu, mem float64) model.Entry {
		e := model.Entry{Object: o, Time: t0.Add(time.Duration(i) * 10 * time.Second).UnixMilli(), Values: model.NewValues()}
		e.Values[model.CPUUsage] = cpu
		if mem > 0 {
			e.Values[model.MemoryWorkingSet] = mem
		}
		return e
	}
	for i, b := range [][]model.Entry{
		{at(0, obj(model.LevelNode, "", "", ""), 100, 4<<30), at(0, obj(model.LevelContainer, "web", "a", "app"), 10, 64<<20),
			at(0, obj(model.LevelContainer, "web", "a", "side"), 1, 8<<20), at(0, obj(model.LevelContainer, "web", "b", "app"), 50, 0),
			at(0, obj(model.LevelContainer, "db", "c", "pg"), 30, 1<<30)},
		{at(1, obj(model.LevelNode, "", "", ""), 115, 4<<30), at(1, obj(model.LevelContainer, "web", "a", "app"), 15, 64<<20),
			at(1, obj(model.LevelContainer, "web", "a", "side"), 1.5, 8<<20), at(1, obj(model.LevelContainer, "web", "b", "app"), 55, 0),
			at(1, obj(model.LevelContainer, "db", "c", "pg"), 2, 1<<30)},
	} {
		if _, err := st.Append(context.Background(), &model.Batch{Entries: b}); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
	}
	s := NewReader(st.Queryable())
	s.Now = func() time.Time { return t0.Add(time.Minute) }
	return s
}

func TestReader(t *testing.T) {
	s := fixture(t)
	ctx := context.Background()
	nodes, err := s.Nodes(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 1 || nodes[0].Name != "n1" || nodes[0].Window.Duration != 10*time.Second || !nodes[0].Timestamp.Time.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("nodes %+v", nodes)
	}
	if cpu, mem := nodes[0].Usage[corev1.ResourceCPU], nodes[0].Usage[corev1.ResourceMemory]; cpu.MilliValue() != 1500 || mem.Value() != 4<<30 {
		t.Errorf("node usage cpu %s memory %s, want 1500m and 4Gi", cpu.String(), mem.String())
	}
	if nodes, err := s.Nodes(ctx, "n2"); err != nil || len(nodes) != 0 {
		t.Errorf("node n2: %+v, %v", nodes, err)
	}

	pods, err := s.Pods(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	// b has no working set, c's only container restarted: only a is complete.
	if len(pods) != 1 || pods[0].Namespace != "web" || pods[0].Name != "a" || len(pods[0].Containers) != 2 {
		t.Fatalf("pods %+v", pods)
	}
	app := pods[0].Containers[0]
	if cpu := app.Usage[corev1.ResourceCPU]; app.Name != "app" || cpu.MilliValue() != 500 {
		t.Errorf("container %s cpu %s, want app 500m", app.Name, cpu.String())
	}
	if side := pods[0].Containers[1].Usage[corev1.ResourceCPU]; side.MilliValue() != 50 {
		t.Errorf("side cpu %s, want 50m", side.String())
	}
	for _, c := range []struct{ ns, pod string }{{"db", ""}, {"web", "b"}, {"web", "zz"}} {
		if pods, err := s.Pods(ctx, c.ns, c.pod); err != nil || len(pods) != 0 {
			t.Errorf("namespace %q pod %q: %+v, %v", c.ns, c.pod, pods, err)
		}
	}
	if pods, err := s.Pods(ctx, "web", "a"); err != nil || len(pods) != 1 {
		t.Errorf("web/a: %+v, %v", pods, err)
	}
	// The newest sample may be up to MaxAge old, the one before it older.
	s.MaxAge = 55 * time.Second
	if nodes, err := s.Nodes(ctx, ""); err != nil || len(nodes) != 1 {
		t.Errorf("newest sample 50 s old, the other 60 s, MaxAge 55 s: %+v, %v", nodes, err)
	}
	s.MaxAge = 45 * time.Second
	if nodes, err := s.Nodes(ctx, ""); err != nil || len(nodes) != 0 {
		t.Errorf("newest sample 50 s old, MaxAge 45 s: %+v, %v", nodes, err)
	}
}

// smp is one sample of a container's CPU counter, sec seconds after t0 (a
// working set of 64 MiB goes with it); gone ends the container's series
// there with staleness markers instead.
type smp struct {
	sec  int
	cpu  float64
	gone bool
}

// TestReaderPodCompleteness checks metrics-server's rule: a pod is reported
// only when every container it has now (a fresh newest sample, its series
// not ended) has a CPU rate and a working set; otherwise the whole pod is
// left out, never reported with some of its containers. Container "app"
// always has a rate; "x" varies. The clock reads t0 + 1 min, MaxAge is
// 2 min.
func TestReaderPodCompleteness(t *testing.T) {
	good := []smp{{0, 10, false}, {10, 15, false}} // 500m
	for _, c := range []struct {
		name  string
		x     []smp
		noMem bool     // x has no working set
		noCPU bool     // x has no CPU counter
		want  []string // the containers reported; nil: the pod is left out
	}{
		{name: "both have rates", x: []smp{{0, 1, false}, {10, 2, false}}, want: []string{"app", "x"}},
		{name: "one sample only", x: []smp{{10, 1, false}}},
		{name: "one sample only, older than the sibling's", x: []smp{{5, 1, false}}},
		{name: "restarted between the two newest samples", x: []smp{{0, 30, false}, {10, 2, false}}},
		{name: "restarted, reset straddles the two newest of three", x: []smp{{0, 20, false}, {5, 30, false}, {10, 1, false}}},
		{name: "restarted earlier, two samples since", x: []smp{{0, 30, false}, {5, 1, false}, {10, 2, false}}, want: []string{"app", "x"}},
		{name: "no working set", x: []smp{{0, 1, false}, {10, 2, false}}, noMem: true},
		{name: "working set but no CPU counter", x: []smp{{0, 0, false}, {10, 0, false}}, noCPU: true},
		{name: "working set but no CPU counter, older than MaxAge", x: []smp{{-130, 0, false}}, noCPU: true, want: []string{"app"}},
		{name: "working set but no CPU counter, ended", x: []smp{{0, 0, false}, {10, 0, true}}, noCPU: true, want: []string{"app"}},
		{name: "removed (series ended)", x: []smp{{0, 1, false}, {5, 2, false}, {10, 0, true}}, want: []string{"app"}},
		{name: "removed, then back with one sample", x: []smp{{0, 1, false}, {5, 0, true}, {10, 1, false}}},
		{name: "removed, then back with two samples", x: []smp{{0, 1, false}, {2, 0, true}, {5, 1, false}, {10, 2, false}}, want: []string{"app", "x"}},
		{name: "newest sample older than MaxAge (gone without a marker)", x: []smp{{-130, 1, false}, {-125, 2, false}}, want: []string{"app"}},
		{name: "only sample older than MaxAge", x: []smp{{-130, 1, false}}, want: []string{"app"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, err := store.Open(store.Options{Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			put := func(ctr string, ss []smp, cpu, mem bool) {
				for _, s := range ss {
					e := model.Entry{Object: model.Object{Level: model.LevelContainer, Node: "n1", Namespace: "ns", Pod: "p", Container: ctr},
						Time: t0.Add(time.Duration(s.sec) * time.Second).UnixMilli(), Values: model.NewValues(), Gone: s.gone}
					if cpu {
						e.Values[model.CPUUsage] = s.cpu
					}
					if mem {
						e.Values[model.MemoryWorkingSet] = 64 << 20
					}
					if _, err := st.Append(context.Background(), &model.Batch{Entries: []model.Entry{e}}); err != nil {
						t.Fatal(err)
					}
				}
			}
			put("app", good, true, true)
			put("x", c.x, !c.noCPU, !c.noMem)
			s := NewReader(st.Queryable())
			s.Now = func() time.Time { return t0.Add(time.Minute) }
			for _, sel := range []struct{ ns, pod string }{{"", ""}, {"ns", ""}, {"ns", "p"}} {
				pods, err := s.Pods(context.Background(), sel.ns, sel.pod)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				if len(pods) > 1 {
					t.Fatalf("selection %v: %d pods: %+v", sel, len(pods), pods)
				}
				if len(pods) == 1 {
					for _, ctr := range pods[0].Containers {
						got = append(got, ctr.Name)
					}
				}
				if !slices.Equal(got, c.want) {
					t.Errorf("selection %v: containers %q, want %q", sel, got, c.want)
				}
			}
		})
	}
}

// TestReaderNodeWithoutRate checks that a node whose counter has one
// sample, or whose two newest straddle a reset, is not reported.
func TestReaderNodeWithoutRate(t *testing.T) {
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, n := range []struct {
		name string
		cpu  []float64
	}{{"one", []float64{5}}, {"reset", []float64{100, 3}}, {"ok", []float64{100, 110}}} {
		for i, v := range n.cpu {
			e := model.Entry{Object: model.Object{Level: model.LevelNode, Node: n.name},
				Time: t0.Add(time.Duration(i) * 10 * time.Second).UnixMilli(), Values: model.NewValues()}
			e.Values[model.CPUUsage] = v
			e.Values[model.MemoryWorkingSet] = 1 << 30
			if _, err := st.Append(context.Background(), &model.Batch{Entries: []model.Entry{e}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	s := NewReader(st.Queryable())
	s.Now = func() time.Time { return t0.Add(time.Minute) }
	nodes, err := s.Nodes(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 1 || nodes[0].Name != "ok" {
		t.Errorf("nodes %+v, want only ok", nodes)
	}
}
