package scrape

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/textparse"

	"github.com/kubemon/kubemon/internal/model"
)

// cgroupKey names a cgroup in cAdvisor's series: a container (all set), a
// pod's own cgroup (Container empty) or the node's root (all empty).
type cgroupKey struct{ Namespace, Pod, Container string }

// DiskIO is a cgroup's cumulative block-device traffic, in bytes, summed
// over devices, and when cAdvisor observed it (Unix ms; 0 when the
// exposition has no timestamps, as before Kubernetes 1.16).
type DiskIO struct {
	Read, Write float64
	Time        int64
}

// Extras are what /metrics/cadvisor says of a cgroup that the Summary API
// does not: disk IO, CPU throttling (CFS) and OOM events. Absent values are
// NaN (CFS counters exist only for cgroups with a CPU quota).
type Extras struct {
	DiskIO
	// CFSPeriods and CFSThrottledPeriods count enforcement periods;
	// CFSThrottledTime is in seconds.
	CFSPeriods, CFSThrottledPeriods, CFSThrottledTime float64
	// OOMEvents is container_oom_events_total: OOM kills cAdvisor saw in
	// this cgroup (a container's current run).
	OOMEvents float64
}

// cadvisorFamilies maps the cAdvisor families kubemon reads to its metrics.
// Disk IO comes as container_fs_{reads,writes}_bytes_total or, from newer
// kubelets only, as container_blkio_device_usage_total{operation}.
var cadvisorFamilies = map[string]model.MetricID{
	"container_cpu_usage_seconds_total":         model.CPUUsage,
	"container_memory_working_set_bytes":        model.MemoryWorkingSet,
	"container_memory_usage_bytes":              model.MemoryUsage,
	"container_memory_rss":                      model.MemoryRSS,
	"container_fs_usage_bytes":                  model.FilesystemUsage,
	"container_network_receive_bytes_total":     model.NetworkRx,
	"container_network_receive_errors_total":    model.NetworkRxErrors,
	"container_network_transmit_bytes_total":    model.NetworkTx,
	"container_network_transmit_errors_total":   model.NetworkTxErrors,
	"container_fs_reads_bytes_total":            model.DiskIORead,
	"container_fs_writes_bytes_total":           model.DiskIOWrite,
	"container_blkio_device_usage_total":        model.DiskIORead, // or DiskIOWrite, by operation
	"container_start_time_seconds":              model.Uptime,     // read as the start time
	"container_cpu_cfs_periods_total":           model.CFSPeriods,
	"container_cpu_cfs_throttled_periods_total": model.CFSThrottledPeriods,
	"container_cpu_cfs_throttled_seconds_total": model.CFSThrottledTime,
	"container_oom_events_total":                model.OOMKills, // cAdvisor's per-cgroup count: Entry.OOMEvents
}

// extraMetrics are the metrics read from /metrics/cadvisor beside another
// source (Extras), stamped with their own time (Entry.CadvisorTime).
var extraMetrics = []model.MetricID{model.DiskIORead, model.DiskIOWrite, model.CFSPeriods, model.CFSThrottledPeriods, model.CFSThrottledTime, model.OOMKills}

func isExtra(m model.MetricID) bool {
	for _, x := range extraMetrics {
		if m == x {
			return true
		}
	}
	return false
}

// cgroupSample is what one cAdvisor exposition says of one cgroup.
type cgroupSample struct {
	values model.Values
	blkio  [2]float64 // read, write from container_blkio_device_usage_total; NaN when absent
	time   int64      // newest sample timestamp but the extras', Unix ms
	ioTime int64      // newest timestamp of the extras (disk IO, CFS, OOM events), Unix ms
	start  int64      // Unix ms
	net    netSample  // the cgroup's own network series (the root's, a pod cgroup's where the kubelet puts them there)
	rootFS float64    // the node's largest block-device filesystem usage
}

// netSample is a network namespace's counters (receive bytes, receive
// errors, transmit bytes, transmit errors) as cAdvisor lists them on one
// cgroup: eth0's, and the sum over all interfaces; NaN when absent.
type netSample struct {
	eth0, sum [4]float64
	time      int64 // newest sample timestamp, Unix ms
}

func newNetSample() netSample {
	nan := math.NaN()
	return netSample{eth0: [4]float64{nan, nan, nan, nan}, sum: [4]float64{nan, nan, nan, nan}}
}

func (n *netSample) add(i int, iface []byte, v float64, ts int64) {
	if string(iface) == "eth0" {
		n.eth0[i] = v
	}
	n.sum[i] = add(n.sum[i], v)
	n.time = max(n.time, ts)
}

// counters are eth0's where the cgroup has eth0, as the Summary API's
// default interface, else the sum over its interfaces.
func (n *netSample) counters() (out [4]float64, ok bool) {
	for i := range out {
		if !math.IsNaN(n.eth0[i]) {
			out[i], ok = n.eth0[i], true
		}
	}
	if ok {
		return out, true
	}
	for i := range out {
		out[i] = n.sum[i]
		ok = ok || !math.IsNaN(n.sum[i])
	}
	return out, ok
}

// sandbox is a pod's sandbox (pause) cgroup: where containerd and CRI-O
// kubelets (container="", the pause image, a cgroup below the pod's) and
// docker ones (container="POD") list the pod's network.
type sandbox struct {
	pod   cgroupKey
	id    string
	start int64 // Unix ms
	net   netSample
}

var cadvisorNet = [4]model.MetricID{model.NetworkRx, model.NetworkRxErrors, model.NetworkTx, model.NetworkTxErrors}

// parseCadvisor reads a /metrics/cadvisor exposition (Prometheus text)
// into per-cgroup values: containers, pod cgroups and the node's root
// cgroup (id="/"), of the families in fams only (their lines are picked
// out before parsing: a kubelet's exposition is mostly families kubemon
// does not read). Values of several devices are summed; network counters
// are eth0's (else the sum over interfaces), a pod's from its sandbox
// where the kubelet lists them there (containerd, CRI-O, docker's "POD"),
// else from its own cgroup, never both.
func parseCadvisor(data []byte, fams familySet) (map[cgroupKey]*cgroupSample, error) {
	bp := lineBufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 4<<20 {
			lineBufs.Put(bp)
		}
	}()
	*bp = appendFamilies((*bp)[:0], data, fams)
	p := textparse.NewPromParser(*bp, nil, false)
	out := map[cgroupKey]*cgroupSample{}
	var (
		sandboxes map[string]*sandbox // by cgroup id
		l         cadvisorLabels
		in        interner
	)
	for {
		et, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("decode cadvisor metrics: %w", err)
		}
		if et != textparse.EntrySeries {
			continue
		}
		series, tsp, v := p.Series()
		name, ok := l.scan(series)
		if !ok {
			return nil, fmt.Errorf("decode cadvisor metrics: labels of %q", series)
		}
		m, ok := cadvisorFamilies[string(name)]
		if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		var ts int64
		if tsp != nil {
			ts = *tsp
		}
		kind := l.kind()
		if kind == cgroupOther {
			continue
		}
		key := cgroupKey{Namespace: in.get(l.namespace), Pod: in.get(l.pod), Container: in.get(l.container)}
		if kind == cgroupSandbox {
			// Only its network is the pod's: its CPU, memory, disk IO and
			// OOM events are counted in the pod cgroup already.
			if !isNet(m) && m != model.Uptime {
				continue
			}
			if sandboxes == nil {
				sandboxes = map[string]*sandbox{}
			}
			sb := sandboxes[string(l.id)]
			if sb == nil {
				key.Container = ""
				sb = &sandbox{pod: key, id: string(l.id), net: newNetSample()}
				sandboxes[sb.id] = sb
			}
			switch {
			case m == model.Uptime:
				if v > 0 {
					sb.start = int64(v * 1000)
				}
			case v >= 0:
				sb.net.add(netIndex(m), l.iface, v, ts)
			}
			continue
		}
		c := out[key]
		if c == nil {
			c = newCgroupSample()
			out[key] = c
		}
		if m == model.Uptime {
			if v > 0 {
				c.start = int64(v * 1000)
			}
			continue
		}
		if v < 0 {
			continue
		}
		if isNet(m) {
			c.net.add(netIndex(m), l.iface, v, ts)
			continue
		}
		if tsp != nil {
			switch {
			case isExtra(m):
				c.ioTime = max(c.ioTime, ts)
			case m == model.FilesystemUsage: // refreshed on its own, slower clock
			default:
				c.time = max(c.time, ts)
			}
		}
		switch {
		case string(name) == "container_blkio_device_usage_total":
			i := 0
			switch string(l.operation) {
			case "Read":
			case "Write":
				i = 1
			default:
				continue
			}
			c.blkio[i] = add(c.blkio[i], v)
			continue
		case key == (cgroupKey{}) && m == model.FilesystemUsage:
			// The root cgroup lists every mount (overlays, tmpfs, shm); keep
			// the largest block device, the root filesystem.
			if bytes.HasPrefix(l.device, []byte("/dev/")) && string(l.device) != "/dev/shm" {
				c.rootFS = max(c.rootFS, v)
			}
			continue
		}
		c.values[m] = add(c.values[m], v)
	}
	// A pod's network is its sandbox's (the newest, should a pod have two
	// for a moment), as the Summary API's, else its own cgroup's.
	best := map[cgroupKey]*sandbox{}
	for _, sb := range sandboxes {
		if _, ok := sb.net.counters(); !ok {
			continue
		}
		if b := best[sb.pod]; b == nil || sb.start > b.start || sb.start == b.start && sb.id > b.id {
			best[sb.pod] = sb
		}
	}
	for k, sb := range best {
		c := out[k]
		if c == nil {
			c = newCgroupSample()
			out[k] = c
		}
		c.net = sb.net
	}
	for key, c := range out {
		if math.IsNaN(c.values[model.DiskIORead]) && math.IsNaN(c.values[model.DiskIOWrite]) {
			c.values[model.DiskIORead], c.values[model.DiskIOWrite] = c.blkio[0], c.blkio[1]
		}
		if key == (cgroupKey{}) && c.rootFS > 0 {
			c.values[model.FilesystemUsage] = c.rootFS
		}
		if n, ok := c.net.counters(); ok {
			for i, m := range cadvisorNet {
				c.values[m] = n[i]
			}
			if c.time == 0 {
				// A pod's CPU and memory keep their cgroup's time, not its
				// sandbox's, which cAdvisor samples on its own clock.
				c.time = c.net.time
			}
		}
	}
	return out, nil
}

func newCgroupSample() *cgroupSample {
	return &cgroupSample{values: model.NewValues(), blkio: [2]float64{math.NaN(), math.NaN()}, net: newNetSample()}
}

func isNet(m model.MetricID) bool { return m >= model.NetworkRx && m <= model.NetworkTxErrorsRate }

func netIndex(m model.MetricID) int {
	switch m {
	case model.NetworkRx:
		return 0
	case model.NetworkRxErrors:
		return 1
	case model.NetworkTx:
		return 2
	}
	return 3
}

func add(sum, v float64) float64 {
	if math.IsNaN(sum) {
		return v
	}
	return sum + v
}

// ExtraFamilies are the /metrics/cadvisor families DecodeCadvisorExtras reads.
var ExtraFamilies = func() []string {
	var out []string
	for name, m := range cadvisorFamilies {
		if isExtra(m) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}()

// DecodeCadvisorExtras reads what the Summary API lacks from a
// /metrics/cadvisor payload: the disk IO counters
// (container_fs_{reads,writes}_bytes_total, or
// container_blkio_device_usage_total{operation="Read"|"Write"} where a
// kubelet sends only that), the CFS counters
// (container_cpu_cfs_{periods,throttled_periods,throttled_seconds}_total)
// and container_oom_events_total. It keeps containers, pod cgroups and the
// node's root cgroup (id="/"), understands the pre-1.16
// container_name/pod_name labels, and skips pods' sandboxes (pause
// containers: their cgroups are inside their pods'). A cgroup with none of
// them is left out. Only the lines of those families are parsed: the rest
// of the exposition (nine tenths of a kubelet's) is dropped by a check of
// each line's leading name.
func DecodeCadvisorExtras(data []byte) (map[cgroupKey]Extras, error) {
	cg, err := parseCadvisor(data, extraSet)
	if err != nil {
		return nil, err
	}
	out := make(map[cgroupKey]Extras, len(cg))
	for k, c := range cg {
		v := &c.values
		x := Extras{CFSPeriods: v[model.CFSPeriods], CFSThrottledPeriods: v[model.CFSThrottledPeriods],
			CFSThrottledTime: v[model.CFSThrottledTime], OOMEvents: v[model.OOMKills]}
		r, w := v[model.DiskIORead], v[model.DiskIOWrite]
		hasIO := !math.IsNaN(r) || !math.IsNaN(w)
		if !hasIO && math.IsNaN(x.CFSPeriods) && math.IsNaN(x.OOMEvents) {
			continue
		}
		x.Read, x.Write = math.NaN(), math.NaN()
		if hasIO {
			x.Read, x.Write = zeroNaN(r), zeroNaN(w)
		}
		x.Time = c.ioTime
		out[k] = x
	}
	return out, nil
}

func zeroNaN(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return v
}

// DecodeCadvisor decodes a kubelet /metrics/cadvisor payload into entries
// for the node (root cgroup), pods (pod cgroups) and containers: CPU,
// memory, filesystem, network, disk IO, CPU throttling and OOM events
// (containers; Entry.OOMEvents), each cgroup stamped with its newest
// sample's time (now when the exposition has none, as before Kubernetes
// 1.16). A pod's network is its sandbox's (the pause container's cgroup,
// where containerd, CRI-O and docker kubelets list it), else its own
// cgroup's; eth0's counters where there is an eth0 (as the Summary API's),
// else the sum over interfaces. Only the lines of the families read are
// parsed.
func DecodeCadvisor(data []byte, node string, now time.Time) ([]model.Entry, error) {
	cg, err := parseCadvisor(data, cadvisorSet)
	if err != nil {
		return nil, err
	}
	entries := newEntries(len(cg) + 1 + model.EntriesHeadroom)
	if _, ok := cg[cgroupKey{}]; !ok {
		cg[cgroupKey{}] = &cgroupSample{values: model.NewValues()}
	}
	for k, c := range cg {
		o := model.Object{Level: model.LevelContainer, Node: node, Namespace: k.Namespace, Pod: k.Pod, Container: k.Container}
		switch {
		case k == cgroupKey{}:
			o = model.Object{Level: model.LevelNode, Node: node}
		case k.Container == "":
			o = model.Object{Level: model.LevelPod, Node: node, Namespace: k.Namespace, Pod: k.Pod}
		}
		e := model.Entry{Object: o, Time: c.time, CadvisorTime: c.ioTime, Start: c.start, Values: c.values}
		if e.Time == 0 {
			e.Time = now.UnixMilli()
		}
		if o.Level == model.LevelContainer {
			for _, m := range []model.MetricID{model.NetworkRx, model.NetworkRxErrors, model.NetworkTx, model.NetworkTxErrors} {
				e.Values[m] = math.NaN() // a container shares its pod's network
			}
		}
		if e.Start != 0 && e.Time >= e.Start {
			e.Values[model.Uptime] = float64(e.Time-e.Start) / 1000
		}
		keepExtras(&e)
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return less(entries[i].Object, entries[j].Object) })
	return entries, nil
}

// less orders objects node first, then by namespace, pod and container.
func less(a, b model.Object) bool {
	if (a.Level == model.LevelNode) != (b.Level == model.LevelNode) {
		return a.Level == model.LevelNode
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	if a.Pod != b.Pod {
		return a.Pod < b.Pod
	}
	return a.Container < b.Container
}

// cgroupKind is what a cAdvisor series' cgroup is to kubemon.
type cgroupKind int

const (
	cgroupOther     cgroupKind = iota // QoS classes, system slices …: not read
	cgroupRoot                        // the node (id="/")
	cgroupPod                         // a pod's own cgroup
	cgroupContainer                   // a container's
	cgroupSandbox                     // a pod's sandbox (pause container): only its network is read
)

// cadvisorLabels are the labels of a cAdvisor series kubemon reads,
// pointing into the exposition (or, for a value with escapes, a copy).
type cadvisorLabels struct {
	namespace, pod, container, podName, containerName []byte
	id, iface, device, operation                      []byte
}

// scan reads a series (its name and label set, as textparse.Parser.Series
// returns it, whose syntax the parser has checked) into l without
// allocating, and returns the series' name.
func (l *cadvisorLabels) scan(series []byte) (name []byte, ok bool) {
	*l = cadvisorLabels{}
	i := 0
	for i < len(series) && blank(series[i]) {
		i++
	}
	start := i
	for i < len(series) && series[i] != '{' && !blank(series[i]) {
		i++
	}
	name = series[start:i]
	for i < len(series) && blank(series[i]) {
		i++
	}
	if i == len(series) {
		return name, true
	}
	if series[i] != '{' {
		return name, false
	}
	i++
	for {
		for i < len(series) && (blank(series[i]) || series[i] == ',') {
			i++
		}
		if i == len(series) {
			return name, false
		}
		if series[i] == '}' {
			return name, true
		}
		var label []byte
		if series[i] == '"' { // a quoted (UTF-8) label name
			if label, i, ok = quoted(series, i); !ok {
				return name, false
			}
		} else {
			j := i
			for j < len(series) && series[j] != '=' && !blank(series[j]) {
				j++
			}
			label, i = series[i:j], j
		}
		for i < len(series) && blank(series[i]) {
			i++
		}
		if i == len(series) {
			return name, false
		}
		if series[i] != '=' { // {"metric.name", …}: the name inside the braces
			continue
		}
		i++
		for i < len(series) && blank(series[i]) {
			i++
		}
		if i == len(series) || series[i] != '"' {
			return name, false
		}
		var value []byte
		if value, i, ok = quoted(series, i); !ok {
			return name, false
		}
		switch string(label) {
		case "namespace":
			l.namespace = value
		case "pod":
			l.pod = value
		case "container":
			l.container = value
		case "pod_name": // before Kubernetes 1.16
			l.podName = value
		case "container_name":
			l.containerName = value
		case "id":
			l.id = value
		case "interface":
			l.iface = value
		case "device":
			l.device = value
		case "operation":
			l.operation = value
		}
	}
}

func blank(c byte) bool { return c == ' ' || c == '\t' }

// quoted reads the quoted string at b[i] (a '"'), unescaping it (into a
// copy) if it has escapes, and returns the index after its closing quote.
func quoted(b []byte, i int) (s []byte, next int, ok bool) {
	if j := bytes.IndexByte(b[i+1:], '"'); j >= 0 && bytes.IndexByte(b[i+1:i+1+j], '\\') < 0 {
		return b[i+1 : i+1+j], i + j + 2, true // no escapes: the common case
	}
	esc := false
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			esc = true
			j++
		case '"':
			s = b[i+1 : j]
			if esc {
				s = unescape(s)
			}
			return s, j + 1, true
		}
	}
	return nil, len(b), false
}

// unescape undoes the text format's escapes in a label value: \\, \" and \n.
func unescape(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '\\' && i+1 < len(b) {
			i++
			switch c = b[i]; c {
			case 'n':
				c = '\n'
			case '\\', '"':
			default:
				out = append(out, '\\')
			}
		}
		out = append(out, c)
	}
	return out
}

// kind names the cgroup of a series: containers and pod cgroups by their
// pod, namespace and container labels (or the pre-1.16 pod_name and
// container_name), the root by id="/". A pod's sandbox has no container
// name (containerd, CRI-O) or "POD" (docker) and, unlike the pod's own
// cgroup (cgroupfs ".../pod<uid>", systemd "...-pod<uid>.slice"), a
// cgroup of its own below the pod's.
func (l *cadvisorLabels) kind() cgroupKind {
	if len(l.pod) == 0 {
		l.pod = l.podName
	}
	if len(l.container) == 0 {
		l.container = l.containerName
	}
	switch {
	case len(l.pod) > 0 && len(l.namespace) > 0:
		switch {
		case string(l.container) == "POD":
			return cgroupSandbox
		case len(l.container) > 0:
			return cgroupContainer
		case isPodCgroup(l.id):
			return cgroupPod
		case len(l.id) > 0:
			return cgroupSandbox
		}
	case len(l.pod) == 0 && len(l.container) == 0 && string(l.id) == "/":
		return cgroupRoot
	}
	return cgroupOther
}

// isPodCgroup tells a pod's own cgroup from the cgroups below it by the
// last element of its path: "pod<uid>" (cgroupfs) or
// "kubepods-<qos>-pod<uid>.slice" (systemd).
func isPodCgroup(id []byte) bool {
	last := id[bytes.LastIndexByte(id, '/')+1:]
	return bytes.HasPrefix(last, []byte("pod")) || bytes.Contains(last, []byte("-pod"))
}

// interner hands out one string per distinct label value of an
// exposition, allocated once.
type interner map[string]string

func (in *interner) get(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s, ok := (*in)[string(b)]; ok {
		return s
	}
	if *in == nil {
		*in = interner{}
	}
	s := string(b)
	(*in)[s] = s
	return s
}

// familySet is a set of metric family names.
type familySet map[string]bool

func newFamilySet(names []string) familySet {
	s := familySet{}
	for _, n := range names {
		s[n] = true
	}
	return s
}

var (
	// cadvisorSet are the families DecodeCadvisor reads.
	cadvisorSet = newFamilySet(slices.Collect(maps.Keys(cadvisorFamilies)))
	// extraSet are the families DecodeCadvisorExtras reads.
	extraSet = newFamilySet(ExtraFamilies)
)

// lineBufs recycles the buffers of the lines picked out of an exposition.
var lineBufs = sync.Pool{New: func() any { return new([]byte) }}

// appendFamilies appends to dst the sample lines of the exposition src
// whose family is in fams, each ending in a newline, and drops every
// other line (other families, HELP and TYPE comments): a check of each
// line's leading name, before any parsing. dst may be src[:0], to filter
// in place.
func appendFamilies(dst, src []byte, fams familySet) []byte {
	var (
		lastBuf [96]byte
		last    = lastBuf[:0] // the previous line's family name (a copy: dst may overwrite src)
		keep    bool
	)
	for len(src) > 0 {
		line := src
		if i := bytes.IndexByte(src, '\n'); i >= 0 {
			line, src = src[:i+1], src[i+1:]
		} else {
			src = nil
		}
		// Families come in runs of lines: most lines have the previous one's name.
		if n := len(last); n == 0 || len(line) <= n || !bytes.HasPrefix(line, last) || !nameEnd(line[n]) {
			n = 0
			for n < len(line) && !nameEnd(line[n]) {
				n++
			}
			if line[0] == '#' {
				n = 0 // a comment: never kept, never a name
			}
			last, keep = append(last[:0], line[:n]...), fams[string(line[:n])]
		}
		if keep {
			dst = append(dst, line...)
			if line[len(line)-1] != '\n' {
				dst = append(dst, '\n')
			}
		}
	}
	return dst
}

func nameEnd(c byte) bool { return c == '{' || c == ' ' || c == '\t' || c == '\n' }

// AppendCadvisorExtras appends to dst the lines of a /metrics/cadvisor
// exposition src that DecodeCadvisorExtras reads (the sample lines of
// ExtraFamilies); dst may be src[:0], to filter in place.
// DecodeCadvisorExtras filters so itself: this is for a caller that keeps
// or passes on the body.
func AppendCadvisorExtras(dst, src []byte) []byte { return appendFamilies(dst, src, extraSet) }

// keepExtras keeps of an entry's cAdvisor extras those its level has:
// the CFS counters for containers only (a pod's throttling is the sum of
// its containers', which its own cgroup's counters are not: they count
// the pod's periods once, not once per container; the root cgroup's are
// not the node's pods'), and moves a container's OOM events out of Values
// into Entry.OOMEvents (the pipeline counts them into OOMKills).
func keepExtras(e *model.Entry) {
	v := &e.Values
	if e.Object.Level == model.LevelContainer && !math.IsNaN(v[model.OOMKills]) {
		e.OOMEvents = v[model.OOMKills]
	}
	v[model.OOMKills] = math.NaN()
	if e.Object.Level != model.LevelContainer {
		v[model.CFSPeriods], v[model.CFSThrottledPeriods], v[model.CFSThrottledTime] = math.NaN(), math.NaN(), math.NaN()
	}
}

// mergeExtras sets the disk IO counters of container, pod and node
// entries, and the CFS counters and OOM events of container ones (see
// keepExtras), from /metrics/cadvisor.
func mergeExtras(entries []model.Entry, extras map[cgroupKey]Extras) {
	for i := range entries {
		e := &entries[i]
		var k cgroupKey
		switch e.Object.Level {
		case model.LevelContainer:
			k = cgroupKey{e.Object.Namespace, e.Object.Pod, e.Object.Container}
		case model.LevelPod:
			k = cgroupKey{e.Object.Namespace, e.Object.Pod, ""}
		case model.LevelNode:
		default:
			continue
		}
		x, ok := extras[k]
		if !ok {
			continue
		}
		v := &e.Values
		if !math.IsNaN(x.Read) {
			v[model.DiskIORead], v[model.DiskIOWrite] = x.Read, x.Write
		}
		v[model.CFSPeriods], v[model.CFSThrottledPeriods], v[model.CFSThrottledTime] = x.CFSPeriods, x.CFSThrottledPeriods, x.CFSThrottledTime
		v[model.OOMKills] = x.OOMEvents
		keepExtras(e)
		e.CadvisorTime = x.Time
	}
}
