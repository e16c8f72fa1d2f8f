package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubemon/kubemon/internal/config"
	"github.com/kubemon/kubemon/internal/shard"
)

// serviceAccountNamespace is where a pod finds its own namespace.
const serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// startShard joins this member to the ring of cfg.Shard (its Lease
// renewed, the others' read) and returns the ring, whose Filter is what
// the member scrapes: its share of what discovery finds.
func startShard(ctx context.Context, cfg config.Config, found discovered, log *slog.Logger, reg prometheus.Registerer, goRun func(string, func(context.Context) error)) (*shard.Ring, error) {
	if found.kube == nil {
		return nil, errors.New("shard: members find each other through Leases in the Kubernetes API: turn on Kubernetes discovery (--kubernetes or --kubeconfig)")
	}
	id := cfg.Shard.Identity
	if id == "" {
		id = os.Getenv("POD_NAME")
	}
	if id == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("shard: no identity (--shard.identity, $POD_NAME) and no host name: %w", err)
		}
		id = h
	}
	ns := cfg.Shard.Namespace
	if ns == "" {
		ns = os.Getenv("POD_NAMESPACE")
	}
	if ns == "" {
		if b, err := os.ReadFile(serviceAccountNamespace); err == nil {
			ns = strings.TrimSpace(string(b))
		}
	}
	if ns == "" {
		ns = "default"
	}
	ring, err := shard.New(shard.Options{Client: found.kube, Namespace: ns, Ring: cfg.Shard.Ring, Identity: id,
		Interval: cfg.Interval, ReplicationFactor: cfg.Shard.ReplicationFactor, Logger: log.With("component", "shard"), Registerer: reg})
	if err != nil {
		return nil, err
	}
	if err := ring.Start(ctx); err != nil {
		return nil, err
	}
	log.Info("shard: member of the ring", "ring", cfg.Shard.Ring, "identity", id, "namespace", ns,
		"replicationFactor", cfg.Shard.ReplicationFactor, "members", ring.Members())
	goRun("shard", ring.Run)
	return ring, nil
}
