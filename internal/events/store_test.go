package events

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// ev builds a legacy (core/v1 recorder) event about a Pod.
func ev(uid, ns, pod, reason, typ string, last time.Time, count int32) *corev1.Event {
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: pod + "." + uid, Namespace: ns, UID: types.UID(uid), ResourceVersion: fmt.Sprint(count)},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: pod, UID: types.UID("pod-" + ns + "-" + pod), APIVersion: "v1"},
		Reason:         reason, Type: typ, Message: reason + " " + pod, Count: count,
		FirstTimestamp: metav1.NewTime(last.Add(-time.Duration(count-1) * time.Minute)), LastTimestamp: metav1.NewTime(last),
		Source: corev1.EventSource{Component: "kubelet", Host: "node-1"},
	}
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func open(t *testing.T, dir string, o Options) *Store {
	t.Helper()
	o.Dir = dir
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func put(t *testing.T, s *Store, evs ...*corev1.Event) int {
	t.Helper()
	n, err := s.Put(context.Background(), evs)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func uids(t *testing.T, s *Store, q Query) []string {
	t.Helper()
	if q.Limit == 0 {
		q.Limit = 1000
	}
	r, err := s.Query(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(r.Events))
	for i, e := range r.Events {
		out[i] = string(e.Event.UID)
	}
	return out
}

func TestQueryFilters(t *testing.T) {
	c := &clock{t0.Add(time.Hour)}
	s := open(t, t.TempDir(), Options{Now: c.now})
	all := []*corev1.Event{
		ev("a", "team-a", "web-0", "Scheduled", "Normal", t0, 1),
		ev("b", "team-a", "web-0", "BackOff", "Warning", t0.Add(time.Minute), 3),
		ev("c", "team-a", "web-1", "Started", "Normal", t0.Add(2*time.Minute), 1),
		ev("d", "team-b", "web-0", "Started", "Normal", t0.Add(3*time.Minute), 1),
		ev("e", "team-b", "db-0", "BackOff", "Warning", t0.Add(4*time.Minute), 1),
	}
	node := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "node-1.f", Namespace: "default", UID: "f"},
		InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: "node-1", UID: "node-1"},
		Reason:         "NodeReady", Type: "Normal", LastTimestamp: metav1.NewTime(t0.Add(5 * time.Minute)),
	}
	all = append(all, node)
	if n := put(t, s, all...); n != len(all) {
		t.Fatalf("Put stored %d, want %d", n, len(all))
	}
	if s.Len() != len(all) {
		t.Fatalf("Len %d, want %d", s.Len(), len(all))
	}
	for _, tc := range []struct {
		q    Query
		want []string // newest first
	}{
		{Query{}, []string{"f", "e", "d", "c", "b", "a"}},
		{Query{Namespace: "team-a"}, []string{"c", "b", "a"}},
		{Query{Kind: "Pod", Name: "web-0"}, []string{"d", "b", "a"}},
		{Query{Namespace: "team-a", Kind: "Pod", Name: "web-0"}, []string{"b", "a"}},
		{Query{Name: "web-0", Reason: "Started"}, []string{"d"}},
		{Query{UID: "pod-team-b-web-0"}, []string{"d"}},
		{Query{Kind: "Node"}, []string{"f"}},
		{Query{Kind: "Node", Name: "node-1", Namespace: "default"}, []string{"f"}},
		{Query{Reason: "BackOff"}, []string{"e", "b"}},
		{Query{Type: "Warning", Namespace: "team-b"}, []string{"e"}},
		{Query{Type: "Normal"}, []string{"f", "d", "c", "a"}},
		{Query{Start: t0.Add(time.Minute), End: t0.Add(3 * time.Minute)}, []string{"d", "c", "b"}},
		{Query{Namespace: "team-a", Start: t0.Add(30 * time.Second)}, []string{"c", "b"}},
		{Query{Reason: "BackOff", End: t0.Add(time.Minute)}, []string{"b"}},
		{Query{Namespace: "team-c"}, []string{}},
		{Query{Kind: "Po"}, []string{}},
		{Query{Reason: "Back"}, []string{}},
	} {
		if got := uids(t, s, tc.q); !slices.Equal(got, tc.want) {
			t.Errorf("%+v: got %v, want %v", tc.q, got, tc.want)
		}
	}
	// Limit keeps the newest and says more matched.
	r, err := s.Query(context.Background(), Query{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Events) != 2 || !r.Truncated || r.Events[0].Event.UID != "f" || r.Events[1].Event.UID != "e" {
		t.Errorf("limit 2: %d events, truncated %v", len(r.Events), r.Truncated)
	}
	if r, _ := s.Query(context.Background(), Query{Limit: 6}); r.Truncated || len(r.Events) != 6 {
		t.Errorf("limit 6 of 6: %d events, truncated %v", len(r.Events), r.Truncated)
	}
	// A byte cap on the answer keeps its memory bounded, and says so.
	if r, _ := s.Query(context.Background(), Query{Limit: 6, MaxBytes: 1}); len(r.Events) != 1 || !r.Truncated || !r.SizeCapped {
		t.Errorf("MaxBytes 1: %d events, truncated %v, size capped %v", len(r.Events), r.Truncated, r.SizeCapped)
	}
	if !r.Events[0].Time.Equal(t0.Add(5 * time.Minute)) {
		t.Errorf("time %v", r.Events[0].Time)
	}
	if _, err := s.Query(context.Background(), Query{Start: t0, End: t0.Add(-time.Second), Limit: 1}); err == nil {
		t.Error("end before start: no error")
	}
	if _, err := s.Query(context.Background(), Query{}); err == nil {
		t.Error("limit 0: no error")
	}
}

// Index prefixes are length-prefixed: kind "a" + name "bc" is not kind
// "ab" + name "c".
func TestIndexPrefixesDoNotOverlap(t *testing.T) {
	s := open(t, t.TempDir(), Options{Now: (&clock{t0}).now})
	e1 := ev("1", "ns", "bc", "R", "Normal", t0, 1)
	e1.InvolvedObject.Kind = "a"
	e2 := ev("2", "ns", "c", "R", "Normal", t0, 1)
	e2.InvolvedObject.Kind = "ab"
	put(t, s, e1, e2)
	if got := uids(t, s, Query{Kind: "a", Name: "bc"}); !slices.Equal(got, []string{"1"}) {
		t.Errorf("a/bc: %v", got)
	}
	if got := uids(t, s, Query{Kind: "ab", Name: "c"}); !slices.Equal(got, []string{"2"}) {
		t.Errorf("ab/c: %v", got)
	}
}

func TestUpdateByUID(t *testing.T) {
	c := &clock{t0.Add(time.Hour)}
	reg := prometheus.NewRegistry()
	s := open(t, t.TempDir(), Options{Now: c.now, Registerer: reg})
	put(t, s, ev("x", "ns", "p", "BackOff", "Warning", t0, 1), ev("y", "ns", "q", "Started", "Normal", t0.Add(time.Second), 1))
	bytes1 := s.Bytes()
	seq1 := s.LastSeq()
	// The same UID, its count increased and its last time later: replaced.
	if n := put(t, s, ev("x", "ns", "p", "BackOff", "Warning", t0.Add(5*time.Minute), 4)); n != 1 {
		t.Fatalf("update stored %d, want 1", n)
	}
	if s.Len() != 2 {
		t.Fatalf("Len %d after an update, want 2", s.Len())
	}
	r, _ := s.Query(context.Background(), Query{Kind: "Pod", Name: "p", Limit: 10})
	if len(r.Events) != 1 || r.Events[0].Event.Count != 4 || !r.Events[0].Time.Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("after update: %+v", r.Events)
	}
	// The old time no longer finds it; every index moved.
	if got := uids(t, s, Query{Reason: "BackOff", End: t0.Add(time.Minute)}); len(got) != 0 {
		t.Errorf("old version still indexed: %v", got)
	}
	if got := uids(t, s, Query{Reason: "BackOff"}); !slices.Equal(got, []string{"x"}) {
		t.Errorf("reason index: %v", got)
	}
	if s.LastSeq() != seq1+1 {
		t.Errorf("seq %d, want %d", s.LastSeq(), seq1+1)
	}
	// An older version (a relist racing a watch) does not replace it, and
	// the same version again writes nothing.
	if n := put(t, s, ev("x", "ns", "p", "BackOff", "Warning", t0.Add(2*time.Minute), 2)); n != 0 {
		t.Errorf("older version stored (%d)", n)
	}
	if n := put(t, s, ev("x", "ns", "p", "BackOff", "Warning", t0.Add(5*time.Minute), 4)); n != 0 {
		t.Errorf("unchanged version stored (%d)", n)
	}
	if s.LastSeq() != seq1+1 {
		t.Errorf("seq moved to %d without a write", s.LastSeq())
	}
	// Bytes: the updated record is as large as before, give or take the
	// digits that changed.
	if d := s.Bytes() - bytes1; d < -8 || d > 8 {
		t.Errorf("bytes %d → %d after replacing a record", bytes1, s.Bytes())
	}
	if v := testutil.ToFloat64(s.m.updated); v != 1 {
		t.Errorf("updated_total %v, want 1", v)
	}
	if v := testutil.ToFloat64(s.m.added); v != 2 {
		t.Errorf("added_total %v, want 2", v)
	}
	// The sequence has each event once, at its latest write.
	ls, err := s.After(context.Background(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 2 || ls[0].Event.UID != "y" || ls[1].Event.UID != "x" || ls[1].Event.Count != 4 || ls[1].Seq != seq1+1 {
		t.Fatalf("After(0): %+v", ls)
	}
	if ls, _ := s.After(context.Background(), seq1, 10); len(ls) != 1 || ls[0].Event.UID != "x" {
		t.Fatalf("After(%d): %+v", seq1, ls)
	}
}

func TestRetention(t *testing.T) {
	c := &clock{t0}
	reg := prometheus.NewRegistry()
	s := open(t, t.TempDir(), Options{Now: c.now, Retention: 2 * time.Hour, Registerer: reg})
	var evs []*corev1.Event
	const n = 5000 // more than one expiry transaction
	for i := range n {
		evs = append(evs, ev(fmt.Sprint(i), "ns", fmt.Sprintf("p%d", i%7), "Started", "Normal", t0.Add(time.Duration(i)*time.Second), 1))
	}
	c.t = t0.Add(2*time.Hour + 1000*time.Second) // the first 1000 are older than 2 h
	put(t, s, evs...)
	got, err := s.Expire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got != 1000 || s.Len() != n-1000 {
		t.Fatalf("expired %d, %d left; want 1000, %d", got, s.Len(), n-1000)
	}
	if o, ok := s.Oldest(); !ok || !o.Equal(t0.Add(1000*time.Second)) {
		t.Errorf("oldest %v", o)
	}
	if got := uids(t, s, Query{Kind: "Pod", Name: "p0", End: t0.Add(999 * time.Second)}); len(got) != 0 {
		t.Errorf("expired events still indexed: %v", got)
	}
	if v := testutil.ToFloat64(s.m.expired); v != 1000 {
		t.Errorf("expired_total %v", v)
	}
	c.t = t0.Add(10 * time.Hour)
	if got, err := s.Expire(context.Background()); err != nil || got != n-1000 {
		t.Fatalf("second expiry: %d, %v", got, err)
	}
	if s.Len() != 0 || s.Bytes() != 0 {
		t.Errorf("empty store: %d events, %d bytes counted", s.Len(), s.Bytes())
	}
}

func TestSizeCap(t *testing.T) {
	c := &clock{t0.Add(24 * time.Hour)}
	s := open(t, t.TempDir(), Options{Now: c.now, MaxBytes: MinMaxBytes})
	// Put events (out of time order) until well past the cap; each write
	// must leave the store under it, dropping the oldest first.
	i := 0
	var size int64
	for s.m.dropped == nil || testutil.ToFloat64(s.m.dropped) < 2000 {
		var batch []*corev1.Event
		for range 100 {
			// Times go up, with every tenth event an hour older.
			tm := t0.Add(time.Duration(i) * time.Second)
			if i%10 == 0 {
				tm = tm.Add(-time.Hour)
			}
			e := ev(fmt.Sprint(i), "ns", "pod", "Started", "Normal", tm, 1)
			e.Message = strings.Repeat("m", 300)
			batch = append(batch, e)
			i++
		}
		put(t, s, batch...)
		if s.Bytes() > MinMaxBytes {
			t.Fatalf("after %d events: %d bytes counted, over the cap", i, s.Bytes())
		}
		size = s.Bytes()
	}
	dropped := int(testutil.ToFloat64(s.m.dropped))
	if s.Len()+dropped != i {
		t.Fatalf("%d stored + %d dropped != %d put", s.Len(), dropped, i)
	}
	if size < MinMaxBytes*8/10 {
		t.Errorf("only %d bytes kept of a %d cap", size, MinMaxBytes)
	}
	// What is left is the newest: every kept event is newer than every
	// dropped one.
	r, err := s.Query(context.Background(), Query{Limit: i})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Events) != s.Len() {
		t.Fatalf("query found %d of %d", len(r.Events), s.Len())
	}
	oldestKept := r.Events[len(r.Events)-1].Time
	kept := map[string]bool{}
	for _, e := range r.Events {
		kept[string(e.Event.UID)] = true
	}
	for j := range i {
		tm := t0.Add(time.Duration(j) * time.Second)
		if j%10 == 0 {
			tm = tm.Add(-time.Hour)
		}
		if !kept[fmt.Sprint(j)] && !tm.Before(oldestKept) {
			t.Fatalf("event %d (%v) dropped though not older than the oldest kept (%v)", j, tm, oldestKept)
		}
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t0.Add(time.Hour)}
	s, err := Open(Options{Dir: dir, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, ev("a", "ns", "p", "Pulled", "Normal", t0, 1), ev("b", "ns", "p", "Started", "Normal", t0.Add(time.Second), 1))
	put(t, s, ev("a", "ns", "p", "Pulled", "Normal", t0.Add(time.Minute), 2))
	id, seq, bytes, n := s.ID(), s.LastSeq(), s.Bytes(), s.Len()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, Options{Now: c.now})
	if s.ID() != id || s.LastSeq() != seq || s.Bytes() != bytes || s.Len() != n {
		t.Fatalf("reopened: id %s seq %d bytes %d len %d; was %s %d %d %d", s.ID(), s.LastSeq(), s.Bytes(), s.Len(), id, seq, bytes, n)
	}
	if got := uids(t, s, Query{Kind: "Pod", Name: "p"}); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("after reopen: %v", got)
	}
	// Updates after a reopen still replace.
	put(t, s, ev("b", "ns", "p", "Started", "Normal", t0.Add(2*time.Minute), 2))
	if s.Len() != 2 || s.LastSeq() != seq+1 {
		t.Errorf("len %d seq %d", s.Len(), s.LastSeq())
	}
	// A new directory is a new store: another ID.
	if other := open(t, t.TempDir(), Options{}); other.ID() == id || other.ID() == "" {
		t.Errorf("new store's ID %q (old %q)", other.ID(), id)
	}
}

func TestPutBounds(t *testing.T) {
	c := &clock{t0}
	reg := prometheus.NewRegistry()
	s := open(t, t.TempDir(), Options{Now: c.now, Registerer: reg})
	long := ev("long", "ns", "p", "Failed", "Warning", t0, 1)
	long.Message = strings.Repeat("é", MaxMessageBytes) // 2 bytes each
	long.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubelet", Operation: "Update"}}
	huge := ev("huge", "ns", "p", "Failed", "Warning", t0, 1)
	huge.Annotations = map[string]string{"a": strings.Repeat("x", 2*MaxRecordBytes)}
	hopeless := ev("hopeless", "ns", strings.Repeat("p", 2*MaxRecordBytes), "Failed", "Warning", t0, 1)
	noUID := ev("", "ns", "p", "Failed", "Warning", t0, 1)
	future := ev("future", "ns", "p", "Started", "Normal", t0.Add(48*time.Hour), 1)
	timeless := ev("timeless", "ns", "p", "Started", "Normal", time.Time{}, 1)
	timeless.FirstTimestamp = metav1.Time{}
	if n := put(t, s, long, huge, hopeless, noUID, future, timeless); n != 4 {
		t.Fatalf("stored %d, want 4", n)
	}
	if v := testutil.ToFloat64(s.m.rejected); v != 2 {
		t.Errorf("rejected_total %v, want 2", v)
	}
	byUID := map[string]Logged{}
	r, _ := s.Query(context.Background(), Query{Limit: 10})
	for _, e := range r.Events {
		byUID[string(e.Event.UID)] = e
	}
	m := byUID["long"].Event.Message
	if len(m) > MaxMessageBytes || !strings.HasSuffix(m, "…") || !strings.HasPrefix(m, "éé") || strings.ContainsRune(m, '\uFFFD') {
		t.Errorf("cut message: %d bytes, ends %q", len(m), m[len(m)-8:])
	}
	if byUID["long"].Event.ManagedFields != nil {
		t.Error("managed fields kept")
	}
	if h := byUID["huge"].Event; h == nil || h.Annotations != nil || h.Reason != "Failed" {
		t.Errorf("huge event: %+v", h)
	}
	// Times far ahead, or none, are filed at the receive time.
	if e := byUID["future"]; !e.Time.Equal(t0) || !Time(e.Event).Equal(t0.Add(48*time.Hour)) {
		t.Errorf("future event filed at %v", e.Time)
	}
	if e := byUID["timeless"]; !e.Time.Equal(t0) {
		t.Errorf("timeless event filed at %v", e.Time)
	}
}

// Events written through the events.k8s.io API (the scheduler's) have
// eventTime and a series instead of lastTimestamp and count.
func TestNewStyleEvents(t *testing.T) {
	e := &corev1.Event{
		ObjectMeta:          metav1.ObjectMeta{UID: "s", Namespace: "ns"},
		EventTime:           metav1.NewMicroTime(t0),
		Series:              &corev1.EventSeries{Count: 5, LastObservedTime: metav1.NewMicroTime(t0.Add(time.Minute))},
		ReportingController: "kubelet", ReportingInstance: "node-9",
	}
	if got := Time(e); !got.Equal(t0.Add(time.Minute)) {
		t.Errorf("Time %v", got)
	}
	if got := FirstTime(e); !got.Equal(t0) {
		t.Errorf("FirstTime %v", got)
	}
	if Count(e) != 5 || Node(e) != "node-9" || Controller(e) != "kubelet" {
		t.Errorf("count %d node %q controller %q", Count(e), Node(e), Controller(e))
	}
	e.Series = nil
	if Count(e) != 1 || !Time(e).Equal(t0) {
		t.Errorf("without series: count %d, time %v", Count(e), Time(e))
	}
}
