package scrape

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/valyala/fastjson"

	"github.com/kubemon/kubemon/internal/model"
)

// parsers reuses fastjson's parse buffers across scrapes.
var parsers fastjson.ParserPool

// DecodeSummary decodes a kubelet Summary API payload (/stats/summary,
// stats/v1alpha1) into entries for the node, its system containers, pods
// and containers. node names the scraped node (it wins over the payload's
// nodeName, which can be empty); now stands in for missing timestamps.
// Absent (or null) fields stay absent (NaN), they are never read as zero.
//
// It reads the payload with fastjson rather than into the
// k8s.io/kubelet stats types: the results are the same (summary_test.go
// checks that against the types on every fixture and under fuzzing) at a
// fraction of the CPU time, which matters at thousands of nodes.
func DecodeSummary(data []byte, node string, now time.Time) ([]model.Entry, error) {
	p := parsers.Get()
	defer parsers.Put(p)
	root, err := p.ParseBytes(data)
	if err != nil {
		return nil, fmt.Errorf("decode summary: %w", err)
	}
	d := decoder{now: now}
	entries, err := d.summary(root, node)
	if err != nil {
		return nil, fmt.Errorf("decode summary: %w", err)
	}
	return entries, nil
}

// decoder walks one parsed payload; the first error stops it.
type decoder struct {
	now time.Time
	err error
}

func (d *decoder) fail(path, format string, a ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%s: "+format, append([]any{path}, a...)...)
	}
}

// object returns v's field as an object, nil when absent or null.
func (d *decoder) object(v *fastjson.Value, key, path string) *fastjson.Value {
	f := v.Get(key)
	if f == nil || f.Type() == fastjson.TypeNull {
		return nil
	}
	if f.Type() != fastjson.TypeObject {
		d.fail(path+"."+key, "want an object, got %s", f.Type())
		return nil
	}
	return f
}

// array returns v's field as an array, nil when absent or null.
func (d *decoder) array(v *fastjson.Value, key, path string) []*fastjson.Value {
	f := v.Get(key)
	if f == nil || f.Type() == fastjson.TypeNull {
		return nil
	}
	a, err := f.Array()
	if err != nil {
		d.fail(path+"."+key, "want an array, got %s", f.Type())
	}
	return a
}

func (d *decoder) str(v *fastjson.Value, key, path string) string {
	f := v.Get(key)
	if f == nil || f.Type() == fastjson.TypeNull {
		return ""
	}
	b, err := f.StringBytes()
	if err != nil {
		d.fail(path+"."+key, "want a string, got %s", f.Type())
	}
	return string(b)
}

// uint returns v's field, an unsigned 64-bit integer, as a float; NaN when
// absent or null.
func (d *decoder) uint(v *fastjson.Value, key, path string) float64 {
	f := v.Get(key)
	if f == nil || f.Type() == fastjson.TypeNull {
		return math.NaN()
	}
	if f.Type() != fastjson.TypeNumber {
		d.fail(path+"."+key, "want a number, got %s", f.Type())
		return math.NaN()
	}
	raw := f.MarshalTo(nil)
	n, err := strconv.ParseUint(string(raw), 10, 64)
	if err != nil {
		d.fail(path+"."+key, "want an unsigned 64-bit integer, got %s", raw)
		return math.NaN()
	}
	return float64(n)
}

// time returns v's field, an RFC 3339 time, in Unix milliseconds; 0 when
// absent or null.
func (d *decoder) time(v *fastjson.Value, key, path string) int64 {
	s := d.str(v, key, path)
	if s == "" {
		if f := v.Get(key); f != nil && f.Type() == fastjson.TypeString {
			d.fail(path+"."+key, "empty time")
		}
		return 0
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		d.fail(path+"."+key, "bad time %q: %v", s, err)
		return 0
	}
	return t.UnixMilli()
}

func (d *decoder) summary(root *fastjson.Value, node string) ([]model.Entry, error) {
	if root.Type() != fastjson.TypeObject {
		return nil, fmt.Errorf("want an object, got %s", root.Type())
	}
	n := d.object(root, "node", "")
	if node == "" && n != nil {
		node = d.str(n, "nodeName", "node")
	}
	if d.err != nil {
		return nil, d.err
	}
	if node == "" {
		return nil, fmt.Errorf("no node name")
	}
	sys := []*fastjson.Value(nil)
	if n != nil {
		sys = d.array(n, "systemContainers", "node")
	}
	pods := d.array(root, "pods", "")
	entries := make([]model.Entry, 0, 1+len(sys)+len(pods)*3+model.EntriesHeadroom)

	ne := model.Entry{Object: model.Object{Level: model.LevelNode, Node: node}, Values: model.NewValues()}
	if n != nil {
		ne.Start = d.time(n, "startTime", "node")
		ne.Time = d.usage(&ne.Values, n, "node", true)
		if fs := d.object(n, "fs", "node"); fs != nil {
			ne.Values[model.FilesystemUsage] = d.uint(fs, "usedBytes", "node.fs")
			ne.Values[model.FilesystemLimit] = d.uint(fs, "capacityBytes", "node.fs")
			ne.Values[model.FilesystemAvailable] = d.uint(fs, "availableBytes", "node.fs")
			ne.Values[model.FilesystemInodes] = d.uint(fs, "inodes", "node.fs")
			ne.Values[model.FilesystemInodesFree] = d.uint(fs, "inodesFree", "node.fs")
		}
	}
	d.finish(&ne)
	entries = append(entries, ne)

	for i, c := range sys {
		path := "node.systemContainers[" + strconv.Itoa(i) + "]"
		e := d.container(c, path)
		e.Object = model.Object{Level: model.LevelSysContainer, Node: node, Container: d.str(c, "name", path)}
		entries = append(entries, e)
	}

	for i, p := range pods {
		path := "pods[" + strconv.Itoa(i) + "]"
		if p.Type() != fastjson.TypeObject {
			d.fail(path, "want an object, got %s", p.Type())
			break
		}
		var name, ns string
		if ref := d.object(p, "podRef", path); ref != nil {
			name, ns = d.str(ref, "name", path+".podRef"), d.str(ref, "namespace", path+".podRef")
		}
		if d.err != nil {
			break
		}
		if name == "" || ns == "" {
			return nil, fmt.Errorf("pod %d has no name or namespace", i)
		}
		pe := model.Entry{
			Object: model.Object{Level: model.LevelPod, Node: node, Namespace: ns, Pod: name},
			Values: model.NewValues(),
			Start:  d.time(p, "startTime", path),
		}
		pe.Time = d.usage(&pe.Values, p, path, true)
		if es := d.object(p, "ephemeral-storage", path); es != nil {
			pe.Values[model.EphemeralStorageUsage] = d.uint(es, "usedBytes", path+".ephemeral-storage")
		}
		d.finish(&pe)
		entries = append(entries, pe)
		for j, c := range d.array(p, "containers", path) {
			cpath := path + ".containers[" + strconv.Itoa(j) + "]"
			e := d.container(c, cpath)
			e.Object = model.Object{Level: model.LevelContainer, Node: node, Namespace: ns, Pod: name, Container: d.str(c, "name", cpath)}
			entries = append(entries, e)
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	return entries, nil
}

func (d *decoder) container(c *fastjson.Value, path string) model.Entry {
	e := model.Entry{Values: model.NewValues()}
	if c.Type() != fastjson.TypeObject {
		d.fail(path, "want an object, got %s", c.Type())
		return e
	}
	e.Start = d.time(c, "startTime", path)
	e.Time = d.usage(&e.Values, c, path, false)
	fs := math.NaN()
	for _, key := range [...]string{"rootfs", "logs"} {
		if o := d.object(c, key, path); o != nil {
			if used := d.uint(o, "usedBytes", path+"."+key); !math.IsNaN(used) {
				if math.IsNaN(fs) {
					fs = 0
				}
				fs += used
			}
		}
	}
	e.Values[model.FilesystemUsage] = fs
	d.finish(&e)
	return e
}

// usage reads the cpu, memory and (withNet) network blocks into v and
// returns the first of their times (Unix ms), 0 when none has one.
func (d *decoder) usage(v *model.Values, o *fastjson.Value, path string, withNet bool) int64 {
	var t int64
	first := func(x int64) {
		if t == 0 {
			t = x
		}
	}
	if c := d.object(o, "cpu", path); c != nil {
		first(d.time(c, "time", path+".cpu"))
		if ns := d.uint(c, "usageCoreNanoSeconds", path+".cpu"); !math.IsNaN(ns) {
			v[model.CPUUsage] = ns / 1e9
		}
	}
	if m := d.object(o, "memory", path); m != nil {
		mp := path + ".memory"
		first(d.time(m, "time", mp))
		v[model.MemoryUsage] = d.uint(m, "usageBytes", mp)
		v[model.MemoryWorkingSet] = d.uint(m, "workingSetBytes", mp)
		v[model.MemoryRSS] = d.uint(m, "rssBytes", mp)
		v[model.MemoryPageFaults] = d.uint(m, "pageFaults", mp)
		v[model.MemoryMajorPageFaults] = d.uint(m, "majorPageFaults", mp)
	}
	if !withNet {
		return t
	}
	if n := d.object(o, "network", path); n != nil {
		np := path + ".network"
		first(d.time(n, "time", np))
		d.network(v, n, np)
	}
	return t
}

var netMetrics = [...]struct {
	key string
	m   model.MetricID
}{{"rxBytes", model.NetworkRx}, {"rxErrors", model.NetworkRxErrors}, {"txBytes", model.NetworkTx}, {"txErrors", model.NetworkTxErrors}}

// network uses the default interface's counters; where the kubelet sends
// only named interfaces (Windows, some older kubelets) it sums them.
func (d *decoder) network(v *model.Values, n *fastjson.Value, path string) {
	if present(n, "rxBytes") || present(n, "txBytes") {
		for _, nm := range netMetrics {
			v[nm.m] = d.uint(n, nm.key, path)
		}
		return
	}
	for i, iface := range d.array(n, "interfaces", path) {
		ip := path + ".interfaces[" + strconv.Itoa(i) + "]"
		for _, nm := range netMetrics {
			x := d.uint(iface, nm.key, ip)
			switch {
			case math.IsNaN(x):
			case math.IsNaN(v[nm.m]):
				v[nm.m] = x
			default:
				v[nm.m] += x
			}
		}
	}
}

func present(v *fastjson.Value, key string) bool {
	f := v.Get(key)
	return f != nil && f.Type() != fastjson.TypeNull
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
