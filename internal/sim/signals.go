package sim

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// ContainerFault is a failure injected into one container (SetContainerFault).
type ContainerFault int

const (
	// ContainerFaultNone ends the container's crash loop and throttling.
	ContainerFaultNone ContainerFault = iota
	// FaultOOM: the container's main process is OOM-killed now: the
	// container ends with reason OOMKilled (exit code 137) and the kubelet
	// restarts it at once (restartCount + 1, its counters from 0). As on
	// a real node, cAdvisor's container_oom_events_total belonged to the
	// killed run's cgroup, which is gone: the new run's starts at 0.
	FaultOOM
	// FaultOOMProcess: another process of the container is OOM-killed
	// now; the container runs on, and cAdvisor's
	// container_oom_events_total of its run rises by one. The pod status
	// shows nothing.
	FaultOOMProcess
	// FaultCrashLoop: the container exits now (reason Error, exit code 1)
	// and again crashRun seconds after every restart, which the kubelet
	// backs off (10 s doubling to 5 minutes), waiting in CrashLoopBackOff
	// meanwhile (no stats), until ContainerFaultNone: the next run keeps
	// running.
	FaultCrashLoop
	// FaultThrottle: the container (which must have a CPU limit) is
	// throttled in 9 of every 10 CFS periods until ContainerFaultNone; its
	// usage stays as it was.
	FaultThrottle
)

var containerFaultNames = []string{"none", "oom", "oom-process", "crashloop", "throttle"}

// String returns the fault's name ("oom", ...), as ParseContainerFault reads it.
func (f ContainerFault) String() string {
	if f >= 0 && int(f) < len(containerFaultNames) {
		return containerFaultNames[f]
	}
	return "ContainerFault(" + strconv.Itoa(int(f)) + ")"
}

// ParseContainerFault parses a container fault's name.
func ParseContainerFault(s string) (ContainerFault, error) {
	for i, n := range containerFaultNames {
		if n == s {
			return ContainerFault(i), nil
		}
	}
	return ContainerFaultNone, fmt.Errorf("sim: unknown container fault %q (want one of %v)", s, containerFaultNames)
}

// ErrNotFound is wrapped by errors for a pod or container the cluster does
// not have; ErrNoCPULimit by FaultThrottle's for a container without a
// CPU limit (the kernel never throttles it).
var (
	ErrNotFound   = errors.New("not found")
	ErrNoCPULimit = errors.New("no CPU limit")
)

// SetContainerFault injects f into the container of the current pod
// namespace/pod now (see the ContainerFault values). FaultOOM and
// FaultOOMProcess happen once per call; FaultCrashLoop and FaultThrottle
// last until ContainerFaultNone.
func (c *Cluster) SetContainerFault(namespace, pod, container string, f ContainerFault) error {
	T := c.now()
	ni, s, gen, ci, err := c.findContainer(namespace, pod, container, T)
	if err != nil {
		return err
	}
	if f < ContainerFaultNone || f > FaultThrottle {
		return fmt.Errorf("sim: unknown container fault %d", f)
	}
	if f == FaultThrottle {
		sp := c.slotParams(ni, s)
		if c.workloads[sp.wl].ctrs[ci].cpuLim == 0 {
			return fmt.Errorf("sim: container %s of pod %s/%s: %w: the kernel never throttles it", container, namespace, pod, ErrNoCPULimit)
		}
	}
	c.update(ni, s, gen, ci, T, func(r *ctrRecord) {
		switch f {
		case ContainerFaultNone:
			closeSpan(r.crash, T)
			closeSpan(r.throttle, T)
		case FaultOOM:
			r.addRestart(T, true)
		case FaultOOMProcess:
			r.addOOMProcess(T)
		case FaultCrashLoop:
			r.crash = open(r.crash, T)
		case FaultThrottle:
			r.throttle = open(r.throttle, T)
		}
	})
	c.log.Info("container fault set", "node", c.nodes[ni].name, "namespace", namespace, "pod", pod, "container", container, "fault", f.String())
	return nil
}

// CFS enforcement: the kernel's default period is 100 ms, so a cgroup
// that is runnable all the time has 10 periods a second.
const (
	cfsPeriodsPerSecond = 10
	faultThrottled      = 9 // throttled periods a second under FaultThrottle
)

// cfsState is a run's CFS counters, as cAdvisor reports them, and their
// rates at the evaluation time.
type cfsState struct {
	periods, throttled    uint64
	throttledSeconds      float64
	throttledPerSecond    float64 // rate at T
	throttledSecPerSecond float64 // rate at T
}

// throttleWait is how long a throttled period holds the container back,
// in seconds: the rest of the period its quota leaves (at least 5 ms).
func throttleWait(limitMilli int64) float64 {
	return 0.1 * max(0.05, 1-float64(min(limitMilli, 1000))/1000)
}

// cfs computes a container's CFS counters over [from, T) (its run, or its
// pod's life for the pod cgroup) with the CPU limit limitMilli: runnable
// in every period, throttled naturally in a share beta·usage/limit of
// them (containers near their limit) and in 9 of 10 while FaultThrottle
// lasts (spans), minus the time it did not run (gaps).
func cfs(p *ctrParams, limitMilli, from, T int64, spans, gaps []span) cfsState {
	var st cfsState
	if limitMilli <= 0 || T <= from {
		return st
	}
	run := T - from - overlap(gaps, from, T)
	st.periods = uint64(run) * cfsPeriodsPerSecond
	faulted := overlap(spans, from, T)
	throttledNs := p.cpu.integralNs(from, T) // usage outside the fault and the gaps
	for _, s := range append(append([]span(nil), spans...), gaps...) {
		to := s.to
		if to == 0 {
			to = T
		}
		throttledNs -= min(throttledNs, p.cpu.integralNs(max(from, s.from), min(T, to)))
	}
	natural := uint64(math.Floor(float64(cfsPeriodsPerSecond) * p.throttle * float64(throttledNs) / 1e6 / float64(limitMilli)))
	st.throttled = min(natural+uint64(faulted)*faultThrottled, st.periods)
	wait := throttleWait(limitMilli)
	st.throttledSeconds = math.Round(float64(st.throttled)*wait*1e6) / 1e6
	if within(spans, T) {
		st.throttledPerSecond = faultThrottled
	} else {
		st.throttledPerSecond = float64(cfsPeriodsPerSecond) * p.throttle * float64(p.cpu.rateNano(T)) / 1e6 / float64(limitMilli)
	}
	st.throttledSecPerSecond = st.throttledPerSecond * wait
	return st
}
