package sim

import (
	"math"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// promWriter builds Prometheus text exposition (format 0.0.4).
type promWriter struct{ b []byte }

func (w *promWriter) family(name, help, typ string) {
	w.b = append(w.b, "# HELP "...)
	w.b = append(w.b, name...)
	w.b = append(w.b, ' ')
	w.b = append(w.b, help...)
	w.b = append(w.b, "\n# TYPE "...)
	w.b = append(w.b, name...)
	w.b = append(w.b, ' ')
	w.b = append(w.b, typ...)
	w.b = append(w.b, '\n')
}

// sample writes one sample; labels alternate name, value. tsMs < 0 means no timestamp.
func (w *promWriter) sample(name string, value float64, tsMs int64, labels ...string) {
	w.b = append(w.b, name...)
	if len(labels) > 0 {
		w.b = append(w.b, '{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.b = append(w.b, labels[i]...)
			w.b = append(w.b, '=', '"')
			w.b = appendEscaped(w.b, labels[i+1])
			w.b = append(w.b, '"')
		}
		w.b = append(w.b, '}')
	}
	w.b = append(w.b, ' ')
	w.b = appendFloat(w.b, value)
	if tsMs >= 0 {
		w.b = append(w.b, ' ')
		w.b = strconv.AppendInt(w.b, tsMs, 10)
	}
	w.b = append(w.b, '\n')
}

func appendFloat(b []byte, f float64) []byte {
	switch {
	case f == 1:
		return append(b, '1')
	case f == 0:
		return append(b, '0')
	case math.IsInf(f, 1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	case math.IsNaN(f):
		return append(b, "NaN"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

func appendEscaped(b []byte, s string) []byte {
	if !strings.ContainsAny(s, "\\\"\n") {
		return append(b, s...)
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			b = append(b, `\\`...)
		case '"':
			b = append(b, `\"`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, s[i])
		}
	}
	return b
}

func nsToSeconds(ns uint64) float64 { return float64(ns) / 1e9 }

// resourceMetrics renders /metrics/resource like a v1.36 kubelet: families
// sorted by name, series sorted by label values, millisecond timestamps
// equal to the (second-truncated) evaluation time.
func (c *Cluster) resourceMetrics(ev *nodeEval) []byte {
	type ref struct{ pi, ci int }
	refs := make([]ref, 0, len(ev.pods)*c.opts.ContainersPerPod)
	for pi := range ev.pods {
		for ci := range ev.pods[pi].ctrs {
			if ev.pods[pi].ctrs[ci].running() {
				refs = append(refs, ref{pi, ci})
			}
		}
	}
	ctrName := func(r ref) string { return ev.pods[r.pi].ctrs[r.ci].wc.name }
	sort.Slice(refs, func(i, j int) bool {
		a, b := refs[i], refs[j]
		if x, y := ctrName(a), ctrName(b); x != y {
			return x < y
		}
		pa, pb := &ev.pods[a.pi], &ev.pods[b.pi]
		if pa.wl.namespace != pb.wl.namespace {
			return pa.wl.namespace < pb.wl.namespace
		}
		return pa.name < pb.name
	})
	pods := make([]int, len(ev.pods))
	for i := range pods {
		pods[i] = i
	}
	sort.Slice(pods, func(i, j int) bool {
		pa, pb := &ev.pods[pods[i]], &ev.pods[pods[j]]
		if pa.wl.namespace != pb.wl.namespace {
			return pa.wl.namespace < pb.wl.namespace
		}
		return pa.name < pb.name
	})

	ts := (ev.T + ev.skew) * 1000 // on the node's clock
	w := &promWriter{b: make([]byte, 0, 1024+len(refs)*700)}
	ctrFamily := func(name, help string, typ string, val func(ce *ctrEval) float64, withTS bool) {
		w.family(name, help, typ)
		t := ts
		if !withTS {
			t = -1
		}
		for _, r := range refs {
			pe := &ev.pods[r.pi]
			ce := &pe.ctrs[r.ci]
			w.sample(name, val(ce), t, "container", ce.wc.name, "namespace", pe.wl.namespace, "pod", pe.name)
		}
	}
	podFamily := func(name, help, typ string, val func(pe *podEval) float64) {
		w.family(name, help, typ)
		for _, pi := range pods {
			pe := &ev.pods[pi]
			w.sample(name, val(pe), ts, "namespace", pe.wl.namespace, "pod", pe.name)
		}
	}
	ctrFamily("container_cpu_usage_seconds_total", "[STABLE] Cumulative cpu time consumed by the container in core-seconds", "counter",
		func(ce *ctrEval) float64 { return nsToSeconds(ce.cpuNs) }, true)
	ctrFamily("container_memory_working_set_bytes", "[STABLE] Current working set of the container in bytes", "gauge",
		func(ce *ctrEval) float64 { return float64(ce.ws) }, true)
	ctrFamily("container_start_time_seconds", "[STABLE] Start time of the container since unix epoch in seconds", "gauge",
		func(ce *ctrEval) float64 { return float64(ce.start + ev.skew) }, false)
	ctrFamily("container_swap_limit_bytes", "[ALPHA] Current amount of the container swap limit in bytes. Reported only on non-windows systems", "gauge",
		func(*ctrEval) float64 { return 0 }, true)
	ctrFamily("container_swap_usage_bytes", "[ALPHA] Current amount of the container swap usage in bytes. Reported only on non-windows systems", "gauge",
		func(*ctrEval) float64 { return 0 }, true)
	w.family("node_cpu_usage_seconds_total", "[STABLE] Cumulative cpu time consumed by the node in core-seconds", "counter")
	w.sample("node_cpu_usage_seconds_total", nsToSeconds(ev.cpuNs), ts)
	w.family("node_memory_working_set_bytes", "[STABLE] Current working set of the node in bytes", "gauge")
	w.sample("node_memory_working_set_bytes", float64(ev.ws), ts)
	w.family("node_swap_usage_bytes", "[ALPHA] Current swap usage of the node in bytes. Reported only on non-windows systems", "gauge")
	w.sample("node_swap_usage_bytes", 0, ts)
	podFamily("pod_cpu_usage_seconds_total", "[STABLE] Cumulative cpu time consumed by the pod in core-seconds", "counter",
		func(pe *podEval) float64 { return nsToSeconds(pe.cpuNs) })
	podFamily("pod_memory_working_set_bytes", "[STABLE] Current working set of the pod in bytes", "gauge",
		func(pe *podEval) float64 { return float64(pe.ws) })
	podFamily("pod_swap_usage_bytes", "[ALPHA] Current amount of the pod swap usage in bytes. Reported only on non-windows systems", "gauge",
		func(*podEval) float64 { return 0 })
	w.family("resource_scrape_error", "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise", "gauge")
	w.sample("resource_scrape_error", 0, -1)
	return w.b
}

// cgroup describes one cAdvisor series set (a cgroup).
type cgroup struct {
	id, container, image, name, namespace, pod string

	cpuNs                uint64
	ws, usage, rss       uint64
	start                int64
	hasNet               bool
	rx, tx, rxErr, txErr uint64
	hasFs                bool
	fsUsage              uint64
	hasSpec              bool
	cpuShares, cpuQuota  int64
	memLimit             uint64
	hasIO                bool
	ioRead, ioWrite      uint64    // disk IO bytes
	cfs                  *cfsState // CFS counters; nil without a CPU quota
	oomEvents            int32     // container_oom_events_total
}

// Extra cAdvisor labels, (name, value) pairs sorted by name. Disk IO is
// reported for the node's disk (virtio, 254:0) as cAdvisor does for block
// devices; filesystem usage names the partition (/dev/vda1).
var (
	cpuTotal     = []string{"cpu", "total"}
	fsDevice     = []string{"device", "/dev/vda1"}
	interfaceEth = []string{"interface", "eth0"}
	ioDevice     = []string{"device", "/dev/vda"}
	blkioRead    = []string{"device", "/dev/vda", "major", "254", "minor", "0", "operation", "Read"}
	blkioWrite   = []string{"device", "/dev/vda", "major", "254", "minor", "0", "operation", "Write"}
)

func podCgroupDir(pe *podEval) string {
	switch pe.wl.qos {
	case v1.PodQOSGuaranteed:
		return "/kubepods/pod" + pe.uid
	case v1.PodQOSBestEffort:
		return "/kubepods/besteffort/pod" + pe.uid
	}
	return "/kubepods/burstable/pod" + pe.uid
}

// cadvisorMetrics renders a subset of the kubelet's /metrics/cadvisor
// (cgroupfs driver, containerd) consistent with the summary.
func (c *Cluster) cadvisorMetrics(ev *nodeEval) []byte {
	n := ev.n
	cgs := make([]cgroup, 0, 4+len(ev.pods)*(1+c.opts.ContainersPerPod))
	cgs = append(cgs, cgroup{id: "/", cpuNs: ev.cpuNs, ws: ev.ws, usage: ev.usage, rss: ev.rss, start: n.boot,
		hasNet: true, rx: ev.rx, tx: ev.tx, rxErr: ev.rxErr, txErr: ev.txErr, hasFs: true, fsUsage: ev.fsUsed,
		hasSpec: true, cpuShares: 1024, memLimit: uint64(n.memCap), hasIO: true, ioRead: ev.ioRead, ioWrite: ev.ioWrite})
	cgs = append(cgs, cgroup{id: "/kubepods", cpuNs: ev.podsCPUNs, ws: ev.podsWs, usage: ev.podsUsage, rss: ev.podsRss,
		start: n.podsStart, hasSpec: true, cpuShares: n.cpuAlloc * 1024 / 1000, memLimit: uint64(n.memAlloc)})
	qi := qosIndex(v1.PodQOSBestEffort)
	cgs = append(cgs, cgroup{id: "/kubepods/besteffort", cpuNs: ev.qosCPUNs[qi], ws: ev.qosWs[qi], usage: ev.qosUsage[qi],
		rss: ev.qosRss[qi], start: n.podsStart, hasSpec: true, cpuShares: 2})
	qi = qosIndex(v1.PodQOSBurstable)
	cgs = append(cgs, cgroup{id: "/kubepods/burstable", cpuNs: ev.qosCPUNs[qi], ws: ev.qosWs[qi], usage: ev.qosUsage[qi],
		rss: ev.qosRss[qi], start: n.podsStart, hasSpec: true, cpuShares: 2})
	for pi := range ev.pods {
		pe := &ev.pods[pi]
		dir := podCgroupDir(pe)
		shares, quota := podCPUSpec(pe)
		pg := cgroup{id: dir, namespace: pe.wl.namespace, pod: pe.name, cpuNs: pe.cpuNs, ws: pe.ws,
			usage: pe.usage, rss: pe.rss, start: pe.start, hasNet: true, rx: pe.rx, tx: pe.tx, rxErr: pe.rxErr,
			txErr: pe.txErr, hasSpec: true, cpuShares: shares, cpuQuota: quota, memLimit: pe.memLimit,
			hasIO: true, ioRead: pe.ioRead, ioWrite: pe.ioWrite}
		if quota > 0 {
			pg.cfs = podCFS(pe, ev.T)
		}
		cgs = append(cgs, pg)
		for ci := range pe.ctrs {
			ce := &pe.ctrs[ci]
			if !ce.running() {
				continue // waiting to be restarted: its cgroup is gone
			}
			g := cgroup{id: dir + "/" + ce.id, container: ce.wc.name, image: ce.wc.image, name: ce.id,
				namespace: pe.wl.namespace, pod: pe.name, cpuNs: ce.cpuNs, ws: ce.ws, usage: ce.usage, rss: ce.rss,
				start: ce.start, hasFs: true, fsUsage: ce.p.rootfs, hasSpec: true,
				cpuShares: max(ce.wc.cpuReq*1024/1000, 2), cpuQuota: ce.wc.cpuLim * 100, memLimit: uint64(ce.wc.memLim),
				hasIO: true, ioRead: ce.ioRead, ioWrite: ce.ioWrite, oomEvents: ce.run.oomEvents}
			if ce.wc.cpuLim > 0 {
				g.cfs = &ce.cfs
			}
			cgs = append(cgs, g)
		}
	}
	// Series within a family are sorted by label values; container comes first.
	sort.SliceStable(cgs, func(i, j int) bool {
		if cgs[i].container != cgs[j].container {
			return cgs[i].container < cgs[j].container
		}
		return cgs[i].id < cgs[j].id
	})

	ts := (ev.T + ev.skew) * 1000 // on the node's clock
	// Size the buffer from the label values: each cgroup has up to ~26
	// series of ~130 bytes plus its label values.
	size := 4096
	for gi := range cgs {
		g := &cgs[gi]
		size += 26 * (130 + len(g.id) + len(g.image) + len(g.name) + len(g.namespace) + len(g.pod))
	}
	w := &promWriter{b: make([]byte, 0, size)}
	type fam struct {
		name, help, typ string
		filter          func(*cgroup) bool
		val             func(*cgroup) float64
		extra           []string // extra label (name, value) inserted in sorted position
		noTS            bool
	}
	all := func(*cgroup) bool { return true }
	withNet := func(g *cgroup) bool { return g.hasNet }
	withFs := func(g *cgroup) bool { return g.hasFs }
	withSpec := func(g *cgroup) bool { return g.hasSpec }
	withIO := func(g *cgroup) bool { return g.hasIO }
	withCFS := func(g *cgroup) bool { return g.cfs != nil }

	// container_blkio_device_usage_total sorts first; it has two series
	// (operation Read and Write) per cgroup.
	const blkio = "container_blkio_device_usage_total"
	w.family(blkio, "Blkio Device bytes usage", "counter")
	for gi := range cgs {
		g := &cgs[gi]
		if g.hasIO {
			w.cadvisorSample(blkio, float64(g.ioRead), ts, g, blkioRead)
			w.cadvisorSample(blkio, float64(g.ioWrite), ts, g, blkioWrite)
		}
	}
	fams := []fam{
		{"container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", "counter", withCFS,
			func(g *cgroup) float64 { return float64(g.cfs.periods) }, nil, false},
		{"container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", "counter", withCFS,
			func(g *cgroup) float64 { return float64(g.cfs.throttled) }, nil, false},
		{"container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.", "counter", withCFS,
			func(g *cgroup) float64 { return g.cfs.throttledSeconds }, nil, false},
		{"container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", "counter", all,
			func(g *cgroup) float64 { return nsToSeconds(g.cpuNs - g.cpuNs*7/10) }, nil, false},
		{"container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", "counter", all,
			func(g *cgroup) float64 { return nsToSeconds(g.cpuNs) }, cpuTotal, false},
		{"container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", "counter", all,
			func(g *cgroup) float64 { return nsToSeconds(g.cpuNs * 7 / 10) }, nil, false},
		{"container_fs_limit_bytes", "Number of bytes that can be consumed by the container on this filesystem.", "gauge", withFs,
			func(*cgroup) float64 { return float64(n.fsCap) }, fsDevice, false},
		{"container_fs_reads_bytes_total", "Cumulative count of bytes read", "counter", withIO,
			func(g *cgroup) float64 { return float64(g.ioRead) }, ioDevice, false},
		{"container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem.", "gauge", withFs,
			func(g *cgroup) float64 { return float64(g.fsUsage) }, fsDevice, false},
		{"container_fs_writes_bytes_total", "Cumulative count of bytes written", "counter", withIO,
			func(g *cgroup) float64 { return float64(g.ioWrite) }, ioDevice, false},
		{"container_last_seen", "Last time a container was seen by the exporter", "gauge", all,
			func(*cgroup) float64 { return float64(ev.T + ev.skew) }, nil, false},
		{"container_memory_cache", "Number of bytes of page cache memory.", "gauge", all,
			func(g *cgroup) float64 { return float64(g.usage - g.rss) }, nil, false},
		{"container_memory_rss", "Size of RSS in bytes.", "gauge", all,
			func(g *cgroup) float64 { return float64(g.rss) }, nil, false},
		{"container_memory_swap", "Container swap usage in bytes.", "gauge", all,
			func(*cgroup) float64 { return 0 }, nil, false},
		{"container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed", "gauge", all,
			func(g *cgroup) float64 { return float64(g.usage) }, nil, false},
		{"container_memory_working_set_bytes", "Current working set in bytes.", "gauge", all,
			func(g *cgroup) float64 { return float64(g.ws) }, nil, false},
		{"container_network_receive_bytes_total", "Cumulative count of bytes received", "counter", withNet,
			func(g *cgroup) float64 { return float64(g.rx) }, interfaceEth, false},
		{"container_network_receive_errors_total", "Cumulative count of errors encountered while receiving", "counter", withNet,
			func(g *cgroup) float64 { return float64(g.rxErr) }, interfaceEth, false},
		{"container_network_transmit_bytes_total", "Cumulative count of bytes transmitted", "counter", withNet,
			func(g *cgroup) float64 { return float64(g.tx) }, interfaceEth, false},
		{"container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting", "counter", withNet,
			func(g *cgroup) float64 { return float64(g.txErr) }, interfaceEth, false},
		{"container_oom_events_total", "Count of out of memory events observed for the container", "counter", all,
			func(g *cgroup) float64 { return float64(g.oomEvents) }, nil, false},
		{"container_spec_cpu_period", "CPU period of the container.", "gauge", func(g *cgroup) bool { return g.hasSpec && g.cpuQuota > 0 },
			func(*cgroup) float64 { return 100000 }, nil, true},
		{"container_spec_cpu_quota", "CPU quota of the container.", "gauge", func(g *cgroup) bool { return g.hasSpec && g.cpuQuota > 0 },
			func(g *cgroup) float64 { return float64(g.cpuQuota) }, nil, true},
		{"container_spec_cpu_shares", "CPU share of the container.", "gauge", withSpec,
			func(g *cgroup) float64 { return float64(g.cpuShares) }, nil, true},
		{"container_spec_memory_limit_bytes", "Memory limit for the container.", "gauge", withSpec,
			func(g *cgroup) float64 { return float64(g.memLimit) }, nil, true},
		{"container_start_time_seconds", "Start time of the container since unix epoch in seconds.", "gauge", all,
			func(g *cgroup) float64 { return float64(g.start + ev.skew) }, nil, true},
	}
	for fi := range fams {
		f := &fams[fi]
		w.family(f.name, f.help, f.typ)
		t := ts
		if f.noTS {
			t = -1
		}
		for gi := range cgs {
			g := &cgs[gi]
			if !f.filter(g) {
				continue
			}
			w.cadvisorSample(f.name, f.val(g), t, g, f.extra)
		}
	}
	machine := []string{"boot_id", n.bootID, "machine_id", n.machineID, "system_uuid", n.uid}
	w.family("machine_cpu_cores", "Number of logical CPU cores.", "gauge")
	w.sample("machine_cpu_cores", float64(n.cpuCap/1000), -1, machine...)
	w.family("machine_memory_bytes", "Amount of memory installed on the machine.", "gauge")
	w.sample("machine_memory_bytes", float64(n.memCap), -1, machine...)
	w.family("machine_scrape_error", "1 if there was an error while getting machine metrics, 0 otherwise.", "gauge")
	w.sample("machine_scrape_error", 0, -1)
	return w.b
}

// cadvisorSample writes a sample with cAdvisor's label set (sorted by name):
// container, id, image, name, namespace, pod merged with extra, (name, value)
// pairs sorted by name (cpu, device, interface, major, minor, operation ...)
// that never repeat one of the six standard names.
func (w *promWriter) cadvisorSample(name string, v float64, tsMs int64, g *cgroup, extra []string) {
	var lbl [24]string
	std := [...]string{"container", g.container, "id", g.id, "image", g.image, "name", g.name,
		"namespace", g.namespace, "pod", g.pod}
	l := lbl[:0]
	j := 0
	for i := 0; i < len(std); i += 2 {
		for ; j+1 < len(extra) && extra[j] < std[i]; j += 2 {
			l = append(l, extra[j], extra[j+1])
		}
		l = append(l, std[i], std[i+1])
	}
	for ; j+1 < len(extra); j += 2 {
		l = append(l, extra[j], extra[j+1])
	}
	w.sample(name, v, tsMs, l...)
}

// podCFS is the CFS counters of a pod cgroup whose containers all have a
// CPU limit (its quota is their sum): runnable whenever the pod lives,
// throttled in the periods any container was (at most every period).
func podCFS(pe *podEval, T int64) *cfsState {
	st := &cfsState{periods: since(pe.start, T) * cfsPeriodsPerSecond}
	for ci := range pe.ctrs {
		ce := &pe.ctrs[ci]
		x := cfs(&ce.p, ce.wc.cpuLim, pe.start, T, ce.throttleSpans(), ce.run.gaps)
		st.throttled += x.throttled
		st.throttledSeconds += x.throttledSeconds
	}
	st.throttled = min(st.throttled, st.periods)
	st.throttledSeconds = math.Round(st.throttledSeconds*1e6) / 1e6
	return st
}

// podCPUSpec is the pod cgroup's CPU shares (the sum of its containers',
// from their requests in millicores, at least 2 each) and its CFS quota in
// microseconds per 100 ms period (the sum of their limits; 0 when one has
// none: the pod is then unlimited).
func podCPUSpec(pe *podEval) (shares, quota int64) {
	limited := true
	for ci := range pe.ctrs {
		shares += max(pe.ctrs[ci].wc.cpuReq*1024/1000, 2)
		limited = limited && pe.ctrs[ci].wc.cpuLim != 0
		quota += pe.ctrs[ci].wc.cpuLim * 100
	}
	if !limited {
		quota = 0
	}
	return shares, quota
}
