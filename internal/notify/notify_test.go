package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	promrules "github.com/prometheus/prometheus/rules"
)

// receiver is an HTTP server recording the bodies POSTed to it; answer
// decides each request's status (by its 1-based number).
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	n      int
	bodies [][]byte
	paths  []string
	auth   []string
	answer func(n int) int
	block  chan struct{} // when set, requests wait for it to close
}

func newReceiver(t *testing.T, answer func(n int) int) *receiver {
	r := &receiver{answer: answer}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.block != nil {
			select {
			case <-r.block:
			case <-req.Context().Done():
				return
			}
		}
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.n++
		n := r.n
		code := http.StatusOK
		if r.answer != nil {
			code = r.answer(n)
		}
		if code/100 == 2 {
			r.bodies = append(r.bodies, b)
			r.paths = append(r.paths, req.URL.Path)
			u, p, _ := req.BasicAuth()
			r.auth = append(r.auth, u+":"+p)
		}
		r.mu.Unlock()
		w.WriteHeader(code)
		_, _ = io.WriteString(w, http.StatusText(code))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) received() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...)
}

func (r *receiver) requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

func waitUntil(t *testing.T, timeout time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// start runs n until the test ends.
func start(t *testing.T, n *Notifier) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = n.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10 s of its context's end")
		}
	})
}

// firing is an alert as the rule manager hands it over: fired at, valid for
// the next minutes.
func firing(name string, kv ...string) *promrules.Alert {
	now := time.Now()
	return &promrules.Alert{
		State:  promrules.StateFiring,
		Labels: labels.FromStrings(append([]string{labels.AlertName, name}, kv...)...), Annotations: labels.FromStrings("summary", name+" fires"),
		ActiveAt: now.Add(-time.Minute), FiredAt: now.Add(-time.Minute), LastSentAt: now, ValidUntil: now.Add(4 * time.Minute),
	}
}

func resolved(a *promrules.Alert) *promrules.Alert {
	r := *a
	r.State = promrules.StateInactive
	r.ResolvedAt = time.Now()
	return &r
}

func decode(t *testing.T, b []byte) WebhookMessage {
	t.Helper()
	var m WebhookMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return m
}

// TestWebhookRetries: a webhook answering 503 twice gets the notification
// on the third try, with backoff, and the counters say so.
func TestWebhookRetries(t *testing.T) {
	r := newReceiver(t, func(n int) int {
		if n <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	reg := prometheus.NewRegistry()
	n, err := New(Options{Webhooks: []string{r.srv.URL + "/hook"}, Registerer: reg, ExternalLabels: labels.FromStrings("cluster", "prod"),
		ExternalURL: "http://kubemon.example:8080/"})
	if err != nil {
		t.Fatal(err)
	}
	start(t, n)
	began := time.Now()
	n.Notify(context.Background(), `vector(1) > 0`, firing("Flag", "severity", "page"))
	waitUntil(t, 10*time.Second, "the notification", func() bool { return len(r.received()) == 1 })
	// Backoff 500 ms, then 1 s.
	if took := time.Since(began); took < 1500*time.Millisecond {
		t.Errorf("delivered after %s: the retries did not back off (500 ms, 1 s)", took)
	}
	m := decode(t, r.received()[0])
	if m.Version != "4" || m.Status != "firing" || m.Receiver != WebhookReceiver || m.GroupLabels[labels.AlertName] != "Flag" ||
		m.GroupKey != `{}:{alertname="Flag"}` || m.ExternalURL != "http://kubemon.example:8080/" || len(m.Alerts) != 1 {
		t.Fatalf("message %+v", m)
	}
	a := m.Alerts[0]
	if a.Status != "firing" || a.Labels["cluster"] != "prod" || a.Labels["severity"] != "page" || a.Annotations["summary"] != "Flag fires" ||
		a.Fingerprint == "" || a.StartsAt.IsZero() || !a.EndsAt.After(time.Now()) ||
		a.GeneratorURL != "http://kubemon.example:8080/api/v1/query?query=vector%281%29+%3E+0" {
		t.Fatalf("alert %+v", a)
	}
	if m.CommonLabels["cluster"] != "prod" || m.CommonAnnotations["summary"] != "Flag fires" {
		t.Errorf("common labels %v, annotations %v", m.CommonLabels, m.CommonAnnotations)
	}
	l := Redact(r.srv.URL + "/hook")
	if v := testutil.ToFloat64(n.hooks[0].m.retries.WithLabelValues(l)); v != 2 {
		t.Errorf("retries %v, want 2", v)
	}
	// Counted once the answer is back, just after the receiver has the body.
	waitUntil(t, 5*time.Second, "the alert counted sent", func() bool { return testutil.ToFloat64(n.hooks[0].m.sent.WithLabelValues(l)) == 1 })
}

// TestWebhookRefused: a 4xx other than 429 is not retried.
func TestWebhookRefused(t *testing.T) {
	r := newReceiver(t, func(int) int { return http.StatusBadRequest })
	n, err := New(Options{Webhooks: []string{r.srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	start(t, n)
	n.Notify(context.Background(), "x", firing("A"))
	h := n.hooks[0]
	waitUntil(t, 10*time.Second, "the failure counted", func() bool { return testutil.ToFloat64(h.m.failed.WithLabelValues(h.label)) == 1 })
	time.Sleep(700 * time.Millisecond)
	if c := r.requests(); c != 1 {
		t.Errorf("%d requests, want 1 (no retry of a 400)", c)
	}
}

// TestWebhookGivesUp: a webhook down for longer than RetryFor fails the
// notification.
func TestWebhookGivesUp(t *testing.T) {
	r := newReceiver(t, func(int) int { return http.StatusBadGateway })
	n, err := New(Options{Webhooks: []string{r.srv.URL}, RetryFor: 1200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start(t, n)
	n.Notify(context.Background(), "x", firing("A"))
	h := n.hooks[0]
	waitUntil(t, 10*time.Second, "the failure counted", func() bool { return testutil.ToFloat64(h.m.failed.WithLabelValues(h.label)) == 1 })
	if c := r.requests(); c < 2 || c > 3 {
		t.Errorf("%d requests within 1.2 s of retries, want 2 or 3", c)
	}
}

// TestWebhookStates: an alert is sent when it fires, not again while it
// fires (until RepeatInterval), and once when it resolves; an alert that
// expires without being refreshed is resolved.
func TestWebhookStates(t *testing.T) {
	r := newReceiver(t, nil)
	n, err := New(Options{Webhooks: []string{r.srv.URL}, RepeatInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	start(t, n)
	a, b := firing("A", "pod", "a"), firing("A", "pod", "b")
	n.Notify(context.Background(), "x", a, b)
	waitUntil(t, 10*time.Second, "the firing notification", func() bool { return len(r.received()) == 1 })
	if m := decode(t, r.received()[0]); len(m.Alerts) != 2 || m.CommonLabels["pod"] != "" || m.CommonLabels[labels.AlertName] != "A" {
		t.Fatalf("first message %+v", m)
	}
	n.Notify(context.Background(), "x", a, b) // resent by the rule manager: nothing new
	time.Sleep(100 * time.Millisecond)
	if got := len(r.received()); got != 1 {
		t.Fatalf("%d messages after the same alerts again, want 1", got)
	}
	time.Sleep(time.Second)
	n.Notify(context.Background(), "x", a, b) // past RepeatInterval
	waitUntil(t, 10*time.Second, "the repeated notification", func() bool { return len(r.received()) == 2 })

	n.Notify(context.Background(), "x", resolved(a), b)
	waitUntil(t, 10*time.Second, "the resolved notification", func() bool { return len(r.received()) == 3 })
	m := decode(t, r.received()[2])
	if m.Status != "resolved" || len(m.Alerts) != 1 || m.Alerts[0].Labels["pod"] != "a" || m.Alerts[0].Status != "resolved" {
		t.Fatalf("resolved message %+v", m)
	}
	n.Notify(context.Background(), "x", resolved(a)) // resent resolved: nothing new
	time.Sleep(100 * time.Millisecond)
	if got := len(r.received()); got != 3 {
		t.Fatalf("%d messages after a resolved alert again, want 3", got)
	}

	// b is not refreshed past its endsAt: its rule went away.
	h := n.hooks[0]
	h.mu.Lock()
	for fp, s := range h.sent {
		s.validUntil = time.Now().Add(-time.Second)
		h.sent[fp] = s
	}
	h.mu.Unlock()
	n.Notify(context.Background(), "y", firing("Other"))
	waitUntil(t, 10*time.Second, "b resolved", func() bool {
		for _, body := range r.received()[3:] {
			if m := decode(t, body); m.Status == "resolved" && len(m.Alerts) == 1 && m.Alerts[0].Labels["pod"] == "b" {
				return true
			}
		}
		return false
	})
}

// TestWebhookQueueBounded: while the webhook hangs, notifications beyond the
// queue's capacity drop the oldest, counted.
func TestWebhookQueueBounded(t *testing.T) {
	r := newReceiver(t, nil)
	r.block = make(chan struct{})
	n, err := New(Options{Webhooks: []string{r.srv.URL}, QueueCapacity: 2})
	if err != nil {
		t.Fatal(err)
	}
	start(t, n)
	h := n.hooks[0]
	n.Notify(context.Background(), "x", firing("A"))
	waitUntil(t, 5*time.Second, "A in flight", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.queue) == 0
	})
	for _, name := range []string{"B", "C", "D"} {
		n.Notify(context.Background(), "x", firing(name))
	}
	// A is in flight; B, C and D wait in a queue of 2: B is dropped.
	if v := testutil.ToFloat64(h.m.dropped.WithLabelValues(h.label)); v != 1 {
		t.Errorf("%v alerts dropped, want 1", v)
	}
	if v := testutil.ToFloat64(h.m.queue.WithLabelValues(h.label)); v != 2 {
		t.Errorf("queue length %v, want 2", v)
	}
	close(r.block)
	waitUntil(t, 10*time.Second, "3 deliveries", func() bool { return len(r.received()) == 3 })
	var names []string
	for _, b := range r.received() {
		names = append(names, decode(t, b).GroupLabels[labels.AlertName])
	}
	if got := strings.Join(names, ","); got != "A,C,D" {
		t.Errorf("delivered %s, want A (in flight), then the newest, C and D", got)
	}
}

// TestAlertmanager: alerts reach an Alertmanager's API v2 under its path
// prefix, with the external labels and basic auth from the URL, after a
// 503 is retried.
func TestAlertmanager(t *testing.T) {
	r := newReceiver(t, func(n int) int {
		if n == 1 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	u := strings.Replace(r.srv.URL, "http://", "http://am:secret@", 1) + "/am/"
	reg := prometheus.NewRegistry()
	n, err := New(Options{Alertmanagers: []string{u}, ExternalLabels: labels.FromStrings("cluster", "prod"), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	start(t, n)
	// Send until the Alertmanager is known to the notifier (Run hands it
	// over asynchronously), as the rule manager resends.
	waitUntil(t, 10*time.Second, "alerts at the Alertmanager", func() bool {
		n.Notify(context.Background(), "x", firing("Flag"))
		return len(r.received()) > 0
	})
	r.mu.Lock()
	path, auth := r.paths[0], r.auth[0]
	r.mu.Unlock()
	if path != "/am/api/v2/alerts" || auth != "am:secret" {
		t.Errorf("POST %s with basic auth %q, want /am/api/v2/alerts with am:secret", path, auth)
	}
	var got []struct {
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		StartsAt    time.Time         `json:"startsAt"`
		EndsAt      time.Time         `json:"endsAt"`
	}
	if err := json.Unmarshal(r.received()[0], &got); err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || got[0].Labels["alertname"] != "Flag" || got[0].Labels["cluster"] != "prod" || got[0].Annotations["summary"] != "Flag fires" || !got[0].EndsAt.After(got[0].StartsAt) {
		t.Fatalf("alerts %+v", got)
	}
	if r.requests() < 2 {
		t.Errorf("%d requests: the 503 was not retried", r.requests())
	}
	// Counted once the answer is back, just after the receiver has the body.
	waitUntil(t, 5*time.Second, "prometheus_notifications_sent_total at least 1", func() bool {
		var sent float64
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "prometheus_notifications_sent_total" {
				for _, m := range mf.GetMetric() {
					sent += m.GetCounter().GetValue()
				}
			}
		}
		return sent >= 1
	})
}

func TestBadURLs(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Alertmanagers: []string{"ftp://am:9093"}}, `alertmanager ftp://am:9093: scheme "ftp": want http or https`},
		{Options{Alertmanagers: []string{"http://"}}, "alertmanager http:: no host"},
		{Options{Webhooks: []string{"http://u:pw@hook/x?token=secret"}}, "alert webhook http://hook/x: want no query or fragment"},
		{Options{Webhooks: []string{"http://u:pw@ho st/"}}, "alert webhook <unparsable URL>: not a URL"},
	} {
		_, err := New(tc.o)
		if err == nil || err.Error() != tc.want {
			t.Errorf("New(%+v): %v, want %q", tc.o, err, tc.want)
		}
		if err != nil && (strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "pw")) {
			t.Errorf("error %q shows credentials", err)
		}
	}
}

// TestWebhookSplits: a rule with more changed alerts than a message holds
// is told in several messages, each of at most MaxWebhookAlerts.
func TestWebhookSplits(t *testing.T) {
	r := newReceiver(t, nil)
	n, err := New(Options{Webhooks: []string{r.srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	start(t, n)
	alerts := make([]*promrules.Alert, MaxWebhookAlerts+5)
	for i := range alerts {
		alerts[i] = firing("Many", "i", strconv.Itoa(i))
	}
	n.Notify(context.Background(), "x", alerts...)
	waitUntil(t, 10*time.Second, "two messages", func() bool { return len(r.received()) == 2 })
	seen := map[string]bool{}
	for i, b := range r.received() {
		m := decode(t, b)
		if want := []int{MaxWebhookAlerts, 5}[i]; len(m.Alerts) != want {
			t.Errorf("message %d: %d alerts, want %d", i, len(m.Alerts), want)
		}
		for _, a := range m.Alerts {
			seen[a.Labels["i"]] = true
		}
	}
	if len(seen) != len(alerts) {
		t.Errorf("%d distinct alerts delivered, want %d", len(seen), len(alerts))
	}
}
