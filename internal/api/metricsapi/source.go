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
)

// Source reads resource metrics from the store, the way metrics-server
// computes them: CPU as the rate between an object's two newest counter
// samples (Window is the time between them, Timestamp the newer one),
// memory as the newest working set.
type Source struct {
	q storage.Queryable
	// MaxAge is how old an object's newest sample may be for it to be
	// reported; the sample before it may be up to MaxAge older still (the
	// kubelet refreshes its stats every 10-15 s, slower under load, so
	// consecutive samples can be further apart than kubemon's interval).
	// Default 2 minutes.
	MaxAge time.Duration
	Now    func() time.Time
}

// NewSource returns a Source over q.
func NewSource(q storage.Queryable) *Source {
	return &Source{q: q, MaxAge: 2 * time.Minute, Now: time.Now}
}

// usage is one object's newest CPU rate and working set.
type usage struct {
	t      int64 // ms, of the newer CPU sample
	window int64 // ms
	cpu    float64
	mem    float64
	hasMem bool
}

// read selects the CPU counter and working-set series of one level's
// objects matching ms, keyed by key(labels).
func (s *Source) read(ctx context.Context, level string, key func(labels.Labels) string, ms ...*labels.Matcher) (map[string]usage, error) {
	now := s.Now()
	q, err := s.q.Querier(now.Add(-2*s.MaxAge).UnixMilli(), now.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer q.Close()
	out := map[string]usage{}
	cpu := append([]*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, level+"_cpu_usage_seconds_total")}, ms...)
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
		if n < 2 || t1 <= t0 || v1 < v0 || t1 < now.Add(-s.MaxAge).UnixMilli() {
			continue // no rate yet, a reset between the two samples, or stale
		}
		out[key(set.At().Labels())] = usage{t: t1, window: t1 - t0, cpu: (v1 - v0) / (float64(t1-t0) / 1000)}
	}
	if err := set.Err(); err != nil {
		return nil, err
	}
	mem := append([]*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, level+"_memory_working_set_bytes")}, ms...)
	set = q.Select(ctx, false, nil, mem...)
	for set.Next() {
		k := key(set.At().Labels())
		u, ok := out[k]
		if !ok {
			continue
		}
		it := set.At().Iterator(nil)
		for it.Next() != 0 {
			if _, v := it.At(); !math.IsNaN(v) {
				u.mem, u.hasMem = v, true
			}
		}
		if err := it.Err(); err != nil {
			return nil, err
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
func (s *Source) Nodes(ctx context.Context, name string) ([]metrics.NodeMetrics, error) {
	var ms []*labels.Matcher
	if name != "" {
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, "node", name))
	}
	us, err := s.read(ctx, "node", func(l labels.Labels) string { return l.Get("node") }, ms...)
	if err != nil {
		return nil, fmt.Errorf("node metrics: %w", err)
	}
	out := make([]metrics.NodeMetrics, 0, len(us))
	for name, u := range us {
		if !u.hasMem {
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
func (s *Source) Pods(ctx context.Context, namespace, pod string) ([]metrics.PodMetrics, error) {
	var ms []*labels.Matcher
	if namespace != "" {
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, "namespace", namespace))
	}
	if pod != "" {
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, "pod", pod))
	}
	us, err := s.read(ctx, "container", func(l labels.Labels) string {
		return l.Get("namespace") + "/" + l.Get("pod") + "/" + l.Get("container")
	}, ms...)
	if err != nil {
		return nil, fmt.Errorf("pod metrics: %w", err)
	}
	pods := map[[2]string]*metrics.PodMetrics{}
	incomplete := map[[2]string]bool{}
	for k, u := range us {
		ns, pod, ctr := split3(k)
		pk := [2]string{ns, pod}
		if !u.hasMem {
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
