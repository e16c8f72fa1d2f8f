package metricsapi

import (
	"encoding/json"
	"testing"

	"github.com/kubemon/kubemon/internal/testutil/golden"
)

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
		golden.Check(t, "./internal/api/metricsapi", tc.file, append(out, '\n'))
	}
}
