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
	id, err := podIdentity(cfg.Shard.Identity)
	if err != nil {
		return nil, fmt.Errorf("shard: no identity (--shard.identity): %w", err)
	}
	ns := podNamespace(cfg.Shard.Namespace)
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

// podIdentity is this pod's name: explicit when given, else $POD_NAME (the
// downward API), else the host name (a pod's, unless it uses the host's
// network).
func podIdentity(explicit string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	if id := os.Getenv("POD_NAME"); id != "" {
		return id, nil
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("no $POD_NAME and no host name: %w", err)
	}
	return h, nil
}

// podNamespace is this pod's namespace: explicit when given, else
// $POD_NAMESPACE, else the service account's namespace, else "default".
func podNamespace(explicit string) string {
	if explicit != "" {
		return explicit
	}
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile(serviceAccountNamespace); err == nil {
		if ns := strings.TrimSpace(string(b)); ns != "" {
			return ns
		}
	}
	return "default"
}
