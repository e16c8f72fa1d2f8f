package sim

import (
	"math"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	stats "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// u64arena hands out *uint64 from chunked storage to avoid one allocation
// per optional counter.
type u64arena struct{ buf []uint64 }

func (a *u64arena) p(v uint64) *uint64 {
	if len(a.buf) == cap(a.buf) {
		a.buf = make([]uint64, 0, 512)
	}
	a.buf = append(a.buf, v)
	return &a.buf[len(a.buf)-1]
}

func mtime(unix int64) metav1.Time { return metav1.NewTime(time.Unix(unix, 0).UTC()) }

// psiAvg converts a stall rate (µs per second) to a PSI percentage with two
// decimals, as the kernel reports it.
func psiAvg(rate float64) float64 { return math.Round(rate/1e4*100) / 100 }

// psi builds PSI stats from a cumulative "some" stall total (µs) and the
// current stall rate (µs/s). "full" is 80% of "some".
func psi(total uint64, rate float64) *stats.PSIStats {
	avg := psiAvg(rate)
	full := psiAvg(rate * 0.8)
	return &stats.PSIStats{
		Full: stats.PSIData{Total: total * 8 / 10, Avg10: full, Avg60: full, Avg300: full},
		Some: stats.PSIData{Total: total, Avg10: avg, Avg60: avg, Avg300: avg},
	}
}

func zeroPSI() *stats.PSIStats { return &stats.PSIStats{} }

// buildSummary renders the /stats/summary payload of an evaluated node.
// With cpuMemOnly it mimics ?only_cpu_and_memory=true.
func (c *Cluster) buildSummary(ev *nodeEval, cpuMemOnly bool) *stats.Summary {
	var a u64arena
	n := ev.n
	T := ev.T
	// Times are reported on the node's clock, which may be off (skew).
	onNodeClock := func(unix int64) metav1.Time { return mtime(unix + ev.skew) }
	now := onNodeClock(T)
	realistic := c.opts.Mode == ModeRealistic
	fsAvail := n.fsCap - min(ev.fsUsed, n.fsCap)
	inodes := n.fsCap / 16384
	inodesFree := inodes - min(ev.fsInodesUsed, inodes)

	nodeFs := func(used, inodesUsed uint64) *stats.FsStats {
		return &stats.FsStats{
			Time: now, AvailableBytes: a.p(fsAvail), CapacityBytes: a.p(n.fsCap), UsedBytes: a.p(used),
			InodesFree: a.p(inodesFree), Inodes: a.p(inodes), InodesUsed: a.p(inodesUsed),
		}
	}
	cpuScale := float64(max(1, n.cpuCap/1000))

	sum := &stats.Summary{Pods: make([]stats.PodStats, 0, len(ev.pods))}
	ns := &sum.Node
	ns.NodeName = n.name
	ns.StartTime = onNodeClock(n.boot)
	ns.CPU = &stats.CPUStats{Time: now, UsageNanoCores: a.p(ev.rate), UsageCoreNanoSeconds: a.p(ev.cpuNs)}
	ns.Memory = &stats.MemoryStats{
		Time: now, AvailableBytes: a.p(uint64(n.memCap) - min(ev.ws, uint64(n.memCap))), UsageBytes: a.p(ev.usage),
		WorkingSetBytes: a.p(ev.ws), RSSBytes: a.p(ev.rss), PageFaults: a.p(ev.pf), MajorPageFaults: a.p(ev.maj),
	}
	// System containers.
	podsSys := stats.ContainerStats{
		Name:      stats.SystemContainerPods,
		StartTime: onNodeClock(n.podsStart),
		CPU:       &stats.CPUStats{Time: now, UsageNanoCores: a.p(ev.podsRate), UsageCoreNanoSeconds: a.p(ev.podsCPUNs)},
		Memory: &stats.MemoryStats{
			Time: now, AvailableBytes: a.p(uint64(n.memAlloc) - min(ev.podsWs, uint64(n.memAlloc))), UsageBytes: a.p(ev.podsUsage),
			WorkingSetBytes: a.p(ev.podsWs), RSSBytes: a.p(ev.podsRss), PageFaults: a.p(ev.podsPF), MajorPageFaults: a.p(ev.podsMaj),
		},
	}
	if realistic {
		kubelet := stats.ContainerStats{
			Name:      stats.SystemContainerKubelet,
			StartTime: onNodeClock(n.kubeletStart),
			CPU:       &stats.CPUStats{Time: now, UsageNanoCores: a.p(ev.kubeletRate), UsageCoreNanoSeconds: a.p(ev.kubeletNs)},
			Memory: &stats.MemoryStats{
				Time: now, UsageBytes: a.p(ev.kubeletWs + 4*mib), WorkingSetBytes: a.p(ev.kubeletWs),
				RSSBytes: a.p(ev.kubeletWs * 9 / 10 &^ 4095), PageFaults: a.p(since(n.kubeletStart, T) * 3), MajorPageFaults: a.p(0),
			},
		}
		if !cpuMemOnly {
			kage := since(n.kubeletStart, T)
			kubelet.CPU.PSI = psi(kage*1500, 1500)
			kubelet.Memory.PSI = zeroPSI()
			kubelet.IO = &stats.IOStats{Time: now, PSI: psi(kage*20, 20)}
			kubelet.Swap = &stats.SwapStats{Time: now, SwapUsageBytes: a.p(0)}
		}
		ns.SystemContainers = append(ns.SystemContainers, kubelet)
	}
	if !cpuMemOnly {
		pAge := since(n.podsStart, T)
		podsSys.CPU.PSI = psi(ev.podsPSICPU/uint64(cpuScale), float64(ev.podsPSICPU)/float64(max(pAge, 1))/cpuScale)
		podsSys.Memory.PSI = zeroPSI()
		podsSys.IO = &stats.IOStats{Time: now, PSI: psi(pAge*150, 150)}
		podsSys.Swap = &stats.SwapStats{Time: now, SwapUsageBytes: a.p(0)}
	}
	ns.SystemContainers = append(ns.SystemContainers, podsSys)

	if !cpuMemOnly {
		bootAge := since(n.boot, T)
		ns.CPU.PSI = psi(ev.psiCPU, float64(ev.psiCPU)/float64(max(bootAge, 1)))
		ns.Memory.PSI = zeroPSI()
		ns.IO = &stats.IOStats{Time: now, PSI: psi(bootAge*200, 200)}
		eth0 := stats.InterfaceStats{Name: "eth0", RxBytes: a.p(ev.rx), RxErrors: a.p(ev.rxErr), TxBytes: a.p(ev.tx), TxErrors: a.p(ev.txErr)}
		ns.Network = &stats.NetworkStats{Time: now, InterfaceStats: eth0, Interfaces: []stats.InterfaceStats{eth0}}
		ns.Fs = nodeFs(ev.fsUsed, ev.fsInodesUsed)
		imageFs := nodeFs(n.imageFsUsed, n.imageFsInodes)
		containerFs := *imageFs
		ns.Runtime = &stats.RuntimeStats{ImageFs: imageFs, ContainerFs: &containerFs}
		maxPID, curProc := int64(4194304), ev.procs
		ns.Rlimit = &stats.RlimitStats{Time: now, MaxPID: &maxPID, NumOfRunningProcesses: &curProc}
		ns.Swap = &stats.SwapStats{Time: now, SwapAvailableBytes: a.p(0), SwapUsageBytes: a.p(0)}
	}

	for pi := range ev.pods {
		pe := &ev.pods[pi]
		ps := stats.PodStats{
			PodRef:     stats.PodReference{Name: pe.name, Namespace: pe.wl.namespace, UID: pe.uid},
			StartTime:  onNodeClock(pe.start),
			Containers: make([]stats.ContainerStats, 0, len(pe.ctrs)),
			CPU:        &stats.CPUStats{Time: now, UsageNanoCores: a.p(pe.rateNano), UsageCoreNanoSeconds: a.p(pe.cpuNs)},
			Memory: &stats.MemoryStats{
				Time: now, UsageBytes: a.p(pe.usage), WorkingSetBytes: a.p(pe.ws), RSSBytes: a.p(pe.rss),
				PageFaults: a.p(pe.pf), MajorPageFaults: a.p(pe.maj),
			},
		}
		if pe.memLimit > 0 {
			ps.Memory.AvailableBytes = a.p(pe.memLimit - min(pe.ws, pe.memLimit))
		}
		age := since(pe.start, T)
		for ci := range pe.ctrs {
			ce := &pe.ctrs[ci]
			if !ce.running() {
				continue // waiting to be restarted: the kubelet has no stats of it
			}
			ps.Containers = append(ps.Containers, stats.ContainerStats{})
			cs := &ps.Containers[len(ps.Containers)-1]
			cs.Name = ce.wc.name
			cs.StartTime = onNodeClock(ce.start)
			cs.CPU = &stats.CPUStats{Time: now, UsageNanoCores: a.p(ce.rateNano), UsageCoreNanoSeconds: a.p(ce.cpuNs)}
			cs.Memory = &stats.MemoryStats{
				Time: now, UsageBytes: a.p(ce.usage), WorkingSetBytes: a.p(ce.ws), RSSBytes: a.p(ce.rss),
				PageFaults: a.p(ce.pf), MajorPageFaults: a.p(ce.majPF),
			}
			if lim := uint64(ce.wc.memLim); lim > 0 {
				cs.Memory.AvailableBytes = a.p(lim - min(ce.ws, lim))
			}
			if cpuMemOnly {
				continue
			}
			cs.CPU.PSI = psi(ce.psiCPU, float64(ce.p.psiCPU)*float64(ce.rateNano)/float64(ce.p.cpu.base*1e6))
			cs.Memory.PSI = zeroPSI()
			cs.IO = &stats.IOStats{Time: now, PSI: psi(ce.psiIO, float64(ce.p.psiIO))}
			cs.Rootfs = nodeFs(ce.p.rootfs, ce.p.rootfs/65536+1)
			cs.Logs = nodeFs(ce.logs, 1)
			cs.Swap = &stats.SwapStats{Time: now, SwapAvailableBytes: a.p(0), SwapUsageBytes: a.p(0)}
		}
		if !cpuMemOnly {
			ps.CPU.PSI = psi(pe.psiCPU, float64(pe.psiCPU)/float64(max(age, 1)))
			ps.Memory.PSI = zeroPSI()
			ps.IO = &stats.IOStats{Time: now, PSI: psi(pe.psiIO, float64(pe.psiIO)/float64(max(age, 1)))}
			eth0 := stats.InterfaceStats{Name: "eth0", RxBytes: a.p(pe.rx), RxErrors: a.p(pe.rxErr), TxBytes: a.p(pe.tx), TxErrors: a.p(pe.txErr)}
			ps.Network = &stats.NetworkStats{Time: now, InterfaceStats: eth0, Interfaces: []stats.InterfaceStats{eth0}}
			ps.VolumeStats = c.volumeStats(&a, pe, n, now, fsAvail, inodes, inodesFree)
			ps.EphemeralStorage = nodeFs(pe.ephUsed, pe.ephInodes)
			ps.ProcessStats = &stats.ProcessStats{ProcessCount: a.p(pe.procs)}
			ps.Swap = &stats.SwapStats{Time: now, SwapUsageBytes: a.p(0)}
		}
		sum.Pods = append(sum.Pods, ps)
	}
	return sum
}

func (c *Cluster) volumeStats(a *u64arena, pe *podEval, n *nodeStatic, now metav1.Time, fsAvail, inodes, inodesFree uint64) []stats.VolumeStats {
	vols := make([]stats.VolumeStats, 0, 3)
	if pe.sp.emptyDirMiB > 0 {
		used := uint64(pe.sp.emptyDirMiB) * mib
		vols = append(vols, stats.VolumeStats{Name: "cache", FsStats: stats.FsStats{
			Time: now, AvailableBytes: a.p(fsAvail), CapacityBytes: a.p(n.fsCap), UsedBytes: a.p(used),
			InodesFree: a.p(inodesFree), Inodes: a.p(inodes), InodesUsed: a.p(used/(4*mib) + 1),
		}})
	}
	if pe.wl.kind == kindStatefulSet {
		capB := uint64(pe.sp.pvcGiB) * gib
		used := uint64(pe.sp.pvcUsedMiB) * mib
		pvcInodes := capB / 16384
		pvcUsedInodes := used/65536 + 11
		vols = append(vols, stats.VolumeStats{
			Name:   "data",
			PVCRef: &stats.PVCReference{Name: "data-" + pe.name, Namespace: pe.wl.namespace},
			FsStats: stats.FsStats{
				Time: now, AvailableBytes: a.p(capB - used), CapacityBytes: a.p(capB), UsedBytes: a.p(used),
				InodesFree: a.p(pvcInodes - pvcUsedInodes), Inodes: a.p(pvcInodes), InodesUsed: a.p(pvcUsedInodes),
			},
		})
	}
	// Projected service-account token volume (tmpfs sized by the pod memory limit).
	tmpfs := pe.memLimit
	if tmpfs == 0 {
		tmpfs = uint64(n.memAlloc)
	}
	vols = append(vols, stats.VolumeStats{Name: c.apiAccessVolume(pe), FsStats: stats.FsStats{
		Time: now, AvailableBytes: a.p(tmpfs - 12288), CapacityBytes: a.p(tmpfs), UsedBytes: a.p(12288),
		InodesFree: a.p(tmpfs/4096 - 9), Inodes: a.p(tmpfs / 4096), InodesUsed: a.p(9),
	}})
	return vols
}

// apiAccessVolume is the name of the pod's projected service-account volume.
func (c *Cluster) apiAccessVolume(pe *podEval) string {
	return "kube-api-access-" + randString(hash4(c.seed, tagVolume, stringHash(pe.uid), 0, 0), 5)
}
