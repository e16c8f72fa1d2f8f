package scrape

import (
	"math"
	"strings"
	"testing"
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
