package heapster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/store"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// hs is metric m's Heapster name, as the model API spells it.
func hs(m model.MetricID) string { return model.Metrics[m].Heapster }

// hsSorted lists the metrics' Heapster names sorted, as the model API
// lists them.
func hsSorted(ms ...model.MetricID) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = hs(m)
	}
	slices.Sort(out)
	return out
}

func setup(t *testing.T) *httptest.Server {
	t.Helper()
	return setupWith(t, Options{})
}

// setupWith is setup with o's limits.
func setupWith(t *testing.T, o Options) *httptest.Server {
	t.Helper()
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mk := func(o model.Object, ts time.Time, kv ...float64) model.Entry {
		e := model.Entry{Object: o, Time: ts.UnixMilli(), Values: model.NewValues()}
		for i := 0; i < len(kv); i += 2 {
			e.Values[model.MetricID(kv[i])] = kv[i+1]
		}
		return e
	}
	c := model.Object{Level: model.LevelContainer, Node: "n1", Namespace: "ns", Pod: "p1", Container: "app"}
	p := model.Object{Level: model.LevelPod, Node: "n1", Namespace: "ns", Pod: "p1"}
	p2 := model.Object{Level: model.LevelPod, Node: "n2", Namespace: "ns", Pod: "p2"}
	for i := range 3 {
		ts := t0.Add(time.Duration(i) * 10 * time.Second)
		b := &model.Batch{Entries: []model.Entry{
			mk(c, ts, float64(model.CPUUsageRate), 0.25+float64(i)/1000, float64(model.MemoryWorkingSet), 1<<20, float64(model.CPUUsage), float64(i)),
			mk(p, ts, float64(model.CPUUsageRate), 0.5, float64(model.NetworkRxRate), 1000),
			mk(p2, ts, float64(model.CPUUsageRate), 1.5),
			mk(model.Object{Level: model.LevelNamespace, Namespace: "ns"}, ts, float64(model.CPUUsageRate), 2),
			mk(model.Object{Level: model.LevelNode, Node: "n1"}, ts, float64(model.CPUUsageRate), 3, float64(model.CPUUtilization), 0.375),
			mk(model.Object{Level: model.LevelSysContainer, Node: "n1", Container: "kubelet"}, ts, float64(model.MemoryWorkingSet), 5e7),
			mk(model.Object{Level: model.LevelCluster}, ts, float64(model.CPUUsageRate), 4, float64(model.MemoryWorkingSet), 8e9),
		}}
		if _, err := st.Append(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	o.Queryable, o.Now = st.Queryable(), func() time.Time { return t0.Add(time.Minute) }
	New(o).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, path string, into any) int {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && into != nil {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	return resp.StatusCode
}

func TestLists(t *testing.T) {
	srv := setup(t)
	tests := []struct {
		path string
		want []string
	}{
		{"/api/v1/model/nodes/", []string{"n1"}},
		{"/api/v1/model/nodes", []string{"n1"}},
		{"/api/v1/model/namespaces/ns/pods", []string{"p1", "p2"}},
		{"/api/v1/model/metrics", hsSorted(model.CPUUsageRate, model.MemoryWorkingSet)},
		{"/api/v1/model/namespaces/", []string{"ns"}},
		{"/api/v1/model/namespaces/ns/pods/", []string{"p1", "p2"}},
		{"/api/v1/model/nodes/n2/pods/", []string{"p2"}},
		{"/api/v1/model/nodes/n1/freecontainers/", []string{"kubelet"}},
		{"/api/v1/model/namespaces/ns/pods/p1/containers/", []string{"app"}},
		{"/api/v1/model/namespaces/nope/pods/", []string{}},
		{"/api/v1/model/metrics/", hsSorted(model.CPUUsageRate, model.MemoryWorkingSet)},
		{"/api/v1/model/nodes/n1/metrics/", hsSorted(model.CPUUtilization, model.CPUUsageRate)},
		{"/api/v1/model/namespaces/ns/pods/p1/metrics/", hsSorted(model.CPUUsageRate, model.NetworkRxRate)},
		{"/api/v1/model/namespaces/ns/pods/p1/containers/app/metrics/", hsSorted(model.CPUUsage, model.CPUUsageRate, model.MemoryWorkingSet)},
	}
	for _, tt := range tests {
		var got []string
		if code := get(t, srv, tt.path, &got); code != 200 {
			t.Errorf("%s: status %d", tt.path, code)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s = %v, want %v", tt.path, got, tt.want)
		}
	}
}

func TestValues(t *testing.T) {
	srv := setup(t)
	tests := []struct {
		path   string
		values []uint64
		floats []float64 // exact values where not whole
	}{
		{"/api/v1/model/metrics/" + hs(model.CPUUsageRate), []uint64{4000, 4000, 4000}, nil},
		{"/api/v1/model/metrics/" + hs(model.MemoryWorkingSet), []uint64{8e9, 8e9, 8e9}, nil},
		{"/api/v1/model/nodes/n1/metrics/" + hs(model.CPUUsageRate), []uint64{3000, 3000, 3000}, nil},
		{"/api/v1/model/nodes/n1/metrics/" + hs(model.CPUUtilization), []uint64{0, 0, 0}, []float64{0.375, 0.375, 0.375}},
		{"/api/v1/model/nodes/n1/freecontainers/kubelet/metrics/" + hs(model.MemoryWorkingSet), []uint64{5e7, 5e7, 5e7}, nil},
		{"/api/v1/model/namespaces/ns/metrics/" + hs(model.CPUUsageRate), []uint64{2000, 2000, 2000}, nil},
		{"/api/v1/model/namespaces/ns/pods/p1/metrics/" + hs(model.NetworkRxRate), []uint64{1000, 1000, 1000}, nil},
		{"/api/v1/model/namespaces/ns/pods/p1/containers/app/metrics/" + hs(model.CPUUsageRate), []uint64{250, 251, 252}, nil},
		{"/api/v1/model/namespaces/ns/pods/p1/containers/app/metrics/" + hs(model.CPUUsage), []uint64{0, 1e9, 2e9}, nil}, // ns
		{"/api/v1/model/namespaces/ns/pods/p1/containers/app/metrics/" + hs(model.CPUUsageRate) + "?start=2026-11-27T12:00:05Z", []uint64{251, 252}, nil},
		{"/api/v1/model/namespaces/ns/pods/p1/containers/app/metrics/" + hs(model.CPUUsageRate) + "?start=2026-11-27T11:00:00Z&end=2026-11-27T12:00:00Z", []uint64{250}, nil},
	}
	for _, tt := range tests {
		var got MetricResult
		if code := get(t, srv, tt.path, &got); code != 200 {
			t.Errorf("%s: status %d", tt.path, code)
			continue
		}
		var vals []uint64
		for i, p := range got.Metrics {
			vals = append(vals, p.Value)
			if len(tt.floats) > 0 && (p.FloatValue == nil || *p.FloatValue != tt.floats[i]) {
				t.Errorf("%s: point %d floatValue %v, want %v", tt.path, i, p.FloatValue, tt.floats[i])
			}
		}
		if !reflect.DeepEqual(vals, tt.values) {
			t.Errorf("%s = %v, want %v", tt.path, vals, tt.values)
		}
		if n := len(got.Metrics); n > 0 && !got.LatestTimestamp.Equal(got.Metrics[n-1].Timestamp) {
			t.Errorf("%s: latestTimestamp %v", tt.path, got.LatestTimestamp)
		}
	}
}

func TestPodList(t *testing.T) {
	srv := setup(t)
	var got MetricResultList
	if code := get(t, srv, "/api/v1/model/namespaces/ns/pod-list/p2,p1/metrics/"+hs(model.CPUUsageRate), &got); code != 200 {
		t.Fatalf("status %d", code)
	}
	if len(got.Items) != 2 || got.Items[0].Metrics[0].Value != 1500 || got.Items[1].Metrics[0].Value != 500 {
		t.Fatalf("got %+v", got)
	}
}

func TestErrors(t *testing.T) {
	srv := setup(t)
	tests := []struct {
		path string
		code int
		msg  string
	}{
		{"/api/v1/model/metrics/cpu/nope", 404, "unknown metric"},
		{"/api/v1/model/metrics/" + hs(model.NetworkRx), 404, "unknown metric"}, // a counter not kept at cluster level
		{"/api/v1/model/metrics/" + hs(model.CPUUsageRate) + "?start=yesterday", 400, "bad start"},
		{"/api/v1/model/metrics/" + hs(model.CPUUsageRate) + "?end=2026-13-01T00:00:00Z", 400, "bad end"},
		{"/api/v1/model/metrics/" + hs(model.CPUUsageRate) + "?start=2026-11-27T12:00:00Z&end=2026-11-27T11:00:00Z", 400, "before start"},
	}
	for _, tt := range tests {
		resp, err := http.Get(srv.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.code || !strings.Contains(string(body), tt.msg) {
			t.Errorf("%s: %d %q, want %d containing %q", tt.path, resp.StatusCode, body, tt.code, tt.msg)
		}
	}
}

func TestMaxPoints(t *testing.T) {
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := range 5 {
		e := model.Entry{Object: model.Object{Level: model.LevelCluster}, Time: t0.Add(time.Duration(i) * time.Second).UnixMilli(), Values: model.NewValues()}
		e.Values[model.CPUUsageRate] = 1
		if _, err := st.Append(context.Background(), &model.Batch{Entries: []model.Entry{e}}); err != nil {
			t.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	New(Options{Queryable: st.Queryable(), MaxPoints: 3, Now: func() time.Time { return t0.Add(time.Minute) }}).Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/model/metrics/"+hs(model.CPUUsageRate), nil))
	if rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), "more than 3 points") {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

// TestPodListLimits checks the pod list's bounds: at most
// DefaultMaxPodListNames distinct names (a repeated name counts, and is
// answered, once), and at most MaxPoints points in the whole answer, not
// per pod.
func TestPodListLimits(t *testing.T) {
	const prefix = "/api/v1/model/namespaces/ns/pod-list/"
	suffix := "/metrics/" + hs(model.CPUUsageRate)
	names := func(n int) []string {
		out := []string{"p2", "p1"}
		for i := 2; i < n; i++ {
			out = append(out, fmt.Sprint("q", i))
		}
		return out
	}
	request := func(t *testing.T, srv *httptest.Server, list []string) (int, string, MetricResultList) {
		t.Helper()
		resp, err := http.Get(srv.URL + prefix + strings.Join(list, ",") + suffix)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var got MetricResultList
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
		}
		if len(body) > 200 {
			body = append(body[:200:200], "…"...)
		}
		return resp.StatusCode, string(body), got
	}
	values := func(l MetricResultList) [][]uint64 {
		var out [][]uint64
		for _, it := range l.Items {
			var vs []uint64
			for _, p := range it.Metrics {
				vs = append(vs, p.Value)
			}
			out = append(out, vs)
		}
		return out
	}

	srv := setup(t)
	t.Run("names", func(t *testing.T) {
		if DefaultMaxPodListNames != 100 {
			t.Fatalf("DefaultMaxPodListNames %d", DefaultMaxPodListNames)
		}
		code, body, _ := request(t, srv, names(101))
		if code != http.StatusBadRequest || !strings.Contains(body, "more than 100 distinct pod names") {
			t.Errorf("101 names: %d %q, want 400 naming the limit", code, body)
		}
		code, body, got := request(t, srv, names(100))
		if code != http.StatusOK || len(got.Items) != 100 {
			t.Fatalf("100 names: %d %q, %d items", code, body, len(got.Items))
		}
		if v := values(got); !reflect.DeepEqual(v[:2], [][]uint64{{1500, 1500, 1500}, {500, 500, 500}}) || v[2] != nil {
			t.Errorf("100 names: values %v…", v[:3])
		}
		// 100 distinct names, each repeated: accepted, answered once each.
		list := append(names(100), names(100)...)
		list = append(list, "p1", "p2", "p1")
		if code, body, got := request(t, srv, list); code != http.StatusOK || len(got.Items) != 100 {
			t.Errorf("100 distinct names among %d: %d %q, %d items", len(list), code, body, len(got.Items))
		}
		code, body, got = request(t, srv, []string{"p1", "p2", "p1", "p1", "p2"})
		if want := [][]uint64{{500, 500, 500}, {1500, 1500, 1500}}; code != http.StatusOK || !reflect.DeepEqual(values(got), want) {
			t.Errorf("p1,p2 repeated: %d %q, want %v", code, body, want)
		}
	})
	t.Run("configured names", func(t *testing.T) {
		srv := setupWith(t, Options{MaxPodListNames: 1})
		if code, body, _ := request(t, srv, []string{"p1", "p2"}); code != http.StatusBadRequest || !strings.Contains(body, "more than 1 distinct pod names") {
			t.Errorf("2 names, limit 1: %d %q", code, body)
		}
		if code, body, got := request(t, srv, []string{"p1", "p1"}); code != http.StatusOK || len(got.Items) != 1 {
			t.Errorf("p1 twice, limit 1: %d %q %+v", code, body, got)
		}
	})
	t.Run("points", func(t *testing.T) {
		// p1 and p2 have 3 points each: 5 allow either, not both.
		srv := setupWith(t, Options{MaxPoints: 5})
		for _, list := range [][]string{{"p1"}, {"p2"}, {"p1", "p1"}, {"p1", "nope"}} {
			if code, body, _ := request(t, srv, list); code != http.StatusOK {
				t.Errorf("%v, 5 points: %d %q", list, code, body)
			}
		}
		code, body, _ := request(t, srv, []string{"p1", "p2"})
		if code != http.StatusUnprocessableEntity || !strings.Contains(body, "more than 5 points") {
			t.Errorf("p1,p2 (6 points), 5 allowed: %d %q, want 422", code, body)
		}
		srv = setupWith(t, Options{MaxPoints: 6})
		if code, body, got := request(t, srv, []string{"p1", "p2"}); code != http.StatusOK || len(got.Items) != 2 {
			t.Errorf("p1,p2 (6 points), 6 allowed: %d %q", code, body)
		}
	})
}
