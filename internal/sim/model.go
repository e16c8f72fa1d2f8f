package sim

import (
	"math"
	"strconv"

	v1 "k8s.io/api/core/v1"
)

const (
	mib = 1 << 20
	gib = 1 << 30
)

// wave is a CPU usage rate r(t) = base + amp·sin(2π·t/period + phase), in
// millicores, with t in Unix seconds. amp < base, so r > 0 and its integral
// is strictly increasing and known in closed form.
type wave struct {
	base, amp int64 // millicores
	period    int64 // seconds; > 0
	phase     float64
}

func (w *wave) theta(t int64) float64 {
	return 2*math.Pi*float64(posMod(t, w.period))/float64(w.period) + w.phase
}

// rateNano is r(t) in nanocores (core-nanoseconds per second).
func (w *wave) rateNano(t int64) uint64 {
	v := w.base * 1e6
	if w.amp != 0 {
		v += int64(math.Round(float64(w.amp) * 1e6 * math.Sin(w.theta(t))))
	}
	return uint64(v)
}

// integralNs is ∫_a^b r(u) du in core-nanoseconds (0 if b <= a).
func (w *wave) integralNs(a, b int64) uint64 {
	if b <= a {
		return 0
	}
	v := w.base * 1e6 * (b - a)
	if w.amp != 0 {
		k := float64(w.amp) * 1e6 * float64(w.period) / (2 * math.Pi)
		v += int64(math.Round(k * (math.Cos(w.theta(a)) - math.Cos(w.theta(b)))))
	}
	if v < 0 {
		return 0
	}
	return uint64(v)
}

// ioWave is a disk IO byte rate r(t) = base + amp·sin(2π·t/period + phase),
// in bytes/s, with t in Unix seconds. amp < base (or both 0), so r >= 0 and
// its integral is non-decreasing and known in closed form.
type ioWave struct {
	base, amp int64 // bytes/s
	period    int64 // seconds; > 0
	phase     float64
}

func (w *ioWave) theta(t int64) float64 {
	return 2*math.Pi*float64(posMod(t, w.period))/float64(w.period) + w.phase
}

// rate is r(t) in bytes/s.
func (w *ioWave) rate(t int64) float64 {
	if w.amp == 0 {
		return float64(w.base)
	}
	return float64(w.base) + float64(w.amp)*math.Sin(w.theta(t))
}

// integral is ∫_a^b r(u) du in bytes, rounded to a whole byte (0 if b <= a).
func (w *ioWave) integral(a, b int64) uint64 {
	if b <= a {
		return 0
	}
	v := w.base * (b - a)
	if w.amp != 0 {
		k := float64(w.amp) * float64(w.period) / (2 * math.Pi)
		v += int64(math.Round(k * (math.Cos(w.theta(a)) - math.Cos(w.theta(b)))))
	}
	if v < 0 {
		return 0
	}
	return uint64(v)
}

// memWave is a memory working set m(t) = base + amp·sin(2π·t/period + phase)
// in bytes, rounded down to whole 4 KiB pages.
type memWave struct {
	base, amp int64 // bytes
	period    int64 // seconds
	phase     float64
}

func (m *memWave) at(t int64) uint64 {
	v := m.base
	if m.amp != 0 {
		v += int64(float64(m.amp) * math.Sin(2*math.Pi*float64(posMod(t, m.period))/float64(m.period)+m.phase))
		v &^= 4095
	}
	return uint64(v)
}

// nodeStatic holds the time-independent properties of one node.
type nodeStatic struct {
	name             string
	uid              string
	boot             int64 // Unix seconds; node startTime
	podsStart        int64 // Unix seconds; "pods" cgroup creation; slot integrals start here
	kubeletStart     int64 // Unix seconds
	cpuCap, cpuAlloc int64 // millicores
	memCap, memAlloc int64 // bytes
	fsCap            uint64
	fsBaseUsed       uint64
	fsBaseInodes     uint64
	imageFsUsed      uint64
	imageFsInodes    uint64
	nodeCache        uint64 // page cache outside pods, bytes
	kubelet, system  wave   // realistic-mode overhead
	kubeletMem       memWave
	systemMem        memWave
	ownRx, ownTx     uint64 // bytes/s not attributed to pods
	sysRead          ioWave // realistic: disk IO not attributed to pods
	sysWrite         ioWave
	pfRate           uint64 // page faults/s not attributed to pods
	psiRate          uint64 // µs/s
	procBase         int64
	zone             string
	instanceType     string
	machineID        string
	bootID           string
	labels           map[string]string
}

// slotParams are the time-independent properties of one pod slot.
type slotParams struct {
	wl          int
	lifetime    int64 // realistic: pod lifetime, seconds
	offset      int64 // realistic: phase of the generation grid, seconds
	constStart  int64 // constant: the only pod's start, Unix seconds
	rxRate      uint64
	txRate      uint64 // bytes/s
	rxErrEvery  int64  // seconds per receive error, 0 = never
	txErrEvery  int64
	emptyDirMiB int64 // 0 = no emptyDir volume
	pvcGiB      int64 // StatefulSet data volume capacity
	pvcUsedMiB  int64
}

// ctrParams are the time-independent properties of one container in a slot.
type ctrParams struct {
	cpu          wave
	mem          memWave
	rssPermille  uint64 // rss = ws·rssPermille/1000
	cacheBytes   uint64 // usage = ws + cacheBytes
	pfRate       uint64 // minor page faults per second
	majEvery     int64  // seconds per major page fault
	restartEvery int64  // realistic: spontaneous restart period, 0 = never
	rootfs       uint64 // bytes
	logRate      uint64 // bytes/s written to logs
	procs        uint64
	psiCPU       uint64 // µs/s of CPU stall ("some")
	psiIO        uint64 // µs/s of IO stall ("some")
	ioRead       ioWave // disk read bytes/s
	ioWrite      ioWave // disk write bytes/s
	// throttle is the share of CFS periods a container near its CPU limit
	// is throttled in, per unit of usage/limit (0: never throttled).
	throttle float64
	// oomRestarts: the periodic restarts are OOM kills (realistic mode).
	oomRestarts bool
	// oomEvery is the period of natural OOM kills of another process of
	// the container, in seconds (realistic mode; 0: none).
	oomEvery int64
}

// nearLimit is the share of its CPU limit a container's peak usage must
// reach for it to be throttled now and then.
const nearLimit = 0.6

func (c *Cluster) slotParams(ni, s int) slotParams {
	r := newRNG(c.seed, tagSlot, uint64(ni), uint64(s), 0)
	var sp slotParams
	if s < c.nDS {
		sp.wl = s
		r.next()
	} else {
		sp.wl = c.nDS + int(r.intn(int64(len(c.workloads)-c.nDS)))
	}
	sp.lifetime = r.between(20*60, 4*3600)
	sp.offset = r.intn(sp.lifetime)
	n := &c.nodes[ni]
	lo, hi := n.podsStart+26, c.epoch-120
	if hi <= lo {
		hi = lo + 1
	}
	sp.constStart = lo + r.intn(hi-lo)
	sp.rxRate = uint64(r.logUniform(200, 2e6))
	sp.txRate = uint64(r.logUniform(100, 1e6))
	if r.chance(0.3) {
		sp.rxErrEvery = r.between(600, 86400)
	}
	if r.chance(0.2) {
		sp.txErrEvery = r.between(600, 86400)
	}
	if r.chance(0.3) {
		sp.emptyDirMiB = r.between(1, 512)
	}
	sp.pvcGiB = []int64{1, 8, 10, 20, 50}[r.intn(5)]
	sp.pvcUsedMiB = r.between(1, sp.pvcGiB*1024*8/10)
	return sp
}

func (c *Cluster) ctrParams(ni, s, ci int, wc *wlContainer) ctrParams {
	r := newRNG(c.seed, tagCtr, uint64(ni), uint64(s), uint64(ci))
	var p ctrParams
	p.cpu.base = clampI(int64(math.Round(wc.baseMilli*r.uniform(0.75, 1.25))), 10, 800)
	wsMiB := clampI(int64(math.Round(wc.wsMiB*r.uniform(0.8, 1.2))), 16, 512)
	p.mem.base = wsMiB * mib
	amp := int64(float64(p.cpu.base) * r.uniform(0.1, 0.6))
	period := r.between(5*60, 3600)
	phase := 2 * math.Pi * r.float()
	memAmp := int64(float64(p.mem.base) * r.uniform(0.02, 0.1))
	memPeriod := r.between(30*60, 6*3600)
	memPhase := 2 * math.Pi * r.float()
	restarts := r.chance(0.05)
	restartEvery := r.between(10*60, 60*60)
	p.rssPermille = uint64(r.between(800, 980))
	p.cacheBytes = uint64(r.between(0, 64)) * mib
	p.pfRate = uint64(r.between(1, 40))
	p.majEvery = r.between(600, 7200)
	p.rootfs = uint64(r.between(1, 16384)) * 4096
	p.logRate = uint64(r.intn(2048))
	p.procs = uint64(r.between(1, 12))
	p.psiCPU = uint64(p.cpu.base) * uint64(r.intn(40))
	p.psiIO = uint64(r.intn(500))
	p.cpu.period, p.mem.period = period, memPeriod
	// Disk IO has its own stream so that the draws above keep their values.
	ior := newRNG(c.seed, tagIO, uint64(ni), uint64(s), uint64(ci))
	p.ioRead = ioWave{base: ior.between(0, 512) * 1024, period: ior.between(2*60, 3600)}
	p.ioWrite = ioWave{base: ior.between(0, 1024) * 1024, period: ior.between(2*60, 3600)}
	readAmp, readPhase := int64(float64(p.ioRead.base)*ior.uniform(0.1, 0.6)), 2*math.Pi*ior.float()
	writeAmp, writePhase := int64(float64(p.ioWrite.base)*ior.uniform(0.1, 0.6)), 2*math.Pi*ior.float()
	// Throttling and OOM kills have their own stream too.
	sr := newRNG(c.seed, tagSignals, uint64(ni), uint64(s), uint64(ci))
	throttle, oomRestarts, oomProcess, oomEvery := sr.uniform(0.1, 0.4), sr.chance(0.4), sr.chance(0.03), sr.between(20*60, 2*3600)
	if c.opts.Mode == ModeRealistic {
		p.cpu.amp, p.cpu.phase = amp, phase
		p.mem.amp, p.mem.phase = memAmp, memPhase
		if restarts {
			p.restartEvery = restartEvery
			p.oomRestarts = oomRestarts && wc.memLim > 0
		} else if oomProcess && wc.memLim > 0 {
			p.oomEvery = oomEvery
		}
		p.ioRead.amp, p.ioRead.phase = readAmp, readPhase
		p.ioWrite.amp, p.ioWrite.phase = writeAmp, writePhase
	}
	if wc.cpuLim > 0 && float64(p.cpu.base+p.cpu.amp) >= nearLimit*float64(wc.cpuLim) {
		p.throttle = throttle
	}
	return p
}

// initNodes computes the static node table: boot times, overheads and a
// capacity large enough for the requests and peak usage of the node's slots.
func (c *Cluster) initNodes() {
	N, P, C := c.opts.Nodes, c.opts.PodsPerNode, c.opts.ContainersPerPod
	width := len(strconv.Itoa(N))
	if width < 4 {
		width = 4
	}
	c.nodes = make([]nodeStatic, N)
	zones := []string{"a", "b", "c"}
	for ni := range c.nodes {
		n := &c.nodes[ni]
		r := newRNG(c.seed, tagNode, uint64(ni), 0, 0)
		num := strconv.Itoa(ni + 1)
		for len(num) < width {
			num = "0" + num
		}
		n.name = "sim-node-" + num
		n.uid = uuidFrom(r.next(), r.next())
		n.machineID = hex64(r.next())[:32]
		n.bootID = uuidFrom(r.next(), r.next())
		n.boot = c.epoch - r.between(6*3600, 72*3600)
		n.podsStart = n.boot + 4
		n.kubeletStart = n.boot + 8
		n.fsCap = uint64([]int64{100, 200, 500}[r.intn(3)]) * gib
		n.fsBaseUsed = n.fsCap/20 + uint64(r.intn(int64(n.fsCap/10)))&^4095
		n.fsBaseInodes = uint64(r.between(150000, 400000))
		n.imageFsUsed = uint64(r.between(2*1024, 12*1024)) * mib
		n.imageFsInodes = uint64(r.between(20000, 90000))
		n.nodeCache = uint64(r.between(512, 4096)) * mib
		n.kubelet = wave{base: r.between(20, 80), period: r.between(300, 1800), phase: 2 * math.Pi * r.float()}
		n.kubelet.amp = n.kubelet.base / 3
		n.system = wave{base: r.between(50, 200), period: r.between(300, 3600), phase: 2 * math.Pi * r.float()}
		n.system.amp = n.system.base / 2
		n.kubeletMem = memWave{base: r.between(60, 140) * mib, period: r.between(1800, 7200), phase: 2 * math.Pi * r.float()}
		n.kubeletMem.amp = n.kubeletMem.base / 20
		n.systemMem = memWave{base: r.between(200, 600) * mib, period: r.between(1800, 7200), phase: 2 * math.Pi * r.float()}
		n.systemMem.amp = n.systemMem.base / 20
		n.ownRx = uint64(r.between(1000, 50000))
		n.ownTx = uint64(r.between(1000, 50000))
		n.pfRate = uint64(r.between(50, 500))
		n.psiRate = uint64(r.intn(2000))
		n.procBase = r.between(180, 400)
		ior := newRNG(c.seed, tagIO, uint64(ni), ^uint64(0), 0)
		n.sysRead = ioWave{base: ior.between(1, 256) * 1024, period: ior.between(300, 3600), phase: 2 * math.Pi * ior.float()}
		n.sysRead.amp = n.sysRead.base / 2
		n.sysWrite = ioWave{base: ior.between(16, 1024) * 1024, period: ior.between(300, 3600), phase: 2 * math.Pi * ior.float()}
		n.sysWrite.amp = n.sysWrite.base / 2
		n.zone = "sim-region-1" + zones[ni%len(zones)]
		startCores := []int64{4, 8, 16}[r.intn(3)]
		startMemGiB := []int64{16, 32, 64}[r.intn(3)]

		// Size the node for what it will run.
		var reqCPU, reqMem, peakCPU, peakMem int64
		for s := 0; s < P; s++ {
			sp := c.slotParams(ni, s)
			wl := &c.workloads[sp.wl]
			for ci := 0; ci < C; ci++ {
				wc := &wl.ctrs[ci]
				p := c.ctrParams(ni, s, ci, wc)
				reqCPU += wc.cpuReq
				reqMem += wc.memReq
				peakCPU += p.cpu.base + p.cpu.amp
				peakMem += p.mem.base + p.mem.amp + int64(p.cacheBytes)
			}
		}
		if c.opts.Mode == ModeRealistic {
			peakCPU += n.kubelet.base + n.kubelet.amp + n.system.base + n.system.amp
			peakMem += n.kubeletMem.base + n.kubeletMem.amp + n.systemMem.base + n.systemMem.amp
		}
		needCPU := max(reqCPU, peakCPU*115/100)
		needMem := max(reqMem, peakMem*115/100)
		cores := startCores
		for _, cand := range []int64{4, 8, 16, 32, 48, 64, 96, 128, 192, 256} {
			if cand >= startCores && cpuAllocatable(cand*1000) >= needCPU {
				cores = cand
				break
			}
			cores = cand
		}
		for cpuAllocatable(cores*1000) < needCPU {
			cores += 64
		}
		memGiB := startMemGiB
		for _, cand := range []int64{16, 32, 64, 128, 256, 384, 512, 768, 1024} {
			if cand >= startMemGiB && memAllocatable(cand*gib) >= needMem {
				memGiB = cand
				break
			}
			memGiB = cand
		}
		for memAllocatable(memGiB*gib) < needMem {
			memGiB += 256
		}
		memGiB = max(memGiB, 2*cores) // at least 2 GiB per core, like real instance types
		n.cpuCap, n.cpuAlloc = cores*1000, cpuAllocatable(cores*1000)
		n.memCap, n.memAlloc = memGiB*gib, memAllocatable(memGiB*gib)
		n.instanceType = instanceType(cores, memGiB)
		n.labels = map[string]string{
			"beta.kubernetes.io/arch":          "amd64",
			"beta.kubernetes.io/os":            "linux",
			"kubernetes.io/arch":               "amd64",
			"kubernetes.io/os":                 "linux",
			"kubernetes.io/hostname":           n.name,
			"node.kubernetes.io/instance-type": n.instanceType,
			"topology.kubernetes.io/region":    "sim-region-1",
			"topology.kubernetes.io/zone":      n.zone,
		}
	}
}

func cpuAllocatable(capMilli int64) int64 { return capMilli - 100 - capMilli/100 }
func memAllocatable(capBytes int64) int64 { return (capBytes - capBytes/20 - 100*mib) &^ 1023 }

func instanceType(cores, memGiB int64) string {
	family := ""
	switch memGiB / cores {
	case 2:
		family = "c5"
	case 4:
		family = "m5"
	case 8:
		family = "r5"
	}
	size := ""
	switch {
	case cores == 2:
		size = "large"
	case cores == 4:
		size = "xlarge"
	case cores%4 == 0:
		size = strconv.FormatInt(cores/4, 10) + "xlarge"
	}
	if family == "" || size == "" {
		return "sim." + strconv.FormatInt(cores, 10) + "c" + strconv.FormatInt(memGiB, 10) + "g"
	}
	return family + "." + size
}

// ---- evaluation at a point in time ----

// ctrEval is the state of one container at time T.
type ctrEval struct {
	wc        *wlContainer
	p         ctrParams
	start     int64 // Unix seconds; last (re)start
	prevStart int64 // Unix seconds; start before the last restart (if restarts > 0)
	restarts  int32
	id        string // 64 hex digits

	rateNano  uint64 // usageNanoCores
	cpuNs     uint64 // usageCoreNanoSeconds since start
	podCPUNs  uint64 // ∫ r since pod start (contribution to the pod counter)
	ws        uint64 // working set, bytes
	usage     uint64 // bytes
	rss       uint64 // bytes
	pf, majPF uint64
	logs      uint64 // bytes
	psiCPU    uint64 // µs since start
	psiIO     uint64 // µs since start

	readRate, writeRate float64 // disk IO bytes/s at T
	ioRead, ioWrite     uint64  // disk IO bytes since start

	run runState   // restarts, the last run's end, waiting, OOM kills
	rec *ctrRecord // a copy of its forced restarts and faults; nil: none
	cfs cfsState   // CFS counters of the run (with a CPU limit)
	// gapNs, gapRead and gapWrite are the CPU (core-ns) and disk IO
	// (bytes) the container did not use while it waited since its pod
	// started: the pod's and node's counters leave them out.
	gapNs, gapRead, gapWrite uint64
}

// running reports whether the container runs (it has stats) at T.
func (ce *ctrEval) running() bool { return !ce.run.waiting }

// throttleSpans are the container's FaultThrottle spans.
func (ce *ctrEval) throttleSpans() []span {
	if ce.rec == nil {
		return nil
	}
	return ce.rec.throttle
}

// podEval is the state of one pod (slot generation) at time T.
type podEval struct {
	slot  int
	sp    slotParams
	wl    *workload
	gen   int64
	start int64 // Unix seconds
	name  string
	uid   string
	ctrs  []ctrEval

	rateNano, cpuNs         uint64
	ws, usage, rss, pf, maj uint64
	psiCPU, psiIO           uint64
	rx, tx, rxErr, txErr    uint64
	ephUsed, ephInodes      uint64
	procs                   uint64
	memLimit                uint64 // Σ container memory limits, 0 if any is unset
	ioRead, ioWrite         uint64 // Σ containers' disk IO bytes since pod start
}

// nodeEval is the state of one node at time T.
type nodeEval struct {
	idx  int
	n    *nodeStatic
	T    int64 // Unix seconds
	pods []podEval
	// skew is added to every time the node's kubelet reports (sample and
	// start times), in seconds: the node's clock error (FaultClockAhead).
	skew int64

	// "pods" cgroup: Σ over all slots of ∫ r since podsStart.
	podsRate, podsCPUNs        uint64
	podsWs, podsUsage, podsRss uint64
	podsPF, podsMaj            uint64
	podsPSICPU                 uint64
	qosCPUNs, qosRate          [3]uint64 // by qosIndex
	qosWs, qosUsage, qosRss    [3]uint64
	qosPF, qosMaj              [3]uint64 // page faults since podsStart (cAdvisor's QoS cgroups)
	qosIORead, qosIOWrite      [3]uint64 // disk IO bytes since podsStart (cAdvisor's QoS cgroups)
	kubeletRate, kubeletNs     uint64
	kubeletWs                  uint64
	rate, cpuNs                uint64
	ws, usage, rss, pf, maj    uint64
	rx, tx, rxErr, txErr       uint64
	fsUsed, fsInodesUsed       uint64
	procs                      int64
	psiCPU                     uint64
	podsIORead, podsIOWrite    uint64 // Σ over all slots of disk IO bytes since podsStart
	ioRead, ioWrite            uint64 // root cgroup: pods + system (realistic)
}

func qosIndex(q v1.PodQOSClass) int {
	switch q {
	case v1.PodQOSGuaranteed:
		return 0
	case v1.PodQOSBurstable:
		return 1
	}
	return 2
}

// podTiming returns the generation and start (Unix seconds) of the pod that
// occupies slot sp of node n at time T.
func (c *Cluster) podTiming(n *nodeStatic, sp *slotParams, T int64) (gen, start int64) {
	if c.opts.Mode == ModeConstant {
		return 0, sp.constStart
	}
	gen = floorDiv(T+sp.offset, sp.lifetime)
	start = gen*sp.lifetime - sp.offset
	if earliest := n.podsStart + 26; start < earliest {
		start = earliest
	}
	return gen, start
}

// evalNode evaluates node ni at Unix second T.
func (c *Cluster) evalNode(ni int, T int64) *nodeEval {
	n := &c.nodes[ni]
	P, C := c.opts.PodsPerNode, c.opts.ContainersPerPod
	ev := &nodeEval{idx: ni, n: n, T: T, pods: make([]podEval, P)}
	ctrs := make([]ctrEval, P*C)
	realistic := c.opts.Mode == ModeRealistic
	for s := range ev.pods {
		pe := &ev.pods[s]
		pe.ctrs = ctrs[s*C : (s+1)*C : (s+1)*C]
		c.evalPod(ni, s, T, pe)
		qi := qosIndex(pe.wl.qos)
		for ci := range pe.ctrs {
			ce := &pe.ctrs[ci]
			// The slot's integrals, less what a crash-looping container
			// did not use while it waited.
			slotNs := ce.p.cpu.integralNs(n.podsStart, T)
			slotNs -= min(ce.gapNs, slotNs)
			ev.podsCPUNs += slotNs
			ev.qosCPUNs[qi] += slotNs
			pf, maj := ce.p.pfRate*since(n.podsStart, T), since(n.podsStart, T)/uint64(ce.p.majEvery)
			ev.podsPF += pf
			ev.podsMaj += maj
			ev.qosPF[qi] += pf
			ev.qosMaj[qi] += maj
			ev.podsPSICPU += ce.p.psiCPU * since(n.podsStart, T)
			rd, wr := ce.p.ioRead.integral(n.podsStart, T), ce.p.ioWrite.integral(n.podsStart, T)
			rd, wr = rd-min(ce.gapRead, rd), wr-min(ce.gapWrite, wr)
			ev.podsIORead += rd
			ev.podsIOWrite += wr
			ev.qosIORead[qi] += rd
			ev.qosIOWrite[qi] += wr
		}
		ev.podsRate += pe.rateNano
		ev.qosRate[qi] += pe.rateNano
		ev.podsWs += pe.ws
		ev.podsUsage += pe.usage
		ev.podsRss += pe.rss
		ev.qosWs[qi] += pe.ws
		ev.qosUsage[qi] += pe.usage
		ev.qosRss[qi] += pe.rss
		ev.rx += pe.sp.rxRate * since(n.podsStart, T)
		ev.tx += pe.sp.txRate * since(n.podsStart, T)
		if pe.sp.rxErrEvery > 0 {
			ev.rxErr += since(n.podsStart, T) / uint64(pe.sp.rxErrEvery)
		}
		if pe.sp.txErrEvery > 0 {
			ev.txErr += since(n.podsStart, T) / uint64(pe.sp.txErrEvery)
		}
		ev.fsUsed += pe.ephUsed
		ev.fsInodesUsed += pe.ephInodes
		ev.procs += int64(pe.procs)
	}
	ev.rate, ev.cpuNs = ev.podsRate, ev.podsCPUNs
	ev.ioRead, ev.ioWrite = ev.podsIORead, ev.podsIOWrite
	ev.ws, ev.rss = ev.podsWs, ev.podsRss
	ev.usage = ev.podsUsage + n.nodeCache
	ev.pf = ev.podsPF + n.pfRate*since(n.boot, T)
	ev.maj = ev.podsMaj + since(n.boot, T)/3600
	ev.psiCPU = ev.podsPSICPU/uint64(max(1, n.cpuCap/1000)) + n.psiRate*since(n.boot, T)
	if realistic {
		ev.kubeletRate = n.kubelet.rateNano(T)
		ev.kubeletNs = n.kubelet.integralNs(n.kubeletStart, T)
		ev.kubeletWs = n.kubeletMem.at(T)
		sysWs := n.systemMem.at(T)
		ev.rate += ev.kubeletRate + n.system.rateNano(T)
		ev.cpuNs += ev.kubeletNs + n.system.integralNs(n.boot, T)
		ev.ws += ev.kubeletWs + sysWs
		ev.rss += (ev.kubeletWs + sysWs) * 9 / 10 &^ 4095
		ev.usage += ev.kubeletWs + sysWs
		ev.ioRead += n.sysRead.integral(n.boot, T)
		ev.ioWrite += n.sysWrite.integral(n.boot, T)
	}
	ev.rx += n.ownRx * since(n.boot, T)
	ev.tx += n.ownTx * since(n.boot, T)
	ev.fsUsed += n.fsBaseUsed
	ev.fsInodesUsed += n.fsBaseInodes
	ev.procs += n.procBase
	return ev
}

// evalPod evaluates slot s of node ni at Unix second T into pe (whose ctrs
// slice must have ContainersPerPod elements).
func (c *Cluster) evalPod(ni, s int, T int64, pe *podEval) {
	n := &c.nodes[ni]
	pe.slot = s
	pe.sp = c.slotParams(ni, s)
	pe.wl = &c.workloads[pe.sp.wl]
	pe.gen, pe.start = c.podTiming(n, &pe.sp, T)
	gs := uint64(ni*c.opts.PodsPerNode + s)
	pe.name = c.podName(pe.wl, gs, pe.gen, pe.start)
	pe.uid = uuidFrom(hash4(c.seed, tagPodUID, gs, uint64(pe.gen), 0), hash4(c.seed, tagPodUID, gs, uint64(pe.gen), 1))
	age := since(pe.start, T)
	limitsComplete := true
	recorded := c.restartCount.Load() > 0
	for ci := range pe.ctrs {
		ce := &pe.ctrs[ci]
		ce.wc = &pe.wl.ctrs[ci]
		ce.p = c.ctrParams(ni, s, ci, ce.wc)
		p := &ce.p
		var rec *ctrRecord
		if recorded {
			rec = c.record(ni, s, pe.gen, ci)
		}
		ce.rec = rec
		ce.run = evalRuns(pe.start, p, rec, T)
		ce.start, ce.restarts = ce.run.start, ce.run.restarts
		ce.prevStart = ce.run.lastFrom
		if ce.run.last.end == 0 {
			ce.prevStart = ce.start
		}
		ce.id = hex64(hash4(c.seed, tagContainerID, gs, uint64(pe.gen), uint64(ci)<<32|uint64(uint32(ce.restarts))))
		cage := since(ce.start, T)
		for _, g := range ce.run.gaps {
			ce.gapNs += p.cpu.integralNs(g.from, g.to)
			ce.gapRead += p.ioRead.integral(g.from, g.to)
			ce.gapWrite += p.ioWrite.integral(g.from, g.to)
		}
		ce.podCPUNs = p.cpu.integralNs(pe.start, T) - min(ce.gapNs, p.cpu.integralNs(pe.start, T))
		pe.cpuNs += ce.podCPUNs
		pe.ioRead += p.ioRead.integral(pe.start, T) - min(ce.gapRead, p.ioRead.integral(pe.start, T))
		pe.ioWrite += p.ioWrite.integral(pe.start, T) - min(ce.gapWrite, p.ioWrite.integral(pe.start, T))
		pe.pf += p.pfRate * age
		pe.maj += age / uint64(p.majEvery)
		pe.psiCPU += p.psiCPU * age
		pe.psiIO += p.psiIO * age
		if ce.wc.memLim == 0 {
			limitsComplete = false
		}
		pe.memLimit += uint64(ce.wc.memLim)
		if !ce.running() {
			continue // waiting to be restarted: no usage, no stats
		}
		ce.rateNano = p.cpu.rateNano(T)
		ce.cpuNs = p.cpu.integralNs(ce.start, T)
		ce.ws = p.mem.at(T)
		ce.usage = ce.ws + p.cacheBytes
		ce.rss = ce.ws * p.rssPermille / 1000 &^ 4095
		ce.pf = p.pfRate * cage
		ce.majPF = cage / uint64(p.majEvery)
		ce.logs = min(p.logRate*cage, 50*mib)
		ce.logs = (ce.logs + 4095) &^ 4095
		if ce.logs == 0 {
			ce.logs = 4096
		}
		ce.psiCPU = p.psiCPU * cage
		ce.psiIO = p.psiIO * cage
		ce.readRate, ce.writeRate = p.ioRead.rate(T), p.ioWrite.rate(T)
		ce.ioRead, ce.ioWrite = p.ioRead.integral(ce.start, T), p.ioWrite.integral(ce.start, T)
		ce.cfs = cfs(p, ce.wc.cpuLim, ce.start, T, ce.throttleSpans(), nil)

		pe.rateNano += ce.rateNano
		pe.ws += ce.ws
		pe.usage += ce.usage
		pe.rss += ce.rss
		pe.ephUsed += p.rootfs + ce.logs
		pe.ephInodes += p.rootfs/65536 + 2
		pe.procs += p.procs
	}
	if !limitsComplete {
		pe.memLimit = 0
	}
	pe.rx = pe.sp.rxRate * age
	pe.tx = pe.sp.txRate * age
	if pe.sp.rxErrEvery > 0 {
		pe.rxErr = age / uint64(pe.sp.rxErrEvery)
	}
	if pe.sp.txErrEvery > 0 {
		pe.txErr = age / uint64(pe.sp.txErrEvery)
	}
	pe.ephUsed += 4096 // etc-hosts
	pe.ephInodes++
	if pe.sp.emptyDirMiB > 0 {
		pe.ephUsed += uint64(pe.sp.emptyDirMiB) * mib
		pe.ephInodes += uint64(pe.sp.emptyDirMiB)/4 + 1
	}
}
