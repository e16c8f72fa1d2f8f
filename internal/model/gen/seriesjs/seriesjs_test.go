package seriesjs

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kubemon/kubemon/internal/model"
)

func TestLowerCamel(t *testing.T) {
	for in, want := range map[string]string{
		"CPUUsageRate": "cpuUsageRate",
		"MemoryRSS":    "memoryRSS",
		"DiskIORead":   "diskIORead",
		"Info":         "info",
		"CPU":          "cpu",
		"SysContainer": "sysContainer",
		"":             "",
	} {
		if got := LowerCamel(in); got != want {
			t.Errorf("LowerCamel(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRender checks the module's entries against the table: every series
// once, under its level's and metric's keys, and every label key.
func TestRender(t *testing.T) {
	b, err := Render(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	if !strings.HasPrefix(src, Header+"\n") || !regexp.MustCompile(`(?m)^// Code generated .* DO NOT EDIT\.$`).MatchString(src) {
		t.Errorf("no generated-code header:\n%s", src[:200])
	}
	// The level blocks, in order, each with its metrics.
	level := regexp.MustCompile(`(?m)^  (\w+): Object\.freeze\(\{\n((?:    \w+: "\w+",\n)*)  \}\),$`)
	entry := regexp.MustCompile(`(?m)^    (\w+): "(\w+)",$`)
	blocks := level.FindAllStringSubmatch(src, -1)
	if len(blocks) != int(model.NumLevels) {
		t.Fatalf("%d level blocks, want %d:\n%s", len(blocks), model.NumLevels, src)
	}
	metricKey := map[string]model.MetricID{"cpuUsageRate": model.CPUUsageRate, "info": model.Info, "restarts": model.Restarts, "networkRxRate": model.NetworkRxRate, "filesystemLimit": model.FilesystemLimit}
	n := 0
	for l, blk := range blocks {
		lv := model.Level(l)
		if want := map[model.Level]string{model.LevelPod: "pod", model.LevelSysContainer: "sysContainer", model.LevelCluster: "cluster"}[lv]; want != "" && blk[1] != want {
			t.Errorf("level %v is %q, want %q", lv, blk[1], want)
		}
		for _, e := range entry.FindAllStringSubmatch(blk[2], -1) {
			gotL, gotM, ok := model.ParseSeriesName(e[2])
			if !ok || gotL != lv {
				t.Errorf("%s.%s = %q: not a series of level %v", blk[1], e[1], e[2], lv)
			}
			if id, ok := metricKey[e[1]]; ok && id != gotM {
				t.Errorf("%s.%s = %q, want %q", blk[1], e[1], e[2], model.PromName(lv, id))
			}
			n++
		}
	}
	if want := len(model.AllSeries()); n != want {
		t.Errorf("%d series, want %d", n, want)
	}
	for k, v := range map[string]string{"namespace": model.LabelNamespace, "workloadKind": model.LabelWorkloadKind, "kubeLabelPrefix": model.LabelKubeLabelPrefix} {
		if line := fmt.Sprintf("\n  %s: %q,\n", k, v); !strings.Contains(src, line) {
			t.Errorf("no label line %q", line)
		}
	}
}

func TestRenderErrors(t *testing.T) {
	if _, err := Render(t.TempDir()); err == nil {
		t.Error("an empty directory rendered")
	}
	// A model whose MetricID block is cut short.
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("..", "..", "metrics.go"))
	if err != nil {
		t.Fatal(err)
	}
	cut := strings.Replace(string(src), "\tCPULimit\n", "", 1)
	if cut == string(src) {
		t.Fatal("metrics.go has no CPULimit line")
	}
	for _, f := range []string{"model.go", "contract.go"} {
		b, err := os.ReadFile(filepath.Join("..", "..", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "metrics.go"), []byte(cut), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Render(dir); err == nil || !strings.Contains(err.Error(), "MetricID constants") {
		t.Errorf("a MetricID block without CPULimit: %v", err)
	}
}
