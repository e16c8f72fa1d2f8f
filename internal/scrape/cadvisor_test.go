package scrape

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/model"
)

func TestDecodeCadvisorExtrasDiskIO(t *testing.T) {
	tests := []struct {
		file string
		n    int // cgroups kept
		want map[cgroupKey]DiskIO
	}{
		{
			// 1.35 sends both spellings; container_fs_* wins.
			file: "k8s-1.35_metrics_cadvisor.txt", n: 1 + 9 + 9, // root, pod cgroups, containers
			want: map[cgroupKey]DiskIO{
				{}: {Read: 479232, Write: 2687844352, Time: 1782468875486},
				{"scraper", "e2e-scraper-5f97dc94d8-vkcjl", ""}:            {Read: 0, Write: 13139968, Time: 1782468872078},
				{"scraper", "e2e-scraper-5f97dc94d8-vkcjl", "e2e-scraper"}: {Read: 0, Write: 13139968, Time: 1782468877033},
			},
		},
		{
			// No trailing newline; devices "" and /dev/sda are summed.
			file: "cadvisor_metrics_post_1_16.txt", n: 0,
			want: map[cgroupKey]DiskIO{
				{}: {Read: 0, Write: 47460352, Time: 1572450197572},
				{"default", "agent-nsvs4", "datadog-agent"}: {Read: 4096, Write: 72196096, Time: 1572450197849},
			},
		},
		{
			// container_name/pod_name labels; several devices per container.
			file: "cadvisor_metrics_pre_1_16.txt", n: 0,
			want: map[cgroupKey]DiskIO{
				{}: {Read: 14954496 + 24711168, Write: 6649929728},
				{"kube-system", "kube-proxy-gke-haissam-default-pool-be5066f1-wnvn", "kube-proxy"}: {Read: 163840 + 73347072, Write: 0},
				{"kube-system", "fluentd-gcp-v2.0.10-9q9t4", "prometheus-to-sd-exporter"}:          {Read: 10641408, Write: 0},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := DecodeCadvisorExtras(readFixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			io := 0
			for _, x := range got {
				if !math.IsNaN(x.Read) {
					io++
				}
			}
			if tt.n > 0 && io != tt.n {
				t.Errorf("%d cgroups with disk IO, want %d", io, tt.n)
			}
			for k, w := range tt.want {
				if g, ok := got[k]; !ok || g.DiskIO != w {
					t.Errorf("%+v = %+v (%v), want %+v", k, g, ok, w)
				}
			}
			for k := range got {
				if k.Container == "POD" {
					t.Errorf("pause container kept: %+v", k)
				}
			}
		})
	}
	if _, err := DecodeCadvisorExtras([]byte("container_fs_reads_bytes_total{pod=\"x\" 1\n")); err == nil || !strings.Contains(err.Error(), "decode cadvisor") {
		t.Errorf("malformed exposition: err = %v", err)
	}
}

// FuzzDecodeCadvisorExtras: any exposition gives an error or non-negative,
// finite counters (or absent ones); never a panic.
func FuzzDecodeCadvisorExtras(f *testing.F) {
	f.Add([]byte("# TYPE container_fs_reads_bytes_total counter\ncontainer_fs_reads_bytes_total{container=\"c\",device=\"/dev/vda\",id=\"/kubepods/p/c\",namespace=\"n\",pod=\"p\"} 4096 1700000000000\n"))
	f.Add([]byte("container_blkio_device_usage_total{container=\"\",id=\"/\",operation=\"Write\",pod=\"\"} 2.6e+09\ncontainer_fs_writes_bytes_total{container_name=\"POD\",pod_name=\"p\",namespace=\"n\"} 1\n"))
	f.Add([]byte("container_cpu_cfs_periods_total{container=\"c\",namespace=\"n\",pod=\"p\"} 10 1700000000000\ncontainer_oom_events_total{container=\"c\",namespace=\"n\",pod=\"p\"} 2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeCadvisorExtras(data)
		if err != nil {
			return
		}
		for k, v := range got {
			for _, x := range []float64{v.Read, v.Write, v.CFSPeriods, v.CFSThrottledPeriods, v.CFSThrottledTime, v.OOMEvents} {
				if x < 0 || math.IsInf(x, 0) {
					t.Fatalf("%+v = %+v", k, v)
				}
			}
			if math.IsNaN(v.Read) != math.IsNaN(v.Write) {
				t.Fatalf("%+v: disk IO half there: %+v", k, v)
			}
		}
	})
}

func TestDecodeCadvisor(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	entries, err := DecodeCadvisor(readFixture(t, "k8s-1.35_metrics_cadvisor.txt"), "n", now)
	if err != nil {
		t.Fatal(err)
	}
	var count [model.NumLevels]int
	for _, e := range entries {
		count[e.Object.Level]++
	}
	if count[model.LevelNode] != 1 || count[model.LevelPod] != 18 || count[model.LevelContainer] != 17 {
		t.Errorf("levels %v, want 1 node, 18 pods, 17 containers (as the fixture's README counts)", count)
	}
	checks := []want{
		{node("n"), model.CPUUsage, 62.148052},
		{node("n"), model.MemoryWorkingSet, 9.17110784e+08},
		{node("n"), model.MemoryRSS, 7.10361088e+08},
		{node("n"), model.NetworkRx, 7.7292151e+08},           // eth0 only, not every interface
		{node("n"), model.FilesystemUsage, 1.06943070208e+11}, // the root block device, not every overlay
		{node("n"), model.DiskIORead, 479232},
		{pod("n", "kube-system", "etcd-datagen-1-35"), model.CPUUsage, 2.593769},
		{pod("n", "kube-system", "etcd-datagen-1-35"), model.MemoryWorkingSet, 4.4535808e+07}, // the pod cgroup, not + its sandbox
		{ctr("n", "kube-system", "etcd-datagen-1-35", "etcd"), model.CPUUsage, 2.628368},
		{ctr("n", "kube-system", "etcd-datagen-1-35", "etcd"), model.MemoryWorkingSet, 4.4290048e+07},
		{ctr("n", "kube-system", "etcd-datagen-1-35", "etcd"), model.DiskIOWrite, 12185600},
		{ctr("n", "kube-system", "etcd-datagen-1-35", "etcd"), model.NetworkRx, math.NaN()},
	}
	for _, w := range checks {
		e := find(entries, w.obj)
		if e == nil {
			t.Errorf("no %+v", w.obj)
			continue
		}
		if got := e.Values[w.m]; !(got == w.v || math.IsNaN(got) && math.IsNaN(w.v)) {
			t.Errorf("%s %+v = %v, want %v", model.PromName(w.obj.Level, w.m), w.obj, got, w.v)
		}
	}
	etcd := find(entries, ctr("n", "kube-system", "etcd-datagen-1-35", "etcd"))
	if etcd.Time != 1782468870634 || etcd.Start != 1782468730000 {
		t.Errorf("etcd time %d start %d", etcd.Time, etcd.Start)
	}

	// Before 1.16: container_name/pod_name, no timestamps, docker's POD
	// container carrying the pod's network.
	entries, err = DecodeCadvisor(readFixture(t, "cadvisor_metrics_pre_1_16.txt"), "n", now)
	if err != nil {
		t.Fatal(err)
	}
	p := find(entries, pod("n", "default", "demo-app-success-c485bc67b-klj45"))
	if p == nil || p.Values[model.NetworkRx] != 6.087066e+06 || p.Time != now.UnixMilli() {
		t.Errorf("pre-1.16 pod %+v", p)
	}
	for _, e := range entries {
		if e.Object.Container == "POD" {
			t.Errorf("pause container kept: %+v", e.Object)
		}
	}
}

// TestDecodeCadvisorThrottlingAndOOM reads the CFS counters and OOM events
// of real kubelets' /metrics/cadvisor: containers and pod cgroups with a
// CPU quota have the three CFS counters, stamped with their own sample
// time; the root cgroup's are not the node's; OOM events are a container's
// only.
func TestDecodeCadvisorThrottlingAndOOM(t *testing.T) {
	type cfs struct {
		periods, throttled, seconds float64
		time                        int64
	}
	for _, tt := range []struct {
		file  string
		quota int // cgroups (containers and pods) with CFS counters
		want  map[cgroupKey]cfs
	}{
		{"k8s-1.35_metrics_cadvisor.txt", 15, map[cgroupKey]cfs{
			{"scraper", "e2e-daemonset-kb65b", "compute-pi-digits"}: {423, 423, 33.887945, 1782468876833},
			{"scraper", "e2e-daemonset-kb65b", ""}:                  {401, 391, 5.334236, 1782468873981},
		}},
		{"cadvisor_metrics_post_1_16.txt", 4, map[cgroupKey]cfs{
			{"default", "agent-nsvs4", "datadog-agent"}: {115517, 26467, 3246.16371844, 1572450197849},
			{"default", "agent-nsvs4", ""}:              {115527, 26566, 3221.646731104, 1572450190276},
		}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			x, err := DecodeCadvisorExtras(readFixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for k, v := range x {
				if !math.IsNaN(v.CFSPeriods) && k != (cgroupKey{}) {
					n++
					if !(v.CFSThrottledPeriods <= v.CFSPeriods) || math.IsNaN(v.CFSThrottledTime) {
						t.Errorf("%+v: %+v", k, v)
					}
				}
			}
			if n != tt.quota {
				t.Errorf("%d cgroups with CFS counters, want %d", n, tt.quota)
			}
			for k, w := range tt.want {
				g, ok := x[k]
				if got := (cfs{g.CFSPeriods, g.CFSThrottledPeriods, g.CFSThrottledTime, g.Time}); !ok || got != w {
					t.Errorf("%+v: %+v (%v), want %+v", k, got, ok, w)
				}
			}

			// Merged into a Summary's entries: containers get them, pods and
			// the node not (the pod's throttling is the sum of its
			// containers'), each stamped with the cgroup's cAdvisor time.
			var entries []model.Entry
			for k := range tt.want {
				o := model.Object{Level: model.LevelContainer, Node: "n", Namespace: k.Namespace, Pod: k.Pod, Container: k.Container}
				if k.Container == "" {
					o.Level = model.LevelPod
				}
				entries = append(entries, model.Entry{Object: o, Time: 1, Values: model.NewValues()})
			}
			entries = append(entries, model.Entry{Object: model.Object{Level: model.LevelNode, Node: "n"}, Time: 1, Values: model.NewValues()})
			mergeExtras(entries, x)
			for _, e := range entries {
				k := cgroupKey{e.Object.Namespace, e.Object.Pod, e.Object.Container}
				if e.Object.Level != model.LevelContainer {
					if e.Values.Has(model.CFSPeriods) || e.Values.Has(model.OOMKills) || e.OOMEvents != 0 {
						t.Errorf("%+v: CFS %v, OOM %v", e.Object, e.Values[model.CFSPeriods], e.Values[model.OOMKills])
					}
					continue
				}
				w := tt.want[k]
				if e.Values[model.CFSPeriods] != w.periods || e.Values[model.CFSThrottledPeriods] != w.throttled ||
					e.Values[model.CFSThrottledTime] != w.seconds || e.TimeOf(model.CFSPeriods) != w.time || e.TimeOf(model.CPUUsage) != 1 {
					t.Errorf("%+v merged: %v %v %v at %d", e.Object, e.Values[model.CFSPeriods], e.Values[model.CFSThrottledPeriods],
						e.Values[model.CFSThrottledTime], e.TimeOf(model.CFSPeriods))
				}
				if e.Values.Has(model.OOMKills) || e.OOMEvents != 0 {
					t.Errorf("%+v: OOM kills %v, events %v: the fixtures' counters are all 0 and OOMKills is the pipeline's", e.Object, e.Values[model.OOMKills], e.OOMEvents)
				}
			}
		})
	}

	// OOM events: every container of the 1.35 fixture has the counter (all
	// 0 there); a container whose counter rose (the same series with a
	// value of 2, as cAdvisor writes it after two kills) has OOMEvents 2,
	// its pod none.
	x, err := DecodeCadvisorExtras(readFixture(t, "k8s-1.35_metrics_cadvisor.txt"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for k, v := range x {
		if k.Container != "" && v.OOMEvents == 0 {
			n++
		}
	}
	if n != 17 {
		t.Errorf("%d containers with container_oom_events_total 0, want the fixture's 17", n)
	}
	const killed = `# HELP container_oom_events_total Count of out of memory events observed for the container
# TYPE container_oom_events_total counter
container_oom_events_total{container="",id="/kubepods/burstable/pod45b528af-fb82-4e96-8103-b9da1194dd36",image="",name="",namespace="scraper",pod="e2e-daemonset-kb65b"} 0 1782468873981
container_oom_events_total{container="compute-pi-digits",id="/kubepods/burstable/pod45b528af-fb82-4e96-8103-b9da1194dd36/ff102f3ad315dd9b977f8e654f8dfc8c21daff8744724a835267e0d91374fc54",image="docker.io/library/perl:5.34.0",name="ff102f3ad315dd9b977f8e654f8dfc8c21daff8744724a835267e0d91374fc54",namespace="scraper",pod="e2e-daemonset-kb65b"} 2 1782468876833
`
	entries, err := DecodeCadvisor([]byte(killed), "n", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := find(entries, ctr("n", "scraper", "e2e-daemonset-kb65b", "compute-pi-digits"))
	p := find(entries, pod("n", "scraper", "e2e-daemonset-kb65b"))
	if c == nil || p == nil || c.OOMEvents != 2 || c.Values.Has(model.OOMKills) || p.OOMEvents != 0 {
		t.Errorf("OOM events: container %+v, pod %+v", c, p)
	}
}
