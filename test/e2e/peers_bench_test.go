package e2e

import (
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPeersBenchmarkSmall runs the peer benchmark (hack/bench/peers.sh, see
// docs/performance.md) at a small size so that it keeps working: 50 nodes ×
// 10 pods, each peer measured for PEERS_BENCH_DURATION (default 90s) after a
// 30 s warm-up. Its last lines must be one per peer, each ratio a finite
// positive number (the metrics-server line's disk "-"), and the prometheus
// peer must have been measured with the real kube-state-metrics beside it.
// It needs root-free loopback only, the Kubernetes binaries of
// hack/cluster/build.sh, metrics-server and kube-state-metrics (built by
// peers.sh through hack/peers/build.sh, once per version: the first run
// takes minutes more) and Debian's prometheus; it waits on /tmp/bench.lock
// like every benchmark run. KUBEMON_PEERS_BENCH=0 skips it.
func TestPeersBenchmarkSmall(t *testing.T) {
	if os.Getenv("KUBEMON_PEERS_BENCH") == "0" {
		t.Skip("KUBEMON_PEERS_BENCH=0")
	}
	if testing.Short() {
		t.Skip("-short")
	}
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("no flock")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	duration := os.Getenv("PEERS_BENCH_DURATION")
	if duration == "" {
		duration = "90s"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(root, "hack/bench/peers.sh"), "50", "10")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "DURATION="+duration, "WARMUP=30s", "INTERVAL=15s")
	cmd.WaitDelay = time.Minute
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("hack/bench/peers.sh 50 10 took %s:\n%s", time.Since(start).Round(time.Second), out)
	if err != nil {
		t.Fatalf("hack/bench/peers.sh 50 10: %v", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) < 2 {
		t.Fatalf("want two result lines, got %q", lines)
	}
	if !promWithKSM.Match(out) {
		t.Errorf("no `== prometheus: … processes kube-state-metrics (PID), prometheus (PID)` line: the prometheus peer must be measured with kube-state-metrics")
	}
	checkPeerLine(t, lines[len(lines)-2], "metrics-server", false)
	checkPeerLine(t, lines[len(lines)-1], "prometheus", true)
}

var promWithKSM = regexp.MustCompile(`(?m)^== prometheus: .* processes kube-state-metrics \(\d+\), prometheus \(\d+\)$`)

var peerLine = regexp.MustCompile(`^kubemon/([a-z-]+) cpu=(\S+) rss=(\S+) disk=(\S+)$`)

// checkPeerLine holds line to `kubemon/PEER cpu=X rss=Y disk=Z`, every
// ratio a finite positive number, disk "-" unless withDisk.
func checkPeerLine(t *testing.T, line, peer string, withDisk bool) {
	t.Helper()
	m := peerLine.FindStringSubmatch(line)
	if len(m) < 5 || m[1] != peer {
		t.Fatalf("line %q: want kubemon/%s cpu=… rss=… disk=…", line, peer)
	}
	ratios := map[string]string{"cpu": m[2], "rss": m[3]}
	if withDisk {
		ratios["disk"] = m[4]
	} else if m[4] != "-" {
		t.Errorf("line %q: disk=%s, want -", line, m[4])
	}
	for k, s := range ratios {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
			t.Errorf("line %q: %s=%s is not a finite positive number", line, k, s)
		}
	}
}
