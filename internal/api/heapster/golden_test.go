package heapster

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/testutil/golden"
)

// TestGoldenAnswers keeps sample answers of the model API in
// testdata/answers.golden.json: a metric list and values at each level.
// Their metric names and label-derived values come from the metric table.
func TestGoldenAnswers(t *testing.T) {
	srv := setup(t)
	paths := []string{
		"/api/v1/model/metrics/",
		"/api/v1/model/metrics/" + hs(model.CPUUsageRate),
		"/api/v1/model/nodes/",
		"/api/v1/model/nodes/n1/metrics/",
		"/api/v1/model/nodes/n1/metrics/" + hs(model.CPUUtilization),
		"/api/v1/model/nodes/n1/freecontainers/kubelet/metrics/" + hs(model.MemoryWorkingSet),
		"/api/v1/model/namespaces/ns/pods/",
		"/api/v1/model/namespaces/ns/pods/p1/metrics/",
		"/api/v1/model/namespaces/ns/pods/p1/containers/app/metrics/" + hs(model.CPUUsage),
		"/api/v1/model/namespaces/ns/pod-list/p2,p1/metrics/" + hs(model.CPUUsageRate),
	}
	answers := map[string]json.RawMessage{}
	for _, p := range paths {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d, %v", p, resp.StatusCode, err)
		}
		answers[p] = body
	}
	got, err := json.MarshalIndent(answers, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "./internal/api/heapster", "answers.golden.json", append(got, '\n'))
}
