package metricsapi

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	genericrequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/metrics/pkg/apis/metrics"
)

// The REST storage of the two resources. Metrics are joined to the Node
// and Pod objects discovery knows, so label selectors select on the
// nodes' and pods' labels (as with metrics-server) and objects that no
// longer exist are not reported.

var (
	_ rest.Storage              = (*nodeStorage)(nil)
	_ rest.Getter               = (*nodeStorage)(nil)
	_ rest.Lister               = (*nodeStorage)(nil)
	_ rest.Scoper               = (*nodeStorage)(nil)
	_ rest.KindProvider         = (*nodeStorage)(nil)
	_ rest.SingularNameProvider = (*nodeStorage)(nil)
	_ rest.Storage              = (*podStorage)(nil)
	_ rest.Getter               = (*podStorage)(nil)
	_ rest.Lister               = (*podStorage)(nil)
	_ rest.Scoper               = (*podStorage)(nil)
	_ rest.KindProvider         = (*podStorage)(nil)
	_ rest.SingularNameProvider = (*podStorage)(nil)
)

// nodeFields and podFields are the field selectors each resource accepts.
var (
	nodeFields = map[string]bool{"metadata.name": true}
	podFields  = map[string]bool{"metadata.name": true, "metadata.namespace": true, "spec.nodeName": true}
)

type nodeStorage struct {
	metrics *Reader
	nodes   listerscorev1.NodeLister
	log     *slog.Logger
	now     func() time.Time
}

func (*nodeStorage) New() runtime.Object     { return &metrics.NodeMetrics{} }
func (*nodeStorage) NewList() runtime.Object { return &metrics.NodeMetricsList{} }
func (*nodeStorage) Destroy()                {}
func (*nodeStorage) Kind() string            { return "NodeMetrics" }
func (*nodeStorage) GetSingularName() string { return "node" }
func (*nodeStorage) NamespaceScoped() bool   { return false }
func (*podStorage) New() runtime.Object      { return &metrics.PodMetrics{} }
func (*podStorage) NewList() runtime.Object  { return &metrics.PodMetricsList{} }
func (*podStorage) Destroy()                 {}
func (*podStorage) Kind() string             { return "PodMetrics" }
func (*podStorage) GetSingularName() string  { return "pod" }
func (*podStorage) NamespaceScoped() bool    { return true }
func (s *nodeStorage) ConvertToTable(_ context.Context, obj runtime.Object, _ runtime.Object) (*metav1.Table, error) {
	return nodeTable(obj)
}
func (s *podStorage) ConvertToTable(_ context.Context, obj runtime.Object, _ runtime.Object) (*metav1.Table, error) {
	return podTable(obj)
}

// Get returns one node's metrics; 404 when the node is unknown or has no
// metrics yet.
func (s *nodeStorage) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	n, err := s.nodes.Get(name)
	if err != nil {
		return nil, notFound(metrics.Resource("nodes"), name, err)
	}
	ms, err := s.metrics.Nodes(ctx, name)
	if err != nil {
		s.log.Error("metrics API: reading node metrics", "node", name, "err", err)
		return nil, apierrors.NewInternalError(err)
	}
	if len(ms) == 0 {
		return nil, apierrors.NewNotFound(metrics.Resource("nodes"), name)
	}
	m := &ms[0]
	decorate(&m.ObjectMeta, n.Labels, s.now)
	return m, nil
}

// List returns the metrics of the nodes that match the label and field
// selectors, sorted by name. Nodes without metrics yet are left out.
func (s *nodeStorage) List(ctx context.Context, o *metainternalversion.ListOptions) (runtime.Object, error) {
	ls, fs, err := selectors(o, nodeFields)
	if err != nil {
		return nil, err
	}
	nodes, err := s.nodes.List(ls)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	want := make(map[string]*corev1.Node, len(nodes))
	for _, n := range nodes {
		if fs.Matches(fields.Set{"metadata.name": n.Name}) {
			want[n.Name] = n
		}
	}
	out := &metrics.NodeMetricsList{Items: []metrics.NodeMetrics{}}
	if len(want) == 0 {
		return out, nil
	}
	one := ""
	if len(want) == 1 {
		for one = range want {
		}
	}
	ms, err := s.metrics.Nodes(ctx, one)
	if err != nil {
		s.log.Error("metrics API: reading node metrics", "err", err)
		return nil, apierrors.NewInternalError(err)
	}
	for _, m := range ms {
		if n, ok := want[m.Name]; ok {
			decorate(&m.ObjectMeta, n.Labels, s.now)
			out.Items = append(out.Items, m)
		}
	}
	return out, nil
}

type podStorage struct {
	metrics *Reader
	pods    listerscorev1.PodLister
	log     *slog.Logger
	now     func() time.Time
}

// Get returns one pod's metrics; 404 when the pod is unknown, not
// running, or has no complete metrics yet.
func (s *podStorage) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	ns := genericrequest.NamespaceValue(ctx)
	p, err := s.pods.Pods(ns).Get(name)
	if err != nil {
		return nil, notFound(metrics.Resource("pods"), name, err)
	}
	if p.Status.Phase != corev1.PodRunning {
		return nil, apierrors.NewNotFound(metrics.Resource("pods"), name)
	}
	ms, err := s.metrics.Pods(ctx, ns, name)
	if err != nil {
		s.log.Error("metrics API: reading pod metrics", "namespace", ns, "pod", name, "err", err)
		return nil, apierrors.NewInternalError(err)
	}
	if len(ms) == 0 {
		return nil, apierrors.NewNotFound(metrics.Resource("pods"), name)
	}
	m := &ms[0]
	decorate(&m.ObjectMeta, p.Labels, s.now)
	return m, nil
}

// List returns the metrics of the running pods of the request's namespace
// (all namespaces when it has none) that match the label and field
// selectors, sorted by namespace and name. Pods without complete metrics
// yet are left out.
func (s *podStorage) List(ctx context.Context, o *metainternalversion.ListOptions) (runtime.Object, error) {
	ns := genericrequest.NamespaceValue(ctx)
	ls, fs, err := selectors(o, podFields)
	if err != nil {
		return nil, err
	}
	pods, err := s.pods.Pods(ns).List(ls)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	want := make(map[[2]string]*corev1.Pod, len(pods))
	for _, p := range pods {
		f := fields.Set{"metadata.name": p.Name, "metadata.namespace": p.Namespace, "spec.nodeName": p.Spec.NodeName}
		if p.Status.Phase == corev1.PodRunning && fs.Matches(f) {
			want[[2]string{p.Namespace, p.Name}] = p
		}
	}
	out := &metrics.PodMetricsList{Items: []metrics.PodMetrics{}}
	if len(want) == 0 {
		return out, nil
	}
	one := ""
	if len(want) == 1 && ns != "" {
		for k := range want {
			one = k[1]
		}
	}
	ms, err := s.metrics.Pods(ctx, ns, one)
	if err != nil {
		s.log.Error("metrics API: reading pod metrics", "namespace", ns, "err", err)
		return nil, apierrors.NewInternalError(err)
	}
	for _, m := range ms {
		if p, ok := want[[2]string{m.Namespace, m.Name}]; ok {
			decorate(&m.ObjectMeta, p.Labels, s.now)
			out.Items = append(out.Items, m)
		}
	}
	return out, nil
}

// decorate gives a metrics object its node's or pod's labels and, as
// metrics-server does, the time it was made.
func decorate(m *metav1.ObjectMeta, l map[string]string, now func() time.Time) {
	m.Labels = l
	m.CreationTimestamp = metav1.NewTime(now())
}

// selectors returns a list's label and field selectors (everything when
// unset), refusing field selectors on fields other than allowed.
func selectors(o *metainternalversion.ListOptions, allowed map[string]bool) (labels.Selector, fields.Selector, error) {
	ls, fs := labels.Everything(), fields.Everything()
	if o == nil {
		return ls, fs, nil
	}
	if o.LabelSelector != nil {
		ls = o.LabelSelector
	}
	if o.FieldSelector != nil {
		fs = o.FieldSelector
		for _, r := range fs.Requirements() {
			if !allowed[r.Field] {
				return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s", r.Field))
			}
		}
	}
	return ls, fs, nil
}

// notFound turns a lister's error into the API's: 404 for a missing
// object, 500 otherwise.
func notFound(gr schema.GroupResource, name string, err error) error {
	if apierrors.IsNotFound(err) {
		return apierrors.NewNotFound(gr, name)
	}
	return apierrors.NewInternalError(err)
}

// nodeTable and podTable are what `kubectl get nodemetrics` and
// `kubectl get podmetrics` print: the usage and the window.
func nodeTable(obj runtime.Object) (*metav1.Table, error) {
	t := &metav1.Table{ColumnDefinitions: tableColumns}
	add := func(m *metrics.NodeMetrics) {
		t.Rows = append(t.Rows, row(m, m.Name, m.Usage, m.Window.Duration))
	}
	switch o := obj.(type) {
	case *metrics.NodeMetrics:
		add(o)
	case *metrics.NodeMetricsList:
		for i := range o.Items {
			add(&o.Items[i])
		}
	default:
		return nil, fmt.Errorf("unexpected object %T", obj)
	}
	return t, nil
}

func podTable(obj runtime.Object) (*metav1.Table, error) {
	t := &metav1.Table{ColumnDefinitions: tableColumns}
	add := func(m *metrics.PodMetrics) {
		sum := corev1.ResourceList{}
		for _, c := range m.Containers {
			for k, v := range c.Usage {
				q := sum[k]
				q.Add(v)
				sum[k] = q
			}
		}
		t.Rows = append(t.Rows, row(m, m.Name, sum, m.Window.Duration))
	}
	switch o := obj.(type) {
	case *metrics.PodMetrics:
		add(o)
	case *metrics.PodMetricsList:
		for i := range o.Items {
			add(&o.Items[i])
		}
	default:
		return nil, fmt.Errorf("unexpected object %T", obj)
	}
	return t, nil
}

var tableColumns = []metav1.TableColumnDefinition{
	{Name: "Name", Type: "string", Format: "name", Description: "Name of the node or pod"},
	{Name: "CPU", Type: "string", Format: "quantity", Description: "CPU usage in cores, averaged over the window"},
	{Name: "Memory", Type: "string", Format: "quantity", Description: "Memory working set in bytes"},
	{Name: "Window", Type: "string", Format: "duration", Description: "Time between the two samples the CPU rate was computed from"},
}

func row(obj runtime.Object, name string, u corev1.ResourceList, w time.Duration) metav1.TableRow {
	// As kubectl top prints them: millicores (rounded up) and MiB.
	cpu, mem := u[corev1.ResourceCPU], u[corev1.ResourceMemory]
	return metav1.TableRow{
		Cells:  []any{name, fmt.Sprintf("%dm", cpu.MilliValue()), fmt.Sprintf("%dMi", mem.Value()>>20), w.String()},
		Object: runtime.RawExtension{Object: obj},
	}
}
