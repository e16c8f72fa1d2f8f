package model

// MetricID indexes the metric vocabulary and Values.
type MetricID uint8

// Kind says how a metric's values behave.
type Kind uint8

// Metric kinds.
const (
	Gauge   Kind = iota
	Counter      // cumulative, only ever grows except at a reset
)

// Endpoint says which kubelet endpoint a metric is read from, and so which of
// an entry's times it was observed at.
type Endpoint uint8

// Endpoints.
const (
	EndpointSummary  Endpoint = iota // /stats/summary (and what derives from it)
	EndpointCadvisor                 // /metrics/cadvisor
)

// Rollup says how a metric's parent value derives from its children.
type Rollup uint8

// Rollup rules.
const (
	RollupNone  Rollup = iota // never aggregated: only stored where observed
	RollupSum                 // parent = sum of children
	RollupRatio               // computed from other metrics at each level
)

// The metric vocabulary. Each ID is defined once in Metrics below.
const (
	CPUUsage MetricID = iota
	CPUUsageRate
	CPURequest
	CPULimit
	CPUCapacity
	CPUAllocatable
	CPUReservation
	CPUUtilization
	CFSPeriods
	CFSPeriodsRate
	CFSThrottledPeriods
	CFSThrottledPeriodsRate
	CFSThrottledTime
	CFSThrottledTimeRate
	CFSThrottledRatio

	MemoryUsage
	MemoryWorkingSet
	MemoryRSS
	MemoryPageFaults
	MemoryPageFaultsRate
	MemoryMajorPageFaults
	MemoryMajorPageFaultsRate
	MemoryRequest
	MemoryLimit
	MemoryCapacity
	MemoryAllocatable
	MemoryReservation
	MemoryUtilization
	OOMKills
	OOMKillsRate

	NetworkRx
	NetworkRxRate
	NetworkRxErrors
	NetworkRxErrorsRate
	NetworkTx
	NetworkTxRate
	NetworkTxErrors
	NetworkTxErrorsRate

	FilesystemUsage
	FilesystemLimit
	FilesystemAvailable
	FilesystemInodes
	FilesystemInodesFree

	DiskIORead
	DiskIOReadRate
	DiskIOWrite
	DiskIOWriteRate

	EphemeralStorageUsage
	Info
	Uptime
	Restarts
	CrashLoopBackOff

	KubeletUp
	SinkLag
	StoreSize
	StoreSizeLimit
	StoreVolumeAvailable
	StoreVolumeSize

	NumMetrics
)

// Metric defines one metric of the vocabulary and its two spellings.
type Metric struct {
	ID MetricID
	// Name is the Prometheus name without the level prefix; the stored
	// series is "<level prefix>_<Name>", e.g. container_cpu_usage_seconds_total.
	Name string
	// Heapster is the Heapster-schema name, e.g. "cpu/usage_rate"; empty for
	// a metric Heapster did not have.
	Heapster string
	// HeapsterScale multiplies the stored base-unit value into Heapster's
	// unit (e.g. 1000 for cores → millicores, 1e9 for seconds → ns).
	HeapsterScale float64
	// Unit is the stored (base) unit.
	Unit   string
	Kind   Kind
	Levels LevelSet
	Rollup Rollup
	// RateOf is set on a derived rate metric to the counter it is the
	// per-second rate of.
	RateOf *MetricID
	// Endpoint is where the metric (or the counter of a rate) is read from.
	Endpoint Endpoint
	// SpansRestarts marks a counter kubemon keeps across its object's
	// restarts (OOMKills): a new start time is no reset, so its rate is
	// the plain difference.
	SpansRestarts bool
	// Labels are label keys the metric's series carry besides their
	// level's (LabelSink on SinkLag).
	Labels []string
	Help   string
}

var (
	scraped  = Levels(LevelContainer, LevelPod, LevelNode, LevelSysContainer)
	podUp    = Levels(LevelPod, LevelNode, LevelSysContainer)
	all      = Levels(LevelContainer, LevelPod, LevelNamespace, LevelWorkload, LevelNode, LevelSysContainer, LevelCluster)
	noCont   = Levels(LevelPod, LevelNamespace, LevelWorkload, LevelNode, LevelCluster)
	nodeCl   = Levels(LevelNode, LevelCluster)
	specLvls = Levels(LevelContainer, LevelPod, LevelNamespace, LevelWorkload, LevelNode, LevelCluster)
	self     = Levels(LevelKubemon)
)

func id(m MetricID) *MetricID { return &m }

// Metrics is the vocabulary, indexed by MetricID.
var Metrics = [NumMetrics]Metric{
	CPUUsage:       {Name: "cpu_usage_seconds_total", Heapster: "cpu/usage", HeapsterScale: 1e9, Unit: "seconds", Kind: Counter, Levels: scraped, Help: "Cumulative CPU time consumed, in core-seconds."},
	CPUUsageRate:   {Name: "cpu_usage_cores", Heapster: "cpu/usage_rate", HeapsterScale: 1000, Unit: "cores", Levels: all, Rollup: RollupSum, RateOf: id(CPUUsage), Help: "CPU usage rate over the last scrape interval, in cores."},
	CPURequest:     {Name: "cpu_request_cores", Heapster: "cpu/request", HeapsterScale: 1000, Unit: "cores", Levels: specLvls, Rollup: RollupSum, Help: "CPU requested by the pod specs, in cores."},
	CPULimit:       {Name: "cpu_limit_cores", Heapster: "cpu/limit", HeapsterScale: 1000, Unit: "cores", Levels: specLvls, Rollup: RollupSum, Help: "CPU limit from the pod specs, in cores (containers without a limit are left out)."},
	CPUCapacity:    {Name: "cpu_capacity_cores", Heapster: "cpu/node_capacity", HeapsterScale: 1000, Unit: "cores", Levels: nodeCl, Rollup: RollupSum, Help: "CPU capacity of the node, in cores."},
	CPUAllocatable: {Name: "cpu_allocatable_cores", Heapster: "cpu/node_allocatable", HeapsterScale: 1000, Unit: "cores", Levels: nodeCl, Rollup: RollupSum, Help: "CPU allocatable to pods, in cores."},
	CPUReservation: {Name: "cpu_reservation_ratio", Heapster: "cpu/node_reservation", HeapsterScale: 1, Unit: "ratio", Levels: nodeCl, Rollup: RollupRatio, Help: "CPU requests divided by allocatable CPU (0-1)."},
	CPUUtilization: {Name: "cpu_utilization_ratio", Heapster: "cpu/node_utilization", HeapsterScale: 1, Unit: "ratio", Levels: nodeCl, Rollup: RollupRatio, Help: "CPU usage rate divided by allocatable CPU (0-1)."},

	CFSPeriods:              {Name: "cpu_cfs_periods_total", Heapster: "cpu/cfs_periods", HeapsterScale: 1, Unit: "periods", Kind: Counter, Levels: Levels(LevelContainer), Endpoint: EndpointCadvisor, Help: "Cumulative CFS enforcement periods (100 ms by default) in which the container was runnable; only containers with a CPU limit have them (from /metrics/cadvisor)."},
	CFSPeriodsRate:          {Name: "cpu_cfs_periods_per_second", Heapster: "cpu/cfs_periods_rate", HeapsterScale: 1, Unit: "periods/s", Levels: specLvls, Rollup: RollupSum, RateOf: id(CFSPeriods), Endpoint: EndpointCadvisor, Help: "CFS enforcement periods per second over the last scrape interval (10 per second at the default 100 ms period for a busy container; a pod's is the sum of its containers')."},
	CFSThrottledPeriods:     {Name: "cpu_cfs_throttled_periods_total", Heapster: "cpu/cfs_throttled_periods", HeapsterScale: 1, Unit: "periods", Kind: Counter, Levels: Levels(LevelContainer), Endpoint: EndpointCadvisor, Help: "Cumulative CFS periods in which the container used up its CPU quota and was throttled (from /metrics/cadvisor)."},
	CFSThrottledPeriodsRate: {Name: "cpu_cfs_throttled_periods_per_second", Heapster: "cpu/cfs_throttled_periods_rate", HeapsterScale: 1, Unit: "periods/s", Levels: specLvls, Rollup: RollupSum, RateOf: id(CFSThrottledPeriods), Endpoint: EndpointCadvisor, Help: "Throttled CFS periods per second over the last scrape interval."},
	CFSThrottledTime:        {Name: "cpu_cfs_throttled_seconds_total", Heapster: "cpu/cfs_throttled_time", HeapsterScale: 1e9, Unit: "seconds", Kind: Counter, Levels: Levels(LevelContainer), Endpoint: EndpointCadvisor, Help: "Cumulative time the container's tasks were throttled, in seconds (Heapster: nanoseconds; from /metrics/cadvisor)."},
	CFSThrottledTimeRate:    {Name: "cpu_cfs_throttled_seconds_per_second", Heapster: "cpu/cfs_throttled_time_rate", HeapsterScale: 1, Unit: "seconds/s", Levels: specLvls, Rollup: RollupSum, RateOf: id(CFSThrottledTime), Endpoint: EndpointCadvisor, Help: "Seconds of throttling per second over the last scrape interval."},
	CFSThrottledRatio:       {Name: "cpu_cfs_throttled_ratio", Heapster: "cpu/cfs_throttled_ratio", HeapsterScale: 1, Unit: "ratio", Levels: specLvls, Rollup: RollupRatio, Endpoint: EndpointCadvisor, Help: "Throttled CFS periods divided by CFS periods over the last scrape interval (0-1); absent when no period elapsed."},

	MemoryUsage:               {Name: "memory_usage_bytes", Heapster: "memory/usage", HeapsterScale: 1, Unit: "bytes", Levels: all, Rollup: RollupSum, Help: "Memory usage including page cache, in bytes."},
	MemoryWorkingSet:          {Name: "memory_working_set_bytes", Heapster: "memory/working_set", HeapsterScale: 1, Unit: "bytes", Levels: all, Rollup: RollupSum, Help: "Working set memory (usage minus inactive file), in bytes."},
	MemoryRSS:                 {Name: "memory_rss_bytes", Heapster: "memory/rss", HeapsterScale: 1, Unit: "bytes", Levels: all, Rollup: RollupSum, Help: "Anonymous and swap cache memory, in bytes."},
	MemoryPageFaults:          {Name: "memory_page_faults_total", Heapster: "memory/page_faults", HeapsterScale: 1, Unit: "faults", Kind: Counter, Levels: scraped, Help: "Cumulative page faults."},
	MemoryPageFaultsRate:      {Name: "memory_page_faults_per_second", Heapster: "memory/page_faults_rate", HeapsterScale: 1, Unit: "faults/s", Levels: all, Rollup: RollupSum, RateOf: id(MemoryPageFaults), Help: "Page faults per second over the last scrape interval."},
	MemoryMajorPageFaults:     {Name: "memory_major_page_faults_total", Heapster: "memory/major_page_faults", HeapsterScale: 1, Unit: "faults", Kind: Counter, Levels: scraped, Help: "Cumulative major page faults."},
	MemoryMajorPageFaultsRate: {Name: "memory_major_page_faults_per_second", Heapster: "memory/major_page_faults_rate", HeapsterScale: 1, Unit: "faults/s", Levels: all, Rollup: RollupSum, RateOf: id(MemoryMajorPageFaults), Help: "Major page faults per second over the last scrape interval."},
	MemoryRequest:             {Name: "memory_request_bytes", Heapster: "memory/request", HeapsterScale: 1, Unit: "bytes", Levels: specLvls, Rollup: RollupSum, Help: "Memory requested by the pod specs, in bytes."},
	MemoryLimit:               {Name: "memory_limit_bytes", Heapster: "memory/limit", HeapsterScale: 1, Unit: "bytes", Levels: specLvls, Rollup: RollupSum, Help: "Memory limit from the pod specs, in bytes (containers without a limit are left out)."},
	MemoryCapacity:            {Name: "memory_capacity_bytes", Heapster: "memory/node_capacity", HeapsterScale: 1, Unit: "bytes", Levels: nodeCl, Rollup: RollupSum, Help: "Memory capacity of the node, in bytes."},
	MemoryAllocatable:         {Name: "memory_allocatable_bytes", Heapster: "memory/node_allocatable", HeapsterScale: 1, Unit: "bytes", Levels: nodeCl, Rollup: RollupSum, Help: "Memory allocatable to pods, in bytes."},
	MemoryReservation:         {Name: "memory_reservation_ratio", Heapster: "memory/node_reservation", HeapsterScale: 1, Unit: "ratio", Levels: nodeCl, Rollup: RollupRatio, Help: "Memory requests divided by allocatable memory (0-1)."},
	MemoryUtilization:         {Name: "memory_utilization_ratio", Heapster: "memory/node_utilization", HeapsterScale: 1, Unit: "ratio", Levels: nodeCl, Rollup: RollupRatio, Help: "Memory working set divided by allocatable memory (0-1)."},
	OOMKills:                  {Name: "oom_kills_total", Heapster: "memory/oom_kills", HeapsterScale: 1, Unit: "kills", Kind: Counter, Levels: Levels(LevelContainer), SpansRestarts: true, Help: "OOM kills of the container's processes kubemon saw: terminations with reason OOMKilled in the pod status (the main process killed, the container restarted) and rises of cAdvisor's container_oom_events_total within one run of the container (another process killed); counted from 0 when kubemon first sees the container, across its restarts."},
	OOMKillsRate:              {Name: "oom_kills_per_second", Heapster: "memory/oom_kills_rate", HeapsterScale: 1, Unit: "kills/s", Levels: specLvls, Rollup: RollupSum, RateOf: id(OOMKills), Help: "OOM kills per second over the last scrape interval (one kill in a 15 s interval: 0.0667)."},

	NetworkRx:           {Name: "network_receive_bytes_total", Heapster: "network/rx", HeapsterScale: 1, Unit: "bytes", Kind: Counter, Levels: podUp, Help: "Cumulative bytes received."},
	NetworkRxRate:       {Name: "network_receive_bytes_per_second", Heapster: "network/rx_rate", HeapsterScale: 1, Unit: "bytes/s", Levels: noCont, Rollup: RollupSum, RateOf: id(NetworkRx), Help: "Bytes received per second over the last scrape interval."},
	NetworkRxErrors:     {Name: "network_receive_errors_total", Heapster: "network/rx_errors", HeapsterScale: 1, Unit: "errors", Kind: Counter, Levels: podUp, Help: "Cumulative receive errors."},
	NetworkRxErrorsRate: {Name: "network_receive_errors_per_second", Heapster: "network/rx_errors_rate", HeapsterScale: 1, Unit: "errors/s", Levels: noCont, Rollup: RollupSum, RateOf: id(NetworkRxErrors), Help: "Receive errors per second over the last scrape interval."},
	NetworkTx:           {Name: "network_transmit_bytes_total", Heapster: "network/tx", HeapsterScale: 1, Unit: "bytes", Kind: Counter, Levels: podUp, Help: "Cumulative bytes transmitted."},
	NetworkTxRate:       {Name: "network_transmit_bytes_per_second", Heapster: "network/tx_rate", HeapsterScale: 1, Unit: "bytes/s", Levels: noCont, Rollup: RollupSum, RateOf: id(NetworkTx), Help: "Bytes transmitted per second over the last scrape interval."},
	NetworkTxErrors:     {Name: "network_transmit_errors_total", Heapster: "network/tx_errors", HeapsterScale: 1, Unit: "errors", Kind: Counter, Levels: podUp, Help: "Cumulative transmit errors."},
	NetworkTxErrorsRate: {Name: "network_transmit_errors_per_second", Heapster: "network/tx_errors_rate", HeapsterScale: 1, Unit: "errors/s", Levels: noCont, Rollup: RollupSum, RateOf: id(NetworkTxErrors), Help: "Transmit errors per second over the last scrape interval."},

	FilesystemUsage:      {Name: "filesystem_usage_bytes", Heapster: "filesystem/usage", HeapsterScale: 1, Unit: "bytes", Levels: all, Rollup: RollupSum, Help: "Filesystem bytes used (container: rootfs + logs; node: root filesystem)."},
	FilesystemLimit:      {Name: "filesystem_capacity_bytes", Heapster: "filesystem/limit", HeapsterScale: 1, Unit: "bytes", Levels: nodeCl, Rollup: RollupSum, Help: "Filesystem capacity, in bytes."},
	FilesystemAvailable:  {Name: "filesystem_available_bytes", Heapster: "filesystem/available", HeapsterScale: 1, Unit: "bytes", Levels: nodeCl, Rollup: RollupSum, Help: "Filesystem bytes available."},
	FilesystemInodes:     {Name: "filesystem_inodes", Heapster: "filesystem/inodes", HeapsterScale: 1, Unit: "inodes", Levels: nodeCl, Rollup: RollupSum, Help: "Filesystem inodes in total."},
	FilesystemInodesFree: {Name: "filesystem_inodes_free", Heapster: "filesystem/inodes_free", HeapsterScale: 1, Unit: "inodes", Levels: nodeCl, Rollup: RollupSum, Help: "Filesystem inodes free."},

	DiskIORead:      {Name: "disk_io_read_bytes_total", Heapster: "disk/io_read_bytes", HeapsterScale: 1, Unit: "bytes", Kind: Counter, Levels: scraped, Endpoint: EndpointCadvisor, Help: "Cumulative bytes read from block devices (from /metrics/cadvisor)."},
	DiskIOReadRate:  {Name: "disk_io_read_bytes_per_second", Heapster: "disk/io_read_bytes_rate", HeapsterScale: 1, Unit: "bytes/s", Levels: all, Rollup: RollupSum, RateOf: id(DiskIORead), Endpoint: EndpointCadvisor, Help: "Bytes read from block devices per second over the last scrape interval."},
	DiskIOWrite:     {Name: "disk_io_write_bytes_total", Heapster: "disk/io_write_bytes", HeapsterScale: 1, Unit: "bytes", Kind: Counter, Levels: scraped, Endpoint: EndpointCadvisor, Help: "Cumulative bytes written to block devices (from /metrics/cadvisor)."},
	DiskIOWriteRate: {Name: "disk_io_write_bytes_per_second", Heapster: "disk/io_write_bytes_rate", HeapsterScale: 1, Unit: "bytes/s", Levels: all, Rollup: RollupSum, RateOf: id(DiskIOWrite), Endpoint: EndpointCadvisor, Help: "Bytes written to block devices per second over the last scrape interval."},

	EphemeralStorageUsage: {Name: "ephemeral_storage_usage_bytes", Heapster: "ephemeral_storage/usage", HeapsterScale: 1, Unit: "bytes", Levels: noCont, Rollup: RollupSum, Help: "Ephemeral storage used by pods (rootfs, logs, emptyDir), in bytes."},
	Info:                  {Name: "info", HeapsterScale: 1, Unit: "info", Levels: Levels(LevelPod, LevelNamespace), Help: "Always 1; its labels carry the object's Kubernetes labels, each as label_<name> and all in Heapster's form (labels=\"k:v,...\"), and for a pod its owning workload (workload_kind, workload)."},
	Uptime:                {Name: "uptime_seconds", Heapster: "uptime", HeapsterScale: 1000, Unit: "seconds", Levels: Levels(LevelContainer, LevelPod, LevelNode, LevelSysContainer), Help: "Time since the object started, in seconds (Heapster: milliseconds)."},
	Restarts:              {Name: "restart_count", Heapster: "restart_count", HeapsterScale: 1, Unit: "restarts", Levels: Levels(LevelContainer, LevelPod, LevelNamespace, LevelWorkload, LevelNode, LevelCluster), Rollup: RollupSum, Help: "Container restarts reported by the pod status (a gauge: sums over pods drop when pods go away)."},
	CrashLoopBackOff:      {Name: "crash_loop_backoff", Heapster: "crash_loop_backoff", HeapsterScale: 1, Unit: "containers", Levels: specLvls, Rollup: RollupSum, Help: "Containers waiting in CrashLoopBackOff (the kubelet holds back the restart of a container that keeps exiting): 1 or 0 for a container, from its pod status (waiting in CrashLoopBackOff, or terminated again after restarts with a restart policy that restarts it), also while it has no stats; summed above."},

	KubeletUp:      {Name: "kubelet_up", Heapster: "kubelet/up", HeapsterScale: 1, Unit: "bool", Levels: Levels(LevelNode), Help: "1 when kubemon's last scrape of the node's kubelet succeeded, 0 when it failed (refused, timed out, unreadable), at the scrape's start time."},
	SinkLag:        {Name: "sink_lag_seconds", Heapster: "kubemon/sink_lag", HeapsterScale: 1, Unit: "seconds", Levels: self, Labels: []string{LabelSink}, Help: "How far behind the present a sink's delivered data ends, in seconds (at least the sink's settle time): kubemon_sink_lag_seconds of /metrics, stored every interval."},
	StoreSize:      {Name: "store_size_bytes", Heapster: "kubemon/store_size", HeapsterScale: 1, Unit: "bytes", Levels: self, Help: "Bytes of kubemon's store on disk, as its size retention counts them (blocks, WAL and head chunks)."},
	StoreSizeLimit: {Name: "store_size_limit_bytes", Heapster: "kubemon/store_size_limit", HeapsterScale: 1, Unit: "bytes", Levels: self, Help: "The store's size limit (retentionSize), beyond which its oldest blocks are deleted; absent when there is none."},
	StoreVolumeAvailable: {Name: "store_volume_available_bytes", Heapster: "kubemon/store_volume_available", HeapsterScale: 1, Unit: "bytes", Levels: self,
		Help: "Bytes free for kubemon on the filesystem of its data directory (the store and the events store), as statfs counts them for an unprivileged user."},
	StoreVolumeSize: {Name: "store_volume_size_bytes", Heapster: "kubemon/store_volume_size", HeapsterScale: 1, Unit: "bytes", Levels: self,
		Help: "Size of the filesystem of kubemon's data directory, in bytes."},
}

func init() {
	for i := range Metrics {
		Metrics[i].ID = MetricID(i)
		if Metrics[i].Name == "" {
			panic("model: metric without a definition")
		}
	}
}

// PromName is the Prometheus series name of metric m at level l.
func PromName(l Level, m MetricID) string { return promNames[l][m] }

var promNames = func() (n [NumLevels][NumMetrics]string) {
	for l := Level(0); l < NumLevels; l++ {
		for m := range Metrics {
			n[l][m] = l.Prefix() + "_" + Metrics[m].Name
		}
	}
	return n
}()

// ByHeapster finds a metric by its Heapster name.
func ByHeapster(name string) (Metric, bool) {
	for _, m := range Metrics {
		if m.Heapster == name && name != "" {
			return m, true
		}
	}
	return Metric{}, false
}

// SeriesNames lists every Prometheus series name kubemon can write.
func SeriesNames() []string {
	var out []string
	for l := Level(0); l < NumLevels; l++ {
		for _, m := range Metrics {
			if m.Levels.Has(l) {
				out = append(out, PromName(l, m.ID))
			}
		}
	}
	return out
}

// seriesByName maps every series name kubemon writes to its level and metric.
var seriesByName = func() map[string]struct {
	l Level
	m MetricID
} {
	out := map[string]struct {
		l Level
		m MetricID
	}{}
	for l := Level(0); l < NumLevels; l++ {
		for i, m := range Metrics { // by index: IDs are set by init, after this runs
			if m.Levels.Has(l) {
				out[PromName(l, MetricID(i))] = struct {
					l Level
					m MetricID
				}{l, MetricID(i)}
			}
		}
	}
	return out
}()

// ParseSeriesName returns the level and metric of a series name kubemon
// writes (PromName's inverse); ok is false for any other name.
func ParseSeriesName(name string) (l Level, m MetricID, ok bool) {
	s, ok := seriesByName[name]
	return s.l, s.m, ok
}
