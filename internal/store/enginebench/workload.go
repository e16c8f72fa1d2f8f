// Package enginebench compares two storage engines for kubemon's series on
// kubemon's own workload: the Prometheus TSDB that internal/store embeds,
// and VictoriaMetrics' storage (lib/storage) used as a library. Both get
// the same data from Workload, a generator of container-shaped series
// (kubemon's 30 container series names, labelled namespace, pod, container
// and node) whose samples are pure functions of the series and the cycle,
// so a test can say what each engine must return.
//
// The benchmarks (bench_test.go) print ingest CPU, memory, disk bytes and
// query latency; docs/architecture.md records the figures and the decision.
package enginebench

import (
	"math"
	"strconv"
	"time"
)

// Interval is kubemon's default collection interval.
const Interval = 15 * time.Second

// Label keys of a container series, besides the name.
const (
	LabelNamespace = "namespace"
	LabelPod       = "pod"
	LabelContainer = "container"
	LabelNode      = "node"
)

// Layout of the simulated cluster: pods per node and containers per pod, as
// the 1,000 × 30 × 2 scale point kubemon is measured at.
const (
	PodsPerNode      = 30
	ContainersPerPod = 2
	numNamespaces    = 50
	podsPerDeploy    = 4
)

type kind uint8

const (
	kindConst   kind = iota // a spec value: requests, limits, restarts
	kindZero                // a value that stays 0 (OOM kills, crash loop)
	kindSeconds             // a counter of seconds, read as nanoseconds
	kindCount               // an integer counter (periods, faults, bytes)
	kindRate                // the per-second rate of the counter before it
	kindBytes               // a gauge of bytes that wanders, in pages
	kindUptime              // seconds since the container started
	kindRatio               // a 0–1 ratio that wanders
)

type metricDef struct {
	name string
	kind kind
	// scale is the counter's mean rate per second, the gauge's mean or the
	// constant's magnitude.
	scale float64
}

// Metrics are kubemon's container series (internal/model's contract,
// testdata/series.golden), in the contract's order, each with how its
// values behave. A rate follows its counter.
var Metrics = [...]metricDef{
	{"container_cpu_usage_seconds_total", kindSeconds, 0.25},
	{"container_cpu_usage_cores", kindRate, 0},
	{"container_cpu_request_cores", kindConst, 0.25},
	{"container_cpu_limit_cores", kindConst, 1},
	{"container_cpu_cfs_periods_total", kindCount, 6},
	{"container_cpu_cfs_periods_per_second", kindRate, 0},
	{"container_cpu_cfs_throttled_periods_total", kindCount, 0.3},
	{"container_cpu_cfs_throttled_periods_per_second", kindRate, 0},
	{"container_cpu_cfs_throttled_seconds_total", kindSeconds, 0.02},
	{"container_cpu_cfs_throttled_seconds_per_second", kindRate, 0},
	{"container_cpu_cfs_throttled_ratio", kindRatio, 0.05},
	{"container_memory_usage_bytes", kindBytes, 300 << 20},
	{"container_memory_working_set_bytes", kindBytes, 200 << 20},
	{"container_memory_rss_bytes", kindBytes, 150 << 20},
	{"container_memory_page_faults_total", kindCount, 400},
	{"container_memory_page_faults_per_second", kindRate, 0},
	{"container_memory_major_page_faults_total", kindCount, 0.05},
	{"container_memory_major_page_faults_per_second", kindRate, 0},
	{"container_memory_request_bytes", kindConst, 256 << 20},
	{"container_memory_limit_bytes", kindConst, 512 << 20},
	{"container_oom_kills_total", kindZero, 0},
	{"container_oom_kills_per_second", kindZero, 0},
	{"container_filesystem_usage_bytes", kindBytes, 80 << 20},
	{"container_disk_io_read_bytes_total", kindCount, 20000},
	{"container_disk_io_read_bytes_per_second", kindRate, 0},
	{"container_disk_io_write_bytes_total", kindCount, 60000},
	{"container_disk_io_write_bytes_per_second", kindRate, 0},
	{"container_uptime_seconds", kindUptime, 0},
	{"container_restart_count", kindConst, 1},
	{"container_crash_loop_backoff", kindZero, 0},
}

// NumMetrics is how many series each container has.
const NumMetrics = len(Metrics)

// CPUMetric is the index of container_cpu_usage_cores in Metrics, the
// series the benchmark's queries read.
const CPUMetric = 1

// Series are the labels of one series.
type Series struct {
	Name, Namespace, Pod, Container, Node string
}

type pod struct {
	name, namespace, node string
	containers            [ContainersPerPod]string
}

// Workload is a cluster's container series and their samples. Series i is
// metric i%NumMetrics of container i/NumMetrics; containers are laid out
// node by node, so a node's series are one contiguous range (one batch, as
// kubemon appends a node's scrape at once).
type Workload struct {
	containers int
	pods       []pod
	// Start is the first cycle's timestamp, in milliseconds.
	Start int64
}

var namespaceWords = [...]string{
	"default", "kube-system", "monitoring", "logging", "ingress-nginx",
	"cert-manager", "payments", "checkout", "catalog", "search",
	"recommendations", "accounts", "auth", "billing", "shipping",
	"inventory", "orders", "notifications", "analytics", "data-pipeline",
	"ml-serving", "frontend", "backend", "gateway", "cache",
	"messaging", "streaming", "reporting", "batch", "ci",
	"argocd", "istio-system", "vault", "keycloak", "grafana",
	"team-alpha", "team-bravo", "team-charlie", "team-delta", "team-echo",
	"staging", "qa", "sandbox", "partners", "mobile-api",
	"media", "uploads", "geo", "pricing", "fraud",
}

var deployWords = [...]string{
	"api", "web", "worker", "scheduler", "consumer", "producer", "proxy",
	"cache", "db-proxy", "indexer", "renderer", "sync", "exporter",
	"controller", "webhook", "gateway", "frontend", "backend", "cron",
	"ingester", "querier", "compactor", "agent", "collector",
}

var sidecars = [...]string{"istio-proxy", "envoy", "fluent-bit", "oauth2-proxy", "linkerd-proxy"}

// hashAlphabet is the characters of Kubernetes' generated name suffixes
// (k8s.io/apimachinery's rand.SafeEncodeString).
const hashAlphabet = "bcdfghjklmnpqrstvwxz2456789"

// New lays out a cluster with at least series series (rounded up to whole
// containers) whose first sample is at start.
func New(series int, start time.Time) *Workload {
	containers := (series + NumMetrics - 1) / NumMetrics
	npods := (containers + ContainersPerPod - 1) / ContainersPerPod
	w := &Workload{containers: containers, pods: make([]pod, npods), Start: start.UnixMilli()}
	deploys := max(1, npods/podsPerDeploy)
	for p := range w.pods {
		// Replicas of a deployment are spread across nodes: the pod in slot
		// p belongs to a deployment chosen by hash.
		d := int(mix(uint64(p), 0xd3) % uint64(deploys))
		ns := namespaceWords[d%numNamespaces]
		word := deployWords[int(mix(uint64(d), 0x77)%uint64(len(deployWords)))]
		deploy := word + "-" + strconv.Itoa(d/numNamespaces)
		name := deploy + "-" + suffix(mix(uint64(d), 0x99), 10) + "-" + suffix(mix(uint64(p), 0x55), 5)
		w.pods[p] = pod{
			name:      name,
			namespace: ns,
			node:      nodeName(p / PodsPerNode),
			containers: [ContainersPerPod]string{
				word,
				sidecars[int(mix(uint64(d), 0x31)%uint64(len(sidecars)))],
			},
		}
	}
	return w
}

func nodeName(n int) string {
	s := strconv.Itoa(n + 1)
	for len(s) < 4 {
		s = "0" + s
	}
	return "node-" + s
}

func suffix(h uint64, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = hashAlphabet[h%uint64(len(hashAlphabet))]
		h /= uint64(len(hashAlphabet))
		if h == 0 {
			h = mix(uint64(i), 0xabc)
		}
	}
	return string(b)
}

// Len is the number of series.
func (w *Workload) Len() int { return w.containers * NumMetrics }

// Nodes is the number of nodes (batches a cycle).
func (w *Workload) Nodes() int {
	return (len(w.pods) + PodsPerNode - 1) / PodsPerNode
}

// NodeRange is the range [lo, hi) of node n's series.
func (w *Workload) NodeRange(n int) (lo, hi int) {
	per := PodsPerNode * ContainersPerPod * NumMetrics
	return min(n*per, w.Len()), min((n+1)*per, w.Len())
}

// Series returns series i's labels.
func (w *Workload) Series(i int) Series {
	c := i / NumMetrics
	p := &w.pods[c/ContainersPerPod]
	return Series{
		Name:      Metrics[i%NumMetrics].name,
		Namespace: p.namespace,
		Pod:       p.name,
		Container: p.containers[c%ContainersPerPod],
		Node:      p.node,
	}
}

// Time is cycle c's timestamp in milliseconds.
func (w *Workload) Time(c int) int64 { return w.Start + int64(c)*Interval.Milliseconds() }

// Containers lists the container indexes of the CPU series (the series
// index is container*NumMetrics+CPUMetric) whose labels match: an empty
// namespace or pod matches any.
func (w *Workload) Containers(namespace, pod string) []int {
	var out []int
	for c := range w.containers {
		p := &w.pods[c/ContainersPerPod]
		if (namespace == "" || p.namespace == namespace) && (pod == "" || p.name == pod) {
			out = append(out, c)
		}
	}
	return out
}

// Value is series i's sample at cycle c: deterministic, the same for every
// engine. Counters rise (cumulative sums of a wandering rate, CPU seconds
// kept to the nanosecond as the kubelet reports them), rates are the
// counters' differences over the interval (full-precision floats), byte
// gauges wander by pages, constants stay.
func (w *Workload) Value(i, c int) float64 {
	m := i % NumMetrics
	cont := uint64(i / NumMetrics)
	d := &Metrics[m]
	switch d.kind {
	case kindRate:
		return (w.Value(i-1, c) - w.Value(i-1, c-1)) / Interval.Seconds()
	case kindZero:
		return 0
	case kindConst:
		// 0.1 … 1.6 × scale, in steps (requests of 100m, 250m, …); restart
		// counts 0 for most containers.
		if d.name == "container_restart_count" {
			h := mix(cont, 0x5e)
			if h%10 < 7 {
				return 0
			}
			return float64(h % 5)
		}
		step := mix(cont, uint64(m)) % 4
		return d.scale * [4]float64{0.4, 1, 2, 4}[step]
	}
	// Seconds since the container started: containers started up to a day
	// before the first cycle.
	start := float64(mix(cont, 0x17)%86400) + 15
	t := start + float64(c)*Interval.Seconds()
	u := unit(mix(cont, uint64(m)+100)) // per-series spread
	phase := 2 * math.Pi * unit(mix(cont, uint64(m)+200))
	switch d.kind {
	case kindUptime:
		return t
	case kindRatio:
		return d.scale * (1 + 0.8*math.Sin(t/600+phase)) * (0.5 + unit(mix(cont^uint64(c), 0x3a)))
	case kindBytes:
		base := d.scale * (0.3 + 1.4*u)
		v := base*(1+0.15*math.Sin(t/1800+phase)) + base*0.02*(unit(mix(cont^uint64(c)<<8, uint64(m)))-0.5)
		return math.Floor(v/4096) * 4096
	}
	// A counter: the integral of a rate that wanders around its mean
	// (rate·(1 + 0.6·sin(ωt+φ)), never negative) plus a slow second wave.
	r := d.scale * (0.05 + 1.9*u)
	const w1, w2 = 2 * math.Pi / 900, 2 * math.Pi / 5400
	v := r * (t + 0.6*(math.Cos(phase)-math.Cos(w1*t+phase))/w1 + 0.3*(math.Cos(phase)-math.Cos(w2*t+phase))/w2)
	if d.kind == kindSeconds {
		return math.Floor(v*1e9) / 1e9
	}
	return math.Floor(v)
}

// mix is a 64-bit hash of x and a salt (splitmix64's finalizer).
func mix(x, salt uint64) uint64 {
	x ^= salt * 0x9e3779b97f4a7c15
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// unit maps a hash to [0, 1).
func unit(h uint64) float64 { return float64(h>>11) / (1 << 53) }

// StartFor is where a run of cycles should start so that its last sample
// is at about now and the run stays inside one of the TSDB's 2-hour head
// block ranges (a run across a boundary would cut every series' chunk in
// two and skew the bytes a sample takes).
func StartFor(now time.Time, cycles int) time.Time {
	const block = 2 * time.Hour
	end := now.Truncate(Interval)
	span := time.Duration(cycles-1) * Interval
	if start := end.Add(-span); !start.Truncate(block).Equal(end.Truncate(block)) {
		end = end.Truncate(block).Add(-Interval)
	}
	return end.Add(-span)
}
