package metricsapi

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"
)

// serve runs the API server over the fixture without authentication and
// returns its address and a metrics.k8s.io client for it.
func serve(t *testing.T) (string, *metricsclient.Clientset) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	idx := func(objs ...any) cache.Indexer {
		i := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
		for _, o := range objs {
			if err := i.Add(o); err != nil {
				t.Fatal(err)
			}
		}
		return i
	}
	node := func(name string, l map[string]string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
	}
	pod := func(ns, name string, phase corev1.PodPhase, l map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: l},
			Spec: corev1.PodSpec{NodeName: "n1"}, Status: corev1.PodStatus{Phase: phase}}
	}
	s, err := New(Options{
		Listener: ln, Metrics: fixture(t), noAuth: true, Version: "v1.2.3",
		HTTPAPI: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s?%s", r.Method, r.URL.Path, r.URL.RawQuery)
		}),
		Nodes: listerscorev1.NewNodeLister(idx(node("n1", map[string]string{"role": "worker"}), node("n2", nil))),
		Pods: listerscorev1.NewPodLister(idx(
			pod("web", "a", corev1.PodRunning, map[string]string{"app": "web"}),
			pod("web", "b", corev1.PodRunning, map[string]string{"app": "web"}),
			pod("db", "c", corev1.PodRunning, nil),
			pod("web", "gone", corev1.PodSucceeded, map[string]string{"app": "web"}))),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	addr := ln.Addr().String()
	c, err := metricsclient.NewForConfig(&rest.Config{Host: "https://" + addr, TLSClientConfig: rest.TLSClientConfig{Insecure: true}, QPS: 1000, Burst: 1000})
	if err != nil {
		t.Fatal(err)
	}
	// Wait until it answers.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := get(t, addr, "/readyz"); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("not ready: %v", err)
		}
	}
	return addr, c
}

func get(t *testing.T, addr, path string, header ...string) ([]byte, error) {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	req, err := http.NewRequest(http.MethodGet, "https://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = &httpError{resp.StatusCode, string(b)}
	}
	return b, err
}

type httpError struct {
	code int
	body string
}

func (e *httpError) Error() string { return http.StatusText(e.code) + ": " + e.body }

func TestServerResources(t *testing.T) {
	_, c := serve(t)
	ctx := context.Background()
	m := c.MetricsV1beta1()

	n, err := m.NodeMetricses().Get(ctx, "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cpu := n.Usage[corev1.ResourceCPU]; cpu.MilliValue() != 1500 || n.Window.Duration != 10*time.Second ||
		!n.Timestamp.Time.Equal(t0.Add(10*time.Second)) || n.Labels["role"] != "worker" {
		t.Errorf("node n1: %+v", n)
	}
	if _, err := m.NodeMetricses().Get(ctx, "n2", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("n2 has no metrics: want 404, got %v", err)
	}
	if _, err := m.NodeMetricses().Get(ctx, "nope", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("unknown node: want 404, got %v", err)
	}

	list := func(resource, ns string, o metav1.ListOptions) (int, error) {
		if resource == "nodes" {
			l, err := m.NodeMetricses().List(ctx, o)
			if err != nil {
				return 0, err
			}
			return len(l.Items), nil
		}
		l, err := m.PodMetricses(ns).List(ctx, o)
		if err != nil {
			return 0, err
		}
		return len(l.Items), nil
	}
	for _, tc := range []struct {
		resource, ns   string
		labels, fields string
		want           int
		wantBadRequest bool
	}{
		{"nodes", "", "", "", 1, false},
		{"nodes", "", "role=worker", "", 1, false},
		{"nodes", "", "role=infra", "", 0, false},
		{"nodes", "", "", "metadata.name=n1", 1, false},
		{"nodes", "", "", "metadata.name!=n1", 0, false},
		{"nodes", "", "", "spec.unschedulable=true", 0, true},
		{"pods", "", "", "", 1, false},
		{"pods", "web", "", "", 1, false},
		{"pods", "db", "", "", 0, false},
		{"pods", "", "app=web", "", 1, false},
		{"pods", "", "app!=web", "", 0, false},
		{"pods", "", "", "spec.nodeName=n1", 1, false},
		{"pods", "", "", "spec.nodeName=n2", 0, false},
		{"pods", "web", "", "metadata.name=a", 1, false},
		{"pods", "", "", "metadata.namespace=db", 0, false},
		{"pods", "", "", "status.podIP=10.0.0.1", 0, true},
		{"pods", "", "app in ((", "", 0, true},
	} {
		n, err := list(tc.resource, tc.ns, metav1.ListOptions{LabelSelector: tc.labels, FieldSelector: tc.fields})
		switch {
		case tc.wantBadRequest && !apierrors.IsBadRequest(err):
			t.Errorf("%+v: want 400, got %d items, %v", tc, n, err)
		case !tc.wantBadRequest && (err != nil || n != tc.want):
			t.Errorf("%+v: got %d items, %v", tc, n, err)
		}
	}

	p, err := m.PodMetricses("web").Get(ctx, "a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Containers) != 2 || p.Containers[0].Name != "app" || p.Labels["app"] != "web" || p.Window.Duration != 10*time.Second {
		t.Errorf("web/a: %+v", p)
	}
	if cpu, mem := p.Containers[0].Usage[corev1.ResourceCPU], p.Containers[0].Usage[corev1.ResourceMemory]; cpu.MilliValue() != 500 || mem.Value() != 64<<20 {
		t.Errorf("web/a/app: cpu %s memory %s", cpu.String(), mem.String())
	}
	for _, name := range []string{"b", "gone", "nope"} {
		if _, err := m.PodMetricses("web").Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("web/%s: want 404, got %v", name, err)
		}
	}
}

func TestServerDocuments(t *testing.T) {
	addr, _ := serve(t)
	b, err := get(t, addr, "/apis/metrics.k8s.io/v1beta1")
	if err != nil {
		t.Fatal(err)
	}
	var rl metav1.APIResourceList
	if err := json.Unmarshal(b, &rl); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rl.APIResources {
		got[r.Name] = r.Kind + " " + strings.Join(r.Verbs, ",")
		if r.Name == "pods" && !r.Namespaced || r.Name == "nodes" && r.Namespaced {
			t.Errorf("%s namespaced=%v", r.Name, r.Namespaced)
		}
	}
	if got["nodes"] != "NodeMetrics get,list" || got["pods"] != "PodMetrics get,list" {
		t.Errorf("discovery: %v", got)
	}
	if b, err = get(t, addr, "/apis"); err != nil || !strings.Contains(string(b), `"metrics.k8s.io/v1beta1"`) {
		t.Errorf("/apis: %s %v", b, err)
	}
	// kubectl get podmetrics asks for a table: summed containers, as kubectl top prints them.
	b, err = get(t, addr, "/apis/metrics.k8s.io/v1beta1/namespaces/web/pods", "Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	var table metav1.Table
	if err != nil || json.Unmarshal(b, &table) != nil {
		t.Fatalf("table: %v %s", err, b)
	}
	if len(table.Rows) != 1 || fmt.Sprint(table.Rows[0].Cells) != "[a 550m 72Mi 10s]" {
		t.Errorf("table rows %v", table.Rows)
	}
	if b, err = get(t, addr, "/openapi/v2"); err != nil || !strings.Contains(string(b), "io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetrics") {
		t.Errorf("/openapi/v2 (%d bytes): %v", len(b), err)
	}
	if b, err = get(t, addr, "/openapi/v3/apis/metrics.k8s.io/v1beta1"); err != nil || !strings.Contains(string(b), "io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetrics") {
		t.Errorf("/openapi/v3 (%d bytes): %v", len(b), err)
	}
}

// TestServerHTTPAPI: kubemon's HTTP API under the kubemon.io/v1alpha1
// prefix, with the group's discovery documents in both forms.
func TestServerHTTPAPI(t *testing.T) {
	addr, _ := serve(t)
	b, err := get(t, addr, "/apis/kubemon.io/v1alpha1/api/v1/query?query=up")
	if err != nil || string(b) != "GET /api/v1/query?query=up" {
		t.Errorf("under the prefix: %q %v", b, err)
	}
	if b, err = get(t, addr, "/apis/kubemon.io/v1alpha1/"); err != nil || string(b) != "GET /?" {
		t.Errorf("the prefix's root: %q %v", b, err)
	}
	if _, err = get(t, addr, "/apis/kubemon.io/v1alpha1x/api/v1/query"); err == nil {
		t.Error("a look-alike prefix reached the HTTP API")
	}
	dc, err := discovery.NewDiscoveryClientForConfig(&rest.Config{Host: "https://" + addr, TLSClientConfig: rest.TLSClientConfig{Insecure: true}})
	if err != nil {
		t.Fatal(err)
	}
	// Aggregated discovery (what kubectl and the apiserver ask first)...
	groups, resources, err := dc.ServerGroupsAndResources()
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	found := 0
	for _, g := range groups {
		if g.Name == "kubemon.io" && g.PreferredVersion.GroupVersion == "kubemon.io/v1alpha1" {
			found++
		}
	}
	for _, rl := range resources {
		if rl.GroupVersion == "kubemon.io/v1alpha1" {
			found++
		}
	}
	if found != 2 {
		t.Errorf("kubemon.io/v1alpha1 in %d of 2 aggregated discovery answers", found)
	}
	// ...and the legacy per-group and per-version documents.
	var g metav1.APIGroup
	if b, err = get(t, addr, "/apis/kubemon.io"); err != nil || json.Unmarshal(b, &g) != nil || g.PreferredVersion.Version != "v1alpha1" {
		t.Errorf("/apis/kubemon.io: %s %v", b, err)
	}
	var rl metav1.APIResourceList
	if b, err = get(t, addr, "/apis/kubemon.io/v1alpha1"); err != nil || json.Unmarshal(b, &rl) != nil || rl.GroupVersion != "kubemon.io/v1alpha1" {
		t.Errorf("/apis/kubemon.io/v1alpha1: %s %v", b, err)
	}
}
