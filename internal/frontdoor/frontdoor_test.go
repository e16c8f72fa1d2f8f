package frontdoor

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/kubemon/kubemon/internal/api/forwarded"
)

// kubemon is a backend: an HTTPS server speaking HTTP/2 (as kubemon's
// metrics API does) that answers with its name, the forwarded user and
// the credential it got. /hang holds the request until the test lets go,
// on a kubemon made with hang. /partial, on a kubemon told to die mid
// answer, sends the status and the first bytes of its answer and then
// resets the stream, as a kubemon killed while answering does.
type kubemon struct {
	name    string
	srv     *httptest.Server
	served  atomic.Int64
	dieMid  atomic.Bool
	entered chan struct{} // a request reached /hang
	release chan struct{}
}

func newKubemon(t *testing.T, name string, hang bool) *kubemon {
	t.Helper()
	k := &kubemon{name: name, entered: make(chan struct{}, 1), release: make(chan struct{})}
	k.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hang && r.URL.Path == "/hang" {
			k.entered <- struct{}{}
			<-k.release
		}
		if r.URL.Path == "/partial" && k.dieMid.Load() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, `{"Backend":"`+k.name)
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		k.served.Add(1)
		body, _ := io.ReadAll(r.Body)
		_ = json.NewEncoder(w).Encode(answer{
			Backend: k.name, Proto: r.Proto, Method: r.Method, Body: string(body),
			Authorization: r.Header.Get("Authorization"),
			User:          r.Header.Get(forwarded.HeaderUser), Groups: r.Header.Values(forwarded.HeaderGroup),
			Extra:   r.Header.Get(forwarded.HeaderExtraPrefix + "scopes%2Fa"),
			Remote:  r.Header.Get("X-Remote-User"),
			Imperso: r.Header.Get("Impersonate-User"),
		})
	}))
	k.srv.EnableHTTP2 = true
	k.srv.StartTLS()
	t.Cleanup(func() {
		select {
		case <-k.release:
		default:
			close(k.release)
		}
		k.srv.Close()
	})
	return k
}

func (k *kubemon) addr() string { return k.srv.Listener.Addr().String() }

type answer struct {
	Backend, Proto, Method, Body, Authorization, User, Extra, Remote, Imperso string
	Groups                                                                    []string
}

// deadAddr is an address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// asUser stands for the authentication before the proxy.
func asUser(h http.Handler, u user.Info) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(request.WithUser(r.Context(), u)))
	})
}

func do(t *testing.T, url, method, body string) (int, answer, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	// What a client could send to pass for someone else.
	req.Header.Set("Authorization", "Bearer caller-token")
	req.Header.Set(forwarded.HeaderUser, "system:admin")
	req.Header.Set("X-Remote-User", "system:admin")
	req.Header.Set("Impersonate-User", "system:admin")
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var a answer
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
	}
	return resp.StatusCode, a, string(raw)
}

func TestFailover(t *testing.T) {
	local, peer := newKubemon(t, "local", true), newKubemon(t, "peer", false)
	dead := deadAddr(t)
	var listed atomic.Int64
	reg := prometheus.NewPedanticRegistry()
	p, err := New(Options{
		Local: local.addr(),
		Peers: func(context.Context) ([]string, error) {
			listed.Add(1)
			return []string{dead, peer.addr()}, nil
		},
		Token:      func() (string, error) { return "frontdoor-token", nil },
		Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	caller := &user.DefaultInfo{Name: "alice", UID: "42", Groups: []string{"dev", "system:authenticated"}, Extra: map[string][]string{"scopes/a": {"x"}}}
	front := httptest.NewServer(asUser(p, caller))
	defer front.Close()
	count := func(b string) float64 { return testutil.ToFloat64(p.requests.WithLabelValues(b)) }

	// 1. The local kubemon answers, told who the caller is and nothing a
	// caller could forge.
	code, a, raw := do(t, front.URL+"/apis/metrics.k8s.io/v1beta1/nodes", http.MethodGet, "")
	if code != http.StatusOK || a.Backend != "local" {
		t.Fatalf("local up: %d %s", code, raw)
	}
	if a.Proto != "HTTP/2.0" {
		t.Errorf("to the kubemon: %s, want HTTP/2.0", a.Proto)
	}
	if a.Authorization != "Bearer frontdoor-token" || a.User != "alice" || strings.Join(a.Groups, ",") != "dev,system:authenticated" || a.Extra != "x" {
		t.Errorf("forwarded: %+v", a)
	}
	if a.Remote != "" || a.Imperso != "" {
		t.Errorf("a caller's X-Remote-User or Impersonate-User reached the kubemon: %+v", a)
	}

	// 2. A request in flight when the local kubemon dies is sent again to
	// the first peer that answers.
	type result struct {
		code int
		a    answer
		raw  string
	}
	done := make(chan result, 1)
	go func() {
		code, a, raw := do(t, front.URL+"/hang", http.MethodGet, "")
		done <- result{code, a, raw}
	}()
	select {
	case <-local.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the request never reached the local kubemon")
	}
	local.srv.CloseClientConnections() // its connections die with it
	r := <-done
	if r.code != http.StatusOK || r.a.Backend != "peer" || r.a.User != "alice" {
		t.Fatalf("in flight at the local kubemon's death: %d %s", r.code, r.raw)
	}
	close(local.release)
	if got := testutil.ToFloat64(p.localDown); got != 1 {
		t.Errorf("local_down = %v after the failure, want 1", got)
	}

	// 3. Local gone: straight to the peer; the dead peer is passed over.
	local.srv.Close()
	code, a, raw = do(t, front.URL+"/x", http.MethodGet, "")
	if code != http.StatusOK || a.Backend != "peer" {
		t.Fatalf("local down: %d %s", code, raw)
	}
	// A request with a body is not sent twice.
	servedBefore := peer.served.Load()
	code, _, raw = do(t, front.URL+"/api/v1/query", http.MethodPost, "query=up")
	if code != http.StatusServiceUnavailable || !strings.Contains(raw, "not sent twice") {
		t.Fatalf("POST with local down: %d %s", code, raw)
	}
	if peer.served.Load() != servedBefore {
		t.Error("the POST reached the peer")
	}

	// 4. No backend at all: 503 with a Kubernetes Status.
	peer.srv.Close()
	code, _, raw = do(t, front.URL+"/x", http.MethodGet, "")
	var st struct {
		Kind   string
		Reason string
		Code   int
	}
	if code != http.StatusServiceUnavailable || json.Unmarshal([]byte(raw), &st) != nil || st.Kind != "Status" || st.Code != 503 {
		t.Fatalf("no backend: %d %s", code, raw)
	}

	// The peers were listed once (cached), and the counts add up: local 1,
	// peer 2 (the request in flight and the GET), none 2 (the POST, the
	// last GET); retries: dead+peer for the request in flight and the GET,
	// dead+peer for the last GET.
	if n := listed.Load(); n != 1 {
		t.Errorf("peers listed %d times, want 1 (cached)", n)
	}
	for b, want := range map[string]float64{BackendLocal: 1, BackendPeer: 2, BackendNone: 2} {
		if got := count(b); !(got == want) {
			t.Errorf("requests_total{backend=%q} = %v, want %v", b, got, want)
		}
	}
	if got := testutil.ToFloat64(p.retries); !(got == 6) {
		t.Errorf("retries_total = %v, want 6", got)
	}

	// 5. The local kubemon back: local again.
	back := newKubemon(t, "back", false)
	p.o.Local = back.addr()
	code, a, raw = do(t, front.URL+"/x", http.MethodGet, "")
	if code != http.StatusOK || a.Backend != "back" {
		t.Fatalf("local back: %d %s", code, raw)
	}
	if got := testutil.ToFloat64(p.localDown); got != 0 {
		t.Errorf("local_down = %v with the local kubemon back, want 0", got)
	}
}

// A kubemon that dies after it began to send its answer has failed: the
// client gets the peer's whole answer, never a truncated one. An answer
// longer than BufferLimit is streamed on.
func TestDiesMidAnswer(t *testing.T) {
	local, peer := newKubemon(t, "local", false), newKubemon(t, "peer", false)
	local.dieMid.Store(true)
	o := Options{
		Local: local.addr(),
		Peers: func(context.Context) ([]string, error) { return []string{peer.addr()}, nil },
		Token: func() (string, error) { return "frontdoor-token", nil },
	}
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(asUser(p, &user.DefaultInfo{Name: "alice"}))
	defer front.Close()
	code, a, raw := do(t, front.URL+"/partial", http.MethodGet, "")
	if code != http.StatusOK || a.Backend != "peer" || a.User != "alice" {
		t.Fatalf("local died mid answer: %d %q", code, raw)
	}
	if got := testutil.ToFloat64(p.retries); !(got == 1) {
		t.Errorf("retries_total = %v, want 1", got)
	}

	// A whole answer longer than the limit reaches the client whole.
	o.BufferLimit = 16
	small, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	front2 := httptest.NewServer(asUser(small, &user.DefaultInfo{Name: "bob"}))
	defer front2.Close()
	code, a, raw = do(t, front2.URL+"/x", http.MethodGet, "")
	if code != http.StatusOK || a.Backend != "local" || a.User != "bob" || len(raw) <= 16 {
		t.Fatalf("an answer over the limit: %d %q", code, raw)
	}
}

// A client that gives up is not a failure of the local kubemon: it is not
// marked down, and nothing is sent to a peer.
func TestClientGone(t *testing.T) {
	local, peer := newKubemon(t, "local", true), newKubemon(t, "peer", false)
	p, err := New(Options{
		Local: local.addr(),
		Peers: func(context.Context) ([]string, error) { return []string{peer.addr()}, nil },
		Token: func() (string, error) { return "frontdoor-token", nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(asUser(p, &user.DefaultInfo{Name: "alice"}))
	defer front.Close()
	c := &http.Client{Timeout: 300 * time.Millisecond}
	if resp, err := c.Get(front.URL + "/hang"); err == nil {
		resp.Body.Close()
		t.Fatal("the request that hangs was answered")
	}
	<-local.entered
	time.Sleep(300 * time.Millisecond) // the proxy's round trip ends after the client's
	if p.down.Load() || testutil.ToFloat64(p.localDown) != 0 {
		t.Error("a client that gave up marked the local kubemon down")
	}
	if n := peer.served.Load(); n != 0 {
		t.Errorf("the peer served %d requests", n)
	}
}

func TestRefusals(t *testing.T) {
	local := newKubemon(t, "local", false)
	tokenErr := errors.New("no token file")
	p, err := New(Options{Local: local.addr(), Token: func() (string, error) { return "", tokenErr }})
	if err != nil {
		t.Fatal(err)
	}
	// No authenticated user: the wiring is wrong, and nothing is sent.
	bare := httptest.NewServer(p)
	defer bare.Close()
	if code, _, raw := do(t, bare.URL+"/x", http.MethodGet, ""); code != http.StatusInternalServerError {
		t.Errorf("unauthenticated: %d %s", code, raw)
	}
	// No token: 503, nothing sent.
	front := httptest.NewServer(asUser(p, &user.DefaultInfo{Name: "alice"}))
	defer front.Close()
	if code, _, raw := do(t, front.URL+"/x", http.MethodGet, ""); code != http.StatusServiceUnavailable {
		t.Errorf("no token: %d %s", code, raw)
	}
	if n := local.served.Load(); n != 0 {
		t.Errorf("the kubemon served %d requests", n)
	}

	for _, o := range []Options{{}, {Local: "nohostport", Token: p.o.Token}, {Local: "127.0.0.1:1"}} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v): no error", o)
		}
	}
}
