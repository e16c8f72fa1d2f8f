package sim

import (
	"fmt"
	"slices"
	"sort"
)

// restartKey identifies one container of one pod generation.
type restartKey struct {
	node, slot int32
	gen        int64
	ctr        int32
}

// maxKeptRestarts bounds the remembered forced restarts (and OOM kills of
// other processes) per container.
const maxKeptRestarts = 32

// forced is one forced end of a container's run, at t (Unix seconds): a
// restart (Restart) or an OOM kill of its main process (FaultOOM), after
// which the kubelet restarts it at once.
type forced struct {
	t   int64
	oom bool
}

// span is the time a container fault lasts, [from, to) in Unix seconds; to
// is 0 while it lasts.
type span struct{ from, to int64 }

// ctrRecord is the mutable state of one container of one pod generation:
// its forced restarts and its faults. Older restarts beyond
// maxKeptRestarts are only counted.
type ctrRecord struct {
	restarts            []forced // ascending
	dropped, droppedOOM int32
	droppedMax          int64
	// oomProcess are OOM kills of another process of the container
	// (FaultOOMProcess), ascending; droppedProc counts older ones.
	oomProcess  []int64
	droppedProc int32
	crash       []span // FaultCrashLoop
	throttle    []span // FaultThrottle
}

func (r *ctrRecord) addRestart(t int64, oom bool) {
	if len(r.restarts) == maxKeptRestarts {
		r.dropped++
		if r.restarts[0].oom {
			r.droppedOOM++
		}
		r.droppedMax = r.restarts[0].t
		r.restarts = append(r.restarts[:0], r.restarts[1:]...)
	}
	r.restarts = append(r.restarts, forced{t, oom})
}

func (r *ctrRecord) addOOMProcess(t int64) {
	if len(r.oomProcess) == maxKeptRestarts {
		r.droppedProc++
		r.oomProcess = append(r.oomProcess[:0], r.oomProcess[1:]...)
	}
	r.oomProcess = append(r.oomProcess, t)
}

// open starts a fault span at t unless one is already open.
func open(spans []span, t int64) []span {
	if n := len(spans); n > 0 && spans[n-1].to == 0 {
		return spans
	}
	return append(spans, span{from: t})
}

// closeSpan ends the open fault span, if any, at t.
func closeSpan(spans []span, t int64) {
	if n := len(spans); n > 0 && spans[n-1].to == 0 {
		spans[n-1].to = max(t, spans[n-1].from)
	}
}

// overlap is the number of seconds of [a, b) the spans cover.
func overlap(spans []span, a, b int64) int64 {
	var n int64
	for _, s := range spans {
		to := s.to
		if to == 0 {
			to = b
		}
		if lo, hi := max(a, s.from), min(b, to); hi > lo {
			n += hi - lo
		}
	}
	return n
}

// within reports whether t lies inside one of the spans.
func within(spans []span, t int64) bool {
	for _, s := range spans {
		if t >= s.from && (s.to == 0 || t < s.to) {
			return true
		}
	}
	return false
}

// record returns a copy of the container's record, nil if it has none.
func (c *Cluster) record(ni, s int, gen int64, ci int) *ctrRecord {
	c.restartMu.RLock()
	defer c.restartMu.RUnlock()
	r := c.restarts[restartKey{int32(ni), int32(s), gen, int32(ci)}]
	if r == nil {
		return nil
	}
	cp := *r
	cp.restarts, cp.oomProcess = slices.Clone(r.restarts), slices.Clone(r.oomProcess)
	cp.crash, cp.throttle = slices.Clone(r.crash), slices.Clone(r.throttle)
	return &cp
}

// findContainer finds the current pod namespace/pod on any node and its
// container: its node, slot, generation and container index.
func (c *Cluster) findContainer(namespace, pod, container string, T int64) (ni, s int, gen int64, ci int, err error) {
	P := c.opts.PodsPerNode
	for _, gs := range c.candidateSlots(pod) {
		if gs >= uint64(len(c.nodes)*P) {
			continue
		}
		ni, s := int(gs)/P, int(gs)%P
		sp := c.slotParams(ni, s)
		wl := &c.workloads[sp.wl]
		if wl.namespace != namespace {
			continue
		}
		gen, start := c.podTiming(&c.nodes[ni], &sp, T)
		if c.podName(wl, gs, gen, start) != pod {
			continue
		}
		for ci := range wl.ctrs {
			if wl.ctrs[ci].name == container {
				return ni, s, gen, ci, nil
			}
		}
		return 0, 0, 0, 0, fmt.Errorf("sim: pod %s/%s has no container %q: %w", namespace, pod, container, ErrNotFound)
	}
	return 0, 0, 0, 0, fmt.Errorf("sim: no pod %s/%s: %w", namespace, pod, ErrNotFound)
}

// update changes the record of a container under the write lock.
func (c *Cluster) update(ni, s int, gen int64, ci int, T int64, f func(r *ctrRecord)) {
	c.restartMu.Lock()
	defer c.restartMu.Unlock()
	key := restartKey{int32(ni), int32(s), gen, int32(ci)}
	r := c.restarts[key]
	if r == nil {
		r = &ctrRecord{}
		c.restarts[key] = r
	}
	f(r)
	c.pruneRestartsLocked(T)
	c.restartCount.Store(int64(len(c.restarts)))
}

// Restart forces a restart of a container now: its restartCount increases
// by one, its startTime becomes now (truncated to the second) and its
// cumulative counters start again from 0. Pod and node counters do not reset.
// It returns an error if no current pod or container has that name.
func (c *Cluster) Restart(namespace, pod, container string) error {
	T := c.now()
	ni, s, gen, ci, err := c.findContainer(namespace, pod, container, T)
	if err != nil {
		return err
	}
	c.update(ni, s, gen, ci, T, func(r *ctrRecord) { r.addRestart(T, false) })
	c.log.Info("container restarted", "node", c.nodes[ni].name, "namespace", namespace, "pod", pod, "container", container)
	return nil
}

// pruneRestartsLocked forgets restart records of pods that no longer exist
// (realistic mode churn), so the map does not grow with time.
func (c *Cluster) pruneRestartsLocked(T int64) {
	if c.opts.Mode != ModeRealistic || len(c.restarts) < 256 {
		return
	}
	for k := range c.restarts {
		sp := c.slotParams(int(k.node), int(k.slot))
		if gen, _ := c.podTiming(&c.nodes[k.node], &sp, T); gen != k.gen {
			delete(c.restarts, k)
		}
	}
}

// runEnd is the end of one run of a container, at end (Unix seconds), and
// the kubelet's restart of it at restart (the same second, or later while
// it backs off a crash loop).
type runEnd struct {
	end, restart int64
	reason       string
	exit         int32
}

// Reasons and exit codes of the runs' ends, as the kubelet reports them.
const (
	reasonError     = "Error"
	reasonOOMKilled = "OOMKilled"
	exitKilled      = 137 // SIGKILL: the OOM killer, or a forced restart
	exitCrashed     = 1
)

// The crash loop (FaultCrashLoop): the container exits crashRun seconds
// after each start, and the kubelet restarts it after a back-off of 10 s
// doubling up to 5 minutes, its defaults.
const (
	crashRun     = 3
	backoffFirst = 10
	backoffMax   = 300
)

// crashEnds lists the ends of the crash loops of spans up to T: the
// container exits at the fault's start and crashRun seconds after every
// restart while the fault lasts; the run the kubelet starts after it is
// cleared keeps running. Restarts may lie after T (backing off).
func crashEnds(spans []span, T int64) []runEnd {
	var out []runEnd
	for _, sp := range spans {
		if sp.from > T {
			continue
		}
		end := sp.from
		for k := 0; end <= T; k++ {
			b := min(int64(backoffFirst)<<min(k, 10), backoffMax)
			out = append(out, runEnd{end: end, restart: end + b, reason: reasonError, exit: exitCrashed})
			next := end + b + crashRun
			if sp.to != 0 && next >= sp.to {
				break // cleared: the run begun at end+b goes on
			}
			end = next
		}
	}
	return out
}

// runState is a container's run at time T: when it began, how often the
// container restarted, how its previous run ended, whether it waits to be
// restarted, and its OOM kills.
type runState struct {
	start    int64 // Unix seconds; the current run's (the last run's while waiting)
	restarts int32
	last     runEnd // zero when it never ended
	lastFrom int64  // Unix seconds; start of the run that ended last
	waiting  bool   // backing off a crash loop: no stats, state waiting
	backoff  int64  // seconds of the current back-off while waiting
	// gaps are the intervals the container did not run since its pod
	// started (crash-loop back-offs), up to T.
	gaps []span
	// oomKills counts every OOM kill since the pod started: main
	// processes (terminations OOMKilled) and other processes; oomEvents
	// those of other processes in the current run (cAdvisor's counter).
	oomKills, oomEvents int32
}

// evalRuns computes a container's run at T from its periodic restarts
// (realistic mode), natural OOM kills and its record of forced restarts and
// faults (nil: none).
func evalRuns(podStart int64, p *ctrParams, rec *ctrRecord, T int64) runState {
	var rs runState
	rs.start = podStart
	periodicReason := reasonError
	if p.oomRestarts {
		periodicReason = reasonOOMKilled
	}
	if rec == nil {
		// The fast path: periodic restarts only.
		if p.restartEvery > 0 && T > podStart {
			k := (T - podStart) / p.restartEvery
			rs.restarts = int32(k)
			rs.start = podStart + k*p.restartEvery
			if k > 0 {
				rs.lastFrom = rs.start - p.restartEvery
				rs.last = runEnd{end: rs.start, restart: rs.start, reason: periodicReason, exit: exitKilled}
				if p.oomRestarts {
					rs.oomKills = int32(k)
				}
			}
		}
		if p.oomEvery > 0 && T > rs.start {
			rs.oomEvents = int32((T - rs.start) / p.oomEvery)
			rs.oomKills += rs.oomEvents
		}
		return rs
	}
	var ends []runEnd
	if p.restartEvery > 0 {
		for t := podStart + p.restartEvery; t <= T; t += p.restartEvery {
			ends = append(ends, runEnd{end: t, restart: t, reason: periodicReason, exit: exitKilled})
		}
	}
	for _, f := range rec.restarts {
		if f.t > T || f.t < podStart {
			continue
		}
		e := runEnd{end: f.t, restart: f.t, reason: reasonError, exit: exitKilled}
		if f.oom {
			e.reason = reasonOOMKilled
		}
		ends = append(ends, e)
	}
	ends = append(ends, crashEnds(rec.crash, T)...)
	sort.SliceStable(ends, func(i, j int) bool { return ends[i].end < ends[j].end })
	if rec.dropped > 0 && T >= rec.droppedMax {
		rs.restarts += rec.dropped
		rs.oomKills += rec.droppedOOM
	}
	natural := func(from, to int64) int32 { // other processes' natural OOM kills in a run
		if p.oomEvery <= 0 || to <= from {
			return 0
		}
		return int32((to - from) / p.oomEvery)
	}
	runFrom := podStart
	for _, e := range ends {
		if e.end > T {
			break
		}
		if e.end < runFrom {
			continue // while backing off, or before the run began: nothing runs to end
		}
		rs.oomKills += natural(runFrom, e.end)
		if e.reason == reasonOOMKilled {
			rs.oomKills++
		}
		rs.last, rs.lastFrom = e, runFrom
		if e.restart > T {
			rs.waiting, rs.backoff = true, e.restart-e.end
			rs.gaps = append(rs.gaps, span{e.end, T})
			break
		}
		if e.restart > e.end {
			rs.gaps = append(rs.gaps, span{e.end, e.restart})
		}
		rs.restarts++
		runFrom = e.restart
	}
	rs.start = runFrom
	if !rs.waiting {
		rs.oomEvents = natural(runFrom, T)
		rs.oomKills += rs.oomEvents
	}
	rs.oomKills += rec.droppedProc
	for _, t := range rec.oomProcess {
		if t > T || t < podStart {
			continue
		}
		rs.oomKills++
		if !rs.waiting && t >= rs.start {
			rs.oomEvents++
		}
	}
	return rs
}
