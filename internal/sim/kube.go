package sim

import (
	"strconv"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

const kubeletVersion = "v1.36.0"

func boolPtr(b bool) *bool { return &b }

// podObject renders the v1.Pod of an evaluated pod on node ni.
func (c *Cluster) podObject(ni int, pe *podEval, T int64) v1.Pod {
	n := &c.nodes[ni]
	wl := pe.wl
	gs := ni*c.opts.PodsPerNode + pe.slot
	created := mtime(pe.start)
	labels := map[string]string{"app": wl.name}
	var owners []metav1.OwnerReference
	owner := func(apiVersion, kind, name, uid string) {
		owners = append(owners, metav1.OwnerReference{
			APIVersion: apiVersion, Kind: kind, Name: name, UID: types.UID(uid),
			Controller: boolPtr(true), BlockOwnerDeletion: boolPtr(true),
		})
	}
	generateName := ""
	restartPolicy := v1.RestartPolicyAlways
	switch wl.kind {
	case kindDeployment:
		rs := wl.name + "-" + wl.hash
		labels["pod-template-hash"] = wl.hash
		generateName = rs + "-"
		owner("apps/v1", "ReplicaSet", rs, wl.ownerUID)
	case kindStatefulSet:
		labels["controller-revision-hash"] = wl.name + "-" + wl.hash
		labels["statefulset.kubernetes.io/pod-name"] = pe.name
		labels["apps.kubernetes.io/pod-index"] = strconv.Itoa(gs)
		generateName = wl.name + "-"
		owner("apps/v1", "StatefulSet", wl.name, wl.ownerUID)
	case kindDaemonSet:
		labels["controller-revision-hash"] = wl.hash
		labels["pod-template-generation"] = "1"
		generateName = wl.name + "-"
		owner("apps/v1", "DaemonSet", wl.name, wl.ownerUID)
	case kindJob:
		job := jobName(wl, pe.start)
		juid := uuidFrom(hash4(c.seed, tagOwnerUID, stringHash(wl.namespace+"/"+job), 2, 0), hash4(c.seed, tagOwnerUID, stringHash(job), 3, 0))
		labels["batch.kubernetes.io/job-name"] = job
		labels["job-name"] = job
		labels["batch.kubernetes.io/controller-uid"] = juid
		labels["controller-uid"] = juid
		generateName = job + "-"
		restartPolicy = v1.RestartPolicyOnFailure
		owner("batch/v1", "Job", job, juid)
	}

	vol := c.apiAccessVolume(pe)
	pod := v1.Pod{
		TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name:              pe.name,
			GenerateName:      generateName,
			Namespace:         wl.namespace,
			UID:               types.UID(pe.uid),
			ResourceVersion:   strconv.FormatInt(pe.start, 10),
			CreationTimestamp: created,
			Labels:            labels,
			OwnerReferences:   owners,
		},
		Spec: v1.PodSpec{
			NodeName:                      n.name,
			RestartPolicy:                 restartPolicy,
			DNSPolicy:                     v1.DNSClusterFirst,
			ServiceAccountName:            "default",
			SchedulerName:                 "default-scheduler",
			TerminationGracePeriodSeconds: int64Ptr(30),
			Volumes: []v1.Volume{{Name: vol, VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{
				Sources: []v1.VolumeProjection{{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: int64Ptr(3607)}}},
			}}}},
			Containers: make([]v1.Container, len(pe.ctrs)),
		},
		Status: v1.PodStatus{
			Phase: v1.PodRunning,
			Conditions: []v1.PodCondition{
				{Type: v1.PodReadyToStartContainers, Status: v1.ConditionTrue, LastTransitionTime: created},
				{Type: v1.PodInitialized, Status: v1.ConditionTrue, LastTransitionTime: created},
				{Type: v1.PodReady, Status: v1.ConditionTrue, LastTransitionTime: created},
				{Type: v1.ContainersReady, Status: v1.ConditionTrue, LastTransitionTime: created},
				{Type: v1.PodScheduled, Status: v1.ConditionTrue, LastTransitionTime: created},
			},
			HostIP:            c.opts.Host,
			HostIPs:           []v1.HostIP{{IP: c.opts.Host}},
			PodIP:             podIP(gs),
			PodIPs:            []v1.PodIP{{IP: podIP(gs)}},
			StartTime:         &created,
			ContainerStatuses: make([]v1.ContainerStatus, len(pe.ctrs)),
			QOSClass:          wl.qos,
		},
	}
	if pe.sp.emptyDirMiB > 0 {
		pod.Spec.Volumes = append(pod.Spec.Volumes, v1.Volume{Name: "cache", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}})
	}
	if wl.kind == kindStatefulSet {
		pod.Spec.Volumes = append(pod.Spec.Volumes, v1.Volume{Name: "data", VolumeSource: v1.VolumeSource{
			PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: "data-" + pe.name}}})
	}
	for ci := range pe.ctrs {
		ce := &pe.ctrs[ci]
		wc := ce.wc
		ctr := v1.Container{
			Name:                     wc.name,
			Image:                    wc.image,
			ImagePullPolicy:          v1.PullIfNotPresent,
			TerminationMessagePath:   "/dev/termination-log",
			TerminationMessagePolicy: v1.TerminationMessageReadFile,
			VolumeMounts:             []v1.VolumeMount{{Name: vol, ReadOnly: true, MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}},
		}
		if wc.cpuReq > 0 || wc.memReq > 0 {
			ctr.Resources.Requests = v1.ResourceList{}
			if wc.cpuReq > 0 {
				ctr.Resources.Requests[v1.ResourceCPU] = *resource.NewMilliQuantity(wc.cpuReq, resource.DecimalSI)
			}
			if wc.memReq > 0 {
				ctr.Resources.Requests[v1.ResourceMemory] = *resource.NewQuantity(wc.memReq, resource.BinarySI)
			}
		}
		if wc.cpuLim > 0 || wc.memLim > 0 {
			ctr.Resources.Limits = v1.ResourceList{}
			if wc.cpuLim > 0 {
				ctr.Resources.Limits[v1.ResourceCPU] = *resource.NewMilliQuantity(wc.cpuLim, resource.DecimalSI)
			}
			if wc.memLim > 0 {
				ctr.Resources.Limits[v1.ResourceMemory] = *resource.NewQuantity(wc.memLim, resource.BinarySI)
			}
		}
		pod.Spec.Containers[ci] = ctr
		st := v1.ContainerStatus{
			Name:         wc.name,
			State:        v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: mtime(ce.start)}},
			Ready:        true,
			RestartCount: ce.restarts,
			Image:        wc.image,
			ImageID:      wc.imageID,
			ContainerID:  "containerd://" + ce.id,
			Started:      boolPtr(true),
		}
		ended := ce.id // the run that ended last: while waiting, the current ID's
		if ce.running() {
			ended = hex64(hash4(c.seed, tagContainerID, uint64(gs), uint64(pe.gen), uint64(ci)<<32|uint64(uint32(ce.restarts-1))))
		} else {
			st.State = v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
				Message: "back-off " + strconv.FormatInt(ce.run.backoff, 10) + "s restarting failed container=" + wc.name +
					" pod=" + pe.name + "_" + wl.namespace + "(" + pe.uid + ")"}}
			st.Ready, st.Started = false, boolPtr(false)
			notReady(&pod.Status, mtime(ce.run.last.end))
		}
		if last := ce.run.last; last.end != 0 {
			st.LastTerminationState.Terminated = &v1.ContainerStateTerminated{
				ExitCode: last.exit, Reason: last.reason, StartedAt: mtime(ce.run.lastFrom), FinishedAt: mtime(last.end),
				ContainerID: "containerd://" + ended,
			}
		}
		pod.Status.ContainerStatuses[ci] = st
	}
	return pod
}

func int64Ptr(v int64) *int64 { return &v }

// notReady marks a pod with a container that is not running as not ready
// since at.
func notReady(st *v1.PodStatus, at metav1.Time) {
	for i := range st.Conditions {
		if t := st.Conditions[i].Type; t == v1.PodReady || t == v1.ContainersReady {
			st.Conditions[i].Status = v1.ConditionFalse
			st.Conditions[i].Reason = "ContainersNotReady"
			st.Conditions[i].LastTransitionTime = at
		}
	}
}

// podIP returns a unique 10.x.y.z address for a global slot.
func podIP(gs int) string {
	v := gs + 256
	return "10." + strconv.Itoa((v>>16)&255) + "." + strconv.Itoa((v>>8)&255) + "." + strconv.Itoa(v&255)
}

// nodeObject renders the v1.Node of node ni.
func (c *Cluster) nodeObject(ni int) v1.Node {
	n := &c.nodes[ni]
	labels := make(map[string]string, len(n.labels))
	for k, v := range n.labels {
		labels[k] = v
	}
	boot := mtime(n.boot)
	heartbeat := mtime(c.now())
	podsCap := int64(max(110, c.opts.PodsPerNode+10))
	condition := func(t v1.NodeConditionType, s v1.ConditionStatus, reason, msg string) v1.NodeCondition {
		return v1.NodeCondition{Type: t, Status: s, LastHeartbeatTime: heartbeat, LastTransitionTime: boot, Reason: reason, Message: msg}
	}
	return v1.Node{
		TypeMeta: metav1.TypeMeta{Kind: "Node", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name:              n.name,
			UID:               types.UID(n.uid),
			ResourceVersion:   strconv.FormatInt(n.boot, 10),
			CreationTimestamp: boot,
			Labels:            labels,
			Annotations: map[string]string{
				"node.alpha.kubernetes.io/ttl":                           "0",
				"volumes.kubernetes.io/controller-managed-attach-detach": "true",
			},
		},
		Spec: v1.NodeSpec{
			PodCIDR:    "10." + strconv.Itoa(ni>>8&255) + "." + strconv.Itoa(ni&255) + ".0/24",
			ProviderID: "sim://" + n.zone + "/" + n.name,
		},
		Status: v1.NodeStatus{
			Capacity: v1.ResourceList{
				v1.ResourceCPU:              *resource.NewMilliQuantity(n.cpuCap, resource.DecimalSI),
				v1.ResourceMemory:           *resource.NewQuantity(n.memCap, resource.BinarySI),
				v1.ResourcePods:             *resource.NewQuantity(podsCap, resource.DecimalSI),
				v1.ResourceEphemeralStorage: *resource.NewQuantity(int64(n.fsCap), resource.BinarySI),
			},
			Allocatable: v1.ResourceList{
				v1.ResourceCPU:              *resource.NewMilliQuantity(n.cpuAlloc, resource.DecimalSI),
				v1.ResourceMemory:           *resource.NewQuantity(n.memAlloc, resource.BinarySI),
				v1.ResourcePods:             *resource.NewQuantity(podsCap, resource.DecimalSI),
				v1.ResourceEphemeralStorage: *resource.NewQuantity(int64(n.fsCap*9/10), resource.BinarySI),
			},
			Phase: v1.NodeRunning,
			Conditions: []v1.NodeCondition{
				condition(v1.NodeMemoryPressure, v1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
				condition(v1.NodeDiskPressure, v1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
				condition(v1.NodePIDPressure, v1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
				condition(v1.NodeReady, v1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"),
			},
			Addresses: []v1.NodeAddress{
				{Type: v1.NodeInternalIP, Address: c.opts.Host},
				{Type: v1.NodeHostName, Address: n.name},
			},
			DaemonEndpoints: v1.NodeDaemonEndpoints{KubeletEndpoint: v1.DaemonEndpoint{Port: c.ports[ni].Load()}},
			NodeInfo: v1.NodeSystemInfo{
				MachineID:               n.machineID,
				SystemUUID:              n.uid,
				BootID:                  n.bootID,
				KernelVersion:           "6.12.0-sim",
				OSImage:                 "Debian GNU/Linux 12 (bookworm)",
				ContainerRuntimeVersion: "containerd://2.2.1",
				KubeletVersion:          kubeletVersion,
				OperatingSystem:         "linux",
				Architecture:            "amd64",
			},
		},
	}
}

// NodeObjects returns every node's v1.Node as the cluster's /api/v1/nodes
// serves it (addresses Host, kubelet ports known after Start), for loading
// the simulated cluster into a real API server.
func (c *Cluster) NodeObjects() []v1.Node {
	out := make([]v1.Node, len(c.nodes))
	for ni := range c.nodes {
		out[ni] = c.nodeObject(ni)
	}
	return out
}

// PodObjects returns every pod's v1.Pod at t (truncated to the second), as
// the cluster's /api/v1/pods serves them: the pods that exist at t, with
// their containers' requests and limits, owners, node and status.
func (c *Cluster) PodObjects(t time.Time) []v1.Pod {
	T := t.Unix()
	out := make([]v1.Pod, 0, len(c.nodes)*c.opts.PodsPerNode)
	ctrs := make([]ctrEval, c.opts.ContainersPerPod)
	for ni := range c.nodes {
		for s := 0; s < c.opts.PodsPerNode; s++ {
			clear(ctrs)
			pe := podEval{ctrs: ctrs}
			c.evalPod(ni, s, T, &pe)
			out = append(out, c.podObject(ni, &pe, T))
		}
	}
	return out
}
