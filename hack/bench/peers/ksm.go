package main

import (
	"bufio"
	"context"
	"flag"
	"net/http"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// ksmMain is a stand-in for kube-state-metrics, used when no
// kube-state-metrics binary is given (the Go module proxy here refuses
// k8s.io/kube-state-metrics): it watches pods, nodes and ReplicaSets as
// kube-state-metrics does and serves, under kube-state-metrics' own names
// and labels, the families of its default set that describe them: pods'
// info, owners, phase, conditions and QoS class, containers' info, state,
// restarts, requests and limits, nodes' info, capacity, allocatable and
// conditions, ReplicaSets' owners and replicas. It serves fewer families
// than kube-state-metrics (no Services, Endpoints, ConfigMaps, Secrets,
// Deployments, … nor the pods' status times), so it costs less.
func ksmMain(args []string) error {
	fs := flag.NewFlagSet("ksm", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig")
	listen := fs.String("listen", "127.0.0.1:8080", "listen address of /metrics")
	_ = fs.Parse(args)
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	rc, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	f := informers.NewSharedInformerFactory(cs, 0)
	pods, nodes, rss := f.Core().V1().Pods().Lister(), f.Core().V1().Nodes().Lister(), f.Apps().V1().ReplicaSets().Lister()
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		bw := bufio.NewWriterSize(w, 64<<10)
		defer bw.Flush()
		m := &ksmWriter{w: bw}
		ps, _ := pods.List(labels.Everything())
		for _, p := range ps {
			m.pod(p)
		}
		ns, _ := nodes.List(labels.Everything())
		for _, n := range ns {
			m.node(n)
		}
		rl, _ := rss.List(labels.Everything())
		for _, r := range rl {
			l := []string{"namespace", r.Namespace, "replicaset", r.Name}
			for _, o := range r.OwnerReferences {
				m.put("kube_replicaset_owner", 1, append(l, "owner_kind", o.Kind, "owner_name", o.Name, "owner_is_controller", strconv.FormatBool(o.Controller != nil && *o.Controller))...)
			}
			if r.Spec.Replicas != nil {
				m.put("kube_replicaset_spec_replicas", float64(*r.Spec.Replicas), l...)
			}
			m.put("kube_replicaset_status_replicas", float64(r.Status.Replicas), l...)
		}
	})
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		return err
	}
	return nil
}

type ksmWriter struct{ w *bufio.Writer }

// put writes one sample; labels are name, value pairs.
func (m *ksmWriter) put(name string, v float64, l ...string) {
	m.w.WriteString(name)
	m.w.WriteByte('{')
	for i := 0; i+1 < len(l); i += 2 {
		if i > 0 {
			m.w.WriteByte(',')
		}
		m.w.WriteString(l[i])
		m.w.WriteString(`="`)
		m.w.WriteString(strings.ReplaceAll(l[i+1], `"`, `\"`))
		m.w.WriteByte('"')
	}
	m.w.WriteString("} ")
	m.w.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	m.w.WriteByte('\n')
}

func b01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (m *ksmWriter) pod(p *v1.Pod) {
	base := []string{"namespace", p.Namespace, "pod", p.Name, "uid", string(p.UID)}
	with := func(kv ...string) []string { return append(append([]string(nil), base...), kv...) }
	kind, name := "", ""
	for _, o := range p.OwnerReferences {
		kind, name = o.Kind, o.Name
		m.put("kube_pod_owner", 1, with("owner_kind", o.Kind, "owner_name", o.Name, "owner_is_controller", strconv.FormatBool(o.Controller != nil && *o.Controller))...)
	}
	m.put("kube_pod_info", 1, with("host_ip", p.Status.HostIP, "pod_ip", p.Status.PodIP, "node", p.Spec.NodeName,
		"created_by_kind", kind, "created_by_name", name, "priority_class", p.Spec.PriorityClassName, "host_network", "false")...)
	m.put("kube_pod_labels", 1, base...)
	m.put("kube_pod_created", float64(p.CreationTimestamp.Unix()), base...)
	if p.Status.StartTime != nil {
		m.put("kube_pod_start_time", float64(p.Status.StartTime.Unix()), base...)
	}
	m.put("kube_pod_restart_policy", 1, with("type", string(p.Spec.RestartPolicy))...)
	m.put("kube_pod_service_account", 1, with("service_account", p.Spec.ServiceAccountName)...)
	for _, ph := range []v1.PodPhase{v1.PodPending, v1.PodSucceeded, v1.PodFailed, v1.PodUnknown, v1.PodRunning} {
		m.put("kube_pod_status_phase", b01(p.Status.Phase == ph), with("phase", string(ph))...)
	}
	for _, q := range []v1.PodQOSClass{v1.PodQOSBestEffort, v1.PodQOSBurstable, v1.PodQOSGuaranteed} {
		m.put("kube_pod_status_qos_class", b01(p.Status.QOSClass == q), with("qos_class", string(q))...)
	}
	for _, c := range p.Status.Conditions {
		var fam string
		switch c.Type {
		case v1.PodReady:
			fam = "kube_pod_status_ready"
		case v1.PodScheduled:
			fam = "kube_pod_status_scheduled"
		default:
			continue
		}
		for _, s := range []v1.ConditionStatus{v1.ConditionTrue, v1.ConditionFalse, v1.ConditionUnknown} {
			m.put(fam, b01(c.Status == s), with("condition", strings.ToLower(string(s)))...)
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		l := with("container", cs.Name)
		m.put("kube_pod_container_info", 1, append(l, "image_spec", cs.Image, "image", cs.Image, "image_id", cs.ImageID, "container_id", cs.ContainerID)...)
		m.put("kube_pod_container_status_waiting", b01(cs.State.Waiting != nil), l...)
		m.put("kube_pod_container_status_running", b01(cs.State.Running != nil), l...)
		m.put("kube_pod_container_status_terminated", b01(cs.State.Terminated != nil), l...)
		m.put("kube_pod_container_status_ready", b01(cs.Ready), l...)
		m.put("kube_pod_container_status_restarts_total", float64(cs.RestartCount), l...)
		if cs.State.Running != nil {
			m.put("kube_pod_container_state_started", float64(cs.State.Running.StartedAt.Unix()), l...)
		}
		if t := cs.LastTerminationState.Terminated; t != nil {
			m.put("kube_pod_container_status_last_terminated_reason", 1, append(l, "reason", t.Reason)...)
		}
	}
	for _, c := range p.Spec.Containers {
		for fam, rl := range map[string]v1.ResourceList{"kube_pod_container_resource_requests": c.Resources.Requests, "kube_pod_container_resource_limits": c.Resources.Limits} {
			if q, ok := rl[v1.ResourceCPU]; ok {
				m.put(fam, float64(q.MilliValue())/1000, with("container", c.Name, "node", p.Spec.NodeName, "resource", "cpu", "unit", "core")...)
			}
			if q, ok := rl[v1.ResourceMemory]; ok {
				m.put(fam, float64(q.Value()), with("container", c.Name, "node", p.Spec.NodeName, "resource", "memory", "unit", "byte")...)
			}
		}
	}
}

func (m *ksmWriter) node(n *v1.Node) {
	base := []string{"node", n.Name}
	with := func(kv ...string) []string { return append(append([]string(nil), base...), kv...) }
	ni := n.Status.NodeInfo
	ip := ""
	if len(n.Status.Addresses) > 0 {
		ip = n.Status.Addresses[0].Address
	}
	m.put("kube_node_info", 1, with("kernel_version", ni.KernelVersion, "os_image", ni.OSImage, "container_runtime_version", ni.ContainerRuntimeVersion,
		"kubelet_version", ni.KubeletVersion, "kubeproxy_version", "deprecated", "provider_id", n.Spec.ProviderID, "pod_cidr", n.Spec.PodCIDR,
		"system_uuid", ni.SystemUUID, "internal_ip", ip)...)
	m.put("kube_node_labels", 1, base...)
	m.put("kube_node_created", float64(n.CreationTimestamp.Unix()), base...)
	m.put("kube_node_spec_unschedulable", b01(n.Spec.Unschedulable), base...)
	for fam, rl := range map[string]v1.ResourceList{"kube_node_status_capacity": n.Status.Capacity, "kube_node_status_allocatable": n.Status.Allocatable} {
		for r, q := range rl {
			unit, v := "byte", float64(q.Value())
			switch r {
			case v1.ResourceCPU:
				unit, v = "core", float64(q.MilliValue())/1000
			case v1.ResourcePods:
				unit = "integer"
			}
			m.put(fam, v, with("resource", string(r), "unit", unit)...)
		}
	}
	for _, c := range n.Status.Conditions {
		for _, s := range []v1.ConditionStatus{v1.ConditionTrue, v1.ConditionFalse, v1.ConditionUnknown} {
			m.put("kube_node_status_condition", b01(c.Status == s), with("condition", string(c.Type), "status", strings.ToLower(string(s)))...)
		}
	}
}
