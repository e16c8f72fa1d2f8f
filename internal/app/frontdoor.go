package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	genericapifilters "k8s.io/apiserver/pkg/endpoints/filters"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/client-go/kubernetes"

	"github.com/kubemon/kubemon/internal/frontdoor"
)

// FrontDoorConfig configures `kubemon frontdoor`, the HTTPS proxy in each
// replica's pod in front of kubemon's metrics API.
type FrontDoorConfig struct {
	// Listen is where clients connect (the pod's metrics API port, :4443).
	Listen string
	// Local is the kubemon in the same pod (127.0.0.1:4444).
	Local string
	// PeerSelector selects the replicas' pods in this pod's namespace; the
	// ready ones but this pod are the peers, at PeerPort.
	PeerSelector string
	// PeerPort is the port of the peers' kubemons (the one Local names).
	PeerPort string
	// Kubeconfig, when set, is used instead of the in-cluster configuration.
	Kubeconfig string
	// MetricsListen, when set, serves the proxy's own metrics at /metrics.
	MetricsListen string
	// CertFile and KeyFile are the serving certificate and key (PEM), the
	// metrics API's; self-signed when both are empty.
	CertFile, KeyFile string
	// TokenFile holds the front door's token for the audience
	// kubemon.io/frontdoor (a projected ServiceAccount token), read again
	// each TokenReread.
	TokenFile string
	// BackendCAFile, when set, verifies the kubemons' serving certificates
	// (the CA of CertFile); else they are not verified.
	BackendCAFile string
}

// TokenReread is how often the front door reads its token file again (the
// kubelet renews a projected token at 80 % of its life, an hour at least).
const TokenReread = time.Minute

// RunFrontDoor serves the front door until ctx ends.
func RunFrontDoor(ctx context.Context, c FrontDoorConfig, log *slog.Logger) error {
	if c.Listen == "" || c.Local == "" || c.TokenFile == "" {
		return errors.New("frontdoor: --listen, --local and --token-file are required")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("frontdoor: give both --tls-cert-file and --tls-private-key-file, or neither for a self-signed certificate")
	}
	token := fileToken(c.TokenFile, TokenReread)
	if _, err := token(); err != nil {
		return fmt.Errorf("frontdoor: %w", err)
	}
	backendTLS, err := backendTLS(c.BackendCAFile)
	if err != nil {
		return fmt.Errorf("frontdoor: --backend-ca-file: %w", err)
	}

	rc, _, err := restConfig(c.Kubeconfig)
	if err != nil {
		return fmt.Errorf("frontdoor: Kubernetes client: %w", err)
	}
	rc.Timeout = 5 * time.Second
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("frontdoor: Kubernetes client: %w", err)
	}
	var peers func(context.Context) ([]string, error)
	if c.PeerSelector != "" {
		if c.PeerPort == "" {
			_, port, err := net.SplitHostPort(c.Local)
			if err != nil {
				return fmt.Errorf("frontdoor: --local %q: %w", c.Local, err)
			}
			c.PeerPort = port
		}
		self, err := podIdentity("")
		if err != nil {
			return fmt.Errorf("frontdoor: %w", err)
		}
		ns := podNamespace("")
		peers = func(ctx context.Context) ([]string, error) {
			return peerAddrs(ctx, kube, ns, c.PeerSelector, self, c.PeerPort)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	p, err := frontdoor.New(frontdoor.Options{Local: c.Local, Peers: peers, Token: token, TLS: backendTLS, Logger: log, Registerer: reg})
	if err != nil {
		return err
	}

	// HTTPS and authentication as kubemon's metrics API has them: the
	// serving certificate, and the callers delegated to the Kubernetes API
	// (the front proxy's client certificate, TokenReview).
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("frontdoor: %w", err)
	}
	serving := genericoptions.NewSecureServingOptions()
	serving.Listener = ln
	serving.ServerCert.CertDirectory = ""
	serving.ServerCert.CertKey.CertFile, serving.ServerCert.CertKey.KeyFile = c.CertFile, c.KeyFile
	if err := serving.MaybeDefaultWithSelfSignedCerts("localhost", nil, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}); err != nil {
		ln.Close()
		return fmt.Errorf("frontdoor: self-signed certificate: %w", err)
	}
	var info *genericapiserver.SecureServingInfo
	if err := serving.ApplyTo(&info); err != nil {
		ln.Close()
		return fmt.Errorf("frontdoor: serving: %w", err)
	}
	authnOpts := genericoptions.NewDelegatingAuthenticationOptions()
	authnOpts.RemoteKubeConfigFile = c.Kubeconfig
	var authn genericapiserver.AuthenticationInfo
	if err := authnOpts.ApplyTo(&authn, info, nil); err != nil {
		ln.Close()
		return fmt.Errorf("frontdoor: delegated authentication: %w", err)
	}
	handler := genericapifilters.WithAuthentication(p, authn.Authenticator, unauthorized(log), nil, authn.RequestHeaderConfig)

	if c.MetricsListen != "" {
		mln, err := net.Listen("tcp", c.MetricsListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("frontdoor: metrics: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(mln) }()
		defer srv.Close()
	}
	stopped, _, err := info.Serve(handler, 10*time.Second, ctx.Done())
	if err != nil {
		return fmt.Errorf("frontdoor: %w", err)
	}
	log.Info("frontdoor: serving", "listen", "https://"+ln.Addr().String(), "local", c.Local, "peerSelector", c.PeerSelector, "peerPort", c.PeerPort,
		"selfSignedCert", c.CertFile == "", "verifyBackends", c.BackendCAFile != "")
	<-stopped
	return nil
}

// backendTLS is the front door's TLS configuration towards the kubemons:
// with caFile, their certificate chains must lead to it (they are reached
// by pod IP, which their certificates do not name, so the name is not
// checked); without it, none is verified.
func backendTLS(caFile string) (*tls.Config, error) {
	if caFile == "" {
		return &tls.Config{InsecureSkipVerify: true}, nil //nolint:gosec // self-signed kubemons; the token is good for kubemon only
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate", caFile)
	}
	return &tls.Config{
		InsecureSkipVerify: true, //nolint:gosec // the chain is verified below, without the name
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the kubemon sent no certificate")
			}
			opts := x509.VerifyOptions{Roots: pool, Intermediates: x509.NewCertPool()}
			for _, ic := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(ic)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		},
	}, nil
}

// unauthorized answers a request whose credentials the delegated
// authentication refused.
func unauthorized(log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.Warn("frontdoor: request not authenticated", "status", http.StatusUnauthorized, "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintln(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}`)
	})
}

// fileToken reads a token file, again at most every reread.
func fileToken(path string, reread time.Duration) func() (string, error) {
	var (
		mu  sync.Mutex
		tok string
		at  time.Time
	)
	return func() (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if tok != "" && time.Since(at) < reread {
			return tok, nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			if tok != "" {
				return tok, nil // keep the last one; the kubelet may be swapping the file
			}
			return "", fmt.Errorf("token file: %w", err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" {
			return "", fmt.Errorf("token file %s is empty", path)
		}
		tok, at = t, time.Now()
		return tok, nil
	}
}
