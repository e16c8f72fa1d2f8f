package main

import (
	"flag"
	"maps"
	"slices"
	"strings"

	"github.com/kubemon/kubemon/internal/config"
)

// alertFlags binds the flags of rules and alerts (docs/alerts.md).
func alertFlags(fs *flag.FlagSet, c *config.Config) {
	fs.Var(&listFlag{dst: &c.Rules.Files}, "rules", "Prometheus rule `file` or glob (.yml, .yaml) of alerting and recording rules, reloaded on SIGHUP and when it changes (repeatable; replaces the config file's rules.files)")
	fs.DurationVar(&c.Rules.EvaluationInterval, "rules.evaluation-interval", c.Rules.EvaluationInterval, "how often the rules are evaluated (0: 1m, or the scrape interval when longer)")
	fs.BoolVar(&c.Rules.DefaultRules, "default-rules", c.Rules.DefaultRules, "evaluate kubemon's default rule pack (docs/alerts.md)")
	fs.Var(&listFlag{dst: &c.Alerting.Alertmanagers}, "alertmanager-url", "`URL` of an Alertmanager the alerts are sent to, API v2 (repeatable; replaces the config file's alerting.alertmanagers)")
	fs.Var(&listFlag{dst: &c.Alerting.Webhooks}, "alert-webhook-url", "`URL` POSTed Alertmanager's webhook JSON when an alert fires and when it resolves (repeatable; replaces the config file's alerting.webhooks)")
	fs.Var(&labelFlag{dst: &c.Alerting.ExternalLabels}, "alert-external-label", "`name=value` label added to every alert sent, e.g. cluster=prod (repeatable; replaces the config file's alerting.externalLabels)")
	fs.StringVar(&c.Alerting.ExternalURL, "alert-external-url", c.Alerting.ExternalURL, "kubemon's URL as its users reach it: alerts link to their rule's query there")
}

// listFlag is a repeatable flag of one item per use: the uses on the
// command line replace the config file's list (the first use in a parse
// pass empties it, the next ones add to it).
type listFlag struct {
	dst *[]string
	set bool
}

func (f *listFlag) String() string {
	if f.dst == nil {
		return ""
	}
	return strings.Join(*f.dst, ",")
}

func (f *listFlag) Set(s string) error {
	if !f.set {
		*f.dst, f.set = nil, true
	}
	*f.dst = append(*f.dst, s)
	return nil
}

// reset starts a new parse pass (see parse).
func (f *listFlag) reset() { f.set = false }

// labelFlag is a repeatable name=value flag that replaces the config
// file's map, as listFlag replaces a list.
type labelFlag struct {
	dst *map[string]string
	set bool
}

func (f *labelFlag) String() string {
	if f.dst == nil {
		return ""
	}
	var out []string
	for _, k := range sortedKeys(*f.dst) {
		out = append(out, k+"="+(*f.dst)[k])
	}
	return strings.Join(out, ",")
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}

func (f *labelFlag) Set(s string) error {
	name, value, err := config.ParseLabel(s)
	if err != nil {
		return err
	}
	if !f.set || *f.dst == nil {
		*f.dst = map[string]string{}
		f.set = true
	}
	(*f.dst)[name] = value
	return nil
}

func (f *labelFlag) reset() { f.set = false }
