// Package bench holds kubemon's benchmarks of whole stages on simulated
// payloads: decode, pipeline and store per node, and the cycle roll-up.
// Run: go test -run '^$' -bench . -benchmem ./bench/
package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/pipeline"
	"github.com/kubemon/kubemon/internal/podmeta"
	"github.com/kubemon/kubemon/internal/scrape"
	"github.com/kubemon/kubemon/internal/sim"
	"github.com/kubemon/kubemon/internal/store"
)

// payload is one scrape of one simulated node.
type payload struct {
	summary, pods []byte
	at            time.Time
}

// payloads scrapes the first node of a 30-pod × 2-container simulated
// cluster n times, 15 s of simulated time apart.
func payloads(b *testing.B, n int) []payload {
	b.Helper()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	cl, err := sim.New(sim.Options{Nodes: 1, PodsPerNode: 30, ContainersPerPod: 2, Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	if err := cl.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	node := cl.Nodes()[0]
	get := func(path string) []byte {
		resp, err := http.Get(fmt.Sprintf("http://%s:%d%s", node.Address, node.Port, path))
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			b.Fatal(err)
		}
		return body
	}
	out := make([]payload, n)
	for i := range out {
		out[i] = payload{get("/stats/summary"), get("/pods"), now}
		now = now.Add(15 * time.Second)
	}
	return out
}

// decode decodes a payload's summary; its pods come decoded, as from the
// client's cache in the steady state.
func decode(b *testing.B, p payload, pods []model.PodMeta) *model.NodeStats {
	entries, err := scrape.DecodeSummary(p.summary, "sim-node-0001", p.at)
	if err != nil {
		b.Fatal(err)
	}
	return &model.NodeStats{Node: "sim-node-0001", ScrapeTime: p.at, Entries: entries, Pods: pods}
}

func pods(b *testing.B, p payload) []model.PodMeta {
	pods, err := podmeta.DecodeList(p.pods)
	if err != nil {
		b.Fatal(err)
	}
	return pods
}

var meta = model.NodeMeta{CPUCapacity: 16, CPUAllocatable: 15.5, MemoryCapacity: 64 << 30, MemoryAllocatable: 60 << 30}

// BenchmarkNodeDecode: decoding one node's /stats/summary (30 pods × 2 containers).
func BenchmarkNodeDecode(b *testing.B) {
	ps := payloads(b, 1)
	b.SetBytes(int64(len(ps[0].summary)))
	b.ReportAllocs()
	for b.Loop() {
		decode(b, ps[0], nil)
	}
}

// BenchmarkNodePods: decoding one node's /pods (fetched again only when its
// pods or containers change).
func BenchmarkNodePods(b *testing.B) {
	ps := payloads(b, 1)
	b.SetBytes(int64(len(ps[0].pods)))
	b.ReportAllocs()
	for b.Loop() {
		pods(b, ps[0])
	}
}

// BenchmarkNodePipeline: summary decode plus the pipeline (enrichment,
// rates, container → pod → node roll-up) for one node of 30 pods × 2
// containers: the per-node CPU cost of a scrape before storing.
func BenchmarkNodePipeline(b *testing.B) {
	ps := payloads(b, 32)
	pm := pods(b, ps[0])
	r := pipeline.NewRater()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		pipeline.Node(r, decode(b, ps[i%len(ps)], pm), pm, meta)
		i++
	}
}

// BenchmarkNodeStore: appending one node's processed batch to the embedded
// store (about 1,900 samples).
func BenchmarkNodeStore(b *testing.B) {
	ps := payloads(b, 2)
	pm := pods(b, ps[0])
	r := pipeline.NewRater()
	pipeline.Node(r, decode(b, ps[0], pm), pm, meta)
	entries := pipeline.Node(r, decode(b, ps[1], pm), pm, meta)
	st, err := store.Open(store.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	samples := 0
	b.ReportAllocs()
	t := int64(0)
	for b.Loop() {
		t += 15_000
		for i := range entries {
			entries[i].Time = t
		}
		n, err := st.Append(context.Background(), &model.Batch{Entries: entries})
		if err != nil {
			b.Fatal(err)
		}
		samples = n
	}
	b.ReportMetric(float64(samples), "samples/op")
}

// BenchmarkCycleAggregate1000Nodes: the cycle's namespace, workload and
// cluster roll-ups over 1,000 nodes × 30 pods.
func BenchmarkCycleAggregate1000Nodes(b *testing.B) {
	ps := payloads(b, 2)
	pm := pods(b, ps[0])
	r := pipeline.NewRater()
	pipeline.Node(r, decode(b, ps[0], pm), pm, meta)
	one := pipeline.Node(r, decode(b, ps[1], pm), pm, meta)
	var parts []model.Entry
	for n := range 1000 {
		for _, e := range one {
			if e.Object.Level == model.LevelPod || e.Object.Level == model.LevelNode {
				e.Object.Node = fmt.Sprintf("node-%04d", n)
				parts = append(parts, e)
			}
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		pipeline.Aggregate(parts, 0)
	}
}
