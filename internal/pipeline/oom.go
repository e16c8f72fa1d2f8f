package pipeline

import "github.com/kubemon/kubemon/internal/model"

// oomState is what a Rater remembers of one container's OOM kills.
type oomState struct {
	gen   uint64  // the Rater's oomGen when last observed
	uid   string  // the pod's UID: another pod of the same name starts afresh
	count float64 // OOM kills counted (OOMKills)
	// last is the pod status' last termination already looked at.
	last model.Termination
	// run is the start (Unix ms) of the container's run whose cAdvisor
	// OOM events are tracked, events their count at the last observation
	// and rose when (Unix ms, cAdvisor's time) the count last went up.
	run, rose int64
	events    float64
}

// CountOOMKills sets OOMKills on the container entries whose pod's
// metadata is known: the OOM kills of the container since the Rater first
// saw it. Two sources count:
//
//   - the pod status: each new last termination with reason OOMKilled (the
//     container's main process was killed and the container restarted);
//   - cAdvisor's container_oom_events_total of the container's current run
//     (Entry.OOMEvents): each rise, and the count of a run begun since the
//     previous observation (another process of the container was killed;
//     the container may run on).
//
// One kill seen by both (cAdvisor observed the run's count rise at or after
// the run's end) counts once. A container's first observation is the
// baseline: what happened before counts nothing. Kills of runs that began
// and ended between two observations show only as the last termination:
// one kill at most. A container is forgotten when its pod is no longer in
// pods (the node's pods' metadata; when nil, once it is not in entries).
func (r *Rater) CountOOMKills(entries []model.Entry, pods []model.PodMeta) {
	// States are marked with this call's generation in place: no map of
	// the containers seen is built every scrape.
	r.oomGen++
	for i := range entries {
		e := &entries[i]
		if e.Object.Level != model.LevelContainer || e.Pod == nil {
			continue
		}
		var c *model.ContainerMeta
		for ci := range e.Pod.Containers {
			if e.Pod.Containers[ci].Name == e.Object.Container {
				c = &e.Pod.Containers[ci]
				break
			}
		}
		if c == nil {
			continue
		}
		st := r.oom[e.Object]
		fresh := st == nil
		if fresh {
			st = &oomState{}
			r.oom[e.Object] = st
		}
		st.gen = r.oomGen
		if fresh || st.uid != e.Pod.UID {
			// The baseline: the pod's current state counts nothing.
			st.uid, st.last = e.Pod.UID, c.LastTermination
			st.run, st.events, st.rose = e.Start, e.OOMEvents, 0
			e.Values[model.OOMKills] = st.count
			continue
		}
		cadvisorTime := e.CadvisorTime
		if cadvisorTime == 0 {
			cadvisorTime = e.Time
		}
		if t := c.LastTermination; t.Finished != 0 && t != st.last {
			// A run ended since the last observation.
			sameRun := st.run != 0 && t.Started/1000 == st.run/1000
			if t.Reason == model.ReasonOOMKilled && !(sameRun && st.rose >= t.Finished) {
				st.count++
			}
			st.last = t
		}
		if e.Start != 0 { // the container runs (a waiting one has no stats)
			switch {
			case e.Start != st.run:
				// A new run, begun after the previous observation: its
				// kills so far are new.
				st.count += e.OOMEvents
				st.run, st.events, st.rose = e.Start, e.OOMEvents, 0
				if e.OOMEvents > 0 {
					st.rose = cadvisorTime
				}
			case e.OOMEvents > st.events:
				st.count += e.OOMEvents - st.events
				st.events, st.rose = e.OOMEvents, cadvisorTime
			default:
				st.events = e.OOMEvents
			}
		}
		e.Values[model.OOMKills] = st.count
	}
	var alive map[podKey]bool // built only when a state was not observed
	for o, st := range r.oom {
		if st.gen == r.oomGen {
			continue
		}
		if alive == nil {
			alive = make(map[podKey]bool, len(pods))
			for i := range pods {
				alive[podKey{pods[i].Namespace, pods[i].Name}] = true
			}
		}
		if !alive[podKey{o.Namespace, o.Pod}] {
			delete(r.oom, o)
		}
	}
}
