package influxdb

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubemon/kubemon/internal/sink"
	"github.com/kubemon/kubemon/internal/testutil/influxd"
)

var evTime = time.UnixMilli(t0).UTC()

// kubeletEvent is a kubelet's event about a container of a pod.
func kubeletEvent(uid, reason string, count int32, last time.Time) sink.Event {
	return sink.Event{Seq: 1, Time: last, Received: last, Event: &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0." + uid, Namespace: "shop", UID: types.UID(uid), ResourceVersion: "42"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: "web-0", UID: "3f0c9a54-pod",
			APIVersion: "v1", FieldPath: "spec.containers{nginx}"},
		Reason: reason, Message: `Back-off restarting failed container nginx in pod "web-0"`, Type: corev1.EventTypeWarning, Count: count,
		FirstTimestamp: metav1.NewTime(last.Add(-time.Minute)), LastTimestamp: metav1.NewTime(last),
		Source: corev1.EventSource{Component: "kubelet", Host: "node-1"},
	}}
}

// nodeEvent is a controller's event about a Node, in the events.k8s.io
// style (no source, no lastTimestamp).
func nodeEvent(last time.Time) sink.Event {
	return sink.Event{Seq: 2, Time: last, Received: last, Event: &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "node-1.n", Namespace: "default", UID: "n-1"},
		InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: "node-1", UID: "node-1-uid"},
		Reason:         "RegisteredNode", Message: "Node node-1 event: Registered Node node-1 in Controller", Type: corev1.EventTypeNormal,
		EventTime: metav1.NewMicroTime(last), ReportingController: "node-controller", ReportingInstance: "kcm",
	}}
}

// point is one decoded line.
type point struct {
	measurement string
	tags        map[string]string
	fields      map[string]string
	t           time.Time
}

func decodeLines(t *testing.T, lines []string) []point {
	t.Helper()
	var out []point
	dec := lineprotocol.NewDecoderWithBytes([]byte(strings.Join(lines, "\n") + "\n"))
	for dec.Next() {
		m, err := dec.Measurement()
		if err != nil {
			t.Fatal(err)
		}
		p := point{measurement: string(m), tags: map[string]string{}, fields: map[string]string{}}
		for {
			k, v, err := dec.NextTag()
			if err != nil {
				t.Fatal(err)
			}
			if k == nil {
				break
			}
			p.tags[string(k)] = string(v)
		}
		for {
			k, v, err := dec.NextField()
			if err != nil {
				t.Fatal(err)
			}
			if k == nil {
				break
			}
			p.fields[string(k)] = v.StringV()
		}
		if p.t, err = dec.Time(lineprotocol.Millisecond, time.Time{}); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func TestEventsHeapsterSchema(t *testing.T) {
	rec := newRecorder(t)
	w := newWriter(t, Options{URL: rec.srv.URL, Database: "k8s", ClusterName: "prod"})
	back := kubeletEvent("e-1", "BackOff", 7, evTime)
	node := nodeEvent(evTime.Add(time.Second))
	if err := w.WriteEvents(context.Background(), []sink.Event{back, node}); err != nil {
		t.Fatal(err)
	}
	ws := rec.writes()
	if len(ws) != 1 || ws[0].query.Get("db") != "k8s" || ws[0].query.Get("precision") != "ms" || !ws[0].gzipped {
		t.Fatalf("writes %+v", ws)
	}
	ps := decodeLines(t, rec.lines())
	if len(ps) != 2 {
		t.Fatalf("%d points, want 2", len(ps))
	}
	p := ps[0]
	wantTags := map[string]string{
		"cluster_name": "prod", "component": "kubelet", "hostname": "node-1", "kind": "Pod", "namespace_name": "shop",
		"object_name": "web-0", "pod_id": "3f0c9a54-pod", "pod_name": "web-0", "reason": "BackOff", "type": "Warning", "uid": "e-1",
	}
	if p.measurement != "log/events" || !maps.Equal(p.tags, wantTags) || !p.t.Equal(evTime) || len(p.fields) != 1 {
		t.Errorf("BackOff point: %+v\nwant log/events %v at %v", p, wantTags, evTime)
	}
	// The value is the whole event, as JSON a client decodes back.
	var got corev1.Event
	if err := json.Unmarshal([]byte(p.fields["value"]), &got); err != nil {
		t.Fatalf("value %q: %v", p.fields["value"], err)
	}
	want := back.Event.DeepCopy()
	want.Kind, want.APIVersion = "Event", "v1"
	if gb, _ := json.Marshal(&got); string(gb) != p.fields["value"] {
		t.Errorf("value does not round-trip:\n%s\n%s", gb, p.fields["value"])
	}
	if got.Count != 7 || got.Reason != "BackOff" || got.InvolvedObject != want.InvolvedObject || !got.LastTimestamp.Equal(&want.LastTimestamp) ||
		got.Message != want.Message || got.Kind != "Event" {
		t.Errorf("decoded value %+v", got)
	}
	// Not about a Pod: no pod tags; the reporting controller is the
	// component; no host.
	n := ps[1]
	if n.tags["pod_id"] != "" || n.tags["pod_name"] != "" || n.tags["hostname"] != "" || n.tags["component"] != "node-controller" ||
		n.tags["kind"] != "Node" || n.tags["object_name"] != "node-1" || !n.t.Equal(evTime.Add(time.Second)) {
		t.Errorf("Node point: %+v", n)
	}
}

func TestEventsWithFields(t *testing.T) {
	rec := newRecorder(t)
	w := newWriter(t, Options{URL: rec.srv.URL, Database: "k8s", WithFields: true, DisableGzip: true})
	if err := w.WriteEvents(context.Background(), []sink.Event{kubeletEvent("e-1", "BackOff", 1, evTime)}); err != nil {
		t.Fatal(err)
	}
	ps := decodeLines(t, rec.lines())
	if len(ps) != 1 || ps[0].measurement != "events" || ps[0].fields["message"] != `Back-off restarting failed container nginx in pod "web-0"` ||
		ps[0].tags["uid"] != "e-1" || ps[0].tags["object_name"] != "web-0" || ps[0].tags["cluster_name"] != "" {
		t.Errorf("withfields point %+v", ps)
	}
}

func TestEventsSplitAndErrors(t *testing.T) {
	rec := newRecorder(t)
	w := newWriter(t, Options{URL: rec.srv.URL, Database: "k8s"})
	var evs []sink.Event
	for i := range MaxPointsPerRequest + 10 {
		evs = append(evs, kubeletEvent(fmt.Sprint(i), "Started", 1, evTime.Add(time.Duration(i)*time.Millisecond)))
	}
	// Text line protocol refuses is mended, not dropped.
	bad := kubeletEvent("bad", "Started\n", 1, evTime)
	bad.Event.Message = "\xff not UTF-8"
	evs = append(evs, bad)
	if err := w.WriteEvents(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.writes()); n != 2 {
		t.Errorf("%d requests for %d events, want 2", n, len(evs))
	}
	lines := rec.lines()
	if got := len(lines); got != MaxPointsPerRequest+11 {
		t.Errorf("%d lines", got)
	}
	if st := w.Stats(); st.SkippedInvalid != 0 {
		t.Errorf("stats %+v", st)
	}
	if p := decodeLines(t, lines[len(lines)-1:])[0]; p.tags["reason"] != "Started " || !strings.Contains(p.fields["value"], `"message":"\ufffd not UTF-8"`) {
		t.Errorf("mended point %+v", p)
	}
	// 5xx is retryable, 4xx is not (sink.Writer's classification).
	rec.answer = func(int) (int, string) { return http.StatusServiceUnavailable, "busy" }
	if err := w.WriteEvents(context.Background(), evs[:1]); err == nil {
		t.Error("503: no error")
	} else if retry, _ := sink.IsRetryable(err); !retry {
		t.Errorf("503 not retryable: %v", err)
	}
	rec.answer = func(int) (int, string) { return http.StatusBadRequest, `{"error":"field type conflict"}` }
	if err := w.WriteEvents(context.Background(), evs[:1]); err == nil || strings.Contains(err.Error(), "retry") {
		t.Errorf("400: %v", err)
	} else if retry, _ := sink.IsRetryable(err); retry || !strings.Contains(err.Error(), "field type conflict") {
		t.Errorf("400 classified retryable or without the server's message: %v", err)
	}
}

// A real InfluxDB stores the events in the eventer's schema: InfluxQL
// finds them by tag, and the value decodes back to the event.
func TestEventsInfluxDB16(t *testing.T) {
	if _, err := os.Stat(influxd.Debian); err != nil {
		t.Skipf("SKIPPED: %s is missing (%v): install Debian's package influxdb (hack/deps.sh)", influxd.Debian, err)
	}
	srv := influxd.Start(t, influxd.Debian)
	w := newWriter(t, Options{URL: srv.URL, Database: "k8s", ClusterName: "prod"})
	now := time.Now().Truncate(time.Millisecond).UTC()
	first := kubeletEvent("e-1", "BackOff", 1, now.Add(-time.Minute))
	// The same event seen again (count 2, later): a new point, as the
	// eventer wrote every update.
	again := kubeletEvent("e-1", "BackOff", 2, now)
	node := nodeEvent(now)
	if err := w.WriteEvents(context.Background(), []sink.Event{first, node}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteEvents(context.Background(), []sink.Event{again}); err != nil {
		t.Fatal(err)
	}
	res := srv.Query(t, "k8s", `SELECT "value" FROM "log/events" WHERE "pod_name" = 'web-0' GROUP BY *`)
	if len(res) != 1 {
		t.Fatalf("pod_name = web-0: %d series, want 1: %+v", len(res), res)
	}
	s := res[0]
	if s.Name != "log/events" || s.Tags["uid"] != "e-1" || s.Tags["pod_id"] != "3f0c9a54-pod" || s.Tags["hostname"] != "node-1" ||
		s.Tags["cluster_name"] != "prod" || s.Tags["reason"] != "BackOff" || len(s.Values) != 2 {
		t.Fatalf("series %+v", s)
	}
	ts, err := s.Times()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ts, []int64{now.Add(-time.Minute).UnixMilli(), now.UnixMilli()}) {
		t.Errorf("times %v", ts)
	}
	for i, want := range []int32{1, 2} {
		var ev corev1.Event
		if err := json.Unmarshal([]byte(s.Values[i][s.Column("value")].(string)), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Count != want || ev.UID != "e-1" || ev.InvolvedObject.Name != "web-0" {
			t.Errorf("point %d: %+v", i, ev)
		}
	}
	if res := srv.Query(t, "k8s", `SELECT count("value") FROM "log/events" WHERE "kind" = 'Node'`); len(res) != 1 {
		t.Errorf("kind = Node: %+v", res)
	}
}
