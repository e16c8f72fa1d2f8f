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
	var s rollupSums
	s.add(entries)
	return s.entries(t)
}

// rollupSums are roll-ups being summed: namespaces and workloads from their
// pods, the cluster from its nodes. Its zero value is ready to use.
type rollupSums struct {
	groups map[model.Object]*model.Values
	order  []model.Object // first seen first
}

// add adds entries' pods and nodes into their roll-ups; entries of other
// levels are ignored.
func (s *rollupSums) add(entries []model.Entry) {
	if s.groups == nil {
		s.groups = map[model.Object]*model.Values{}
	}
	add := func(o model.Object, v *model.Values) {
		sum := s.groups[o]
		if sum == nil {
			nv := model.NewValues()
			sum = &nv
			s.groups[o] = sum
			s.order = append(s.order, o)
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
}

// entries returns the roll-ups, namespaces first, then workloads, then the
// cluster, each with its ratios, stamped t (Unix milliseconds).
func (s *rollupSums) entries(t int64) []model.Entry {
	sort.SliceStable(s.order, func(i, j int) bool { return s.order[i].Level < s.order[j].Level })
	out := make([]model.Entry, 0, len(s.order))
	for _, o := range s.order {
		v := *s.groups[o]
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

// Seen remembers the objects of the last observation, to find those that
// vanish. Its zero value is ready to use.
type Seen struct {
	gen     uint64
	objects map[model.Object]uint64 // the observation (gen) each object was last in
}

// Vanished returns, for each object of the last observation that is not in
// now, a Gone entry stamped t (Unix milliseconds), and remembers now's
// objects for the next. Objects are marked in place: when none came or
// went, it allocates nothing.
func (s *Seen) Vanished(now []model.Entry, t int64) []model.Entry {
	if s.objects == nil {
		s.objects = make(map[model.Object]uint64, len(now))
	}
	s.gen++
	for i := range now {
		if !now[i].Gone {
			s.objects[now[i].Object] = s.gen
		}
	}
	var gone []model.Entry
	for o, g := range s.objects {
		if g != s.gen {
			gone = append(gone, model.Entry{Object: o, Time: t, Gone: true})
			delete(s.objects, o)
		}
	}
	return gone
}

// All is a Gone entry stamped t for every object of the last observation.
func (s *Seen) All(t int64) []model.Entry {
	gone := make([]model.Entry, 0, len(s.objects))
	for o := range s.objects {
		gone = append(gone, model.Entry{Object: o, Time: t, Gone: true})
	}
	return gone
}
