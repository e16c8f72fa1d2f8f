package influxdb

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/sink"
	"github.com/kubemon/kubemon/internal/testutil/influxd"
)

// These tests run real InfluxDB servers: Debian's influxd 1.6.7 and
// InfluxDB 1.8.10 (hack/influxdb.sh), skipped with the install command when
// missing.

// cluster is a small cluster's batch: every metric of every level, for 3
// nodes (2 system containers each), 2 pods a node (2 containers each) in 2
// namespaces and 2 workloads, and the cluster, at steps minutes.
type cluster struct {
	batch     []sink.Series
	times     []int64
	podLabels map[string]string // "namespace/pod" → Heapster's labels
	stale     int               // samples that are staleness markers or NaN
}

var (
	nodes   = []string{"node-a", "node-b", "node-c"}
	webTags = "app:web,tier:frontend"
)

func newCluster(end time.Time, steps int) *cluster {
	c := &cluster{podLabels: map[string]string{}}
	base := end.Truncate(time.Minute).Add(-time.Duration(steps) * time.Minute)
	for i := range steps {
		c.times = append(c.times, base.Add(time.Duration(i)*time.Minute).UnixMilli())
	}
	obj := 0
	add := func(l model.Level, kv ...string) {
		obj++
		for _, m := range model.Metrics {
			if !m.Levels.Has(l) || m.ID == model.Info {
				continue
			}
			s := series(model.PromName(l, m.ID), kv)
			for i, ts := range c.times {
				s.Samples = append(s.Samples, sink.Sample{T: ts, V: sampleValue(m, obj, i)})
			}
			c.batch = append(c.batch, s)
		}
	}
	add(model.LevelCluster)
	for _, ns := range []string{"x", "kube-system"} {
		add(model.LevelNamespace, model.LabelNamespace, ns)
	}
	add(model.LevelWorkload, model.LabelNamespace, "x", model.LabelWorkloadKind, "Deployment", model.LabelWorkload, "web")
	add(model.LevelWorkload, model.LabelNamespace, "kube-system", model.LabelWorkloadKind, "DaemonSet", model.LabelWorkload, "kube-proxy")
	for _, n := range nodes {
		add(model.LevelNode, model.LabelNode, n)
		for _, sc := range []string{"kubelet", "runtime"} {
			add(model.LevelSysContainer, model.LabelNode, n, model.LabelContainer, sc)
		}
		for _, p := range []struct{ ns, pod, lbl, kind, workload string }{
			{"x", "web-" + n, webTags, "Deployment", "web"},
			{"kube-system", "kube-proxy-" + n, "", "DaemonSet", "kube-proxy"},
		} {
			id := []string{model.LabelNamespace, p.ns, model.LabelPod, p.pod, model.LabelNode, n}
			add(model.LevelPod, id...)
			info := series(model.PromName(model.LevelPod, model.Info), append(slices.Clone(id), model.LabelWorkloadKind, p.kind, model.LabelWorkload, p.workload, model.LabelKubeLabels, p.lbl))
			for _, ts := range c.times {
				info.Samples = append(info.Samples, sink.Sample{T: ts, V: 1})
			}
			c.batch = append(c.batch, info)
			c.podLabels[p.ns+"/"+p.pod] = p.lbl
			for _, ctr := range []string{"main", "sidecar"} {
				add(model.LevelContainer, append(slices.Clone(id), model.LabelContainer, ctr)...)
			}
		}
	}
	// A container that went away: its series end with a staleness
	// marker, and one sample the kubelet did not have is NaN.
	gone := series(model.PromName(model.LevelContainer, model.MemoryWorkingSet), []string{model.LabelNamespace, "x", model.LabelPod, "web-node-a", model.LabelContainer, "init", model.LabelNode, "node-a"},
		sink.Sample{T: c.times[0], V: 1 << 20}, sink.Sample{T: c.times[1], V: math.NaN()}, sink.Sample{T: c.times[2], V: math.Float64frombits(value.StaleNaN)})
	c.batch = append(c.batch, gone)
	c.stale = 2
	return c
}

// sampleValue is a distinct value for each object, metric and step, in the
// metric's base unit and of a plausible size, rarely a whole number.
func sampleValue(m model.Metric, obj, step int) float64 {
	v := (float64(obj*97+int(m.ID)*13) + 0.123456789) * (1 + float64(step)/64)
	switch m.Unit {
	case "cores":
		return v / 1000
	case "ratio":
		return v / 10000
	case "bytes":
		return math.Round(v * 1e6)
	case "seconds":
		return v * 10
	}
	return v
}

// pointKey identifies a point: measurement, field, tags (k=v sorted, empty
// ones left out) and time.
func pointKey(measurement, field string, tags map[string]string, t int64) string {
	var kv []string
	for k, v := range tags {
		if v != "" {
			kv = append(kv, k+"="+v)
		}
	}
	sort.Strings(kv)
	return fmt.Sprintf("%s %s {%s} %d", measurement, field, strings.Join(kv, ","), t)
}

// want lists the points Heapster's schema has for the batch, computed here
// from the model's table independently of the Writer.
func (c *cluster) want(withFields bool, clusterName string) map[string]float64 {
	tagOf := map[string]string{
		model.LabelNamespace: "namespace_name", model.LabelPod: "pod_name", model.LabelContainer: "container_name",
		model.LabelNode: "nodename", model.LabelWorkloadKind: "workload_kind", model.LabelWorkload: "workload_name",
	}
	out := map[string]float64{}
	for _, s := range c.batch {
		l, id, _ := model.ParseSeriesName(s.Labels.Get(labels.MetricName))
		m := model.Metrics[id]
		if id == model.Info {
			continue
		}
		tags := map[string]string{"type": l.Heapster(), "cluster_name": clusterName}
		for _, k := range l.LabelKeys() {
			tags[tagOf[k]] = s.Labels.Get(k)
		}
		tags["hostname"] = tags["nodename"]
		if l == model.LevelPod || l == model.LevelContainer {
			tags["labels"] = c.podLabels[s.Labels.Get(model.LabelNamespace)+"/"+s.Labels.Get(model.LabelPod)]
		}
		meas, field := m.Heapster, "value"
		if withFields && strings.Contains(meas, "/") {
			meas, field, _ = strings.Cut(meas, "/")
		}
		for _, sm := range s.Samples {
			if math.IsNaN(sm.V) {
				continue
			}
			out[pointKey(meas, field, tags, sm.T)] = sm.V * m.HeapsterScale
		}
	}
	return out
}

// readAll reads every point of database db back, keyed as pointKey.
func readAll(t *testing.T, srv *influxd.Server, db string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, s := range srv.Query(t, db, `SELECT * FROM /.*/ GROUP BY *`) {
		times, err := s.Times()
		if err != nil {
			t.Fatal(err)
		}
		for _, col := range s.Columns {
			if col == "time" {
				continue
			}
			vals, err := s.Floats(col)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				if math.IsNaN(v) { // a null: another field's row
					continue
				}
				k := pointKey(s.Name, col, s.Tags, times[i])
				if _, dup := out[k]; dup {
					t.Fatalf("point %s read twice", k)
				}
				out[k] = v
			}
		}
	}
	return out
}

// compare checks that InfluxDB holds exactly the points wanted, to the bit.
func compare(t *testing.T, got, want map[string]float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("InfluxDB holds %d points, want %d", len(got), len(want))
	}
	bad := 0
	for k, w := range want {
		g, ok := got[k]
		if !ok || !(math.Abs(g-w) <= 0) {
			if bad++; bad <= 10 {
				t.Errorf("point %s: got %v (present %v), want %v", k, g, ok, w)
			}
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			if bad++; bad <= 20 {
				t.Errorf("unexpected point %s", k)
			}
		}
	}
}

// count is the number of points of the database (count of every field of
// every measurement).
func count(t *testing.T, srv *influxd.Server, db string) int {
	t.Helper()
	n := 0
	for _, s := range srv.Query(t, db, `SELECT count(*) FROM /.*/`) {
		for _, col := range s.Columns {
			if col == "time" {
				continue
			}
			vals, err := s.Floats(col)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				if !math.IsNaN(v) {
					n += int(v)
				}
			}
		}
	}
	return n
}

func TestInfluxDB16(t *testing.T) { testV1(t, influxd.Debian) }

func TestInfluxDB18(t *testing.T) { testV1(t, influxd.Binary18()) }

// testV1 writes a cluster's batch through /write and reads it back with
// Heapster's dashboards' queries.
func testV1(t *testing.T, bin string) {
	srv := influxd.Start(t, bin)
	ctx := context.Background()
	c := newCluster(time.Now(), 10)
	want := c.want(false, "prod")
	// 36 metrics × 10 steps × (cluster, 2 ns, 2 workloads, 3 nodes, 6 system
	// containers, 6 pods, 12 containers) and the container that went.
	if len(want) < 5000 {
		t.Fatalf("the batch has only %d points: it should take more than one request", len(want))
	}

	w := newWriter(t, Options{URL: srv.URL, Database: "k8s", RetentionPolicy: "kubemon", RetentionDuration: 7 * 24 * time.Hour, ClusterName: "prod"})
	if err := w.Write(ctx, c.batch); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	t.Logf("%d points in %d requests; %d skipped (%d info, %d stale or NaN)", st.Points, st.Requests, st.Skipped(), st.SkippedInfo, st.SkippedStale+st.SkippedNonFinite)
	if st.Points != uint64(len(want)) || st.Requests < 2 || st.SkippedStale+st.SkippedNonFinite != uint64(c.stale) {
		t.Errorf("stats %+v, want %d points in several requests, %d skipped", st, len(want), c.stale)
	}

	t.Run("retention policy created", func(t *testing.T) {
		checkRP(t, srv, "k8s", "kubemon", "168h0m0s")
	})

	t.Run("every point read back exactly", func(t *testing.T) {
		if n := count(t, srv, "k8s"); n != len(want) {
			t.Errorf("count(*): %d points, want %d", n, len(want))
		}
		compare(t, readAll(t, srv, "k8s"), want)
	})

	t.Run("Heapster dashboard queries", func(t *testing.T) {
		// Kubernetes cluster dashboard: each node's CPU, a point a minute.
		got := srv.Query(t, "k8s", `SELECT mean("value") FROM "cpu/usage_rate" WHERE "type" = 'node' AND time > now() - 30m GROUP BY time(1m), "nodename"`)
		if len(got) != len(nodes) {
			t.Fatalf("%d series, want one per node: %v", len(got), got)
		}
		for _, s := range got {
			byTime := map[int64]float64{}
			for k, v := range want {
				if strings.HasPrefix(k, "cpu/usage_rate value {") && strings.Contains(k, "type=node}") && strings.Contains(k, "nodename="+s.Tags["nodename"]+",") {
					var ts int64
					_, _ = fmt.Sscan(k[strings.LastIndexByte(k, ' ')+1:], &ts)
					byTime[ts] = v
				}
			}
			checkColumn(t, s, "mean", byTime, len(c.times), 0)
		}
		// The cluster's CPU: the sum over nodes.
		got = srv.Query(t, "k8s", `SELECT sum("value") FROM "cpu/usage_rate" WHERE "type" = 'node' AND time > now() - 30m GROUP BY time(1m)`)
		sums := map[int64]float64{}
		for k, v := range want {
			if strings.HasPrefix(k, "cpu/usage_rate value {") && strings.Contains(k, "type=node}") {
				var ts int64
				_, _ = fmt.Sscan(k[strings.LastIndexByte(k, ' ')+1:], &ts)
				sums[ts] += v
			}
		}
		if len(got) != 1 {
			t.Fatalf("%d series, want 1", len(got))
		}
		checkColumn(t, got[0], "sum", sums, len(c.times), 1e-12)

		// Pods dashboard: a namespace's containers' memory.
		got = srv.Query(t, "k8s", `SELECT "value" FROM "memory/working_set" WHERE "type" = 'pod_container' AND "namespace_name" = 'x'`)
		// 3 pods × 2 containers × 10 steps, and the container that
		// went: 1 sample (one NaN and the staleness marker skipped).
		if len(got) != 1 || len(got[0].Values) != 3*2*len(c.times)+1 {
			t.Fatalf("got %d series, want 1 of %d points: %v", len(got), 3*2*len(c.times)+1, got)
		}
		got = srv.Query(t, "k8s", `SELECT "value" FROM "memory/working_set" WHERE "type" = 'pod_container' AND "namespace_name" = 'x' AND "container_name" != 'init' GROUP BY "pod_name", "container_name", "labels"`)
		if len(got) != 6 {
			t.Fatalf("%d series, want 6 (3 pods × 2 containers)", len(got))
		}
		for _, s := range got {
			if s.Tags["labels"] != webTags {
				t.Errorf("series %v: labels %q, want %q", s.Tags, s.Tags["labels"], webTags)
			}
			byTime := map[int64]float64{}
			for _, ts := range c.times {
				k := pointKey("memory/working_set", "value", map[string]string{"type": "pod_container", "namespace_name": "x", "pod_name": s.Tags["pod_name"], "container_name": s.Tags["container_name"],
					"nodename": strings.TrimPrefix(s.Tags["pod_name"], "web-"), "hostname": strings.TrimPrefix(s.Tags["pod_name"], "web-"), "labels": webTags, "cluster_name": "prod"}, ts)
				v, ok := want[k]
				if !ok {
					t.Fatalf("no wanted point %s", k)
				}
				byTime[ts] = v
			}
			checkColumn(t, s, "value", byTime, len(c.times), 0)
		}
		// Every Heapster type is there, and kubemon's workload.
		tv := srv.Query(t, "k8s", `SHOW TAG VALUES FROM "cpu/usage_rate" WITH KEY = "type"`)
		var types []string
		for _, s := range tv {
			for _, row := range s.Values {
				types = append(types, fmt.Sprint(row[1]))
			}
		}
		slices.Sort(types)
		if w := []string{"cluster", "node", "ns", "pod", "pod_container", "sys_container", "workload"}; !slices.Equal(types, w) {
			t.Errorf("types %v, want %v", types, w)
		}
	})

	t.Run("resending adds nothing", func(t *testing.T) {
		if err := w.Write(ctx, c.batch); err != nil {
			t.Fatal(err)
		}
		if n := count(t, srv, "k8s"); n != len(want) {
			t.Errorf("after sending the batch twice: %d points, want %d", n, len(want))
		}
	})

	t.Run("withfields", func(t *testing.T) {
		wf := newWriter(t, Options{URL: srv.URL, Database: "k8s_fields", WithFields: true, ClusterName: "prod"})
		if err := wf.Write(ctx, c.batch); err != nil {
			t.Fatal(err)
		}
		wantF := c.want(true, "prod")
		if n := count(t, srv, "k8s_fields"); n != len(wantF) {
			t.Errorf("count(*): %d, want %d", n, len(wantF))
		}
		compare(t, readAll(t, srv, "k8s_fields"), wantF)
		got := srv.Query(t, "k8s_fields", `SELECT mean("usage_rate") FROM "cpu" WHERE "type" = 'node' AND time > now() - 30m GROUP BY time(1m), "nodename"`)
		if len(got) != len(nodes) {
			t.Fatalf("%d series, want %d", len(got), len(nodes))
		}
		for _, s := range got {
			vals, _ := s.Floats("mean")
			n := 0
			for _, v := range vals {
				if !math.IsNaN(v) {
					n++
				}
			}
			if n != len(c.times) {
				t.Errorf("%v: %d values, want %d", s.Tags, n, len(c.times))
			}
		}
	})

	t.Run("dropped database created again", func(t *testing.T) {
		srv.Query(t, "", `DROP DATABASE "k8s"`)
		if err := w.Write(ctx, c.batch); err != nil {
			t.Fatal(err)
		}
		if n := count(t, srv, "k8s"); n != len(want) {
			t.Errorf("%d points, want %d", n, len(want))
		}
		checkRP(t, srv, "k8s", "kubemon", "168h0m0s")
	})

	t.Run("existing policy altered, names quoted", func(t *testing.T) {
		db, rp := `kube "mon" db`, "a week"
		srv.Query(t, "", `CREATE DATABASE "kube \"mon\" db"; CREATE RETENTION POLICY "a week" ON "kube \"mon\" db" DURATION 1d REPLICATION 1`)
		wq := newWriter(t, Options{URL: srv.URL, Database: db, RetentionPolicy: rp, RetentionDuration: 7 * 24 * time.Hour})
		if err := wq.Write(ctx, c.batch[:50]); err != nil {
			t.Fatal(err)
		}
		checkRP(t, srv, db, rp, "168h0m0s")
		if n, w := count(t, srv, db), int(wq.Stats().Points); n != w || n == 0 {
			t.Errorf("%d points, want %d", n, w)
		}
	})

	t.Run("field type conflict", func(t *testing.T) {
		// Heapster wrote most values as integers: a float in the same
		// shard is refused, and the server's words reach the error.
		srv.Query(t, "", `CREATE DATABASE "heapster"`)
		line := fmt.Sprintf("cpu/usage_rate,hostname=node-a,nodename=node-a,type=node value=250i %d", c.times[0])
		resp, err := http.Post(srv.URL+"/write?db=heapster&precision=ms", "text/plain", strings.NewReader(line))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("writing an integer: %s", resp.Status)
		}
		wh := newWriter(t, Options{URL: srv.URL, Database: "heapster"})
		err = wh.Write(ctx, c.batch)
		if err == nil || !strings.Contains(err.Error(), "400 Bad Request") || !strings.Contains(err.Error(), "field type conflict") {
			t.Fatalf("error %v, want InfluxDB's 400 field type conflict", err)
		}
		if retry, _ := sink.IsRetryable(err); retry {
			t.Errorf("a type conflict is retryable: %v", err)
		}
		t.Logf("InfluxDB's answer: %v", err)
	})

	t.Run("outage", func(t *testing.T) {
		srv.Kill()
		err := w.Write(ctx, c.batch)
		if retry, _ := sink.IsRetryable(err); !retry {
			t.Fatalf("server down: error %v, want retryable", err)
		}
		srv.Restart()
		if err := w.Write(ctx, c.batch); err != nil {
			t.Fatal(err)
		}
		if n := count(t, srv, "k8s"); n != len(want) {
			t.Errorf("after the restart: %d points, want %d", n, len(want))
		}
	})
}

func checkRP(t *testing.T, srv *influxd.Server, db, rp, duration string) {
	t.Helper()
	got := srv.Query(t, "", fmt.Sprintf(`SHOW RETENTION POLICIES ON %s`, quoteIdent(db)))
	if len(got) != 1 {
		t.Fatalf("SHOW RETENTION POLICIES: %v", got)
	}
	s := got[0]
	name, dur, def := s.Column("name"), s.Column("duration"), s.Column("default")
	for _, row := range s.Values {
		if row[name] == rp {
			if row[dur] != duration || row[def] != true {
				t.Errorf("retention policy %v, want duration %s, default", row, duration)
			}
			return
		}
	}
	t.Errorf("no retention policy %q in %v", rp, s.Values)
}

// checkColumn compares a GROUP BY time answer's non-null values with want
// (by time): n of them, each within tol (relative).
func checkColumn(t *testing.T, s influxd.Series, col string, want map[int64]float64, n int, tol float64) {
	t.Helper()
	vals, err := s.Floats(col)
	if err != nil {
		t.Fatal(err)
	}
	times, err := s.Times()
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for i, v := range vals {
		if math.IsNaN(v) { // an empty minute
			continue
		}
		got++
		w, ok := want[times[i]]
		if !ok || !(math.Abs(v-w) <= tol*math.Abs(w)) {
			t.Errorf("%s %v at %d: %v, want %v (present %v)", s.Name, s.Tags, times[i], v, w, ok)
		}
	}
	if got != n || len(want) != n {
		t.Errorf("%s %v: %d values (%d wanted), want %d", s.Name, s.Tags, got, len(want), n)
	}
}

// InfluxDB 1.8's 2.x compatibility API: bucket "database/retention-policy",
// org ignored, token "user:password" when authentication is on.
func TestInfluxDB18V2API(t *testing.T) {
	bin := influxd.Binary18()
	ctx := context.Background()
	c := newCluster(time.Now(), 10)
	want := c.want(false, "")

	t.Run("auth off", func(t *testing.T) {
		srv := influxd.Start(t, bin)
		srv.Query(t, "", `CREATE DATABASE "k8s"`)
		w := newWriter(t, Options{URL: srv.URL, Org: "kubemon", Bucket: "k8s/autogen"})
		if err := w.Write(ctx, c.batch); err != nil {
			t.Fatal(err)
		}
		if n := count(t, srv, "k8s"); n != len(want) {
			t.Errorf("count(*): %d, want %d", n, len(want))
		}
		compare(t, readAll(t, srv, "k8s"), want)
		// Nothing is created with the 2.x API: a missing bucket is a
		// 404 that names it, not retried.
		w = newWriter(t, Options{URL: srv.URL, Bucket: "nope/autogen"})
		err := w.Write(ctx, c.batch)
		if retry, _ := sink.IsRetryable(err); err == nil || retry || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "nope") {
			t.Errorf("missing bucket: %v, want a 404 naming it, not retryable", err)
		}
	})

	t.Run("auth on", func(t *testing.T) {
		srv := influxd.Start(t, bin, influxd.WithAuth("admin", "s3cret"))
		srv.Query(t, "", `CREATE DATABASE "k8s"`)
		w := newWriter(t, Options{URL: srv.URL, Org: "kubemon", Bucket: "k8s", Token: "admin:s3cret"})
		if err := w.Write(ctx, c.batch); err != nil {
			t.Fatal(err)
		}
		if n := count(t, srv, "k8s"); n != len(want) {
			t.Errorf("count(*): %d, want %d", n, len(want))
		}
		for _, token := range []string{"admin:wrong", ""} {
			w := newWriter(t, Options{URL: srv.URL, Bucket: "k8s", Token: token})
			err := w.Write(ctx, c.batch)
			if retry, _ := sink.IsRetryable(err); err == nil || retry || !strings.Contains(err.Error(), "401") {
				t.Errorf("token %q: %v, want a 401, not retryable", token, err)
			}
		}
	})
}

// InfluxDB 1.x with authentication: basic auth, and an admin creates the
// database; a wrong password is refused for good.
func TestInfluxDB16Auth(t *testing.T) {
	srv := influxd.Start(t, influxd.Debian, influxd.WithAuth("admin", "s3cret"))
	ctx := context.Background()
	c := newCluster(time.Now(), 3)
	w := newWriter(t, Options{URL: srv.URL, Database: "k8s", User: "admin", Password: "s3cret"})
	if err := w.Write(ctx, c.batch); err != nil {
		t.Fatal(err)
	}
	if n, want := count(t, srv, "k8s"), len(c.want(false, "")); n != want {
		t.Errorf("%d points, want %d", n, want)
	}
	w = newWriter(t, Options{URL: srv.URL, Database: "k8s", User: "admin", Password: "wrong"})
	err := w.Write(ctx, c.batch)
	if retry, _ := sink.IsRetryable(err); err == nil || retry || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "authorization failed") {
		t.Errorf("wrong password: %v, want InfluxDB's 401, not retryable", err)
	}
}
