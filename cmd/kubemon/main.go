// Command kubemon monitors every container of a Kubernetes cluster.
//
//	kubemon serve    the monitor
//	kubemon demo     the monitor plus an in-process simulated cluster
//	kubemon sim      a simulated cluster on its own
//	kubemon version  the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/kubemon/kubemon/internal/app"
	"github.com/kubemon/kubemon/internal/backfill"
	"github.com/kubemon/kubemon/internal/config"
	"github.com/kubemon/kubemon/internal/discovery"
	"github.com/kubemon/kubemon/internal/memlimit"
	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/sim"
	"github.com/kubemon/kubemon/internal/version"
)

const usage = `kubemon monitors every container of a Kubernetes cluster.

Usage:
  kubemon serve   [flags]   run the monitor
  kubemon demo    [flags]   run the monitor against an in-process simulated cluster
  kubemon sim     [flags]   run a simulated cluster (hollow kubelets) on its own
  kubemon backfill [flags]  write days of the simulated cluster's history into a data directory, as TSDB blocks
  kubemon frontdoor [flags] proxy a replica's metrics API port to the kubemon in its pod, or to a peer while it is down
  kubemon version           print the version

Run "kubemon <command> -h" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "kubemon:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "demo":
		return demo(ctx, args[1:], stdout, stderr)
	case "sim":
		return simulate(ctx, args[1:], stdout, stderr)
	case "backfill":
		return backfillCmd(ctx, args[1:], stderr)
	case "frontdoor":
		return frontDoor(ctx, args[1:], stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, version.String())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// serveFlags binds the flags shared by serve and demo; they override the
// config file, which overrides the defaults.
func serveFlags(fs *flag.FlagSet, c *config.Config) *string {
	path := fs.String("config", "", "YAML configuration file (flags override it)")
	fs.StringVar(&c.Listen, "listen", c.Listen, "host:port of the HTTP API")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory of the embedded store")
	fs.DurationVar(&c.Interval, "interval", c.Interval, "scrape interval and cycle length")
	fs.DurationVar(&c.Retention, "retention", c.Retention, "how long samples are kept")
	fs.DurationVar(&c.BlockDuration, "block-duration", c.BlockDuration, "time range of the blocks the store's head cuts, a divisor of 2h (0: 2h); the head holds 1 to 1.5 times it")
	fs.Var(&c.RetentionSize, "retention-size", "most bytes the store keeps on disk, oldest blocks deleted first (e.g. 8GiB; 0: no limit)")
	fs.StringVar(&c.Auth, "auth", c.Auth, "who may read the HTTP API: kubernetes (bearer tokens the Kubernetes API authenticates and authorizes), none, or auto (none on loopback, else kubernetes)")
	fs.BoolVar(&c.Pprof, "enable-pprof", c.Pprof, "serve /debug/pprof on the HTTP API (behind --auth like the rest)")
	fs.DurationVar(&c.Scrape.Timeout, "scrape-timeout", c.Scrape.Timeout, "timeout of each scrape of a kubelet, all its requests together (0: 80% of the interval, at most 10s)")
	fs.Int64Var(&c.Scrape.MaxBytes, "scrape-max-bytes", c.Scrape.MaxBytes, "size limit of each kubelet response, in bytes")
	fs.StringVar(&c.Scrape.Endpoint, "kubelet-endpoint", c.Scrape.Endpoint, "kubelet endpoint for stats: summary (/stats/summary), resource (/metrics/resource) or cadvisor (/metrics/cadvisor)")
	fs.BoolVar(&c.Scrape.DiskIO, "kubelet-cadvisor", c.Scrape.DiskIO, "also read each kubelet's /metrics/cadvisor for what the Summary API lacks: disk IO, CPU throttling (CFS) and OOM events")
	fs.BoolVar(&c.Scrape.DiskIO, "kubelet-disk-io", c.Scrape.DiskIO, "the same as --kubelet-cadvisor (its older name)")
	fs.Var((*stringList)(&c.MetricsDrop), "metrics-drop", "comma-separated `series` not to store, with shell wildcards (e.g. 'container_memory_*page_faults*,*_uptime_seconds'; \"\": none)")
	fs.StringVar(&c.MetricsSet, "metrics-set", c.MetricsSet, "a named series set in place of --metrics-drop: default, large-cluster (what kubectl top, the HPA and the UI's CPU and memory pages read; for thousands of nodes) or all")
	fs.IntVar(&c.Query.MaxConcurrency, "query.max-concurrency", c.Query.MaxConcurrency, "most PromQL queries run at once; more wait")
	fs.DurationVar(&c.Query.Timeout, "query.timeout", c.Query.Timeout, "longest a PromQL query may run (waiting included)")
	fs.IntVar(&c.Query.MaxSamples, "query.max-samples", c.Query.MaxSamples, "most samples a PromQL query may hold in memory at once")
	fs.BoolVar(&c.Shard.Enabled, "shard", c.Shard.Enabled, "be one member of a ring that divides the nodes (Leases in the Kubernetes API, rendezvous hashing); roll-ups above the node are left to --query-url's backend")
	fs.IntVar(&c.Shard.ReplicationFactor, "shard.replication-factor", c.Shard.ReplicationFactor, "how many members scrape each node")
	fs.StringVar(&c.Shard.Ring, "shard.ring", c.Shard.Ring, "name of the ring (its Leases' kubemon.io/ring label)")
	fs.StringVar(&c.Shard.Identity, "shard.identity", c.Shard.Identity, "this member's name in the ring (default: $POD_NAME, else the host name)")
	fs.StringVar(&c.Shard.Namespace, "shard.namespace", c.Shard.Namespace, "namespace of the ring's Leases (default: $POD_NAMESPACE, else the pod's service account namespace, else default)")
	fs.Var((*stringList)(&c.Replica.Peers), "replica.peers", "comma-separated base `URLs` of the other replicas (http://host:port) whose history fills this one's after it was down")
	fs.StringVar(&c.Replica.PeerSelector, "replica.peer-selector", c.Replica.PeerSelector, "label `selector` of the replicas' pods in this pod's namespace (e.g. app.kubernetes.io/name=kubemon): the ready ones but this pod are the peers")
	fs.StringVar(&c.Replica.TokenFile, "replica.token-file", c.Replica.TokenFile, "`file` holding the bearer token sent to peers (default: the pod's service account token)")
	fs.StringVar(&c.Query.URL, "query-url", c.Query.URL, "`URL` of a Prometheus-compatible query API (e.g. Thanos Query) that the APIs, the UI and the rules read instead of the local store")
	fs.DurationVar(&c.Interval, "metric_resolution", c.Interval, "Heapster's name of --interval")
	fs.Var(&sinkFlag{dst: &c.Sinks}, "sink", "a sink that gets every stored sample, in Heapster's form TYPE:URL?OPTIONS (repeatable; replaces the config file's sinks), "+
		"e.g. influxdb:http://monitoring-influxdb:8086?db=k8s&user=root&pw=root&retention=7d&withfields=true or remotewrite:http://prometheus:9090/api/v1/write?label=cluster:prod")
	eventFlags(fs, c)
	alertFlags(fs, c)
	fs.StringVar(&c.Log.Level, "log-level", c.Log.Level, "debug, info, warn or error")
	fs.StringVar(&c.Log.Format, "log-format", c.Log.Format, "text or json")
	return path
}

// parse parses args into c: the defaults already in c, then the config
// file, then the flags that were given.
//
// The first pass finds --config (and reports bad flags before any file is
// read); the file then overwrites c, flags included; and the second pass
// parses the same args again, so every flag's Set runs once more with its
// own command-line text, in command-line order. Reading the values back
// with Flag.Value.String() and setting them again would not do: that
// assumes every Value prints what it was set from, and a flag.Func prints
// "" (--sim-mode with --config became ""). Replaying the raw arguments
// holds for every kind of flag, present and future; it only asks that Set
// replace rather than accumulate, or, for a repeatable flag (--sink), that
// its Value have a reset method, called before the second pass.
func parse(fs *flag.FlagSet, args []string, c *config.Config, path *string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if *path == "" {
		return nil
	}
	if err := c.Load(*path); err != nil {
		return err
	}
	fs.VisitAll(func(f *flag.Flag) {
		if r, ok := f.Value.(interface{ reset() }); ok {
			r.reset()
		}
	})
	return fs.Parse(args)
}

// sinkFlag is the repeatable --sink: the sinks given on the command line
// replace the config file's (the first use in a parse pass empties the
// list, the next ones add to it).
type sinkFlag struct {
	dst *[]config.Sink
	set bool
}

func (f *sinkFlag) String() string { return "" }

func (f *sinkFlag) Set(s string) error {
	sk, err := config.ParseSink(s)
	if err != nil {
		return err
	}
	if !f.set {
		*f.dst, f.set = nil, true
	}
	*f.dst = append(*f.dst, sk)
	return nil
}

// reset starts a new parse pass (see parse).
func (f *sinkFlag) reset() { f.set = false }

// stringList is a comma-separated list flag. Each use replaces the list;
// items are trimmed of spaces ("a, b" is [a b]); "" is the empty list, so a
// flag can empty a list the config file set; an empty item ("a,,b") is an
// error. String prints what Set reads.
type stringList []string

func (l *stringList) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

func (l *stringList) Set(s string) error {
	if strings.TrimSpace(s) == "" {
		*l = nil
		return nil
	}
	var items []string
	for _, it := range strings.Split(s, ",") {
		if it = strings.TrimSpace(it); it == "" {
			return fmt.Errorf("%q: empty item in the comma-separated list", s)
		}
		items = append(items, it)
	}
	*l = items
	return nil
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	c, err := parseServe(args, stderr)
	if err != nil {
		return err
	}
	log := app.NewLogger(c.Log, stderr)
	klog.SetSlogLogger(log) // client-go and k8s.io/apiserver log through klog
	setMemoryLimit(log)
	if c.Scrape.InsecureSkipVerify {
		log.Warn("kubelet TLS verification is off (--kubelet-insecure-tls): anyone on the path can impersonate a kubelet")
	}
	return app.Run(ctx, c, app.Options{Logger: log})
}

// setMemoryLimit gives the Go runtime a soft memory limit below the
// container's (internal/memlimit), unless GOMEMLIMIT is set.
func setMemoryLimit(log *slog.Logger) {
	set, why, err := memlimit.Set("/sys/fs/cgroup")
	switch {
	case err != nil:
		log.Warn("no Go memory limit from the cgroup", "err", err)
	case set > 0:
		log.Info("Go memory limit set", "bytes", set, "from", why)
	}
}

// parseServe is serve's configuration: the defaults, the --config file over
// them, the flags given over both. It does not validate (app.Run does).
func parseServe(args []string, stderr io.Writer) (config.Config, error) {
	c := config.Default()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := serveFlags(fs, &c)
	fs.BoolVar(&c.Discovery.Kubernetes, "kubernetes", c.Discovery.Kubernetes, "discover nodes, pods and owners from the Kubernetes API (automatic in a pod)")
	fs.StringVar(&c.Discovery.Kubeconfig, "kubeconfig", c.Discovery.Kubeconfig, "kubeconfig for the Kubernetes API (implies --kubernetes; default in a pod: in-cluster)")
	fs.BoolVar(&c.Discovery.NodeProxy, "kubelet-node-proxy", c.Discovery.NodeProxy, "reach kubelets through the apiserver's node proxy instead of directly")
	fs.Var((*stringList)(&c.Discovery.AddressTypes), "kubelet-address-types", "comma-separated node address `types`, in the order tried for direct access")
	fs.StringVar(&c.Discovery.NodesURL, "nodes-url", c.Discovery.NodesURL, "URL answering a v1.NodeList (such as the /api/v1/nodes of kubemon sim), polled every interval")
	fs.StringVar(&c.Discovery.NodesFile, "nodes-file", c.Discovery.NodesFile, "file holding a v1.NodeList")
	fs.BoolVar(&c.Discovery.AllowEmpty, "allow-empty-discovery", c.Discovery.AllowEmpty, "start even with nothing to discover (outside a pod, with no --kubernetes, --kubeconfig, --nodes-url or --nodes-file): nothing is scraped")
	fs.StringVar(&c.Discovery.KubeletScheme, "kubelet-scheme", c.Discovery.KubeletScheme, "scheme to reach kubelets: https or http")
	fs.IntVar(&c.Discovery.KubeletPort, "kubelet-port", c.Discovery.KubeletPort, "kubelet port for every node instead of each Node's own (0: the Node's)")
	fs.Func("source", "Heapster's --source, mapped onto kubemon's discovery and scrape flags, e.g. kubernetes.summary_api:https://kubernetes.default?kubeletHttps=true&kubeletPort=10250&useServiceAccount=true", c.ApplySource)
	fs.BoolVar(&c.Scrape.InsecureSkipVerify, "kubelet-insecure-tls", c.Scrape.InsecureSkipVerify, "do not verify kubelets' serving certificates (insecure)")
	fs.StringVar(&c.Scrape.CAFile, "kubelet-ca-file", c.Scrape.CAFile, "CA bundle that signed kubelets' serving certificates")
	fs.StringVar(&c.Scrape.BearerTokenFile, "kubelet-token-file", c.Scrape.BearerTokenFile, "file holding the bearer token sent to kubelets")
	fs.BoolVar(&c.Scrape.FetchPods, "kubelet-fetch-pods", c.Scrape.FetchPods, "read each kubelet's /pods for requests, limits and owners")
	fs.StringVar(&c.MetricsAPI.Listen, "metrics-api-listen", c.MetricsAPI.Listen, "host:port to serve metrics.k8s.io (kubectl top, HPA) over HTTPS, e.g. :4443; off when empty")
	fs.StringVar(&c.MetricsAPI.CertFile, "tls-cert-file", c.MetricsAPI.CertFile, "serving certificate (PEM) of the metrics API; self-signed when empty")
	fs.StringVar(&c.MetricsAPI.KeyFile, "tls-private-key-file", c.MetricsAPI.KeyFile, "private key (PEM) of --tls-cert-file")
	fs.StringVar(&c.MetricsAPI.FrontDoorUser, "metrics-api-front-door-user", c.MetricsAPI.FrontDoorUser, "the ServiceAccount kubemon's front door runs as (system:serviceaccount:NS:NAME): the metrics API authorizes the callers it forwards (with a token for the audience kubemon.io/frontdoor); off when empty")
	err := parse(fs, args, &c, path)
	return c, err
}

func simFlags(fs *flag.FlagSet) *sim.Options {
	o := &sim.Options{}
	fs.IntVar(&o.Nodes, "nodes", 3, "simulated nodes")
	fs.IntVar(&o.PodsPerNode, "pods-per-node", 10, "pods on each simulated node")
	fs.IntVar(&o.ContainersPerPod, "containers-per-pod", 2, "containers in each simulated pod")
	fs.Int64Var(&o.Seed, "seed", 1, "seed of the simulated cluster")
	fs.Func("sim-mode", "realistic (time-varying usage, restarts, pod churn) or constant (fixed, known usage)", func(s string) error {
		o.Mode = sim.Mode(s)
		return nil
	})
	fs.Func("sim-cadvisor", "what the simulated kubelets' /metrics/cadvisor carries: kubelet (a v1.36 kubelet's families and label sets, the default) or lean (only the families kubemon reads)", func(s string) error {
		p, err := sim.ParseCadvisorPayload(s)
		o.Cadvisor = p
		return err
	})
	return o
}

// parseDemo is demo's configuration, layered as parseServe's over demo's
// own defaults, and the simulated cluster's options (flags only).
func parseDemo(args []string, stderr io.Writer) (config.Config, *sim.Options, error) {
	c := config.Default()
	c.Listen = "127.0.0.1:8080"
	c.DataDir = "kubemon-demo-data"
	c.Interval = 10 * time.Second
	c.Scrape.DiskIO = true
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := serveFlags(fs, &c)
	so := simFlags(fs)
	err := parse(fs, args, &c, path)
	return c, so, err
}

func demo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, so, err := parseDemo(args, stderr)
	if err != nil {
		return err
	}
	log := app.NewLogger(c.Log, stderr)
	setMemoryLimit(log)
	so.Logger = log.With("component", "sim")
	cl, err := startSim(ctx, *so)
	if err != nil {
		return err
	}
	defer cl.Close()
	targets := simTargets(cl)
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return app.Run(ctx, c, app.Options{
		Logger:    log,
		Listener:  ln,
		Targets:   discovery.NewStatic(targets).Targets,
		Handlers:  map[string]http.Handler{"/sim/": cl.Handler()},
		EventFeed: demoEvents(cl, c.Interval, log),
		Ready: func(addr string) {
			fmt.Fprintf(stdout, "kubemon demo: %d simulated nodes × %d pods\n", len(targets), so.PodsPerNode)
			fmt.Fprintf(stdout, "  UI and APIs:  http://%s/\n", addr)
			fmt.Fprintf(stdout, "  model API:    http://%s/api/v1/model/namespaces/\n", addr)
			fmt.Fprintf(stdout, "  PromQL:       http://%s/api/v1/query?query=sum(rate(%s[1m]))\n", addr, model.PromName(model.LevelContainer, model.CPUUsage))
			fmt.Fprintf(stdout, "  events:       http://%s/api/v1/events?limit=20\n", addr)
			fmt.Fprintf(stdout, "  sim truth:    http://%s/sim/truth\n", addr)
		},
	})
}

// startSim builds and starts a simulated cluster; the caller closes it.
func startSim(ctx context.Context, o sim.Options) (*sim.Cluster, error) {
	cl, err := sim.New(o)
	if err != nil {
		return nil, err
	}
	if err := cl.Start(ctx); err != nil {
		cl.Close()
		return nil, err
	}
	return cl, nil
}

// simTargets are the simulated nodes with their kubelets' own addresses
// (the backfill builds the same targets on an in-process transport).
func simTargets(cl *sim.Cluster) []model.Target {
	return backfill.Targets(cl, func(n sim.NodeInfo) string { return "http://" + net.JoinHostPort(n.Address, fmt.Sprint(n.Port)) })
}

func simulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8081", "host:port of the cluster-wide endpoints (/api/v1/nodes, /sim/truth)")
	so := simFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	so.Logger = app.NewLogger(config.Log{Level: "info", Format: "text"}, stderr)
	cl, err := startSim(ctx, *so)
	if err != nil {
		return err
	}
	defer cl.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: cl.Handler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "kubemon sim: %d nodes × %d pods; node list at http://%s/api/v1/nodes, truth at http://%s/sim/truth\n",
		len(cl.Nodes()), so.PodsPerNode, ln.Addr(), ln.Addr())
	fmt.Fprintf(stdout, "  monitor it: kubemon serve --nodes-url http://%s/api/v1/nodes --kubelet-scheme http\n", ln.Addr())
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
