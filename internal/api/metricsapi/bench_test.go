package metricsapi

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/store"
)

// BenchmarkReaderPods reads every pod's metrics (kubectl top pods -A) from
// a store holding 5,000 pods × 2 containers on 100 nodes, sampled every
// 15 s for the lookback the reader reads (2 × MaxAge).
func BenchmarkReaderPods(b *testing.B) {
	const nodes, podsPerNode, ctrs, interval = 100, 50, 2, 15 * time.Second
	st, err := store.Open(store.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	src := NewReader(st.Queryable())
	src.Now = func() time.Time { return now }
	steps := int(2 * src.MaxAge / interval)
	for i := steps; i >= 0; i-- {
		ts := now.Add(-time.Duration(i) * interval).UnixMilli()
		var batch model.Batch
		for n := range nodes {
			for p := range podsPerNode {
				for c := range ctrs {
					e := model.Entry{Object: model.Object{Level: model.LevelContainer, Node: fmt.Sprint("node-", n),
						Namespace: fmt.Sprint("ns-", p%10), Pod: fmt.Sprint("pod-", n, "-", p), Container: fmt.Sprint("c", c)},
						Time: ts, Values: model.NewValues()}
					e.Values[model.CPUUsage] = float64(steps-i) * 0.25
					e.Values[model.MemoryWorkingSet] = 64 << 20
					batch.Entries = append(batch.Entries, e)
				}
			}
		}
		if _, err := st.Append(context.Background(), &batch); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	for b.Loop() {
		pods, err := src.Pods(ctx, "", "")
		if err != nil || len(pods) != nodes*podsPerNode {
			b.Fatalf("%d pods, %v", len(pods), err)
		}
	}
}
