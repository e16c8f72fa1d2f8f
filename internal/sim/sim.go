// Package sim simulates a Kubernetes cluster of "hollow kubelets".
//
// Every node gets its own TCP listener serving the kubelet read endpoints
// (/stats/summary, /metrics/resource, /metrics/cadvisor, /pods, /healthz) and
// the cluster serves an API-server-like view (/api/v1/nodes, /api/v1/pods)
// plus simulator controls (/sim/truth, /sim/restart, /sim/fault).
//
// The simulator is stateless: every value is a pure function of (seed, node
// index, pod slot, container index, time) evaluated when a request arrives,
// so a 5,000-node cluster costs a few megabytes and no background work. The
// only mutable state is the set of restarts forced with Restart and the
// faults set with SetFault (a node's kubelet) and SetContainerFault (a
// container: OOM kills, a crash loop, CPU throttling).
//
// Time model: all data are evaluated at the request time truncated to the
// second (kubelets report second precision). Cumulative CPU and disk IO
// counters are the exact integrals of their rate functions up to that second,
// so the rate computed from two scrapes is exact in ModeConstant and the
// exact mean rate in ModeRealistic.
package sim

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Mode selects the usage model.
type Mode string

const (
	// ModeRealistic (the default): sinusoidal CPU, memory and disk IO usage,
	// pod churn, spontaneous restarts of ~5% of containers (two in five of
	// those with a memory limit OOM-killed), OOM kills of another process
	// now and then in ~3% of the others with a memory limit, CPU
	// throttling of containers whose peak usage nears their CPU limit, and
	// node system overhead.
	ModeRealistic Mode = "realistic"
	// ModeConstant: every container uses a constant whole number of
	// millicores (10..800), a constant whole number of MiB of working set
	// (16..512) and constant whole numbers of KiB/s of disk reads (0..512)
	// and writes (0..1024); no churn, no spontaneous restarts or OOM kills,
	// no throttling (containers with a CPU limit have 10 CFS periods a
	// second, none throttled), no system overhead, so node = Σ pods = Σ
	// containers exactly.
	ModeConstant Mode = "constant"
)

// Options configure a simulated cluster. Zero values take the defaults noted.
type Options struct {
	Nodes            int              // default 3; at most 100,000
	PodsPerNode      int              // default 10; at most 1,000
	ContainersPerPod int              // default 2 (every pod has exactly this many containers); at most 50
	Seed             int64            // default 1
	Mode             Mode             // default ModeRealistic
	Host             string           // listen host, default "127.0.0.1"
	Logger           *slog.Logger     // default discard
	Now              func() time.Time // default time.Now; tests inject a fake clock
	// Cadvisor is what /metrics/cadvisor carries: CadvisorKubelet (the
	// default) every family and label set of a v1.36 kubelet's, or
	// CadvisorLean the families kubemon reads and a few more.
	Cadvisor CadvisorPayload
	// TLS, when set, makes every node's kubelet listener serve HTTPS with
	// it (as a real kubelet's port 10250 does); nil serves plain HTTP.
	TLS *tls.Config
	// BearerToken, when set, is the token a request to a node's kubelet
	// listener must carry ("Authorization: Bearer TOKEN"); others are
	// answered 401 Unauthorized, as a kubelet with token authentication
	// answers a client it cannot authenticate. The cluster's own handler
	// (Handler) does not ask for it.
	BearerToken string
}

// Fault is a failure injected into one node's kubelet endpoints.
type Fault int

const (
	FaultNone      Fault = iota
	FaultMalformed       // /stats/summary answers 200 with invalid JSON
	FaultTruncated       // answers 200 with the first half of a valid payload
	FaultSlow            // sleeps 30 s (or until the request context ends) before answering
	FaultOversized       // answers 200 with a valid-looking JSON body of 64 MiB+ (streamed)
	FaultDown            // answers 500
	// FaultClockAhead: the kubelet's clock is ClockAheadOffset ahead. Every
	// time it reports (sample times of /stats/summary, /metrics/resource and
	// /metrics/cadvisor, and the node's, pods' and containers' start times)
	// is shifted by that much; the values are those of the true time.
	FaultClockAhead
)

// ClockAheadOffset is how far ahead a kubelet with FaultClockAhead reports.
const ClockAheadOffset = 2 * time.Hour

var faultNames = []string{"none", "malformed", "truncated", "slow", "oversized", "down", "clock-ahead"}

// String returns the lower-case name of the fault ("none", "malformed", ...).
func (f Fault) String() string {
	if f >= 0 && int(f) < len(faultNames) {
		return faultNames[f]
	}
	return "Fault(" + strconv.Itoa(int(f)) + ")"
}

// ParseFault parses a fault name as returned by Fault.String.
func ParseFault(s string) (Fault, error) {
	for i, n := range faultNames {
		if n == s {
			return Fault(i), nil
		}
	}
	return FaultNone, fmt.Errorf("sim: unknown fault %q (want one of %v)", s, faultNames)
}

// NodeInfo describes one simulated node.
type NodeInfo struct {
	Name                     string            // "sim-node-0001"-style, zero padded to the width of Nodes (min 4)
	Address                  string            // Host
	Port                     int               // its kubelet port (0 before Start)
	CPUCapacityMillicores    int64             // millicores
	CPUAllocatableMillicores int64             // millicores
	MemoryCapacityBytes      int64             // bytes
	MemoryAllocatableBytes   int64             // bytes
	Labels                   map[string]string // kubernetes.io/hostname, node.kubernetes.io/instance-type ...
}

// Truth is the ground truth of all containers at one instant.
type Truth struct {
	Time       time.Time        `json:"time"` // the evaluation time (truncated to the second)
	Containers []TruthContainer `json:"containers"`
}

// TruthContainer is the ground truth of one container.
type TruthContainer struct {
	Node                  string  `json:"node"`
	Namespace             string  `json:"namespace"`
	Pod                   string  `json:"pod"`
	Container             string  `json:"container"`
	CPUMillicores         float64 `json:"cpuMillicores"`         // instantaneous usage rate at Time, millicores (= usageNanoCores/1e6)
	MemoryWorkingSetBytes uint64  `json:"memoryWorkingSetBytes"` // bytes
	RestartCount          int32   `json:"restartCount"`
	// Disk IO byte rates at Time (bytes/s). The cumulative counters on
	// /metrics/cadvisor are their exact integrals since the container's
	// (re)start, rounded to whole bytes.
	DiskReadBytesPerSecond  float64 `json:"diskReadBytesPerSecond"`
	DiskWriteBytesPerSecond float64 `json:"diskWriteBytesPerSecond"`
	// State is "running", or "waiting" while the kubelet backs off a
	// crash loop (WaitingReason CrashLoopBackOff): the kubelet then has no
	// stats of the container and its usage above is 0.
	State         string `json:"state"`
	WaitingReason string `json:"waitingReason,omitempty"`
	// LastTerminationReason is how the container's previous run ended
	// (OOMKilled, Error), as its pod status' lastState says; "" if none did.
	LastTerminationReason string `json:"lastTerminationReason,omitempty"`
	// OOMKills counts the container's OOM kills since its pod started:
	// its main process' (runs ended OOMKilled) and other processes' (the
	// container ran on). OOMEvents is cAdvisor's
	// container_oom_events_total of its current run: the latter since the
	// run began.
	OOMKills  int32 `json:"oomKills"`
	OOMEvents int32 `json:"oomEvents"`
	// CFS is the container's CPU throttling, when it has a CPU limit and
	// runs; nil otherwise.
	CFS *TruthCFS `json:"cfs,omitempty"`
}

// TruthCFS is a container's CPU throttling: the CFS counters of its run as
// /metrics/cadvisor reports them, and their rates at Truth.Time.
type TruthCFS struct {
	CPULimitMillicores int64   `json:"cpuLimitMillicores"`
	Periods            uint64  `json:"periods"`
	ThrottledPeriods   uint64  `json:"throttledPeriods"`
	ThrottledSeconds   float64 `json:"throttledSeconds"`
	PeriodsPerSecond   float64 `json:"periodsPerSecond"`
	// ThrottledPeriodsPerSecond / PeriodsPerSecond is the throttled ratio.
	ThrottledPeriodsPerSecond float64 `json:"throttledPeriodsPerSecond"`
	ThrottledSecondsPerSecond float64 `json:"throttledSecondsPerSecond"`
}

// Cluster is a simulated cluster. Create it with New.
type Cluster struct {
	opts   Options
	seed   uint64
	log    *slog.Logger
	epoch  int64 // Unix seconds at New; anchors node boot times
	nDS    int
	codec  suffixCodec
	nodes  []nodeStatic
	byName map[string]int

	workloads []workload

	cadvisorBufs sync.Pool // *[]byte: /metrics/cadvisor render buffers (kubelet payload)

	ports  []atomic.Int32
	faults []atomic.Int32

	restartMu    sync.RWMutex
	restarts     map[restartKey]*ctrRecord // forced restarts and container faults
	restartCount atomic.Int64              // number of entries in restarts

	mu      sync.Mutex
	started bool
	closed  bool
	servers []*http.Server
	done    chan struct{}
	wg      sync.WaitGroup
}

// WithDefaults returns o with its zero values replaced by the simulator's
// defaults (`kubemon demo`'s): 3 nodes, 10 pods a node, 2 containers a pod,
// seed 1, realistic mode, host 127.0.0.1, no logging, the wall clock.
func (opts Options) WithDefaults() Options {
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.PodsPerNode == 0 {
		opts.PodsPerNode = 10
	}
	if opts.ContainersPerPod == 0 {
		opts.ContainersPerPod = 2
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.Mode == "" {
		opts.Mode = ModeRealistic
	}
	if opts.Cadvisor == "" {
		opts.Cadvisor = CadvisorKubelet
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return opts
}

// New validates opts, applies defaults and builds the static cluster model.
func New(opts Options) (*Cluster, error) {
	opts = opts.WithDefaults()
	switch {
	case opts.Nodes < 1:
		return nil, fmt.Errorf("sim: Nodes must be >= 1, got %d", opts.Nodes)
	case opts.Nodes > 100000:
		return nil, fmt.Errorf("sim: Nodes must be <= 100000, got %d", opts.Nodes)
	case opts.PodsPerNode < 0:
		return nil, fmt.Errorf("sim: PodsPerNode must be >= 0, got %d", opts.PodsPerNode)
	case opts.PodsPerNode > 1000:
		return nil, fmt.Errorf("sim: PodsPerNode must be <= 1000, got %d", opts.PodsPerNode)
	case int64(opts.Nodes)*int64(opts.PodsPerNode) > 5000000:
		return nil, fmt.Errorf("sim: Nodes*PodsPerNode must be <= 5000000, got %d", int64(opts.Nodes)*int64(opts.PodsPerNode))
	case opts.ContainersPerPod < 1:
		return nil, fmt.Errorf("sim: ContainersPerPod must be >= 1, got %d", opts.ContainersPerPod)
	case opts.ContainersPerPod > 50:
		return nil, fmt.Errorf("sim: ContainersPerPod must be <= 50, got %d", opts.ContainersPerPod)
	case opts.Mode != ModeRealistic && opts.Mode != ModeConstant:
		return nil, fmt.Errorf("sim: unknown Mode %q (want %q or %q)", opts.Mode, ModeRealistic, ModeConstant)
	case opts.Cadvisor != CadvisorKubelet && opts.Cadvisor != CadvisorLean:
		return nil, fmt.Errorf("sim: unknown Cadvisor payload %q (want %q or %q)", opts.Cadvisor, CadvisorKubelet, CadvisorLean)
	}
	c := &Cluster{
		opts:     opts,
		seed:     uint64(opts.Seed),
		log:      opts.Logger,
		epoch:    opts.Now().Unix(),
		restarts: make(map[restartKey]*ctrRecord),
		done:     make(chan struct{}),
	}
	c.nDS = min(len(daemonSets), opts.PodsPerNode/10)
	total := int64(opts.Nodes) * int64(opts.PodsPerNode)
	nonDS := int64(opts.Nodes) * int64(opts.PodsPerNode-c.nDS)
	k := c.nDS + int(max(3, (nonDS+5)/6))
	c.workloads = buildCatalog(c.seed, c.nDS, k, opts.ContainersPerPod)
	c.codec = newSuffixCodec(c.seed, total)
	c.initNodes()
	c.byName = make(map[string]int, len(c.nodes))
	for i := range c.nodes {
		c.byName[c.nodes[i].name] = i
	}
	c.ports = make([]atomic.Int32, opts.Nodes)
	c.faults = make([]atomic.Int32, opts.Nodes)
	return c, nil
}

// Start opens one TCP listener per node on Host:0 (an ephemeral port) and
// serves that node's kubelet endpoints. It returns once all listeners are
// open. The servers run until Close is called or ctx is cancelled.
func (c *Cluster) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("sim: cluster is closed")
	}
	if c.started {
		return errors.New("sim: cluster already started")
	}
	var lc net.ListenConfig
	lns := make([]net.Listener, 0, len(c.nodes))
	for i := range c.nodes {
		ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(c.opts.Host, "0"))
		if err != nil {
			for _, l := range lns {
				_ = l.Close()
			}
			return fmt.Errorf("sim: listen for node %s (%d of %d): %w", c.nodes[i].name, i+1, len(c.nodes), err)
		}
		c.ports[i].Store(int32(ln.Addr().(*net.TCPAddr).Port))
		if c.opts.TLS != nil {
			ln = tls.NewListener(ln, c.opts.TLS)
		}
		lns = append(lns, ln)
	}
	errLog := log.New(io.Discard, "", 0)
	c.servers = make([]*http.Server, len(lns))
	for i, ln := range lns {
		srv := &http.Server{
			Handler:           &nodeHandler{c: c, idx: i},
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          errLog,
			BaseContext:       func(net.Listener) context.Context { return ctx },
		}
		c.servers[i] = srv
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			_ = srv.Serve(ln)
		}()
	}
	c.started = true
	c.log.Info("simulated cluster started", "nodes", len(c.nodes), "podsPerNode", c.opts.PodsPerNode,
		"containersPerPod", c.opts.ContainersPerPod, "mode", string(c.opts.Mode), "cadvisor", string(c.opts.Cadvisor), "seed", c.opts.Seed)
	if ctx.Done() != nil {
		go func() {
			select {
			case <-ctx.Done():
				_ = c.Close()
			case <-c.done:
			}
		}()
	}
	return nil
}

// Close closes all listeners and servers and ends pending slow responses.
// It is safe to call more than once.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.done)
	servers := c.servers
	c.mu.Unlock()
	var errs []error
	for _, s := range servers {
		if err := s.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	c.wg.Wait()
	return errors.Join(errs...)
}

// Nodes describes the nodes; ports are known after Start.
func (c *Cluster) Nodes() []NodeInfo {
	out := make([]NodeInfo, len(c.nodes))
	for i := range c.nodes {
		n := &c.nodes[i]
		labels := make(map[string]string, len(n.labels))
		for k, v := range n.labels {
			labels[k] = v
		}
		out[i] = NodeInfo{
			Name:                     n.name,
			Address:                  c.opts.Host,
			Port:                     int(c.ports[i].Load()),
			CPUCapacityMillicores:    n.cpuCap,
			CPUAllocatableMillicores: n.cpuAlloc,
			MemoryCapacityBytes:      n.memCap,
			MemoryAllocatableBytes:   n.memAlloc,
			Labels:                   labels,
		}
	}
	return out
}

// Truth returns every container's true usage at t truncated to the second.
func (c *Cluster) Truth(t time.Time) Truth {
	T := t.Unix()
	tr := Truth{
		Time:       time.Unix(T, 0).UTC(),
		Containers: make([]TruthContainer, 0, len(c.nodes)*c.opts.PodsPerNode*c.opts.ContainersPerPod),
	}
	for ni := range c.nodes {
		tr.Containers = c.appendTruth(tr.Containers, ni, T)
	}
	return tr
}

func (c *Cluster) appendTruth(dst []TruthContainer, ni int, T int64) []TruthContainer {
	ctrs := make([]ctrEval, c.opts.ContainersPerPod)
	for s := 0; s < c.opts.PodsPerNode; s++ {
		clear(ctrs)
		pe := podEval{ctrs: ctrs}
		c.evalPod(ni, s, T, &pe)
		for ci := range pe.ctrs {
			ce := &pe.ctrs[ci]
			tc := TruthContainer{
				Node:                    c.nodes[ni].name,
				Namespace:               pe.wl.namespace,
				Pod:                     pe.name,
				Container:               ce.wc.name,
				CPUMillicores:           float64(ce.rateNano) / 1e6,
				MemoryWorkingSetBytes:   ce.ws,
				RestartCount:            ce.restarts,
				DiskReadBytesPerSecond:  ce.readRate,
				DiskWriteBytesPerSecond: ce.writeRate,
				State:                   "running",
				LastTerminationReason:   ce.run.last.reason,
				OOMKills:                ce.run.oomKills,
				OOMEvents:               ce.run.oomEvents,
			}
			if !ce.running() {
				tc.State, tc.WaitingReason = "waiting", "CrashLoopBackOff"
			} else if ce.wc.cpuLim > 0 {
				tc.CFS = &TruthCFS{
					CPULimitMillicores: ce.wc.cpuLim, Periods: ce.cfs.periods, ThrottledPeriods: ce.cfs.throttled,
					ThrottledSeconds: ce.cfs.throttledSeconds, PeriodsPerSecond: cfsPeriodsPerSecond,
					ThrottledPeriodsPerSecond: ce.cfs.throttledPerSecond, ThrottledSecondsPerSecond: ce.cfs.throttledSecPerSecond,
				}
			}
			dst = append(dst, tc)
		}
	}
	return dst
}

// SetFault injects f into the kubelet endpoints of the named node
// (FaultNone clears it). The name "*" applies f to every node. Unknown
// names are ignored (and logged).
func (c *Cluster) SetFault(node string, f Fault) {
	if node == "*" {
		for i := range c.faults {
			c.faults[i].Store(int32(f))
		}
		return
	}
	i, ok := c.byName[node]
	if !ok {
		c.log.Warn("SetFault: unknown node", "node", node)
		return
	}
	c.faults[i].Store(int32(f))
	c.log.Info("fault set", "node", node, "fault", f.String())
}

func (c *Cluster) fault(ni int) Fault { return Fault(c.faults[ni].Load()) }

func (c *Cluster) now() int64 { return c.opts.Now().Unix() }
