// Package podmeta turns Kubernetes Pod objects into kubemon's view of a pod
// (model.PodMeta): requests and limits per container (cores, bytes), restart
// counts, why a container waits and how its last run ended, labels and the
// owning workload. Discovery uses it on the
// informers' pods and the kubelet scraper on a kubelet's /pods.
package podmeta

import (
	"math"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubemon/kubemon/internal/model"
)

// FromPod extracts kubemon's view of a pod. Without the owners' objects the
// workload is guessed from the controller reference alone: a ReplicaSet
// named "<deployment>-<pod-template-hash>" is taken as that Deployment's, a
// Job named "<cronjob>-<digits>" as that CronJob's; callers that know the
// owners (discovery's informers) overwrite WorkloadKind and Workload.
func FromPod(p *corev1.Pod) model.PodMeta {
	m := model.PodMeta{
		Namespace: p.Namespace,
		Name:      p.Name,
		UID:       string(p.UID),
		Node:      p.Spec.NodeName,
		Labels:    p.Labels,
		Phase:     string(p.Status.Phase),
	}
	m.WorkloadKind, m.Workload = workloadOf(p)
	statuses := make(map[string]*corev1.ContainerStatus, len(p.Status.ContainerStatuses))
	for i := range p.Status.ContainerStatuses {
		statuses[p.Status.ContainerStatuses[i].Name] = &p.Status.ContainerStatuses[i]
	}
	for _, c := range p.Spec.Containers {
		cm := model.ContainerMeta{
			Name:          c.Name,
			CPURequest:    cores(c.Resources.Requests, corev1.ResourceCPU),
			CPULimit:      cores(c.Resources.Limits, corev1.ResourceCPU),
			MemoryRequest: memoryBytes(c.Resources.Requests, corev1.ResourceMemory),
			MemoryLimit:   memoryBytes(c.Resources.Limits, corev1.ResourceMemory),
		}
		if s := statuses[c.Name]; s != nil {
			cm.Restarts = s.RestartCount
			if w := s.State.Waiting; w != nil {
				cm.Waiting = w.Reason
			}
			if backingOff(p.Spec.RestartPolicy, s) {
				cm.Waiting = model.ReasonCrashLoopBackOff
			}
			if t := s.LastTerminationState.Terminated; t != nil {
				cm.LastTermination = model.Termination{
					Reason: t.Reason, ExitCode: t.ExitCode, ContainerID: t.ContainerID,
					Started: unixMilli(t.StartedAt), Finished: unixMilli(t.FinishedAt),
				}
			}
		}
		m.Containers = append(m.Containers, cm)
	}
	return m
}

// backingOff reports whether a container that has terminated waits for the
// kubelet's restart back-off: it failed before (a restart count), it ended
// again, and the pod's restart policy restarts it. A v1.36 kubelet shows such
// a container terminated for most of its back-off, and waiting in
// CrashLoopBackOff only now and then.
func backingOff(policy corev1.RestartPolicy, s *corev1.ContainerStatus) bool {
	t := s.State.Terminated
	if t == nil || s.RestartCount == 0 {
		return false
	}
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return t.ExitCode != 0
	}
	return true // Always, the default
}

// unixMilli is t in Unix milliseconds, 0 for the zero time.
func unixMilli(t metav1.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// workloadOf names the pod's top owner from its controller reference alone
// (Informers resolves it exactly through the owners' own references):
// a ReplicaSet whose name is "<deployment>-<pod-template-hash>" is taken as
// that Deployment's, a Job named "<cronjob>-<digits>" as that CronJob's.
func workloadOf(p *corev1.Pod) (kind, name string) {
	ref := controllerOf(p)
	if ref == nil {
		return "", ""
	}
	switch ref.Kind {
	case "ReplicaSet":
		if h := p.Labels["pod-template-hash"]; h != "" && strings.HasSuffix(ref.Name, "-"+h) {
			return "Deployment", strings.TrimSuffix(ref.Name, "-"+h)
		}
	case "Job":
		if i := strings.LastIndexByte(ref.Name, '-'); i > 0 && isDigits(ref.Name[i+1:]) {
			return "CronJob", ref.Name[:i]
		}
	}
	return ref.Kind, ref.Name
}

func controllerOf(p *corev1.Pod) *metav1.OwnerReference {
	if r := metav1.GetControllerOfNoCopy(p); r != nil {
		return r
	}
	if len(p.OwnerReferences) > 0 {
		return &p.OwnerReferences[0]
	}
	return nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func cores(l corev1.ResourceList, n corev1.ResourceName) float64 {
	q, ok := l[n]
	if !ok {
		return math.NaN()
	}
	return float64(q.MilliValue()) / 1000
}

func memoryBytes(l corev1.ResourceList, n corev1.ResourceName) float64 {
	q, ok := l[n]
	if !ok {
		return math.NaN()
	}
	return float64(q.Value())
}
