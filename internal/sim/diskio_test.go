package sim

import (
	"bytes"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/kubemon/kubemon/internal/scrape"
)

// ioSeries is one cgroup's disk IO as scraped from /metrics/cadvisor.
type ioSeries struct {
	read, write float64
	id          string
}

// scrapeIO fetches /metrics/cadvisor from n, checks the shape of the disk IO
// families (names, help, type, labels, timestamps, fs vs blkio agreement)
// and returns the series keyed by (namespace, pod, container); the pod
// cgroup has container "" and the root cgroup an all-empty key.
func scrapeIO(t *testing.T, n NodeInfo, wantT time.Time, nPods, nCtrs int) map[ctrKey]ioSeries {
	t.Helper()
	fams := parseProm(t, mustGet(t, nodeURL(n, "/metrics/cadvisor")))
	return ioFromFamilies(t, fams, wantT, nPods, nCtrs)
}

func ioFromFamilies(t *testing.T, fams map[string]*dto.MetricFamily, wantT time.Time, nPods, nCtrs int) map[ctrKey]ioSeries {
	t.Helper()
	wantTS := wantT.Truncate(time.Second).UnixMilli()
	fsLabels := []string{"container", "device", "id", "image", "name", "namespace", "pod"}
	blkLabels := []string{"container", "device", "id", "image", "major", "minor", "name", "namespace", "operation", "pod"}
	wantSeries := 1 + nPods + nCtrs

	type val struct {
		v  float64
		id string
	}
	collect := func(name, help string, labels []string, op string) map[ctrKey]val {
		f := fams[name]
		if f == nil {
			t.Fatalf("/metrics/cadvisor lacks %s", name)
		}
		if f.GetType() != dto.MetricType_COUNTER || f.GetHelp() != help {
			t.Fatalf("%s: type %v help %q, want COUNTER %q", name, f.GetType(), f.GetHelp(), help)
		}
		out := map[ctrKey]val{}
		for _, m := range f.Metric {
			l := labelMap(m.Label)
			if (op != "" && l["operation"] != op) || !kubemonCgroup(l) {
				continue
			}
			names := make([]string, 0, len(l))
			for k := range l {
				names = append(names, k)
			}
			sort.Strings(names)
			if !slices.Equal(names, labels) {
				t.Fatalf("%s labels %v, want %v", name, names, labels)
			}
			if l["device"] != "/dev/vda" || (op != "" && (l["major"] != "254" || l["minor"] != "0")) {
				t.Errorf("%s device labels %v", name, l)
			}
			if m.GetTimestampMs() != wantTS {
				t.Errorf("%s %v timestamp %d, want %d", name, l, m.GetTimestampMs(), wantTS)
			}
			k := ctrKey{l["namespace"], l["pod"], l["container"]}
			switch {
			case k == ctrKey{}:
				if l["id"] != "/" || l["image"] != "" || l["name"] != "" {
					t.Errorf("%s root series %v", name, l)
				}
			case k.ctr == "":
				if k.pod == "" || k.ns == "" || l["image"] != "" || l["name"] != "" {
					t.Errorf("%s pod series %v", name, l)
				}
			default:
				if l["image"] == "" || len(l["name"]) != 64 || !strings.HasPrefix(l["id"], "/kubepods/") ||
					!strings.HasSuffix(l["id"], "/"+l["name"]) {
					t.Errorf("%s container series %v", name, l)
				}
			}
			if _, dup := out[k]; dup {
				t.Fatalf("%s: duplicate series for %v", name, k)
			}
			out[k] = val{m.GetCounter().GetValue(), l["id"]}
		}
		if len(out) != wantSeries {
			t.Fatalf("%s operation %q: %d series, want %d (root + %d pods + %d containers)", name, op, len(out), wantSeries, nPods, nCtrs)
		}
		return out
	}
	reads := collect("container_fs_reads_bytes_total", "Cumulative count of bytes read", fsLabels, "")
	writes := collect("container_fs_writes_bytes_total", "Cumulative count of bytes written", fsLabels, "")
	blkR := collect("container_blkio_device_usage_total", "Blkio Device bytes usage", blkLabels, "Read")
	blkW := collect("container_blkio_device_usage_total", "Blkio Device bytes usage", blkLabels, "Write")
	if got := len(blkR) + len(blkW); got != 2*wantSeries {
		t.Fatalf("blkio: %d series, want %d", got, 2*wantSeries)
	}
	// The IO series use the same cgroup ids as the CPU series.
	cpuIDs := map[string]bool{}
	for _, m := range fams["container_cpu_usage_seconds_total"].Metric {
		cpuIDs[labelMap(m.Label)["id"]] = true
	}
	out := make(map[ctrKey]ioSeries, len(reads))
	for k, r := range reads {
		w, ok := writes[k]
		if !ok || w.id != r.id || blkR[k] != r || blkW[k] != w {
			t.Fatalf("%v: fs read %v write %v, blkio Read %v Write %v", k, r, w, blkR[k], blkW[k])
		}
		if !cpuIDs[r.id] {
			t.Errorf("%v: IO cgroup id %q has no CPU series", k, r.id)
		}
		if r.v != math.Trunc(r.v) || w.v != math.Trunc(w.v) || r.v < 0 || w.v < 0 {
			t.Errorf("%v: counters %v %v not whole non-negative bytes", k, r.v, w.v)
		}
		out[k] = ioSeries{read: r.v, write: w.v, id: r.id}
	}
	return out
}

// TestDiskIOConstantRates: in constant mode the rates from two scrapes 10 s
// apart equal the truth exactly for every container, pod rate = Σ container
// rates and node rate = Σ pod rates.
func TestDiskIOConstantRates(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts Options
	}{
		{"3x10x2", Options{Nodes: 3, PodsPerNode: 10, ContainersPerPod: 2, Mode: ModeConstant}},
		{"2x30x3 seed 42", Options{Nodes: 2, PodsPerNode: 30, ContainersPerPod: 3, Mode: ModeConstant, Seed: 42}},
		{"1x1x1", Options{Nodes: 1, PodsPerNode: 1, ContainersPerPod: 1, Mode: ModeConstant}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, clk := startCluster(t, tt.opts)
			P, C := tt.opts.PodsPerNode, tt.opts.ContainersPerPod
			nodes := c.Nodes()
			t0 := clk.Now()
			before := make([]map[ctrKey]ioSeries, len(nodes))
			for i, n := range nodes {
				before[i] = scrapeIO(t, n, t0, P, P*C)
			}
			clk.Advance(10 * time.Second)
			t1 := clk.Now()
			tr := c.Truth(t1)
			truth := truthMap(tr)
			checked, nonZero := 0, 0
			for i, n := range nodes {
				after := scrapeIO(t, n, t1, P, P*C)
				starts := ctrStarts(c, i, t1.Unix())
				rate := func(k ctrKey) (r, w float64) {
					a, b := after[k], before[i][k]
					return (a.read - b.read) / 10, (a.write - b.write) / 10
				}
				podR := map[ctrKey][2]float64{}
				for k := range after {
					if k.ctr == "" {
						continue
					}
					tc, ok := truth[k]
					if !ok || tc.Node != n.Name {
						t.Fatalf("container %v of %s missing from truth", k, n.Name)
					}
					r, w := rate(k)
					if r != tc.DiskReadBytesPerSecond || w != tc.DiskWriteBytesPerSecond {
						t.Errorf("%v: scraped read %v B/s write %v B/s, truth %v %v", k, r, w, tc.DiskReadBytesPerSecond, tc.DiskWriteBytesPerSecond)
					}
					if r != math.Trunc(r/1024)*1024 || r > 512*1024 || w != math.Trunc(w/1024)*1024 || w > 1024*1024 {
						t.Errorf("%v: constant rates %v %v B/s not whole KiB/s in [0,512] / [0,1024] KiB/s", k, r, w)
					}
					// No restarts in constant mode: the counter is rate × age.
					start, ok := starts[k]
					if !ok {
						t.Fatalf("%v: no start time", k)
					}
					if a, age := after[k], float64(t1.Unix()-start); a.read != r*age || a.write != w*age {
						t.Errorf("%v: counters %v %v, want %v %v B/s × %v s", k, a.read, a.write, r, w, age)
					}
					pk := ctrKey{k.ns, k.pod, ""}
					s := podR[pk]
					podR[pk] = [2]float64{s[0] + r, s[1] + w}
					checked++
					if r > 0 && w > 0 {
						nonZero++
					}
				}
				var nodeR, nodeW float64
				for pk, s := range podR {
					r, w := rate(pk)
					if r != s[0] || w != s[1] {
						t.Errorf("pod %v rate read %v write %v, Σ containers %v %v", pk, r, w, s[0], s[1])
					}
					nodeR += r
					nodeW += w
				}
				if r, w := rate(ctrKey{}); r != nodeR || w != nodeW {
					t.Errorf("node %s rate read %v write %v, Σ pods %v %v", n.Name, r, w, nodeR, nodeW)
				}
			}
			if checked != len(tr.Containers) {
				t.Errorf("checked %d containers, truth has %d", checked, len(tr.Containers))
			}
			if checked >= 10 && nonZero < checked/2 {
				t.Errorf("only %d of %d containers read and write", nonZero, checked)
			}
			t.Logf("%d containers: scraped IO rates equal truth exactly (%d with non-zero read and write)", checked, nonZero)
		})
	}
}

// ctrStarts returns the start times (Unix seconds) of node ni's containers at T.
func ctrStarts(c *Cluster, ni int, T int64) map[ctrKey]int64 {
	ev := c.evalNode(ni, T)
	m := map[ctrKey]int64{}
	for pi := range ev.pods {
		pe := &ev.pods[pi]
		for ci := range pe.ctrs {
			m[ctrKey{pe.wl.namespace, pe.name, pe.ctrs[ci].wc.name}] = pe.ctrs[ci].start
		}
	}
	return m
}

// TestDiskIORestart: a restart resets the container's IO counters but not
// its pod's (or the node's).
func TestDiskIORestart(t *testing.T) {
	for _, mode := range []Mode{ModeConstant, ModeRealistic} {
		t.Run(string(mode), func(t *testing.T) {
			const P, C = 6, 2
			c, clk := startCluster(t, Options{Nodes: 2, PodsPerNode: P, ContainersPerPod: C, Mode: mode, Seed: 3})
			n := c.Nodes()[1]
			tr0 := c.Truth(clk.Now())
			// A container of node 1 that reads and writes.
			var k ctrKey
			for _, tc := range tr0.Containers {
				if tc.Node == n.Name && tc.DiskReadBytesPerSecond > 0 && tc.DiskWriteBytesPerSecond > 0 {
					k = ctrKey{tc.Namespace, tc.Pod, tc.Container}
					break
				}
			}
			if k.ctr == "" {
				t.Fatal("no container with disk IO")
			}
			pk := ctrKey{k.ns, k.pod, ""}
			s0 := scrapeIO(t, n, clk.Now(), P, P*C)
			clk.Advance(20 * time.Second)
			if err := c.Restart(k.ns, k.pod, k.ctr); err != nil {
				t.Fatal(err)
			}
			clk.Advance(5 * time.Second)
			s1 := scrapeIO(t, n, clk.Now(), P, P*C)
			truth := truthMap(c.Truth(clk.Now()))

			b, a := s0[k], s1[k]
			if a.id == b.id {
				t.Errorf("cgroup id unchanged by restart: %s", a.id)
			}
			if !(a.read < b.read && a.write < b.write) {
				t.Errorf("container counters did not reset: read %v -> %v, write %v -> %v", b.read, a.read, b.write, a.write)
			}
			if mode == ModeConstant {
				tc := truth[k]
				if a.read != 5*tc.DiskReadBytesPerSecond || a.write != 5*tc.DiskWriteBytesPerSecond {
					t.Errorf("counters after restart %v %v, want 5 s × %v %v", a.read, a.write, tc.DiskReadBytesPerSecond, tc.DiskWriteBytesPerSecond)
				}
				// The pod and node counters go on at Σ rates over the 25 s.
				var sr, sw float64
				for kk, tc := range truth {
					if kk.ns == k.ns && kk.pod == k.pod {
						sr += tc.DiskReadBytesPerSecond
						sw += tc.DiskWriteBytesPerSecond
					}
				}
				if d := s1[pk].read - s0[pk].read; d != 25*sr {
					t.Errorf("pod read counter advanced %v, want 25 s × %v", d, sr)
				}
				if d := s1[pk].write - s0[pk].write; d != 25*sw {
					t.Errorf("pod write counter advanced %v, want 25 s × %v", d, sw)
				}
			}
			if !(s1[pk].read > s0[pk].read && s1[pk].write > s0[pk].write) {
				t.Errorf("pod counters did not go on: %+v -> %+v", s0[pk], s1[pk])
			}
			if !(s1[ctrKey{}].read > s0[ctrKey{}].read && s1[ctrKey{}].write > s0[ctrKey{}].write) {
				t.Errorf("node counters did not go on: %+v -> %+v", s0[ctrKey{}], s1[ctrKey{}])
			}
			// The sibling is untouched.
			for kk := range s1 {
				if kk.ns == k.ns && kk.pod == k.pod && kk.ctr != "" && kk.ctr != k.ctr {
					if s1[kk].id != s0[kk].id || s1[kk].write < s0[kk].write {
						t.Errorf("sibling %v changed: %+v -> %+v", kk, s0[kk], s1[kk])
					}
				}
			}
		})
	}
}

// TestDiskIORealistic: scraped mean rates match the truth at the midpoint,
// the node root includes system IO, and counters are monotonic over 8 h
// except across container restarts.
func TestDiskIORealistic(t *testing.T) {
	const P, C = 10, 2
	c, clk := startCluster(t, Options{Nodes: 1, PodsPerNode: P, ContainersPerPod: C, Seed: 9})
	n := c.Nodes()[0]
	s0 := scrapeIO(t, n, clk.Now(), P, P*C)
	clk.Advance(2 * time.Second)
	s1 := scrapeIO(t, n, clk.Now(), P, P*C)
	truth := truthMap(c.Truth(clk.Now().Add(-time.Second))) // midpoint
	var podsR, podsW float64
	varying := 0
	for k, a := range s1 {
		b, ok := s0[k]
		if k.ctr == "" || !ok || a.id != b.id {
			continue
		}
		tc := truth[k]
		r, w := (a.read-b.read)/2, (a.write-b.write)/2
		if math.Abs(r-tc.DiskReadBytesPerSecond) > 0.01*tc.DiskReadBytesPerSecond+1 ||
			math.Abs(w-tc.DiskWriteBytesPerSecond) > 0.01*tc.DiskWriteBytesPerSecond+1 {
			t.Errorf("%v mean rates %.1f %.1f B/s, truth at midpoint %.1f %.1f", k, r, w, tc.DiskReadBytesPerSecond, tc.DiskWriteBytesPerSecond)
		}
		if tc.DiskWriteBytesPerSecond != math.Trunc(tc.DiskWriteBytesPerSecond) {
			varying++
		}
		podsR += r
		podsW += w
	}
	if varying == 0 {
		t.Errorf("realistic write rates are all whole numbers (no sinusoid?)")
	}
	root0, root1 := s0[ctrKey{}], s1[ctrKey{}]
	if r, w := (root1.read-root0.read)/2, (root1.write-root0.write)/2; r <= podsR || w <= podsW {
		t.Errorf("node rates %v %v B/s, want > Σ pods %v %v (system IO)", r, w, podsR, podsW)
	}

	// 8 h walk on a cluster large enough to see spontaneous restarts.
	c, err := New(Options{Nodes: 3, PodsPerNode: 20, ContainersPerPod: 2, Seed: 5, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	type st struct {
		read, write uint64
		start       int64
	}
	ctrs := map[string]st{}
	pods := map[string]st{}
	roots := make([]st, len(c.nodes))
	restarts := 0
	T0 := testEpoch.Unix()
	for T := T0; T < T0+8*3600; T += 47 {
		for ni := range c.nodes {
			ev := c.evalNode(ni, T)
			if ev.ioRead < roots[ni].read || ev.ioWrite < roots[ni].write {
				t.Fatalf("T+%d node IO decreased", T-T0)
			}
			roots[ni] = st{ev.ioRead, ev.ioWrite, 0}
			var sr, sw uint64
			for pi := range ev.pods {
				pe := &ev.pods[pi]
				if p, ok := pods[pe.uid]; ok && (pe.ioRead < p.read || pe.ioWrite < p.write) {
					t.Fatalf("T+%d pod %s IO decreased", T-T0, pe.name)
				}
				pods[pe.uid] = st{pe.ioRead, pe.ioWrite, pe.start}
				sr, sw = sr+pe.ioRead, sw+pe.ioWrite
				for ci := range pe.ctrs {
					ce := &pe.ctrs[ci]
					key := pe.uid + "/" + ce.wc.name
					if p, ok := ctrs[key]; ok {
						if p.start != ce.start {
							restarts++
						} else if ce.ioRead < p.read || ce.ioWrite < p.write {
							t.Fatalf("T+%d container %s IO decreased without restart", T-T0, key)
						}
					}
					ctrs[key] = st{ce.ioRead, ce.ioWrite, ce.start}
					if ce.readRate < 0 || ce.writeRate < 0 {
						t.Fatalf("negative IO rate for %s", key)
					}
				}
			}
			if ev.ioRead < sr || ev.ioWrite < sw {
				t.Fatalf("T+%d node IO %d %d < Σ pods %d %d", T-T0, ev.ioRead, ev.ioWrite, sr, sw)
			}
		}
	}
	if restarts == 0 {
		t.Errorf("no container restarts crossed in 8 h")
	}
	t.Logf("8h: %d pods, %d container restarts crossed", len(pods), restarts)
}

// TestDiskIODecodedByScraper feeds the exposition to kubemon's own cAdvisor
// decoder, with and without the container_fs_* families (newer kubelets send
// only container_blkio_device_usage_total).
func TestDiskIODecodedByScraper(t *testing.T) {
	const P, C = 8, 3
	c, clk := startCluster(t, Options{Nodes: 1, PodsPerNode: P, ContainersPerPod: C, Seed: 7})
	n := c.Nodes()[0]
	body := mustGet(t, nodeURL(n, "/metrics/cadvisor"))
	want := ioFromFamilies(t, parseProm(t, body), clk.Now(), P, P*C)
	var blkOnly []byte
	for _, line := range bytes.SplitAfter(body, []byte("\n")) {
		if !bytes.Contains(line, []byte("container_fs_reads_bytes_total")) && !bytes.Contains(line, []byte("container_fs_writes_bytes_total")) {
			blkOnly = append(blkOnly, line...)
		}
	}
	for name, b := range map[string][]byte{"full": body, "blkio only": blkOnly} {
		got, err := scrape.DecodeCadvisorExtras(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for k, v := range got {
			if math.IsNaN(v.Read) {
				delete(got, k) // throttling or OOM events only
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: decoded %d cgroups with disk IO, want %d", name, len(got), len(want))
		}
		wantTS := clk.Now().Truncate(time.Second).UnixMilli()
		for k, v := range got {
			w, ok := want[ctrKey{k.Namespace, k.Pod, k.Container}]
			if !ok || v.Read != w.read || v.Write != w.write || v.Time != wantTS {
				t.Errorf("%s: %+v decoded %+v, want %+v @%d", name, k, v, w, wantTS)
			}
		}
	}
}
