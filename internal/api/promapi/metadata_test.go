package promapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	kmodel "github.com/kubemon/kubemon/internal/model"
)

// checkMetadata checks an /api/v1/metadata answer against the metric table:
// every series name once, with its type, help and unit.
func checkMetadata(t *testing.T, method string, data json.RawMessage) {
	t.Helper()
	var got map[string][]metricMetadata
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("%s metadata: %v in %s", method, err, data)
	}
	series := kmodel.AllSeries()
	if len(got) != len(series) {
		t.Errorf("%s metadata: %d names, the table has %d series", method, len(got), len(series))
	}
	for _, s := range series {
		md := got[s.Name]
		if len(md) != 1 {
			t.Errorf("%s metadata of %s: %v", method, s.Name, md)
			continue
		}
		want := metricMetadata{Type: s.Metric.Kind.String(), Help: s.Metric.Help, Unit: s.Metric.Unit}
		if md[0] != want {
			t.Errorf("%s metadata of %s = %+v, want %+v", method, s.Name, md[0], want)
		}
	}
}

func TestMetadataParameters(t *testing.T) {
	e := newTestEnv(t, openTestDB(t), nil)
	name := kmodel.PromName(kmodel.LevelContainer, kmodel.CPUUsage)
	decode := func(v url.Values) map[string][]metricMetadata {
		t.Helper()
		env := e.mustSucceed(t, http.MethodGet, "/api/v1/metadata", v)
		var got map[string][]metricMetadata
		if err := json.Unmarshal(env.Data, &got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	got := decode(url.Values{"metric": {name}})
	if len(got) != 1 || len(got[name]) != 1 || got[name][0].Type != "counter" || got[name][0].Unit != "seconds" {
		t.Errorf("metric=%s: %v", name, got)
	}
	if got := decode(url.Values{"metric": {"no_such_metric"}}); len(got) != 0 {
		t.Errorf("unknown metric: %v", got)
	}
	if got := decode(url.Values{"limit": {"3"}, "limit_per_metric": {"1"}}); len(got) != 3 {
		t.Errorf("limit=3: %d names", len(got))
	}
	if got := decode(url.Values{"limit": {"-1"}}); len(got) != len(kmodel.SeriesNames()) {
		t.Errorf("limit=-1 (no limit): %d names", len(got))
	}
	if got := decode(url.Values{"limit": {"0"}}); len(got) != 0 {
		t.Errorf("limit=0: %d names, want none (as Prometheus)", len(got))
	}
	if got := decode(url.Values{"metric": {name}, "limit": {"1"}}); len(got) != 1 {
		t.Errorf("metric and limit=1: %v", got)
	}
}
