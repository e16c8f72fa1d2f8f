package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/kubernetes"

	"github.com/kubemon/kubemon/internal/frontdoor"
)

// FrontDoorConfig configures `kubemon frontdoor`, the proxy in each
// replica's pod in front of kubemon's metrics API port.
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
}

// RunFrontDoor serves the front door until ctx ends.
func RunFrontDoor(ctx context.Context, c FrontDoorConfig, log *slog.Logger) error {
	if c.Listen == "" || c.Local == "" {
		return errors.New("frontdoor: --listen and --local are required")
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
		rc, _, err := restConfig(c.Kubeconfig)
		if err != nil {
			return fmt.Errorf("frontdoor: Kubernetes client: %w", err)
		}
		rc.Timeout = 5 * time.Second
		kube, err := kubernetes.NewForConfig(rc)
		if err != nil {
			return fmt.Errorf("frontdoor: Kubernetes client: %w", err)
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
	p, err := frontdoor.New(frontdoor.Options{Local: c.Local, Peers: peers, Logger: log, Registerer: reg})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("frontdoor: %w", err)
	}
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
	log.Info("frontdoor: serving", "listen", ln.Addr().String(), "local", c.Local, "peerSelector", c.PeerSelector, "peerPort", c.PeerPort)
	return p.Serve(ctx, ln)
}
