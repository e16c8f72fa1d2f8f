package sim

import (
	"fmt"
	"sort"
)

// restartKey identifies one container of one pod generation.
type restartKey struct {
	node, slot int32
	gen        int64
	ctr        int32
}

// maxKeptRestarts bounds the remembered restart times per container.
const maxKeptRestarts = 32

// restartTimes records forced restarts (Unix seconds, ascending) of one
// container. Older entries beyond maxKeptRestarts are only counted.
type restartTimes struct {
	times      []int64
	dropped    int32
	droppedMax int64
}

// at returns, for time T, the number of forced restarts at or before T, the
// time of the last one and the time of the one before it (0 if none).
func (r *restartTimes) at(T int64) (count int32, last, prev int64) {
	if r == nil {
		return 0, 0, 0
	}
	n := sort.Search(len(r.times), func(i int) bool { return r.times[i] > T })
	count = int32(n)
	if r.dropped > 0 && T >= r.droppedMax {
		count += r.dropped
		prev = r.droppedMax
	}
	if n > 0 {
		last = r.times[n-1]
		if n > 1 {
			prev = r.times[n-2]
		}
	} else if count > 0 {
		last = r.droppedMax
	}
	return count, last, prev
}

func (r *restartTimes) add(t int64) {
	if len(r.times) == maxKeptRestarts {
		r.dropped++
		r.droppedMax = r.times[0]
		r.times = append(r.times[:0], r.times[1:]...)
	}
	r.times = append(r.times, t)
}

// manualRestart summarises the forced restarts of one container up to a time.
type manualRestart struct {
	count      int32
	last, prev int64 // Unix seconds
}

// manualRestarts returns the forced restarts up to T of the containers of
// one pod generation, or nil if there are none.
func (c *Cluster) manualRestarts(ni, s int, gen int64, nctr int, T int64) []manualRestart {
	c.restartMu.RLock()
	defer c.restartMu.RUnlock()
	var out []manualRestart
	for ci := 0; ci < nctr; ci++ {
		r := c.restarts[restartKey{int32(ni), int32(s), gen, int32(ci)}]
		if r == nil {
			continue
		}
		if out == nil {
			out = make([]manualRestart, nctr)
		}
		m := &out[ci]
		m.count, m.last, m.prev = r.at(T)
	}
	return out
}

// Restart forces a restart of a container now: its restartCount increases
// by one, its startTime becomes now (truncated to the second) and its
// cumulative counters start again from 0. Pod and node counters do not reset.
// It returns an error if no current pod or container has that name.
func (c *Cluster) Restart(namespace, pod, container string) error {
	T := c.now()
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
			if wl.ctrs[ci].name != container {
				continue
			}
			c.restartMu.Lock()
			key := restartKey{int32(ni), int32(s), gen, int32(ci)}
			r := c.restarts[key]
			if r == nil {
				r = &restartTimes{}
				c.restarts[key] = r
			}
			r.add(T)
			c.pruneRestartsLocked(T)
			c.restartCount.Store(int64(len(c.restarts)))
			c.restartMu.Unlock()
			c.log.Info("container restarted", "node", c.nodes[ni].name, "namespace", namespace, "pod", pod, "container", container)
			return nil
		}
		return fmt.Errorf("sim: pod %s/%s has no container %q", namespace, pod, container)
	}
	return fmt.Errorf("sim: no pod %s/%s", namespace, pod)
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
