package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listersappsv1 "k8s.io/client-go/listers/apps/v1"
	listersbatchv1 "k8s.io/client-go/listers/batch/v1"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/podmeta"
)

// InformerOptions configure discovery from the Kubernetes API.
type InformerOptions struct {
	// Scheme reaches kubelets directly: "https" (default) or "http".
	Scheme string
	// AddressTypes is the order of preference of node addresses; default
	// InternalIP, Hostname, ExternalIP.
	AddressTypes []corev1.NodeAddressType
	// KubeletPort, when not 0, is every kubelet's port instead of the one
	// its Node reports.
	KubeletPort int
	// ProxyURL, when set, reaches every kubelet through the apiserver's node
	// proxy at ProxyURL/api/v1/nodes/<name>/proxy instead of directly.
	ProxyURL string
	// Resync is the informers' resync period; default 0 (none).
	Resync time.Duration
	Logger *slog.Logger
}

// Informers follows Nodes, Pods, Namespaces and the owners that name
// workloads (ReplicaSet → Deployment, Job → CronJob) with client-go
// informers, so nodes and pods that come and go are seen without a restart.
type Informers struct {
	o       InformerOptions
	factory informers.SharedInformerFactory
	nodes   listerscorev1.NodeLister
	pods    listerscorev1.PodLister
	nss     listerscorev1.NamespaceLister
	rs      listersappsv1.ReplicaSetLister
	jobs    listersbatchv1.JobLister
	synced  []cache.InformerSynced

	// metas caches each node's pods' metadata by the informer's objects:
	// a pod that changes is a new object, so an entry is good while its
	// pod is the cache's current one, and its owning workload while no
	// ReplicaSet or Job came, went or changed its controller (ownersGen).
	mu        sync.Mutex
	metas     map[string]map[*corev1.Pod]cachedMeta // by node name
	ownersGen atomic.Uint64
}

// cachedMeta is a pod's metadata as Pods built it, and the ownersGen it
// resolved the workload at.
type cachedMeta struct {
	meta model.PodMeta
	gen  uint64
}

// podNodeIndex indexes pods by spec.nodeName.
const podNodeIndex = "node"

// NewInformers sets up the informers on cs; Run starts them.
func NewInformers(cs kubernetes.Interface, o InformerOptions) (*Informers, error) {
	if o.Scheme == "" {
		o.Scheme = "https"
	}
	if len(o.AddressTypes) == 0 {
		o.AddressTypes = AddressTypes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	f := informers.NewSharedInformerFactory(cs, o.Resync)
	d := &Informers{o: o, factory: f, metas: map[string]map[*corev1.Pod]cachedMeta{}}
	podInf := f.Core().V1().Pods()
	if err := podInf.Informer().AddIndexers(cache.Indexers{podNodeIndex: func(obj any) ([]string, error) {
		if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
			return []string{p.Spec.NodeName}, nil
		}
		return nil, nil
	}}); err != nil {
		return nil, err
	}
	// Only what kubemon reads is kept in memory.
	for _, inf := range []cache.SharedIndexInformer{podInf.Informer(), f.Core().V1().Nodes().Informer(), f.Core().V1().Namespaces().Informer(),
		f.Apps().V1().ReplicaSets().Informer(), f.Batch().V1().Jobs().Informer()} {
		if err := inf.SetTransform(trim); err != nil {
			return nil, err
		}
		d.synced = append(d.synced, inf.HasSynced)
	}
	// A workload resolved through a ReplicaSet or Job is resolved again
	// when one is added or deleted or its controller changes; their
	// frequent status updates leave it be.
	owners := cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { d.ownersGen.Add(1) },
		UpdateFunc: func(old, cur any) {
			o, ok1 := old.(metav1.Object)
			c, ok2 := cur.(metav1.Object)
			if !ok1 || !ok2 || !sameController(o, c) {
				d.ownersGen.Add(1)
			}
		},
		DeleteFunc: func(any) { d.ownersGen.Add(1) },
	}
	for _, inf := range []cache.SharedIndexInformer{f.Apps().V1().ReplicaSets().Informer(), f.Batch().V1().Jobs().Informer()} {
		if _, err := inf.AddEventHandler(owners); err != nil {
			return nil, err
		}
	}
	d.nodes = f.Core().V1().Nodes().Lister()
	d.pods = podInf.Lister()
	d.nss = f.Core().V1().Namespaces().Lister()
	d.rs = f.Apps().V1().ReplicaSets().Lister()
	d.jobs = f.Batch().V1().Jobs().Lister()
	return d, nil
}

// trim drops what kubemon never reads (managed fields, annotations) before
// an object is cached.
func trim(obj any) (any, error) {
	if a, ok := obj.(metav1.Object); ok {
		a.SetManagedFields(nil)
		a.SetAnnotations(nil)
	}
	return obj, nil
}

// Run starts the informers and waits until their caches are filled (or ctx
// ends). They keep running until ctx ends.
func (d *Informers) Run(ctx context.Context) error { return d.RunContext(ctx, ctx) }

// RunContext starts the informers for as long as run lasts and waits until
// their caches are filled, or wait ends.
func (d *Informers) RunContext(run, wait context.Context) error {
	d.factory.Start(run.Done())
	if !cache.WaitForCacheSync(wait.Done(), d.synced...) {
		return fmt.Errorf("caches not synced: %w", wait.Err())
	}
	return nil
}

// Targets lists the nodes to scrape, sorted by name. Nodes without a
// usable address are left out with a log line.
func (d *Informers) Targets() []model.Target {
	nodes, err := d.nodes.List(labels.Everything())
	if err != nil {
		d.o.Logger.Error("listing nodes", "err", err)
		return nil
	}
	out := make([]model.Target, 0, len(nodes))
	d.forgetNodes(nodes)
	for _, n := range nodes {
		t, err := d.target(n)
		if err != nil {
			d.o.Logger.Warn("node left out", "err", err)
			continue
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

func (d *Informers) target(n *corev1.Node) (model.Target, error) {
	if d.o.ProxyURL != "" {
		return model.Target{
			Node: n.Name,
			URL:  strings.TrimSuffix(d.o.ProxyURL, "/") + "/api/v1/nodes/" + n.Name + "/proxy",
			Meta: NodeMeta(n),
		}, nil
	}
	return Target(n, d.o.Scheme, d.o.AddressTypes, d.o.KubeletPort)
}

// Pods returns the metadata of the pods bound to node: requests, limits,
// restarts, labels and the owning workload resolved through the owners'
// own controller references.
func (d *Informers) Pods(node string) []model.PodMeta {
	objs, err := d.factory.Core().V1().Pods().Informer().GetIndexer().ByIndex(podNodeIndex, node)
	if err != nil {
		d.o.Logger.Error("listing pods", "node", node, "err", err)
		return nil
	}
	gen := d.ownersGen.Load()
	d.mu.Lock()
	last := d.metas[node]
	d.mu.Unlock()
	next := make(map[*corev1.Pod]cachedMeta, len(objs))
	out := make([]model.PodMeta, 0, len(objs))
	for _, o := range objs {
		p, ok := o.(*corev1.Pod)
		if !ok {
			continue
		}
		c, ok := last[p]
		if !ok {
			c.meta = podmeta.FromPod(p)
		}
		if !ok || c.gen != gen {
			c.meta.WorkloadKind, c.meta.Workload = d.workload(p)
			c.gen = gen
		}
		next[p] = c
		out = append(out, c.meta)
	}
	d.mu.Lock()
	d.metas[node] = next
	d.mu.Unlock()
	return out
}

// forgetNodes drops the cached pods of nodes no longer listed.
func (d *Informers) forgetNodes(nodes []*corev1.Node) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.metas) <= len(nodes) {
		return
	}
	listed := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		listed[n.Name] = true
	}
	for name := range d.metas {
		if !listed[name] {
			delete(d.metas, name)
		}
	}
}

// sameController reports whether two versions of an object name the same
// controller.
func sameController(a, b metav1.Object) bool {
	ra, rb := metav1.GetControllerOfNoCopy(a), metav1.GetControllerOfNoCopy(b)
	if ra == nil || rb == nil {
		return ra == rb
	}
	return ra.Kind == rb.Kind && ra.Name == rb.Name && ra.UID == rb.UID
}

// workload resolves the pod's top owner: a ReplicaSet's Deployment, a Job's
// CronJob, or the controller itself (StatefulSet, DaemonSet, ...); "" for a
// bare pod.
func (d *Informers) workload(p *corev1.Pod) (kind, name string) {
	ref := metav1.GetControllerOfNoCopy(p)
	if ref == nil {
		return "", ""
	}
	switch ref.Kind {
	case "ReplicaSet":
		if rs, err := d.rs.ReplicaSets(p.Namespace).Get(ref.Name); err == nil {
			if up := metav1.GetControllerOfNoCopy(rs); up != nil && up.Kind == "Deployment" {
				return up.Kind, up.Name
			}
		}
	case "Job":
		if j, err := d.jobs.Jobs(p.Namespace).Get(ref.Name); err == nil {
			if up := metav1.GetControllerOfNoCopy(j); up != nil && up.Kind == "CronJob" {
				return up.Kind, up.Name
			}
		}
	}
	return ref.Kind, ref.Name
}

// NodeLister lists the nodes known to the informers, with their labels.
func (d *Informers) NodeLister() listerscorev1.NodeLister { return d.nodes }

// PodLister lists the pods known to the informers, with their labels,
// phase and node.
func (d *Informers) PodLister() listerscorev1.PodLister { return d.pods }

// NamespaceLabels returns every namespace's labels, by name.
func (d *Informers) NamespaceLabels() map[string]map[string]string {
	nss, err := d.nss.List(labels.Everything())
	if err != nil {
		d.o.Logger.Error("listing namespaces", "err", err)
		return nil
	}
	out := make(map[string]map[string]string, len(nss))
	for _, ns := range nss {
		out[ns.Name] = ns.Labels
	}
	return out
}
