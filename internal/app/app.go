// Package app is kubemon's one wiring point: it builds discovery, the
// scrape loops, the pipeline, the store and the APIs from a Config, hands
// discovery's pods to the pipeline and its listers to the metrics API, and
// runs them as one group until the context ends or one part fails.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/prometheus/storage"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/client-go/kubernetes"

	"github.com/kubemon/kubemon/internal/api/forwarded"
	"github.com/kubemon/kubemon/internal/api/heapster"
	"github.com/kubemon/kubemon/internal/api/kubeauth"
	"github.com/kubemon/kubemon/internal/api/metricsapi"
	"github.com/kubemon/kubemon/internal/api/promapi"
	"github.com/kubemon/kubemon/internal/config"
	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/pipeline"
	"github.com/kubemon/kubemon/internal/querybackend"
	"github.com/kubemon/kubemon/internal/replica"
	"github.com/kubemon/kubemon/internal/scrape"
	"github.com/kubemon/kubemon/internal/shard"
	"github.com/kubemon/kubemon/internal/store"
	"github.com/kubemon/kubemon/internal/ui"
	"github.com/kubemon/kubemon/internal/version"
)

// Options are what the caller adds to a Config.
type Options struct {
	// Targets, when set, replaces discovery from the config (demo).
	Targets func() []model.Target
	// Handlers are mounted on the API's mux (demo: the simulator's /sim/).
	Handlers map[string]http.Handler
	// Listener, when set, is used instead of listening on Config.Listen.
	Listener net.Listener
	// Ready, when set, receives the API's address once it listens.
	Ready func(addr string)
	// Logger overrides the logger built from the config.
	Logger *slog.Logger
	// EventFeed, when set, is the source of events instead of the
	// Kubernetes API (demo: the simulator's pods).
	EventFeed EventFeed
}

// NewLogger builds the logger the config asks for, writing to w.
func NewLogger(c config.Log, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	ho := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

// Run runs kubemon until ctx ends, then shuts down cleanly: the HTTP server
// stops, the loops end and the store is closed.
func Run(ctx context.Context, cfg config.Config, o Options) error {
	if errs := cfg.Validate(); len(errs) > 0 {
		return fmt.Errorf("invalid configuration: %w", errors.Join(errs...))
	}
	log := o.Logger
	if log == nil {
		log = NewLogger(cfg.Log, os.Stderr)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "kubemon", Name: "build_info", Help: "A metric with a constant '1' value labeled by version, revision and goversion from which kubemon was built.",
		ConstLabels: prometheus.Labels{"version": version.Version, "revision": version.Revision, "goversion": version.GoVersion},
	}, func() float64 { return 1 }))

	st, err := store.Open(store.Options{Dir: cfg.DataDir, Retention: cfg.Retention, RetentionSize: int64(cfg.RetentionSize), BlockDuration: cfg.BlockDuration, Drop: cfg.Drop(), Logger: log, Registerer: reg})
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("closing the store", "err", err)
		}
	}()

	ctx, g := newGroup(ctx, log)
	defer g.stop()
	goRun := g.run

	found, err := discover(ctx, cfg, o.Targets, log, goRun)
	if err != nil {
		return err
	}
	// Who may read is settled before anything else starts: a listener
	// beyond loopback with nobody to check callers is refused at once.
	ln := o.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
	}
	defer ln.Close() // Serve closes it too; this covers the early returns
	mode, err := authMode(cfg, ln.Addr(), found.kube != nil)
	if err != nil {
		return err
	}
	targets := found.targets
	var ring *shard.Ring
	if cfg.Shard.Enabled {
		if ring, err = startShard(ctx, cfg, found, log, reg, goRun); err != nil {
			return err
		}
		targets = ring.Filter(found.targets)
	}

	// Before the first scrape: where the local history ends.
	filler, err := newFiller(ctx, cfg, st, found, ln.Addr(), log, reg)
	if err != nil {
		return err
	}

	client := scrape.NewClient(scrape.ClientOptions{
		Endpoint:   scrape.Endpoint(cfg.Scrape.Endpoint),
		HTTPClient: found.client, BearerToken: found.token, Timeout: cfg.ScrapeTimeout(),
		MaxBytes: cfg.Scrape.MaxBytes, FetchPods: cfg.Scrape.FetchPods && found.pods == nil, Cadvisor: cfg.Scrape.DiskIO,
	})
	collector := pipeline.NewCollector(pipeline.CollectorOptions{
		Interval: cfg.Interval, Targets: targets, Namespaces: found.namespaces, Pods: found.pods, Partial: cfg.Shard.Enabled, Logger: log, Registerer: reg,
		Emit: func(ctx context.Context, b *model.Batch) {
			n, err := st.Append(ctx, b)
			if err != nil {
				log.Error("storing batch", "err", err, "appended", n)
			}
			log.Debug("cycle stored", "entries", len(b.Entries), "samples", n)
		},
	})
	manager := scrape.NewManager(scrape.ManagerOptions{
		Interval: cfg.Interval, Scraper: client, Targets: targets,
		Handle: func(ctx context.Context, t model.Target, stats *model.NodeStats, err error) {
			collector.Handle(ctx, t, stats, err)
			if stats != nil {
				scrape.ReleaseEntries(stats.Entries) // the collector keeps none of them
			}
		},
		Logger: log, Registerer: reg,
	})
	if ring != nil {
		// A member that joins or leaves moves nodes now, not at the next interval.
		ring.OnChange(func() { manager.Reconcile(ctx) })
	}

	// What the APIs, the UI and the rules read: the local store, or the
	// query backend that holds every member's data.
	reads := st.Queryable()
	if cfg.Query.URL != "" {
		qb, err := querybackend.New(querybackend.Options{URL: cfg.Query.URL, Timeout: cfg.Query.Timeout})
		if err != nil {
			return err
		}
		reads = qb
		log.Info("queries read the query backend", "url", qb.String())
	}
	prom, err := promapi.New(promapi.Options{Queryable: reads, Logger: log, Registerer: reg,
		MaxConcurrency: cfg.Query.MaxConcurrency, QueryTimeout: cfg.Query.Timeout, MaxSamples: cfg.Query.MaxSamples,
		ActiveQueryDir: cfg.DataDir, // queries.active beside the TSDB, as Prometheus keeps it
		Targets:        func() []promapi.Target { return apiTargets(manager.Targets(), cfg) },
		Runtime: promapi.RuntimeInfo{StartTime: time.Now(), Retention: cfg.Retention, RetentionSize: int64(cfg.RetentionSize),
			ScrapeInterval: cfg.Interval, EventsEnabled: cfg.Events.Enabled},
	})
	if err != nil {
		return err
	}
	defer prom.Close()

	ruleSet, err := startRules(cfg, st, reads, prom.Engine(), log, reg, goRun)
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	heapster.New(heapster.Options{Queryable: reads, Logger: log}).Register(mux)
	prom.Register(mux)
	prom.RegisterRules(mux, ruleSet)
	// The local store, whatever the APIs read: what a peer replica fills
	// its hole from (and what a Prometheus can remote-read).
	mux.Handle("POST "+replica.ReadPath, replica.ReadHandler(st.DB(), log.With("component", "remote-read"), reg))
	evs, err := startEvents(cfg, found.kube, o.EventFeed, mux, log, reg, g)
	if err != nil {
		return err
	}
	defer evs.close(log)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	ok := func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }
	mux.HandleFunc("GET /healthz", ok)
	mux.HandleFunc("GET /livez", ok)
	var metricsAPI *metricsapi.Server // set below when configured
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !collector.Ready() {
			http.Error(w, "not ready: most nodes delivered no data recently", http.StatusServiceUnavailable)
			return
		}
		if filler != nil && !filler.Attempted() {
			http.Error(w, "not ready: filling the history from a peer replica", http.StatusServiceUnavailable)
			return
		}
		if metricsAPI != nil && !metricsAPI.Serving() {
			http.Error(w, "not ready: the metrics API is not serving", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	webUI, err := ui.New()
	if err != nil {
		return err
	}
	webUI.Register(mux)
	if cfg.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	for p, h := range o.Handlers {
		mux.Handle(p, h)
	}
	if cfg.MetricsAPI.Listen != "" {
		if metricsAPI, err = startMetricsAPI(cfg, reads, found, mux, log, goRun); err != nil {
			return err
		}
	}

	var handler http.Handler = mux
	if mode == config.AuthKubernetes {
		if handler, err = protect(found.kube, mux, log, reg); err != nil {
			return err
		}
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	log.Info("kubemon serving", "addr", "http://"+ln.Addr().String(), "version", version.Version, "revision", version.Revision, "dataDir", cfg.DataDir, "interval", cfg.Interval, "auth", mode, "pprof", cfg.Pprof)
	if o.Ready != nil {
		o.Ready(ln.Addr().String())
	}
	exporters, err := startSinks(cfg, st.Queryable(), log, reg, goRun)
	if err != nil {
		return err
	}
	goRun("self series", selfSeries{store: st, sinks: exporters, limit: int64(cfg.RetentionSize), dir: cfg.DataDir, interval: cfg.Interval, log: log}.run)
	goRun("scrape", manager.Run)
	if filler != nil {
		goRun("replica fill", filler.Run)
	}
	goRun("pipeline", collector.Run)
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(ln) }()

	select {
	case <-ctx.Done():
		err = g.err() // nil for the caller's context (a signal), else the part that failed
	case err = <-srvErr:
		log.Error("http server", "err", err)
	}
	shutdown, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	_ = srv.Shutdown(shutdown)
	g.stop()
	log.Info("kubemon stopped", "err", err)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// apiTargets are the nodes' scrape states as /api/v1/targets lists them.
func apiTargets(ts []scrape.TargetStatus, cfg config.Config) []promapi.Target {
	out := make([]promapi.Target, 0, len(ts))
	for _, t := range ts {
		instance := t.Target.URL
		if u, err := url.Parse(t.Target.URL); err == nil && u.Host != "" {
			instance = u.Host
		}
		out = append(out, promapi.Target{
			Labels:    map[string]string{"job": "kubelet", "instance": instance, model.LabelNode: t.Target.Node},
			ScrapeURL: t.Target.URL, Health: t.Health, LastError: t.LastError,
			LastScrape: t.LastScrape, LastScrapeDuration: t.LastDuration,
			ScrapeInterval: cfg.Interval, ScrapeTimeout: cfg.ScrapeTimeout(),
		})
	}
	return out
}

// publicPaths answer without credentials: the probes and the UI's page
// (which holds no cluster data; its assets are under ui.AssetPrefix).
var publicPaths = []string{"/healthz", "/livez", "/readyz", "/"}

// authMode resolves cfg.Auth for an API listening on addr: auto means no
// authentication on loopback, else the Kubernetes API's (which must then
// be reachable: haveKube).
func authMode(cfg config.Config, addr net.Addr, haveKube bool) (string, error) {
	switch cfg.Auth {
	case config.AuthNone:
		return config.AuthNone, nil
	case config.AuthKubernetes:
		if !haveKube {
			return "", errors.New("auth kubernetes: needs the Kubernetes API (--kubernetes, --kubeconfig, or running in a pod) to review tokens")
		}
		return config.AuthKubernetes, nil
	}
	if tcp, ok := addr.(*net.TCPAddr); ok && tcp.IP.IsLoopback() {
		return config.AuthNone, nil
	}
	if haveKube {
		return config.AuthKubernetes, nil
	}
	return "", fmt.Errorf("listen %s: the HTTP API would answer beyond this machine with nobody to check callers against; "+
		"listen on 127.0.0.1, give the Kubernetes API (--kubeconfig) so bearer tokens are reviewed, or pass --auth=none to serve everyone", addr)
}

// protect puts the HTTP API behind bearer tokens that the Kubernetes API
// reached with cs authenticates (TokenReview) and authorizes
// (SubjectAccessReview) as the same request under the kubemon.io/v1alpha1
// aggregated API: one role grants both paths; the probes stay open.
func protect(cs kubernetes.Interface, h http.Handler, log *slog.Logger, reg prometheus.Registerer) (http.Handler, error) {
	f, err := kubeauth.New(kubeauth.Options{Client: cs, Public: publicPaths, PublicPrefixes: []string{ui.AssetPrefix}, ResourcePrefix: metricsapi.HTTPAPIPrefix, Logger: log.With("component", "auth"), Registerer: reg})
	if err != nil {
		return nil, err
	}
	return f.Handler(h), nil
}

// startMetricsAPI serves metrics.k8s.io on its own HTTPS listener.
func startMetricsAPI(cfg config.Config, q storage.Queryable, found discovered, httpAPI http.Handler, log *slog.Logger, goRun func(string, func(context.Context) error)) (*metricsapi.Server, error) {
	if found.nodeLister == nil {
		return nil, errors.New("the metrics API (metricsAPI.listen) needs discovery from the Kubernetes API (--kubernetes, --kubeconfig, or running in a pod)")
	}
	ln, err := net.Listen("tcp", cfg.MetricsAPI.Listen)
	if err != nil {
		return nil, fmt.Errorf("metrics API: listen: %w", err)
	}
	reader := metricsapi.NewReader(q)
	// Objects not scraped for three intervals (and at least the default)
	// are not reported.
	reader.MaxAge = max(reader.MaxAge, 3*cfg.Interval)
	var fwd authenticator.Request
	if u := cfg.MetricsAPI.FrontDoorUser; u != "" {
		a, err := forwarded.New(found.kube.AuthenticationV1(), u)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("metrics API: %w", err)
		}
		fwd = a
	}
	srv, err := metricsapi.New(metricsapi.Options{
		Listener: ln, CertFile: cfg.MetricsAPI.CertFile, KeyFile: cfg.MetricsAPI.KeyFile, Kubeconfig: found.kubeconfig,
		Metrics: reader, Nodes: found.nodeLister, Pods: found.podLister, Version: version.Version, Logger: log,
		HTTPAPI: httpAPI, Forwarded: fwd,
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	log.Info("serving metrics.k8s.io", "addr", "https://"+ln.Addr().String(), "selfSignedCert", cfg.MetricsAPI.CertFile == "", "frontDoorUser", cfg.MetricsAPI.FrontDoorUser)
	goRun("metrics API", srv.Run)
	return srv, nil
}
