package scrape

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kubemon/kubemon/internal/jsonscan"
	"github.com/kubemon/kubemon/internal/model"
)

// decoders reuses decoders' scratch space across scrapes.
var decoders = sync.Pool{New: func() any { return new(decoder) }}

// DecodeSummary decodes a kubelet Summary API payload (/stats/summary,
// stats/v1alpha1) into entries for the node, its system containers, pods
// and containers, in that order. node names the scraped node (it wins over
// the payload's nodeName, which can be empty); now stands in for missing
// timestamps. Absent (or null) fields stay absent (NaN), they are never
// read as zero.
//
// It reads the payload in one pass with jsonscan, reading the fields it
// keeps and skipping (but checking) the rest, rather than into the
// k8s.io/kubelet stats types: the results are the same (summary_test.go
// checks that against the types on every fixture and under fuzzing) at a
// fraction of the CPU time and with no tree of values to build, which
// matters at thousands of nodes.
func DecodeSummary(data []byte, node string, now time.Time) ([]model.Entry, error) {
	d := decoders.Get().(*decoder)
	defer decoders.Put(d)
	d.s.Reset(data)
	d.now, d.path = now, d.path[:0]
	d.sys, d.pods = d.sys[:0], d.pods[:0]
	entries, err := d.summary(node)
	if err != nil {
		return nil, fmt.Errorf("decode summary: %w", err)
	}
	return entries, nil
}

// decoder walks one payload; the first error, its own or the scanner's,
// is the scanner's and stops it.
type decoder struct {
	s    jsonscan.Scanner
	now  time.Time
	path []pathElem // where the walk is, for error messages
	// sys and pods collect the entries (pods with their containers) before
	// they are copied into a slice of their exact size, node first.
	sys, pods []model.Entry
}

// pathElem is a key, or an index when key is "".
type pathElem struct {
	key   string
	index int
}

func (d *decoder) push(key string) { d.path = append(d.path, pathElem{key: key}) }
func (d *decoder) pushIndex(i int) { d.path = append(d.path, pathElem{index: i}) }
func (d *decoder) pop()            { d.path = d.path[:len(d.path)-1] }

// where spells the path to key (or to the current value, key ""), as
// "pods[3].containers[0].cpu.time".
func (d *decoder) where(key string) string {
	var b strings.Builder
	for _, p := range d.path {
		if p.key == "" {
			b.WriteString("[" + strconv.Itoa(p.index) + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p.key)
	}
	if key != "" {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(key)
	}
	return b.String()
}

// fail records the first error, at key, and stops the walk.
func (d *decoder) fail(key, format string, a ...any) {
	if d.s.Err() == nil {
		d.s.Fail(fmt.Errorf("%s: "+format, append([]any{d.where(key)}, a...)...))
	}
}

// open reads the opening of key's object (array with arr); false when it
// is null or of another kind (an error).
func (d *decoder) open(key string, arr bool) bool {
	want, read := jsonscan.Object, d.s.Object
	if arr {
		want, read = jsonscan.Array, d.s.Array
	}
	switch k := d.s.Peek(); k {
	case want, jsonscan.Null, jsonscan.Invalid:
		return read()
	default:
		d.fail(key, "want an %s, got %s", want, k)
		return false
	}
}

// str reads key's string, "" for null.
func (d *decoder) str(key string) string {
	switch k := d.s.Peek(); k {
	case jsonscan.String, jsonscan.Null, jsonscan.Invalid:
		return string(d.s.String())
	default:
		d.fail(key, "want a string, got %s", k)
		return ""
	}
}

// uint reads key's unsigned 64-bit integer as a float; NaN for null.
func (d *decoder) uint(key string) float64 {
	switch k := d.s.Peek(); k {
	case jsonscan.Number, jsonscan.Null, jsonscan.Invalid:
		b := d.s.Number()
		if b == nil {
			return math.NaN()
		}
		n, ok := jsonscan.ParseUint(b)
		if !ok {
			d.fail(key, "want an unsigned 64-bit integer, got %s", b)
			return math.NaN()
		}
		return float64(n)
	default:
		d.fail(key, "want a number, got %s", k)
		return math.NaN()
	}
}

// time reads key's RFC 3339 time in Unix milliseconds; 0 for null and for
// the zero time (which the kubelet's types write as null).
func (d *decoder) time(key string) int64 {
	switch k := d.s.Peek(); k {
	case jsonscan.String:
	case jsonscan.Null:
		d.s.Null()
		return 0
	case jsonscan.Invalid:
		d.s.Skip() // the syntax error
		return 0
	default:
		d.fail(key, "want a string, got %s", k)
		return 0
	}
	b := d.s.String()
	if len(b) == 0 {
		d.fail(key, "empty time")
		return 0
	}
	if ms, ok := utcSeconds(b); ok {
		return ms
	}
	t, err := time.Parse(time.RFC3339, string(b))
	if err != nil {
		d.fail(key, "bad time %q: %v", b, err)
		return 0
	}
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// utcSeconds reads the kubelet's usual form, "2006-01-02T15:04:05Z", in
// Unix milliseconds, without time.Parse's generality; ok is false for any
// other form or an invalid date, which time.Parse then reads or refuses.
func utcSeconds(b []byte) (ms int64, ok bool) {
	if len(b) != 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' || b[19] != 'Z' {
		return 0, false
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range b[i : i+n] {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	y, mo, dd, h, mi, s := num(0, 4), num(5, 2), num(8, 2), num(11, 2), num(14, 2), num(17, 2)
	if y < 1 || mo < 1 || mo > 12 || dd < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 59 {
		return 0, false
	}
	if dd > 28 && dd > time.Date(y, time.Month(mo)+1, 0, 0, 0, 0, 0, time.UTC).Day() { // the month's length, only where it can matter
		return 0, false
	}
	t := time.Date(y, time.Month(mo), dd, h, mi, s, 0, time.UTC)
	if t.IsZero() {
		return 0, true
	}
	return t.UnixMilli(), true
}

// times are the cpu, memory and network blocks' times (Unix ms, 0 when
// absent); an entry takes the first present in that order.
type times struct{ cpu, mem, net int64 }

func (t times) first() int64 {
	switch {
	case t.cpu != 0:
		return t.cpu
	case t.mem != 0:
		return t.mem
	}
	return t.net
}

func (d *decoder) summary(node string) ([]model.Entry, error) {
	if k := d.s.Peek(); k != jsonscan.Object {
		if k == jsonscan.Invalid {
			d.s.Skip()
			return nil, d.s.Err()
		}
		return nil, fmt.Errorf("want an object, got %s", k)
	}
	d.s.Object()
	ne := model.Entry{Object: model.Object{Level: model.LevelNode}, Values: model.NewValues()}
	nodeName := ""
	for key, ok := d.s.Key(); ok; key, ok = d.s.Key() {
		switch string(key) {
		case "node":
			nodeName = d.node(&ne)
		case "pods":
			d.podList()
		default:
			d.s.Skip()
		}
	}
	if err := d.s.End(); err != nil {
		return nil, err
	}
	if node == "" {
		node = nodeName
	}
	if node == "" {
		return nil, errors.New("no node name")
	}
	d.finish(&ne)
	entries := newEntries(1 + len(d.sys) + len(d.pods) + model.EntriesHeadroom)
	entries = append(entries, ne)
	entries = append(entries, d.sys...)
	entries = append(entries, d.pods...)
	for i := range entries {
		entries[i].Object.Node = node
	}
	for i := range d.pods {
		d.pods[i] = model.Entry{} // drop the strings the scratch space would keep alive
	}
	for i := range d.sys {
		d.sys[i] = model.Entry{}
	}
	return entries, nil
}

// node reads the node block into e and its system containers into d.sys,
// and returns its nodeName.
func (d *decoder) node(e *model.Entry) (name string) {
	d.push("node")
	defer d.pop()
	if !d.open("", false) {
		return ""
	}
	var t times
	for key, ok := d.s.Key(); ok; key, ok = d.s.Key() {
		switch string(key) {
		case "nodeName":
			name = d.str("nodeName")
		case "systemContainers":
			d.sys = d.containers("systemContainers", model.LevelSysContainer, d.sys)
		case "fs":
			d.fs(&e.Values)
		default:
			if !d.usage(key, e, &t, true) {
				d.s.Skip()
			}
		}
	}
	e.Time = t.first()
	return name
}

func (d *decoder) fs(v *model.Values) {
	d.push("fs")
	defer d.pop()
	if !d.open("", false) {
		return
	}
	for key, ok := d.s.Key(); ok; key, ok = d.s.Key() {
		switch string(key) {
		case "usedBytes":
			v[model.FilesystemUsage] = d.uint("usedBytes")
		case "capacityBytes":
			v[model.FilesystemLimit] = d.uint("capacityBytes")
		case "availableBytes":
			v[model.FilesystemAvailable] = d.uint("availableBytes")
		case "inodes":
			v[model.FilesystemInodes] = d.uint("inodes")
		case "inodesFree":
			v[model.FilesystemInodesFree] = d.uint("inodesFree")
		default:
			d.s.Skip()
		}
	}
}

// podList reads the pods into d.pods, each followed by its containers.
func (d *decoder) podList() {
	d.push("pods")
	defer d.pop()
	if !d.open("", true) {
		return
	}
	for i := 0; d.s.Next(); i++ {
		d.pushIndex(i)
		d.pod(i)
		d.pop()
	}
}

func (d *decoder) pod(i int) {
	if !d.open("", false) {
		if d.s.Err() == nil {
			d.fail("", "want an object, got null")
		}
		return
	}
	at := len(d.pods)
	d.pods = append(d.pods, model.Entry{Object: model.Object{Level: model.LevelPod}, Values: model.NewValues()})
	var t times
	var name, ns string
	for key, ok := d.s.Key(); ok; key, ok = d.s.Key() {
		switch string(key) {
		case "podRef":
			name, ns = d.podRef()
		case "containers":
			d.pods = d.containers("containers", model.LevelContainer, d.pods)
		case "ephemeral-storage":
			d.push("ephemeral-storage")
			if d.open("", false) {
				for key, ok := d.s.Key(); ok; key, ok = d.s.Key() {
					if string(key) == "usedBytes" {
						d.pods[at].Values[model.EphemeralStorageUsage] = d.uint("usedBytes")
					} else {
						d.s.Skip()
					}
				}
			}
			d.pop()
		default:
			if !d.usage(key, &d.pods[at], &t, true) {
				d.s.Skip()
			}
		}
	}
	if d.s.Err() != nil {
		return
	}
	if name == "" || ns == "" {
		d.s.Fail(fmt.Errorf("pod %d has no name or namespace", i))
		return
	}
	p := &d.pods[at]
	p.Time = t.first()
	d.finish(p)
	for j := at; j < len(d.pods); j++ {
		d.pods[j].Object.Namespace, d.pods[j].Object.Pod = ns, name
	}
}

func (d *decoder) podRef() (name, ns string) {
	d.push("podRef")
	defer d.pop()
	if !d.open("", false) {
		return "", ""
	}
	for key, ok := d.s.Key(); ok; key, ok = d.s.Key() {
		switch string(key) {
		case "name":
			name = d.str("name")
		case "namespace":
			ns = d.str("namespace")
		default:
			d.s.Skip()
		}
	}
	return name, ns
}

// containers reads key's array of containers at level, appending them to
// into.
func (d *decoder) containers(key string, level model.Level, into []model.Entry) []model.Entry {
	d.push(key)
	defer d.pop()
	if d.open("", true) {
		for i := 0; d.s.Next(); i++ {
			d.pushIndex(i)
			into = append(into, d.container(level))
			d.pop()
		}
	}
	return into
}

// container reads a container's (or system container's) stats.
func (d *decoder) container(level model.Level) model.Entry {
	e := model.Entry{Object: model.Object{Level: level}, Values: model.NewValues()}
	if !d.open("", false) {
		if d.s.Err() == nil {
			d.fail("", "want an object, got null")
		}
		return e
	}
	var t times
	fs := math.NaN()
	for key, ok := d.s.Key(); ok; key, ok = d.s.Key() {
		switch k := string(key); k {
		case "name":
			e.Object.Container = d.str("name")
		case "rootfs", "logs":
			d.push(k)
			if d.open("", false) {
				for key, ok := d.s.Key(); ok; key, ok = d.s.Key() {
					if string(key) != "usedBytes" {
						d.s.Skip()
						continue
					}
					if used := d.uint("usedBytes"); !math.IsNaN(used) {
						if math.IsNaN(fs) {
							fs = 0
						}
						fs += used
					}
				}
			}
			d.pop()
		default:
			if !d.usage(key, &e, &t, false) {
				d.s.Skip()
			}
		}
	}
	e.Values[model.FilesystemUsage] = fs
	e.Time = t.first()
	d.finish(&e)
	return e
}

// usage reads key's value when it is one of the blocks every object has
// (startTime, cpu, memory, and network withNet), and reports whether it was.
func (d *decoder) usage(key []byte, e *model.Entry, t *times, withNet bool) bool {
	v := &e.Values
	switch string(key) {
	case "startTime":
		e.Start = d.time("startTime")
	case "cpu":
		d.push("cpu")
		if d.open("", false) {
			for key, ok := d.s.Key(); ok; key, ok = d.s.Key() {
				switch string(key) {
				case "time":
					t.cpu = d.time("time")
				case "usageCoreNanoSeconds":
					if ns := d.uint("usageCoreNanoSeconds"); !math.IsNaN(ns) {
						v[model.CPUUsage] = ns / 1e9
					}
				default:
					d.s.Skip()
				}
			}
		}
		d.pop()
	case "memory":
		d.push("memory")
		if d.open("", false) {
			for key, ok := d.s.Key(); ok; key, ok = d.s.Key() {
				switch string(key) {
				case "time":
					t.mem = d.time("time")
				case "usageBytes":
					v[model.MemoryUsage] = d.uint("usageBytes")
				case "workingSetBytes":
					v[model.MemoryWorkingSet] = d.uint("workingSetBytes")
				case "rssBytes":
					v[model.MemoryRSS] = d.uint("rssBytes")
				case "pageFaults":
					v[model.MemoryPageFaults] = d.uint("pageFaults")
				case "majorPageFaults":
					v[model.MemoryMajorPageFaults] = d.uint("majorPageFaults")
				default:
					d.s.Skip()
				}
			}
		}
		d.pop()
	case "network":
		if !withNet {
			return false
		}
		d.network(v, t)
	default:
		return false
	}
	return true
}

// netMetrics are the interface counters the network blocks carry.
var netMetrics = [...]struct {
	key string
	m   model.MetricID
}{{"rxBytes", model.NetworkRx}, {"rxErrors", model.NetworkRxErrors}, {"txBytes", model.NetworkTx}, {"txErrors", model.NetworkTxErrors}}

// network uses the default interface's counters; where the kubelet sends
// only named interfaces (Windows, some older kubelets) it sums them.
func (d *decoder) network(v *model.Values, t *times) {
	d.push("network")
	defer d.pop()
	if !d.open("", false) {
		return
	}
	top := [len(netMetrics)]float64{math.NaN(), math.NaN(), math.NaN(), math.NaN()}
	sum := top
	for key, ok := d.s.Key(); ok; key, ok = d.s.Key() {
		if string(key) == "time" {
			t.net = d.time("time")
			continue
		}
		if string(key) == "interfaces" {
			d.interfaces(&sum)
			continue
		}
		if i := netKeyIndex(key); i >= 0 {
			top[i] = d.uint(netMetrics[i].key)
			continue
		}
		d.s.Skip()
	}
	use := sum
	if !math.IsNaN(top[0]) || !math.IsNaN(top[2]) { // rxBytes or txBytes
		use = top
	}
	for i, nm := range netMetrics {
		v[nm.m] = use[i]
	}
}

func netKeyIndex(key []byte) int {
	for i, nm := range netMetrics {
		if string(key) == nm.key {
			return i
		}
	}
	return -1
}

func (d *decoder) interfaces(sum *[len(netMetrics)]float64) {
	d.push("interfaces")
	defer d.pop()
	if !d.open("", true) {
		return
	}
	for i := 0; d.s.Next(); i++ {
		d.pushIndex(i)
		if d.open("", false) {
			for key, ok := d.s.Key(); ok; key, ok = d.s.Key() {
				j := netKeyIndex(key)
				if j < 0 {
					d.s.Skip()
					continue
				}
				switch x := d.uint(netMetrics[j].key); {
				case math.IsNaN(x):
				case math.IsNaN(sum[j]):
					sum[j] = x
				default:
					sum[j] += x
				}
			}
		}
		d.pop()
	}
}

// finish stamps entries without a time with now and sets the uptime.
func (d *decoder) finish(e *model.Entry) {
	if e.Time == 0 {
		e.Time = d.now.UnixMilli()
	}
	if e.Start != 0 && e.Time >= e.Start {
		e.Values[model.Uptime] = float64(e.Time-e.Start) / 1000
	}
}
