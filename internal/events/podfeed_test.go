package events

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func simPod(uid, ns, name string, started time.Time, restarts ...int32) corev1.Pod {
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{UID: types.UID(uid), Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(started)},
		Spec:       corev1.PodSpec{NodeName: "node-1"},
		Status:     corev1.PodStatus{StartTime: &metav1.Time{Time: started}},
	}
	for i, r := range restarts {
		n := string(rune('a' + i))
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: n, Image: "img-" + n})
		cs := corev1.ContainerStatus{Name: n, RestartCount: r,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(started.Add(time.Duration(r) * time.Minute))}}}
		if r > 0 {
			cs.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{FinishedAt: metav1.NewTime(started.Add(time.Duration(r)*time.Minute - time.Second))}
		}
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, cs)
	}
	return p
}

// reasons lists "pod/container reason count" of the store's events.
func reasons(t *testing.T, s *Store) []string {
	t.Helper()
	r, err := s.Query(context.Background(), Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range r.Events {
		ctr := e.Event.InvolvedObject.FieldPath
		out = append(out, e.Event.InvolvedObject.Name+ctr+" "+e.Event.Reason+" "+fmt.Sprint(Count(e.Event)))
	}
	sort.Strings(out)
	return out
}

func TestPodFeed(t *testing.T) {
	c := &clock{t0}
	s := open(t, t.TempDir(), Options{Now: c.now})
	var pods []corev1.Pod
	list := func(_ context.Context, each func(*corev1.Pod)) error {
		for i := range pods {
			each(&pods[i])
		}
		return nil
	}
	f, err := NewPodFeed(PodFeedOptions{List: list, Store: s, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	// First snapshot: an old pod (before the 1 h window) has no events,
	// except its restart within the window; a recent one has all of its.
	pods = []corev1.Pod{
		simPod("old", "ns", "old", t0.Add(-3*time.Hour), 0, 0),
		simPod("new", "ns", "new", t0.Add(-10*time.Minute), 0),
	}
	old := &pods[0].Status.ContainerStatuses[1]
	old.RestartCount = 1
	old.State.Running.StartedAt = metav1.NewTime(t0.Add(-5 * time.Minute))
	old.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{FinishedAt: metav1.NewTime(t0.Add(-6 * time.Minute))}
	if _, err := f.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"new Scheduled 1",
		"newspec.containers{a} Created 1", "newspec.containers{a} Pulled 1", "newspec.containers{a} Started 1",
		"oldspec.containers{b} BackOff 1", "oldspec.containers{b} Started 2",
	}
	if got := reasons(t, s); !slices.Equal(got, want) {
		t.Fatalf("first snapshot:\n got %q\nwant %q", got, want)
	}
	// Nothing changed: nothing new.
	seq := s.LastSeq()
	c.t = t0.Add(15 * time.Second)
	if n, _ := f.Poll(context.Background()); n != 0 || s.LastSeq() != seq {
		t.Fatalf("unchanged snapshot made %d events", n)
	}
	// A restart updates BackOff and Started (same UIDs, higher counts);
	// a vanished pod is killed; a new pod is scheduled.
	c.t = t0.Add(time.Hour)
	pods[1].Status.ContainerStatuses[0].RestartCount = 2
	pods[1].Status.ContainerStatuses[0].State.Running.StartedAt = metav1.NewTime(c.t.Add(-time.Second))
	pods = append(pods[1:], simPod("third", "ns2", "third", c.t.Add(-5*time.Second), 0))
	if _, err := f.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	want = []string{
		"new Scheduled 1",
		"newspec.containers{a} BackOff 2", "newspec.containers{a} Created 1", "newspec.containers{a} Pulled 1", "newspec.containers{a} Started 3",
		"oldspec.containers{a} Killing 1", "oldspec.containers{b} BackOff 1", "oldspec.containers{b} Killing 1", "oldspec.containers{b} Started 2",
		"third Scheduled 1", "thirdspec.containers{a} Created 1", "thirdspec.containers{a} Pulled 1", "thirdspec.containers{a} Started 1",
	}
	if got := reasons(t, s); !slices.Equal(got, want) {
		t.Fatalf("after changes:\n got %q\nwant %q", got, want)
	}
	// The scheduler's event is in the events.k8s.io style.
	r, _ := s.Query(context.Background(), Query{Reason: "Scheduled", Name: "third", Limit: 1})
	if e := r.Events[0].Event; e.ReportingController != "default-scheduler" || e.EventTime.IsZero() || !e.LastTimestamp.IsZero() ||
		e.Message != "Successfully assigned ns2/third to node-1" {
		t.Errorf("Scheduled: %+v", e)
	}
	// A feed restarted on the same store (kubemon restarted) makes the same
	// UIDs: nothing is added twice.
	n := s.Len()
	f2, _ := NewPodFeed(PodFeedOptions{List: list, Store: s, Now: c.now})
	if _, err := f2.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.Len() != n {
		t.Errorf("restarted feed: %d events, was %d", s.Len(), n)
	}
}
