package metricsapi

import (
	"context"
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
// and returns a Source whose clock reads t0 + 1 min.
func fixture(t *testing.T) *Source {
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
	s := NewSource(st.Queryable())
	s.Now = func() time.Time { return t0.Add(time.Minute) }
	return s
}

func TestSource(t *testing.T) {
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
