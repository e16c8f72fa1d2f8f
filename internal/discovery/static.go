// Package discovery finds the nodes to scrape and what is known of them and
// of their pods: client-go informers on the Kubernetes API (Nodes, Pods,
// Namespaces, and the ReplicaSets and Jobs that resolve a pod's workload),
// or a static list, or a v1.NodeList read from a file or polled from a URL.
package discovery

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubemon/kubemon/internal/model"
)

// AddressTypes is the default order in which node addresses are preferred.
var AddressTypes = []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeHostName, corev1.NodeExternalIP}

// DefaultKubeletPort is used when a Node does not report its kubelet port.
const DefaultKubeletPort = 10250

// Static is a fixed target list.
type Static struct {
	mu      sync.RWMutex
	targets []model.Target
}

// NewStatic returns a Static with targets.
func NewStatic(targets []model.Target) *Static { return &Static{targets: targets} }

// Targets returns the current list.
func (s *Static) Targets() []model.Target {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.targets
}

// Set replaces the list.
func (s *Static) Set(t []model.Target) {
	s.mu.Lock()
	s.targets = t
	s.mu.Unlock()
}

// Target turns a Node into a scrape target: the first address of the
// given types, in their order, and the kubelet port from
// status.daemonEndpoints (port, when not 0, overrides it).
func Target(n *corev1.Node, scheme string, types []corev1.NodeAddressType, port int) (model.Target, error) {
	addr := ""
	for _, t := range types {
		for _, a := range n.Status.Addresses {
			if a.Type == t && a.Address != "" && addr == "" {
				addr = a.Address
			}
		}
	}
	if addr == "" {
		return model.Target{}, fmt.Errorf("node %s has no address of types %v", n.Name, types)
	}
	if port == 0 {
		port = int(n.Status.DaemonEndpoints.KubeletEndpoint.Port)
	}
	if port == 0 {
		port = DefaultKubeletPort
	}
	return model.Target{
		Node: n.Name,
		URL:  scheme + "://" + net.JoinHostPort(addr, strconv.Itoa(port)),
		Meta: NodeMeta(n),
	}, nil
}

// NodeMeta extracts capacity, allocatable and labels.
func NodeMeta(n *corev1.Node) model.NodeMeta {
	cores := func(l corev1.ResourceList) float64 {
		if q, ok := l[corev1.ResourceCPU]; ok {
			return float64(q.MilliValue()) / 1000
		}
		return math.NaN()
	}
	mem := func(l corev1.ResourceList) float64 {
		if q, ok := l[corev1.ResourceMemory]; ok {
			return float64(q.Value())
		}
		return math.NaN()
	}
	return model.NodeMeta{
		Name:              n.Name,
		Labels:            n.Labels,
		CPUCapacity:       cores(n.Status.Capacity),
		CPUAllocatable:    cores(n.Status.Allocatable),
		MemoryCapacity:    mem(n.Status.Capacity),
		MemoryAllocatable: mem(n.Status.Allocatable),
	}
}

// FromNodeList decodes a v1.NodeList into targets. Nodes without a usable
// address are returned as errors and left out.
func FromNodeList(data []byte, scheme string) ([]model.Target, []error, error) {
	var list corev1.NodeList
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, nil, fmt.Errorf("decode node list: %w", err)
	}
	var ts []model.Target
	var errs []error
	for i := range list.Items {
		t, err := Target(&list.Items[i], scheme, AddressTypes, 0)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ts = append(ts, t)
	}
	return ts, errs, nil
}

// LoadFile reads a NodeList file into targets.
func LoadFile(path, scheme string) ([]model.Target, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ts, _, err := FromNodeList(data, scheme)
	return ts, err
}

// Poller polls a URL answering a v1.NodeList and keeps Static up to date.
type Poller struct {
	URL      string
	Scheme   string
	Interval time.Duration
	Client   *http.Client
	Token    string
	Logger   *slog.Logger
	*Static
}

// Poll fetches the list once.
func (p *Poller) Poll(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)
	if err != nil {
		return err
	}
	if p.Token != "" {
		req.Header.Set("Authorization", "Bearer "+p.Token)
	}
	resp, err := p.Client.Do(req)
	if err != nil {
		return fmt.Errorf("poll nodes: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("poll nodes: GET %s: %s", p.URL, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("poll nodes: %w", err)
	}
	ts, errs, err := FromNodeList(data, p.Scheme)
	if err != nil {
		return err
	}
	for _, e := range errs {
		p.Logger.Warn("node left out", "err", e)
	}
	p.Set(ts)
	return nil
}

// Run polls every Interval until ctx ends; a failed poll keeps the last list.
func (p *Poller) Run(ctx context.Context) error {
	t := time.NewTicker(p.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := p.Poll(ctx); err != nil {
				p.Logger.Warn("node list poll failed; keeping the last list", "err", err)
			}
		}
	}
}
