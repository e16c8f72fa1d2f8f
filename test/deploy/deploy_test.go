// Package deploy checks kubemon's manifests: the Kustomize base in deploy/
// (and its optional components) and the Helm chart in deploy/helm/kubemon
// render, pass helm lint, follow the sizing rules of docs/performance.md,
// and agree with each other on everything that matters to a running
// kubemon. It needs kubectl (with its built-in kustomize) and helm on PATH:
//
//	PATH=$(hack/helm.sh):$PATH go test ./test/deploy
package deploy

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
)

// The memory rule of docs/performance.md, as the manifests' comments and
// the chart's values.yaml state it: request = 128Mi + containers × 56Ki,
// rounded up to Mi; limit = 2 × request.
func memoryRequestMi(nodes, podsPerNode, containersPerPod int64) int64 {
	ki := 128*1024 + nodes*podsPerNode*containersPerPod*56
	return (ki + 1023) / 1024
}

// The objects every rendering of the defaults holds, as kind/namespace/name.
var baseObjects = []string{
	"APIService//v1alpha1.kubemon.io",
	"APIService//v1beta1.metrics.k8s.io",
	"ClusterRole//kubemon",
	"ClusterRole//kubemon-viewer",
	"ClusterRole//system:aggregated-metrics-reader",
	"ClusterRoleBinding//kubemon",
	"ClusterRoleBinding//kubemon:system:auth-delegator",
	"ConfigMap/kube-system/kubemon-rules",
	"Deployment/kube-system/kubemon",
	"NetworkPolicy/kube-system/kubemon",
	"PodDisruptionBudget/kube-system/kubemon",
	"RoleBinding/kube-system/kubemon-auth-reader",
	"Service/kube-system/kubemon",
	"ServiceAccount/kube-system/kubemon",
}

// With persistence and the heapster Service.
var optionalObjects = []string{
	"PersistentVolumeClaim/kube-system/kubemon-data",
	"Service/kube-system/heapster",
}

func TestMemoryFormula(t *testing.T) {
	// The figures written in deploy/kubemon.yaml and values.yaml.
	for _, c := range []struct{ nodes, want int64 }{{100, 457}, {1000, 3410}} {
		if got := memoryRequestMi(c.nodes, 30, 2); got != c.want {
			t.Errorf("%d nodes × 30 × 2: request %dMi, documented %dMi", c.nodes, got, c.want)
		}
	}
	// The request covers the measured peaks (VmHWM, docs/performance.md):
	// 3.0 GB at 60,000 containers, 16.6 GB at 300,000.
	for _, c := range []struct {
		nodes int64
		peak  float64
	}{{1000, 3.0e9}, {5000, 16.6e9}} {
		if got := float64(memoryRequestMi(c.nodes, 30, 2)) * (1 << 20); got < c.peak {
			t.Errorf("%d nodes: request %.2f GB below the measured peak %.1f GB", c.nodes, got/1e9, c.peak/1e9)
		}
	}
}

func TestKustomizeBase(t *testing.T) {
	objs := kustomize(t, filepath.Join(root(t), "deploy"))
	expectObjects(t, "kustomize", objs, baseObjects)

	for _, o := range objs {
		if o.Namespace != "" && o.Namespace != "kube-system" {
			t.Errorf("%s: namespace %q, want kube-system", o.Key(), o.Namespace)
		}
	}

	d := deployment(t, objs, "kubemon")
	c := d.Spec.Template.Spec.Containers[0]
	if c.Image != "localhost/kubemon:dev" {
		t.Errorf("image %q, want localhost/kubemon:dev", c.Image)
	}
	args := flags(c.Args)
	for flag, want := range map[string]string{
		"--kubernetes": "", "--listen": ":8080", "--auth": "kubernetes", "--data-dir": "/data",
		"--interval": "15s", "--retention": "168h", "--retention-size": "8GiB",
		"--log-format": "json", "--metrics-api-listen": ":4443",
		"--rules": rulesGlob,
	} {
		if got, ok := args[flag]; !ok || got != want {
			t.Errorf("arg %s=%q (present %v), want %q", flag, got, ok, want)
		}
	}
	if _, ok := args["--enable-pprof"]; ok {
		t.Error("--enable-pprof is set")
	}
	// kubemon's defaults for the rest: the default rule pack, events on,
	// alerts sent nowhere (docs/alerts.md says how to add them).
	for _, f := range []string{"--default-rules", "--rules.evaluation-interval", "--alertmanager-url", "--alert-webhook-url",
		"--alert-external-label", "--alert-external-url", "--events.enabled", "--events.retention", "--events.max-size"} {
		if v, ok := args[f]; ok {
			t.Errorf("arg %s=%q set; the base keeps kubemon's default", f, v)
		}
	}
	checkRulesMount(t, "kustomize", d, "kubemon-rules")
	checkRuleFiles(t, "kustomize", find(t, objs, "ConfigMap", "kubemon-rules"), []string{"example.yaml"})
	checkRetentionSize(t, "kustomize", args["--retention-size"], d.Spec.Template.Spec.Volumes[0].EmptyDir.SizeLimit)
	checkResources(t, "kustomize", c.Resources, memoryRequestMi(100, 30, 2))
	checkStrategy(t, "kustomize", d, 1, 0)
	if got := d.Spec.Template.Spec.NodeSelector; !reflect.DeepEqual(got, map[string]string{"kubernetes.io/os": "linux"}) {
		t.Errorf("nodeSelector %v", got)
	}
	if p := c.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" {
		t.Errorf("liveness probe %+v, want /healthz", p)
	}
	if p := c.StartupProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" {
		t.Errorf("startup probe %+v, want /healthz", p)
	}
	if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe %+v, want /readyz", p)
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("container securityContext %+v", sc)
	}
	if psc := d.Spec.Template.Spec.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("pod securityContext %+v", psc)
	}

	var np networkingv1.NetworkPolicy
	decode(t, find(t, objs, "NetworkPolicy", "kubemon"), &np)
	want := []networkingv1.NetworkPolicyIngressRule{
		{Ports: []networkingv1.NetworkPolicyPort{port(4443)}},
		{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}},
			Ports: []networkingv1.NetworkPolicyPort{port(8080)}},
	}
	if !reflect.DeepEqual(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) ||
		!reflect.DeepEqual(np.Spec.Ingress, want) {
		t.Errorf("NetworkPolicy spec %s, want ingress %s", js(np.Spec), js(want))
	}

	var pdb policyv1.PodDisruptionBudget
	decode(t, find(t, objs, "PodDisruptionBudget", "kubemon"), &pdb)
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PodDisruptionBudget maxUnavailable %v, want 1", pdb.Spec.MaxUnavailable)
	}

	var viewer rbacv1.ClusterRole
	decode(t, find(t, objs, "ClusterRole", "kubemon-viewer"), &viewer)
	wantRules := []rbacv1.PolicyRule{
		{APIGroups: []string{"kubemon.io"}, Resources: []string{"*"}, Verbs: []string{"get", "list", "create"}},
	}
	if !reflect.DeepEqual(viewer.Rules, wantRules) {
		t.Errorf("kubemon-viewer rules %s, want %s", js(viewer.Rules), js(wantRules))
	}

	// kubemon watches the cluster's events (internal/events): list and
	// watch, and nothing more, on core/v1 events.
	var role rbacv1.ClusterRole
	decode(t, find(t, objs, "ClusterRole", "kubemon"), &role)
	eventRules := 0
	for _, r := range role.Rules {
		if slices.Contains(r.Resources, "events") {
			eventRules++
			if !reflect.DeepEqual(r, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"list", "watch"}}) {
				t.Errorf("kubemon's rule on events %s, want list and watch on core/v1 events", js(r))
			}
		}
	}
	if eventRules != 1 {
		t.Errorf("kubemon's ClusterRole has %d rules on events, want 1: %s", eventRules, js(role.Rules))
	}

	for name, group := range map[string]string{"v1beta1.metrics.k8s.io": "metrics.k8s.io", "v1alpha1.kubemon.io": "kubemon.io"} {
		spec := find(t, objs, "APIService", name).Raw["spec"].(map[string]any)
		svc := spec["service"].(map[string]any)
		if spec["group"] != group || spec["insecureSkipTLSVerify"] != true ||
			svc["name"] != "kubemon" || svc["namespace"] != "kube-system" || svc["port"] != float64(443) {
			t.Errorf("APIService %s: %s", name, js(spec))
		}
	}
}

func TestKustomizeOptional(t *testing.T) {
	repo := root(t)
	dir := t.TempDir()
	rel := func(p string) string {
		r, err := filepath.Rel(dir, filepath.Join(repo, p))
		if err != nil {
			t.Fatal(err)
		}
		return filepath.ToSlash(r)
	}
	// A user's overlay, as deploy/kustomization.yaml describes it
	// (kustomize wants relative paths to bases and components).
	overlay := fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [%s]
components: [%s, %s]
images:
  - name: localhost/kubemon
    newName: registry.example.com/kubemon
    newTag: v1.2.3
`, rel("deploy"), rel("deploy/optional/persistence"), rel("deploy/optional/heapster"))
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(overlay), 0o644); err != nil {
		t.Fatal(err)
	}
	objs := kustomize(t, dir)
	expectObjects(t, "kustomize overlay", objs, append(append([]string{}, baseObjects...), optionalObjects...))

	d := deployment(t, objs, "kubemon")
	if got := d.Spec.Template.Spec.Containers[0].Image; got != "registry.example.com/kubemon:v1.2.3" {
		t.Errorf("image %q: the base's images: entry does not take the override", got)
	}
	checkStrategy(t, "persistence", d, 0, 1)
	vols := d.Spec.Template.Spec.Volumes
	if len(vols) != 2 || vols[0].Name != "data" || vols[0].EmptyDir != nil ||
		vols[0].PersistentVolumeClaim == nil || vols[0].PersistentVolumeClaim.ClaimName != "kubemon-data" {
		t.Errorf("volumes %s, want data from claim kubemon-data, and the rules", js(vols))
	}
	checkRulesMount(t, "persistence", d, "kubemon-rules")
	var pvc corev1.PersistentVolumeClaim
	decode(t, find(t, objs, "PersistentVolumeClaim", "kubemon-data"), &pvc)
	size := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	if size.String() != "10Gi" || !reflect.DeepEqual(pvc.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
		t.Errorf("PVC %s", js(pvc.Spec))
	}
	checkRetentionSize(t, "persistence", flags(d.Spec.Template.Spec.Containers[0].Args)["--retention-size"], &size)

	var hs corev1.Service
	decode(t, find(t, objs, "Service", "heapster"), &hs)
	if len(hs.Spec.Ports) != 1 || hs.Spec.Ports[0].Port != 80 || hs.Spec.Ports[0].TargetPort.String() != "http" ||
		hs.Spec.Selector["app.kubernetes.io/name"] != "kubemon" {
		t.Errorf("heapster Service %s", js(hs.Spec))
	}
}

func TestHelmLint(t *testing.T) {
	chart := filepath.Join(root(t), "deploy/helm/kubemon")
	for _, set := range []string{"", "persistence.enabled=true,heapsterService.enabled=true,tls.generate=true",
		"rules.existingConfigMap=mine,rules.defaultPack=false,alerting.alertmanagers[0]=http://am:9093,alerting.externalLabels.cluster=prod,events.enabled=false,events.maxSize=64MiB"} {
		for _, strict := range []bool{false, true} {
			args := []string{"lint", chart}
			if strict {
				args = append(args, "--strict")
			}
			if set != "" {
				args = append(args, "--set", set)
			}
			out := run(t, "helm", args...)
			if !strings.Contains(string(out), "0 chart(s) failed") {
				t.Errorf("helm %s:\n%s", strings.Join(args, " "), out)
			}
		}
	}
}

// TestHelmMatchesKustomize renders the chart with its defaults as release
// "kubemon" in kube-system, and with persistence and the heapster Service,
// and compares them with the kustomize base and the overlay.
func TestHelmMatchesKustomize(t *testing.T) {
	repo := root(t)
	k := kustomize(t, filepath.Join(repo, "deploy"))
	h := helmTemplate(t)
	expectObjects(t, "kustomize", k, baseObjects)
	expectObjects(t, "helm", h, baseObjects)
	compare(t, k, h)

	dir := t.TempDir()
	base, _ := filepath.Rel(dir, filepath.Join(repo, "deploy"))
	overlay := fmt.Sprintf("resources: [%s]\ncomponents: [%s/optional/persistence, %s/optional/heapster]\n", base, base, base)
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(overlay), 0o644); err != nil {
		t.Fatal(err)
	}
	k = kustomize(t, dir)
	h = helmTemplate(t, "persistence.enabled=true,heapsterService.enabled=true")
	all := append(append([]string{}, baseObjects...), optionalObjects...)
	expectObjects(t, "kustomize overlay", k, all)
	expectObjects(t, "helm persistence", h, all)
	compare(t, k, h)

	// Two replicas: optional/ha and replicas=2 agree, but for the chart's
	// instance label in the replicas' selector (the peers and the
	// anti-affinity), which the base does not have.
	dir = t.TempDir()
	base, _ = filepath.Rel(dir, filepath.Join(repo, "deploy"))
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(fmt.Sprintf("resources: [%s]\ncomponents: [%s/optional/ha]\n", base, base)), 0o644); err != nil {
		t.Fatal(err)
	}
	k = kustomize(t, dir)
	out := run(t, "helm", "template", "kubemon", filepath.Join(repo, "deploy/helm/kubemon"), "--namespace", "kube-system", "--set", "replicas=2")
	for _, instance := range []string{ // in the peer selectors, the anti-affinity and the NetworkPolicy's peers
		",app.kubernetes.io/instance=kubemon", "\n                    app.kubernetes.io/instance: kubemon", "\n              app.kubernetes.io/instance: kubemon",
	} {
		out = bytes.ReplaceAll(out, []byte(instance), nil)
	}
	h = parse(t, out)
	var d appsv1.Deployment
	decode(t, find(t, k, "Deployment", "kubemon"), &d)
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 || d.Spec.Template.Spec.Affinity == nil || d.Spec.Template.Spec.Affinity.PodAntiAffinity == nil ||
		flags(d.Spec.Template.Spec.Containers[0].Args)["--replica.peer-selector"] != "app.kubernetes.io/name=kubemon" ||
		len(d.Spec.Template.Spec.Containers) != 2 || flags(d.Spec.Template.Spec.Containers[1].Args)["--peer-selector"] != "app.kubernetes.io/name=kubemon" {
		t.Errorf("optional/ha: replicas %v, affinity %v, args %v; want 2, anti-affinity, --replica.peer-selector", d.Spec.Replicas, d.Spec.Template.Spec.Affinity, d.Spec.Template.Spec.Containers[0].Args)
	}
	compare(t, k, h)
	if out, err := exec.Command("helm", "template", "kubemon", filepath.Join(repo, "deploy/helm/kubemon"), "--set", "replicas=2,persistence.enabled=true").CombinedOutput(); err == nil || !bytes.Contains(out, []byte("one ReadWriteOnce claim")) {
		t.Errorf("helm template replicas=2 with persistence: %v, want the refusal\n%s", err, out)
	}

	// Shards: optional/shards and shards.enabled agree (the component's
	// default URLs given to the chart).
	dir = t.TempDir()
	base, _ = filepath.Rel(dir, filepath.Join(repo, "deploy"))
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(fmt.Sprintf("resources: [%s]\ncomponents: [%s/optional/shards]\n", base, base)), 0o644); err != nil {
		t.Fatal(err)
	}
	k = kustomize(t, dir)
	out = run(t, "helm", "template", "kubemon", filepath.Join(repo, "deploy/helm/kubemon"), "--namespace", "kube-system", "--set",
		"shards.enabled=true,shards.queryURL=http://thanos-query.monitoring.svc:9090,shards.remoteWriteURL=http://thanos-receive.monitoring.svc:19291/api/v1/receive")
	h = parse(t, bytes.ReplaceAll(out, []byte("\n                    app.kubernetes.io/instance: kubemon"), nil))
	shardObjects := append(append([]string{}, baseObjects...), "ConfigMap/kube-system/kubemon-shards", "Role/kube-system/kubemon-shards", "RoleBinding/kube-system/kubemon-shards")
	expectObjects(t, "kustomize shards", k, shardObjects)
	expectObjects(t, "helm shards", h, shardObjects)
	decode(t, find(t, k, "Deployment", "kubemon"), &d)
	if a := flags(d.Spec.Template.Spec.Containers[0].Args); d.Spec.Replicas == nil || *d.Spec.Replicas != 3 || a["--query-url"] != "$(KUBEMON_QUERY_URL)" ||
		a["--sink"] != "remotewrite:$(KUBEMON_REMOTE_WRITE_URL)?label=kubemon_replica:$(POD_NAME)" {
		t.Errorf("optional/shards: replicas %v, args %v; want 3, --shard, --query-url and the remote-write sink", d.Spec.Replicas, d.Spec.Template.Spec.Containers[0].Args)
	}
	if _, ok := flags(d.Spec.Template.Spec.Containers[0].Args)["--shard"]; !ok {
		t.Errorf("optional/shards: no --shard in %v", d.Spec.Template.Spec.Containers[0].Args)
	}
	compare(t, k, h)
	for _, set := range []string{"shards.enabled=true,shards.queryURL=http://q", "shards.enabled=true,replicas=2,shards.queryURL=http://q,shards.remoteWriteURL=http://r"} {
		if out, err := exec.Command("helm", "template", "kubemon", filepath.Join(repo, "deploy/helm/kubemon"), "--set", set).CombinedOutput(); err == nil {
			t.Errorf("helm template %s: rendered, want a refusal\n%.300s", set, out)
		}
	}
}

// compare checks that two renderings agree on kubemon's behaviour, not on
// labels, comments or field order.
func compare(t *testing.T, k, h []object) {
	t.Helper()
	compared := 0
	for _, ko := range k {
		ho := find(t, h, ko.Kind, ko.Name)
		switch ko.Kind {
		case "ClusterRole", "Role":
			var a, b rbacv1.ClusterRole
			decode(t, ko, &a)
			decode(t, ho, &b)
			same(t, ko.Key()+" rules", a.Rules, b.Rules)
		case "ClusterRoleBinding", "RoleBinding":
			var a, b rbacv1.RoleBinding
			decode(t, ko, &a)
			decode(t, ho, &b)
			same(t, ko.Key()+" roleRef", a.RoleRef, b.RoleRef)
			same(t, ko.Key()+" subjects", a.Subjects, b.Subjects)
		case "Service":
			var a, b corev1.Service
			decode(t, ko, &a)
			decode(t, ho, &b)
			same(t, ko.Key()+" ports", a.Spec.Ports, b.Spec.Ports)
			same(t, ko.Key()+" type", a.Spec.Type, b.Spec.Type)
		case "Deployment":
			var a, b appsv1.Deployment
			decode(t, ko, &a)
			decode(t, ho, &b)
			compareDeployments(t, &a, &b)
		case "PodDisruptionBudget":
			var a, b policyv1.PodDisruptionBudget
			decode(t, ko, &a)
			decode(t, ho, &b)
			same(t, ko.Key()+" maxUnavailable", a.Spec.MaxUnavailable, b.Spec.MaxUnavailable)
			same(t, ko.Key()+" minAvailable", a.Spec.MinAvailable, b.Spec.MinAvailable)
		case "NetworkPolicy":
			var a, b networkingv1.NetworkPolicy
			decode(t, ko, &a)
			decode(t, ho, &b)
			same(t, ko.Key()+" policyTypes", a.Spec.PolicyTypes, b.Spec.PolicyTypes)
			same(t, ko.Key()+" ingress", a.Spec.Ingress, b.Spec.Ingress)
			same(t, ko.Key()+" egress", a.Spec.Egress, b.Spec.Egress)
		case "PersistentVolumeClaim":
			var a, b corev1.PersistentVolumeClaim
			decode(t, ko, &a)
			decode(t, ho, &b)
			same(t, ko.Key()+" spec", a.Spec, b.Spec)
		case "APIService", "ServiceAccount":
			same(t, ko.Key()+" spec", ko.Raw["spec"], ho.Raw["spec"])
		case "ConfigMap":
			var a, b corev1.ConfigMap
			decode(t, ko, &a)
			decode(t, ho, &b)
			same(t, ko.Key()+" data", a.Data, b.Data)
			same(t, ko.Key()+" binaryData", a.BinaryData, b.BinaryData)
		default:
			t.Errorf("%s: no comparison for this kind; add one", ko.Key())
			continue
		}
		compared++
	}
	if compared != len(h) {
		t.Errorf("compared %d objects of %d", compared, len(h))
	}
}

func compareDeployments(t *testing.T, a, b *appsv1.Deployment) {
	t.Helper()
	key := "Deployment " + a.Name
	same(t, key+" replicas", a.Spec.Replicas, b.Spec.Replicas)
	same(t, key+" strategy", a.Spec.Strategy, b.Spec.Strategy)
	ap, bp := a.Spec.Template.Spec, b.Spec.Template.Spec
	same(t, key+" serviceAccountName", ap.ServiceAccountName, bp.ServiceAccountName)
	same(t, key+" priorityClassName", ap.PriorityClassName, bp.PriorityClassName)
	same(t, key+" nodeSelector", ap.NodeSelector, bp.NodeSelector)
	same(t, key+" tolerations", ap.Tolerations, bp.Tolerations)
	same(t, key+" affinity", ap.Affinity, bp.Affinity)
	same(t, key+" pod securityContext", ap.SecurityContext, bp.SecurityContext)
	same(t, key+" volumes", ap.Volumes, bp.Volumes)
	if len(ap.Containers) == 0 || len(ap.Containers) != len(bp.Containers) {
		t.Fatalf("%s: %d and %d containers", key, len(ap.Containers), len(bp.Containers))
	}
	for i := range ap.Containers {
		compareContainers(t, fmt.Sprintf("%s container %d", key, i), ap.Containers[i], bp.Containers[i])
	}
}

func compareContainers(t *testing.T, key string, ac, bc corev1.Container) {
	t.Helper()
	same(t, key+" container name", ac.Name, bc.Name)
	same(t, key+" image", ac.Image, bc.Image)
	same(t, key+" imagePullPolicy", ac.ImagePullPolicy, bc.ImagePullPolicy)
	same(t, key+" flags", sortedKeys(flags(ac.Args)), sortedKeys(flags(bc.Args)))
	same(t, key+" args", ac.Args, bc.Args)
	same(t, key+" ports", ac.Ports, bc.Ports)
	same(t, key+" livenessProbe", ac.LivenessProbe, bc.LivenessProbe)
	same(t, key+" readinessProbe", ac.ReadinessProbe, bc.ReadinessProbe)
	same(t, key+" startupProbe", ac.StartupProbe, bc.StartupProbe)
	same(t, key+" resources", ac.Resources, bc.Resources)
	same(t, key+" securityContext", ac.SecurityContext, bc.SecurityContext)
	same(t, key+" volumeMounts", ac.VolumeMounts, bc.VolumeMounts)
	same(t, key+" env", ac.Env, bc.Env)
}

func TestHelmSizing(t *testing.T) {
	for _, c := range []struct {
		set           string
		retentionSize string
		requestMi     int64
	}{
		{"", "8GiB", memoryRequestMi(100, 30, 2)},
		{"sizing.nodes=1000", "8GiB", memoryRequestMi(1000, 30, 2)},
		{"sizing.nodes=5000,sizing.podsPerNode=20,sizing.containersPerPod=3", "8GiB", memoryRequestMi(5000, 20, 3)},
		{"persistence.enabled=true,persistence.size=15Gi", "12GiB", memoryRequestMi(100, 30, 2)},
		{"persistence.enabled=true,persistence.size=100Gi,persistence.existingClaim=mine", "80GiB", memoryRequestMi(100, 30, 2)},
		{"emptyDir.sizeLimit=1Gi", "819MiB", memoryRequestMi(100, 30, 2)},
		{"retentionSize=3GiB", "3GiB", memoryRequestMi(100, 30, 2)},
	} {
		d := deployment(t, helmTemplate(t, c.set), "kubemon")
		ct := d.Spec.Template.Spec.Containers[0]
		if got := flags(ct.Args)["--retention-size"]; got != c.retentionSize {
			t.Errorf("--set %q: --retention-size=%s, want %s", c.set, got, c.retentionSize)
		}
		checkResources(t, "--set "+c.set, ct.Resources, c.requestMi)
		if strings.Contains(c.set, "existingClaim") {
			if v := d.Spec.Template.Spec.Volumes[0].PersistentVolumeClaim; v == nil || v.ClaimName != "mine" {
				t.Errorf("existingClaim: volume %s", js(d.Spec.Template.Spec.Volumes[0]))
			}
		}
	}

	// Explicit resources win over sizing.
	d := deployment(t, helmTemplate(t, "resources.requests.memory=5Gi,resources.limits.memory=6Gi,sizing.nodes=1000"), "kubemon")
	r := d.Spec.Template.Spec.Containers[0].Resources
	if r.Requests.Memory().String() != "5Gi" || r.Limits.Memory().String() != "6Gi" || r.Requests.Cpu().Sign() != 0 {
		t.Errorf("explicit resources not used as given: %s", js(r))
	}

	// A size it cannot read is an error, not a guess.
	out, err := exec.Command("helm", "template", "kubemon", filepath.Join(root(t), "deploy/helm/kubemon"),
		"--set", "emptyDir.sizeLimit=10GB").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "10GB") {
		t.Errorf("emptyDir.sizeLimit=10GB rendered (err %v):\n%.300s", err, out)
	}
}

func TestHelmTLS(t *testing.T) {
	objs := helmTemplate(t, "tls.generate=true")
	expectObjects(t, "helm tls", objs, append(append([]string{}, baseObjects...), "Secret/kube-system/kubemon-tls"))

	sec := find(t, objs, "Secret", "kubemon-tls")
	var s corev1.Secret
	decode(t, sec, &s)
	if s.Type != corev1.SecretTypeTLS {
		t.Errorf("Secret type %q", s.Type)
	}
	ca := certificate(t, s.Data["ca.crt"])
	crt := certificate(t, s.Data["tls.crt"])
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := crt.Verify(x509.VerifyOptions{DNSName: "kubemon.kube-system.svc", Roots: roots,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("serving certificate for kubemon.kube-system.svc: %v", err)
	}
	for _, name := range []string{"v1beta1.metrics.k8s.io", "v1alpha1.kubemon.io"} {
		spec := find(t, objs, "APIService", name).Raw["spec"].(map[string]any)
		if _, ok := spec["insecureSkipTLSVerify"]; ok {
			t.Errorf("APIService %s still skips TLS verification", name)
		}
		b, _ := spec["caBundle"].(string)
		if pemCA, err := base64.StdEncoding.DecodeString(b); err != nil || !bytes.Equal(pemCA, s.Data["ca.crt"]) {
			t.Errorf("APIService %s: caBundle is not the Secret's CA (%v)", name, err)
		}
	}
	d := deployment(t, objs, "kubemon")
	args := flags(d.Spec.Template.Spec.Containers[0].Args)
	if args["--tls-cert-file"] != "/tls/tls.crt" || args["--tls-private-key-file"] != "/tls/tls.key" {
		t.Errorf("args %v: want the mounted certificate", d.Spec.Template.Spec.Containers[0].Args)
	}
	mounted := false
	for _, v := range d.Spec.Template.Spec.Volumes {
		mounted = mounted || (v.Secret != nil && v.Secret.SecretName == "kubemon-tls")
	}
	if !mounted {
		t.Errorf("Secret kubemon-tls is not a volume: %s", js(d.Spec.Template.Spec.Volumes))
	}
}

func TestHelmNamespace(t *testing.T) {
	objs := helmTemplateIn(t, "kubemon", "monitoring", "priorityClassName=")
	if len(objs) != len(baseObjects) {
		t.Fatalf("%d objects, want %d", len(objs), len(baseObjects))
	}
	for _, o := range objs {
		want := "monitoring"
		if o.Kind == "RoleBinding" { // extension-apiserver-authentication-reader lives there
			want = "kube-system"
		}
		if o.Namespace != "" && o.Namespace != want {
			t.Errorf("%s: namespace %q, want %q", o.Key(), o.Namespace, want)
		}
	}
	for _, name := range []string{"v1beta1.metrics.k8s.io", "v1alpha1.kubemon.io"} {
		svc := find(t, objs, "APIService", name).Raw["spec"].(map[string]any)["service"].(map[string]any)
		if svc["namespace"] != "monitoring" {
			t.Errorf("APIService %s: service %v", name, svc)
		}
	}
	if pc := deployment(t, objs, "kubemon").Spec.Template.Spec.PriorityClassName; pc != "" {
		t.Errorf("priorityClassName %q, want none", pc)
	}
}

// --- helpers ---

type object struct {
	Kind, Namespace, Name string
	Raw                   map[string]any
}

func (o object) Key() string { return o.Kind + "/" + o.Namespace + "/" + o.Name }

func port(n int) networkingv1.NetworkPolicyPort {
	var p networkingv1.NetworkPolicyPort
	if err := json.Unmarshal([]byte(fmt.Sprintf(`{"protocol":"TCP","port":%d}`, n)), &p); err != nil {
		panic(err)
	}
	return p
}

func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "deploy/kustomization.yaml")); err != nil {
		t.Fatalf("repository root: %v", err)
	}
	return dir
}

func need(t *testing.T, tool string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		hint := "install kubectl (1.21+, its kustomize is used) or put hack/cluster/build.sh's directory on PATH"
		if tool == "helm" {
			hint = "run hack/helm.sh and put the directory it prints on PATH"
		}
		t.Skipf("SKIPPED: %s not on PATH; %s", tool, hint)
	}
}

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	need(t, name)
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}

func kustomize(t *testing.T, dir string) []object {
	t.Helper()
	return parse(t, run(t, "kubectl", "kustomize", dir))
}

func helmTemplate(t *testing.T, set ...string) []object {
	t.Helper()
	return helmTemplateIn(t, "kubemon", "kube-system", set...)
}

func helmTemplateIn(t *testing.T, release, namespace string, set ...string) []object {
	t.Helper()
	need(t, "kubectl") // the comparisons need both
	args := []string{"template", release, filepath.Join(root(t), "deploy/helm/kubemon"), "--namespace", namespace}
	for _, s := range set {
		if s != "" {
			args = append(args, "--set", s)
		}
	}
	return parse(t, run(t, "helm", args...))
}

func parse(t *testing.T, data []byte) []object {
	t.Helper()
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []object
	for {
		var m map[string]any
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("parsing rendered YAML: %v", err)
		}
		if m == nil {
			continue
		}
		meta, _ := m["metadata"].(map[string]any)
		o := object{Raw: m}
		o.Kind, _ = m["kind"].(string)
		o.Name, _ = meta["name"].(string)
		o.Namespace, _ = meta["namespace"].(string)
		if o.Kind == "" || o.Name == "" {
			t.Fatalf("object without kind or name: %s", js(m))
		}
		objs = append(objs, o)
	}
	return objs
}

func expectObjects(t *testing.T, what string, objs []object, want []string) {
	t.Helper()
	var got []string
	for _, o := range objs {
		got = append(got, o.Key())
	}
	sort.Strings(got)
	w := append([]string{}, want...)
	sort.Strings(w)
	if !reflect.DeepEqual(got, w) {
		t.Fatalf("%s renders %d objects:\n  %s\nwant %d:\n  %s", what, len(got), strings.Join(got, "\n  "), len(w), strings.Join(w, "\n  "))
	}
}

func find(t *testing.T, objs []object, kind, name string) object {
	t.Helper()
	for _, o := range objs {
		if o.Kind == kind && o.Name == name {
			return o
		}
	}
	t.Fatalf("no %s %s", kind, name)
	return object{}
}

func decode(t *testing.T, o object, into any) {
	t.Helper()
	b, err := json.Marshal(o.Raw)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		t.Fatalf("%s: %v", o.Key(), err)
	}
}

func deployment(t *testing.T, objs []object, name string) *appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	decode(t, find(t, objs, "Deployment", name), &d)
	if len(d.Spec.Template.Spec.Containers) != 1 || len(d.Spec.Template.Spec.Volumes) == 0 {
		t.Fatalf("Deployment %s: %d containers, %d volumes", name, len(d.Spec.Template.Spec.Containers), len(d.Spec.Template.Spec.Volumes))
	}
	return &d
}

// flags maps each --flag of a `kubemon serve` command line to its value
// ("" for a boolean); args must be serve followed by --flag[=value] only.
func flags(args []string) map[string]string {
	m := map[string]string{}
	for i, a := range args {
		if i == 0 && a == "serve" {
			continue
		}
		name, value, _ := strings.Cut(a, "=")
		m[name] = value
	}
	return m
}

func sortedKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func checkStrategy(t *testing.T, what string, d *appsv1.Deployment, surge, unavailable int) {
	t.Helper()
	s := d.Spec.Strategy
	if s.Type != appsv1.RollingUpdateDeploymentStrategyType || s.RollingUpdate == nil ||
		s.RollingUpdate.MaxSurge == nil || s.RollingUpdate.MaxSurge.IntValue() != surge ||
		s.RollingUpdate.MaxUnavailable == nil || s.RollingUpdate.MaxUnavailable.IntValue() != unavailable {
		t.Errorf("%s: strategy %s, want RollingUpdate maxSurge %d maxUnavailable %d", what, js(s), surge, unavailable)
	}
}

func checkResources(t *testing.T, what string, r corev1.ResourceRequirements, requestMi int64) {
	t.Helper()
	req, lim := r.Requests[corev1.ResourceMemory], r.Limits[corev1.ResourceMemory]
	if want := fmt.Sprintf("%dMi", requestMi); req.String() != want {
		t.Errorf("%s: memory request %s, want %s (128Mi + containers × 56Ki)", what, req.String(), want)
	}
	if want := fmt.Sprintf("%dMi", 2*requestMi); lim.String() != want {
		t.Errorf("%s: memory limit %s, want %s (2 × request)", what, lim.String(), want)
	}
}

// checkRetentionSize: --retention-size is 80 % of the data volume, in whole
// MiB (rounded down), written in GiB when whole.
func checkRetentionSize(t *testing.T, what, flag string, volume *resource.Quantity) {
	t.Helper()
	if volume == nil {
		t.Errorf("%s: the data volume has no size", what)
		return
	}
	m := regexp.MustCompile(`^([0-9]+)(GiB|MiB)$`).FindStringSubmatch(flag)
	if m == nil {
		t.Errorf("%s: --retention-size=%q, want <n>GiB or <n>MiB", what, flag)
		return
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	gotMi := n
	if m[2] == "GiB" {
		gotMi *= 1024
	}
	if wantMi := volume.Value() / (1 << 20) * 8 / 10; gotMi != wantMi {
		t.Errorf("%s: --retention-size=%s is %d MiB, want 80%% of %s = %d MiB", what, flag, gotMi, volume.String(), wantMi)
	}
}

func certificate(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("no PEM in %.60q", data)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func same(t *testing.T, what string, a, b any) {
	t.Helper()
	if !reflect.DeepEqual(a, b) {
		t.Errorf("%s differ:\n  kustomize: %s\n  helm:      %s", what, js(a), js(b))
	}
}

func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
