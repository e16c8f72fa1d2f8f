// Package frontdoor is the HTTPS proxy that stands, in each replica's pod,
// in front of kubemon's metrics API (and the kubemon.io aggregated API it
// carries). Each request goes to the kubemon beside it; when that kubemon
// does not answer, or dies before it answered (it crashed, and the kubelet
// is restarting it), a request that may be repeated (GET, HEAD, OPTIONS
// without a body: what `kubectl top` and the HPA send) is sent again to a
// ready peer replica. The client, the apiserver's aggregation layer, sees
// an answer instead of an error, both in the second or two before
// Kubernetes withdraws the pod from the Service and for the requests in
// flight at the crash, including those whose answer the kubemon had begun
// to send: a repeatable request's answer is read whole (up to
// Options.BufferLimit) before the client gets its first byte.
//
// The proxy ends TLS: a kubemon's death must not take the client's
// connection with it. It therefore authenticates each caller itself (the
// wrapping handler, k8s.io/apiserver's delegated authentication, puts the
// user in the request's context) and forwards the caller's identity with
// its own credential (package forwarded); the kubemon that answers
// authorizes the caller as before.
package frontdoor

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/kubemon/kubemon/internal/api/forwarded"
)

// Options configure New. Zero values take the defaults noted.
type Options struct {
	// Local is the address of the kubemon in the same pod (host:port of its
	// metrics API, HTTPS); required.
	Local string
	// Peers lists the same port of the peer replicas (host:port), tried in
	// order after Local; nil for none.
	Peers func(ctx context.Context) ([]string, error)
	// Token is the front door's credential towards the kubemons (a token
	// for forwarded.Audience); required.
	Token func() (string, error)
	// TLS is the client configuration towards the kubemons; default: no
	// verification of their (self-signed) certificates. The token it
	// carries is good for kubemon's API only.
	TLS *tls.Config
	// PeerCache is how long a list of peers is reused; default 5 s.
	PeerCache time.Duration
	// DialTimeout bounds each dial; default 2 s.
	DialTimeout time.Duration
	// BufferLimit is the most of a repeatable request's answer, in bytes,
	// held before the client gets it, so that a backend dying while it
	// sends the answer can be made good by the next one; default 64 MiB
	// (the metrics API's answers for all 150,000 pods of a 5,000-node
	// cluster are about 50 MB). A longer answer is streamed on from there
	// and cannot be sent again. Watches are always streamed.
	BufferLimit int64
	// Now is the clock; default time.Now.
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Backends of a request, the label values of
// kubemon_frontdoor_requests_total.
const (
	BackendLocal = "local"
	BackendPeer  = "peer"
	BackendNone  = "none"
)

// Proxy is an http.Handler that sends authenticated requests to the local
// kubemon or a peer.
type Proxy struct {
	o       Options
	rp      *httputil.ReverseProxy
	backend http.RoundTripper

	down      atomic.Bool // the last request to Local failed
	mu        sync.Mutex
	peers     []string
	peersAt   time.Time
	peersErr  error
	requests  *prometheus.CounterVec
	retries   prometheus.Counter
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
	if o.Token == nil {
		return nil, errors.New("frontdoor: no token for the kubemons")
	}
	if o.PeerCache <= 0 {
		o.PeerCache = 5 * time.Second
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 2 * time.Second
	}
	if o.BufferLimit <= 0 {
		o.BufferLimit = 64 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.TLS == nil {
		o.TLS = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // self-signed kubemons; the token is audience-bound
	}
	p := &Proxy{o: o,
		backend: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:     o.TLS,
			TLSHandshakeTimeout: 5 * time.Second,
			ForceAttemptHTTP2:   true,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     90 * time.Second,
		},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kubemon", Subsystem: "frontdoor", Name: "requests_total",
			Help: "Requests the front door sent on, by the backend that answered: local (the kubemon in this pod), peer (a peer replica's, after the local one failed), none (no backend answered; the client got 503).",
		}, []string{"backend"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "kubemon", Subsystem: "frontdoor", Name: "retries_total",
			Help: "Times a request was sent again to the next backend after one failed before answering.",
		}),
		localDown: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "kubemon", Subsystem: "frontdoor", Name: "local_down",
			Help: "1 when the last request to the local kubemon failed before it answered, else 0.",
		}),
	}
	for _, b := range []string{BackendLocal, BackendPeer, BackendNone} {
		p.requests.WithLabelValues(b)
	}
	if o.Registerer != nil {
		if err := errors.Join(o.Registerer.Register(p.requests), o.Registerer.Register(p.retries), o.Registerer.Register(p.localDown)); err != nil {
			return nil, fmt.Errorf("frontdoor: registering metrics: %w", err)
		}
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:       p.rewrite,
		Transport:     roundTripper(p.roundTrip),
		ErrorHandler:  p.fail,
		FlushInterval: -1, // stream answers as they come (long range queries, watches)
		ErrorLog:      slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
	}
	return p, nil
}

// tokenKey holds the front door's token in a request's context, for
// rewrite.
type tokenKey struct{}

// ServeHTTP sends r on as the user the authentication before it found.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, ok := request.UserFrom(r.Context()); !ok {
		p.o.Logger.Error("frontdoor: a request reached the proxy unauthenticated", "path", r.URL.Path)
		status(w, http.StatusInternalServerError, "InternalError", "the front door found no authenticated user")
		return
	}
	tok, err := p.o.Token()
	if err != nil {
		p.o.Logger.Error("frontdoor: reading the front door's token", "err", err)
		status(w, http.StatusServiceUnavailable, "ServiceUnavailable", "the front door has no credential for the kubemons")
		return
	}
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tokenKey{}, tok)))
}

// rewrite makes the outgoing request: the backend's scheme (the host is
// set per attempt) and the caller's identity in place of its credentials.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = "https"
	pr.Out.URL.Host = p.o.Local
	pr.Out.Host = ""
	u, _ := request.UserFrom(pr.In.Context()) // ServeHTTP checked it
	tok, _ := pr.In.Context().Value(tokenKey{}).(string)
	forwarded.Set(pr.Out.Header, u, tok)
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// repeatable reports whether r may be sent again after a backend failed
// before answering: a safe method and no body.
func repeatable(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0
	}
	return false
}

// watching reports whether r asks for a watch, an answer without end.
func watching(r *http.Request) bool {
	w := r.URL.Query().Get("watch")
	return w == "true" || w == "1"
}

// try sends r to one backend. A repeatable request's answer is read whole,
// up to BufferLimit bytes, before it counts as answered: a backend that
// dies while sending it has failed, and the next one may answer.
func (p *Proxy) try(r *http.Request) (*http.Response, error) {
	resp, err := p.backend.RoundTrip(r)
	if err != nil || !repeatable(r) || watching(r) {
		return resp, err
	}
	held, err := io.ReadAll(io.LimitReader(resp.Body, p.o.BufferLimit+1))
	if err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("reading the answer (%d bytes in): %w", len(held), err)
	}
	if int64(len(held)) <= p.o.BufferLimit {
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(held))
		resp.ContentLength = int64(len(held))
		return resp, nil
	}
	resp.Body = readCloser{io.MultiReader(bytes.NewReader(held), resp.Body), resp.Body}
	return resp, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// roundTrip sends r to the local kubemon, then, while r is repeatable and
// the last backend failed before answering, to each peer in turn.
func (p *Proxy) roundTrip(r *http.Request) (*http.Response, error) {
	ctx := r.Context()
	resp, err := p.try(r)
	if err == nil {
		if p.down.Swap(false) {
			p.localDown.Set(0)
			p.o.Logger.Info("frontdoor: the local kubemon answers again", "local", p.o.Local)
		}
		p.requests.WithLabelValues(BackendLocal).Inc()
		return resp, nil
	}
	if ctx.Err() != nil {
		return nil, err // the client gave up: no failure of the kubemon's
	}
	if !p.down.Swap(true) {
		p.localDown.Set(1)
		p.o.Logger.Warn("frontdoor: the local kubemon failed; sending requests to a peer", "local", p.o.Local, "err", err)
	}
	errs := []error{fmt.Errorf("local %s: %w", p.o.Local, err)}
	if !repeatable(r) {
		p.requests.WithLabelValues(BackendNone).Inc()
		return nil, errors.Join(append(errs, fmt.Errorf("%s with a body is not sent twice", r.Method))...)
	}
	peers, perr := p.peerList(ctx)
	if perr != nil {
		errs = append(errs, fmt.Errorf("listing peers: %w", perr))
	}
	for _, addr := range peers {
		if ctx.Err() != nil {
			break
		}
		p.retries.Inc()
		again := r.Clone(ctx)
		again.URL.Host = addr
		resp, err := p.try(again)
		if err == nil {
			p.requests.WithLabelValues(BackendPeer).Inc()
			return resp, nil
		}
		errs = append(errs, fmt.Errorf("peer %s: %w", addr, err))
	}
	p.requests.WithLabelValues(BackendNone).Inc()
	return nil, errors.Join(errs...)
}

// fail answers a request no backend answered.
func (p *Proxy) fail(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client went away
	}
	p.o.Logger.Warn("frontdoor: no backend answered", "method", r.Method, "path", r.URL.Path, "err", err)
	status(w, http.StatusServiceUnavailable, "ServiceUnavailable", "no kubemon replica answered: "+err.Error())
}

// status writes a Kubernetes Status, the form the aggregation layer and
// kubectl show.
func status(w http.ResponseWriter, code int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"kind": "Status", "apiVersion": "v1", "status": "Failure",
		"message": msg, "reason": reason, "code": code,
	})
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
