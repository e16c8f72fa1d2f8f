package pipeline

import (
	"math"

	"github.com/kubemon/kubemon/internal/model"
)

// Node processes one node's scrape and returns its entries (stats.Entries,
// and an entry for each running pod and each container of a known pod that
// has no stats): it
// enriches pods and containers from pods' metadata, counts OOM kills and
// computes rates with r, rolls containers up into their pods and pods into
// the node, sets the throttling ratios, and sets the node's capacity,
// allocatable, utilization and reservation from meta.
func Node(r *Rater, stats *model.NodeStats, pods []model.PodMeta, meta model.NodeMeta) []model.Entry {
	entries := Enrich(RunningPods(stats, pods), pods)
	r.CountOOMKills(entries, pods)
	r.Rates(entries)
	RollupNode(entries)
	for i := range entries {
		e := &entries[i]
		switch e.Object.Level {
		case model.LevelNode:
			setNodeMeta(&e.Values, meta) // and its ratios
		case model.LevelPod, model.LevelContainer:
			setThrottledRatio(&e.Values)
		}
	}
	return entries
}

// RunningPods returns stats' entries and an entry (stamped with the node's
// time, holding nothing yet) for each running pod of pods the kubelet has
// no stats of: one whose every container waits to be restarted (a crash
// loop) may have none, and Enrich gives its containers their restarts.
func RunningPods(stats *model.NodeStats, pods []model.PodMeta) []model.Entry {
	entries := stats.Entries
	if len(pods) == 0 {
		return entries
	}
	t := stats.ScrapeTime.UnixMilli()
	have := make(map[podKey]bool, len(pods))
	for i := range entries {
		switch o := &entries[i].Object; o.Level {
		case model.LevelPod:
			have[podKey{o.Namespace, o.Pod}] = true
		case model.LevelNode:
			t = entries[i].Time
		}
	}
	for i := range pods {
		p := &pods[i]
		if p.Phase != model.PhaseRunning || have[podKey{p.Namespace, p.Name}] || p.Node != "" && p.Node != stats.Node {
			continue
		}
		o := model.Object{Level: model.LevelPod, Node: stats.Node, Namespace: p.Namespace, Pod: p.Name}
		entries = append(entries, model.Entry{Object: o, Time: t, Values: model.NewValues()})
	}
	return entries
}

// Enrich sets requests, limits, restart counts and whether it waits in
// CrashLoopBackOff on container entries, and links pod and container
// entries to their pod's metadata. A container of a pod in entries that has
// no entry of its own (it is not running: waiting to be restarted, being
// created) gets one, stamped with its pod's time, holding only what the
// pod's metadata says, so that a crash-looping container's restarts stay
// visible. It returns entries with those added.
func Enrich(entries []model.Entry, pods []model.PodMeta) []model.Entry {
	if len(pods) == 0 {
		return entries
	}
	// idx finds a pod's metadata; have[first[i]+ci] is whether container
	// ci of pods[i] has an entry.
	idx := make(map[podKey]int, len(pods))
	first := make([]int, len(pods)+1)
	for i := range pods {
		idx[podKey{pods[i].Namespace, pods[i].Name}] = i
		first[i+1] = first[i] + len(pods[i].Containers)
	}
	have := make([]bool, first[len(pods)])
	var podEntries []int
	for i := range entries {
		e := &entries[i]
		if e.Object.Level != model.LevelPod && e.Object.Level != model.LevelContainer {
			continue
		}
		pi, ok := idx[podKey{e.Object.Namespace, e.Object.Pod}]
		if !ok {
			continue
		}
		p := &pods[pi]
		e.Pod = p
		if e.Object.Level == model.LevelPod {
			e.Values[model.Info] = 1
			podEntries = append(podEntries, i)
			continue
		}
		for ci := range p.Containers {
			if c := &p.Containers[ci]; c.Name == e.Object.Container {
				setContainerMeta(&e.Values, c)
				have[first[pi]+ci] = true
				break
			}
		}
	}
	for _, i := range podEntries {
		pe := entries[i] // a copy: appending may move entries
		pi := idx[podKey{pe.Object.Namespace, pe.Object.Pod}]
		for ci := range pe.Pod.Containers {
			if have[first[pi]+ci] {
				continue
			}
			c := &pe.Pod.Containers[ci]
			o := model.Object{Level: model.LevelContainer, Node: pe.Object.Node, Namespace: pe.Object.Namespace, Pod: pe.Object.Pod, Container: c.Name}
			e := model.Entry{Object: o, Time: pe.Time, Values: model.NewValues(), Pod: pe.Pod}
			setContainerMeta(&e.Values, c)
			entries = append(entries, e)
		}
	}
	return entries
}

// podKey names a pod among one node's.
type podKey struct{ ns, name string }

// setContainerMeta sets what a container's spec and status say.
func setContainerMeta(v *model.Values, c *model.ContainerMeta) {
	v[model.CPURequest] = c.CPURequest
	v[model.CPULimit] = c.CPULimit
	v[model.MemoryRequest] = c.MemoryRequest
	v[model.MemoryLimit] = c.MemoryLimit
	v[model.Restarts] = float64(c.Restarts)
	v[model.CrashLoopBackOff] = 0
	if c.Waiting == model.ReasonCrashLoopBackOff {
		v[model.CrashLoopBackOff] = 1
	}
}

// sumMetrics are the metrics that roll up by summing.
var sumMetrics = func() (ms []model.MetricID) {
	for _, m := range model.Metrics {
		if m.Rollup == model.RollupSum {
			ms = append(ms, m.ID)
		}
	}
	return ms
}()

// RollupNode rolls one node's containers up into their pods (the sum of the
// containers replaces the pod cgroup's own value, as in Heapster, so a pod
// is the sum of its parts) and its pods into the node (the node's own value
// wins; sums only fill what the node does not report, such as requests).
func RollupNode(entries []model.Entry) {
	var node *model.Entry
	// pods maps each pod to its index in podEntries and in sums, the sums
	// of its containers: one allocation for all pods, not one each.
	pods := make(map[podKey]int, len(entries)/3)
	var podEntries []*model.Entry
	for i := range entries {
		switch e := &entries[i]; e.Object.Level {
		case model.LevelPod:
			k := podKey{e.Object.Namespace, e.Object.Pod}
			if j, dup := pods[k]; dup {
				podEntries[j] = e // the last entry of a pod counts, as everywhere
			} else {
				pods[k] = len(podEntries)
				podEntries = append(podEntries, e)
			}
		case model.LevelNode:
			node = e
		}
	}
	sums := make([]model.Values, len(podEntries))
	summed := make([]bool, len(podEntries))
	for i := range entries {
		e := &entries[i]
		if e.Object.Level != model.LevelContainer {
			continue
		}
		j, ok := pods[podKey{e.Object.Namespace, e.Object.Pod}]
		if !ok {
			continue
		}
		if !summed[j] {
			sums[j], summed[j] = model.NewValues(), true
		}
		addPresent(&sums[j], &e.Values, model.LevelPod)
	}
	for j, p := range podEntries {
		if !summed[j] {
			continue
		}
		for _, m := range sumMetrics {
			if !math.IsNaN(sums[j][m]) {
				p.Values[m] = sums[j][m]
			}
		}
	}
	if node == nil {
		return
	}
	podSum := model.NewValues()
	for _, p := range podEntries {
		addPresent(&podSum, &p.Values, model.LevelNode)
	}
	for _, m := range sumMetrics {
		if !math.IsNaN(node.Values[m]) {
			continue
		}
		// A rate the node's own counter gives is not made up from its pods:
		// the counter has no new observation this time (the kubelet renews
		// a node's stats every 10-15 s; a scrape in between repeats them),
		// or none before it, and the pods' sum leaves out every process
		// outside them (kubelet, runtime, system).
		if c := model.Metrics[m].RateOf; c != nil && !math.IsNaN(node.Values[*c]) {
			continue
		}
		node.Values[m] = podSum[m]
	}
}

// addPresent adds each summable metric of v that parent level l carries and
// v has into sum.
func addPresent(sum, v *model.Values, l model.Level) {
	for _, m := range sumMetrics {
		x := v[m]
		if math.IsNaN(x) || !model.Metrics[m].Levels.Has(l) {
			continue
		}
		if math.IsNaN(sum[m]) {
			sum[m] = x
		} else {
			sum[m] += x
		}
	}
}

func setNodeMeta(v *model.Values, meta model.NodeMeta) {
	set := func(m model.MetricID, x float64) {
		if !math.IsNaN(x) && x != 0 {
			v[m] = x
		}
	}
	set(model.CPUCapacity, meta.CPUCapacity)
	set(model.CPUAllocatable, meta.CPUAllocatable)
	set(model.MemoryCapacity, meta.MemoryCapacity)
	set(model.MemoryAllocatable, meta.MemoryAllocatable)
	setRatios(v)
}

// setRatios computes utilization and reservation from usage, requests and
// allocatable; they stay absent where a part is missing.
func setRatios(v *model.Values) {
	v[model.CPUUtilization] = v[model.CPUUsageRate] / v[model.CPUAllocatable]
	v[model.CPUReservation] = v[model.CPURequest] / v[model.CPUAllocatable]
	v[model.MemoryUtilization] = v[model.MemoryWorkingSet] / v[model.MemoryAllocatable]
	v[model.MemoryReservation] = v[model.MemoryRequest] / v[model.MemoryAllocatable]
	for _, m := range []model.MetricID{model.CPUUtilization, model.CPUReservation, model.MemoryUtilization, model.MemoryReservation} {
		if math.IsInf(v[m], 0) {
			v[m] = math.NaN()
		}
	}
	setThrottledRatio(v)
}

// setThrottledRatio computes the share of CFS periods throttled from the
// periods' rates; absent where no period elapsed (or no CPU limit).
func setThrottledRatio(v *model.Values) {
	r := v[model.CFSThrottledPeriodsRate] / v[model.CFSPeriodsRate]
	if math.IsInf(r, 0) {
		r = math.NaN()
	}
	v[model.CFSThrottledRatio] = r
}
