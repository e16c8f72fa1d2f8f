package model

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kubemon/kubemon/internal/testutil/golden"
)

func TestSeriesGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteContract(&b); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "./internal/model", "series.golden", b.Bytes())
}

func TestAllSeries(t *testing.T) {
	var names []string
	for _, s := range AllSeries() {
		names = append(names, s.Name)
		if len(s.Labels) == 0 && s.Level != LevelCluster && s.Level != LevelKubemon {
			t.Errorf("%s has no label", s.Name)
		}
		if !slices.IsSorted(s.Labels) {
			t.Errorf("%s: labels %v not sorted", s.Name, s.Labels)
		}
	}
	if !slices.Equal(names, SeriesNames()) {
		t.Error("AllSeries and SeriesNames differ")
	}
	want := []string{LabelKubeLabels, LabelNamespace, LabelNode, LabelPod, LabelWorkload, LabelWorkloadKind}
	slices.Sort(want)
	if got := SeriesLabelKeys(LevelPod, Info); !slices.Equal(got, want) {
		t.Errorf("pod_info labels %v", got)
	}
	o := Object{Level: LevelContainer, Namespace: "ns", Pod: "p", Container: "c", Node: "n"}
	for _, k := range LevelContainer.LabelKeys() {
		if o.Label(k) == "" {
			t.Errorf("container label %s empty", k)
		}
	}
}

// TestReadme checks the README's generated metric list against the table.
func TestReadme(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	want, ok := ReplaceDoc(string(doc))
	if !ok {
		t.Fatalf("README.md has no %s ... %s block", DocBegin, DocEnd)
	}
	if want != string(doc) {
		t.Error("README.md's metric list differs from the metric table: run go generate ./internal/model")
	}
}

func TestParseSeriesName(t *testing.T) {
	n := 0
	for _, s := range AllSeries() {
		l, m, ok := ParseSeriesName(s.Name)
		if !ok || l != s.Level || m != s.Metric.ID {
			t.Errorf("ParseSeriesName(%q) = %v %v %v, want %v %v", s.Name, l, m, ok, s.Level, s.Metric.ID)
		}
		n++
	}
	if n < 100 {
		t.Fatalf("only %d series in the contract", n)
	}
	for _, bad := range []string{"", "container_", "kubemon_build_info", "container_cpu_usage_cores_x"} {
		if _, _, ok := ParseSeriesName(bad); ok {
			t.Errorf("ParseSeriesName(%q) ok", bad)
		}
	}
}
