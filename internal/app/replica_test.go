package app

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// TestPeerPods: the peers are the ready pods of the selector in the
// namespace, with an IP, not terminating, this pod excluded, sorted.
func TestPeerPods(t *testing.T) {
	pod := func(name, ns, ip string, ready bool, labels map[string]string, terminating bool) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}, Status: corev1.PodStatus{PodIP: ip}}
		status := corev1.ConditionFalse
		if ready {
			status = corev1.ConditionTrue
		}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}
		if terminating {
			now := metav1.Now()
			p.DeletionTimestamp = &now
			p.Finalizers = []string{"test"}
		}
		return p
	}
	km := map[string]string{"app.kubernetes.io/name": "kubemon"}
	client := fake.NewClientset(
		pod("kubemon-b", "kube-system", "10.0.0.3", true, km, false),
		pod("kubemon-a", "kube-system", "10.0.0.2", true, km, false),
		pod("kubemon-self", "kube-system", "10.0.0.1", true, km, false),
		pod("kubemon-starting", "kube-system", "10.0.0.4", false, km, false),
		pod("kubemon-noip", "kube-system", "", true, km, false),
		pod("kubemon-old", "kube-system", "10.0.0.5", true, km, true),
		pod("kubemon-elsewhere", "monitoring", "10.0.0.6", true, km, false),
		pod("web", "kube-system", "10.0.0.7", true, map[string]string{"app.kubernetes.io/name": "web"}, false),
		pod("kubemon-v6", "kube-system", "fd00::8", true, km, false),
	)
	got, err := peerPods(context.Background(), client, "kube-system", "app.kubernetes.io/name=kubemon", "kubemon-self", "8080")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"http://10.0.0.2:8080", "http://10.0.0.3:8080", "http://[fd00::8]:8080"}
	if !slices.Equal(got, want) {
		t.Errorf("peers %v, want %v", got, want)
	}
}
