package app

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	promrules "github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"

	"github.com/kubemon/kubemon/internal/api/promapi"
	"github.com/kubemon/kubemon/internal/config"
	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/notify"
	"github.com/kubemon/kubemon/internal/rules"
	"github.com/kubemon/kubemon/internal/store"
)

// startRules evaluates the configured rule files and the default pack over
// reads (the store, or the query backend) with the query API's engine,
// appends what they record to the store, sends their alerts where
// cfg.Alerting says, and reloads the files on SIGHUP. A bad rule file is an
// error here, naming it and its line. It returns what /api/v1/rules and
// /api/v1/alerts list: nil when no rules are evaluated.
func startRules(cfg config.Config, st *store.Store, reads storage.Queryable, engine promql.QueryEngine, log *slog.Logger, reg prometheus.Registerer, goRun func(string, func(context.Context) error)) (promapi.RulesRetriever, error) {
	if !cfg.RulesOn() {
		return nil, nil
	}
	ext := labels.FromMap(cfg.Alerting.ExternalLabels)
	var notifyFunc promrules.NotifyFunc
	if len(cfg.Alerting.Alertmanagers) > 0 || len(cfg.Alerting.Webhooks) > 0 {
		n, err := notify.New(notify.Options{
			Alertmanagers: cfg.Alerting.Alertmanagers, Webhooks: cfg.Alerting.Webhooks,
			ExternalLabels: ext, ExternalURL: cfg.Alerting.ExternalURL,
			Logger: log.With("component", "notify"), Registerer: reg,
		})
		if err != nil {
			return nil, err
		}
		notifyFunc = n.Notify
		goRun("notifier", n.Run)
	}
	m, err := rules.New(rules.Options{
		Files: cfg.Rules.Files, DefaultRules: cfg.Rules.DefaultRules, Interval: cfg.RulesInterval(),
		Rollups: cfg.ShardRollups(), RollupInterval: cfg.Interval,
		Engine: engine, Queryable: reads, Appendable: st.DB(), Notify: notifyFunc,
		ExternalLabels: ext, ExternalURL: cfg.Alerting.ExternalURL,
		NotStored: notStored(cfg.Drop()),
		Logger:    log, Registerer: reg,
	})
	if err != nil {
		return nil, err
	}
	goRun("rules", m.Run)
	goRun("rules reload on SIGHUP", func(ctx context.Context) error {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-hup:
				log.Info("SIGHUP: reloading the rule files")
				_ = m.Reload() // a failure is logged and counted; the rules before keep evaluating
			}
		}
	})
	return m, nil
}

// notStored says whether a series name is one kubemon writes that the drop
// patterns keep out of the store.
func notStored(drop []string) func(string) bool {
	table := store.DropTable(drop)
	return func(name string) bool {
		l, m, ok := model.ParseSeriesName(name)
		return ok && table[l][m]
	}
}
