package e2e

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/model"
)

// TestClockSkew (issue 9): one kubelet whose clock runs 2 h ahead must not
// stop the other nodes' data. Its own data is stored too, at kubemon's
// receive time; kubemon_scrape_clock_skew_seconds shows the skew and the log
// names the node, once when the skew starts and once when it ends.
func TestClockSkew(t *testing.T) {
	const interval = 2 * time.Second
	p := startDemo(t, "--nodes", "50", "--pods-per-node", "2", "--sim-mode", "constant",
		"--interval", interval.String(), "--data-dir", t.TempDir())
	waitFor(t, 30*time.Second, "/readyz", func() bool { c, _ := p.get(t, "/readyz"); return c == 200 })

	// newest returns each node's newest stored sample time (Unix seconds)
	// as PromQL sees it now.
	newest := func() map[string]float64 {
		out := map[string]float64{}
		for _, s := range p.query(t, "timestamp("+name(model.LevelNode, model.MemoryWorkingSet)+")") {
			out[s.Metric[model.LabelNode]] = s.v(t)
		}
		return out
	}
	waitFor(t, 60*time.Second, "samples of all 50 nodes", func() bool { return len(newest()) == 50 })
	var nodes []string
	p.getJSON(t, "/api/v1/model/nodes/", &nodes)
	if len(nodes) != 50 {
		t.Fatalf("%d nodes listed, want 50", len(nodes))
	}
	skewed := nodes[17]
	gauge := fmt.Sprintf(`kubemon_scrape_clock_skew_seconds{node=%q}`, skewed)

	faultAt := float64(time.Now().UnixMilli()) / 1000
	p.post(t, "/sim/fault?node="+skewed+"&fault=clock-ahead")
	time.Sleep(2 * interval) // the skewed node has been scraped since

	// For several cycles every other node's newest sample keeps advancing.
	prev := newest()
	for round := 1; round <= 5; round++ {
		time.Sleep(2 * interval) // at least one scrape of every node in between
		cur := newest()
		others := 0
		stuck := []string{}
		for _, n := range nodes {
			if n == skewed {
				continue
			}
			ts, ok := cur[n]
			if !ok {
				stuck = append(stuck, n+" (no sample)")
				continue
			}
			others++
			if !(ts > prev[n]) || !(ts > faultAt) {
				stuck = append(stuck, fmt.Sprintf("%s (%.3f, before %.3f)", n, ts, prev[n]))
			}
		}
		if others != 49 {
			t.Errorf("round %d: %d of the other 49 nodes have a current sample", round, others)
		}
		if len(stuck) > 0 {
			t.Errorf("round %d: %d of 49 nodes stopped advancing after %s's clock went 2 h ahead: %s",
				round, len(stuck), skewed, strings.Join(stuck[:min(len(stuck), 5)], ", "))
		}
		prev = cur
	}

	// The skewed node's data is stored, at receive time: current now, and
	// nothing in the future.
	now := float64(time.Now().UnixMilli()) / 1000
	ts, ok := newest()[skewed]
	if !ok || !(ts > faultAt) || !(ts <= now+1) || !(ts > now-3*interval.Seconds()) {
		t.Errorf("skewed node %s: newest sample at %v (present %v), want between %.3f and now %.3f", skewed, ts, ok, faultAt, now)
	}
	if n := p.query(t, fmt.Sprintf(`count(timestamp(%s) > %f)`, sel(model.LevelContainer, model.MemoryWorkingSet, model.LabelNode, skewed), faultAt)); len(n) != 1 || n[0].v(t) != 4 {
		t.Errorf("skewed node %s: containers with samples since the fault: %v, want 4", skewed, n)
	}
	future := p.query(t, fmt.Sprintf(`timestamp(%s @ %.3f)`, sel(model.LevelNode, model.MemoryWorkingSet, model.LabelNode, skewed), now+7200+60))
	if len(future) != 0 {
		t.Errorf("skewed node %s has samples around 2 h ahead: %v", skewed, future)
	}

	// The gauge: about 7200 for the skewed node, within a minute of 0 for the others.
	if v := p.metric(t, gauge); !(math.Abs(v-7200) <= 60) {
		t.Errorf("%s = %v, want 7200 ± 60", gauge, v)
	}
	checkOthers := func() {
		t.Helper()
		_, b := p.get(t, "/metrics")
		seen := 0
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(line, "kubemon_scrape_clock_skew_seconds{") || strings.Contains(line, `"`+skewed+`"`) {
				continue
			}
			seen++
			f := strings.Fields(line)
			if v, err := strconv.ParseFloat(f[len(f)-1], 64); err != nil || !(math.Abs(v) < 60) {
				t.Errorf("%s: want |skew| < 60 s", line)
			}
		}
		if seen != 49 {
			t.Errorf("kubemon_scrape_clock_skew_seconds for %d other nodes, want 49", seen)
		}
	}
	checkOthers()

	// The log names the node and the skew, once (not at every scrape).
	skewLines := func(word string) []string {
		var out []string
		for _, line := range strings.Split(p.Logs(), "\n") {
			if strings.Contains(line, "node="+skewed) && strings.Contains(line, "clock") && strings.Contains(line, word) {
				out = append(out, line)
			}
		}
		return out
	}
	started := skewLines("skew=")
	if len(started) != 1 {
		t.Errorf("log lines naming %s and its skew: %d, want 1:\n%s", skewed, len(started), strings.Join(started, "\n"))
	}
	for _, line := range started {
		t.Logf("logged: %s", line)
		m := skewRE.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("no skew=<duration> in %q", line)
			continue
		}
		if d, err := time.ParseDuration(m[1]); err != nil || !(math.Abs(d.Seconds()-7200) <= 60) {
			t.Errorf("logged skew %s, want 2h ± 1m: %q", m[1], line)
		}
	}

	// Clearing the fault ends the skew: gauge back near 0, one more log line.
	p.post(t, "/sim/fault?node="+skewed+"&fault=none")
	waitFor(t, 20*time.Second, "the skew gauge back near 0", func() bool { return math.Abs(p.metric(t, gauge)) < 60 })
	waitFor(t, 10*time.Second, "a log line that the skew ended", func() bool { return len(skewLines("ended")) == 1 })
	t.Logf("logged: %s", skewLines("ended")[0])
	before := newest()[skewed]
	time.Sleep(2 * interval)
	if after := newest()[skewed]; !(after > before) {
		t.Errorf("skewed node %s after the fault cleared: newest sample %v, before %v", skewed, after, before)
	}
	checkOthers()
	if t.Failed() {
		t.Logf("kubemon's log (tail):\n%s", skewLogTail(p.Logs(), 40))
	}
}

var skewRE = regexp.MustCompile(`\bskew=(\S+)`)

// skewLogTail returns the last n lines of s.
func skewLogTail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
