package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Rules configures the evaluation of Prometheus rule files over the store
// (docs/alerts.md).
type Rules struct {
	// Files are Prometheus rule files (alerting and recording rules):
	// paths, which must exist, or globs, which may match nothing yet; each
	// ends in .yml or .yaml. They are reloaded on SIGHUP and when they
	// change.
	Files []string `yaml:"files"`
	// EvaluationInterval is how often the rules are evaluated (a group's
	// own interval: wins); 0 means DefaultEvaluationInterval, or the
	// scrape interval when that is longer.
	EvaluationInterval time.Duration `yaml:"evaluationInterval"`
	// DefaultRules evaluates kubemon's default rule pack; on by default.
	DefaultRules bool `yaml:"defaultRules"`
}

// Alerting says where the rules' alerts are sent.
type Alerting struct {
	// Alertmanagers are Alertmanagers' URLs
	// (http[s]://[user:password@]host:port[/path-prefix]); alerts go to
	// their API v2.
	Alertmanagers []string `yaml:"alertmanagers"`
	// Webhooks are URLs POSTed Alertmanager's webhook JSON when an alert
	// fires and when it resolves.
	Webhooks []string `yaml:"webhooks"`
	// ExternalLabels are added to every alert sent (e.g. cluster: prod)
	// and given to the rules' templates as $externalLabels.
	ExternalLabels map[string]string `yaml:"externalLabels"`
	// ExternalURL is kubemon's URL as its users reach it: alerts link to
	// their rule's query there (generatorURL).
	ExternalURL string `yaml:"externalURL"`
}

// DefaultEvaluationInterval is how often rules are evaluated unless
// rules.evaluationInterval says otherwise: Prometheus's default
// (global.evaluation_interval). The default pack's range queries over
// every container cost about a quarter of kubemon's CPU on a 1,000-node
// cluster when evaluated every 15 s (docs/performance.md).
const DefaultEvaluationInterval = time.Minute

// RulesInterval is the effective evaluation interval of the rules: the one
// set, else DefaultEvaluationInterval or the scrape interval, the longer.
func (c *Config) RulesInterval() time.Duration {
	if c.Rules.EvaluationInterval > 0 {
		return c.Rules.EvaluationInterval
	}
	return max(DefaultEvaluationInterval, c.Interval)
}

// RulesOn reports whether any rules are evaluated.
func (c *Config) RulesOn() bool {
	return c.Rules.DefaultRules || len(c.Rules.Files) > 0 || c.ShardRollups()
}

// ShardRollups says whether this kubemon evaluates the roll-up rules
// (namespaces, workloads, the cluster) over its query backend: a sharded
// member, which makes no roll-ups of its own, that reads one.
func (c *Config) ShardRollups() bool { return c.Shard.Enabled && c.Query.URL != "" }

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// validateAlerting reports the problems of the rules' and alerts' settings.
func validateAlerting(c *Config, bad func(string, ...any)) {
	r, a := c.Rules, c.Alerting
	if d := r.EvaluationInterval; d != 0 && (d < time.Second || d > time.Hour) {
		bad("rules.evaluationInterval %s: want 1s to 1h (0: the scrape interval)", d)
	}
	for _, f := range r.Files {
		if strings.TrimSpace(f) == "" {
			bad("rules.files: an empty file name")
			continue
		}
		if _, err := filepath.Match(f, ""); err != nil {
			bad("rules.files %q: %v", f, err)
			continue
		}
		if ext := strings.ToLower(filepath.Ext(f)); !strings.ContainsAny(f, `*?[`) && ext != ".yml" && ext != ".yaml" {
			bad("rules.files %q: a rule file must end in .yml or .yaml", f)
		}
	}
	checkURL := func(key, raw string) {
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			bad("%s: not a URL", key)
		case u.Scheme != "http" && u.Scheme != "https":
			bad("%s %s: want an http or https URL", key, redactURL(raw))
		case u.Host == "":
			bad("%s %s: no host", key, redactURL(raw))
		case u.RawQuery != "" || u.Fragment != "":
			bad("%s %s: want no query or fragment", key, redactURL(raw))
		}
	}
	for _, u := range a.Alertmanagers {
		checkURL("alerting.alertmanagers", u)
	}
	for _, u := range a.Webhooks {
		checkURL("alerting.webhooks", u)
	}
	if a.ExternalURL != "" {
		if u, err := url.Parse(a.ExternalURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("alerting.externalURL %q: want an http or https URL", a.ExternalURL)
		}
	}
	keys := make([]string, 0, len(a.ExternalLabels))
	for k := range a.ExternalLabels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !labelName.MatchString(k) || strings.HasPrefix(k, "__") {
			bad("alerting.externalLabels %q: not a label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)", k)
		}
		if a.ExternalLabels[k] == "" {
			bad("alerting.externalLabels %q: empty value", k)
		}
	}
	if (len(a.Alertmanagers) > 0 || len(a.Webhooks) > 0) && !c.RulesOn() {
		bad("alerting: alerts are sent but no rules are evaluated (rules.defaultRules is off and rules.files is empty)")
	}
}

// ParseLabel reads a name=value pair (--alert-external-label).
func ParseLabel(s string) (name, value string, err error) {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return "", "", fmt.Errorf("%q: want name=value", s)
	}
	return name, value, nil
}

// redactURL hides a URL's credentials (user information, query) in
// messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable URL>"
	}
	u.User = nil
	u.RawQuery = ""
	return u.String()
}
