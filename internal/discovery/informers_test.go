package discovery

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubemon/kubemon/internal/model"
)

func owned(kind, name string) []metav1.OwnerReference {
	t := true
	return []metav1.OwnerReference{{Kind: kind, Name: name, Controller: &t}}
}

func node(name string, port int32, addrs ...corev1.NodeAddress) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Status: corev1.NodeStatus{
			Addresses:       addrs,
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: port}},
			Capacity:        corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi")},
			Allocatable:     corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3800m"), corev1.ResourceMemory: resource.MustParse("7Gi")},
		},
	}
}

func pod(ns, name, nodeName string, owners []metav1.OwnerReference, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, OwnerReferences: owners, Labels: labels,
			Annotations: map[string]string{"big": "dropped"}},
		Spec: corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{
			Name:      "app",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m")}},
		}}},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "app", RestartCount: 2}}},
	}
}

func TestInformers(t *testing.T) {
	cs := fake.NewClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"team": "web"}}},
		node("n1", 10250, corev1.NodeAddress{Type: corev1.NodeHostName, Address: "n1.local"}, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}),
		node("n2", 0, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "203.0.113.2"}),
		&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-5d8f", OwnerReferences: owned("Deployment", "web")}},
		&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "ops", Name: "backup-29001", OwnerReferences: owned("CronJob", "backup")}},
		pod("shop", "web-5d8f-abcde", "n1", owned("ReplicaSet", "web-5d8f"), map[string]string{"app": "web"}),
		pod("shop", "db-0", "n1", owned("StatefulSet", "db"), nil),
		pod("ops", "backup-29001-xyz", "n2", owned("Job", "backup-29001"), nil),
		pod("ops", "bare", "n2", nil, nil),
		pod("shop", "orphan-rs-pod", "n2", owned("ReplicaSet", "gone"), nil),
	)
	ctx := context.Background()
	d := startInformers(t, cs, InformerOptions{})

	ts := d.Targets()
	if len(ts) != 2 || ts[0].URL != "https://10.0.0.1:10250" || ts[1].URL != "https://203.0.113.2:10250" {
		t.Fatalf("targets %+v", ts)
	}
	if m := ts[0].Meta; m.CPUAllocatable != 3.8 || m.MemoryCapacity != 8<<30 || m.Labels["kubernetes.io/hostname"] != "n1" {
		t.Errorf("node meta %+v", m)
	}

	owners := map[string][2]string{}
	for _, n := range []string{"n1", "n2"} {
		for _, p := range d.Pods(n) {
			owners[p.Namespace+"/"+p.Name] = [2]string{p.WorkloadKind, p.Workload}
			if p.Node != n {
				t.Errorf("%s on %s listed for %s", p.Name, p.Node, n)
			}
			if p.Containers[0].CPURequest != 0.2 || p.Containers[0].Restarts != 2 {
				t.Errorf("%s containers %+v", p.Name, p.Containers)
			}
		}
	}
	want := map[string][2]string{
		"shop/web-5d8f-abcde":  {"Deployment", "web"},
		"shop/db-0":            {"StatefulSet", "db"},
		"ops/backup-29001-xyz": {"CronJob", "backup"},
		"ops/bare":             {"", ""},
		"shop/orphan-rs-pod":   {"ReplicaSet", "gone"},
	}
	for k, w := range want {
		if owners[k] != w {
			t.Errorf("%s owned by %v, want %v", k, owners[k], w)
		}
	}
	if l := d.NamespaceLabels(); len(l) != 1 || l["shop"]["team"] != "web" {
		t.Errorf("namespace labels %v", l)
	}
	if p, err := d.pods.Pods("ops").Get("bare"); err != nil || p.Annotations != nil {
		t.Errorf("annotations are not trimmed from the cache: %v %v", p, err)
	}

	// Nodes and pods that come and go are followed.
	if err := cs.CoreV1().Nodes().Delete(ctx, "n2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Nodes().Create(ctx, node("n3", 10255, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.0.3"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Pods("shop").Create(ctx, pod("shop", "new", "n3", nil, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the nodes and pods that came and went", func() bool {
		ts := d.Targets()
		return len(ts) == 2 && ts[1].Node == "n3" && ts[1].URL == "https://10.0.0.3:10255" && len(d.Pods("n3")) == 1
	})
}

func TestInformersProxy(t *testing.T) {
	cs := fake.NewClientset(node("n1", 10250))
	d := startInformers(t, cs, InformerOptions{ProxyURL: "https://api.example:6443/"})
	if ts := d.Targets(); len(ts) != 1 || ts[0].URL != "https://api.example:6443/api/v1/nodes/n1/proxy" {
		t.Fatalf("targets %+v: a node without addresses is still reachable through the proxy", ts)
	}
}

// TestInformersPodCache: a node's pods are built once and then served
// from the cache until the pod changes, and a pod's workload is resolved
// again when a ReplicaSet comes or changes its controller, not when its
// status changes; a node's pods are forgotten with it.
func TestInformersPodCache(t *testing.T) {
	cs := fake.NewClientset(
		node("n1", 10250, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}),
		node("n2", 10250, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.0.2"}),
		&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-5d8f", OwnerReferences: owned("Deployment", "web")}},
		pod("shop", "web-5d8f-abcde", "n1", owned("ReplicaSet", "web-5d8f"), nil),
		pod("shop", "api-77-xyz", "n1", owned("ReplicaSet", "api-77"), nil),
		pod("shop", "db-0", "n2", owned("StatefulSet", "db"), nil),
	)
	ctx := context.Background()
	d := startInformers(t, cs, InformerOptions{})
	byName := func(node string) map[string]model.PodMeta {
		out := map[string]model.PodMeta{}
		for _, p := range d.Pods(node) {
			out[p.Name] = p
		}
		return out
	}
	first, again := byName("n1"), byName("n1")
	if len(first) != 2 || len(again) != 2 {
		t.Fatalf("pods on n1: %d then %d, want 2", len(first), len(again))
	}
	for name, p := range first {
		if &again[name].Containers[0] != &p.Containers[0] {
			t.Errorf("%s built again, not served from the cache", name)
		}
	}
	if w := first["api-77-xyz"]; w.WorkloadKind != "ReplicaSet" || w.Workload != "api-77" {
		t.Errorf("api pod's workload %s/%s before its ReplicaSet exists", w.WorkloadKind, w.Workload)
	}

	// A status update of a ReplicaSet leaves the workloads be.
	gen := d.ownersGen.Load()
	rs, err := cs.AppsV1().ReplicaSets("shop").Get(ctx, "web-5d8f", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rs.Status.Replicas = 3
	if _, err := cs.AppsV1().ReplicaSets("shop").Update(ctx, rs, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the ReplicaSet's status update", func() bool {
		got, err := d.rs.ReplicaSets("shop").Get("web-5d8f")
		return err == nil && got.Status.Replicas == 3
	})
	if g := d.ownersGen.Load(); g != gen {
		t.Errorf("a status update moved the owners' generation from %d to %d", gen, g)
	}

	// A pod that changes, a ReplicaSet that comes and one that changes its
	// controller are seen.
	p, err := cs.CoreV1().Pods("shop").Get(ctx, "web-5d8f-abcde", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status.ContainerStatuses[0].RestartCount = 5
	if _, err := cs.CoreV1().Pods("shop").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.AppsV1().ReplicaSets("shop").Create(ctx, &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "api-77", OwnerReferences: owned("Deployment", "api")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rs.OwnerReferences = owned("Deployment", "web-v2")
	if _, err := cs.AppsV1().ReplicaSets("shop").Update(ctx, rs, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the changes in Pods", func() bool {
		m := byName("n1")
		web, api := m["web-5d8f-abcde"], m["api-77-xyz"]
		return len(web.Containers) == 1 && web.Containers[0].Restarts == 5 && web.Workload == "web-v2" &&
			api.WorkloadKind == "Deployment" && api.Workload == "api"
	})

	// A node's pods are forgotten with the node.
	byName("n2")
	if err := cs.CoreV1().Nodes().Delete(ctx, "n2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "n2's cached pods forgotten", func() bool {
		d.Targets()
		d.mu.Lock()
		defer d.mu.Unlock()
		_, ok := d.metas["n2"]
		return !ok && len(d.metas) == 1
	})
}

// eventually waits up to 10 s for f.
func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startInformers runs informers on cs until the test ends, their caches
// filled.
func startInformers(t *testing.T, cs *fake.Clientset, o InformerOptions) *Informers {
	t.Helper()
	d, err := NewInformers(cs, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := d.Run(ctx); err != nil {
		t.Fatal(err)
	}
	return d
}
