package enginebench

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// key identifies a series by its labels.
func key(get func(string) string) string {
	return fmt.Sprintf("%s{%s,%s,%s,%s}", get(labels.MetricName), get(LabelNamespace), get(LabelPod), get(LabelContainer), get(LabelNode))
}

func seriesKey(s Series) string {
	return fmt.Sprintf("%s{%s,%s,%s,%s}", s.Name, s.Namespace, s.Pod, s.Container, s.Node)
}

// close reports whether got is want within rel (relative; exact when rel
// is 0). Written so that a NaN on either side fails.
func closeTo(got, want, rel float64) bool {
	if rel == 0 {
		return got == want
	}
	return math.Abs(got-want) <= rel*math.Abs(want)
}

// checkEngine reads back every series of w from e and compares each
// sample with the workload's, then asks the benchmark's three questions
// and compares their answers with the ones computed from the workload.
func checkEngine(t *testing.T, e engine, w *Workload, cycles int, rel float64) {
	t.Helper()
	// Everything that must exist, before comparing.
	want := map[string]int{}
	for i := range w.Len() {
		want[seriesKey(w.Series(i))] = i
	}
	if len(want) != w.Len() || w.Len() == 0 {
		t.Fatalf("workload has %d distinct series of %d", len(want), w.Len())
	}
	seen := map[string]bool{}
	samples, mismatches := 0, 0
	for m := range Metrics {
		err := e.read(context.Background(), w.Start, w.Time(cycles-1), []eq{{labels.MetricName, Metrics[m].name}},
			func(get func(string) string, ts []int64, vs []float64) {
				k := key(get)
				i, ok := want[k]
				if !ok {
					t.Errorf("unexpected series %s", k)
					return
				}
				if seen[k] {
					t.Errorf("series %s read twice", k)
				}
				seen[k] = true
				if len(ts) != cycles || len(vs) != cycles {
					t.Errorf("%s: %d timestamps, %d values, want %d", k, len(ts), len(vs), cycles)
					return
				}
				for c := range cycles {
					samples++
					if ts[c] != w.Time(c) || !closeTo(vs[c], w.Value(i, c), rel) {
						if mismatches++; mismatches <= 5 {
							t.Errorf("%s cycle %d: got %d %v, want %d %v", k, c, ts[c], vs[c], w.Time(c), w.Value(i, c))
						}
					}
				}
			})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != len(want) || samples != w.Len()*cycles {
		t.Fatalf("read %d series and %d samples, want %d and %d", len(seen), samples, len(want), w.Len()*cycles)
	}
	if mismatches > 0 {
		t.Fatalf("%d samples differ", mismatches)
	}

	// The benchmark's questions, against the workload's answers.
	last := cycles - 1
	ts := w.Time(last)
	ns, pod, container := target(w)
	if n := queryPod(t, e, ns, pod, container, w.Start, ts); n != cycles {
		t.Errorf("pod query: %d samples, want %d", n, cycles)
	}
	byPod := map[string]float64{}
	wantSum := 0.0
	for _, c := range w.Containers("", "") {
		i := c*NumMetrics + CPUMetric
		v := w.Value(i, last)
		wantSum += v
		if s := w.Series(i); s.Namespace == ns {
			byPod[s.Pod] += v
		}
	}
	wantTop := topK(byPod, 10)
	gotTop, n := queryTop(t, e, ns, ts, 10)
	if n != len(w.Containers(ns, "")) || len(gotTop) != len(wantTop) || len(wantTop) == 0 {
		t.Fatalf("top query: %d series, %d pods; want %d series, %d pods", n, len(gotTop), len(w.Containers(ns, "")), len(wantTop))
	}
	for i := range wantTop {
		if gotTop[i].pod != wantTop[i].pod || !closeTo(gotTop[i].cores, wantTop[i].cores, max(rel, 1e-12)) {
			t.Errorf("top %d: got %v, want %v", i, gotTop[i], wantTop[i])
		}
	}
	gotSum, n := querySum(t, e, ts)
	if n != w.Len()/NumMetrics || !closeTo(gotSum, wantSum, max(rel, 1e-12)) || !(wantSum > 0) {
		t.Errorf("sum query: %v over %d series, want %v over %d", gotSum, n, wantSum, w.Len()/NumMetrics)
	}
}

// TestEnginesAgree writes the same small workload into both engines and
// checks that each returns every sample (the TSDB bit for bit; VM within
// 1e-12 relative: it stores floats as decimal mantissa and exponent, and
// a block shares one exponent), before and after persisting, so the
// benchmark's reads are reads of real data.
func TestEnginesAgree(t *testing.T) {
	const cycles = 12
	w := New(600, StartFor(time.Now(), cycles))
	for _, tc := range []struct {
		name string
		open opener
		rel  float64
	}{
		{"tsdb", openTSDB, 0},
		{"vm", openVM, 1e-12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := tc.open(t.TempDir(), w.Len())
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := e.close(); err != nil {
					t.Error(err)
				}
			}()
			ingest(t, e, w, make([]float64, w.Len()), 0, cycles)
			if err := e.flush(); err != nil {
				t.Fatal(err)
			}
			checkEngine(t, e, w, cycles, tc.rel)
			d, err := e.persist()
			if err != nil {
				t.Fatal(err)
			}
			if !(d.total > 0) || !(d.index > 0) || d.index >= d.total {
				t.Errorf("persisted %d bytes, %d of them index", d.total, d.index)
			}
			checkEngine(t, e, w, cycles, tc.rel)
		})
	}
}

// TestWorkload checks the generator's shape: realistic names, counters
// that never fall, rates that are their counters' slopes.
func TestWorkload(t *testing.T) {
	w := New(60*NumMetrics+1, time.Unix(1_800_000_000, 0))
	if w.Len() != 61*NumMetrics || w.Nodes() != 2 {
		t.Fatalf("%d series on %d nodes", w.Len(), w.Nodes())
	}
	if lo, hi := w.NodeRange(1); lo != 60*NumMetrics || hi != w.Len() {
		t.Fatalf("node 1: [%d, %d)", lo, hi)
	}
	s := w.Series(w.Len() - 1)
	if s.Node != "node-0002" || s.Name != "container_crash_loop_backoff" || len(s.Pod) < 17 {
		t.Errorf("last series %+v", s)
	}
	for i := range w.Len() {
		for c := range 10 {
			v, prev := w.Value(i, c), w.Value(i, c-1)
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				t.Fatalf("series %d cycle %d: %v", i, c, v)
			}
			switch Metrics[i%NumMetrics].kind {
			case kindSeconds, kindCount:
				if !(v >= prev) {
					t.Fatalf("counter %d fell at cycle %d: %v → %v", i, c, prev, v)
				}
			case kindRate:
				if r := (w.Value(i-1, c) - w.Value(i-1, c-1)) / 15; v != r {
					t.Fatalf("rate %d cycle %d: %v, want %v", i, c, v, r)
				}
			}
		}
	}
}
