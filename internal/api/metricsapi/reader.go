package metricsapi

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/metrics/pkg/apis/metrics"

	"github.com/kubemon/kubemon/internal/model"
)

// Reader reads resource metrics from the store, the way metrics-server
// computes them: CPU as the rate between an object's two newest counter
// samples (Window is the time between them, Timestamp the newer one),
// memory as the newest working set.
type Reader struct {
	q storage.Queryable
	// MaxAge is how old an object's newest sample may be for it to be
	// reported; the sample before it may be up to MaxAge older still (the
	// kubelet refreshes its stats every 10-15 s, slower under load, so
	// consecutive samples can be further apart than kubemon's interval).
	// Default 2 minutes.
	MaxAge time.Duration
	Now    func() time.Time
}

// NewReader returns a Reader over q.
func NewReader(q storage.Queryable) *Reader {
	return &Reader{q: q, MaxAge: 2 * time.Minute, Now: time.Now}
}

// usage is one object's newest CPU rate and working set.
type usage struct {
	t      int64 // ms, of the newer CPU sample
	window int64 // ms
	cpu    float64
	hasCPU bool // cpu is a rate: the two newest samples are of one run
	mem    float64
	hasMem bool
}

// complete reports whether u has both a CPU rate and a working set.
func (u usage) complete() bool { return u.hasCPU && u.hasMem }

// read selects the CPU counter and working-set series of one level's
// objects matching ms, keyed by key(labels). Every object present now (a
// CPU counter or working set whose newest sample is at most MaxAge old and
// whose series has not ended) is in the result, with or without a rate:
// an object with one sample since it (re)appeared, or whose two newest
// samples straddle a counter reset, or with a working set but no counter,
// has hasCPU false, so that Pods can leave its pod out rather than report
// the pod without it.
func (s *Reader) read(ctx context.Context, level model.Level, key func(labels.Labels) string, ms ...*labels.Matcher) (map[string]usage, error) {
	now := s.Now()
	q, err := s.q.Querier(now.Add(-2*s.MaxAge).UnixMilli(), now.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer q.Close()
	fresh := now.Add(-s.MaxAge).UnixMilli()
	out := map[string]usage{}
	cpu := append([]*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, model.PromName(level, model.CPUUsage))}, ms...)
	set := q.Select(ctx, false, nil, cpu...)
	for set.Next() {
		var t0, t1 int64
		var v0, v1 float64
		n := 0
		it := set.At().Iterator(nil)
		for it.Next() != 0 {
			t, v := it.At()
			if math.IsNaN(v) {
				n = 0 // a staleness marker: the series ended
				continue
			}
			t0, v0, t1, v1 = t1, v1, t, v
			n++
		}
		if err := it.Err(); err != nil {
			return nil, err
		}
		if n == 0 || t1 < fresh {
			continue // no sample, the series ended, or stale: not there now
		}
		if n < 2 || t1 <= t0 || v1 < v0 {
			out[key(set.At().Labels())] = usage{t: t1} // no rate yet, or a reset between the two samples
			continue
		}
		out[key(set.At().Labels())] = usage{t: t1, window: t1 - t0, cpu: (v1 - v0) / (float64(t1-t0) / 1000), hasCPU: true}
	}
	if err := set.Err(); err != nil {
		return nil, err
	}
	mem := append([]*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, model.PromName(level, model.MemoryWorkingSet))}, ms...)
	set = q.Select(ctx, false, nil, mem...)
	for set.Next() {
		k := key(set.At().Labels())
		u, ok := out[k]
		var last int64
		ended := false
		it := set.At().Iterator(nil)
		for it.Next() != 0 {
			t, v := it.At()
			if ended = math.IsNaN(v); !ended {
				u.mem, u.hasMem, last = v, true, t
			}
		}
		if err := it.Err(); err != nil {
			return nil, err
		}
		if !ok && (!u.hasMem || ended || last < fresh) {
			continue // no CPU counter, and no working set now either
		}
		if !ok {
			u.t = last // a working set but no CPU counter: there, without a rate
		}
		out[k] = u
	}
	return out, set.Err()
}

func list(u usage) corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewScaledQuantity(int64(math.Round(u.cpu*1e9)), resource.Nano),
		corev1.ResourceMemory: *resource.NewQuantity(int64(u.mem), resource.BinarySI),
	}
}

// Nodes returns the metrics of every node with a CPU rate and a working
// set, sorted by name; name, when set, selects the one node of that name.
func (s *Reader) Nodes(ctx context.Context, name string) ([]metrics.NodeMetrics, error) {
	var ms []*labels.Matcher
	if name != "" {
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, model.LabelNode, name))
	}
	us, err := s.read(ctx, model.LevelNode, func(l labels.Labels) string { return l.Get(model.LabelNode) }, ms...)
	if err != nil {
		return nil, fmt.Errorf("node metrics: %w", err)
	}
	out := make([]metrics.NodeMetrics, 0, len(us))
	for name, u := range us {
		if !u.complete() {
			continue
		}
		out = append(out, metrics.NodeMetrics{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Timestamp:  metav1.NewTime(time.UnixMilli(u.t)),
			Window:     metav1.Duration{Duration: time.Duration(u.window) * time.Millisecond},
			Usage:      list(u),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Pods returns the metrics of the pods of namespace ("" for all) whose
// containers all have a CPU rate and a working set, sorted by namespace
// and name; pod, when set, selects the one pod of that name. A pod's
// timestamp is its oldest container's, its window the widest.
//
// As metrics-server does, a pod with a container present now but without a
// rate (one sample since it started, a restart between its two newest
// samples, a working set but no CPU counter) or without a working set is
// left out entirely, not reported with its other containers: the HPA then
// treats it as missing instead of under-counting it. Containers whose
// series ended (removed) or whose newest sample is older than MaxAge are
// not part of the pod.
func (s *Reader) Pods(ctx context.Context, namespace, pod string) ([]metrics.PodMetrics, error) {
	var ms []*labels.Matcher
	if namespace != "" {
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, model.LabelNamespace, namespace))
	}
	if pod != "" {
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, model.LabelPod, pod))
	}
	us, err := s.read(ctx, model.LevelContainer, func(l labels.Labels) string {
		return l.Get(model.LabelNamespace) + "/" + l.Get(model.LabelPod) + "/" + l.Get(model.LabelContainer)
	}, ms...)
	if err != nil {
		return nil, fmt.Errorf("pod metrics: %w", err)
	}
	pods := map[[2]string]*metrics.PodMetrics{}
	incomplete := map[[2]string]bool{}
	for k, u := range us {
		ns, pod, ctr := split3(k)
		pk := [2]string{ns, pod}
		if !u.complete() {
			incomplete[pk] = true
			continue
		}
		p := pods[pk]
		ts := metav1.NewTime(time.UnixMilli(u.t))
		w := metav1.Duration{Duration: time.Duration(u.window) * time.Millisecond}
		if p == nil {
			p = &metrics.PodMetrics{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: pod}, Timestamp: ts, Window: w}
			pods[pk] = p
		}
		if ts.Before(&p.Timestamp) {
			p.Timestamp = ts
		}
		if w.Duration > p.Window.Duration {
			p.Window = w
		}
		p.Containers = append(p.Containers, metrics.ContainerMetrics{Name: ctr, Usage: list(u)})
	}
	out := make([]metrics.PodMetrics, 0, len(pods))
	for k, p := range pods {
		if incomplete[k] {
			continue
		}
		sort.Slice(p.Containers, func(i, j int) bool { return p.Containers[i].Name < p.Containers[j].Name })
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// split3 splits "a/b/c" (namespace and pod names hold no "/").
func split3(k string) (a, b, c string) {
	a, rest, _ := strings.Cut(k, "/")
	b, c, _ = strings.Cut(rest, "/")
	return a, b, c
}
