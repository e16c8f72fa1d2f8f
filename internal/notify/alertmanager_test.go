package notify

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/kubemon/kubemon/internal/testutil/amserver"
)

// TestRealAlertmanager: a firing alert reaches a real Alertmanager (API
// v2) with its labels, the external labels and annotations, and its
// resolution ends it there at once (not when its endsAt would have passed).
func TestRealAlertmanager(t *testing.T) {
	am := amserver.Start(t)
	n, err := New(Options{Alertmanagers: []string{am.URL()}, ExternalLabels: labels.FromStrings("cluster", "test")})
	if err != nil {
		t.Fatal(err)
	}
	start(t, n)
	a := firing("RealAM", "severity", "warning")
	var got []amserver.Alert
	waitUntil(t, 30*time.Second, "the alert at Alertmanager", func() bool {
		n.Notify(context.Background(), "vector(1)", a) // as the rule manager resends
		if got, err = am.Alerts(); err != nil {
			t.Fatal(err)
		}
		return len(got) > 0
	})
	if len(got) != 1 {
		t.Fatalf("%d alerts at Alertmanager, want 1: %+v", len(got), got)
	}
	g := got[0]
	if g.Labels["alertname"] != "RealAM" || g.Labels["severity"] != "warning" || g.Labels["cluster"] != "test" ||
		g.Annotations["summary"] != "RealAM fires" || g.Status.State != "active" || g.StartsAt.Sub(a.FiredAt).Abs() > time.Millisecond {
		t.Fatalf("alert at Alertmanager %+v", g)
	}
	n.Notify(context.Background(), "vector(1)", resolved(a))
	waitUntil(t, 30*time.Second, "the alert resolved at Alertmanager", func() bool {
		got, err := am.Alerts()
		if err != nil {
			t.Fatal(err)
		}
		return len(got) == 0
	})
	// Its endsAt while firing was minutes away: only the resolution ended it.
	if time.Until(a.ValidUntil) < time.Minute {
		t.Fatalf("the alert's endsAt while firing is %v, too close to tell a resolution from an expiry", a.ValidUntil)
	}
}
