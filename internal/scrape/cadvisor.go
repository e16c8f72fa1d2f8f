package scrape

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"

	"github.com/kubemon/kubemon/internal/model"
)

// cgroupKey names a cgroup in cAdvisor's series: a container (all set), a
// pod's own cgroup (Container empty) or the node's root (all empty).
type cgroupKey struct{ Namespace, Pod, Container string }

// DiskIO is a cgroup's cumulative block-device traffic, in bytes, summed
// over devices, and when cAdvisor observed it (Unix ms; 0 when the
// exposition has no timestamps, as before Kubernetes 1.16).
type DiskIO struct {
	Read, Write float64
	Time        int64
}

// Extras are what /metrics/cadvisor says of a cgroup that the Summary API
// does not: disk IO, CPU throttling (CFS) and OOM events. Absent values are
// NaN (CFS counters exist only for cgroups with a CPU quota).
type Extras struct {
	DiskIO
	// CFSPeriods and CFSThrottledPeriods count enforcement periods;
	// CFSThrottledTime is in seconds.
	CFSPeriods, CFSThrottledPeriods, CFSThrottledTime float64
	// OOMEvents is container_oom_events_total: OOM kills cAdvisor saw in
	// this cgroup (a container's current run).
	OOMEvents float64
}

// cadvisorFamilies maps the cAdvisor families kubemon reads to its metrics.
// Disk IO comes as container_fs_{reads,writes}_bytes_total or, from newer
// kubelets only, as container_blkio_device_usage_total{operation}.
var cadvisorFamilies = map[string]model.MetricID{
	"container_cpu_usage_seconds_total":         model.CPUUsage,
	"container_memory_working_set_bytes":        model.MemoryWorkingSet,
	"container_memory_usage_bytes":              model.MemoryUsage,
	"container_memory_rss":                      model.MemoryRSS,
	"container_fs_usage_bytes":                  model.FilesystemUsage,
	"container_network_receive_bytes_total":     model.NetworkRx,
	"container_network_receive_errors_total":    model.NetworkRxErrors,
	"container_network_transmit_bytes_total":    model.NetworkTx,
	"container_network_transmit_errors_total":   model.NetworkTxErrors,
	"container_fs_reads_bytes_total":            model.DiskIORead,
	"container_fs_writes_bytes_total":           model.DiskIOWrite,
	"container_blkio_device_usage_total":        model.DiskIORead, // or DiskIOWrite, by operation
	"container_start_time_seconds":              model.Uptime,     // read as the start time
	"container_cpu_cfs_periods_total":           model.CFSPeriods,
	"container_cpu_cfs_throttled_periods_total": model.CFSThrottledPeriods,
	"container_cpu_cfs_throttled_seconds_total": model.CFSThrottledTime,
	"container_oom_events_total":                model.OOMKills, // cAdvisor's per-cgroup count: Entry.OOMEvents
}

// extraMetrics are the metrics read from /metrics/cadvisor beside another
// source (Extras), stamped with their own time (Entry.CadvisorTime).
var extraMetrics = []model.MetricID{model.DiskIORead, model.DiskIOWrite, model.CFSPeriods, model.CFSThrottledPeriods, model.CFSThrottledTime, model.OOMKills}

func isExtra(m model.MetricID) bool {
	for _, x := range extraMetrics {
		if m == x {
			return true
		}
	}
	return false
}

// cgroupSample is what one cAdvisor exposition says of one cgroup.
type cgroupSample struct {
	values model.Values
	blkio  [2]float64 // read, write from container_blkio_device_usage_total; NaN when absent
	time   int64      // newest sample timestamp but the extras', Unix ms
	ioTime int64      // newest timestamp of the extras (disk IO, CFS, OOM events), Unix ms
	start  int64      // Unix ms
	eth0   [4]float64 // the node's eth0 network counters, preferred over the sum of interfaces
	rootFS float64    // the node's largest block-device filesystem usage
}

// parseCadvisor reads a /metrics/cadvisor exposition (Prometheus text)
// into per-cgroup values: containers, pod cgroups (and docker's "POD"
// pause containers, for pod networking) and the node's root cgroup
// (id="/"). Values of several devices or interfaces are summed.
func parseCadvisor(data []byte) (map[cgroupKey]*cgroupSample, error) {
	p := textparse.NewPromParser(data, labels.NewSymbolTable(), false)
	out := map[cgroupKey]*cgroupSample{}
	var lset labels.Labels
	for {
		et, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("decode cadvisor metrics: %w", err)
		}
		if et != textparse.EntrySeries {
			continue
		}
		series, ts, v := p.Series()
		if !bytes.HasPrefix(series, []byte("container_")) {
			continue
		}
		p.Labels(&lset)
		name := lset.Get(labels.MetricName)
		m, ok := cadvisorFamilies[name]
		if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		key, ok := cgroupOf(lset)
		if !ok {
			continue
		}
		if key.Container == "POD" { // docker's pause container: only its network is the pod's
			if m < model.NetworkRx || m > model.NetworkTxErrorsRate {
				continue
			}
			key.Container = ""
		}
		c := out[key]
		if c == nil {
			c = &cgroupSample{values: model.NewValues(), blkio: [2]float64{math.NaN(), math.NaN()}, eth0: [4]float64{math.NaN(), math.NaN(), math.NaN(), math.NaN()}}
			out[key] = c
		}
		if m == model.Uptime {
			if v > 0 {
				c.start = int64(v * 1000)
			}
			continue
		}
		if v < 0 {
			continue
		}
		if ts != nil {
			switch {
			case isExtra(m):
				c.ioTime = max(c.ioTime, *ts)
			case m == model.FilesystemUsage: // refreshed on its own, slower clock
			default:
				c.time = max(c.time, *ts)
			}
		}
		switch {
		case name == "container_blkio_device_usage_total":
			i := 0
			switch lset.Get("operation") {
			case "Read":
			case "Write":
				i = 1
			default:
				continue
			}
			c.blkio[i] = add(c.blkio[i], v)
			continue
		case key == (cgroupKey{}) && lset.Get("interface") == "eth0":
			c.eth0[netIndex(m)] = v
		case key == (cgroupKey{}) && m == model.FilesystemUsage:
			// The root cgroup lists every mount (overlays, tmpfs, shm); keep
			// the largest block device, the root filesystem.
			if d := lset.Get("device"); strings.HasPrefix(d, "/dev/") && d != "/dev/shm" {
				c.rootFS = max(c.rootFS, v)
			}
			continue
		}
		c.values[m] = add(c.values[m], v)
	}
	for key, c := range out {
		if math.IsNaN(c.values[model.DiskIORead]) && math.IsNaN(c.values[model.DiskIOWrite]) {
			c.values[model.DiskIORead], c.values[model.DiskIOWrite] = c.blkio[0], c.blkio[1]
		}
		if key == (cgroupKey{}) {
			if c.rootFS > 0 {
				c.values[model.FilesystemUsage] = c.rootFS
			}
			for i, m := range []model.MetricID{model.NetworkRx, model.NetworkRxErrors, model.NetworkTx, model.NetworkTxErrors} {
				if !math.IsNaN(c.eth0[i]) {
					c.values[m] = c.eth0[i]
				}
			}
		}
	}
	return out, nil
}

func netIndex(m model.MetricID) int {
	switch m {
	case model.NetworkRx:
		return 0
	case model.NetworkRxErrors:
		return 1
	case model.NetworkTx:
		return 2
	}
	return 3
}

func add(sum, v float64) float64 {
	if math.IsNaN(sum) {
		return v
	}
	return sum + v
}

// ExtraFamilies are the /metrics/cadvisor families DecodeCadvisorExtras reads.
var ExtraFamilies = func() []string {
	var out []string
	for name, m := range cadvisorFamilies {
		if isExtra(m) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}()

// DecodeCadvisorExtras reads what the Summary API lacks from a
// /metrics/cadvisor payload: the disk IO counters
// (container_fs_{reads,writes}_bytes_total, or
// container_blkio_device_usage_total{operation="Read"|"Write"} where a
// kubelet sends only that), the CFS counters
// (container_cpu_cfs_{periods,throttled_periods,throttled_seconds}_total)
// and container_oom_events_total. It keeps containers, pod cgroups and the
// node's root cgroup (id="/"), understands the pre-1.16
// container_name/pod_name labels, and skips docker's "POD" pause
// containers. A cgroup with none of them is left out.
func DecodeCadvisorExtras(data []byte) (map[cgroupKey]Extras, error) {
	cg, err := parseCadvisor(data)
	if err != nil {
		return nil, err
	}
	out := make(map[cgroupKey]Extras, len(cg))
	for k, c := range cg {
		v := &c.values
		x := Extras{CFSPeriods: v[model.CFSPeriods], CFSThrottledPeriods: v[model.CFSThrottledPeriods],
			CFSThrottledTime: v[model.CFSThrottledTime], OOMEvents: v[model.OOMKills]}
		r, w := v[model.DiskIORead], v[model.DiskIOWrite]
		hasIO := !math.IsNaN(r) || !math.IsNaN(w)
		if !hasIO && math.IsNaN(x.CFSPeriods) && math.IsNaN(x.OOMEvents) {
			continue
		}
		x.Read, x.Write = math.NaN(), math.NaN()
		if hasIO {
			x.Read, x.Write = zeroNaN(r), zeroNaN(w)
		}
		x.Time = c.ioTime
		out[k] = x
	}
	return out, nil
}

func zeroNaN(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return v
}

// DecodeCadvisor decodes a kubelet /metrics/cadvisor payload into entries
// for the node (root cgroup), pods (pod cgroups; docker's pause container
// for the network) and containers: CPU, memory, filesystem, network, disk
// IO, CPU throttling and OOM events (containers; Entry.OOMEvents), each
// cgroup stamped with its newest sample's time (now when the exposition has
// none, as before Kubernetes 1.16).
func DecodeCadvisor(data []byte, node string, now time.Time) ([]model.Entry, error) {
	cg, err := parseCadvisor(data)
	if err != nil {
		return nil, err
	}
	entries := make([]model.Entry, 0, len(cg)+1)
	if _, ok := cg[cgroupKey{}]; !ok {
		cg[cgroupKey{}] = &cgroupSample{values: model.NewValues()}
	}
	for k, c := range cg {
		o := model.Object{Level: model.LevelContainer, Node: node, Namespace: k.Namespace, Pod: k.Pod, Container: k.Container}
		switch {
		case k == cgroupKey{}:
			o = model.Object{Level: model.LevelNode, Node: node}
		case k.Container == "":
			o = model.Object{Level: model.LevelPod, Node: node, Namespace: k.Namespace, Pod: k.Pod}
		}
		e := model.Entry{Object: o, Time: c.time, CadvisorTime: c.ioTime, Start: c.start, Values: c.values}
		if e.Time == 0 {
			e.Time = now.UnixMilli()
		}
		if o.Level == model.LevelContainer {
			for _, m := range []model.MetricID{model.NetworkRx, model.NetworkRxErrors, model.NetworkTx, model.NetworkTxErrors} {
				e.Values[m] = math.NaN() // a container shares its pod's network
			}
		}
		if e.Start != 0 && e.Time >= e.Start {
			e.Values[model.Uptime] = float64(e.Time-e.Start) / 1000
		}
		keepExtras(&e)
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return less(entries[i].Object, entries[j].Object) })
	return entries, nil
}

// less orders objects node first, then by namespace, pod and container.
func less(a, b model.Object) bool {
	if (a.Level == model.LevelNode) != (b.Level == model.LevelNode) {
		return a.Level == model.LevelNode
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	if a.Pod != b.Pod {
		return a.Pod < b.Pod
	}
	return a.Container < b.Container
}

// cgroupOf names the cgroup of a cAdvisor series, and whether kubemon keeps it.
func cgroupOf(l labels.Labels) (cgroupKey, bool) {
	k := cgroupKey{Namespace: l.Get("namespace"), Pod: l.Get("pod"), Container: l.Get("container")}
	if k.Pod == "" {
		k.Pod = l.Get("pod_name")
	}
	if k.Container == "" {
		k.Container = l.Get("container_name")
	}
	switch {
	case k.Container == "POD": // docker's pause container: its network is the pod's
		return k, k.Pod != "" && k.Namespace != ""
	case k.Pod != "" && k.Namespace != "" && k.Container == "":
		// The pod's own cgroup, not its sandbox's, which also has no
		// container name: cgroupfs ".../pod<uid>", systemd "...-pod<uid>.slice".
		last := path.Base(l.Get("id"))
		return k, strings.HasPrefix(last, "pod") || strings.Contains(last, "-pod")
	case k.Pod != "" && k.Namespace != "":
		return k, true
	case k.Pod == "" && k.Container == "" && l.Get("id") == "/":
		return cgroupKey{}, true
	}
	return k, false
}

// keepExtras keeps of an entry's cAdvisor extras those its level has:
// the CFS counters for containers only (a pod's throttling is the sum of
// its containers', which its own cgroup's counters are not: they count
// the pod's periods once, not once per container; the root cgroup's are
// not the node's pods'), and moves a container's OOM events out of Values
// into Entry.OOMEvents (the pipeline counts them into OOMKills).
func keepExtras(e *model.Entry) {
	v := &e.Values
	if e.Object.Level == model.LevelContainer && !math.IsNaN(v[model.OOMKills]) {
		e.OOMEvents = v[model.OOMKills]
	}
	v[model.OOMKills] = math.NaN()
	if e.Object.Level != model.LevelContainer {
		v[model.CFSPeriods], v[model.CFSThrottledPeriods], v[model.CFSThrottledTime] = math.NaN(), math.NaN(), math.NaN()
	}
}

// mergeExtras sets the disk IO counters of container, pod and node
// entries, and the CFS counters and OOM events of container ones (see
// keepExtras), from /metrics/cadvisor.
func mergeExtras(entries []model.Entry, extras map[cgroupKey]Extras) {
	for i := range entries {
		e := &entries[i]
		var k cgroupKey
		switch e.Object.Level {
		case model.LevelContainer:
			k = cgroupKey{e.Object.Namespace, e.Object.Pod, e.Object.Container}
		case model.LevelPod:
			k = cgroupKey{e.Object.Namespace, e.Object.Pod, ""}
		case model.LevelNode:
		default:
			continue
		}
		x, ok := extras[k]
		if !ok {
			continue
		}
		v := &e.Values
		if !math.IsNaN(x.Read) {
			v[model.DiskIORead], v[model.DiskIOWrite] = x.Read, x.Write
		}
		v[model.CFSPeriods], v[model.CFSThrottledPeriods], v[model.CFSThrottledTime] = x.CFSPeriods, x.CFSThrottledPeriods, x.CFSThrottledTime
		v[model.OOMKills] = x.OOMEvents
		keepExtras(e)
		e.CadvisorTime = x.Time
	}
}
