// Package rules evaluates Prometheus rule files (alerting and recording
// rules) over kubemon's embedded store with Prometheus's own rule manager
// (github.com/prometheus/prometheus/rules): recording rules and the
// ALERTS / ALERTS_FOR_STATE series are appended to the store, alerts go to
// a notify function. It reads the rule files given (paths or globs) and,
// unless turned off, kubemon's default rule pack, whose series names and
// label keys come from the metric table (internal/model). The files are
// reloaded when they change (polled) or when Reload is called (SIGHUP); a
// bad file is reported with its name and line and the rules already loaded
// keep evaluating.
package rules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	pmodel "github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	promrules "github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
)

// Defaults of Options.
const (
	// DefaultPollInterval is how often the rule files are checked for
	// changes.
	DefaultPollInterval = 5 * time.Second
	// DefaultResendDelay is how often a firing alert is sent again to the
	// notify function (Prometheus's --rules.alert.resend-delay).
	DefaultResendDelay = time.Minute
	// DefaultOutageTolerance and DefaultForGracePeriod restore the `for`
	// state of alerts after a restart (Prometheus's
	// --rules.alert.for-outage-tolerance and --rules.alert.for-grace-period).
	DefaultOutageTolerance = time.Hour
	DefaultForGracePeriod  = 10 * time.Minute
)

// Options configure a Manager.
type Options struct {
	// Files are rule files: paths (which must exist) or globs (which may
	// match nothing yet), each ending in .yml or .yaml.
	Files []string
	// DefaultRules adds kubemon's default rule pack (DefaultPack).
	DefaultRules bool
	// Rollups adds the recording rules of the roll-ups above the node
	// (Rollups), evaluated every RollupInterval: for a sharded member,
	// whose Queryable is the query backend.
	Rollups        bool
	RollupInterval time.Duration
	// Interval is the evaluation interval of every group that does not set
	// its own; required.
	Interval time.Duration
	// Engine evaluates the rules' expressions over Queryable; required
	// (kubemon passes the query API's engine, so rules share its limits).
	Engine promql.QueryEngine
	// Queryable is the store; required.
	Queryable storage.Queryable
	// Appendable receives recording rules' samples and the ALERTS and
	// ALERTS_FOR_STATE series; required.
	Appendable storage.AppendableV2
	// Notify, when set, is given the alerts to send (firing, and resolved
	// ones for 15 minutes), again every ResendDelay while they last.
	Notify promrules.NotifyFunc
	// ExternalLabels are given to the rules' templates ($externalLabels).
	ExternalLabels labels.Labels
	// ExternalURL is given to the rules' templates ($externalURL).
	ExternalURL string
	// PollInterval is how often the files are checked for changes; 0
	// means DefaultPollInterval, a negative value never.
	PollInterval time.Duration
	// ResendDelay: 0 means DefaultResendDelay.
	ResendDelay time.Duration
	// NotStored, when set, says which series names the store keeps out
	// (metricsDrop, metricsSet): each load warns of every rule that
	// selects one, since what it reads is never there.
	NotStored func(name string) bool
	// Logger defaults to a logger that discards everything.
	Logger *slog.Logger
	// Registerer receives Prometheus's rule metrics (prometheus_rule_*)
	// and kubemon_rules_*.
	Registerer prometheus.Registerer
}

// Manager runs the rules. Create it with New, run it with Run.
type Manager struct {
	o       Options
	log     *slog.Logger
	parser  parser.Parser
	builtin []builtinFile // the rendered default pack and roll-up rules, when on
	mgr     *promrules.Manager

	mu sync.Mutex // serializes loads
	// current is the snapshot being evaluated; cur is read by the
	// GroupLoader during Update.
	current *snapshot
	// tried is the signature of the files last tried, good or bad: the
	// poller reloads when the files differ from it.
	tried string

	reloadOK   prometheus.Gauge
	reloadTime prometheus.Gauge
	reloads    *prometheus.CounterVec
	ruleCount  prometheus.Gauge
}

// New checks and loads the rules: any problem in a file is an error naming
// the file and, where the file is parsed, the line. The rules are evaluated
// once Run is called.
func New(o Options) (*Manager, error) {
	switch {
	case o.Interval <= 0:
		return nil, errors.New("rules: evaluation interval must be positive")
	case o.Rollups && o.RollupInterval <= 0:
		return nil, errors.New("rules: the roll-ups' evaluation interval must be positive")
	case o.Engine == nil || o.Queryable == nil || o.Appendable == nil:
		return nil, errors.New("rules: Options.Engine, Queryable and Appendable are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.PollInterval == 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.ResendDelay <= 0 {
		o.ResendDelay = DefaultResendDelay
	}
	if o.ExternalURL != "" {
		if _, err := url.Parse(o.ExternalURL); err != nil {
			return nil, fmt.Errorf("rules: external URL: %w", err)
		}
	}
	m := &Manager{
		o:      o,
		log:    o.Logger,
		parser: parser.NewParser(parser.Options{}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "kubemon", Subsystem: "rules", Name: "last_reload_successful",
			Help: "Whether the last load of the rule files succeeded (1) or failed (0: the rules loaded before keep evaluating).",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "kubemon", Subsystem: "rules", Name: "last_reload_success_timestamp_seconds",
			Help: "When the rule files were last loaded successfully, in Unix seconds.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kubemon", Subsystem: "rules", Name: "reloads_total",
			Help: "Loads of the rule files, by result (success or failure).",
		}, []string{"result"}),
		ruleCount: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "kubemon", Subsystem: "rules", Name: "rules",
			Help: "Rules loaded (alerting and recording, the default pack's included).",
		}),
	}
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{m.reloadOK, m.reloadTime, m.reloads, m.ruleCount} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("rules: registering metrics: %w", err)
			}
		}
	}
	if o.DefaultRules {
		pack, err := DefaultPack()
		if err != nil {
			return nil, err
		}
		m.builtin = append(m.builtin, builtinFile{DefaultPackFile, pack})
	}
	if o.Rollups {
		m.builtin = append(m.builtin, builtinFile{RollupFile, Rollups(o.RollupInterval)})
	}
	m.mgr = promrules.NewManager(&promrules.ManagerOptions{
		QueryFunc:       promrules.EngineQueryFunc(o.Engine, o.Queryable),
		NotifyFunc:      m.notify,
		Context:         context.Background(),
		AppendableV2:    o.Appendable,
		Queryable:       o.Queryable,
		Logger:          o.Logger.With("component", "rules"),
		Registerer:      o.Registerer,
		OutageTolerance: DefaultOutageTolerance,
		ForGracePeriod:  DefaultForGracePeriod,
		ResendDelay:     o.ResendDelay,
		GroupLoader:     groupLoader{m: m},
		Parser:          m.parser,
		ExternalURL:     externalURL(o.ExternalURL),
	})
	if err := m.reload(); err != nil {
		return nil, err
	}
	return m, nil
}

func externalURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil || s == "" {
		return &url.URL{}
	}
	return u
}

// notify hands alerts to Options.Notify.
func (m *Manager) notify(ctx context.Context, expr string, alerts ...*promrules.Alert) {
	if m.o.Notify != nil && len(alerts) > 0 {
		m.o.Notify(ctx, expr, alerts...)
	}
}

// Run evaluates the rules until ctx ends, reloading them when the files
// change. It returns nil when ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.mgr.Run()
	}()
	if m.o.PollInterval > 0 {
		t := time.NewTicker(m.o.PollInterval)
		defer t.Stop()
	loop:
		for {
			select {
			case <-ctx.Done():
				break loop
			case <-t.C:
				m.reloadIfChanged()
			}
		}
	} else {
		<-ctx.Done()
	}
	m.mgr.Stop()
	<-done
	return nil
}

// reloadIfChanged reloads when the files differ from the last ones tried.
func (m *Manager) reloadIfChanged() {
	m.mu.Lock()
	changed := signature(m.o.Files, m.builtin) != m.tried
	m.mu.Unlock()
	if changed {
		m.log.Info("rule files changed, reloading")
		_ = m.Reload() // logged and counted
	}
}

// Reload reads the rule files again and, when every one is good, evaluates
// them instead of the rules before (groups that did not change keep their
// state, as in Prometheus). Otherwise the error names every problem, with
// its file and line, and the rules before keep evaluating.
func (m *Manager) Reload() error {
	err := m.reload()
	if err != nil {
		m.log.Error("rule files not loaded; the rules loaded before keep evaluating", "err", err)
	}
	return err
}

func (m *Manager) reload() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	// The signature of what is read, good or bad: a bad file is reported
	// once per change, not at every poll.
	m.tried = signature(m.o.Files, m.builtin)
	snap, errs := load(m.o.Files, m.builtin, m.parser, m.log)
	if len(errs) == 0 {
		m.current = snap
		if err := m.mgr.Update(m.o.Interval, snap.names(), m.o.ExternalLabels, m.o.ExternalURL, nil); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		m.reloadOK.Set(0)
		m.reloads.WithLabelValues("failure").Inc()
		return fmt.Errorf("rules: %w", errors.Join(errs...))
	}
	n := 0
	for _, f := range snap.files {
		for _, g := range f.groups.Groups {
			n += len(g.Rules)
		}
	}
	m.reloadOK.Set(1)
	m.reloadTime.SetToCurrentTime()
	m.reloads.WithLabelValues("success").Inc()
	m.ruleCount.Set(float64(n))
	m.log.Info("rules loaded", "files", len(snap.files), "rules", n, "defaultPack", m.o.DefaultRules, "rollups", m.o.Rollups)
	if m.o.NotStored != nil {
		for _, f := range snap.files {
			for _, g := range f.groups.Groups {
				for _, r := range g.Rules {
					if names := notStored(m.parser, r.Expr, m.o.NotStored); len(names) > 0 {
						m.log.Warn("a rule reads series that are not stored (metricsDrop, metricsSet): those parts of it are always empty",
							"file", f.name, "group", g.Name, "rule", r.Alert+r.Record, "series", names)
					}
				}
			}
		}
	}
	return nil
}

// notStored lists the series names expr selects that drop says are not
// stored, each once, in the order expr names them.
func notStored(p parser.Parser, expr string, drop func(string) bool) []string {
	e, err := p.ParseExpr(expr)
	if err != nil {
		return nil // load checked it
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok && vs.Name != "" && drop(vs.Name) && !slices.Contains(names, vs.Name) {
			names = append(names, vs.Name)
		}
		return nil
	})
	return names
}

// RuleGroups are the groups being evaluated, by file then name.
func (m *Manager) RuleGroups() []*promrules.Group { return m.mgr.RuleGroups() }

// AlertingRules are the alerting rules being evaluated.
func (m *Manager) AlertingRules() []*promrules.AlertingRule { return m.mgr.AlertingRules() }

// groupLoader serves the rule manager the files of the load in progress.
type groupLoader struct{ m *Manager }

func (l groupLoader) Load(identifier string, _ bool, _ pmodel.ValidationScheme) (*rulefmt.RuleGroups, []error) {
	// Called by Update, under m.mu.
	if f := l.m.current.byName(identifier); f != nil {
		return f.groups, nil
	}
	return nil, []error{fmt.Errorf("%s: not among the rule files loaded (%s)", identifier, strings.Join(l.m.current.names(), ", "))}
}

func (l groupLoader) Parse(query string) (parser.Expr, error) { return l.m.parser.ParseExpr(query) }
