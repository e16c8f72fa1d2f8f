package config

import (
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/model"
)

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if errs := c.Validate(); len(errs) != 0 {
		t.Fatalf("defaults invalid: %v", errs)
	}
	if got := c.ScrapeTimeout(); got != 10*time.Second {
		t.Errorf("scrape timeout %v, want 10s (80%% of 15s capped at 10s)", got)
	}
	c.Interval = 2 * time.Second
	if got := c.ScrapeTimeout(); got != 1600*time.Millisecond {
		t.Errorf("scrape timeout %v, want 1.6s", got)
	}
}

func TestFrontDoorUser(t *testing.T) {
	for _, tc := range []struct {
		user, listen, err string
	}{
		{user: "system:serviceaccount:kubemon:kubemon", listen: ":4444"},
		{user: "system:serviceaccount:kubemon:kubemon", err: "needs metricsAPI.listen"},
		{user: "system:serviceaccount::kubemon", listen: ":4444", err: "want system:serviceaccount"},
		{user: "alice", listen: ":4444", err: "want system:serviceaccount"},
	} {
		c := Default()
		c.MetricsAPI.Listen, c.MetricsAPI.FrontDoorUser = tc.listen, tc.user
		errs := c.Validate()
		if tc.err == "" && len(errs) != 0 || tc.err != "" && (len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.err)) {
			t.Errorf("%q on %q: %v, want %q", tc.user, tc.listen, errs, tc.err)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Default()
	c.Listen = "8080"
	c.DataDir = ""
	c.Interval = 0
	c.Retention = time.Minute
	c.BlockDuration = 7 * time.Minute
	c.Scrape.Timeout = -time.Second
	c.Scrape.MaxBytes = 10
	c.Scrape.Endpoint = "ebpf"
	c.Discovery.NodesURL, c.Discovery.NodesFile = "http://x", "y"
	c.Discovery.AddressTypes = []string{"InternalIP", "Carrier pigeon"}
	c.MetricsDrop = []string{"container_cpu_*", "contianer_*", "[oops"}
	c.Discovery.KubeletScheme = "ftp"
	c.Log.Level = "loud"
	c.Log.Format = "xml"
	c.MetricsAPI.Listen = "4443"
	c.MetricsAPI.CertFile = "tls.crt"
	c.MetricsAPI.FrontDoorUser = "kubemon"
	errs := c.Validate()
	want := []string{"listen", "metricsAPI.listen", "metricsAPI: set both", "frontDoorUser \"kubemon\": want system:serviceaccount", "which the metrics API", "dataDir", "interval", "retention", "blockDuration 7m0s", "scrape.timeout", "scrape.endpoint", "scrape.maxBytes", "discovery:", "addressTypes", "metricsDrop \"contianer_*\" matches no series", "metricsDrop \"[oops\"", "kubeletScheme", "log.level", "log.format"}
	if len(errs) != len(want) {
		t.Errorf("%d errors, want %d: %v", len(errs), len(want), errs)
	}
	all := ""
	for _, e := range errs {
		all += e.Error() + "\n"
	}
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("no error about %s in:\n%s", w, all)
		}
	}
}

func TestBlockDuration(t *testing.T) {
	for d, ok := range map[time.Duration]bool{0: true, time.Minute: true, 30 * time.Minute: true, 2 * time.Hour: true,
		30 * time.Second: false, 7 * time.Minute: false, 4 * time.Hour: false, -time.Hour: false} {
		c := Default()
		c.BlockDuration = d
		if errs := c.Validate(); (len(errs) == 0) != ok {
			t.Errorf("blockDuration %v: errors %v, want valid %v", d, errs, ok)
		}
	}
}

func TestDiscoveryChoices(t *testing.T) {
	for _, tt := range []struct {
		name string
		set  func(*Discovery)
		ok   bool
	}{
		{"kubeconfig alone", func(d *Discovery) { d.Kubeconfig = "/k" }, true},
		{"kubernetes with proxy", func(d *Discovery) { d.Kubernetes, d.NodeProxy = true, true }, true},
		{"proxy without kubernetes", func(d *Discovery) { d.NodeProxy = true }, false},
		{"kubeconfig and a nodes file", func(d *Discovery) { d.Kubeconfig, d.NodesFile = "/k", "/n" }, false},
	} {
		c := Default()
		tt.set(&c.Discovery)
		if errs := c.Validate(); (len(errs) == 0) != tt.ok {
			t.Errorf("%s: errors %v", tt.name, errs)
		}
	}
}

func TestMetricsAPIListen(t *testing.T) {
	for _, tt := range []struct {
		listen, api string
		ok          bool
	}{
		{":8080", "", true},
		{":8080", ":4443", true},
		{":8080", ":8080", false},
		{":8080", "localhost", false},
	} {
		c := Default()
		c.Listen, c.MetricsAPI.Listen = tt.listen, tt.api
		if errs := c.Validate(); (len(errs) == 0) != tt.ok {
			t.Errorf("listen %q metricsAPI.listen %q: errors %v", tt.listen, tt.api, errs)
		}
	}
	c := Default()
	c.MetricsDrop = []string{"container_cpu_*"}
	if errs := c.Validate(); len(errs) != 0 {
		t.Errorf("dropping container CPU without the metrics API: %v", errs)
	}
	c.MetricsAPI.Listen = ":4443"
	if errs := c.Validate(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "container_cpu_usage_seconds_total") {
		t.Errorf("dropping container CPU with the metrics API: %v", errs)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c := Default()
	if err := c.Load(write("ok.yaml", "interval: 30s\nretention: 720h\nscrape:\n  timeout: 5s\n  fetchPods: false\nlog:\n  format: json\n")); err != nil {
		t.Fatal(err)
	}
	if c.Interval != 30*time.Second || c.Retention != 720*time.Hour || c.Scrape.Timeout != 5*time.Second || c.Scrape.FetchPods || c.Log.Format != "json" {
		t.Errorf("loaded %+v", c)
	}
	if c.Listen != ":8080" || c.Scrape.MaxBytes != 64<<20 {
		t.Errorf("keys absent from the file must keep their values: %+v", c)
	}
	c = Default()
	if err := c.Load(write("empty.yaml", "")); err != nil {
		t.Errorf("empty file: %v", err)
	}
	for name, body := range map[string]string{
		"unknown.yaml": "intervall: 30s\n",
		"badtype.yaml": "interval: soon\n",
		"notyaml.yaml": "interval: [\n",
		"nestedx.yaml": "scrape:\n  tiemout: 1s\n",
	} {
		c := Default()
		if err := c.Load(write(name, body)); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
	if err := c.Load(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("missing file: want an error")
	}
}

func TestByteSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		err  bool
	}{
		{"8GiB", 8 << 30, false},
		{"8GB", 8 << 30, false}, // base 2, as Prometheus's retention.size
		{"512MiB", 512 << 20, false},
		{"0", 0, false},
		{"lots", 0, true},
		{"-1GiB", 0, true},
	} {
		var b ByteSize
		err := b.Set(tt.in)
		if (err != nil) != tt.err || int64(b) != tt.want {
			t.Errorf("Set(%q) = %d, %v; want %d, error %v", tt.in, b, err, tt.want, tt.err)
		}
	}
	if got := ByteSize(8 << 30).String(); got != "8GiB" {
		t.Errorf("String() = %q, want 8GiB", got)
	}
	dir := t.TempDir()
	for _, tt := range []struct {
		yaml string
		want ByteSize
	}{{"retentionSize: 4GiB\n", 4 << 30}, {"retentionSize: 1048576\n", 1 << 20}} {
		f := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(f, []byte(tt.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		c := Default()
		if err := c.Load(f); err != nil || c.RetentionSize != tt.want {
			t.Errorf("%q: %d, %v; want %d", tt.yaml, c.RetentionSize, err, tt.want)
		}
	}
	f := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(f, []byte("retentionSize: huge\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := Default()
	if err := c.Load(f); err == nil || !strings.Contains(err.Error(), "512MiB") {
		t.Errorf("bad size: %v, want an error naming the expected form", err)
	}
}

func TestAuth(t *testing.T) {
	c := Default()
	c.Auth = "maybe"
	if errs := c.Validate(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "auth") {
		t.Errorf("auth maybe: %v", errs)
	}
}

func TestQueryLimits(t *testing.T) {
	c := Default()
	if c.Query.MaxConcurrency != 20 || c.Query.Timeout != 2*time.Minute || c.Query.MaxSamples != 50_000_000 {
		t.Errorf("defaults %+v, want Prometheus's 20, 2m, 50000000", c.Query)
	}
	if c.Query.URL != "" {
		t.Errorf("query.url %q by default, want the local store", c.Query.URL)
	}
	c.Query = Query{MaxConcurrency: 0, Timeout: time.Millisecond, MaxSamples: -1, URL: "thanos-query:9090"}
	errs := c.Validate()
	all := ""
	for _, e := range errs {
		all += e.Error() + "\n"
	}
	for _, w := range []string{"query.maxConcurrency", "query.timeout", "query.maxSamples", `query.url "thanos-query:9090"`} {
		if !strings.Contains(all, w) {
			t.Errorf("no error about %s in:\n%s", w, all)
		}
	}
	if len(errs) != 4 {
		t.Errorf("%d errors, want 4: %v", len(errs), errs)
	}
	c = Default()
	for _, u := range []string{"http://127.0.0.1:10902", "https://thanos-query.monitoring.svc/prefix"} {
		c.Query.URL = u
		if errs := c.Validate(); len(errs) != 0 {
			t.Errorf("query.url %q: %v", u, errs)
		}
	}
}

// TestDefaultMetricsDrop: by default the per-container and per-pod page
// faults are not stored, and their sums are; a file's empty list (and the
// flag's "") stores everything.
func TestDefaultMetricsDrop(t *testing.T) {
	c := Default()
	drop := map[string]bool{}
	for _, n := range model.SeriesNames() {
		for _, p := range c.MetricsDrop {
			if ok, _ := path.Match(p, n); ok {
				drop[n] = true
			}
		}
	}
	want := []string{"container_memory_page_faults_total", "container_memory_page_faults_per_second",
		"container_memory_major_page_faults_total", "container_memory_major_page_faults_per_second",
		"pod_memory_page_faults_total", "pod_memory_page_faults_per_second",
		"pod_memory_major_page_faults_total", "pod_memory_major_page_faults_per_second"}
	if len(drop) != len(want) {
		t.Errorf("the default drops %d series names, want %d: %v", len(drop), len(want), drop)
	}
	for _, n := range want {
		if !drop[n] {
			t.Errorf("%s stored by default", n)
		}
	}
	for _, n := range []string{"namespace_memory_page_faults_per_second", "node_memory_page_faults_total", "cluster_memory_major_page_faults_per_second",
		"container_cpu_usage_cores", "container_memory_working_set_bytes"} {
		if drop[n] {
			t.Errorf("%s dropped by default", n)
		}
	}
	file := filepath.Join(t.TempDir(), "k.yaml")
	if err := os.WriteFile(file, []byte("metricsDrop: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.Load(file); err != nil {
		t.Fatal(err)
	}
	if len(c.MetricsDrop) != 0 {
		t.Errorf("metricsDrop: [] leaves %v", c.MetricsDrop)
	}
}

func TestShardDefaults(t *testing.T) {
	c := Default()
	if c.Shard.Enabled || c.Shard.Ring != "kubemon" || c.Shard.ReplicationFactor != 2 {
		t.Errorf("shard defaults %+v, want off, ring kubemon, replication factor 2", c.Shard)
	}
	c.Shard.Enabled, c.Shard.ReplicationFactor = true, 0
	errs := c.Validate()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "shard.replicationFactor 0") {
		t.Errorf("replication factor 0: %v", errs)
	}
}

// TestMetricsSets: each named set drops what it says. large-cluster keeps
// exactly the set measured at 5,000 nodes (docs/performance.md; its 18 drop
// patterns dropped the same 97 names as this set when it was named): below
// the node only the series listed here, above it everything. It is spelled
// in the model's IDs, so that a renamed series (hack/contract-rename.sh)
// keeps it whole.
func TestMetricsSets(t *testing.T) {
	large, ok := MetricsSetDrop("large-cluster")
	if !ok {
		t.Fatal("no large-cluster set")
	}
	dropped := map[string]bool{}
	for _, n := range large {
		dropped[n] = true
	}
	keep := map[string]bool{}
	for _, p := range []struct {
		l model.Level
		m model.MetricID
	}{
		{model.LevelContainer, model.CPUUsage}, {model.LevelContainer, model.MemoryWorkingSet},
		{model.LevelPod, model.CPUUsageRate}, {model.LevelPod, model.MemoryWorkingSet}, {model.LevelPod, model.Info},
		{model.LevelWorkload, model.CPUUsageRate}, {model.LevelWorkload, model.CPURequest}, {model.LevelWorkload, model.CPULimit},
		{model.LevelWorkload, model.MemoryWorkingSet}, {model.LevelWorkload, model.MemoryRequest}, {model.LevelWorkload, model.MemoryLimit},
		{model.LevelSysContainer, model.CPUUsageRate}, {model.LevelSysContainer, model.MemoryWorkingSet},
	} {
		keep[model.PromName(p.l, p.m)] = true
	}
	n, kept := 0, 0
	for l := model.Level(0); l < model.NumLevels; l++ {
		below := l == model.LevelContainer || l == model.LevelPod || l == model.LevelWorkload || l == model.LevelSysContainer
		for _, m := range model.Metrics {
			if !m.Levels.Has(l) {
				continue
			}
			name := model.PromName(l, m.ID)
			want := below && !keep[name]
			if dropped[name] != want {
				t.Errorf("large-cluster drops %s: %v, want %v", name, dropped[name], want)
			}
			if want {
				n++
			} else {
				kept++
			}
		}
	}
	if n < 90 || kept < 90 || len(large) != n {
		t.Errorf("large-cluster drops %d series names and keeps %d; want %d dropped (at least 90 of each)", len(large), kept, n)
	}
	if d, _ := MetricsSetDrop("default"); !slices.Equal(d, DefaultMetricsDrop()) {
		t.Errorf("default drops %v", d)
	}
	if d, ok := MetricsSetDrop("all"); !ok || len(d) != 0 {
		t.Errorf("all drops %v", d)
	}
	if _, ok := MetricsSetDrop("huge"); ok {
		t.Error("an unknown set has a drop list")
	}

	// In a file, with the metrics API (which large-cluster still serves),
	// and against metricsDrop or an unknown name.
	for _, tc := range []struct{ yaml, err string }{
		{"metricsSet: large-cluster\nmetricsAPI: {listen: ':4443'}\n", ""},
		{"metricsSet: all\n", ""},
		{"metricsSet: large-cluster\nmetricsDrop: ['*_uptime_seconds']\n", `metricsSet "large-cluster" and metricsDrop ["*_uptime_seconds"]: set one of them`},
		{"metricsSet: huge\n", `metricsSet "huge": want default, large-cluster or all`},
	} {
		c := Default()
		file := filepath.Join(t.TempDir(), "k.yaml")
		if err := os.WriteFile(file, []byte(tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := c.Load(file); err != nil {
			t.Fatal(err)
		}
		errs := c.Validate()
		if tc.err == "" {
			if len(errs) != 0 {
				t.Errorf("%q: %v", tc.yaml, errs)
			}
			continue
		}
		if len(errs) != 1 || errs[0].Error() != tc.err {
			t.Errorf("%q: errors %v, want %s", tc.yaml, errs, tc.err)
		}
	}
	c := Default()
	c.MetricsSet = "large-cluster"
	if d := c.Drop(); !slices.Equal(d, large) {
		t.Errorf("Drop() with metricsSet large-cluster drops %d names, want %d", len(d), len(large))
	}
	c.MetricsSet = ""
	if !slices.Equal(c.Drop(), DefaultMetricsDrop()) {
		t.Errorf("Drop() without metricsSet: %v", c.Drop())
	}
}
