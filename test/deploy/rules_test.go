package deploy

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	pmodel "github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
)

// rulesGlob is the --rules of the base and the chart: every .yaml file of
// the rules ConfigMap, mounted as a directory.
const (
	rulesDir  = "/etc/kubemon/rules"
	rulesGlob = rulesDir + "/*.yaml"
)

// parseRuleFile checks a rule file as kubemon's loader does
// (internal/rules: Prometheus's rulefmt, with PromQL parsed and templates
// checked), returning every problem.
func parseRuleFile(name string, content []byte) (*rulefmt.RuleGroups, error) {
	rgs, errs := rulefmt.Parse(content, false, pmodel.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s: %w", name, errors.Join(errs...))
	}
	return rgs, nil
}

// countRules counts a file's recording and alerting rules.
func countRules(rgs *rulefmt.RuleGroups) (record, alert int) {
	for _, g := range rgs.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				record++
			} else {
				alert++
			}
		}
	}
	return record, alert
}

// uncommentExample is the example group commented out in the example rule
// file: the comment lines from "# groups:" on, without their "# ".
func uncommentExample(t *testing.T, content string) []byte {
	t.Helper()
	var out []string
	on := false
	for _, l := range strings.Split(content, "\n") {
		if l == "# groups:" {
			on = true
		}
		if !on {
			continue
		}
		if !strings.HasPrefix(l, "#") {
			break
		}
		out = append(out, strings.TrimPrefix(strings.TrimPrefix(l, "#"), " "))
	}
	if len(out) < 3 {
		t.Fatalf("no commented example (from a line \"# groups:\") in:\n%s", content)
	}
	return []byte(strings.Join(out, "\n") + "\n")
}

// TestExampleRuleFile: deploy/rules/example.yaml, the content of the base's
// ConfigMap kubemon-rules, is a Prometheus rule file without rules, and
// the example it holds in comments is a valid rule file once uncommented,
// as the file tells users to do. The chart's default rules.files holds the
// same file.
func TestExampleRuleFile(t *testing.T) {
	repo := root(t)
	b, err := os.ReadFile(filepath.Join(repo, "deploy/rules/example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rgs, err := parseRuleFile("example.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	if rec, alert := countRules(rgs); rec+alert != 0 {
		t.Errorf("example.yaml has %d recording and %d alerting rules, want none (only a commented example)", rec, alert)
	}
	ex := uncommentExample(t, string(b))
	rgs, err = parseRuleFile("example.yaml, uncommented", ex)
	if err != nil {
		t.Fatalf("%v\n%s", err, ex)
	}
	if rec, alert := countRules(rgs); rec == 0 || alert == 0 {
		t.Errorf("the uncommented example has %d recording and %d alerting rules, want some of each:\n%s", rec, alert, ex)
	}

	vb, err := os.ReadFile(filepath.Join(repo, "deploy/helm/kubemon/values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Rules struct {
			Files map[string]any `json:"files"`
		} `json:"rules"`
	}
	if err := yaml.Unmarshal(vb, &values); err != nil {
		t.Fatal(err)
	}
	if got, want := values.Rules.Files, map[string]any{"example.yaml": string(b)}; !reflect.DeepEqual(got, want) {
		t.Errorf("values.yaml rules.files is not deploy/rules/example.yaml:\n%s", js(got))
	}
}

// TestRuleFileCheckFails: the check the tests apply to rule files refuses
// bad ones (a broken expression, an unknown field, bad YAML), and the chart
// renders whatever rules.files holds (kubemon refuses it at start, or keeps
// the rules before on a reload).
func TestRuleFileCheckFails(t *testing.T) {
	for name, content := range map[string]string{
		"expr.yaml":  "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: sum(rate(x[5m])\n",
		"field.yaml": "groups:\n  - name: g\n    rules:\n      - alert: A\n        expresion: vector(1)\n",
		"yaml.yaml":  "groups:\n  - name: g\n   rules: [\n",
	} {
		if _, err := parseRuleFile(name, []byte(content)); err == nil {
			t.Errorf("%s accepted:\n%s", name, content)
		}
	}

	objs := helmTemplateValues(t, "rules:\n  files:\n    bad.yaml: |\n      groups:\n        - name: g\n          rules:\n            - alert: A\n              expr: sum(\n")
	cm := configMap(t, objs, "kubemon-rules")
	if _, err := parseRuleFile("bad.yaml", []byte(cm.Data["bad.yaml"])); err == nil || !strings.Contains(err.Error(), "parse error") {
		t.Errorf("the chart's bad.yaml: %v, want a parse error\n%s", err, cm.Data["bad.yaml"])
	}
}

// TestHelmRulesAlertingEvents: the chart's rules, alerting and events
// values become kubemon's flags, in a fixed order after the base's, and
// rules.files becomes the ConfigMap mounted at /etc/kubemon/rules.
func TestHelmRulesAlertingEvents(t *testing.T) {
	base := deployment(t, helmTemplate(t), "kubemon").Spec.Template.Spec.Containers[0].Args
	if base[len(base)-1] != "--rules="+rulesGlob {
		t.Fatalf("default args %q: want --rules=%s last", base, rulesGlob)
	}

	objs := helmTemplateValues(t, `
rules:
  defaultPack: false
  evaluationInterval: 30s
  files:
    example.yaml: null
    team-a.yaml: |
      groups:
        - name: team-a
          rules:
            - record: namespace:cpu_usage_over_requests:ratio
              expr: namespace_cpu_usage_cores / namespace_cpu_request_cores
    team-b.yaml:
      groups:
        - name: team-b
          interval: 1m
          rules:
            - alert: TeamBMemoryHigh
              expr: namespace_memory_working_set_bytes{namespace="team-b"} > 2e9
              for: 10m
              labels: {severity: warning}
              annotations:
                summary: "team-b uses {{ $value | humanize1024 }}B"
alerting:
  alertmanagers: [http://alertmanager.monitoring:9093, "https://am:secret@am2.example.com/prefix"]
  webhooks: ["https://hooks.example.com/kubemon?token=a&b=c#x"]
  externalLabels: {region: eu-1, cluster: prod}
  externalURL: https://kubemon.example.com
events:
  enabled: false
  retention: 72h
  maxSize: 64MiB
extraArgs: [--kubelet-insecure-tls]
`)
	d := deployment(t, objs, "kubemon")
	want := append(append([]string{}, base...),
		"--default-rules=false",
		"--rules.evaluation-interval=30s",
		"--alertmanager-url=http://alertmanager.monitoring:9093",
		"--alertmanager-url=https://am:secret@am2.example.com/prefix",
		"--alert-webhook-url=https://hooks.example.com/kubemon?token=a&b=c#x",
		"--alert-external-label=cluster=prod",
		"--alert-external-label=region=eu-1",
		"--alert-external-url=https://kubemon.example.com",
		"--events.enabled=false",
		"--events.retention=72h",
		"--events.max-size=64MiB",
		"--kubelet-insecure-tls",
	)
	if got := d.Spec.Template.Spec.Containers[0].Args; !reflect.DeepEqual(got, want) {
		t.Errorf("args\n  %q\nwant\n  %q", got, want)
	}
	checkRulesMount(t, "helm", d, "kubemon-rules")
	files := checkRuleFiles(t, "helm", find(t, objs, "ConfigMap", "kubemon-rules"), []string{"team-a.yaml", "team-b.yaml"})
	if rec, _ := countRules(files["team-a.yaml"]); rec != 1 {
		t.Errorf("team-a.yaml: %d recording rules, want 1", rec)
	}
	if _, alert := countRules(files["team-b.yaml"]); alert != 1 {
		t.Errorf("team-b.yaml (given as YAML): %d alerting rules, want 1", alert)
	}
	if g := files["team-b.yaml"].Groups; len(g) != 1 || g[0].Rules[0].Annotations["summary"] != "team-b uses {{ $value | humanize1024 }}B" {
		t.Errorf("team-b.yaml's template is not passed through as written: %s", js(g))
	}

	// Each on its own: only its flag.
	for set, flag := range map[string]string{
		"rules.defaultPack=false":                           "--default-rules=false",
		"rules.evaluationInterval=1m":                       "--rules.evaluation-interval=1m",
		"alerting.alertmanagers[0]=http://am:9093":          "--alertmanager-url=http://am:9093",
		"alerting.webhooks[0]=http://hook:8080/":            "--alert-webhook-url=http://hook:8080/",
		"alerting.externalLabels.cluster=prod":              "--alert-external-label=cluster=prod",
		"alerting.externalURL=https://kubemon.example.com/": "--alert-external-url=https://kubemon.example.com/",
		"events.enabled=false":                              "--events.enabled=false",
		"events.retention=24h":                              "--events.retention=24h",
		"events.maxSize=1GiB":                               "--events.max-size=1GiB",
	} {
		got := deployment(t, helmTemplate(t, set), "kubemon").Spec.Template.Spec.Containers[0].Args
		if want := append(append([]string{}, base...), flag); !reflect.DeepEqual(got, want) {
			t.Errorf("--set %s: args %q, want the defaults and %s", set, got, flag)
		}
	}
}

// TestHelmRulesConfigMaps: rules.existingConfigMap replaces the chart's
// ConfigMap; with no rule files at all there is no ConfigMap, mount or
// --rules; a file name the glob would skip, or alerts with no rule to
// evaluate, fail the render instead of being ignored.
func TestHelmRulesConfigMaps(t *testing.T) {
	objs := helmTemplate(t, "rules.existingConfigMap=my-rules")
	expectObjects(t, "helm existingConfigMap", objs, without(baseObjects, "ConfigMap/kube-system/kubemon-rules"))
	d := deployment(t, objs, "kubemon")
	checkRulesMount(t, "existingConfigMap", d, "my-rules")
	if got := flags(d.Spec.Template.Spec.Containers[0].Args)["--rules"]; got != rulesGlob {
		t.Errorf("existingConfigMap: --rules=%q, want %s", got, rulesGlob)
	}

	for _, set := range []string{"rules.files=null", `rules.files.example\.yaml=null`} {
		objs = helmTemplate(t, set)
		expectObjects(t, "helm "+set, objs, without(baseObjects, "ConfigMap/kube-system/kubemon-rules"))
		d = deployment(t, objs, "kubemon")
		if _, ok := flags(d.Spec.Template.Spec.Containers[0].Args)["--rules"]; ok {
			t.Errorf("%s: --rules is set", set)
		}
		if v := d.Spec.Template.Spec.Volumes; len(v) != 1 || v[0].Name != "data" {
			t.Errorf("%s: volumes %s, want data only", set, js(v))
		}
		if m := d.Spec.Template.Spec.Containers[0].VolumeMounts; len(m) != 1 || m[0].Name != "data" {
			t.Errorf("%s: mounts %s, want data only", set, js(m))
		}
	}

	// A release of another name in another namespace: its own ConfigMap.
	objs = helmTemplateIn(t, "mon", "monitoring", "priorityClassName=")
	cm := find(t, objs, "ConfigMap", "mon-kubemon-rules")
	if cm.Namespace != "monitoring" {
		t.Errorf("ConfigMap mon-kubemon-rules in %q, want monitoring", cm.Namespace)
	}
	checkRulesMount(t, "release mon", deployment(t, objs, "mon-kubemon"), "mon-kubemon-rules")

	for set, msg := range map[string]string{
		`rules.files.team\.yml=groups: []`:                                                  `"team.yml"`,
		`rules.files.a/b\.yaml=groups: []`:                                                  `"a/b.yaml"`,
		`rules.files=null,rules.defaultPack=false,alerting.alertmanagers[0]=http://am:9093`: "no rules are evaluated",
		`rules.files=null,rules.defaultPack=false,alerting.webhooks[0]=http://hook`:         "no rules are evaluated",
	} {
		out, err := exec.Command("helm", "template", "kubemon", filepath.Join(root(t), "deploy/helm/kubemon"), "--set", set).CombinedOutput()
		if err == nil || !strings.Contains(string(out), msg) {
			t.Errorf("--set %s rendered (err %v), want an error with %s:\n%.300s", set, err, msg, out)
		}
	}
	// The pack alone is rules enough to send alerts of.
	helmTemplate(t, "rules.files=null,alerting.alertmanagers[0]=http://am:9093")
}

// TestKustomizeRulesOverlay: the overlay of docs/alerts.md works: it adds
// its rule files to the base's ConfigMap (configMapGenerator, behavior
// merge), which keeps its name, so the Deployment mounts it and later
// edits reach the pod without a rollout; and its patch adds the alerting
// flags.
func TestKustomizeRulesOverlay(t *testing.T) {
	repo := root(t)
	dir := t.TempDir()
	base, err := filepath.Rel(dir, filepath.Join(repo, "deploy"))
	if err != nil {
		t.Fatal(err)
	}
	overlay := fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [%s]
configMapGenerator:
  - name: kubemon-rules
    namespace: kube-system
    behavior: merge
    files: [my-team.yaml]
patches:
  - target: {kind: Deployment, name: kubemon}
    patch: |
      - {op: add, path: /spec/template/spec/containers/0/args/-, value: "--alertmanager-url=http://alertmanager.monitoring:9093"}
      - {op: add, path: /spec/template/spec/containers/0/args/-, value: "--alert-external-label=cluster=prod"}
`, filepath.ToSlash(base))
	myTeam := "groups:\n  - name: my-team\n    rules:\n      - alert: MyTeamCrashLooping\n        expr: namespace_crash_loop_backoff{namespace=\"my-team\"} > 0\n        for: 5m\n"
	for name, content := range map[string]string{"kustomization.yaml": overlay, "my-team.yaml": myTeam} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	objs := kustomize(t, dir)
	expectObjects(t, "kustomize rules overlay", objs, baseObjects)
	files := checkRuleFiles(t, "overlay", find(t, objs, "ConfigMap", "kubemon-rules"), []string{"example.yaml", "my-team.yaml"})
	if _, alert := countRules(files["my-team.yaml"]); alert != 1 {
		t.Errorf("my-team.yaml: %d alerting rules, want 1", alert)
	}
	d := deployment(t, objs, "kubemon")
	checkRulesMount(t, "overlay", d, "kubemon-rules")
	args := d.Spec.Template.Spec.Containers[0].Args
	if got, want := args[len(args)-2:], []string{"--alertmanager-url=http://alertmanager.monitoring:9093", "--alert-external-label=cluster=prod"}; !reflect.DeepEqual(got, want) {
		t.Errorf("overlay args end %q, want %q", got, want)
	}
}

// checkRulesMount: the Deployment mounts ConfigMap cm as the directory
// /etc/kubemon/rules, read-only and without subPath (the kubelet updates
// only a directory mount when the ConfigMap changes), and reads it with
// --rules=/etc/kubemon/rules/*.yaml; the root filesystem stays read-only.
func checkRulesMount(t *testing.T, what string, d *appsv1.Deployment, cm string) {
	t.Helper()
	spec := d.Spec.Template.Spec
	c := spec.Containers[0]
	var vol *corev1.Volume
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == "rules" {
			vol = &spec.Volumes[i]
		}
	}
	if vol == nil || vol.ConfigMap == nil || vol.ConfigMap.Name != cm || vol.ConfigMap.Items != nil ||
		(vol.ConfigMap.Optional != nil && *vol.ConfigMap.Optional) {
		t.Errorf("%s: volume rules %s, want the whole ConfigMap %s", what, js(vol), cm)
	}
	var mounts []corev1.VolumeMount
	for _, m := range c.VolumeMounts {
		if m.Name == "rules" || m.MountPath == rulesDir {
			mounts = append(mounts, m)
		}
	}
	if want := []corev1.VolumeMount{{Name: "rules", MountPath: rulesDir, ReadOnly: true}}; !reflect.DeepEqual(mounts, want) {
		t.Errorf("%s: rules mounts %s, want %s (a directory: no subPath)", what, js(mounts), js(want))
	}
	var rules []string
	for _, a := range c.Args {
		if strings.HasPrefix(a, "--rules=") {
			rules = append(rules, strings.TrimPrefix(a, "--rules="))
		}
	}
	if !reflect.DeepEqual(rules, []string{rulesGlob}) {
		t.Errorf("%s: --rules %q, want [%s]", what, rules, rulesGlob)
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: the root filesystem is not read-only: %s", what, js(sc))
	}
}

// checkRuleFiles: the ConfigMap's keys are exactly want, each a file the
// glob reads and a valid rule file; it returns them parsed.
func checkRuleFiles(t *testing.T, what string, o object, want []string) map[string]*rulefmt.RuleGroups {
	t.Helper()
	var cm corev1.ConfigMap
	decode(t, o, &cm)
	keys := sortedKeys(cm.Data)
	if !reflect.DeepEqual(keys, want) || len(cm.BinaryData) != 0 {
		t.Errorf("%s: ConfigMap %s has %q (and %d binary), want %q", what, cm.Name, keys, len(cm.BinaryData), want)
	}
	out := map[string]*rulefmt.RuleGroups{}
	for _, k := range keys {
		if ok, _ := filepath.Match(rulesGlob, rulesDir+"/"+k); !ok {
			t.Errorf("%s: %s is not read by --rules=%s", what, k, rulesGlob)
		}
		rgs, err := parseRuleFile(k, []byte(cm.Data[k]))
		if err != nil {
			t.Errorf("%s: ConfigMap %s: %v", what, cm.Name, err)
			continue
		}
		out[k] = rgs
	}
	return out
}

func configMap(t *testing.T, objs []object, name string) *corev1.ConfigMap {
	t.Helper()
	var cm corev1.ConfigMap
	decode(t, find(t, objs, "ConfigMap", name), &cm)
	return &cm
}

func without(list []string, drop string) []string {
	return slices.DeleteFunc(slices.Clone(list), func(s string) bool { return s == drop })
}

// helmTemplateValues renders the chart as release kubemon in kube-system
// with a values file holding values, and --set set.
func helmTemplateValues(t *testing.T, values string, set ...string) []object {
	t.Helper()
	need(t, "kubectl")
	f := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(f, []byte(values), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"template", "kubemon", filepath.Join(root(t), "deploy/helm/kubemon"), "--namespace", "kube-system", "-f", f}
	for _, s := range set {
		if s != "" {
			args = append(args, "--set", s)
		}
	}
	return parse(t, run(t, "helm", args...))
}
