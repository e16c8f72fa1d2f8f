// Package config holds kubemon's configuration: defaults, a YAML file, and
// validation that names every problem at once.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/alecthomas/units"
	"go.yaml.in/yaml/v3"

	"github.com/kubemon/kubemon/internal/model"
)

// Config is the whole configuration of `kubemon serve` and `kubemon demo`.
type Config struct {
	// Listen is the host:port of the HTTP API.
	Listen string `yaml:"listen"`
	// DataDir holds the embedded store.
	DataDir string `yaml:"dataDir"`
	// Interval between two scrapes of a node, and the cycle length.
	Interval time.Duration `yaml:"interval"`
	// Retention is how long the store keeps samples.
	Retention time.Duration `yaml:"retention"`
	// RetentionSize bounds the store's blocks on disk, in bytes (the
	// TSDB's size-based retention: the oldest blocks go first); 0 means no
	// limit. In YAML and flags it takes base-2 units: 512MiB, 8GiB, 8GB.
	RetentionSize ByteSize `yaml:"retentionSize"`
	// BlockDuration is the time range of the blocks the store's head cuts
	// (0: 2h, Prometheus's); it must divide 2h. The head holds 1 to 1.5
	// times it: shorter blocks make a smaller head (fewer series of pods
	// gone) and smaller, more frequent head compactions.
	BlockDuration time.Duration `yaml:"blockDuration"`
	// Auth says who may read the HTTP API (see Auth* constants).
	Auth string `yaml:"auth"`
	// Pprof serves /debug/pprof on the HTTP API (behind Auth like the
	// rest); off by default.
	Pprof     bool      `yaml:"pprof"`
	Scrape    Scrape    `yaml:"scrape"`
	Discovery Discovery `yaml:"discovery"`
	// MetricsDrop lists series not to store, as Prometheus names with
	// shell-style wildcards, e.g. "container_memory_*page_faults*";
	// DefaultMetricsDrop by default, empty to store every series.
	MetricsDrop []string `yaml:"metricsDrop"`
	// MetricsSet names a series set in place of MetricsDrop (see
	// MetricsSets): "default", "large-cluster" or "all"; empty: MetricsDrop.
	MetricsSet string     `yaml:"metricsSet"`
	MetricsAPI MetricsAPI `yaml:"metricsAPI"`
	Query      Query      `yaml:"query"`
	Log        Log        `yaml:"log"`
	// Sinks get every stored sample (InfluxDB, Prometheus remote write).
	Sinks []Sink `yaml:"sinks"`
	// Events configures the Kubernetes events store (see Events).
	Events Events `yaml:"events"`
	// Rules are evaluated over the store; Alerting says where their alerts
	// go (alerts.go).
	Rules    Rules    `yaml:"rules"`
	Alerting Alerting `yaml:"alerting"`
	// Shard divides the nodes among several kubemon members (see Shard).
	Shard Shard `yaml:"shard"`
	// Replica fills this replica's history from its peers (see Replica).
	Replica Replica `yaml:"replica"`
}

// Replica makes this kubemon one of several replicas that each scrape
// every node (the Deployment's replicas: 2): it serves its store over
// Prometheus remote read, and when it starts it reads the range it missed
// while down from a peer (internal/replica). Peers are a static list of
// base URLs, or the ready pods matching a label selector in this pod's
// namespace (reached at their pod IP on the port of Listen). Off when
// neither is set.
type Replica struct {
	// Peers are other replicas' base URLs (http://host:port).
	Peers []string `yaml:"peers"`
	// PeerSelector is a label selector of the replicas' pods (e.g.
	// app.kubernetes.io/name=kubemon), this pod ($POD_NAME, else the host
	// name) excluded; needs Kubernetes discovery.
	PeerSelector string `yaml:"peerSelector"`
	// TokenFile holds the bearer token sent to peers, read at every
	// request; default the pod's service account token, when present.
	TokenFile string `yaml:"tokenFile"`
}

// Enabled says whether replica peers are configured.
func (r Replica) Enabled() bool { return len(r.Peers) > 0 || r.PeerSelector != "" }

// Shard makes this kubemon one member of a ring that divides the nodes:
// members find each other through Leases in the Kubernetes API and each
// node is scraped by ReplicationFactor live members (rendezvous hashing).
// A member then sees part of the cluster: it stores and remote-writes its
// nodes' containers, pods and nodes, and leaves the namespace, workload
// and cluster roll-ups to where all the data meets (the query backend,
// Query.URL). It needs Kubernetes discovery.
type Shard struct {
	Enabled bool `yaml:"enabled"`
	// Ring names the group of members (its Leases' label); default kubemon.
	Ring string `yaml:"ring"`
	// ReplicationFactor is how many members scrape each node; default 2.
	ReplicationFactor int `yaml:"replicationFactor"`
	// Identity is this member's name in the ring; default $POD_NAME, else
	// the host name.
	Identity string `yaml:"identity"`
	// Namespace holds the Leases; default $POD_NAMESPACE, else the
	// in-cluster service account's namespace, else "default".
	Namespace string `yaml:"namespace"`
}

// Auth modes of the HTTP API.
const (
	// AuthAuto is AuthNone when the API listens on loopback only, else
	// AuthKubernetes (which then needs the Kubernetes API).
	AuthAuto = "auto"
	// AuthKubernetes asks the Kubernetes API who a bearer token is
	// (TokenReview) and whether it may use the path (SubjectAccessReview
	// on non-resource URLs); /healthz, /readyz and /livez stay open.
	AuthKubernetes = "kubernetes"
	// AuthNone serves everyone.
	AuthNone = "none"
)

// ByteSize is a size in bytes that reads and prints base-2 units
// ("512MiB", "8GiB"; "8GB" means 8 GiB, as in Prometheus's flags).
type ByteSize int64

// String prints the size in the largest whole base-2 unit.
func (b ByteSize) String() string { return units.Base2Bytes(b).String() }

// Set parses s, for flag.Value.
func (b *ByteSize) Set(s string) error {
	v, err := units.ParseBase2Bytes(s)
	if err != nil {
		return fmt.Errorf("%q: want a size such as 512MiB or 8GiB", s)
	}
	if v < 0 {
		return fmt.Errorf("%q: negative size", s)
	}
	*b = ByteSize(v)
	return nil
}

// UnmarshalYAML reads a size string (or a plain number of bytes).
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Tag == "!!int" {
		var v int64
		if err := n.Decode(&v); err != nil {
			return err
		}
		*b = ByteSize(v)
		return nil
	}
	return b.Set(n.Value)
}

// Query bounds the PromQL API (Prometheus's own limits, same defaults).
type Query struct {
	// MaxConcurrency is how many queries run at once; more wait in a queue
	// (the wait counts against Timeout).
	MaxConcurrency int `yaml:"maxConcurrency"`
	// Timeout is the longest a query may run; a request's timeout
	// parameter can only shorten it.
	Timeout time.Duration `yaml:"timeout"`
	// MaxSamples is the most samples a query may hold in memory at once.
	MaxSamples int `yaml:"maxSamples"`
	// URL, when set, is a Prometheus-compatible query backend (Thanos
	// Query over the members' remote writes, a Prometheus, another
	// kubemon) that the PromQL API, the model API, the metrics API, the UI
	// and the rules read instead of the local store: every member of a
	// sharded kubemon then answers for the whole cluster. Scraping, the
	// local store and the sinks are unchanged.
	URL string `yaml:"url"`
}

// MetricsAPI configures the aggregated API server for metrics.k8s.io
// (kubectl top, the HorizontalPodAutoscaler). It needs discovery from the
// Kubernetes API.
type MetricsAPI struct {
	// Listen is the host:port of its HTTPS listener; "" turns it off.
	Listen string `yaml:"listen"`
	// CertFile and KeyFile are its serving certificate and key (PEM);
	// without them a self-signed certificate is made at start.
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
	// FrontDoorUser, when set, is the user kubemon's front door runs as
	// (system:serviceaccount:<namespace>:<name>): requests whose token
	// reviews as that user for the audience kubemon.io/frontdoor are
	// authorized as the caller the front door names (package forwarded).
	FrontDoorUser string `yaml:"frontDoorUser"`
}

// Scrape configures the kubelet client.
type Scrape struct {
	// Endpoint is the kubelet endpoint read for stats: summary
	// (/stats/summary, the default and richest), resource
	// (/metrics/resource: CPU and working set only) or cadvisor
	// (/metrics/cadvisor: no page faults; heavier payloads).
	Endpoint string `yaml:"endpoint"`
	// Timeout bounds each scrape of a kubelet as a whole (its stats, disk
	// IO and /pods requests together), so a scrape never outlasts the
	// interval; 0 means 80 % of the interval, at most 10 s (see
	// ScrapeTimeout).
	Timeout time.Duration `yaml:"timeout"`
	// MaxBytes bounds each kubelet response, in bytes.
	MaxBytes int64 `yaml:"maxBytes"`
	// FetchPods reads the kubelet's /pods for requests, limits and owners.
	FetchPods bool `yaml:"fetchPods"`
	// DiskIO reads the kubelet's /metrics/cadvisor for what the Summary
	// API lacks: disk IO, CPU throttling (CFS) and OOM events (the flags
	// --kubelet-cadvisor and --kubelet-disk-io; the key keeps its first
	// name).
	DiskIO bool `yaml:"diskIO"`
	// BearerTokenFile, when set, holds the token sent to kubelets.
	BearerTokenFile string `yaml:"bearerTokenFile"`
	// InsecureSkipVerify skips verification of kubelets' certificates.
	InsecureSkipVerify bool `yaml:"insecureSkipVerify"`
	// CAFile verifies kubelets' serving certificates.
	CAFile string `yaml:"caFile"`
}

// Discovery says where the list of nodes comes from.
type Discovery struct {
	// Kubernetes discovers nodes, pods and owners from the Kubernetes API:
	// in-cluster when running in a pod, else from Kubeconfig (or
	// $KUBECONFIG, ~/.kube/config). It is on by itself in a pod when no
	// other discovery is configured.
	Kubernetes bool `yaml:"kubernetes"`
	// Kubeconfig is the kubeconfig file to use; it implies Kubernetes.
	Kubeconfig string `yaml:"kubeconfig"`
	// NodeProxy reaches every kubelet through the apiserver's node proxy
	// instead of directly (Kubernetes discovery only).
	NodeProxy bool `yaml:"nodeProxy"`
	// AddressTypes orders the node address types tried for direct access.
	AddressTypes []string `yaml:"addressTypes"`
	// NodesURL is polled for a v1.NodeList (an apiserver's /api/v1/nodes,
	// or `kubemon sim`'s).
	NodesURL string `yaml:"nodesURL"`
	// NodesFile is a file holding a v1.NodeList.
	NodesFile string `yaml:"nodesFile"`
	// KubeletScheme is the scheme used to reach kubelets: https or http.
	KubeletScheme string `yaml:"kubeletScheme"`
	// KubeletPort, when set, is the kubelet port used for every node
	// instead of the one each Node reports (Kubernetes discovery).
	KubeletPort int `yaml:"kubeletPort"`
	// APIServer, when set, is the apiserver's URL, overriding the
	// in-cluster or kubeconfig address (credentials stay theirs).
	APIServer string `yaml:"apiServer"`
	// AllowEmpty lets `kubemon serve` start with nothing to discover
	// (outside a pod, with none of the above set) and scrape nothing;
	// without it that is an error at start.
	AllowEmpty bool `yaml:"allowEmpty"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// DefaultMetricsDrop is what kubemon does not store unless told to: the
// page faults of every container and pod (minor and major, counters and
// rates: 4 of a container's 19 series and 4 of a pod's 25 when
// /metrics/cadvisor is not read).
// Their sums over namespaces, workloads, nodes and the cluster are kept,
// and no page, dashboard or default rule reads the per-object ones; on
// 1,000 nodes × 30 pods they are 360,000 of 2.1 million series
// (docs/performance.md).
func DefaultMetricsDrop() []string {
	return []string{"container_memory_*page_faults*", "pod_memory_*page_faults*"}
}

// MetricsSets are the named series sets of MetricsSet, each by the
// series it keeps; every series kubemon writes that it does not keep is
// dropped.
//   - default: all but DefaultMetricsDrop.
//   - large-cluster: what kubectl top, the HPA, the web UI's CPU and memory
//     pages and the default rules' node alerts read (their container alerts
//     then have nothing to read, and the rules warn of it at start); per
//     container its CPU counter and working set, per pod its CPU rate,
//     working set and info, per workload CPU and memory use, requests and
//     limits, per system container CPU rate and working set, and every
//     series of nodes, namespaces, the cluster and kubemon itself. On 1,000
//     nodes × 30 pods it stores 0.28 million series against the default's
//     1.7 million (docs/performance.md, "A large-cluster series set").
//   - all: every series.
var MetricsSets = map[string]func(model.Level, model.MetricID) bool{
	"default":       nil, // DefaultMetricsDrop, see MetricsSetDrop
	"large-cluster": largeCluster,
	"all":           func(model.Level, model.MetricID) bool { return true },
}

// largeCluster is the large-cluster set (see MetricsSets).
func largeCluster(l model.Level, m model.MetricID) bool {
	switch l {
	case model.LevelContainer:
		return m == model.CPUUsage || m == model.MemoryWorkingSet
	case model.LevelPod:
		return m == model.CPUUsageRate || m == model.MemoryWorkingSet || m == model.Info
	case model.LevelWorkload:
		return slices.Contains([]model.MetricID{model.CPUUsageRate, model.CPURequest, model.CPULimit,
			model.MemoryWorkingSet, model.MemoryRequest, model.MemoryLimit}, m)
	case model.LevelSysContainer:
		return m == model.CPUUsageRate || m == model.MemoryWorkingSet
	}
	return true
}

// MetricsSetDrop returns what the named set drops, as exact series names
// (store.Options.Drop), and false for an unknown name.
func MetricsSetDrop(name string) ([]string, bool) {
	keep, ok := MetricsSets[name]
	if !ok {
		return nil, false
	}
	if keep == nil {
		return DefaultMetricsDrop(), true
	}
	var drop []string
	for l := model.Level(0); l < model.NumLevels; l++ {
		for _, m := range model.Metrics {
			if m.Levels.Has(l) && !keep(l, m.ID) {
				drop = append(drop, model.PromName(l, m.ID))
			}
		}
	}
	return drop, true
}

// Drop returns the series not to store: MetricsSet's when it is set, else
// MetricsDrop.
func (c *Config) Drop() []string {
	if c.MetricsSet == "" {
		return c.MetricsDrop
	}
	drop, _ := MetricsSetDrop(c.MetricsSet)
	return drop
}

// Default returns the defaults.
func Default() Config {
	return Config{
		Listen:    ":8080",
		DataDir:   "data",
		Interval:  15 * time.Second,
		Retention: 15 * 24 * time.Hour,
		Auth:      AuthAuto,
		Query:     Query{MaxConcurrency: 20, Timeout: 2 * time.Minute, MaxSamples: 50_000_000},
		Shard:     Shard{Ring: "kubemon", ReplicationFactor: 2},
		Scrape: Scrape{
			Endpoint:  "summary",
			MaxBytes:  64 << 20,
			FetchPods: true,
		},
		Discovery:   Discovery{KubeletScheme: "https", AddressTypes: []string{"InternalIP", "Hostname", "ExternalIP"}},
		Log:         Log{Level: "info", Format: "text"},
		Events:      Events{Enabled: true, MaxSize: DefaultEventsMaxSize},
		Rules:       Rules{DefaultRules: true},
		MetricsDrop: DefaultMetricsDrop(),
	}
}

// Load reads the YAML file over c; unknown keys are errors.
func (c *Config) Load(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config %s: %w", file, err)
	}
	return nil
}

// ScrapeTimeout is the effective timeout of one kubelet request.
func (c *Config) ScrapeTimeout() time.Duration {
	if c.Scrape.Timeout > 0 {
		return c.Scrape.Timeout
	}
	return min(10*time.Second, c.Interval*4/5)
}

// Validate returns every problem of c.
func (c *Config) Validate() []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen %q: want host:port: %v", c.Listen, err)
	}
	if c.DataDir == "" {
		bad("dataDir: must be set")
	}
	if c.Interval < time.Second || c.Interval > time.Hour {
		bad("interval %s: want 1s to 1h", c.Interval)
	}
	if c.Retention < time.Hour {
		bad("retention %s: want at least 1h", c.Retention)
	}
	if c.RetentionSize < 0 {
		bad("retentionSize %d: must not be negative", c.RetentionSize)
	}
	if c.BlockDuration != 0 && (c.BlockDuration < time.Minute || (2*time.Hour)%c.BlockDuration != 0) {
		bad("blockDuration %s: want a divisor of 2h, at least 1m (e.g. 1h, 30m)", c.BlockDuration)
	}
	if c.Query.MaxConcurrency < 1 {
		bad("query.maxConcurrency %d: want at least 1", c.Query.MaxConcurrency)
	}
	if c.Query.Timeout < time.Second {
		bad("query.timeout %s: want at least 1s", c.Query.Timeout)
	}
	if c.Query.MaxSamples < 1 {
		bad("query.maxSamples %d: want at least 1", c.Query.MaxSamples)
	}
	if c.Shard.Enabled {
		if c.Shard.ReplicationFactor < 1 {
			bad("shard.replicationFactor %d: want at least 1", c.Shard.ReplicationFactor)
		}
	}
	for _, p := range c.Replica.Peers {
		if u, err := url.Parse(p); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("replica.peers %q: want http(s)://host:port of another replica's HTTP API", p)
		}
	}
	if c.Replica.PeerSelector != "" {
		if _, err := labels.Parse(c.Replica.PeerSelector); err != nil {
			bad("replica.peerSelector %q: %v", c.Replica.PeerSelector, err)
		}
	}
	if c.Query.URL != "" {
		if u, err := url.Parse(c.Query.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("query.url %q: want http(s)://host[:port][/path] of a Prometheus-compatible query API", c.Query.URL)
		}
	}
	switch c.Auth {
	case AuthAuto, AuthKubernetes, AuthNone:
	default:
		bad("auth %q: want auto, kubernetes or none", c.Auth)
	}
	if c.Scrape.Timeout < 0 || c.Scrape.Timeout > c.Interval {
		bad("scrape.timeout %s: want 0 (automatic) up to the interval (%s)", c.Scrape.Timeout, c.Interval)
	}
	switch c.Scrape.Endpoint {
	case "summary", "resource", "cadvisor":
	default:
		bad("scrape.endpoint %q: want summary, resource or cadvisor", c.Scrape.Endpoint)
	}
	if c.Scrape.MaxBytes < 1<<10 {
		bad("scrape.maxBytes %d: want at least 1024", c.Scrape.MaxBytes)
	}
	ways := 0
	for _, on := range []bool{c.Discovery.NodesURL != "", c.Discovery.NodesFile != "", c.Discovery.Kubernetes || c.Discovery.Kubeconfig != ""} {
		if on {
			ways++
		}
	}
	if ways > 1 {
		bad("discovery: set one of kubernetes (or kubeconfig), nodesURL and nodesFile")
	}
	if c.Discovery.NodeProxy && !c.Discovery.Kubernetes && c.Discovery.Kubeconfig == "" {
		bad("discovery.nodeProxy: needs Kubernetes discovery")
	}
	if c.Discovery.KubeletPort < 0 || c.Discovery.KubeletPort > 65535 {
		bad("discovery.kubeletPort %d: want a port number (0: each node's own)", c.Discovery.KubeletPort)
	}
	if (c.Discovery.KubeletPort != 0 || c.Discovery.APIServer != "") && !c.Discovery.Kubernetes && c.Discovery.Kubeconfig == "" {
		bad("discovery.kubeletPort and discovery.apiServer: need Kubernetes discovery")
	}
	if c.Discovery.APIServer != "" {
		if u, err := url.Parse(c.Discovery.APIServer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("discovery.apiServer %q: want an https URL", c.Discovery.APIServer)
		}
	}
	validateSinks(c.Sinks, bad)
	c.validateEvents(bad)
	validateAlerting(c, bad)
	for _, t := range c.Discovery.AddressTypes {
		switch t {
		case "InternalIP", "ExternalIP", "Hostname", "InternalDNS", "ExternalDNS":
		default:
			bad("discovery.addressTypes: unknown node address type %q", t)
		}
	}
	if s := c.Discovery.KubeletScheme; s != "http" && s != "https" {
		bad("discovery.kubeletScheme %q: want http or https", s)
	}
	if c.MetricsSet != "" {
		if _, ok := MetricsSets[c.MetricsSet]; !ok {
			bad("metricsSet %q: want default, large-cluster or all", c.MetricsSet)
		}
		if !slices.Equal(c.MetricsDrop, DefaultMetricsDrop()) {
			bad("metricsSet %q and metricsDrop %q: set one of them", c.MetricsSet, c.MetricsDrop)
		}
	}
	for _, pat := range c.MetricsDrop {
		if _, err := path.Match(pat, ""); err != nil {
			bad("metricsDrop %q: %v", pat, err)
			continue
		}
		matched := false
		for _, n := range model.SeriesNames() {
			ok, _ := path.Match(pat, n)
			matched = matched || ok
		}
		if !matched {
			bad("metricsDrop %q matches no series kubemon writes", pat)
		}
	}
	if l := c.MetricsAPI.Listen; l != "" {
		if _, _, err := net.SplitHostPort(l); err != nil {
			bad("metricsAPI.listen %q: want host:port: %v", l, err)
		} else if l == c.Listen {
			bad("metricsAPI.listen %q: the same address as listen", l)
		}
	}
	if c.MetricsAPI.Listen != "" {
		// The metrics API is computed from these series.
		for _, l := range []model.Level{model.LevelNode, model.LevelContainer} {
			for _, m := range []model.MetricID{model.CPUUsage, model.MemoryWorkingSet} {
				n := model.PromName(l, m)
				for _, pat := range c.Drop() {
					if ok, _ := path.Match(pat, n); ok {
						bad("metricsDrop %q drops %s, which the metrics API (metricsAPI.listen) serves", pat, n)
					}
				}
			}
		}
	}
	if u := c.MetricsAPI.FrontDoorUser; u != "" {
		if parts := strings.Split(u, ":"); len(parts) != 4 || parts[0] != "system" || parts[1] != "serviceaccount" || parts[2] == "" || parts[3] == "" {
			bad("metricsAPI.frontDoorUser %q: want system:serviceaccount:<namespace>:<name>", u)
		}
		if c.MetricsAPI.Listen == "" {
			bad("metricsAPI.frontDoorUser: needs metricsAPI.listen")
		}
	}
	if (c.MetricsAPI.CertFile == "") != (c.MetricsAPI.KeyFile == "") {
		bad("metricsAPI: set both certFile and keyFile, or neither for a self-signed certificate")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level %q: want debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format %q: want text or json", c.Log.Format)
	}
	return errs
}
