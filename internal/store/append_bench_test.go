package store

import (
	"context"
	"strconv"
	"testing"

	"github.com/kubemon/kubemon/internal/model"
)

// nodeBatches builds one cycle of per-node batches as the pipeline emits
// them: each node's entry, then its pods' and their containers', each with
// a CPU counter, a CPU rate and a working set. The names are new strings
// each cycle, as a scrape decodes them; the node's and namespaces' are the
// same strings every cycle, as the targets and the pods' metadata hold them.
func nodeBatches(nodes, pods int, t int64, nodeNames, namespaces []string) []*model.Batch {
	out := make([]*model.Batch, nodes)
	for n := range nodes {
		es := make([]model.Entry, 0, 1+pods*3)
		add := func(o model.Object) {
			e := model.Entry{Object: o, Time: t, Values: model.NewValues()}
			e.Values[model.CPUUsage] = float64(t) / 1e3
			e.Values[model.CPUUsageRate] = 0.25
			e.Values[model.MemoryWorkingSet] = float64(n<<20 + len(es))
			es = append(es, e)
		}
		node := nodeNames[n]
		add(model.Object{Level: model.LevelNode, Node: node})
		for p := range pods {
			ns := namespaces[p%len(namespaces)]
			pod := "web-7d9f8b6c5-" + strconv.Itoa(n) + "x" + strconv.Itoa(p)
			add(model.Object{Level: model.LevelPod, Node: node, Namespace: ns, Pod: pod})
			for _, c := range []string{"app", "istio-proxy"} {
				add(model.Object{Level: model.LevelContainer, Node: node, Namespace: ns, Pod: pod, Container: string(append([]byte(nil), c...))})
			}
		}
		out[n] = &model.Batch{Entries: es}
	}
	return out
}

// BenchmarkAppend appends one cycle of 200 nodes × 30 pods × 2 containers
// (18,200 objects, 54,600 samples) per op: the cost per object of finding
// its cached references and per sample of the TSDB's append.
func BenchmarkAppend(b *testing.B) {
	const nodes, pods = 200, 30
	s, err := Open(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	nodeNames := make([]string, nodes)
	for i := range nodeNames {
		nodeNames[i] = "node-" + strconv.Itoa(i)
	}
	namespaces := []string{"default", "kube-system", "team-a", "team-b"}
	// Cycles built ahead, new strings each, so that only Append is timed.
	const ahead = 16
	cycles := make([][]*model.Batch, ahead)
	t := int64(1_700_000_000_000)
	ctx := context.Background()
	for _, bt := range nodeBatches(nodes, pods, t, nodeNames, namespaces) {
		if _, err := s.Append(ctx, bt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%ahead == 0 {
			b.StopTimer()
			for k := range cycles {
				cycles[k] = nodeBatches(nodes, pods, t+int64(i+k+1)*15000, nodeNames, namespaces)
			}
			b.StartTimer()
		}
		for _, bt := range cycles[i%ahead] {
			if _, err := s.Append(ctx, bt); err != nil {
				b.Fatal(err)
			}
		}
		i++
	}
}
