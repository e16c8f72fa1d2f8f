// Package shard divides the nodes among the members of a sharded kubemon.
// Members find each other through Kubernetes Leases (coordination.k8s.io,
// one per member, lasting an interval and renewed three times in it), and each node is assigned to
// ReplicationFactor live members by rendezvous (highest random weight)
// hashing: every member computes the same owners from the same member
// list, and a member that joins or leaves moves only the nodes it gains
// or held (about 1/N of them).
package shard

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kubemon/kubemon/internal/model"
)

// Defaults of Options.
const (
	DefaultRing              = "kubemon"
	DefaultReplicationFactor = 2
)

// RingLabel marks a member's Lease with its ring's name.
const RingLabel = "kubemon.io/ring"

// Options configures a Ring.
type Options struct {
	// Client reaches the Kubernetes API's Leases; required.
	Client kubernetes.Interface
	// Namespace holds the Leases; required (kubemon's own).
	Namespace string
	// Ring names the group of members (default DefaultRing): its Leases
	// are named <Ring>-<Identity> and labelled RingLabel=<Ring>.
	Ring string
	// Identity is this member's name, unique in the ring (the pod's name);
	// required.
	Identity string
	// Interval is the life of a Lease: a member renews its own three times
	// an interval, and a Lease not renewed for an interval is a dead
	// member's. Required (kubemon's scrape interval).
	Interval time.Duration
	// ReplicationFactor is how many live members scrape each node
	// (default DefaultReplicationFactor; all of them when fewer are live).
	ReplicationFactor int
	// Now is the clock (default time.Now).
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Ring is this member's view of the ring: the live members, and so the
// nodes it owns.
type Ring struct {
	o Options

	mu       sync.Mutex
	members  []string // live, sorted; this member always among them
	onChange func()

	membersGauge prometheus.Gauge
	ownedGauge   prometheus.Gauge
	renewals     *prometheus.CounterVec
	changes      prometheus.Counter
}

// New checks o and returns a Ring of this member alone, until Start.
func New(o Options) (*Ring, error) {
	switch {
	case o.Client == nil:
		return nil, errors.New("shard: no Kubernetes client")
	case o.Namespace == "":
		return nil, errors.New("shard: no namespace for the Leases")
	case o.Identity == "":
		return nil, errors.New("shard: no member identity")
	case o.Interval <= 0:
		return nil, errors.New("shard: no interval")
	}
	if o.Ring == "" {
		o.Ring = DefaultRing
	}
	if o.ReplicationFactor <= 0 {
		o.ReplicationFactor = DefaultReplicationFactor
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Ring{
		o:       o,
		members: []string{o.Identity},
		membersGauge: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "kubemon", Subsystem: "shard", Name: "members",
			Help: "Live members of the ring as this member sees them (their Leases renewed within an interval)."}),
		ownedGauge: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "kubemon", Subsystem: "shard", Name: "nodes",
			Help: "Nodes this member scrapes: those whose rendezvous owners include it."}),
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "kubemon", Subsystem: "shard", Name: "lease_renewals_total",
			Help: "Renewals of this member's Lease, by result (ok, error)."}, []string{"result"}),
		changes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "kubemon", Subsystem: "shard", Name: "membership_changes_total",
			Help: "Times the list of live members changed."}),
	}
	r.membersGauge.Set(1)
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{r.membersGauge, r.ownedGauge, r.renewals, r.changes} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("shard: %w", err)
			}
		}
	}
	return r, nil
}

// leaseName is the Lease of member id.
func (r *Ring) leaseName(id string) string { return r.o.Ring + "-" + id }

// leaseDuration is how long a Lease lasts unrenewed: an interval.
func (r *Ring) leaseDuration() time.Duration { return r.o.Interval }

// OnChange sets f to be called (on Run's goroutine) whenever the live
// members change, e.g. to reconcile the scrape loops at once rather than
// at the next interval.
func (r *Ring) OnChange(f func()) {
	r.mu.Lock()
	r.onChange = f
	r.mu.Unlock()
}

// Start renews this member's Lease and reads the ring once, so that the
// member starts with its share; an error here (no access to Leases) is
// the caller's to report. Run keeps both up to date.
func (r *Ring) Start(ctx context.Context) error {
	if err := r.renew(ctx); err != nil {
		return err
	}
	return r.refresh(ctx)
}

// Run renews the Lease three times an interval and re-reads the ring four
// times an interval until ctx ends; then it deletes the Lease, so that the others
// take over this member's nodes at once.
func (r *Ring) Run(ctx context.Context) error {
	renew := time.NewTicker(r.o.Interval / 3)
	defer renew.Stop()
	look := time.NewTicker(r.o.Interval / 4)
	defer look.Stop()
	for {
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			err := r.o.Client.CoordinationV1().Leases(r.o.Namespace).Delete(dctx, r.leaseName(r.o.Identity), metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				r.o.Logger.Warn("shard: deleting this member's Lease", "err", err)
			}
			return nil
		case <-renew.C:
			if err := r.renew(ctx); err != nil && ctx.Err() == nil {
				r.o.Logger.Warn("shard: renewing this member's Lease", "err", err)
			}
		case <-look.C:
			if err := r.refresh(ctx); err != nil && ctx.Err() == nil {
				r.o.Logger.Warn("shard: reading the ring's Leases", "err", err)
			}
		}
	}
}

// renew creates or updates this member's Lease.
func (r *Ring) renew(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			r.renewals.WithLabelValues("error").Inc()
			err = fmt.Errorf("shard: Lease %s/%s: %w", r.o.Namespace, r.leaseName(r.o.Identity), err)
		} else {
			r.renewals.WithLabelValues("ok").Inc()
		}
	}()
	leases := r.o.Client.CoordinationV1().Leases(r.o.Namespace)
	now := metav1.NewMicroTime(r.o.Now())
	secs := int32(max(1, (r.leaseDuration()+time.Second-1)/time.Second))
	l, err := leases.Get(ctx, r.leaseName(r.o.Identity), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: r.leaseName(r.o.Identity), Namespace: r.o.Namespace, Labels: map[string]string{RingLabel: r.o.Ring}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(r.o.Identity), LeaseDurationSeconds: ptr.To(secs),
				AcquireTime: &now, RenewTime: &now},
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	l.Spec.HolderIdentity = ptr.To(r.o.Identity)
	l.Spec.LeaseDurationSeconds = ptr.To(secs)
	l.Spec.RenewTime = &now
	if l.Labels == nil {
		l.Labels = map[string]string{}
	}
	l.Labels[RingLabel] = r.o.Ring
	_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	return err
}

// refresh lists the ring's Leases and keeps the live members: a Lease
// renewed within its duration. This member stays in its own view even
// when its Lease could not be renewed: it goes on scraping its share
// rather than nothing.
func (r *Ring) refresh(ctx context.Context) error {
	list, err := r.o.Client.CoordinationV1().Leases(r.o.Namespace).List(ctx, metav1.ListOptions{LabelSelector: RingLabel + "=" + r.o.Ring})
	if err != nil {
		return err
	}
	now := r.o.Now()
	live := []string{r.o.Identity}
	for _, l := range list.Items {
		s := l.Spec
		if s.HolderIdentity == nil || *s.HolderIdentity == r.o.Identity || s.RenewTime == nil || s.LeaseDurationSeconds == nil {
			continue
		}
		expires := s.RenewTime.Add(time.Duration(*s.LeaseDurationSeconds) * time.Second)
		if now.Sub(expires) > StaleLease {
			r.deleteStale(ctx, l.Name, l.ResourceVersion, *s.HolderIdentity, expires)
			continue
		}
		if now.Before(expires) {
			live = append(live, *s.HolderIdentity)
		}
	}
	slices.Sort(live)
	live = slices.Compact(live)
	r.mu.Lock()
	changed := !slices.Equal(live, r.members)
	r.members = live
	f := r.onChange
	r.mu.Unlock()
	if changed {
		r.changes.Inc()
		r.membersGauge.Set(float64(len(live)))
		r.o.Logger.Info("shard: ring changed", "members", live)
		if f != nil {
			f()
		}
	}
	return nil
}

// StaleLease is how long after it expired a member's Lease is deleted by
// the others: a member that died without stopping (a SIGKILL, its node
// lost) leaves its Lease behind, and pods of a Deployment do not come back
// under the same name. A member that returns after longer makes a new one.
const StaleLease = 10 * time.Minute

// deleteStale deletes the expired Lease name, unless it was renewed since
// it was listed (its resourceVersion); another member deleting it first is
// no error.
func (r *Ring) deleteStale(ctx context.Context, name, version, holder string, expired time.Time) {
	err := r.o.Client.CoordinationV1().Leases(r.o.Namespace).Delete(ctx, name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{ResourceVersion: &version}})
	switch {
	case err == nil:
		r.o.Logger.Info("shard: deleted the Lease of a member gone for good", "lease", name, "holder", holder, "expired", expired.UTC())
	case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
	default:
		r.o.Logger.Warn("shard: deleting a stale Lease", "lease", name, "err", err)
	}
}

// Members returns the live members, sorted.
func (r *Ring) Members() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.members)
}

// Owners returns the members that scrape node: the ReplicationFactor
// members of highest rendezvous weight, highest first.
func Owners(members []string, node string, rf int) []string {
	type scored struct {
		m string
		w uint64
	}
	s := make([]scored, len(members))
	for i, m := range members {
		s[i] = scored{m, weight(m, node)}
	}
	slices.SortFunc(s, func(a, b scored) int {
		switch {
		case a.w > b.w:
			return -1
		case a.w < b.w:
			return 1
		}
		return cmp.Compare(a.m, b.m)
	})
	out := make([]string, 0, min(rf, len(s)))
	for _, x := range s[:min(rf, len(s))] {
		out = append(out, x.m)
	}
	return out
}

// weight is member m's rendezvous weight for node n.
func weight(m, n string) uint64 {
	d := xxhash.New()
	_, _ = d.WriteString(m)
	_, _ = d.Write([]byte{0})
	_, _ = d.WriteString(n)
	return d.Sum64()
}

// Filter returns the targets of all that this member owns: what it
// scrapes. The scrape manager calls it every interval.
func (r *Ring) Filter(all func() []model.Target) func() []model.Target {
	return func() []model.Target {
		members := r.Members()
		var out []model.Target
		for _, t := range all() {
			if slices.Contains(Owners(members, t.Node, r.o.ReplicationFactor), r.o.Identity) {
				out = append(out, t)
			}
		}
		r.ownedGauge.Set(float64(len(out)))
		return out
	}
}
