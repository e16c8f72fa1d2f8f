package model

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites the file with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/model -update)", err)
	}
	if !bytes.Equal(got, want) {
		g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := range max(len(g), len(w)) {
			var gl, wl string
			if i < len(g) {
				gl = g[i]
			}
			if i < len(w) {
				wl = w[i]
			}
			if gl != wl {
				t.Fatalf("%s differs from the metric table at line %d:\n got: %s\nwant: %s\n(if the change is meant, run go test ./internal/model -update)", path, i+1, gl, wl)
			}
		}
	}
}

func TestSeriesGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteContract(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "series.golden", b.Bytes())
}

func TestAllSeries(t *testing.T) {
	var names []string
	for _, s := range AllSeries() {
		names = append(names, s.Name)
		if len(s.Labels) == 0 && s.Level != LevelCluster {
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
