package scrape

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/model"
)

func TestDecodeCadvisorIO(t *testing.T) {
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
			got, err := DecodeCadvisorIO(readFixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if tt.n > 0 && len(got) != tt.n {
				t.Errorf("%d cgroups, want %d", len(got), tt.n)
			}
			for k, w := range tt.want {
				if g, ok := got[k]; !ok || g != w {
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
	if _, err := DecodeCadvisorIO([]byte("container_fs_reads_bytes_total{pod=\"x\" 1\n")); err == nil || !strings.Contains(err.Error(), "decode cadvisor") {
		t.Errorf("malformed exposition: err = %v", err)
	}
}

// FuzzDecodeCadvisorIO: any exposition gives an error or non-negative,
// finite counters; never a panic.
func FuzzDecodeCadvisorIO(f *testing.F) {
	f.Add([]byte("# TYPE container_fs_reads_bytes_total counter\ncontainer_fs_reads_bytes_total{container=\"c\",device=\"/dev/vda\",id=\"/kubepods/p/c\",namespace=\"n\",pod=\"p\"} 4096 1700000000000\n"))
	f.Add([]byte("container_blkio_device_usage_total{container=\"\",id=\"/\",operation=\"Write\",pod=\"\"} 2.6e+09\ncontainer_fs_writes_bytes_total{container_name=\"POD\",pod_name=\"p\",namespace=\"n\"} 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeCadvisorIO(data)
		if err != nil {
			return
		}
		for k, v := range got {
			if v.Read < 0 || v.Write < 0 || math.IsNaN(v.Read) || math.IsNaN(v.Write) || math.IsInf(v.Read+v.Write, 0) {
				t.Fatalf("%+v = %+v", k, v)
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
