package metricsapi

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestGoldenAnswers keeps sample answers of the metrics API (a NodeMetrics
// and a PodMetrics list) in testdata/*.golden.json.
func TestGoldenAnswers(t *testing.T) {
	addr, _ := serve(t)
	for _, tc := range []struct{ path, file string }{
		{"/apis/metrics.k8s.io/v1beta1/nodes", "nodemetrics.golden.json"},
		{"/apis/metrics.k8s.io/v1beta1/pods", "podmetrics.golden.json"},
	} {
		b, err := get(t, addr, tc.path)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		// creationTimestamp is the time of the answer, as metrics-server's.
		for _, it := range v.(map[string]any)["items"].([]any) {
			it.(map[string]any)["metadata"].(map[string]any)["creationTimestamp"] = "<now>"
		}
		out, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		golden(t, tc.file, append(out, '\n'))
	}
}

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
		t.Fatalf("%v (run go test ./internal/api/metricsapi -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("answer differs from %s; if the change is meant, run go test ./internal/api/metricsapi -update\ngot:\n%s", path, got)
	}
}
