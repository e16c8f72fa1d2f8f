package scrape

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/sim"
)

var podNetwork = []model.MetricID{model.NetworkRx, model.NetworkRxErrors, model.NetworkTx, model.NetworkTxErrors}

// TestDecodeCadvisorPodNetworkContainerd: on containerd (the 1.35 fixture)
// a pod's network series are on its sandbox's cgroup (container="", the
// pause image, an id below the pod cgroup), not on the pod cgroup. Every
// pod's network read from /metrics/cadvisor is what the Summary API of the
// same kubelet, at the same moment, reports for it: the sandbox's eth0.
// Its CPU and memory stay the pod cgroup's (which holds the pause
// container already), and the sandbox is no container of its own.
func TestDecodeCadvisorPodNetworkContainerd(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	cad, err := DecodeCadvisor(readFixture(t, "k8s-1.35_metrics_cadvisor.txt"), "n", now)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := DecodeSummary(readFixture(t, "k8s-1.35_stats_summary.json"), "n", now)
	if err != nil {
		t.Fatal(err)
	}
	pods := 0
	for _, s := range sum {
		if s.Object.Level != model.LevelPod {
			continue
		}
		c := find(cad, s.Object)
		if c == nil {
			// The summary lists pods whose cgroup cAdvisor no longer has.
			continue
		}
		pods++
		for _, m := range podNetwork {
			if g, w := c.Values[m], s.Values[m]; g != w {
				t.Errorf("%s/%s %s: cadvisor %v, summary %v", s.Object.Namespace, s.Object.Pod, model.Metrics[m].Name, g, w)
			}
		}
		// The pod cgroup's CPU and working set, not plus the sandbox's.
		if g, w := c.Values[model.MemoryWorkingSet], s.Values[model.MemoryWorkingSet]; g != w {
			t.Errorf("%s/%s working set: cadvisor %v, summary %v", s.Object.Namespace, s.Object.Pod, g, w)
		}
	}
	if pods != 17 {
		t.Errorf("%d pods in both, want 17", pods)
	}
	for _, e := range cad {
		if e.Object.Level == model.LevelContainer && e.Object.Container == "" {
			t.Errorf("a sandbox as a container: %+v", e.Object)
		}
	}
	// A hostNetwork-less pod: the sandbox's eth0 (545122), the only
	// interface with traffic among ten.
	ksm := find(cad, pod("n", "scraper", "e2e-kube-state-metrics-75b885dc9-97mtr"))
	if ksm == nil || ksm.Values[model.NetworkRx] != 545122 || ksm.Values[model.NetworkTx] != 44649 {
		t.Errorf("kube-state-metrics pod: %+v", ksm)
	}
}

// TestDecodeCadvisorPodNetworkOnce: wherever the kubelet puts a pod's
// network (its pod cgroup, its sandbox, docker's POD container, or both
// the pod cgroup and the sandbox), the pod has it once: the sandbox's
// when there is one (as the Summary API), eth0 when there is one (else the
// sum of the interfaces). A sandbox's other series (CPU, memory, disk IO,
// OOM events, start) are not the pod's: its cgroup already holds them.
func TestDecodeCadvisorPodNetworkOnce(t *testing.T) {
	const (
		podID = `/kubepods/burstable/pod45b528af-fb82-4e96-8103-b9da1194dd36`
		sbID  = podID + `/a5fbda005ab8218a44f2335225caeba6b8f8cea638e0ba70604923d30813fef1`
		sys   = `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod45b528af_fb82.slice`
	)
	line := func(fam, id, ctr, iface string, v float64) string {
		l := fam + `{container="` + ctr + `",id="` + id + `",image="",`
		if iface != "" {
			l += `interface="` + iface + `",`
		}
		return l + `name="",namespace="ns",pod="p"} ` + strconv.FormatFloat(v, 'g', -1, 64) + " 1700000000000\n"
	}
	net := func(id, ctr, iface string, base float64) string {
		return line("container_network_receive_bytes_total", id, ctr, iface, base) +
			line("container_network_receive_errors_total", id, ctr, iface, base/100) +
			line("container_network_transmit_bytes_total", id, ctr, iface, base/2) +
			line("container_network_transmit_errors_total", id, ctr, iface, base/1000)
	}
	podCPU := line("container_cpu_usage_seconds_total", podID, "", "", 10) + line("container_memory_working_set_bytes", podID, "", "", 1e6)
	sbOther := line("container_cpu_usage_seconds_total", sbID, "", "", 0.5) + line("container_memory_working_set_bytes", sbID, "", "", 2e5) +
		line("container_fs_writes_bytes_total", sbID, "", "", 4096) + line("container_oom_events_total", sbID, "", "", 1) +
		line("container_start_time_seconds", sbID, "", "", 1.6e9)
	for _, tt := range []struct {
		name, body string
		rx         float64 // NaN: none
	}{
		{"sandbox (containerd)", podCPU + sbOther + net(sbID, "", "eth0", 5000) + net(sbID, "", "tunl0", 0), 5000},
		{"pod cgroup", podCPU + net(podID, "", "eth0", 7000), 7000},
		{"pod cgroup and sandbox", podCPU + net(podID, "", "eth0", 7000) + net(sbID, "", "eth0", 5000) + sbOther, 5000},
		{"docker POD", podCPU + net(sbID, "POD", "eth0", 3000), 3000},
		{"systemd sandbox", line("container_cpu_usage_seconds_total", sys, "", "", 10) +
			line("container_memory_working_set_bytes", sys, "", "", 1e6) + net(sys+"/cri-containerd-a5fbda00.scope", "", "eth0", 4000), 4000},
		{"eth0 of several interfaces", podCPU + net(sbID, "", "net1", 900) + net(sbID, "", "eth0", 5000), 5000},
		{"no eth0: the sum", podCPU + net(sbID, "", "ens3", 900) + net(sbID, "", "ens4", 100), 1000},
		{"no network", podCPU + sbOther, math.NaN()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			entries, err := DecodeCadvisor([]byte(tt.body), "n", time.Unix(1700000000, 0))
			if err != nil {
				t.Fatal(err)
			}
			var p *model.Entry
			for i := range entries {
				switch entries[i].Object.Level {
				case model.LevelPod:
					if p != nil {
						t.Fatalf("two pods: %+v", entries)
					}
					p = &entries[i]
				case model.LevelContainer:
					t.Errorf("container %+v", entries[i].Object)
				}
			}
			if p == nil || p.Object != pod("n", "ns", "p") {
				t.Fatalf("pod %+v", p)
			}
			wantNet := []float64{tt.rx, tt.rx / 100, tt.rx / 2, tt.rx / 1000}
			for i, m := range podNetwork {
				if g := p.Values[m]; !(g == wantNet[i] || math.IsNaN(g) && math.IsNaN(wantNet[i])) {
					t.Errorf("%s = %v, want %v", model.Metrics[m].Name, g, wantNet[i])
				}
			}
			if p.Values[model.CPUUsage] != 10 || p.Values[model.MemoryWorkingSet] != 1e6 {
				t.Errorf("pod CPU %v, working set %v: the pod cgroup's (10, 1e6)", p.Values[model.CPUUsage], p.Values[model.MemoryWorkingSet])
			}
			if p.Values.Has(model.DiskIOWrite) || p.OOMEvents != 0 || p.Start != 0 {
				t.Errorf("the sandbox's disk IO %v, OOM events %v or start %d taken for the pod's", p.Values[model.DiskIOWrite], p.OOMEvents, p.Start)
			}
			x, err := DecodeCadvisorExtras([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if len(x) != 0 {
				t.Errorf("extras of a sandbox: %+v", x)
			}
		})
	}
}

// TestCadvisorLabelsScan: the allocation-free label scan reads what
// textparse's own label parsing reads, on every series of the fixtures and
// the simulator's payloads.
func TestCadvisorLabelsScan(t *testing.T) {
	bodies := map[string][]byte{"sim-kubelet": simCadvisor(t, sim.CadvisorKubelet), "sim-lean": simCadvisor(t, sim.CadvisorLean)}
	for _, f := range []string{"k8s-1.35_metrics_cadvisor.txt", "cadvisor_metrics_post_1_16.txt", "cadvisor_metrics_pre_1_16.txt"} {
		bodies[f] = readFixture(t, f)
	}
	bodies["escapes"] = []byte(`container_cpu_usage_seconds_total{ container = "c\"1\\" , id="/a\nb",namespace="n",pod="p",} 1` + "\n" +
		`container_memory_rss{"namespace"="n","pod"="p","container"="x",id="/"} 2` + "\n" + "container_oom_events_total 3\n")
	for name, body := range bodies {
		n := 0
		if err := eachSeries(body, func(series []byte, lset labels.Labels) {
			n++
			var l cadvisorLabels
			got, ok := l.scan(series)
			if !ok || string(got) != lset.Get(labels.MetricName) {
				t.Fatalf("%s: %q: name %q, %v", name, series, got, ok)
			}
			for _, c := range []struct {
				label string
				got   []byte
			}{{"namespace", l.namespace}, {"pod", l.pod}, {"container", l.container}, {"pod_name", l.podName},
				{"container_name", l.containerName}, {"id", l.id}, {"interface", l.iface}, {"device", l.device}, {"operation", l.operation}} {
				if string(c.got) != lset.Get(c.label) {
					t.Fatalf("%s: %q: %s %q, textparse %q", name, series, c.label, c.got, lset.Get(c.label))
				}
			}
		}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n == 0 {
			t.Errorf("%s: no series", name)
		}
	}
}

func eachSeries(body []byte, f func([]byte, labels.Labels)) error {
	p := textparse.NewPromParser(body, labels.NewSymbolTable(), false)
	var lset labels.Labels
	for {
		et, err := p.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if et == textparse.EntrySeries {
			series, _, _ := p.Series()
			p.Labels(&lset)
			f(series, lset)
		}
	}
}

// TestAppendCadvisorExtras: the line filter keeps exactly the sample lines
// of the families read (in place as into a new buffer), and decoding the
// filtered body gives what decoding the whole one gives.
func TestAppendCadvisorExtras(t *testing.T) {
	for _, body := range [][]byte{simCadvisor(t, sim.CadvisorKubelet), readFixture(t, "k8s-1.35_metrics_cadvisor.txt"),
		readFixture(t, "cadvisor_metrics_post_1_16.txt"), readFixture(t, "cadvisor_metrics_pre_1_16.txt")} {
		var want []byte
		for _, line := range bytes.SplitAfter(body, []byte("\n")) {
			for _, f := range ExtraFamilies {
				if bytes.HasPrefix(line, []byte(f+"{")) || bytes.HasPrefix(line, []byte(f+" ")) {
					want = append(want, line...)
					if !bytes.HasSuffix(line, []byte("\n")) {
						want = append(want, '\n')
					}
				}
			}
		}
		got := AppendCadvisorExtras(nil, body)
		if !bytes.Equal(got, want) || len(got) == 0 {
			t.Fatalf("filtered %d bytes, want %d", len(got), len(want))
		}
		inPlace := bytes.Clone(body)
		if got := AppendCadvisorExtras(inPlace[:0], inPlace); !bytes.Equal(got, want) {
			t.Fatalf("in place: %d bytes, want %d", len(got), len(want))
		}
		a, err := DecodeCadvisorExtras(body)
		if err != nil {
			t.Fatal(err)
		}
		b, err := DecodeCadvisorExtras(got)
		if err != nil {
			t.Fatal(err)
		}
		if len(a) == 0 || fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("extras of the whole body %v, of the filtered one %v", a, b)
		}
	}
}

// FuzzCadvisorLabels: whatever textparse accepts, the label scan reads as
// textparse does.
func FuzzCadvisorLabels(f *testing.F) {
	f.Add([]byte("container_fs_reads_bytes_total{container=\"c\",device=\"/dev/vda\",id=\"/kubepods/p/c\",namespace=\"n\",pod=\"p\"} 4096 1700000000000\n"))
	f.Add([]byte("container_memory_rss{ \"pod\" = \"p\\\\\\\"\\n\",container_name=\"POD\",} 1\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		_ = eachSeries(body, func(series []byte, lset labels.Labels) {
			var l cadvisorLabels
			name, ok := l.scan(series)
			if !ok {
				t.Fatalf("%q: not scanned", series)
			}
			// textparse keeps blanks before a name (the filter drops such lines).
			if want := strings.TrimLeft(lset.Get(labels.MetricName), " \t"); string(name) != want {
				t.Fatalf("%q: name %q, textparse %q", series, name, lset.Get(labels.MetricName))
			}
			for _, c := range []struct {
				label string
				got   []byte
			}{{"namespace", l.namespace}, {"pod", l.pod}, {"container", l.container}, {"id", l.id}, {"interface", l.iface}, {"operation", l.operation}} {
				if string(c.got) != lset.Get(c.label) {
					t.Fatalf("%q: %s %q, textparse %q", series, c.label, c.got, lset.Get(c.label))
				}
			}
		})
	})
}
