package shard

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubemon/kubemon/internal/model"
)

func nodes(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("sim-node-%04d", i+1)
	}
	return out
}

func TestOwnersReplicationAndBalance(t *testing.T) {
	members := []string{"kubemon-0", "kubemon-1", "kubemon-2"}
	count := map[string]int{}
	ns := nodes(300)
	for _, n := range ns {
		o := Owners(members, n, 2)
		if len(o) != 2 || o[0] == o[1] {
			t.Fatalf("node %s: owners %v, want two different members", n, o)
		}
		if !slices.Equal(o, Owners([]string{"kubemon-2", "kubemon-0", "kubemon-1"}, n, 2)) {
			t.Fatalf("node %s: owners depend on the members' order", n)
		}
		for _, m := range o {
			count[m]++
		}
	}
	// 600 assignments over three members: 200 each, give or take.
	for _, m := range members {
		if !(math.Abs(float64(count[m])-200) <= 30) {
			t.Errorf("%s scrapes %d nodes, want about 200 (%v)", m, count[m], count)
		}
	}
	if o := Owners(members[:1], ns[0], 2); !slices.Equal(o, members[:1]) {
		t.Errorf("one member: owners %v, want it alone", o)
	}
}

// TestJoinMovesAQuarter: a fourth member takes about a quarter of the
// scrapes (assignments node → member); no other scrape moves.
func TestJoinMovesAQuarter(t *testing.T) {
	three := []string{"kubemon-0", "kubemon-1", "kubemon-2"}
	four := append(slices.Clone(three), "kubemon-3")
	ns := nodes(300)
	moved, total := 0, 0
	for _, n := range ns {
		before, after := Owners(three, n, 2), Owners(four, n, 2)
		for _, m := range after {
			total++
			if !slices.Contains(before, m) {
				moved++
				if m != "kubemon-3" {
					t.Errorf("node %s: %s gained it, but only the new member should", n, m)
				}
			}
		}
	}
	frac := float64(moved) / float64(total)
	t.Logf("%d of %d scrapes moved (%.1f %%)", moved, total, 100*frac)
	if !(math.Abs(frac-0.25) <= 0.05) {
		t.Errorf("%.1f %% of the scrapes moved to the fourth member, want about 25 %%", 100*frac)
	}
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestRingLeases(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	clk := &clock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	const interval = 10 * time.Second
	var rings []*Ring
	for i := range 3 {
		r, err := New(Options{Client: client, Namespace: "monitoring", Identity: fmt.Sprintf("kubemon-%d", i), Interval: interval, Now: clk.now,
			Registerer: prometheus.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		rings = append(rings, r)
	}
	for _, r := range rings {
		if err := r.refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if got := r.Members(); !slices.Equal(got, []string{"kubemon-0", "kubemon-1", "kubemon-2"}) {
			t.Fatalf("%s sees %v", r.o.Identity, got)
		}
	}
	l, err := client.CoordinationV1().Leases("monitoring").Get(ctx, "kubemon-kubemon-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *l.Spec.HolderIdentity != "kubemon-1" || *l.Spec.LeaseDurationSeconds != 10 || l.Labels[RingLabel] != "kubemon" {
		t.Errorf("lease %+v", l)
	}

	var targets []model.Target
	for _, n := range nodes(300) {
		targets = append(targets, model.Target{Node: n})
	}
	all := func() []model.Target { return targets }
	scrapers := func(rs []*Ring) map[string]int {
		c := map[string]int{}
		for _, r := range rs {
			for _, tg := range r.Filter(all)() {
				c[tg.Node]++
			}
		}
		return c
	}
	check := func(rs []*Ring, what string) {
		t.Helper()
		c := scrapers(rs)
		if len(c) != len(targets) {
			t.Errorf("%s: %d of %d nodes scraped", what, len(c), len(targets))
		}
		for n, k := range c {
			if k != 2 {
				t.Errorf("%s: node %s scraped by %d members, want 2", what, n, k)
				break
			}
		}
	}
	check(rings, "three members")

	// kubemon-2 dies: its Lease is no longer renewed. An interval later
	// the others drop it and take its nodes.
	live := rings[:2]
	changed := 0
	live[0].OnChange(func() { changed++ })
	clk.add(interval / 2)
	for _, r := range live {
		if err := r.renew(ctx); err != nil {
			t.Fatal(err)
		}
	}
	clk.add(interval/2 + time.Second)
	for _, r := range live {
		if err := r.refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if got := r.Members(); !slices.Equal(got, []string{"kubemon-0", "kubemon-1"}) {
			t.Fatalf("%s sees %v after kubemon-2 stopped renewing", r.o.Identity, got)
		}
	}
	check(live, "after kubemon-2 died")
	if changed != 1 {
		t.Errorf("OnChange called %d times, want once", changed)
	}
	if got := testutil.ToFloat64(rings[0].membersGauge); got != 2 {
		t.Errorf("kubemon_shard_members = %v, want 2", got)
	}
	if got := testutil.ToFloat64(rings[0].ownedGauge); got != 300 {
		t.Errorf("kubemon_shard_nodes = %v, want 300 (two members, replication factor 2)", got)
	}

	// kubemon-1 stops cleanly: Run deletes its Lease on the way out.
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- rings[1].Run(runCtx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoordinationV1().Leases("monitoring").Get(ctx, "kubemon-kubemon-1", metav1.GetOptions{}); err == nil {
		t.Error("kubemon-1's Lease is still there after Run returned")
	}
	if err := rings[0].refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rings[0].Members(); !slices.Equal(got, []string{"kubemon-0"}) {
		t.Errorf("kubemon-0 sees %v after kubemon-1 left", got)
	}

	// kubemon-2's Lease, left behind by its death, is deleted once it has
	// been expired for StaleLease; kubemon-0's own stays.
	leases := func() []string {
		list, err := client.CoordinationV1().Leases("monitoring").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, l := range list.Items {
			names = append(names, l.Name)
		}
		slices.Sort(names)
		return names
	}
	if got := leases(); !slices.Equal(got, []string{"kubemon-kubemon-0", "kubemon-kubemon-2"}) {
		t.Fatalf("Leases %v before the stale one's time", got)
	}
	clk.add(StaleLease)
	if err := rings[0].renew(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rings[0].refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := leases(); !slices.Equal(got, []string{"kubemon-kubemon-0"}) {
		t.Errorf("Leases %v after kubemon-2's was expired for %s, want kubemon-0's alone", got, StaleLease)
	}
}

func TestOptions(t *testing.T) {
	client := fake.NewClientset()
	for _, o := range []Options{
		{Namespace: "m", Identity: "a", Interval: time.Second},
		{Client: client, Identity: "a", Interval: time.Second},
		{Client: client, Namespace: "m", Interval: time.Second},
		{Client: client, Namespace: "m", Identity: "a"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v): no error", o)
		}
	}
}
