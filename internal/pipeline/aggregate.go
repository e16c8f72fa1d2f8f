package pipeline

import (
	"sort"

	"github.com/kubemon/kubemon/internal/model"
)

// Aggregate returns the cycle-wide roll-ups of entries: namespaces and
// workloads as sums of their pods, and the cluster as the sum of its nodes
// with its own utilization and reservation; each with its own throttled
// ratio. t (Unix milliseconds) stamps
// them. Entries of other levels are ignored.
func Aggregate(entries []model.Entry, t int64) []model.Entry {
	groups := map[model.Object]*model.Values{}
	var order []model.Object
	add := func(o model.Object, v *model.Values) {
		sum := groups[o]
		if sum == nil {
			nv := model.NewValues()
			sum = &nv
			groups[o] = sum
			order = append(order, o)
		}
		addPresent(sum, v, o.Level)
	}
	cluster := model.Object{Level: model.LevelCluster}
	for i := range entries {
		e := &entries[i]
		switch e.Object.Level {
		case model.LevelPod:
			add(model.Object{Level: model.LevelNamespace, Namespace: e.Object.Namespace}, &e.Values)
			if e.Pod != nil && e.Pod.Workload != "" {
				add(model.Object{Level: model.LevelWorkload, Namespace: e.Object.Namespace, WorkloadKind: e.Pod.WorkloadKind, Workload: e.Pod.Workload}, &e.Values)
			}
		case model.LevelNode:
			add(cluster, &e.Values)
		}
	}
	sort.SliceStable(order, func(i, j int) bool { return order[i].Level < order[j].Level })
	out := make([]model.Entry, 0, len(order))
	for _, o := range order {
		v := *groups[o]
		if o.Level == model.LevelCluster {
			setRatios(&v)
		} else {
			setThrottledRatio(&v)
		}
		out = append(out, model.Entry{Object: o, Time: t, Values: v})
	}
	return out
}

// NamespaceInfo sets the labels and info of the namespace entries among
// entries, and adds an entry (with only its info) for each namespace in
// labels that has none, stamped t (Unix milliseconds).
func NamespaceInfo(entries []model.Entry, labels map[string]map[string]string, t int64) []model.Entry {
	seen := make(map[string]bool, len(labels))
	for i := range entries {
		e := &entries[i]
		if e.Object.Level != model.LevelNamespace {
			continue
		}
		if l, ok := labels[e.Object.Namespace]; ok {
			e.Labels = l
			e.Values[model.Info] = 1
			seen[e.Object.Namespace] = true
		}
	}
	for ns, l := range labels {
		if seen[ns] {
			continue
		}
		v := model.NewValues()
		v[model.Info] = 1
		entries = append(entries, model.Entry{Object: model.Object{Level: model.LevelNamespace, Namespace: ns}, Time: t, Values: v, Labels: l})
	}
	return entries
}

// Vanished returns, for each object of before that is not in now, a Gone
// entry stamped t (Unix milliseconds), and the set of now's objects to
// compare the next observation with.
func Vanished(before map[model.Object]struct{}, now []model.Entry, t int64) ([]model.Entry, map[model.Object]struct{}) {
	cur := make(map[model.Object]struct{}, len(now))
	for i := range now {
		if !now[i].Gone {
			cur[now[i].Object] = struct{}{}
		}
	}
	var gone []model.Entry
	for o := range before {
		if _, ok := cur[o]; !ok {
			gone = append(gone, model.Entry{Object: o, Time: t, Gone: true})
		}
	}
	return gone, cur
}
