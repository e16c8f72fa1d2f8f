package scrape

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	stats "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubemon/kubemon/internal/model"
)

// DecodeSummary decodes a kubelet Summary API payload (/stats/summary,
// stats/v1alpha1) into entries for the node, its system containers, pods
// and containers. node names the scraped node (it wins over the payload's
// nodeName, which can be empty); now stands in for missing timestamps.
// Absent fields stay absent (NaN), they are never read as zero.
func DecodeSummary(data []byte, node string, now time.Time) ([]model.Entry, error) {
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
	n.Start = millis(s.Node.StartTime)
	n.Time = firstTime(now, cpuTime(s.Node.CPU), memTime(s.Node.Memory), netTime(s.Node.Network))
	setCPU(&n.Values, s.Node.CPU)
	setMemory(&n.Values, s.Node.Memory)
	setNetwork(&n.Values, s.Node.Network)
	if fs := s.Node.Fs; fs != nil {
		set(&n.Values, model.FilesystemUsage, fs.UsedBytes)
		set(&n.Values, model.FilesystemLimit, fs.CapacityBytes)
		set(&n.Values, model.FilesystemAvailable, fs.AvailableBytes)
		set(&n.Values, model.FilesystemInodes, fs.Inodes)
		set(&n.Values, model.FilesystemInodesFree, fs.InodesFree)
	}
	setUptime(&n, s.Node.StartTime)
	entries = append(entries, n)

	for i := range s.Node.SystemContainers {
		c := &s.Node.SystemContainers[i]
		e := containerEntry(c, now)
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
			Start:  millis(p.StartTime),
		}
		pe.Time = firstTime(now, cpuTime(p.CPU), memTime(p.Memory), netTime(p.Network))
		setCPU(&pe.Values, p.CPU)
		setMemory(&pe.Values, p.Memory)
		setNetwork(&pe.Values, p.Network)
		if es := p.EphemeralStorage; es != nil {
			set(&pe.Values, model.EphemeralStorageUsage, es.UsedBytes)
		}
		setUptime(&pe, p.StartTime)
		entries = append(entries, pe)
		for j := range p.Containers {
			c := &p.Containers[j]
			e := containerEntry(c, now)
			e.Object = model.Object{Level: model.LevelContainer, Node: node, Namespace: p.PodRef.Namespace, Pod: p.PodRef.Name, Container: c.Name}
			entries = append(entries, e)
		}
	}
	return entries, nil
}

func containerEntry(c *stats.ContainerStats, now time.Time) model.Entry {
	e := model.Entry{Values: model.NewValues(), Start: millis(c.StartTime)}
	e.Time = firstTime(now, cpuTime(c.CPU), memTime(c.Memory))
	setCPU(&e.Values, c.CPU)
	setMemory(&e.Values, c.Memory)
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
	set(&e.Values, model.FilesystemUsage, fs)
	setUptime(&e, c.StartTime)
	return e
}

func setCPU(v *model.Values, c *stats.CPUStats) {
	if c == nil {
		return
	}
	if c.UsageCoreNanoSeconds != nil {
		v[model.CPUUsage] = float64(*c.UsageCoreNanoSeconds) / 1e9
	}
}

func setMemory(v *model.Values, m *stats.MemoryStats) {
	if m == nil {
		return
	}
	set(v, model.MemoryUsage, m.UsageBytes)
	set(v, model.MemoryWorkingSet, m.WorkingSetBytes)
	set(v, model.MemoryRSS, m.RSSBytes)
	set(v, model.MemoryPageFaults, m.PageFaults)
	set(v, model.MemoryMajorPageFaults, m.MajorPageFaults)
}

// setNetwork uses the default interface's counters; where the kubelet sends
// only named interfaces (Windows, some older kubelets) it sums them.
func setNetwork(v *model.Values, n *stats.NetworkStats) {
	if n == nil {
		return
	}
	if n.RxBytes != nil || n.TxBytes != nil {
		setIface(v, &n.InterfaceStats, false)
		return
	}
	for i := range n.Interfaces {
		setIface(v, &n.Interfaces[i], true)
	}
}

func setIface(v *model.Values, s *stats.InterfaceStats, add bool) {
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

func setUptime(e *model.Entry, start metav1.Time) {
	if start.IsZero() || e.Time == 0 {
		return
	}
	if up := float64(e.Time-start.UnixMilli()) / 1000; up >= 0 {
		e.Values[model.Uptime] = up
	}
}

func set(v *model.Values, m model.MetricID, p *uint64) {
	if p != nil {
		v[m] = float64(*p)
	}
}

func millis(t metav1.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func cpuTime(c *stats.CPUStats) metav1.Time {
	if c == nil {
		return metav1.Time{}
	}
	return c.Time
}

func memTime(m *stats.MemoryStats) metav1.Time {
	if m == nil {
		return metav1.Time{}
	}
	return m.Time
}

func netTime(n *stats.NetworkStats) metav1.Time {
	if n == nil {
		return metav1.Time{}
	}
	return n.Time
}

// firstTime returns the first non-zero time in Unix milliseconds, or now.
func firstTime(now time.Time, ts ...metav1.Time) int64 {
	for _, t := range ts {
		if !t.IsZero() {
			return t.UnixMilli()
		}
	}
	return now.UnixMilli()
}
