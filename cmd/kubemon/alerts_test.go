package main

import (
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestAlertFlags: the rules' and alerts' flags override the config file's
// keys; the repeatable ones replace its lists (and the labels' map) in
// command-line order, wherever --config is.
func TestAlertFlags(t *testing.T) {
	file := writeFile(t, "k.yaml", `
rules:
  files: [file.yml]
  evaluationInterval: 30s
alerting:
  alertmanagers: [http://file-am:9093]
  webhooks: [http://file-hook/]
  externalLabels: {cluster: file, region: eu}
`)
	flags := []string{
		"--rules", "a.yml", "--rules", "/etc/kubemon/*.yaml",
		"--rules.evaluation-interval", "1m",
		"--default-rules=false",
		"--alertmanager-url", "http://am1:9093", "--alertmanager-url", "http://am2:9093",
		"--alert-webhook-url", "http://hook/",
		"--alert-external-label", "cluster=prod",
		"--alert-external-url", "https://kubemon.example.com",
	}
	for _, args := range [][]string{
		append([]string{"--config", file}, flags...),
		append(append([]string{}, flags...), "--config", file),
	} {
		c, err := parseServe(args, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"a.yml", "/etc/kubemon/*.yaml"}; !reflect.DeepEqual(c.Rules.Files, want) {
			t.Errorf("%v: rules.files %q, want %q", args, c.Rules.Files, want)
		}
		if c.Rules.EvaluationInterval != time.Minute || c.Rules.DefaultRules {
			t.Errorf("%v: rules %+v", args, c.Rules)
		}
		if want := []string{"http://am1:9093", "http://am2:9093"}; !reflect.DeepEqual(c.Alerting.Alertmanagers, want) {
			t.Errorf("%v: alertmanagers %q, want %q", args, c.Alerting.Alertmanagers, want)
		}
		if want := []string{"http://hook/"}; !reflect.DeepEqual(c.Alerting.Webhooks, want) {
			t.Errorf("%v: webhooks %q, want %q", args, c.Alerting.Webhooks, want)
		}
		if want := map[string]string{"cluster": "prod"}; !reflect.DeepEqual(c.Alerting.ExternalLabels, want) {
			t.Errorf("%v: external labels %v, want %v (the flags replace the file's)", args, c.Alerting.ExternalLabels, want)
		}
		if c.Alerting.ExternalURL != "https://kubemon.example.com" {
			t.Errorf("%v: external URL %q", args, c.Alerting.ExternalURL)
		}
	}

	// Without the flags the file's settings stay, and the default pack is on.
	c, err := parseServe([]string{"--config", file}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Rules.DefaultRules || !reflect.DeepEqual(c.Rules.Files, []string{"file.yml"}) || len(c.Alerting.ExternalLabels) != 2 {
		t.Errorf("file only: %+v %+v", c.Rules, c.Alerting)
	}

	if _, err := parseServe([]string{"--alert-external-label", "cluster"}, io.Discard); err == nil || !strings.Contains(err.Error(), `"cluster": want name=value`) {
		t.Errorf("a label without a value: %v", err)
	}
	// Demo has them too.
	if c, _, err := parseDemo([]string{"--rules", "x.yml"}, io.Discard); err != nil || c.Rules.Files[0] != "x.yml" {
		t.Errorf("demo --rules: %v %v", c.Rules.Files, err)
	}
}
