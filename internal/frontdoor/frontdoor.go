// Package frontdoor is the TCP proxy that stands, in each replica's pod, in
// front of one of kubemon's ports (the metrics API's). It hands every
// connection to the kubemon beside it, or, when nothing answers there (that
// kubemon crashed and the kubelet is restarting it), to the same port of a
// peer replica. Kubernetes withdraws a pod whose container died from its
// Service only a second or two later (the kubelet notices, the pod turns
// unready, the EndpointSlice drops it); connections the apiserver opens to
// the pod in that window reach the peer instead of a refused port.
//
// The proxy copies bytes; TLS stays end to end between the client and
// whichever kubemon answers. A request already in flight on a connection
// whose kubemon dies still fails: its bytes are gone with the process.
package frontdoor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configure Serve. Zero values take the defaults noted.
type Options struct {
	// Local is the address of the kubemon in the same pod (host:port);
	// required.
	Local string
	// Peers lists the same port of the peer replicas (host:port), tried in
	// order when Local refuses; nil for none.
	Peers func(ctx context.Context) ([]string, error)
	// PeerCache is how long a list of peers is reused; default 5 s.
	PeerCache time.Duration
	// DialTimeout bounds each dial; default 2 s.
	DialTimeout time.Duration
	// Now is the clock; default time.Now.
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Backends of a connection, the label values of
// kubemon_frontdoor_connections_total.
const (
	BackendLocal = "local"
	BackendPeer  = "peer"
	BackendNone  = "none"
)

// Proxy hands connections to the local kubemon or a peer.
type Proxy struct {
	o Options

	down      atomic.Bool // the last dial of Local failed
	mu        sync.Mutex
	peers     []string
	peersAt   time.Time
	peersErr  error
	conns     *prometheus.CounterVec
	localDown prometheus.Gauge
}

// New checks o and registers the proxy's metrics.
func New(o Options) (*Proxy, error) {
	if o.Local == "" {
		return nil, errors.New("frontdoor: no local address")
	}
	if _, _, err := net.SplitHostPort(o.Local); err != nil {
		return nil, fmt.Errorf("frontdoor: local address %q: %w", o.Local, err)
	}
	if o.PeerCache <= 0 {
		o.PeerCache = 5 * time.Second
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{o: o,
		conns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kubemon", Subsystem: "frontdoor", Name: "connections_total",
			Help: "Connections the front door handed on, by backend: local (the kubemon in this pod), peer (a peer replica's, while the local one is down), none (no backend answered; the connection was closed).",
		}, []string{"backend"}),
		localDown: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "kubemon", Subsystem: "frontdoor", Name: "local_down",
			Help: "1 when the last dial of the local kubemon failed, else 0.",
		}),
	}
	for _, b := range []string{BackendLocal, BackendPeer, BackendNone} {
		p.conns.WithLabelValues(b)
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(p.conns, p.localDown)
	}
	return p, nil
}

// Serve accepts connections on ln until ctx ends, then closes ln and waits
// for the connections under way to finish.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return fmt.Errorf("frontdoor: accept: %w", err)
		}
		wg.Go(func() { p.handle(ctx, c) })
	}
}

// handle dials a backend for c and copies both ways until either side ends.
func (p *Proxy) handle(ctx context.Context, c net.Conn) {
	defer c.Close()
	b, backend, err := p.dial(ctx)
	if err != nil {
		p.conns.WithLabelValues(BackendNone).Inc()
		p.o.Logger.Warn("frontdoor: no backend answered; closing the connection", "client", c.RemoteAddr().String(), "err", err)
		return
	}
	defer b.Close()
	p.conns.WithLabelValues(backend).Inc()
	stop := context.AfterFunc(ctx, func() { c.Close(); b.Close() })
	defer stop()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Half-close, so the other direction can finish its response.
		if tc, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = tc.CloseWrite()
		} else {
			dst.Close()
		}
		done <- struct{}{}
	}
	go pipe(b, c)
	go pipe(c, b)
	<-done
	<-done
}

// dial connects to the local kubemon, else to the first peer that
// answers.
func (p *Proxy) dial(ctx context.Context) (net.Conn, string, error) {
	d := net.Dialer{Timeout: p.o.DialTimeout}
	c, err := d.DialContext(ctx, "tcp", p.o.Local)
	if err == nil {
		if p.down.Swap(false) {
			p.localDown.Set(0)
			p.o.Logger.Info("frontdoor: the local kubemon answers again", "local", p.o.Local)
		}
		return c, BackendLocal, nil
	}
	if !p.down.Swap(true) {
		p.localDown.Set(1)
		p.o.Logger.Warn("frontdoor: the local kubemon does not answer; handing connections to a peer", "local", p.o.Local, "err", err)
	}
	errs := []error{fmt.Errorf("local %s: %w", p.o.Local, err)}
	peers, perr := p.peerList(ctx)
	if perr != nil {
		errs = append(errs, fmt.Errorf("listing peers: %w", perr))
	}
	for _, addr := range peers {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return c, BackendPeer, nil
		}
		errs = append(errs, fmt.Errorf("peer %s: %w", addr, err))
	}
	return nil, "", errors.Join(errs...)
}

// peerList is the peers, listed at most once per PeerCache.
func (p *Proxy) peerList(ctx context.Context) ([]string, error) {
	if p.o.Peers == nil {
		return nil, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := p.o.Now(); p.peersAt.IsZero() || now.Sub(p.peersAt) >= p.o.PeerCache {
		p.peers, p.peersErr = p.o.Peers(ctx)
		p.peersAt = now
	}
	return p.peers, p.peersErr
}
