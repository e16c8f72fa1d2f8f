package pipeline

import (
	"math"

	"github.com/kubemon/kubemon/internal/model"
)

// Node processes one node's scrape in place and returns its entries: it
// enriches pods and containers from pods' metadata, computes rates with r,
// rolls containers up into their pods and pods into the node, and sets the
// node's capacity, allocatable, utilization and reservation from meta.
func Node(r *Rater, stats *model.NodeStats, pods []model.PodMeta, meta model.NodeMeta) []model.Entry {
	entries := stats.Entries
	Enrich(entries, pods)
	r.Rates(entries)
	RollupNode(entries)
	for i := range entries {
		if e := &entries[i]; e.Object.Level == model.LevelNode {
			setNodeMeta(&e.Values, meta)
		}
	}
	return entries
}

// Enrich sets requests, limits and restart counts on container entries and
// links pod and container entries to their pod's metadata.
func Enrich(entries []model.Entry, pods []model.PodMeta) {
	if len(pods) == 0 {
		return
	}
	type key struct{ ns, name string }
	idx := make(map[key]*model.PodMeta, len(pods))
	for i := range pods {
		idx[key{pods[i].Namespace, pods[i].Name}] = &pods[i]
	}
	for i := range entries {
		e := &entries[i]
		if e.Object.Level != model.LevelPod && e.Object.Level != model.LevelContainer {
			continue
		}
		p := idx[key{e.Object.Namespace, e.Object.Pod}]
		if p == nil {
			continue
		}
		e.Pod = p
		if e.Object.Level == model.LevelPod {
			e.Values[model.Info] = 1
			continue
		}
		for _, c := range p.Containers {
			if c.Name == e.Object.Container {
				e.Values[model.CPURequest] = c.CPURequest
				e.Values[model.CPULimit] = c.CPULimit
				e.Values[model.MemoryRequest] = c.MemoryRequest
				e.Values[model.MemoryLimit] = c.MemoryLimit
				e.Values[model.Restarts] = float64(c.Restarts)
				break
			}
		}
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
	pods := map[model.Object]*model.Entry{}
	for i := range entries {
		switch e := &entries[i]; e.Object.Level {
		case model.LevelPod:
			pods[e.Object] = e
		case model.LevelNode:
			node = e
		}
	}
	childSums := map[model.Object]*model.Values{}
	for i := range entries {
		e := &entries[i]
		if e.Object.Level != model.LevelContainer {
			continue
		}
		po := model.Object{Level: model.LevelPod, Node: e.Object.Node, Namespace: e.Object.Namespace, Pod: e.Object.Pod}
		sum := childSums[po]
		if sum == nil {
			v := model.NewValues()
			sum = &v
			childSums[po] = sum
		}
		addPresent(sum, &e.Values, model.LevelPod)
	}
	for po, sum := range childSums {
		p := pods[po]
		if p == nil {
			continue
		}
		for _, m := range sumMetrics {
			if !math.IsNaN(sum[m]) {
				p.Values[m] = sum[m]
			}
		}
	}
	if node == nil {
		return
	}
	podSum := model.NewValues()
	for _, p := range pods {
		addPresent(&podSum, &p.Values, model.LevelNode)
	}
	for _, m := range sumMetrics {
		if math.IsNaN(node.Values[m]) {
			node.Values[m] = podSum[m]
		}
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
}
