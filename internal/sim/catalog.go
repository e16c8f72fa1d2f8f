package sim

import (
	"math"
	"strconv"

	v1 "k8s.io/api/core/v1"
)

// Namespaces used by the simulated cluster.
var namespaces = []string{"default", "kube-system", "monitoring", "team-a", "team-b", "team-c"}

type workloadKind uint8

const (
	kindDeployment workloadKind = iota
	kindStatefulSet
	kindDaemonSet
	kindJob
	kindBarePod
)

// workload is the static description of a controller (or bare pod template)
// whose pods fill slots. Replicas of a workload share names, images and
// resource requests/limits; actual usage varies per slot.
type workload struct {
	name      string
	namespace string
	kind      workloadKind
	hash      string // pod-template-hash / controller-revision-hash, 10 chars
	ownerUID  string // UID of the owning controller (empty for Jobs and bare pods)
	qos       v1.PodQOSClass
	ctrs      []wlContainer
}

type wlContainer struct {
	name    string
	image   string
	imageID string
	// Typical usage around which slot usage is drawn.
	baseMilli float64 // CPU, millicores
	wsMiB     float64 // working set, MiB
	// Requests and limits; 0 means unset.
	cpuReq, cpuLim int64 // millicores
	memReq, memLim int64 // bytes
}

type sidecar struct{ name, image string }

var sidecars = []sidecar{
	{"istio-proxy", "docker.io/istio/proxyv2:1.24.2"},
	{"log-shipper", "cr.fluentbit.io/fluent/fluent-bit:3.2.4"},
	{"metrics-exporter", "quay.io/prometheus/statsd-exporter:v0.28.0"},
	{"config-reloader", "ghcr.io/stakater/reloader:v1.2.1"},
	{"oauth-proxy", "quay.io/oauth2-proxy/oauth2-proxy:v7.7.1"},
	{"cloud-sql-proxy", "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.2"},
}

type named struct{ name, image string }

var daemonSets = []struct {
	named
	namespace string
}{
	{named{"kube-proxy", "registry.k8s.io/kube-proxy:v1.36.0"}, "kube-system"},
	{named{"node-exporter", "quay.io/prometheus/node-exporter:v1.8.2"}, "monitoring"},
	{named{"fluent-bit", "cr.fluentbit.io/fluent/fluent-bit:3.2.4"}, "kube-system"},
}

var knownDeployments = map[string][]named{
	"kube-system": {
		{"coredns", "registry.k8s.io/coredns/coredns:v1.13.1"},
		{"metrics-server", "registry.k8s.io/metrics-server/metrics-server:v0.8.0"},
		{"cluster-autoscaler", "registry.k8s.io/autoscaling/cluster-autoscaler:v1.36.0"},
		{"ebs-csi-controller", "public.ecr.aws/ebs-csi-driver/aws-ebs-csi-driver:v1.38.1"},
	},
	"monitoring": {
		{"grafana", "docker.io/grafana/grafana:11.4.0"},
		{"kube-state-metrics", "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.14.0"},
		{"prometheus-operator", "quay.io/prometheus-operator/prometheus-operator:v0.79.2"},
	},
}

var knownStatefulSets = map[string][]named{
	"monitoring": {
		{"prometheus", "quay.io/prometheus/prometheus:v3.1.0"},
		{"alertmanager", "quay.io/prometheus/alertmanager:v0.28.0"},
		{"loki", "docker.io/grafana/loki:3.3.2"},
	},
}

var genericStatefulSets = []named{
	{"redis", "docker.io/library/redis:7.4.2"},
	{"postgres", "docker.io/library/postgres:17.2"},
	{"kafka", "docker.io/bitnami/kafka:3.9.0"},
	{"zookeeper", "docker.io/library/zookeeper:3.9.3"},
	{"mongodb", "docker.io/library/mongo:8.0.4"},
	{"rabbitmq", "docker.io/library/rabbitmq:4.0.5"},
	{"elasticsearch", "docker.elastic.co/elasticsearch/elasticsearch:8.17.0"},
	{"mysql", "docker.io/library/mysql:9.1.0"},
}

var (
	namePrefixes = []string{"api", "web", "auth", "billing", "cart", "checkout", "search", "catalog", "orders",
		"payments", "inventory", "notify", "reports", "users", "session", "gateway", "media", "analytics",
		"ledger", "shipping"}
	nameNouns = []string{"server", "worker", "frontend", "backend", "service", "consumer", "processor",
		"cache", "proxy", "scheduler"}
	jobNames  = []string{"backup", "report-gen", "db-migrate", "cleanup", "etl", "sync", "reindex"}
	bareNames = []string{"debug-shell", "toolbox", "netshoot", "busybox", "load-test"}
)

// buildCatalog deterministically creates the workload catalog for the cluster.
// The first nDS workloads are DaemonSets (one pod on every node).
func buildCatalog(seed uint64, nDS, k, ctrsPerPod int) []workload {
	used := make(map[string]bool, k)
	unique := func(ns, base string) string {
		name := base
		for i := 2; used[ns+"/"+name]; i++ {
			name = base + "-" + strconv.Itoa(i)
		}
		used[ns+"/"+name] = true
		return name
	}
	wls := make([]workload, k)
	for w := range wls {
		r := newRNG(seed, tagWorkload, uint64(w), 0, 0)
		wl := &wls[w]
		var main named
		if w < nDS {
			ds := daemonSets[w]
			wl.kind, wl.namespace, main = kindDaemonSet, ds.namespace, ds.named
		} else {
			x := r.float()
			switch {
			case x < 0.76:
				wl.kind = kindDeployment
			case x < 0.88:
				wl.kind = kindStatefulSet
			case x < 0.96:
				wl.kind = kindJob
			default:
				wl.kind = kindBarePod
			}
			y := r.float()
			switch wl.kind {
			case kindDeployment, kindStatefulSet:
				switch {
				case y < 0.10:
					wl.namespace = "default"
				case y < 0.18:
					wl.namespace = "kube-system"
				case y < 0.30:
					wl.namespace = "monitoring"
				default:
					wl.namespace = namespaces[3+r.intn(3)]
				}
			case kindJob:
				wl.namespace = namespaces[3+r.intn(3)]
			case kindBarePod:
				if y < 0.5 {
					wl.namespace = "default"
				} else {
					wl.namespace = namespaces[3+r.intn(3)]
				}
			}
			main = pickMainName(&r, wl.kind, wl.namespace, used)
		}
		wl.name = unique(wl.namespace, main.name)
		wl.hash = randString(hash4(seed, tagWorkload, uint64(w), 1, 0), 10)
		if wl.kind == kindDeployment || wl.kind == kindStatefulSet || wl.kind == kindDaemonSet {
			wl.ownerUID = uuidFrom(hash4(seed, tagOwnerUID, uint64(w), 0, 0), hash4(seed, tagOwnerUID, uint64(w), 1, 0))
		}
		q := r.float()
		switch {
		case q < 0.05 && wl.kind != kindDaemonSet:
			wl.qos = v1.PodQOSBestEffort
		case q < 0.15:
			wl.qos = v1.PodQOSGuaranteed
		default:
			wl.qos = v1.PodQOSBurstable
		}
		wl.ctrs = make([]wlContainer, ctrsPerPod)
		sideStart := int(r.intn(int64(len(sidecars))))
		for ci := range wl.ctrs {
			cr := newRNG(seed, tagWorkloadCtr, uint64(w), uint64(ci), 0)
			wc := &wl.ctrs[ci]
			switch {
			case ci == 0:
				wc.name, wc.image = main.name, main.image
				wc.baseMilli = cr.logUniform(10, 800)
				wc.wsMiB = cr.logUniform(16, 512)
			case ci-1 < len(sidecars):
				sc := sidecars[(sideStart+ci-1)%len(sidecars)]
				wc.name, wc.image = sc.name, sc.image
				wc.baseMilli = cr.logUniform(10, 150)
				wc.wsMiB = cr.logUniform(16, 128)
			default:
				wc.name = "sidecar-" + strconv.Itoa(ci)
				wc.image = "docker.io/library/busybox:1.37.0"
				wc.baseMilli = cr.logUniform(10, 100)
				wc.wsMiB = cr.logUniform(16, 64)
			}
			wc.imageID = imageRepo(wc.image) + "@sha256:" + hex64(hash4(0, tagImage, stringHash(wc.image), 0, 0))
			// Peak usage of any slot: jitter (≤1.25) × sinusoid (≤1.6) for CPU,
			// jitter (≤1.2) × (1 + 10%) for memory.
			peakCPU := math.Min(800, wc.baseMilli*1.25) * 1.6
			peakMiB := math.Min(512, wc.wsMiB*1.2)*1.1 + 64
			switch wl.qos {
			case v1.PodQOSGuaranteed:
				wc.cpuReq = roundUp(int64(peakCPU*cr.uniform(1.05, 1.5)), 10)
				wc.cpuLim = wc.cpuReq
				wc.memReq = roundUp(int64(peakMiB*cr.uniform(1.1, 1.6)), 16) << 20
				wc.memLim = wc.memReq
			case v1.PodQOSBurstable:
				noReq := ci > 0 && cr.chance(0.08)
				if !noReq {
					// As on real clusters, most requests are above the
					// typical usage (often far above it), some below.
					wc.cpuReq = roundUp(int64(wc.baseMilli*cr.logUniform(0.5, 4)), 5)
					wc.memReq = roundUp(int64(wc.wsMiB*cr.logUniform(0.6, 3)), 8) << 20
				}
				if cr.chance(0.5) {
					wc.cpuLim = roundUp(int64(peakCPU*cr.uniform(1.05, 2)), 50)
				}
				if cr.chance(0.75) || (ci == 0 && noReq) {
					wc.memLim = roundUp(int64(peakMiB*cr.uniform(1.1, 2)), 16) << 20
				}
				if noReq && wc.cpuLim == 0 && wc.memLim == 0 {
					wc.memLim = roundUp(int64(peakMiB*1.5), 16) << 20
				}
				// A request may not exceed its limit (the apiserver
				// refuses such a pod).
				if wc.cpuLim > 0 {
					wc.cpuReq = min(wc.cpuReq, wc.cpuLim)
				}
				if wc.memLim > 0 {
					wc.memReq = min(wc.memReq, wc.memLim)
				}
			}
		}
	}
	return wls
}

// pickMainName chooses the workload's base name and main image. Well-known
// names (coredns, prometheus, ...) are used at most once per namespace.
func pickMainName(r *rng, k workloadKind, ns string, used map[string]bool) named {
	switch k {
	case kindStatefulSet:
		if list := knownStatefulSets[ns]; len(list) > 0 && r.chance(0.7) {
			if n := list[r.intn(int64(len(list)))]; !used[ns+"/"+n.name] {
				return n
			}
		}
		return genericStatefulSets[r.intn(int64(len(genericStatefulSets)))]
	case kindJob:
		n := jobNames[r.intn(int64(len(jobNames)))]
		return named{n, "registry.sim.local/" + ns + "/" + n + ":" + version(r)}
	case kindBarePod:
		n := bareNames[r.intn(int64(len(bareNames)))]
		return named{n, "docker.io/nicolaka/netshoot:v0.13"}
	}
	if list := knownDeployments[ns]; len(list) > 0 && r.chance(0.6) {
		if n := list[r.intn(int64(len(list)))]; !used[ns+"/"+n.name] {
			return n
		}
	}
	n := namePrefixes[r.intn(int64(len(namePrefixes)))] + "-" + nameNouns[r.intn(int64(len(nameNouns)))]
	return named{n, "registry.sim.local/" + ns + "/" + n + ":" + version(r)}
}

func version(r *rng) string {
	return "v" + strconv.FormatInt(r.between(1, 3), 10) + "." + strconv.FormatInt(r.intn(20), 10) + "." + strconv.FormatInt(r.intn(10), 10)
}

func roundUp(v, m int64) int64 {
	if v < m {
		return m
	}
	return (v + m - 1) / m * m
}

// imageRepo strips the tag from an image reference.
func imageRepo(image string) string {
	for i := len(image) - 1; i >= 0; i-- {
		switch image[i] {
		case ':':
			return image[:i]
		case '/':
			return image
		}
	}
	return image
}

func stringHash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
