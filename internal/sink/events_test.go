package sink

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubemon/kubemon/internal/events"
)

// storeLog is kubemon's event store as an EventLog (internal/app has the
// same adapter).
type storeLog struct{ *events.Store }

func (l storeLog) After(ctx context.Context, seq uint64, n int) ([]Event, error) {
	ls, err := l.Store.After(ctx, seq, n)
	out := make([]Event, len(ls))
	for i, e := range ls {
		out[i] = Event{Seq: e.Seq, Received: e.Received, Time: e.Time, Event: e.Event}
	}
	return out, err
}

// eventRecorder is an EventWriter that keeps what it accepted and fails
// while fail says so.
type eventRecorder struct {
	mu   sync.Mutex
	got  []string // "uid count"
	seqs []uint64
	fail func() error
}

func (r *eventRecorder) WriteEvents(_ context.Context, evs []Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		if err := r.fail(); err != nil {
			return err
		}
	}
	for _, e := range evs {
		r.got = append(r.got, fmt.Sprintf("%s %d", e.Event.UID, e.Event.Count))
		r.seqs = append(r.seqs, e.Seq)
	}
	return nil
}

func (r *eventRecorder) accepted() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func kev(uid string, count int32, at time.Time) *corev1.Event {
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "p." + uid, Namespace: "ns", UID: types.UID(uid)},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: "p"},
		Reason:         "Started", Type: "Normal", Count: count, LastTimestamp: metav1.NewTime(at),
	}
}

func putEvents(t *testing.T, st *events.Store, evs ...*corev1.Event) {
	t.Helper()
	if _, err := st.Put(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runExporter runs an exporter until the test ends (or stop is called).
func runExporter(t *testing.T, o EventOptions) (e *EventExporter, stop func()) {
	t.Helper()
	o.Interval, o.MinBackoff, o.MaxBackoff = 5*time.Millisecond, time.Millisecond, 4*time.Millisecond
	e, err := NewEventExporter(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return e, stop
}

func TestEventExporter(t *testing.T) {
	now := time.Now()
	st, err := events.Open(events.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dir := t.TempDir()
	// Stored before the sink existed: not sent (a new sink starts at the
	// present).
	putEvents(t, st, kev("old", 1, now.Add(-time.Minute)))

	w := &eventRecorder{}
	reg := prometheus.NewRegistry()
	e, stop := runExporter(t, EventOptions{Name: "influxdb", Writer: w, Log: storeLog{st}, Dir: dir, BatchSize: 2, Registerer: reg})
	putEvents(t, st, kev("a", 1, now), kev("b", 1, now), kev("c", 1, now))
	waitFor(t, "a, b and c sent", func() bool { return len(w.accepted()) == 3 })
	// An update is a new write: sent again, with its count.
	putEvents(t, st, kev("a", 2, now.Add(time.Second)))
	waitFor(t, "a's update sent", func() bool { return len(w.accepted()) == 4 })
	if got := w.accepted(); !slices.Equal(got, []string{"a 1", "b 1", "c 1", "a 2"}) {
		t.Fatalf("sent %v", got)
	}
	waitFor(t, "the position at the store's last write", func() bool { return e.Position() == st.LastSeq() })
	if v := testutil.ToFloat64(e.sent); v != 4 {
		t.Errorf("events_sent_total %v", v)
	}

	// The sink is down (retryable errors): nothing is lost, and what
	// failed is retried and counted.
	down := errors.New("connection refused")
	w.mu.Lock()
	w.fail = func() error { return Retryable(down, 0) }
	w.mu.Unlock()
	putEvents(t, st, kev("d", 1, now.Add(2*time.Second)))
	waitFor(t, "retries", func() bool { return testutil.ToFloat64(e.retried) >= 2 })
	if e.Position() == st.LastSeq() {
		t.Fatal("the position moved past an undelivered event")
	}
	if v := testutil.ToFloat64(e.lagGauge); v <= 0 {
		t.Errorf("lag %v while an event waits", v)
	}
	// kubemon stops while the sink is down, and more is stored meanwhile.
	stop()
	putEvents(t, st, kev("e", 1, now.Add(3*time.Second)))
	w.mu.Lock()
	w.fail = nil
	w.mu.Unlock()
	e2, _ := runExporter(t, EventOptions{Name: "influxdb", Writer: w, Log: storeLog{st}, Dir: dir, BatchSize: 2})
	waitFor(t, "d and e sent after the restart", func() bool { return e2.Position() == st.LastSeq() })
	if got := w.accepted(); !slices.Equal(got, []string{"a 1", "b 1", "c 1", "a 2", "d 1", "e 1"}) {
		t.Fatalf("after restart: sent %v (each once, in order)", got)
	}

	// A batch refused for good is dropped, counted, and passed over.
	w.mu.Lock()
	w.fail = func() error { return errors.New("400 Bad Request: field type conflict") }
	w.mu.Unlock()
	putEvents(t, st, kev("f", 1, now.Add(4*time.Second)))
	waitFor(t, "f passed over", func() bool { return e2.Position() == st.LastSeq() })
	if v := testutil.ToFloat64(e2.failed); v != 1 {
		t.Errorf("events_failed_total %v", v)
	}
}

// A position in another store's sequence (the events file was replaced)
// starts that store from its beginning.
func TestEventExporterNewLog(t *testing.T) {
	dir := t.TempDir()
	st1, err := events.Open(events.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	putEvents(t, st1, kev("x", 1, time.Now()), kev("y", 1, time.Now()))
	e, err := NewEventExporter(EventOptions{Name: "s", Writer: &eventRecorder{}, Log: storeLog{st1}, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if e.Position() != 2 {
		t.Fatalf("new sink at %d, want the present (2)", e.Position())
	}
	st1.Close()
	st2, err := events.Open(events.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	putEvents(t, st2, kev("z", 1, time.Now()))
	w := &eventRecorder{}
	runExporter(t, EventOptions{Name: "s", Writer: w, Log: storeLog{st2}, Dir: dir})
	waitFor(t, "z sent", func() bool { return slices.Equal(w.accepted(), []string{"z 1"}) })
}
