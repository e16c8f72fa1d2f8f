package eventsapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubemon/kubemon/internal/events"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func podEvent(uid, ns, pod, reason, typ string, last time.Time, count int32) *corev1.Event {
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: pod + "." + uid, Namespace: ns, UID: types.UID(uid)},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: pod, UID: types.UID("uid-" + pod), APIVersion: "v1", FieldPath: "spec.containers{c}"},
		Reason:         reason, Type: typ, Message: reason + " of " + pod, Count: count,
		FirstTimestamp: metav1.NewTime(last.Add(-time.Minute)), LastTimestamp: metav1.NewTime(last),
		Source: corev1.EventSource{Component: "kubelet", Host: "node-1"},
	}
}

// server is the API over a real store holding evs.
func server(t *testing.T, evs ...*corev1.Event) *httptest.Server {
	t.Helper()
	st, err := events.Open(events.Options{Dir: t.TempDir(), Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Put(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	New(Options{Store: st, MaxLimit: 50}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

type answer struct {
	Status    string   `json:"status"`
	Data      []Event  `json:"data"`
	ErrorType string   `json:"errorType"`
	Error     string   `json:"error"`
	Warnings  []string `json:"warnings"`
}

func get(t *testing.T, srv *httptest.Server, query string) (int, answer, string) {
	t.Helper()
	resp, err := http.Get(srv.URL + "/api/v1/events?" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	var a answer
	dec := json.NewDecoder(resp.Body)
	if err := dec.Decode(&a); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	raw, _ := json.Marshal(a)
	b.Write(raw)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	return resp.StatusCode, a, b.String()
}

func reasons(a answer) []string {
	out := []string{}
	for _, e := range a.Data {
		out = append(out, e.InvolvedObject.Name+"/"+e.Reason)
	}
	return out
}

func TestEventsAPI(t *testing.T) {
	scheduled := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "web-0.s", Namespace: "team-a", UID: "s"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "team-a", Name: "web-0", UID: "uid-web-0"},
		Reason:         "Scheduled", Type: "Normal", Message: "Successfully assigned team-a/web-0 to node-2",
		EventTime:           metav1.NewMicroTime(t0.Add(-time.Minute)),
		ReportingController: "default-scheduler", ReportingInstance: "default-scheduler-x", Action: "Binding",
	}
	onNode2 := podEvent("c", "team-a", "web-1", "Started", "Normal", t0.Add(2*time.Minute), 1)
	onNode2.Source.Host = "node-2"
	srv := server(t, scheduled,
		podEvent("a", "team-a", "web-0", "Started", "Normal", t0, 1),
		podEvent("b", "team-a", "web-0", "BackOff", "Warning", t0.Add(time.Minute), 5),
		onNode2,
		podEvent("d", "team-b", "web-0", "Killing", "Normal", t0.Add(3*time.Minute), 1),
	)
	code, a, raw := get(t, srv, "")
	if code != 200 || a.Status != "success" || len(a.Warnings) != 0 {
		t.Fatalf("all: %d %s", code, raw)
	}
	if got, want := reasons(a), []string{"web-0/Killing", "web-1/Started", "web-0/BackOff", "web-0/Started", "web-0/Scheduled"}; !slices.Equal(got, want) {
		t.Fatalf("all: %v, want %v (newest first)", got, want)
	}
	// Every field of a kubelet's event and of a scheduler's.
	b := a.Data[2]
	want := Event{UID: "b", Namespace: "team-a", Name: "web-0.b", FirstTime: t0, LastTime: t0.Add(time.Minute), Count: 5,
		Type: "Warning", Reason: "BackOff", Message: "BackOff of web-0",
		InvolvedObject: Object{Kind: "Pod", Namespace: "team-a", Name: "web-0", UID: "uid-web-0", APIVersion: "v1", FieldPath: "spec.containers{c}"},
		Source:         Source{Component: "kubelet", Host: "node-1"}, Node: "node-1"}
	if fmt.Sprint(b) != fmt.Sprint(want) {
		t.Errorf("BackOff:\n got %+v\nwant %+v", b, want)
	}
	s := a.Data[4]
	if !s.FirstTime.Equal(t0.Add(-time.Minute)) || !s.LastTime.Equal(t0.Add(-time.Minute)) || s.Count != 1 || s.ReportingController != "default-scheduler" ||
		s.Action != "Binding" || s.Node != "" || s.Source != (Source{}) {
		t.Errorf("Scheduled: %+v", s)
	}
	if !strings.Contains(raw, `"lastTime":"2026-03-01T12:01:00Z"`) {
		t.Errorf("times not RFC 3339 in UTC: %s", raw)
	}

	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"namespace=team-a&kind=Pod&name=web-0", []string{"web-0/BackOff", "web-0/Started", "web-0/Scheduled"}},
		{"uid=uid-web-0&type=Warning", []string{"web-0/BackOff"}},
		{"reason=Started", []string{"web-1/Started", "web-0/Started"}},
		{"name=web-0", []string{"web-0/Killing", "web-0/BackOff", "web-0/Started", "web-0/Scheduled"}},
		{"start=" + url.QueryEscape(t0.Format(time.RFC3339)) + "&end=" + fmt.Sprint(t0.Add(2*time.Minute).Unix()), []string{"web-1/Started", "web-0/BackOff", "web-0/Started"}},
		{"start=" + fmt.Sprintf("%.3f", float64(t0.Add(time.Minute).UnixMilli())/1000), []string{"web-0/Killing", "web-1/Started", "web-0/BackOff"}},
		{"namespace=nobody", []string{}},
		// node: the events that happened on it (the scheduler's carry none).
		{"node=node-1", []string{"web-0/Killing", "web-0/BackOff", "web-0/Started"}},
		{"node=node-2", []string{"web-1/Started"}},
		{"node=node-2&namespace=team-b", []string{}},
		{"node=node-1&type=Warning", []string{"web-0/BackOff"}},
		{"node=node-1&namespace=team-a&kind=Pod&name=web-0", []string{"web-0/BackOff", "web-0/Started"}},
		{"node=node-3", []string{}},
		{"node=node", []string{}},
		{"node=", []string{"web-0/Killing", "web-1/Started", "web-0/BackOff", "web-0/Started", "web-0/Scheduled"}},
	} {
		code, a, raw := get(t, srv, tc.query)
		if code != 200 || !slices.Equal(reasons(a), tc.want) {
			t.Errorf("%s: %d %v, want %v (%s)", tc.query, code, reasons(a), tc.want, raw)
		}
	}
	// data: always there on success, [] when nothing matched, with the
	// warnings kept; never there on an error.
	for _, tc := range []struct {
		query    string
		code     int
		data     string // the raw "data", "" for absent
		warnings bool
	}{
		{"namespace=nobody", 200, "[]", false},
		{"node=node-3", 200, "[]", false},
		{"end=1", 200, "[]", false},
		{"node=node-2", 200, "[{", false},
		{"limit=1", 200, "[{", true},
		{"limit=0", 400, "", false},
		{"node=Node-2", 400, "", false},
		{"bogus=1", 400, "", false},
	} {
		resp, err := http.Get(srv.URL + "/api/v1/events?" + tc.query)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]json.RawMessage
		err = json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: %v", tc.query, err)
		}
		data, has := m["data"]
		switch {
		case resp.StatusCode != tc.code:
			t.Errorf("%s: %s, want %d", tc.query, resp.Status, tc.code)
		case tc.data == "" && has:
			t.Errorf("%s: an error with data %s", tc.query, data)
		case tc.data != "" && !strings.HasPrefix(string(data), tc.data):
			t.Errorf("%s: data %q, want %s…", tc.query, data, tc.data)
		case tc.warnings != (m["warnings"] != nil):
			t.Errorf("%s: warnings %s", tc.query, m["warnings"])
		}
	}

	// limit: the newest, and a warning that more matched.
	code, a, _ = get(t, srv, "limit=2")
	if code != 200 || !slices.Equal(reasons(a), []string{"web-0/Killing", "web-1/Started"}) || len(a.Warnings) != 1 || !strings.Contains(a.Warnings[0], "limit 2 reached") {
		t.Errorf("limit=2: %d %v %q", code, reasons(a), a.Warnings)
	}
	if _, a, _ := get(t, srv, "limit=5"); len(a.Warnings) != 0 || len(a.Data) != 5 {
		t.Errorf("limit=5 of 5: %d events, warnings %q", len(a.Data), a.Warnings)
	}
}

func TestEventsAPIBadParameters(t *testing.T) {
	srv := server(t)
	for _, tc := range []struct{ query, want string }{
		{"namspace=x", `invalid parameter "namspace": unknown parameter; known are namespace, kind, name, uid, reason, type, node, start, end, limit`},
		{"nodes=x", `invalid parameter "nodes": unknown parameter; known are namespace, kind, name, uid, reason, type, node, start, end, limit`},
		{"node=a&node=b", `invalid parameter "node": given 2 times; give it once`},
		{"node=Node-1", `invalid parameter "node": "Node-1": want a node name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit`},
		{"node=node_1", `invalid parameter "node": "node_1": want a node name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit`},
		{"node=-node", `invalid parameter "node": "-node": want a node name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit`},
		{"node=node-", `invalid parameter "node": "node-": want a node name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit`},
		{"node=a..b", `invalid parameter "node": "a..b": want a node name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit`},
		{"node=a.", `invalid parameter "node": "a.": want a node name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit`},
		{"node=" + url.QueryEscape("node 1"), `invalid parameter "node": "node 1": want a node name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit`},
		{"node=" + url.QueryEscape("nöde"), `invalid parameter "node": "nöde": want a node name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit`},
		{"node=" + strings.Repeat("a", 254), `invalid parameter "node": 254 bytes long; a node name is at most 253`},
		{"node=" + strings.Repeat("a", 1025), `invalid parameter "node": 1025 bytes long; at most 1024`},
		{"reason=a&reason=b", `invalid parameter "reason": given 2 times; give it once`},
		{"start=yesterday", `invalid parameter "start": cannot parse "yesterday" to a valid timestamp (want RFC 3339 or Unix seconds)`},
		{"end=NaN", `invalid parameter "end": cannot parse "NaN" to a valid timestamp`},
		{"end=1e300", `invalid parameter "end": cannot parse "1e300" to a valid timestamp`},
		{"start=200&end=100", `invalid parameter "end": end timestamp must not be before start time`},
		{"limit=0", `invalid parameter "limit": "0": want a whole number from 1 to 50`},
		{"limit=51", `invalid parameter "limit": "51": want a whole number from 1 to 50`},
		{"limit=ten", `invalid parameter "limit": "ten": want a whole number from 1 to 50`},
		{"name=" + strings.Repeat("x", 1025), `invalid parameter "name": 1025 bytes long; at most 1024`},
	} {
		code, a, raw := get(t, srv, tc.query)
		if code != http.StatusBadRequest || a.Status != "error" || a.ErrorType != "bad_data" || a.Error != tc.want {
			t.Errorf("%.40s: %d %s\nwant 400 bad_data %q", tc.query, code, raw, tc.want)
		}
	}
	// Only GET.
	resp, err := http.Post(srv.URL+"/api/v1/events", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %s", resp.Status)
	}
}

// slow is a store that takes its time: requests are bounded by Timeout.
type slow struct{}

func (slow) Query(ctx context.Context, _ events.Query) (events.Result, error) {
	<-ctx.Done()
	return events.Result{}, ctx.Err()
}

func TestEventsAPITimeout(t *testing.T) {
	mux := http.NewServeMux()
	New(Options{Store: slow{}, Timeout: 50 * time.Millisecond}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	start := time.Now()
	code, a, raw := get(t, srv, "")
	if code != http.StatusServiceUnavailable || a.ErrorType != "timeout" || time.Since(start) > 5*time.Second {
		t.Errorf("%d %s after %v", code, raw, time.Since(start))
	}
}
