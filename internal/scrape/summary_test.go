package scrape

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	stats "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubemon/kubemon/internal/model"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func find(entries []model.Entry, o model.Object) *model.Entry {
	for i := range entries {
		if entries[i].Object == o {
			return &entries[i]
		}
	}
	return nil
}

func node(n string) model.Object { return model.Object{Level: model.LevelNode, Node: n} }
func pod(n, ns, p string) model.Object {
	return model.Object{Level: model.LevelPod, Node: n, Namespace: ns, Pod: p}
}
func ctr(n, ns, p, c string) model.Object {
	return model.Object{Level: model.LevelContainer, Node: n, Namespace: ns, Pod: p, Container: c}
}

// want is one hand-checked value; NaN means the field must be absent.
type want struct {
	obj model.Object
	m   model.MetricID
	v   float64
}

func TestDecodeSummaryFixtures(t *testing.T) {
	absent := math.NaN()
	tests := []struct {
		file, node            string
		sys, pods, containers int
		values                []want
	}{
		{
			file: "k8s-1.16_stats_summary.json", node: "minikube", sys: 3, pods: 15, containers: 15,
			values: []want{
				{node("minikube"), model.CPUUsage, 216.639857637},
				{node("minikube"), model.MemoryWorkingSet, 1446182912},
				{node("minikube"), model.NetworkRx, 811882573},
				{node("minikube"), model.FilesystemInodesFree, 10191329},
				{pod("minikube", "scraper", "e2e-ds-8zz8h"), model.EphemeralStorageUsage, 57344},
				{pod("minikube", "scraper", "e2e-ds-8zz8h"), model.NetworkRx, 42},
				{ctr("minikube", "scraper", "e2e-ds-8zz8h", "busybox"), model.CPUUsage, 0.01809843},
				{ctr("minikube", "scraper", "e2e-ds-8zz8h", "busybox"), model.MemoryWorkingSet, 557056},
				{ctr("minikube", "scraper", "e2e-ds-8zz8h", "busybox"), model.MemoryPageFaults, 1716},
				{ctr("minikube", "scraper", "e2e-ds-8zz8h", "busybox"), model.FilesystemUsage, 28672 + 24576},
				{ctr("minikube", "scraper", "e2e-ds-8zz8h", "busybox"), model.NetworkRx, absent},
			},
		},
		{
			file: "k8s-1.24_stats_summary.json", node: "datagen-1-24", sys: 2, pods: 17, containers: 17,
			values: []want{
				{ctr("datagen-1-24", "kube-system", "kube-apiserver-datagen-1-24", "kube-apiserver"), model.CPUUsage, 13.608961},
				{ctr("datagen-1-24", "kube-system", "kube-apiserver-datagen-1-24", "kube-apiserver"), model.MemoryWorkingSet, 322899968},
				{ctr("datagen-1-24", "kube-system", "kube-apiserver-datagen-1-24", "kube-apiserver"), model.FilesystemUsage, 61440 + 20480},
				{pod("datagen-1-24", "kube-system", "kube-apiserver-datagen-1-24"), model.NetworkRx, 932154998},
			},
		},
		{
			file: "k8s-1.28_stats_summary.json", node: "datagen-1-28", sys: 2, pods: 18, containers: 23,
			values: []want{
				{ctr("datagen-1-28", "scraper", "e2e-statefulset-0", "compute-pi-digits"), model.CPUUsage, 2.003015},
				{ctr("datagen-1-28", "scraper", "e2e-statefulset-0", "compute-pi-digits"), model.MemoryWorkingSet, 10407936},
				{ctr("datagen-1-28", "scraper", "e2e-statefulset-0", "compute-pi-digits"), model.FilesystemUsage, 32768 + 4096},
				{node("datagen-1-28"), model.FilesystemUsage, 16047185920},
			},
		},
		{
			file: "k8s-1.34_stats_summary.json", node: "datagen-1-34", sys: 2, pods: 18, containers: 18,
			values: []want{
				{node("datagen-1-34"), model.CPUUsage, 63.349226},
				{ctr("datagen-1-34", "scraper", "e2e-deployment-6fb786454b-7fsxc", "compute-pi-digits"), model.CPUUsage, 2.756273},
				{ctr("datagen-1-34", "scraper", "e2e-deployment-6fb786454b-7fsxc", "compute-pi-digits"), model.MemoryWorkingSet, 10412032},
				{ctr("datagen-1-34", "scraper", "e2e-deployment-6fb786454b-7fsxc", "compute-pi-digits"), model.FilesystemUsage, 28672},
				{pod("datagen-1-34", "scraper", "e2e-deployment-6fb786454b-7fsxc"), model.NetworkRx, 446},
			},
		},
		{
			file: "k8s-1.35_stats_summary.json", node: "datagen-1-35", sys: 2, pods: 17, containers: 17,
			values: []want{
				{node("datagen-1-35"), model.FilesystemUsage, 106943070208},
				{ctr("datagen-1-35", "kube-system", "kube-controller-manager-datagen-1-35", "kube-controller-manager"), model.CPUUsage, 1.877547},
				{ctr("datagen-1-35", "kube-system", "kube-controller-manager-datagen-1-35", "kube-controller-manager"), model.MemoryWorkingSet, 66174976},
				{ctr("datagen-1-35", "kube-system", "kube-controller-manager-datagen-1-35", "kube-controller-manager"), model.FilesystemUsage, 86016 + 32768},
			},
		},
		{
			// Windows: node network only as named adapters (summed), no
			// inode counts, containers with working set only.
			file: "stats_summary_windows.json", node: "ip-172-29-160-189.ec2.internal", sys: 1, pods: 2, containers: 6,
			values: []want{
				{node("ip-172-29-160-189.ec2.internal"), model.NetworkRx, 1149346892 + 1150147728},
				{node("ip-172-29-160-189.ec2.internal"), model.NetworkTx, 4186701 + 4278314 + 272},
				{node("ip-172-29-160-189.ec2.internal"), model.FilesystemInodes, absent},
				{node("ip-172-29-160-189.ec2.internal"), model.MemoryRSS, 0},
				{ctr("ip-172-29-160-189.ec2.internal", "default", "dd-datadog-lbvkl", "process-agent"), model.CPUUsage, 9.359375},
				{ctr("ip-172-29-160-189.ec2.internal", "default", "dd-datadog-lbvkl", "process-agent"), model.MemoryWorkingSet, 65474560},
				{ctr("ip-172-29-160-189.ec2.internal", "default", "dd-datadog-lbvkl", "process-agent"), model.MemoryUsage, absent},
				{ctr("ip-172-29-160-189.ec2.internal", "default", "dd-datadog-lbvkl", "process-agent"), model.MemoryRSS, absent},
				{ctr("ip-172-29-160-189.ec2.internal", "default", "windows-server-iis-6c68545d57-gwtn9", "windows-server-iis"), model.CPUUsage, 70.140625},
			},
		},
		{
			// 2017 kubelet: no pod-level cpu/memory, network without
			// interfaces, inodesFree = 2^64-1.
			file: "stats_summary_multiple_containers.json", node: "gke-beats-default-pool-a5b33e2e-hdww", sys: 1, pods: 1, containers: 2,
			values: []want{
				{node("gke-beats-default-pool-a5b33e2e-hdww"), model.FilesystemInodesFree, 18446744073709551615},
				{node("gke-beats-default-pool-a5b33e2e-hdww"), model.NetworkRx, 1115133198},
				{pod("gke-beats-default-pool-a5b33e2e-hdww", "default", "nginx-deployment-2303442956-pcqfc"), model.CPUUsage, absent},
				{pod("gke-beats-default-pool-a5b33e2e-hdww", "default", "nginx-deployment-2303442956-pcqfc"), model.NetworkRx, 107056},
				{ctr("gke-beats-default-pool-a5b33e2e-hdww", "default", "nginx-deployment-2303442956-pcqfc", "nginx"), model.CPUUsage, 0.043959424},
				{ctr("gke-beats-default-pool-a5b33e2e-hdww", "default", "nginx-deployment-2303442956-pcqfc", "nginx"), model.FilesystemUsage, 61440 + 28672},
			},
		},
		{
			// Synthetic: empty nodeName (the target's name is used), no pods,
			// memory without a time, no fs.
			file: "stats_summary_no_node.json", node: "n1", sys: 1, pods: 0, containers: 0,
			values: []want{
				{node("n1"), model.CPUUsage, 1.25},
				{node("n1"), model.MemoryWorkingSet, 6442450944},
				{node("n1"), model.FilesystemUsage, absent},
				{model.Object{Level: model.LevelSysContainer, Node: "n1", Container: "kubelet"}, model.CPUUsage, 5},
				{model.Object{Level: model.LevelSysContainer, Node: "n1", Container: "kubelet"}, model.MemoryMajorPageFaults, 34},
			},
		},
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			entries, err := DecodeSummary(readFixture(t, tt.file), tt.node, now)
			if err != nil {
				t.Fatal(err)
			}
			var count [model.NumLevels]int
			for _, e := range entries {
				count[e.Object.Level]++
				if e.Time == 0 {
					t.Errorf("%+v has no time", e.Object)
				}
			}
			if count[model.LevelNode] != 1 || count[model.LevelSysContainer] != tt.sys || count[model.LevelPod] != tt.pods || count[model.LevelContainer] != tt.containers {
				t.Errorf("levels: node %d sys %d pods %d containers %d, want 1 %d %d %d",
					count[model.LevelNode], count[model.LevelSysContainer], count[model.LevelPod], count[model.LevelContainer], tt.sys, tt.pods, tt.containers)
			}
			for _, w := range tt.values {
				e := find(entries, w.obj)
				if e == nil {
					t.Errorf("no entry for %+v", w.obj)
					continue
				}
				got := e.Values[w.m]
				name := model.PromName(w.obj.Level, w.m)
				switch {
				case math.IsNaN(w.v) && !math.IsNaN(got):
					t.Errorf("%s %+v = %v, want absent", name, w.obj, got)
				case !math.IsNaN(w.v) && math.Abs(got-w.v) > 1e-9*math.Max(1, math.Abs(w.v)):
					t.Errorf("%s %+v = %v, want %v", name, w.obj, got, w.v)
				}
			}
		})
	}
}

func TestDecodeSummaryTimes(t *testing.T) {
	entries, err := DecodeSummary(readFixture(t, "k8s-1.16_stats_summary.json"), "minikube", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := find(entries, ctr("minikube", "scraper", "e2e-ds-8zz8h", "busybox"))
	if want := time.Date(2021, 12, 15, 13, 50, 49, 0, time.UTC).UnixMilli(); c.Time != want {
		t.Errorf("container time %d, want %d (cpu.time)", c.Time, want)
	}
	if want := time.Date(2021, 12, 15, 13, 46, 32, 0, time.UTC).UnixMilli(); c.Start != want {
		t.Errorf("container start %d, want %d", c.Start, want)
	}
	if up := c.Values[model.Uptime]; up != 257 {
		t.Errorf("uptime %v s, want 257", up)
	}
	// Memory without a time in the no-node fixture falls back to cpu's time,
	// and a block with no time at all to the scrape time.
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	entries, err = DecodeSummary(readFixture(t, "stats_summary_no_node.json"), "n1", now)
	if err != nil {
		t.Fatal(err)
	}
	if n := find(entries, node("n1")); n.Time != time.Date(2025, 3, 3, 21, 35, 34, 0, time.UTC).UnixMilli() {
		t.Errorf("node time %d", n.Time)
	}
}

func TestDecodeSummaryErrors(t *testing.T) {
	valid := readFixture(t, "k8s-1.35_stats_summary.json")
	tests := []struct {
		name, node, payload, want string
	}{
		{"empty", "n", "", "decode summary"},
		{"garbage", "n", "<html>oops</html>", "decode summary"},
		{"truncated", "n", string(valid[:len(valid)/2]), "decode summary"},
		{"wrong type", "n", `{"node":{"cpu":{"usageCoreNanoSeconds":"lots"}}}`, "decode summary"},
		{"negative counter", "n", `{"node":{"cpu":{"usageCoreNanoSeconds":-1}}}`, "decode summary"},
		{"no node name", "", `{"node":{}}`, "no node name"},
		{"pod without namespace", "n", `{"node":{},"pods":[{"podRef":{"name":"p"}}]}`, "no name or namespace"},
		{"where", "n", `{"node":{},"pods":[{"podRef":{"name":"q","namespace":"ns"}},{"podRef":{"name":"p","namespace":"ns"},"containers":[{"memory":{"rssBytes":1.5}}]}]}`, "pods[1].containers[0].memory.rssBytes: want an unsigned 64-bit integer, got 1.5"},
		{"pod null", "n", `{"pods":[null]}`, "pods[0]: want an object, got null"},
		{"pods an object", "n", `{"pods":{}}`, "pods: want an array, got object"},
		{"bad time", "n", `{"node":{"startTime":"2025-02-30T00:00:00Z"}}`, "node.startTime: bad time"},
		{"empty time", "n", `{"node":{"cpu":{"time":""}}}`, "node.cpu.time: empty time"},
		{"trailing data", "n", `{"node":{}} {}`, "after top-level value"},
		{"no value", "n", `{"node":{"startTime":}}`, "looking for beginning of value"},
		{"no value after a number key", "n", `{"node":{"cpu":{"usageCoreNanoSeconds":}}}`, "looking for beginning of value"},
		{"no value after a string key", "n", `{"node":{"nodeName":,"x":1}}`, "looking for beginning of value"},
		{"deep", "n", `{"x":` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `}`, "nested deeper"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeSummary([]byte(tt.payload), tt.node, time.Now())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestDecodeSummaryAnyOrder: the entries come node first, then system
// containers, then each pod and its containers, whatever the payload's
// key order, and the node's name reaches every entry even when nodeName
// comes last; escapes and the zero time read as the stats types read them.
func TestDecodeSummaryAnyOrder(t *testing.T) {
	payload := `{"pods":[{"containers":[{"name":"c\u00e9","startTime":"2025-03-03T21:35:00+01:00","cpu":{"usageCoreNanoSeconds":2000000000,"time":"2025-03-03T21:35:34Z"}}],` +
		`"podRef":{"namespace":"ns","name":"p\"1"},"startTime":"0001-01-01T00:00:00Z"}],` +
		`"node":{"systemContainers":[{"name":"kubelet","memory":{"workingSetBytes":5}}],"nodeName":"late"}}`
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	got, err := DecodeSummary([]byte(payload), "", now)
	if err != nil {
		t.Fatal(err)
	}
	want, err := decodeSummaryRef([]byte(payload), "", now)
	if err != nil {
		t.Fatal(err)
	}
	if d := sameEntries(got, want); d != "" {
		t.Fatal(d)
	}
	levels := []model.Level{model.LevelNode, model.LevelSysContainer, model.LevelPod, model.LevelContainer}
	if len(got) != len(levels) {
		t.Fatalf("%d entries, want %d", len(got), len(levels))
	}
	for i, e := range got {
		if e.Object.Level != levels[i] || e.Object.Node != "late" {
			t.Errorf("entry %d: %+v", i, e.Object)
		}
	}
	if c := got[3]; c.Object.Pod != `p"1` || c.Object.Container != "cé" || c.Values[model.CPUUsage] != 2 || c.Start != time.Date(2025, 3, 3, 20, 35, 0, 0, time.UTC).UnixMilli() {
		t.Errorf("container %+v cpu %v start %d", c.Object, c.Values[model.CPUUsage], c.Start)
	}
	if p := got[2]; p.Start != 0 || !math.IsNaN(p.Values[model.Uptime]) {
		t.Errorf("pod start %d, uptime %v: the zero time is no start", p.Start, p.Values[model.Uptime])
	}
}

// sameEntries reports how a and b differ, "" when they do not (NaN equals NaN).
func sameEntries(a, b []model.Entry) string {
	if len(a) != len(b) {
		return fmt.Sprintf("%d entries vs %d", len(a), len(b))
	}
	for i := range a {
		x, y := &a[i], &b[i]
		if x.Object != y.Object || x.Time != y.Time || x.Start != y.Start {
			return fmt.Sprintf("entry %d: %+v t=%d s=%d vs %+v t=%d s=%d", i, x.Object, x.Time, x.Start, y.Object, y.Time, y.Start)
		}
		for m := range x.Values {
			if vx, vy := x.Values[m], y.Values[m]; vx != vy && !(math.IsNaN(vx) && math.IsNaN(vy)) {
				return fmt.Sprintf("entry %d %+v: %s = %v vs %v", i, x.Object, model.Metrics[m].Name, vx, vy)
			}
		}
	}
	return ""
}

// TestDecodeSummaryMatchesTypes: the fast decoder gives exactly what the
// k8s.io/kubelet stats types give, on every fixture.
func TestDecodeSummaryMatchesTypes(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, f := range files {
		data := readFixture(t, filepath.Base(f))
		want, err := decodeSummaryRef(data, "n1", now)
		if err != nil {
			t.Fatalf("%s: reference: %v", f, err)
		}
		got, err := DecodeSummary(data, "n1", now)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if d := sameEntries(got, want); d != "" {
			t.Errorf("%s: %s", f, d)
		}
	}
}

// FuzzDecodeSummary: the decoder never panics, refuses what is not JSON,
// never yields negative or infinite values, and on every payload the stats types accept it agrees
// with them (compared on the types' own re-encoding, which drops what the
// types ignore, such as keys in another letter case).
//
// Its seeds are the small fixtures: coverage-guided mutation of the
// 100 KB ones is too slow to explore (TestDecodeSummaryMatchesTypes covers
// those whole).
func FuzzDecodeSummary(f *testing.F) {
	for _, name := range []string{"stats_summary_no_node.json", "stats_summary_multiple_containers.json", "stats_summary_windows.json"} {
		f.Add(readFixture(f, name))
	}
	f.Add([]byte(`{"node":{"nodeName":"x"},"pods":[{"podRef":{"name":"p","namespace":"n"},"containers":null}]}`))
	f.Add([]byte(`{"node":{"nodeName":"x","network":{"rxBytes":null,"interfaces":[{"rxBytes":1},{"rxBytes":2}]}}}`))
	now := time.Unix(1e9, 0)
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := DecodeSummary(data, "fuzz", now)
		if err == nil && !json.Valid(data) {
			t.Fatalf("not JSON, yet decoded: %q", data)
		}
		if err == nil {
			for _, e := range entries {
				for m, v := range e.Values {
					if math.IsInf(v, 0) || (!math.IsNaN(v) && v < 0) {
						t.Fatalf("%+v %s = %v", e.Object, model.Metrics[m].Name, v)
					}
				}
			}
		}
		var s stats.Summary
		if json.Unmarshal(data, &s) != nil {
			return
		}
		canon, err := json.Marshal(&s)
		if err != nil {
			return
		}
		want, werr := decodeSummaryRef(canon, "fuzz", now)
		got, gerr := DecodeSummary(canon, "fuzz", now)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("reference err %v, fast err %v on %s", werr, gerr, canon)
		}
		if werr == nil {
			if d := sameEntries(got, want); d != "" {
				t.Fatalf("%s on %s", d, canon)
			}
		}
	})
}

// BenchmarkDecodeSummary decodes the kubelet's Summary as the kubelet
// sends it (indented by one space a level, as go-restful pretty-prints) and
// compacted (as the simulator sends it).
func BenchmarkDecodeSummary(b *testing.B) {
	indented := readFixture(b, "k8s-1.35_stats_summary.json")
	var compact bytes.Buffer
	if err := json.Compact(&compact, indented); err != nil {
		b.Fatal(err)
	}
	for _, form := range []struct {
		name string
		data []byte
	}{{"indented", indented}, {"compact", compact.Bytes()}} {
		b.Run(form.name, func(b *testing.B) { benchmarkDecodeSummary(b, form.data) })
	}
}

func benchmarkDecodeSummary(b *testing.B, data []byte) {
	for _, d := range []struct {
		name string
		f    func([]byte, string, time.Time) ([]model.Entry, error)
	}{{"jsonscan", DecodeSummary}, {"types", decodeSummaryRef}} {
		b.Run(d.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.f(data, "n", time.Now()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
