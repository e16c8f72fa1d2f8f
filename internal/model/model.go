// Package model holds kubemon's typed data: the objects it monitors, the
// values a scrape or a roll-up gives each of them (Entry, Batch), the pods'
// and nodes' metadata, the metric vocabulary (metrics.go) and the series
// contract derived from it (contract.go): every series name and label key
// kubemon writes. It depends on nothing else in kubemon.
package model

import (
	"math"
	"time"
)

// Level is the aggregation level of an Object. Heapster calls it "type".
type Level uint8

// The levels, from the leaves up.
const (
	LevelContainer Level = iota
	LevelPod
	LevelNamespace
	LevelWorkload
	LevelNode
	LevelSysContainer
	LevelCluster
	// LevelKubemon is kubemon itself: its sinks' lag, its store's size.
	LevelKubemon
	NumLevels
)

var levelInfo = [NumLevels]struct{ prom, heapster string }{
	LevelContainer:    {"container", "pod_container"},
	LevelPod:          {"pod", "pod"},
	LevelNamespace:    {"namespace", "ns"},
	LevelWorkload:     {"workload", "workload"},
	LevelNode:         {"node", "node"},
	LevelSysContainer: {"system_container", "sys_container"},
	LevelCluster:      {"cluster", "cluster"},
	LevelKubemon:      {"kubemon", "kubemon"},
}

// Prefix is the level's Prometheus metric-name prefix ("container", "pod", ...).
func (l Level) Prefix() string { return levelInfo[l].prom }

// Heapster is the level's Heapster "type" tag value ("pod_container", "ns", ...).
func (l Level) Heapster() string { return levelInfo[l].heapster }

func (l Level) String() string { return l.Prefix() }

// LevelSet is a set of levels, one bit each.
type LevelSet uint16

// Has reports whether l is in the set.
func (s LevelSet) Has(l Level) bool { return s&(1<<l) != 0 }

// Levels builds a LevelSet.
func Levels(ls ...Level) LevelSet {
	var s LevelSet
	for _, l := range ls {
		s |= 1 << l
	}
	return s
}

// Object identifies one monitored thing. It is comparable and used as a map
// key; only the fields that make sense for its Level are set:
//
//	container:        Node, Namespace, Pod, Container
//	pod:              Node, Namespace, Pod
//	namespace:        Namespace
//	workload:         Namespace, WorkloadKind, Workload
//	node:             Node
//	system_container: Node, Container
//	cluster:          (nothing)
//	kubemon:          Sink for a sink's series, else nothing
type Object struct {
	Level        Level
	Node         string
	Namespace    string
	Pod          string
	Container    string
	WorkloadKind string // Deployment, StatefulSet, DaemonSet, Job, CronJob, ReplicaSet, Pod
	Workload     string
	Sink         string // a sink's name (kubemon level)
}

// Values holds one value per metric, indexed by MetricID. Absent values are
// NaN: absent is not zero.
type Values [NumMetrics]float64

// NewValues returns Values with every metric absent.
func NewValues() Values {
	var v Values
	for i := range v {
		v[i] = math.NaN()
	}
	return v
}

// Has reports whether metric m has a value.
func (v *Values) Has(m MetricID) bool { return !math.IsNaN(v[m]) }

// EntriesHeadroom is the room a decoder leaves at the end of a node's
// entries for what the pipeline appends to them (the node's KubeletUp, the
// Gone entries of vanished objects, pods without stats): an Entry is over
// half a kilobyte, and a full slice would be copied whole each scrape.
const EntriesHeadroom = 8

// Entry is one object's values in one cycle.
type Entry struct {
	Object Object
	// Time is when the values were observed, in Unix milliseconds.
	Time int64
	// Start is when the object (container, pod, node) last started, in Unix
	// milliseconds; 0 when unknown. A change of Start is a restart.
	Start  int64
	Values Values
	// CadvisorTime is when the metrics read from /metrics/cadvisor (disk
	// IO) were observed, in Unix milliseconds; 0 when none were.
	CadvisorTime int64
	// Pod is the pod's metadata, on pod and container entries when known.
	Pod *PodMeta
	// Labels are a namespace entry's Kubernetes labels, when known (a pod's
	// are in Pod).
	Labels map[string]string
	// Gone marks an object that was there before and is no longer (a pod
	// deleted, a container removed): its series end at Time, with
	// Prometheus staleness markers. Values are ignored.
	Gone bool
	// OOMEvents is cAdvisor's container_oom_events_total of a container's
	// current cgroup (OOM kills in this run of the container; 0 when
	// /metrics/cadvisor was not read). The pipeline counts its rises into
	// OOMKills.
	OOMEvents float64
}

// TimeOf is when metric m of the entry was observed, in Unix milliseconds.
func (e *Entry) TimeOf(m MetricID) int64 {
	if Metrics[m].Endpoint == EndpointCadvisor && e.CadvisorTime != 0 {
		return e.CadvisorTime
	}
	return e.Time
}

// ContainerMeta is what a pod spec and status say about one container.
type ContainerMeta struct {
	Name string
	// CPURequest and CPULimit are in cores; MemoryRequest and MemoryLimit in
	// bytes. NaN when the spec does not set them.
	CPURequest, CPULimit       float64
	MemoryRequest, MemoryLimit float64
	// Restarts is the container's restart count from the pod status.
	Restarts int32
	// Waiting is the reason the container waits, from the pod status
	// (CrashLoopBackOff, ContainerCreating, ImagePullBackOff ...); "" when
	// it runs or has terminated. A container terminated again after
	// restarts, which its pod's restart policy restarts, waits in
	// CrashLoopBackOff too (the kubelet holds back its restart, while the
	// status of a v1.36 kubelet mostly shows it terminated).
	Waiting string
	// LastTermination is how the container's previous run ended (the pod
	// status' lastState.terminated); zero when it never restarted.
	LastTermination Termination
}

// Reasons of container states in a pod status, as the kubelet writes them.
const (
	ReasonOOMKilled        = "OOMKilled"
	ReasonCrashLoopBackOff = "CrashLoopBackOff"
)

// Termination is how one run of a container ended.
type Termination struct {
	// Reason is the kubelet's: OOMKilled, Error, Completed, ...
	Reason   string
	ExitCode int32
	// Started and Finished are the run's start and end, in Unix
	// milliseconds (second precision, as the API has them); 0 when unknown.
	Started, Finished int64
	// ContainerID is the run's runtime ID, "containerd://<id>".
	ContainerID string
}

// PodMeta is what kubemon knows about a pod from its spec and status.
type PodMeta struct {
	Namespace    string
	Name         string
	UID          string
	Node         string
	Labels       map[string]string
	WorkloadKind string // kind of the top owner: Deployment, StatefulSet, DaemonSet, Job, CronJob, ReplicaSet; "" for a bare pod
	Workload     string // name of the top owner
	// Phase is the pod's phase: Pending, Running, Succeeded, Failed.
	Phase      string
	Containers []ContainerMeta
}

// PhaseRunning is the phase of a pod bound to a node whose containers were
// created (some may be waiting to be restarted).
const PhaseRunning = "Running"

// NodeMeta is what kubemon knows about a node from the Node object.
type NodeMeta struct {
	Name   string
	Labels map[string]string
	// Capacity and allocatable CPU are in cores, memory in bytes; NaN when unknown.
	CPUCapacity, CPUAllocatable       float64
	MemoryCapacity, MemoryAllocatable float64
}

// NodeStats is one node's scrape result: raw values for the node, its
// system containers, pods and containers, plus the pod metadata used to
// enrich them.
type NodeStats struct {
	Node string
	// ScrapeTime is when the scrape started.
	ScrapeTime time.Time
	Entries    []Entry
	Pods       []PodMeta
}

// Batch is the output of one pipeline cycle: every entry at every level.
type Batch struct {
	// Time is the cycle's time.
	Time    time.Time
	Entries []Entry
}

// Target is one node to scrape.
type Target struct {
	// Node is the node's name.
	Node string
	// URL is the base URL of the node's kubelet, e.g. https://10.0.0.5:10250,
	// or of the apiserver's node proxy for it.
	URL  string
	Meta NodeMeta
}

// The label keys of kubemon's series. With the series names (PromName) they
// are kubemon's public contract: every package spells them through these.
const (
	LabelNamespace    = "namespace"
	LabelPod          = "pod"
	LabelContainer    = "container"
	LabelNode         = "node"
	LabelWorkloadKind = "workload_kind"
	LabelWorkload     = "workload"
	// LabelKubeLabels is an info series' label carrying the object's
	// Kubernetes labels in Heapster's form ("k:v,...").
	LabelKubeLabels = "labels"
	// LabelKubeLabelPrefix prefixes each Kubernetes label of an info series
	// ("label_<sanitized name>").
	LabelKubeLabelPrefix = "label_"
	// LabelSink names one of kubemon's sinks (as configured, or
	// <type>-<n>) on its kubemon-level series.
	LabelSink = "sink"
)

// levelLabels are the label keys identifying an object of each level.
var levelLabels = [NumLevels][]string{
	LevelContainer:    {LabelNamespace, LabelPod, LabelContainer, LabelNode},
	LevelPod:          {LabelNamespace, LabelPod, LabelNode},
	LevelNamespace:    {LabelNamespace},
	LevelWorkload:     {LabelNamespace, LabelWorkloadKind, LabelWorkload},
	LevelNode:         {LabelNode},
	LevelSysContainer: {LabelContainer, LabelNode},
	LevelCluster:      nil,
	LevelKubemon:      nil,
}

// LabelKeys lists the label keys identifying an object of level l (the
// series of such an object carry them, each when its value is not empty).
// The slice must not be modified.
func (l Level) LabelKeys() []string { return levelLabels[l] }

// Label is the object's value of label key k ("" for a key its level has not).
func (o Object) Label(k string) string {
	switch k {
	case LabelNamespace:
		return o.Namespace
	case LabelPod:
		return o.Pod
	case LabelContainer:
		return o.Container
	case LabelNode:
		return o.Node
	case LabelWorkloadKind:
		return o.WorkloadKind
	case LabelWorkload:
		return o.Workload
	case LabelSink:
		return o.Sink
	}
	return ""
}
