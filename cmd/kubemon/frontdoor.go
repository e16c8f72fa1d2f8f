package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"k8s.io/klog/v2"

	"github.com/kubemon/kubemon/internal/app"
	"github.com/kubemon/kubemon/internal/config"
)

// parseFrontDoor reads frontdoor's flags.
func parseFrontDoor(args []string, stderr io.Writer) (app.FrontDoorConfig, config.Log, error) {
	c := app.FrontDoorConfig{Listen: ":4443", Local: "127.0.0.1:4444", TokenFile: "/var/run/secrets/kubemon.io/frontdoor/token"}
	l := config.Log{Level: "info", Format: "text"}
	fs := flag.NewFlagSet("frontdoor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: kubemon frontdoor [flags]\n\n"+
			"The HTTPS proxy of a replica's pod (deploy/optional/ha, the chart's replicas > 1), in front of kubemon's\n"+
			"metrics API: each request goes to the kubemon in the pod; when that one does not answer or dies\n"+
			"before answering (it crashed and is restarting), a GET is sent again to a ready peer replica's.\n"+
			"It authenticates callers as the metrics API does and forwards their identity with its token\n"+
			"(audience kubemon.io/frontdoor); kubemon authorizes them (--metrics-api-front-door-user).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&c.Listen, "listen", c.Listen, "address clients connect to")
	fs.StringVar(&c.Local, "local", c.Local, "address of the kubemon in this pod (its --metrics-api-listen)")
	fs.StringVar(&c.PeerSelector, "peer-selector", "", "label selector of the replicas' pods in this pod's namespace; the ready ones but this pod are the peers (empty: no peers)")
	fs.StringVar(&c.PeerPort, "peer-port", "", "the peers' kubemon port (default: --local's port)")
	fs.StringVar(&c.Kubeconfig, "kubeconfig", "", "kubeconfig for finding the peers (default: in-cluster)")
	fs.StringVar(&c.CertFile, "tls-cert-file", "", "serving certificate (PEM), the metrics API's; self-signed when empty")
	fs.StringVar(&c.KeyFile, "tls-private-key-file", "", "private key (PEM) of --tls-cert-file")
	fs.StringVar(&c.TokenFile, "token-file", c.TokenFile, "the front door's ServiceAccount token for the audience kubemon.io/frontdoor (a projected volume)")
	fs.StringVar(&c.BackendCAFile, "backend-ca-file", "", "CA (PEM) that signed the kubemons' serving certificates; they are verified against it (default: not verified)")
	fs.StringVar(&c.MetricsListen, "metrics-listen", "", "serve the proxy's own metrics at /metrics on this address (off when empty)")
	fs.StringVar(&l.Level, "log-level", l.Level, "debug, info, warn or error")
	fs.StringVar(&l.Format, "log-format", l.Format, "text or json")
	if err := fs.Parse(args); err != nil {
		return c, l, err
	}
	if fs.NArg() > 0 {
		return c, l, fmt.Errorf("frontdoor: unexpected arguments %q", fs.Args())
	}
	return c, l, nil
}

func frontDoor(ctx context.Context, args []string, stderr io.Writer) error {
	c, l, err := parseFrontDoor(args, stderr)
	if err != nil {
		return err
	}
	log := app.NewLogger(l, stderr)
	klog.SetSlogLogger(log)
	return app.RunFrontDoor(ctx, c, log)
}
