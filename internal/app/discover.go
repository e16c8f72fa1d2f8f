package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubemon/kubemon/internal/config"
	"github.com/kubemon/kubemon/internal/discovery"
	"github.com/kubemon/kubemon/internal/model"
)

// discovered is what discovery found: the targets, the pods' metadata, the
// Kubernetes objects' listers, and the credentials kubelets are reached
// with.
type discovered struct {
	targets func() []model.Target
	// pods is nil unless discovery knows the pods (then /pods is not read).
	pods func(node string) []model.PodMeta
	// namespaces gives the namespaces' labels; nil without the Kubernetes API.
	namespaces func() map[string]map[string]string
	client     *http.Client
	token      string
	// nodeLister and podLister are nil without the Kubernetes API.
	nodeLister listerscorev1.NodeLister
	podLister  listerscorev1.PodLister
	// kubeconfig is the file the Kubernetes API was reached with; "" in a
	// pod (in-cluster).
	kubeconfig string
	// kube is the Kubernetes API's client discovery uses; nil without it.
	kube kubernetes.Interface
}

// syncTimeout bounds the wait for the Kubernetes informers' first list.
const syncTimeout = time.Minute

// fixed, when set, is the caller's target list (demo): no discovery runs.
func discover(ctx context.Context, cfg config.Config, fixed func() []model.Target, log *slog.Logger, goRun func(string, func(context.Context) error)) (discovered, error) {
	d := cfg.Discovery
	inPod := os.Getenv("KUBERNETES_SERVICE_HOST") != ""
	if fixed == nil && (d.Kubernetes || d.Kubeconfig != "" || (inPod && d.NodesURL == "" && d.NodesFile == "")) {
		return discoverKubernetes(ctx, cfg, log)
	}
	hc, token, err := kubeletHTTP(cfg.Scrape, cfg.ScrapeTimeout())
	if err != nil {
		return discovered{}, err
	}
	found := discovered{client: hc, token: token}
	switch {
	case fixed != nil:
		found.targets = fixed
	case d.NodesFile != "":
		ts, err := discovery.LoadFile(d.NodesFile, d.KubeletScheme)
		if err != nil {
			return discovered{}, fmt.Errorf("discovery: %w", err)
		}
		found.targets = discovery.NewStatic(ts).Targets
	case d.NodesURL != "":
		p := &discovery.Poller{URL: d.NodesURL, Scheme: d.KubeletScheme, Interval: cfg.Interval,
			Client: hc, Token: token, Logger: log, Static: discovery.NewStatic(nil)}
		if err := p.Poll(ctx); err != nil {
			log.Warn("first node list poll failed; retrying every interval", "err", err)
		}
		goRun("discovery", p.Run)
		found.targets = p.Targets
	default:
		// Not in a pod (there the Kubernetes API is the default) and no
		// discovery given: nothing would ever be scraped.
		if !d.AllowEmpty {
			return discovered{}, errNoDiscovery
		}
		log.Warn("no discovery configured and --allow-empty-discovery: nothing to scrape")
		found.targets = discovery.NewStatic(nil).Targets
	}
	return found, nil
}

// errNoDiscovery is discover's answer outside a pod with no discovery
// configured and discovery.allowEmpty off.
var errNoDiscovery = errors.New("discovery: no nodes to discover: not running in a pod (KUBERNETES_SERVICE_HOST unset) and no discovery given. " +
	"Give the Kubernetes API with --kubeconfig FILE or --kubernetes ($KUBECONFIG or ~/.kube/config), " +
	"a URL answering a v1.NodeList with --nodes-url (such as `kubemon sim`'s /api/v1/nodes), " +
	"or a file holding a v1.NodeList with --nodes-file (or their discovery.* keys in the --config file); " +
	"`kubemon demo` monitors a simulated cluster; --allow-empty-discovery starts anyway, scraping nothing")

// discoverKubernetes discovers from the Kubernetes API and reaches kubelets
// with the same credentials: the service account's in a pod, the
// kubeconfig's outside.
func discoverKubernetes(ctx context.Context, cfg config.Config, log *slog.Logger) (discovered, error) {
	rc, kubeconfig, err := restConfig(cfg.Discovery.Kubeconfig)
	if err != nil {
		return discovered{}, fmt.Errorf("discovery: %w", err)
	}
	if cfg.Discovery.APIServer != "" {
		rc.Host = cfg.Discovery.APIServer
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return discovered{}, fmt.Errorf("discovery: %w", err)
	}
	types := make([]corev1.NodeAddressType, 0, len(cfg.Discovery.AddressTypes))
	for _, t := range cfg.Discovery.AddressTypes {
		types = append(types, corev1.NodeAddressType(t))
	}
	io := discovery.InformerOptions{Scheme: cfg.Discovery.KubeletScheme, AddressTypes: types, KubeletPort: cfg.Discovery.KubeletPort, Logger: log}
	if cfg.Discovery.NodeProxy {
		io.ProxyURL = rc.Host
	}
	inf, err := discovery.NewInformers(cs, io)
	if err != nil {
		return discovered{}, err
	}
	sctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	if err := inf.RunContext(ctx, sctx); err != nil {
		return discovered{}, fmt.Errorf("listing nodes and pods from %s: %w", rc.Host, err)
	}
	log.Info("discovering from the Kubernetes API", "host", rc.Host, "nodes", len(inf.Targets()), "nodeProxy", cfg.Discovery.NodeProxy)

	kc := rest.CopyConfig(rc)
	if !cfg.Discovery.NodeProxy {
		kc.ServerName = "" // kubelets are verified by their own names
		if cfg.Scrape.InsecureSkipVerify {
			kc.Insecure = true
			kc.CAFile, kc.CAData = "", nil
		}
		if cfg.Scrape.CAFile != "" {
			kc.CAFile, kc.CAData = cfg.Scrape.CAFile, nil
		}
		if cfg.Scrape.BearerTokenFile != "" {
			kc.BearerTokenFile, kc.BearerToken = cfg.Scrape.BearerTokenFile, ""
		}
	}
	rt, err := rest.TransportFor(kc)
	if err != nil {
		return discovered{}, fmt.Errorf("kubelet client: %w", err)
	}
	return discovered{
		targets: inf.Targets, pods: inf.Pods, namespaces: inf.NamespaceLabels, client: &http.Client{Transport: rt},
		nodeLister: inf.NodeLister(), podLister: inf.PodLister(), kubeconfig: kubeconfig, kube: cs,
	}, nil
}

// restConfig is the in-cluster configuration when there is no kubeconfig
// and kubemon runs in a pod, else the kubeconfig's (given, $KUBECONFIG or
// ~/.kube/config). path is the kubeconfig file it read, "" in-cluster.
func restConfig(kubeconfig string) (rc *rest.Config, path string, err error) {
	if kubeconfig == "" {
		if rc, err := rest.InClusterConfig(); err == nil {
			return rc, "", nil
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	rc, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if kubeconfig == "" {
		kubeconfig = rules.GetDefaultFilename()
	}
	return rc, kubeconfig, err
}

// kubeletHTTP builds the HTTP client and bearer token for kubelets found
// without the Kubernetes API.
func kubeletHTTP(s config.Scrape, timeout time.Duration) (*http.Client, string, error) {
	tlsCfg := &tls.Config{InsecureSkipVerify: s.InsecureSkipVerify} //nolint:gosec // opt-in, warned about by the caller
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, "", fmt.Errorf("scrape.caFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, "", fmt.Errorf("scrape.caFile %s: no PEM certificates", s.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	tr.MaxIdleConnsPerHost = 2
	// Every kubelet's connection is kept for the next scrape: the default
	// transport keeps 100 in all, so with more nodes most scrapes dialed
	// (and shook hands) anew, 6 % of the CPU at 1,000 nodes.
	tr.MaxIdleConns = 0
	tr.ResponseHeaderTimeout = timeout
	token := ""
	if s.BearerTokenFile != "" {
		b, err := os.ReadFile(s.BearerTokenFile)
		if err != nil {
			return nil, "", fmt.Errorf("scrape.bearerTokenFile: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	return &http.Client{Transport: tr}, token, nil
}
