package e2e

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/testutil/thanos"
)

// TestQueryURLThanos: kubemon A remote-writes to a real Thanos (three
// receivers, replication factor 3, and a querier deduplicating on their
// replica label); kubemon B, with --query-url at the querier, answers for
// A's cluster: its PromQL API (so its UI), its model API. B simulates a
// cluster of another size, so an answer from its own store would show. A
// receiver is SIGKILLed for 30 s while A writes: the querier still returns
// every sample A stored, each once.
func TestQueryURLThanos(t *testing.T) {
	t.Parallel()
	needSinkBinaries(t, false, false)
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	const (
		interval      = 5 * time.Second
		scrapeTimeout = 2 * time.Second
		nodesA        = 3
		nodesB        = 5
		rwSink        = "remotewrite"
		outage        = 30 * time.Second
	)
	th := thanos.Start(t, thanos.Options{Binary: buildPeer(t, repo, "thanos"), Receivers: 3, ReplicationFactor: 3})
	settle := sinkSettle(interval, scrapeTimeout)
	began := time.Now().UnixMilli()
	a := startDemo(t, "--sim-mode", "constant", "--nodes", fmt.Sprint(nodesA), "--pods-per-node", "4",
		"--interval", interval.String(), "--scrape-timeout", scrapeTimeout.String(), "--data-dir", t.TempDir(),
		"--sink", "remotewrite:"+th.Receivers[0].WriteURL())
	b := startDemo(t, "--sim-mode", "constant", "--nodes", fmt.Sprint(nodesB), "--pods-per-node", "2",
		"--interval", interval.String(), "--data-dir", t.TempDir(), "--query-url", th.Querier.URL())
	// The sink starts settle behind the present, before A's first sample.
	from := max(sinkStart(t, a, rwSink), began)

	// A delivers; then a receiver dies for a while and comes back.
	waitFor(t, settle+time.Minute, "the sink delivering", func() bool { return positionMs(t, a, rwSink) > from+int64(2*interval/time.Millisecond) })
	victim := th.Receivers[1]
	t.Logf("SIGKILL receiver-1 (pid %d) for %v", victim.PID(), outage)
	victim.Kill()
	killed := time.Now().UnixMilli()
	time.Sleep(outage)
	victim.Restart()
	back := time.Now().UnixMilli()
	// The sink reads settle behind the present: wait until it delivered
	// past the receiver's return.
	waitFor(t, settle+2*time.Minute, "the sink delivering past the receiver's return", func() bool {
		return positionMs(t, a, rwSink) > back+interval.Milliseconds()
	})
	to := positionMs(t, a, rwSink)
	if !(from < killed && to > back) {
		t.Fatalf("delivered %s … %s, the receiver was down %s … %s", stamp(from), stamp(to), stamp(killed), stamp(back))
	}

	// B's PromQL API answers from Thanos: A's nodes, not B's own.
	up := sel(model.LevelNode, model.KubeletUp)
	if got := b.scalar(t, "count("+up+")"); got != nodesA {
		t.Errorf("B: count(%s) = %v, want A's %d nodes (B simulates %d)", up, got, nodesA, nodesB)
	}
	// Every raw sample A stored in the window, through B, deduplicated:
	// the same series and samples, the receiver's outage included.
	for _, s := range []string{
		sel(model.LevelNode, model.CPUUsageRate),
		sel(model.LevelContainer, model.MemoryWorkingSet),
		sel(model.LevelPod, model.NetworkRxRate),
		sel(model.LevelCluster, model.CPUUsageRate),
	} {
		want := storeSamples(t, a, s, from, to)
		got := storeSamples(t, b, s, from, to)
		if n := sampleCount(want); n < len(want)*int((to-from)/interval.Milliseconds())*9/10 || len(want) == 0 {
			t.Fatalf("A's store: %d series, %d samples of %s in %s … %s: too few to compare", len(want), n, s, stamp(from), stamp(to))
		}
		if compareSeries(t, "B through Thanos: "+s, want, got) == 0 {
			t.Logf("%s: %d series, %d samples in %s … %s, equal through Thanos", s, len(got), sampleCount(got), stamp(from), stamp(to))
		}
	}

	// B's model API (Heapster's) answers for A's nodes too.
	var nodes []string
	b.getJSON(t, "/api/v1/model/nodes", &nodes)
	if len(nodes) != nodesA {
		t.Errorf("B: /api/v1/model/nodes lists %v, want A's %d nodes", nodes, nodesA)
	}
}
