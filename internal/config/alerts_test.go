package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAlertsDefaults(t *testing.T) {
	c := Default()
	if !c.Rules.DefaultRules || !c.RulesOn() {
		t.Errorf("the default rule pack is off by default")
	}
	if got := c.RulesInterval(); got != time.Minute {
		t.Errorf("rules interval %s, want Prometheus's default 1m", got)
	}
	c.Interval = 5 * time.Minute
	if got := c.RulesInterval(); got != c.Interval {
		t.Errorf("rules interval %s, want the scrape interval %s, longer than 1m", got, c.Interval)
	}
	c.Rules.EvaluationInterval = 5 * time.Second
	if got := c.RulesInterval(); got != 5*time.Second {
		t.Errorf("rules interval %s, want the one set, 5s", got)
	}
	c.Rules.EvaluationInterval = time.Minute
	if got := c.RulesInterval(); got != time.Minute {
		t.Errorf("rules interval %s, want the one set, 1m", got)
	}
}

func TestAlertsFromFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.yaml")
	if err := os.WriteFile(path, []byte(`
rules:
  files: [/etc/kubemon/rules/*.yml]
  evaluationInterval: 30s
alerting:
  alertmanagers: [http://alertmanager:9093]
  webhooks: [https://hooks.example.com/kubemon]
  externalLabels: {cluster: prod}
  externalURL: https://kubemon.example.com
`), 0o600); err != nil {
		t.Fatal(err)
	}
	c := Default()
	if err := c.Load(path); err != nil {
		t.Fatal(err)
	}
	if errs := c.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	if !c.Rules.DefaultRules || c.Rules.Files[0] != "/etc/kubemon/rules/*.yml" || c.RulesInterval() != 30*time.Second ||
		c.Alerting.Alertmanagers[0] != "http://alertmanager:9093" || c.Alerting.Webhooks[0] != "https://hooks.example.com/kubemon" ||
		c.Alerting.ExternalLabels["cluster"] != "prod" || c.Alerting.ExternalURL != "https://kubemon.example.com" {
		t.Fatalf("loaded %+v %+v", c.Rules, c.Alerting)
	}
}

func TestAlertsValidate(t *testing.T) {
	c := Default()
	c.Rules.EvaluationInterval = 10 * time.Millisecond
	c.Rules.Files = []string{"rules.json", "", "[bad"}
	c.Alerting.Alertmanagers = []string{"alertmanager:9093", "http://user:secret@/x"}
	c.Alerting.Webhooks = []string{"https://hooks.example.com/x?token=secret"}
	c.Alerting.ExternalLabels = map[string]string{"bad-name": "x", "__x": "y", "empty": ""}
	c.Alerting.ExternalURL = "kubemon.example.com"
	errs := c.Validate()
	all := ""
	for _, e := range errs {
		all += e.Error() + "\n"
	}
	want := []string{
		"rules.evaluationInterval 10ms: want 1s to 1h",
		`rules.files "rules.json": a rule file must end in .yml or .yaml`,
		"rules.files: an empty file name",
		`rules.files "[bad": syntax error in pattern`,
		"alerting.alertmanagers alertmanager:9093: want an http or https URL",
		"alerting.alertmanagers http:///x: no host",
		"alerting.webhooks https://hooks.example.com/x: want no query or fragment",
		`alerting.externalLabels "__x": not a label name`,
		`alerting.externalLabels "bad-name": not a label name`,
		`alerting.externalLabels "empty": empty value`,
		`alerting.externalURL "kubemon.example.com": want an http or https URL`,
	}
	if len(errs) != len(want) {
		t.Errorf("%d errors, want %d:\n%s", len(errs), len(want), all)
	}
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("no error %q in:\n%s", w, all)
		}
	}
	if strings.Contains(all, "secret") {
		t.Errorf("errors show credentials:\n%s", all)
	}

	c = Default()
	c.Rules.DefaultRules = false
	c.Alerting.Webhooks = []string{"http://hook/"}
	if errs := c.Validate(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "no rules are evaluated") {
		t.Errorf("alerts sent without rules: %v", errs)
	}
}

func TestParseLabel(t *testing.T) {
	if n, v, err := ParseLabel("cluster=prod=1"); err != nil || n != "cluster" || v != "prod=1" {
		t.Errorf("ParseLabel: %q %q %v", n, v, err)
	}
	for _, s := range []string{"cluster", "=prod"} {
		if _, _, err := ParseLabel(s); err == nil {
			t.Errorf("ParseLabel(%q): no error", s)
		}
	}
}
