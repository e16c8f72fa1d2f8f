package frontdoor

import (
	"bufio"
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// backend listens on addr and answers each line it reads with its name
// and the line, until the client half-closes.
func backend(t *testing.T, addr, name string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := io.WriteString(c, name+":"+line); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln
}

// ask sends line through the proxy at addr and returns the answer ("" when
// the connection closed without one).
func ask(t *testing.T, addr, line string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return ""
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return ""
	}
	return got[:len(got)-1]
}

// TestFailover: connections go to the local kubemon while it listens, to
// the first peer that answers while it does not (a dead peer listed first
// is passed over), and back to the local one once it listens again; with
// no backend the connection is closed. Each is counted by backend, and the
// peers are listed at most once per PeerCache.
func TestFailover(t *testing.T) {
	local := backend(t, "127.0.0.1:0", "local")
	localAddr := local.Addr().String()
	peer := backend(t, "127.0.0.1:0", "peer")
	defer peer.Close()
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()

	var (
		lists atomic.Int64
		mu    sync.Mutex
		peers = []string{deadAddr, peer.Addr().String()}
		now   = time.Unix(1_800_000_000, 0)
	)
	reg := prometheus.NewRegistry()
	p, err := New(Options{Local: localAddr, Registerer: reg,
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
		Peers: func(context.Context) ([]string, error) {
			lists.Add(1)
			mu.Lock()
			defer mu.Unlock()
			return peers, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- p.Serve(ctx, ln) }()
	addr := ln.Addr().String()

	if got := ask(t, addr, "a"); got != "local:a" {
		t.Fatalf("local up: %q, want local:a", got)
	}
	local.Close() // the local kubemon dies: nothing listens on its port
	for i := range 3 {
		if got := ask(t, addr, "b"); got != "peer:b" {
			t.Fatalf("local down, ask %d: %q, want peer:b", i, got)
		}
	}
	if n := lists.Load(); n != 1 {
		t.Errorf("peers listed %d times within the cache's life, want 1", n)
	}
	if got := testutil.ToFloat64(p.localDown); got != 1 {
		t.Errorf("local_down %v, want 1", got)
	}
	mu.Lock()
	peers = []string{deadAddr}
	now = now.Add(5 * time.Second)
	mu.Unlock()
	if got := ask(t, addr, "c"); got != "" {
		t.Errorf("no backend: %q, want the connection closed", got)
	}
	if n := lists.Load(); n != 2 {
		t.Errorf("peers listed %d times after the cache expired, want 2", n)
	}

	// The local kubemon is back on its port.
	back := backend(t, localAddr, "back")
	defer back.Close()
	if got := ask(t, addr, "d"); got != "back:d" {
		t.Errorf("local back: %q, want back:d", got)
	}
	if got := testutil.ToFloat64(p.localDown); got != 0 {
		t.Errorf("local_down %v after the local kubemon came back, want 0", got)
	}
	for b, want := range map[string]float64{BackendLocal: 2, BackendPeer: 3, BackendNone: 1} {
		if got := testutil.ToFloat64(p.conns.WithLabelValues(b)); got != want {
			t.Errorf("connections{backend=%q} = %v, want %v", b, got, want)
		}
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("Serve did not return after its context ended")
	}
}

func TestNewErrors(t *testing.T) {
	for _, o := range []Options{{}, {Local: "no-port"}} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v): no error", o)
		}
	}
}
