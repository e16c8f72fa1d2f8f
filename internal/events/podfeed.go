package events

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// PodFeedOptions configure a PodFeed. List and Store are required.
type PodFeedOptions struct {
	// List calls each for every pod of a snapshot (it may reuse nothing:
	// each pod is read during the call only).
	List  func(ctx context.Context, each func(*corev1.Pod)) error
	Store Putter
	// Interval between snapshots; default 15 s.
	Interval time.Duration
	// Window is how far back the first snapshot makes events: pods and
	// restarts older than that have none (the Kubernetes API keeps events
	// one hour by default, so a watch of a real cluster starts with as
	// much); default 1 hour.
	Window time.Duration
	Logger *slog.Logger
	Now    func() time.Time
}

// PodFeed makes, from successive snapshots of the pods, the events the
// scheduler and the kubelet record for them: Scheduled for a new pod;
// Pulled, Created and Started for each of its containers; BackOff
// (Warning) and Started again when a container restarts, as updates of the
// same events (same UID, count increased); Killing for each container of a
// pod that is gone. It gives kubemon's demo, whose simulated cluster has
// no Kubernetes API, the events a real cluster's watch would give. Event
// UIDs are derived from the pod's UID, so a kubemon restarted on the same
// data directory updates the events it stored before instead of adding
// them again.
type PodFeed struct {
	o     PodFeedOptions
	known map[types.UID]*podState
	first bool
}

// podState is what the feed remembers of a pod.
type podState struct {
	namespace, name, node string
	containers            []ctrState
	seen                  bool // in the current snapshot
}

type ctrState struct {
	name     string
	restarts int32
}

// NewPodFeed checks o and returns its PodFeed; Run drives it.
func NewPodFeed(o PodFeedOptions) (*PodFeed, error) {
	if o.List == nil || o.Store == nil {
		return nil, errors.New("events: the pod feed needs a pod lister and a store")
	}
	if o.Interval <= 0 {
		o.Interval = 15 * time.Second
	}
	if o.Window <= 0 {
		o.Window = time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &PodFeed{o: o, known: map[types.UID]*podState{}, first: true}, nil
}

// Run takes a snapshot every interval until ctx ends; it returns nil then.
func (f *PodFeed) Run(ctx context.Context) error {
	t := time.NewTicker(f.o.Interval)
	defer t.Stop()
	for {
		if n, err := f.Poll(ctx); err != nil && ctx.Err() == nil {
			f.o.Logger.Warn("making events from the pods failed; retrying", "err", err, "in", f.o.Interval)
		} else if n > 0 {
			f.o.Logger.Debug("events from pod changes", "events", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Poll takes one snapshot and stores the events of what changed since the
// last; it returns how many events it made.
func (f *PodFeed) Poll(ctx context.Context) (int, error) {
	now := f.o.Now()
	since := time.Time{}
	if f.first {
		since = now.Add(-f.o.Window)
	}
	var evs []*corev1.Event
	err := f.o.List(ctx, func(p *corev1.Pod) {
		evs = f.observe(evs, p, since, now)
	})
	if err != nil {
		for _, s := range f.known {
			s.seen = false
		}
		return 0, fmt.Errorf("listing pods: %w", err)
	}
	for uid, s := range f.known {
		if !s.seen {
			for _, c := range s.containers {
				evs = append(evs, f.event(uid, s, c.name, "Killing", corev1.EventTypeNormal, "Stopping container "+c.name, now, now, 1))
			}
			delete(f.known, uid)
			continue
		}
		s.seen = false
	}
	f.first = false
	if len(evs) == 0 {
		return 0, nil
	}
	if _, err := f.o.Store.Put(ctx, evs); err != nil {
		return 0, err
	}
	return len(evs), nil
}

// observe compares one pod of the snapshot with what was known of it and
// appends its events; on the first snapshot only what happened after
// since has events.
func (f *PodFeed) observe(evs []*corev1.Event, p *corev1.Pod, since, now time.Time) []*corev1.Event {
	s, known := f.known[p.UID]
	if !known {
		s = &podState{namespace: p.Namespace, name: p.Name, node: p.Spec.NodeName}
		f.known[p.UID] = s
		created := p.CreationTimestamp.Time
		if created.After(since) {
			sched := f.event(p.UID, s, "", "Scheduled", corev1.EventTypeNormal,
				fmt.Sprintf("Successfully assigned %s/%s to %s", p.Namespace, p.Name, p.Spec.NodeName), created, created, 1)
			// The scheduler reports through events.k8s.io: eventTime and a
			// reporting controller, no source or lastTimestamp.
			sched.Source, sched.FirstTimestamp, sched.LastTimestamp, sched.Count = corev1.EventSource{}, metav1.Time{}, metav1.Time{}, 0
			sched.EventTime = metav1.NewMicroTime(created)
			sched.ReportingController, sched.ReportingInstance, sched.Action = "default-scheduler", "default-scheduler-sim", "Binding"
			evs = append(evs, sched)
		}
	}
	s.seen = true
	images := map[string]string{}
	for _, c := range p.Spec.Containers {
		images[c.Name] = c.Image
	}
	for _, cs := range p.Status.ContainerStatuses {
		i := indexOf(s.containers, cs.Name)
		if i < 0 {
			s.containers = append(s.containers, ctrState{name: cs.Name, restarts: -1})
			i = len(s.containers) - 1
		}
		c := &s.containers[i]
		if c.restarts == cs.RestartCount {
			continue
		}
		first := c.restarts < 0
		c.restarts = cs.RestartCount
		// The container's first start is the pod's start; its latest the
		// running state's.
		started := p.CreationTimestamp.Time
		if p.Status.StartTime != nil {
			started = p.Status.StartTime.Time
		}
		latest := started
		if cs.State.Running != nil {
			latest = cs.State.Running.StartedAt.Time
		}
		if first && started.After(since) {
			img := images[cs.Name]
			evs = append(evs,
				f.event(p.UID, s, cs.Name, "Pulled", corev1.EventTypeNormal, fmt.Sprintf("Container image %q already present on machine", img), started, started, 1),
				f.event(p.UID, s, cs.Name, "Created", corev1.EventTypeNormal, "Created container: "+cs.Name, started, started, 1))
		}
		if latest.After(since) {
			evs = append(evs, f.event(p.UID, s, cs.Name, "Started", corev1.EventTypeNormal, "Started container "+cs.Name, started, latest, cs.RestartCount+1))
		}
		if cs.RestartCount > 0 {
			t := latest
			if lt := cs.LastTerminationState.Terminated; lt != nil {
				t = lt.FinishedAt.Time
			}
			if t.After(since) {
				evs = append(evs, f.event(p.UID, s, cs.Name, "BackOff", corev1.EventTypeWarning,
					fmt.Sprintf("Back-off restarting failed container %s in pod %s_%s(%s)", cs.Name, p.Name, p.Namespace, p.UID), t, t, cs.RestartCount))
			}
		}
	}
	return evs
}

func indexOf(cs []ctrState, name string) int {
	for i := range cs {
		if cs[i].name == name {
			return i
		}
	}
	return -1
}

// event builds a kubelet's event about pod uid (container ctr, or the pod
// when ""), its UID derived from the pod's, the container and the reason.
func (f *PodFeed) event(pod types.UID, s *podState, ctr, reason, typ, msg string, first, last time.Time, count int32) *corev1.Event {
	h := sha256.Sum256([]byte(string(pod) + "\x00" + ctr + "\x00" + reason))
	x := hex.EncodeToString(h[:16])
	uid := x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
	fieldPath := ""
	if ctr != "" {
		fieldPath = "spec.containers{" + ctr + "}"
	}
	return &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: s.name + "." + x[:16], Namespace: s.namespace, UID: types.UID(uid),
			CreationTimestamp: metav1.NewTime(first)},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: s.namespace, Name: s.name, UID: pod, APIVersion: "v1", FieldPath: fieldPath},
		Reason:         reason, Message: msg, Type: typ, Count: count,
		FirstTimestamp: metav1.NewTime(first), LastTimestamp: metav1.NewTime(last),
		Source:              corev1.EventSource{Component: "kubelet", Host: s.node},
		ReportingController: "kubelet", ReportingInstance: s.node,
	}
}
