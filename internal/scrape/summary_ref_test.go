package scrape

// The reference decoder: the Summary API read into the k8s.io/kubelet stats
// types with encoding/json, as DecodeSummary was first written. The tests
// hold DecodeSummary to its results.

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	stats "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubemon/kubemon/internal/model"
)

// decodeSummaryRef decodes a kubelet Summary API payload (/stats/summary,
// stats/v1alpha1) into entries for the node, its system containers, pods
// and containers. node names the scraped node (it wins over the payload's
// nodeName, which can be empty); now stands in for missing timestamps.
// Absent fields stay absent (NaN), they are never read as zero.
func decodeSummaryRef(data []byte, node string, now time.Time) ([]model.Entry, error) {
	var s stats.Summary
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("decode summary: %w", err)
	}
	if node == "" {
		node = s.Node.NodeName
	}
	if node == "" {
		return nil, fmt.Errorf("decode summary: no node name")
	}
	entries := make([]model.Entry, 0, 1+len(s.Node.SystemContainers)+len(s.Pods)*3)

	n := model.Entry{Object: model.Object{Level: model.LevelNode, Node: node}, Values: model.NewValues()}
	n.Start = refMillis(s.Node.StartTime)
	n.Time = refFirstTime(now, refCpuTime(s.Node.CPU), refMemTime(s.Node.Memory), refNetTime(s.Node.Network))
	refSetCPU(&n.Values, s.Node.CPU)
	refSetMemory(&n.Values, s.Node.Memory)
	refSetNetwork(&n.Values, s.Node.Network)
	if fs := s.Node.Fs; fs != nil {
		refSet(&n.Values, model.FilesystemUsage, fs.UsedBytes)
		refSet(&n.Values, model.FilesystemLimit, fs.CapacityBytes)
		refSet(&n.Values, model.FilesystemAvailable, fs.AvailableBytes)
		refSet(&n.Values, model.FilesystemInodes, fs.Inodes)
		refSet(&n.Values, model.FilesystemInodesFree, fs.InodesFree)
	}
	refSetUptime(&n, s.Node.StartTime)
	entries = append(entries, n)

	for i := range s.Node.SystemContainers {
		c := &s.Node.SystemContainers[i]
		e := refContainerEntry(c, now)
		e.Object = model.Object{Level: model.LevelSysContainer, Node: node, Container: c.Name}
		entries = append(entries, e)
	}

	for i := range s.Pods {
		p := &s.Pods[i]
		if p.PodRef.Name == "" || p.PodRef.Namespace == "" {
			return nil, fmt.Errorf("decode summary: pod %d has no name or namespace", i)
		}
		pe := model.Entry{
			Object: model.Object{Level: model.LevelPod, Node: node, Namespace: p.PodRef.Namespace, Pod: p.PodRef.Name},
			Values: model.NewValues(),
			Start:  refMillis(p.StartTime),
		}
		pe.Time = refFirstTime(now, refCpuTime(p.CPU), refMemTime(p.Memory), refNetTime(p.Network))
		refSetCPU(&pe.Values, p.CPU)
		refSetMemory(&pe.Values, p.Memory)
		refSetNetwork(&pe.Values, p.Network)
		if es := p.EphemeralStorage; es != nil {
			refSet(&pe.Values, model.EphemeralStorageUsage, es.UsedBytes)
		}
		refSetUptime(&pe, p.StartTime)
		entries = append(entries, pe)
		for j := range p.Containers {
			c := &p.Containers[j]
			e := refContainerEntry(c, now)
			e.Object = model.Object{Level: model.LevelContainer, Node: node, Namespace: p.PodRef.Namespace, Pod: p.PodRef.Name, Container: c.Name}
			entries = append(entries, e)
		}
	}
	return entries, nil
}

func refContainerEntry(c *stats.ContainerStats, now time.Time) model.Entry {
	e := model.Entry{Values: model.NewValues(), Start: refMillis(c.StartTime)}
	e.Time = refFirstTime(now, refCpuTime(c.CPU), refMemTime(c.Memory))
	refSetCPU(&e.Values, c.CPU)
	refSetMemory(&e.Values, c.Memory)
	var fs *uint64
	if c.Rootfs != nil && c.Rootfs.UsedBytes != nil {
		v := *c.Rootfs.UsedBytes
		fs = &v
	}
	if c.Logs != nil && c.Logs.UsedBytes != nil {
		v := *c.Logs.UsedBytes
		if fs != nil {
			v += *fs
		}
		fs = &v
	}
	refSet(&e.Values, model.FilesystemUsage, fs)
	refSetUptime(&e, c.StartTime)
	return e
}

func refSetCPU(v *model.Values, c *stats.CPUStats) {
	if c == nil {
		return
	}
	if c.UsageCoreNanoSeconds != nil {
		v[model.CPUUsage] = float64(*c.UsageCoreNanoSeconds) / 1e9
	}
}

func refSetMemory(v *model.Values, m *stats.MemoryStats) {
	if m == nil {
		return
	}
	refSet(v, model.MemoryUsage, m.UsageBytes)
	refSet(v, model.MemoryWorkingSet, m.WorkingSetBytes)
	refSet(v, model.MemoryRSS, m.RSSBytes)
	refSet(v, model.MemoryPageFaults, m.PageFaults)
	refSet(v, model.MemoryMajorPageFaults, m.MajorPageFaults)
}

// setNetwork uses the default interface's counters; where the kubelet sends
// only named interfaces (Windows, some older kubelets) it sums them.
func refSetNetwork(v *model.Values, n *stats.NetworkStats) {
	if n == nil {
		return
	}
	if n.RxBytes != nil || n.TxBytes != nil {
		refSetIface(v, &n.InterfaceStats, false)
		return
	}
	for i := range n.Interfaces {
		refSetIface(v, &n.Interfaces[i], true)
	}
}

func refSetIface(v *model.Values, s *stats.InterfaceStats, add bool) {
	pairs := [...]struct {
		m model.MetricID
		p *uint64
	}{{model.NetworkRx, s.RxBytes}, {model.NetworkRxErrors, s.RxErrors}, {model.NetworkTx, s.TxBytes}, {model.NetworkTxErrors, s.TxErrors}}
	for _, p := range pairs {
		if p.p == nil {
			continue
		}
		if add && !math.IsNaN(v[p.m]) {
			v[p.m] += float64(*p.p)
		} else {
			v[p.m] = float64(*p.p)
		}
	}
}

func refSetUptime(e *model.Entry, start metav1.Time) {
	if start.IsZero() || e.Time == 0 {
		return
	}
	if up := float64(e.Time-start.UnixMilli()) / 1000; up >= 0 {
		e.Values[model.Uptime] = up
	}
}

func refSet(v *model.Values, m model.MetricID, p *uint64) {
	if p != nil {
		v[m] = float64(*p)
	}
}

func refMillis(t metav1.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func refCpuTime(c *stats.CPUStats) metav1.Time {
	if c == nil {
		return metav1.Time{}
	}
	return c.Time
}

func refMemTime(m *stats.MemoryStats) metav1.Time {
	if m == nil {
		return metav1.Time{}
	}
	return m.Time
}

func refNetTime(n *stats.NetworkStats) metav1.Time {
	if n == nil {
		return metav1.Time{}
	}
	return n.Time
}

// firstTime returns the first non-zero time in Unix milliseconds, or now.
func refFirstTime(now time.Time, ts ...metav1.Time) int64 {
	for _, t := range ts {
		if !t.IsZero() {
			return t.UnixMilli()
		}
	}
	return now.UnixMilli()
}
