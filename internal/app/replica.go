package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubemon/kubemon/internal/config"
	"github.com/kubemon/kubemon/internal/replica"
	"github.com/kubemon/kubemon/internal/store"
)

// serviceAccountToken is where a pod finds its service account's token.
const serviceAccountToken = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// newFiller notes where the local history ends and returns the filler that
// reads the rest from a peer (its Run waits a few intervals first); nil
// when no peers are configured. Call it before the first scrape.
func newFiller(ctx context.Context, cfg config.Config, st *store.Store, found discovered, listen net.Addr, log *slog.Logger, reg prometheus.Registerer) (*replica.Filler, error) {
	r := cfg.Replica
	if !r.Enabled() {
		return nil, nil
	}
	peers := func(context.Context) ([]string, error) { return r.Peers, nil }
	if r.PeerSelector != "" {
		if found.kube == nil {
			return nil, errors.New("replica: --replica.peer-selector finds the peers' pods in the Kubernetes API: turn on Kubernetes discovery (--kubernetes or --kubeconfig)")
		}
		self, err := podIdentity("")
		if err != nil {
			return nil, fmt.Errorf("replica: %w", err)
		}
		_, port, err := net.SplitHostPort(listen.String())
		if err != nil {
			return nil, err
		}
		ns := podNamespace("")
		peers = func(ctx context.Context) ([]string, error) {
			return peerPods(ctx, found.kube, ns, r.PeerSelector, self, port)
		}
	}
	token := r.TokenFile
	if token == "" {
		if _, err := os.Stat(serviceAccountToken); err == nil {
			token = serviceAccountToken
		}
	}
	f, err := replica.New(replica.Options{DB: st.DB(), Peers: peers, BearerTokenFile: token,
		Interval: cfg.Interval, Retention: cfg.Retention, Logger: log.With("component", "replica"), Registerer: reg})
	if err != nil {
		return nil, err
	}
	from, to := f.Hole()
	// With a peer ready now, its samples are the ones kept up to the
	// hole's end: this replica's own first samples (rates without a
	// baseline yet) would sit beside them. With none (replicas: 1, or all
	// down at once) the own samples are kept and the fill, if a peer comes,
	// merges with them.
	held := false
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if ps, err := peers(pctx); err == nil && len(ps) > 0 {
		st.SetFloor(to)
		held = true
	}
	log.Info("replica: the history a peer will fill", "from", time.UnixMilli(from).UTC(), "to", time.UnixMilli(to).UTC(),
		"ownSamplesLeftToPeer", held, "peers", r.Peers, "peerSelector", r.PeerSelector)
	return f, nil
}

// peerPods are the base URLs (http://podIP:port) of the ready pods in ns
// that match selector, self excluded, sorted: every replica tries its peers
// in the same order.
func peerPods(ctx context.Context, kube kubernetes.Interface, ns, selector, self, port string) ([]string, error) {
	addrs, err := peerAddrs(ctx, kube, ns, selector, self, port)
	for i, a := range addrs {
		addrs[i] = "http://" + a
	}
	return addrs, err
}

// peerAddrs are the addresses (podIP:port) of the ready pods in ns that
// match selector, self excluded, sorted.
func peerAddrs(ctx context.Context, kube kubernetes.Interface, ns, selector, self, port string) ([]string, error) {
	pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range pods.Items {
		if p.Name == self || p.DeletionTimestamp != nil || p.Status.PodIP == "" || !podReady(&p) {
			continue
		}
		out = append(out, net.JoinHostPort(p.Status.PodIP, port))
	}
	slices.Sort(out)
	return out, nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
