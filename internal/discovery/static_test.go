package discovery

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

const nodeList = `{"kind":"NodeList","items":[
 {"metadata":{"name":"a","labels":{"zone":"z1"}},"status":{
   "addresses":[{"type":"Hostname","address":"a.local"},{"type":"InternalIP","address":"10.0.0.1"}],
   "daemonEndpoints":{"kubeletEndpoint":{"Port":10255}},
   "capacity":{"cpu":"4","memory":"16Gi"},"allocatable":{"cpu":"3500m","memory":"15Gi"}}},
 {"metadata":{"name":"b"},"status":{"addresses":[{"type":"ExternalIP","address":"203.0.113.9"},{"type":"Hostname","address":"b.local"}]}},
 {"metadata":{"name":"c"},"status":{"addresses":[{"type":"InternalIP","address":"fd00::3"}]}},
 {"metadata":{"name":"none"},"status":{}}
]}`

func TestFromNodeList(t *testing.T) {
	ts, errs, err := FromNodeList([]byte(nodeList), "https")
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) != 1 || len(ts) != 3 {
		t.Fatalf("targets %d, errors %v", len(ts), errs)
	}
	want := map[string]string{"a": "https://10.0.0.1:10255", "b": "https://b.local:10250", "c": "https://[fd00::3]:10250"}
	for _, tg := range ts {
		if tg.URL != want[tg.Node] {
			t.Errorf("%s: URL %s, want %s", tg.Node, tg.URL, want[tg.Node])
		}
	}
	a := ts[0].Meta
	if a.CPUCapacity != 4 || a.CPUAllocatable != 3.5 || a.MemoryCapacity != 16<<30 || a.MemoryAllocatable != 15<<30 || a.Labels["zone"] != "z1" {
		t.Errorf("meta %+v", a)
	}
	if _, _, err := FromNodeList([]byte(`{"items":[`), "https"); err == nil {
		t.Error("truncated list: want an error")
	}
}

func TestPollerKeepsLastListOnFailure(t *testing.T) {
	var fail atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		if fail.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		w.Write([]byte(nodeList))
	}))
	defer srv.Close()
	p := &Poller{URL: srv.URL, Scheme: "http", Client: srv.Client(), Token: "tok", Logger: slog.New(slog.DiscardHandler), Static: NewStatic(nil)}
	if err := p.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(p.Targets()); n != 3 {
		t.Fatalf("%d targets", n)
	}
	fail.Store(true)
	if err := p.Poll(context.Background()); err == nil {
		t.Fatal("want an error from a failing server")
	}
	if n := len(p.Targets()); n != 3 {
		t.Fatalf("a failed poll dropped the list: %d targets", n)
	}
	p.Token = ""
	fail.Store(false)
	if err := p.Poll(context.Background()); err == nil {
		t.Fatal("want an error without the token")
	}
}
