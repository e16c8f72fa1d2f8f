package sim

import (
	"fmt"
	"sort"
	"strconv"

	v1 "k8s.io/api/core/v1"
)

// CadvisorPayload selects what a node's /metrics/cadvisor carries.
type CadvisorPayload string

const (
	// CadvisorKubelet (the default): every metric family and label set a
	// v1.36 kubelet's /metrics/cadvisor has (containerd, cgroup v2,
	// cgroupfs driver): the root cgroup with its filesystems, the kubepods
	// and QoS cgroups, the kubelet's system cgroup, each pod's cgroup, its
	// sandbox (pause) container and its containers, and the machine
	// families. What Prometheus pays scraping a real kubelet.
	CadvisorKubelet CadvisorPayload = "kubelet"
	// CadvisorLean: the families kubemon reads (CPU, memory, filesystem,
	// network, disk IO, CFS, OOM events) and a few more, for the root,
	// kubepods, QoS, pod and container cgroups; about a third of the bytes.
	CadvisorLean CadvisorPayload = "lean"
)

// ParseCadvisorPayload parses "kubelet" or "lean".
func ParseCadvisorPayload(s string) (CadvisorPayload, error) {
	switch p := CadvisorPayload(s); p {
	case CadvisorKubelet, CadvisorLean:
		return p, nil
	}
	return "", fmt.Errorf("sim: unknown cadvisor payload %q (want %q or %q)", s, CadvisorKubelet, CadvisorLean)
}

// Kinds of cgroups in the kubelet payload.
const (
	kRoot uint8 = iota
	kKubepods
	kQoS
	kPod
	kSandbox
	kCtr
	kSystem
)

// kcg is one cgroup of the kubelet payload: its pre-rendered labels and
// its values.
type kcg struct {
	kind      uint8
	container string // sort keys
	id        string
	// lb bounds the four label parts in the render's arena:
	// `container="c",` | `id="…",image="…",` | `name="…",namespace="…",` | `pod="…"`.
	lb [5]int32

	cpuNs                   uint64
	ws, usage, rss, pf, maj uint64
	start                   int64
	psiCPU, psiIO           uint64 // µs ("some"; "full" is 80 %)
	procs, threads          uint64
	fds, sockets, thrMax    uint64
	memLimit                uint64
	cpuShares, cpuQuota     int64
	cfs                     *cfsState
	hasIO                   bool
	ioRead, ioWrite         uint64
	hasNet                  bool
	rx, tx, rxErr, txErr    uint64
	hasFs                   bool // a container's rootfs usage on /dev/vda1
	fsUsage                 uint64
	oom                     int32
}

// kdev is one filesystem of the root cgroup's container_fs_* series.
type kdev struct {
	label                                    string // `device="…",`
	usage, limit, inodes, inodesFree         uint64
	reads, writes, readsMerged, writesMerged uint64
	sectorReads, sectorWrites                uint64
	readMs, writeMs, ioMs, ioWeightedMs      uint64
}

// Root filesystems, in label order: devtmpfs, tmpfs mounts, the root
// disk's partition, two sandboxes' shm (cAdvisor lists the mounts it found
// when the kubelet started: the system pods') and four overlays (the
// rootfs of system containers that were running then).
const (
	devDev = iota
	devShm
	devVda1
	devRun
	devSandboxShm0
	devSandboxShm1
	devRunLock
	devTmp
	devOverlay0
	nDevs = devOverlay0 + 4
)

var overlayMinors = [4]string{"105", "112", "36", "94"} // sorted as strings

// kctx is what the family values need beside the cgroup.
type kctx struct {
	now  float64 // the node's clock, seconds (container_last_seen)
	devs [nDevs]kdev
}

// kvar is one series of a family per cgroup: extra labels at the four
// places they sort into, and its value.
type kvar struct {
	e   [4]string // before id, before name, before pod, after pod (leading comma)
	dev int       // ≥ 0: a root filesystem; e[0] is its device label
	has func(g *kcg) bool
	val func(g *kcg, x *kctx, dev int) float64
}

type kfam struct {
	name, help, typ string
	noTS            bool
	vars            []kvar
}

func f64(v uint64) float64 { return float64(v) }

var (
	hasAll     = func(*kcg) bool { return true }
	hasIO      = func(g *kcg) bool { return g.hasIO }
	hasNet     = func(g *kcg) bool { return g.hasNet }
	hasCFS     = func(g *kcg) bool { return g.cfs != nil }
	hasQuota   = func(g *kcg) bool { return g.cpuQuota > 0 }
	hasRoot    = func(g *kcg) bool { return g.kind == kRoot }
	hasCtrFs   = func(g *kcg) bool { return g.hasFs }
	hasUlimits = func(g *kcg) bool { return g.kind == kRoot || g.kind == kCtr || g.kind == kSandbox }
)

// one is a family with one series per cgroup that has it.
func one(name, help, typ string, has func(*kcg) bool, val func(g *kcg) float64) kfam {
	return kfam{name: name, help: help, typ: typ, vars: []kvar{{dev: -1, has: has, val: func(g *kcg, _ *kctx, _ int) float64 { return val(g) }}}}
}

func noTS(f kfam) kfam { f.noTS = true; return f }

// rootDevs are a family's series for the root filesystems, plus extra
// (already in label order relative to them: see withDev).
func rootDevs(name, help, typ string, val func(d *kdev) float64, extra ...kvar) kfam {
	vars := make([]kvar, 0, nDevs+len(extra))
	for i := 0; i < nDevs; i++ {
		vars = append(vars, kvar{dev: i, has: hasRoot, val: func(_ *kcg, x *kctx, dev int) float64 { return val(&x.devs[dev]) }})
	}
	for _, e := range extra {
		// Insert e before the first root filesystem whose device sorts after its.
		at := len(vars)
		for i, v := range vars {
			if v.dev >= 0 && devSortsAfter(v.dev, e.e[0]) {
				at = i
				break
			}
		}
		vars = append(vars[:at], append([]kvar{e}, vars[at:]...)...)
	}
	return kfam{name: name, help: help, typ: typ, vars: vars}
}

// devSortsAfter: whether root filesystem dev's label sorts after label.
// The sandbox shm devices sort between /run and /run/lock whatever their ids.
func devSortsAfter(dev int, label string) bool {
	return staticDevLabel(dev) > label
}

func staticDevLabel(dev int) string {
	switch dev {
	case devDev:
		return `device="/dev",`
	case devShm:
		return `device="/dev/shm",`
	case devVda1:
		return `device="/dev/vda1",`
	case devRun:
		return `device="/run",`
	case devSandboxShm0, devSandboxShm1:
		return `device="/run/containerd/`
	case devRunLock:
		return `device="/run/lock",`
	case devTmp:
		return `device="/tmp",`
	}
	return `device="overlay_0-` + overlayMinors[dev-devOverlay0] + `",`
}

const (
	lblVda    = `device="/dev/vda",`
	lblVda1   = `device="/dev/vda1",`
	lblEth0   = `interface="eth0",`
	lblMajMin = `major="254",minor="0",`
)

func vda(has func(*kcg) bool, val func(g *kcg) float64) kvar {
	return kvar{e: [4]string{lblVda}, dev: -1, has: has, val: func(g *kcg, _ *kctx, _ int) float64 { return val(g) }}
}

func netFam(name, help string, val func(g *kcg) float64) kfam {
	return kfam{name: name, help: help, typ: "counter", vars: []kvar{{e: [4]string{1: lblEth0}, dev: -1, has: hasNet,
		val: func(g *kcg, _ *kctx, _ int) float64 { return val(g) }}}}
}

func zero(*kcg) float64 { return 0 }

// kubeletFamilies are the families of a v1.36 kubelet's /metrics/cadvisor
// but cadvisor_version_info, container_scrape_error and machine_*, in the
// exposition's order (by name).
var kubeletFamilies = []kfam{
	{name: "container_blkio_device_usage_total", help: "Blkio Device bytes usage", typ: "counter", vars: []kvar{
		{e: [4]string{lblVda, lblMajMin, `operation="Read",`}, dev: -1, has: hasIO, val: func(g *kcg, _ *kctx, _ int) float64 { return f64(g.ioRead) }},
		{e: [4]string{lblVda, lblMajMin, `operation="Write",`}, dev: -1, has: hasIO, val: func(g *kcg, _ *kctx, _ int) float64 { return f64(g.ioWrite) }},
	}},
	one("container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", "counter", hasCFS,
		func(g *kcg) float64 { return f64(g.cfs.periods) }),
	one("container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", "counter", hasCFS,
		func(g *kcg) float64 { return f64(g.cfs.throttled) }),
	one("container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.", "counter", hasCFS,
		func(g *kcg) float64 { return g.cfs.throttledSeconds }),
	one("container_cpu_load_average_10s", "Value of container cpu load average over the last 10 seconds.", "gauge", hasAll, zero),
	one("container_cpu_load_d_average_10s", "Value of container cpu load.d average over the last 10 seconds.", "gauge", hasAll, zero),
	one("container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", "counter", hasAll,
		func(g *kcg) float64 { return nsToSeconds(g.cpuNs - g.cpuNs*7/10) }),
	{name: "container_cpu_usage_seconds_total", help: "Cumulative cpu time consumed in seconds.", typ: "counter", vars: []kvar{
		{e: [4]string{`cpu="total",`}, dev: -1, has: hasAll, val: func(g *kcg, _ *kctx, _ int) float64 { return nsToSeconds(g.cpuNs) }},
	}},
	one("container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", "counter", hasAll,
		func(g *kcg) float64 { return nsToSeconds(g.cpuNs * 7 / 10) }),
	one("container_file_descriptors", "Number of open file descriptors for the container.", "gauge", hasAll,
		func(g *kcg) float64 { return f64(g.fds) }),
	rootDevs("container_fs_inodes_free", "Number of available Inodes", "gauge", func(d *kdev) float64 { return f64(d.inodesFree) }),
	rootDevs("container_fs_inodes_total", "Number of Inodes", "gauge", func(d *kdev) float64 { return f64(d.inodes) }),
	rootDevs("container_fs_io_current", "Number of I/Os currently in progress", "gauge", func(*kdev) float64 { return 0 }),
	rootDevs("container_fs_io_time_seconds_total", "Cumulative count of seconds spent doing I/Os", "counter",
		func(d *kdev) float64 { return float64(d.ioMs) / 1000 }),
	rootDevs("container_fs_io_time_weighted_seconds_total", "Cumulative weighted I/O time in seconds", "counter",
		func(d *kdev) float64 { return float64(d.ioWeightedMs) / 1000 }),
	rootDevs("container_fs_limit_bytes", "Number of bytes that can be consumed by the container on this filesystem.", "gauge",
		func(d *kdev) float64 { return f64(d.limit) },
		kvar{e: [4]string{lblVda1}, dev: -1, has: hasCtrFs, val: func(_ *kcg, x *kctx, _ int) float64 { return f64(x.devs[devVda1].limit) }}),
	rootDevs("container_fs_read_seconds_total", "Cumulative count of seconds spent reading", "counter",
		func(d *kdev) float64 { return float64(d.readMs) / 1000 }),
	{name: "container_fs_reads_bytes_total", help: "Cumulative count of bytes read", typ: "counter", vars: []kvar{
		vda(hasIO, func(g *kcg) float64 { return f64(g.ioRead) })}},
	rootDevs("container_fs_reads_merged_total", "Cumulative count of reads merged", "counter", func(d *kdev) float64 { return f64(d.readsMerged) }),
	rootDevs("container_fs_reads_total", "Cumulative count of reads completed", "counter", func(d *kdev) float64 { return f64(d.reads) },
		vda(hasIO, func(g *kcg) float64 { return f64(g.ioRead / 16384) })),
	rootDevs("container_fs_sector_reads_total", "Cumulative count of sector reads completed", "counter", func(d *kdev) float64 { return f64(d.sectorReads) }),
	rootDevs("container_fs_sector_writes_total", "Cumulative count of sector writes completed", "counter", func(d *kdev) float64 { return f64(d.sectorWrites) }),
	rootDevs("container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem.", "gauge",
		func(d *kdev) float64 { return f64(d.usage) },
		kvar{e: [4]string{lblVda1}, dev: -1, has: hasCtrFs, val: func(g *kcg, _ *kctx, _ int) float64 { return f64(g.fsUsage) }}),
	rootDevs("container_fs_write_seconds_total", "Cumulative count of seconds spent writing", "counter",
		func(d *kdev) float64 { return float64(d.writeMs) / 1000 }),
	{name: "container_fs_writes_bytes_total", help: "Cumulative count of bytes written", typ: "counter", vars: []kvar{
		vda(hasIO, func(g *kcg) float64 { return f64(g.ioWrite) })}},
	rootDevs("container_fs_writes_merged_total", "Cumulative count of writes merged", "counter", func(d *kdev) float64 { return f64(d.writesMerged) }),
	rootDevs("container_fs_writes_total", "Cumulative count of writes completed", "counter", func(d *kdev) float64 { return f64(d.writes) },
		vda(hasIO, func(g *kcg) float64 { return f64(g.ioWrite / 8192) })),
	{name: "container_last_seen", help: "Last time a container was seen by the exporter", typ: "gauge", vars: []kvar{
		{dev: -1, has: hasAll, val: func(_ *kcg, x *kctx, _ int) float64 { return x.now }}}},
	one("container_memory_cache", "Number of bytes of page cache memory.", "gauge", hasAll, func(g *kcg) float64 { return f64(g.usage - g.rss) }),
	one("container_memory_failcnt", "Number of memory usage hits limits", "counter", hasAll, zero),
	{name: "container_memory_failures_total", help: "Cumulative count of memory allocation failures.", typ: "counter", vars: []kvar{
		{e: [4]string{`failure_type="pgfault",`, "", "", `,scope="container"`}, dev: -1, has: hasAll, val: func(g *kcg, _ *kctx, _ int) float64 { return f64(g.pf) }},
		{e: [4]string{`failure_type="pgfault",`, "", "", `,scope="hierarchy"`}, dev: -1, has: hasAll, val: func(g *kcg, _ *kctx, _ int) float64 { return f64(g.pf) }},
		{e: [4]string{`failure_type="pgmajfault",`, "", "", `,scope="container"`}, dev: -1, has: hasAll, val: func(g *kcg, _ *kctx, _ int) float64 { return f64(g.maj) }},
		{e: [4]string{`failure_type="pgmajfault",`, "", "", `,scope="hierarchy"`}, dev: -1, has: hasAll, val: func(g *kcg, _ *kctx, _ int) float64 { return f64(g.maj) }},
	}},
	one("container_memory_kernel_usage", "Size of kernel memory allocated in bytes.", "gauge", hasAll, zero),
	one("container_memory_mapped_file", "Size of memory mapped files in bytes.", "gauge", hasAll,
		func(g *kcg) float64 { return f64((g.usage - g.rss) / 8 &^ 4095) }),
	one("container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes", "gauge", hasAll,
		func(g *kcg) float64 { return f64((g.usage + g.usage/16) &^ 4095) }),
	one("container_memory_rss", "Size of RSS in bytes.", "gauge", hasAll, func(g *kcg) float64 { return f64(g.rss) }),
	one("container_memory_swap", "Container swap usage in bytes.", "gauge", hasAll, zero),
	one("container_memory_total_active_file_bytes", "Current total active file in bytes.", "gauge", hasAll,
		func(g *kcg) float64 { return f64((g.usage - g.rss) / 4 &^ 4095) }),
	one("container_memory_total_inactive_file_bytes", "Current total inactive file in bytes.", "gauge", hasAll,
		func(g *kcg) float64 { return f64(g.usage - g.rss - (g.usage-g.rss)/4&^4095) }),
	one("container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed", "gauge", hasAll,
		func(g *kcg) float64 { return f64(g.usage) }),
	one("container_memory_working_set_bytes", "Current working set in bytes.", "gauge", hasAll, func(g *kcg) float64 { return f64(g.ws) }),
	netFam("container_network_receive_bytes_total", "Cumulative count of bytes received", func(g *kcg) float64 { return f64(g.rx) }),
	netFam("container_network_receive_errors_total", "Cumulative count of errors encountered while receiving", func(g *kcg) float64 { return f64(g.rxErr) }),
	netFam("container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving", func(g *kcg) float64 { return f64(g.rxErr / 4) }),
	netFam("container_network_receive_packets_total", "Cumulative count of packets received", func(g *kcg) float64 { return f64(g.rx / 900) }),
	netFam("container_network_transmit_bytes_total", "Cumulative count of bytes transmitted", func(g *kcg) float64 { return f64(g.tx) }),
	netFam("container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting", func(g *kcg) float64 { return f64(g.txErr) }),
	netFam("container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting", func(g *kcg) float64 { return f64(g.txErr / 4) }),
	netFam("container_network_transmit_packets_total", "Cumulative count of packets transmitted", func(g *kcg) float64 { return f64(g.tx / 700) }),
	one("container_oom_events_total", "Count of out of memory events observed for the container", "counter", hasAll,
		func(g *kcg) float64 { return float64(g.oom) }),
	one("container_pressure_cpu_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to CPU congestion.", "counter", hasAll,
		func(g *kcg) float64 { return float64(g.psiCPU*8/10) / 1e6 }),
	one("container_pressure_cpu_waiting_seconds_total", "Total time duration tasks in the container have waited due to CPU congestion.", "counter", hasAll,
		func(g *kcg) float64 { return float64(g.psiCPU) / 1e6 }),
	one("container_pressure_io_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to IO congestion.", "counter", hasAll,
		func(g *kcg) float64 { return float64(g.psiIO*8/10) / 1e6 }),
	one("container_pressure_io_waiting_seconds_total", "Total time duration tasks in the container have waited due to IO congestion.", "counter", hasAll,
		func(g *kcg) float64 { return float64(g.psiIO) / 1e6 }),
	one("container_pressure_memory_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to memory congestion.", "counter", hasAll, zero),
	one("container_pressure_memory_waiting_seconds_total", "Total time duration tasks in the container have waited due to memory congestion.", "counter", hasAll, zero),
	one("container_processes", "Number of processes running inside the container.", "gauge", hasAll, func(g *kcg) float64 { return f64(g.procs) }),
	{name: "container_scrape_error"}, // written in place: no labels
	one("container_sockets", "Number of open sockets for the container.", "gauge", hasAll, func(g *kcg) float64 { return f64(g.sockets) }),
	noTS(one("container_spec_cpu_period", "CPU period of the container.", "gauge", hasAll, func(*kcg) float64 { return 100000 })),
	noTS(one("container_spec_cpu_quota", "CPU quota of the container.", "gauge", hasQuota, func(g *kcg) float64 { return float64(g.cpuQuota) })),
	noTS(one("container_spec_cpu_shares", "CPU share of the container.", "gauge", hasAll, func(g *kcg) float64 { return float64(g.cpuShares) })),
	noTS(one("container_spec_memory_limit_bytes", "Memory limit for the container.", "gauge", hasAll, func(g *kcg) float64 { return f64(g.memLimit) })),
	noTS(one("container_spec_memory_reservation_limit_bytes", "Memory reservation limit for the container.", "gauge", hasAll, zero)),
	noTS(one("container_spec_memory_swap_limit_bytes", "Memory swap limit for the container.", "gauge", hasAll, zero)),
	noTS(one("container_start_time_seconds", "Start time of the container since unix epoch in seconds.", "gauge", hasAll,
		func(g *kcg) float64 { return float64(g.start) })),
	{name: "container_tasks_state", help: "Number of tasks in given state", typ: "gauge", vars: []kvar{
		{e: [4]string{3: `,state="iowaiting"`}, dev: -1, has: hasAll, val: func(*kcg, *kctx, int) float64 { return 0 }},
		{e: [4]string{3: `,state="running"`}, dev: -1, has: hasAll, val: func(*kcg, *kctx, int) float64 { return 0 }},
		{e: [4]string{3: `,state="sleeping"`}, dev: -1, has: hasAll, val: func(*kcg, *kctx, int) float64 { return 0 }},
		{e: [4]string{3: `,state="stopped"`}, dev: -1, has: hasAll, val: func(*kcg, *kctx, int) float64 { return 0 }},
		{e: [4]string{3: `,state="uninterruptible"`}, dev: -1, has: hasAll, val: func(*kcg, *kctx, int) float64 { return 0 }},
	}},
	one("container_threads", "Number of threads running inside the container", "gauge", hasAll, func(g *kcg) float64 { return f64(g.threads) }),
	one("container_threads_max", "Maximum number of threads allowed inside the container, infinity if value is zero", "gauge", hasAll,
		func(g *kcg) float64 { return f64(g.thrMax) }),
	{name: "container_ulimits_soft", help: "Soft ulimit values for the container root process. Unlimited if -1, except priority and nice", typ: "gauge", vars: []kvar{
		{e: [4]string{3: `,ulimit="max_open_files"`}, dev: -1, has: hasUlimits, val: func(*kcg, *kctx, int) float64 { return 1048576 }},
	}},
}

const pauseImage = "registry.k8s.io/pause:3.10.1"

// kw renders the kubelet payload.
type kw struct {
	b     []byte
	arena []byte // the cgroups' label parts
	ts    []byte // " <ms>\n"
}

// labels pre-renders a cgroup's label parts into the arena.
func (w *kw) labels(g *kcg, image, name, namespace, pod string) {
	a := w.arena
	g.lb[0] = int32(len(a))
	a = append(a, `container="`...)
	a = appendEscaped(a, g.container)
	a = append(a, `",`...)
	g.lb[1] = int32(len(a))
	a = append(a, `id="`...)
	a = appendEscaped(a, g.id)
	a = append(a, `",image="`...)
	a = appendEscaped(a, image)
	a = append(a, `",`...)
	g.lb[2] = int32(len(a))
	a = append(a, `name="`...)
	a = append(a, name...)
	a = append(a, `",namespace="`...)
	a = appendEscaped(a, namespace)
	a = append(a, `",`...)
	g.lb[3] = int32(len(a))
	a = append(a, `pod="`...)
	a = appendEscaped(a, pod)
	a = append(a, '"')
	g.lb[4] = int32(len(a))
	w.arena = a
}

func (w *kw) sample(name string, g *kcg, e *[4]string, e0 string, v float64, ts bool) {
	b := w.b
	b = append(b, name...)
	b = append(b, '{')
	b = append(b, w.arena[g.lb[0]:g.lb[1]]...)
	b = append(b, e0...)
	b = append(b, w.arena[g.lb[1]:g.lb[2]]...)
	b = append(b, e[1]...)
	b = append(b, w.arena[g.lb[2]:g.lb[3]]...)
	b = append(b, e[2]...)
	b = append(b, w.arena[g.lb[3]:g.lb[4]]...)
	b = append(b, e[3]...)
	b = append(b, '}', ' ')
	b = appendFloat(b, v)
	if ts {
		b = append(b, w.ts...)
	} else {
		b = append(b, '\n')
	}
	w.b = b
}

func (w *kw) family(name, help, typ string) {
	p := promWriter{b: w.b}
	p.family(name, help, typ)
	w.b = p.b
}

// releaseCadvisorBuf takes back a buffer of kubeletCadvisorMetrics.
func (c *Cluster) releaseCadvisorBuf(b []byte) {
	if cap(b) <= 16<<20 {
		b = b[:0]
		c.cadvisorBufs.Put(&b)
	}
}

// kubeletCadvisorMetrics renders /metrics/cadvisor as a v1.36 kubelet does
// (containerd, cgroup v2, cgroupfs driver): every family and label set of
// the kubelet's (compare testdata with
// ../shared/fixtures/nri-kubernetes/k8s-1.35_metrics_cadvisor.txt:
// TestCadvisorKubeletFamilies), families by name and series by label
// values. The values of the lean payload's families are the lean payload's
// (the summary's); the others derive from the model (page faults, PSI,
// disk IO operations, packets) or are plausible constants.
func (c *Cluster) kubeletCadvisorMetrics(ev *nodeEval) []byte {
	n := ev.n
	T := ev.T
	skew := ev.skew
	C := c.opts.ContainersPerPod
	w := kw{ts: append(append([]byte{' '}, strconv.AppendInt(nil, (T+skew)*1000, 10)...), '\n')}
	if p, ok := c.cadvisorBufs.Get().(*[]byte); ok {
		w.b = (*p)[:0]
	}
	w.arena = make([]byte, 0, 64+len(ev.pods)*(1+2*C)*(220))
	cgs := make([]kcg, 0, 6+len(ev.pods)*(2+C))

	// Sums of the children's threads (pod, QoS, kubepods and root cgroups).
	var podsThreads uint64
	var qosThreads [3]uint64
	for pi := range ev.pods {
		pe := &ev.pods[pi]
		dir := podCgroupDir(pe)
		gs := uint64(ev.idx*c.opts.PodsPerNode + pe.slot)
		age := since(pe.start, T)
		shares, quota := podCPUSpec(pe)
		podIdx := len(cgs)
		cgs = append(cgs, kcg{kind: kPod, id: dir, cpuNs: pe.cpuNs, ws: pe.ws, usage: pe.usage, rss: pe.rss, pf: pe.pf, maj: pe.maj,
			start: pe.start + skew, psiCPU: pe.psiCPU, psiIO: pe.psiIO, memLimit: pe.memLimit, cpuShares: shares, cpuQuota: quota,
			hasIO: true, ioRead: pe.ioRead, ioWrite: pe.ioWrite,
			hasNet: true, rx: pe.rx, tx: pe.tx, rxErr: pe.rxErr, txErr: pe.txErr})
		if quota > 0 {
			cgs[podIdx].cfs = podCFS(pe, T)
		}
		// The sandbox (pause) container: 1 process, a few hundred KiB.
		sb := hex64(hash4(c.seed, tagSandbox, gs, uint64(pe.gen), 0))
		cgs = append(cgs, kcg{kind: kSandbox, id: dir + "/" + sb, cpuNs: age * 9000, ws: 196608, usage: 196608, rss: 36864,
			pf: 120 + age/600, start: pe.start + skew, procs: 1, threads: 1, fds: 3, cpuShares: 2})
		w.labels(&cgs[len(cgs)-1], pauseImage, sb, pe.wl.namespace, pe.name)
		threads := uint64(1)
		for ci := range pe.ctrs {
			ce := &pe.ctrs[ci]
			if !ce.running() {
				continue // waiting to be restarted: its cgroup is gone
			}
			h := mix64(gs<<8 | uint64(ci))
			procs := 1 + h%3
			g := kcg{kind: kCtr, container: ce.wc.name, id: dir + "/" + ce.id, cpuNs: ce.cpuNs, ws: ce.ws, usage: ce.usage, rss: ce.rss,
				pf: ce.pf, maj: ce.majPF, start: ce.start + skew, psiCPU: ce.psiCPU, psiIO: ce.psiIO,
				procs: procs, threads: procs * (1 + h>>8%24), fds: 3 + h>>16%60, sockets: h >> 24 % 12,
				memLimit: uint64(ce.wc.memLim), cpuShares: max(ce.wc.cpuReq*1024/1000, 2), cpuQuota: ce.wc.cpuLim * 100,
				hasIO: true, ioRead: ce.ioRead, ioWrite: ce.ioWrite, hasFs: true, fsUsage: ce.p.rootfs, oom: ce.run.oomEvents}
			if ce.wc.cpuLim > 0 {
				g.cfs = &ce.cfs
			}
			threads += g.threads
			cgs = append(cgs, g)
			w.labels(&cgs[len(cgs)-1], ce.wc.image, ce.id, pe.wl.namespace, pe.name)
		}
		cgs[podIdx].threads = threads
		w.labels(&cgs[podIdx], "", "", pe.wl.namespace, pe.name)
		podsThreads += threads
		qosThreads[qosIndex(pe.wl.qos)] += threads
	}

	bootAge := since(n.boot, T)
	pAge := since(n.podsStart, T)
	cpuScale := uint64(max(1, n.cpuCap/1000))
	cgs = append(cgs, kcg{kind: kRoot, id: "/", cpuNs: ev.cpuNs, ws: ev.ws, usage: ev.usage, rss: ev.rss, pf: ev.pf, maj: ev.maj,
		start: n.boot + skew, psiCPU: ev.psiCPU, psiIO: bootAge * 200, threads: podsThreads + 180 + uint64(n.procBase)*2,
		memLimit: uint64(n.memCap), cpuShares: 1024, hasIO: true, ioRead: ev.ioRead, ioWrite: ev.ioWrite,
		hasNet: true, rx: ev.rx, tx: ev.tx, rxErr: ev.rxErr, txErr: ev.txErr})
	cgs = append(cgs, kcg{kind: kKubepods, id: "/kubepods", cpuNs: ev.podsCPUNs, ws: ev.podsWs, usage: ev.podsUsage, rss: ev.podsRss,
		pf: ev.podsPF, maj: ev.podsMaj, start: n.podsStart + skew, psiCPU: ev.podsPSICPU / cpuScale, psiIO: pAge * 150,
		threads: podsThreads, memLimit: uint64(n.memAlloc), cpuShares: n.cpuAlloc * 1024 / 1000,
		hasIO: true, ioRead: ev.podsIORead, ioWrite: ev.podsIOWrite})
	for _, q := range [...]struct {
		id  string
		qos v1.PodQOSClass
	}{{"/kubepods/besteffort", v1.PodQOSBestEffort}, {"/kubepods/burstable", v1.PodQOSBurstable}} {
		qi := qosIndex(q.qos)
		cgs = append(cgs, kcg{kind: kQoS, id: q.id, cpuNs: ev.qosCPUNs[qi], ws: ev.qosWs[qi], usage: ev.qosUsage[qi], rss: ev.qosRss[qi],
			pf: ev.qosPF[qi], maj: ev.qosMaj[qi], start: n.podsStart + skew, threads: qosThreads[qi], cpuShares: 2,
			hasIO: true, ioRead: ev.qosIORead[qi], ioWrite: ev.qosIOWrite[qi]})
	}
	if c.opts.Mode == ModeRealistic { // as the summary's system containers
		kage := since(n.kubeletStart, T)
		cgs = append(cgs, kcg{kind: kSystem, id: "/system.slice/kubelet.service", cpuNs: ev.kubeletNs, ws: ev.kubeletWs,
			usage: ev.kubeletWs + 4*mib, rss: ev.kubeletWs * 9 / 10 &^ 4095, pf: kage * 3, start: n.kubeletStart + skew,
			psiCPU: kage * 1500, psiIO: kage * 20, procs: 1, threads: 21, fds: 26, sockets: 11, thrMax: 9395, cpuShares: 100,
			hasIO: true, ioRead: kage * 512, ioWrite: kage * 2048})
	}
	for i := range cgs {
		if g := &cgs[i]; g.kind != kPod && g.kind != kSandbox && g.kind != kCtr {
			w.labels(g, "", "", "", "")
		}
	}
	order := make([]*kcg, len(cgs))
	for i := range cgs {
		order[i] = &cgs[i]
	}
	sort.Slice(order, func(i, j int) bool {
		if order[i].container != order[j].container {
			return order[i].container < order[j].container
		}
		return order[i].id < order[j].id
	})

	x := &kctx{now: float64(T + skew)}
	c.rootDevs(ev, x)

	if w.b == nil {
		w.b = make([]byte, 0, 8192+len(cgs)*12000)
	}
	w.family("cadvisor_version_info", "A metric with a constant '1' value labeled by kernel version, OS version, docker version, cadvisor version & cadvisor revision.", "gauge")
	w.b = append(w.b, `cadvisor_version_info{cadvisorRevision="",cadvisorVersion="",dockerVersion="",kernelVersion="6.12.0-sim",osVersion="Debian GNU/Linux 12 (bookworm)"} 1`+"\n"...)
	for fi := range kubeletFamilies {
		f := &kubeletFamilies[fi]
		if f.name == "container_scrape_error" {
			w.family(f.name, "1 if there was an error while getting container metrics, 0 otherwise", "gauge")
			w.b = append(w.b, "container_scrape_error 0\n"...)
			continue
		}
		w.family(f.name, f.help, f.typ)
		// Series sort by label values: container, then the labels that
		// sort before id (cpu, device, failure_type), then id ...
		for gs := 0; gs < len(order); {
			ge := gs + 1
			for ge < len(order) && order[ge].container == order[gs].container {
				ge++
			}
			for vs := 0; vs < len(f.vars); {
				ve := vs + 1
				for ve < len(f.vars) && f.vars[ve].dev < 0 && f.vars[vs].dev < 0 && f.vars[ve].e[0] == f.vars[vs].e[0] {
					ve++
				}
				for _, g := range order[gs:ge] {
					for vi := vs; vi < ve; vi++ {
						v := &f.vars[vi]
						if !v.has(g) {
							continue
						}
						e0 := v.e[0]
						if v.dev >= 0 {
							e0 = x.devs[v.dev].label
						}
						w.sample(f.name, g, &v.e, e0, v.val(g, x, v.dev), !f.noTS)
					}
				}
				vs = ve
			}
			gs = ge
		}
	}
	c.machineFamilies(&w, n)
	return w.b
}

// rootDevs fills the root cgroup's filesystems: /dev/vda1 (and the
// overlays on it) with the node's filesystem (the summary's) and the
// disk's IO, the tmpfs mounts mostly empty.
func (c *Cluster) rootDevs(ev *nodeEval, x *kctx) {
	n := ev.n
	inodes := n.fsCap / 16384
	root := kdev{usage: ev.fsUsed, limit: n.fsCap, inodes: inodes, inodesFree: inodes - min(ev.fsInodesUsed, inodes),
		reads: ev.ioRead / 16384, writes: ev.ioWrite / 8192, sectorReads: ev.ioRead / 512, sectorWrites: ev.ioWrite / 512}
	root.readsMerged, root.writesMerged = root.reads/9, root.writes/3
	root.readMs, root.writeMs = root.reads/2, root.writes
	root.ioMs = root.readMs + root.writeMs*2/3
	root.ioWeightedMs = root.readMs + root.writeMs
	memHalf := uint64(n.memCap) / 2 &^ 4095
	tmpfs := func(label string, limit, used uint64) kdev {
		in := uint64(n.memCap) / 8192
		return kdev{label: label, usage: used, limit: limit, inodes: in, inodesFree: in - 1 - used/4096}
	}
	h := mix64(uint64(ev.idx) ^ c.seed<<20)
	shm := [2]string{hex64(h), hex64(h + 1)}
	if shm[1] < shm[0] {
		shm[0], shm[1] = shm[1], shm[0]
	}
	x.devs[devDev] = tmpfs(`device="/dev",`, 64*mib, 0)
	x.devs[devShm] = tmpfs(`device="/dev/shm",`, 64*mib, 0)
	x.devs[devVda1] = root
	x.devs[devVda1].label = lblVda1
	x.devs[devRun] = tmpfs(`device="/run",`, memHalf, 1835008+uint64(len(ev.pods))*16384)
	for i, id := range shm {
		x.devs[devSandboxShm0+i] = tmpfs(`device="/run/containerd/io.containerd.grpc.v1.cri/sandboxes/`+id+`/shm",`, 64*mib, 0)
	}
	x.devs[devRunLock] = tmpfs(`device="/run/lock",`, 5*mib, 0)
	x.devs[devTmp] = tmpfs(`device="/tmp",`, memHalf, 8192)
	for i, m := range overlayMinors {
		d := kdev{label: `device="overlay_0-` + m + `",`, usage: root.usage, limit: root.limit, inodes: root.inodes, inodesFree: root.inodesFree}
		x.devs[devOverlay0+i] = d
	}
}

// machineFamilies writes the machine_* families.
func (c *Cluster) machineFamilies(w *kw, n *nodeStatic) {
	m := make([]byte, 0, 160)
	m = append(m, `{boot_id="`...)
	m = append(m, n.bootID...)
	m = append(m, `",machine_id="`...)
	m = append(m, n.machineID...)
	m = append(m, `",system_uuid="`...)
	m = append(m, n.uid...)
	m = append(m, `"} `...)
	one := func(name, help string, v float64) {
		w.family(name, help, "gauge")
		w.b = append(w.b, name...)
		w.b = append(w.b, m...)
		w.b = appendFloat(w.b, v)
		w.b = append(w.b, '\n')
	}
	cores := float64(n.cpuCap / 1000)
	one("machine_cpu_cores", "Number of logical CPU cores.", cores)
	one("machine_cpu_physical_cores", "Number of physical CPU cores.", max(1, cores/2))
	one("machine_cpu_sockets", "Number of CPU sockets.", 1)
	one("machine_memory_bytes", "Amount of memory installed on the machine.", float64(n.memCap))
	one("machine_nvm_avg_power_budget_watts", "NVM power budget.", 0)
	w.family("machine_nvm_capacity", "NVM capacity value labeled by NVM mode (memory mode or app direct mode).", "gauge")
	for _, mode := range [...]string{"app_direct_mode", "memory_mode"} {
		w.b = append(w.b, "machine_nvm_capacity"...)
		w.b = append(w.b, m[:len(m)-len(`",system_uuid="`)-len(n.uid)-3]...)
		w.b = append(w.b, `",mode="`...)
		w.b = append(w.b, mode...)
		w.b = append(w.b, `",system_uuid="`...)
		w.b = append(w.b, n.uid...)
		w.b = append(w.b, "\"} 0\n"...)
	}
	w.family("machine_scrape_error", "1 if there was an error while getting machine metrics, 0 otherwise.", "gauge")
	w.b = append(w.b, "machine_scrape_error 0\n"...)
	one("machine_swap_bytes", "Amount of swap memory available on the machine.", 0)
}
