package promapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/store"
	"github.com/kubemon/kubemon/internal/testutil/golden"
)

// TestGoldenAnswers keeps sample answers of /api/v1/series and
// /api/v1/labels in testdata/*.golden.json, over a small store written by
// kubemon's own store (one object of every level, a pod's and a
// namespace's info series): their series names and label keys come from
// the metric table, so a rename there shows in these files.
func TestGoldenAnswers(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mk := func(o model.Object, kv ...float64) model.Entry {
		e := model.Entry{Object: o, Time: t0.UnixMilli(), Values: model.NewValues()}
		for i := 0; i < len(kv); i += 2 {
			e.Values[model.MetricID(kv[i])] = kv[i+1]
		}
		return e
	}
	cpu, mem, info := float64(model.CPUUsageRate), float64(model.MemoryWorkingSet), float64(model.Info)
	pod := mk(model.Object{Level: model.LevelPod, Node: "n1", Namespace: "shop", Pod: "web-1"}, cpu, 0.5, info, 1)
	pod.Pod = &model.PodMeta{Namespace: "shop", Name: "web-1", Node: "n1", WorkloadKind: "Deployment", Workload: "web",
		Labels: map[string]string{"app": "web", "app.kubernetes.io/tier": "front"}}
	ns := mk(model.Object{Level: model.LevelNamespace, Namespace: "shop"}, cpu, 0.5, info, 1)
	ns.Labels = map[string]string{"kubernetes.io/metadata.name": "shop"}
	b := &model.Batch{Time: t0, Entries: []model.Entry{
		mk(model.Object{Level: model.LevelContainer, Node: "n1", Namespace: "shop", Pod: "web-1", Container: "app"}, cpu, 0.5, mem, 1<<20),
		pod,
		ns,
		mk(model.Object{Level: model.LevelWorkload, Namespace: "shop", WorkloadKind: "Deployment", Workload: "web"}, cpu, 0.5),
		mk(model.Object{Level: model.LevelNode, Node: "n1"}, cpu, 1.5),
		mk(model.Object{Level: model.LevelSysContainer, Node: "n1", Container: "kubelet"}, mem, 5e7),
		mk(model.Object{Level: model.LevelCluster}, cpu, 1.5),
	}}
	if _, err := st.Append(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	e := newTestEnv(t, st.Queryable(), func(o *Options) { o.Now = func() time.Time { return t0.Add(time.Minute) } })

	for _, tc := range []struct {
		path   string
		params url.Values
		file   string
	}{
		{"/api/v1/series", url.Values{"match[]": {`{__name__=~".+"}`}}, "series.golden.json"},
		{"/api/v1/labels", nil, "labels.golden.json"},
	} {
		u := e.srv.URL + tc.path
		if tc.params != nil {
			u += "?" + tc.params.Encode()
		}
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d, %v: %s", tc.path, resp.StatusCode, err, body)
		}
		// Indented as answered: the order of series and of labels is the
		// API's (json.Indent keeps it).
		var out bytes.Buffer
		if err := json.Indent(&out, body, "", "  "); err != nil {
			t.Fatalf("%s: %v: %s", tc.path, err, body)
		}
		out.WriteByte('\n')
		golden.Check(t, "./internal/api/promapi", tc.file, out.Bytes())
	}
}
