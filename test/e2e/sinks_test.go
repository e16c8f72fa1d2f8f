package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	pmodel "github.com/prometheus/common/model"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/testutil/influxd"
	"github.com/kubemon/kubemon/internal/testutil/promserver"
)

// The sink tests run receivers (a real InfluxDB 1.6, a real Prometheus
// 2.42, or servers of their own) next to `kubemon demo` and check that what
// reaches them is what kubemon's store holds. Sinks read the store about a
// minute behind the present (sinkSettle), so every test first waits that
// long. They run in parallel: the longest, TestSinkOutage, takes about 7
// minutes and the others fit in its time.

// e2eCluster is the cluster name the sinks are given (InfluxDB's
// cluster_name tag, remote write's external label "cluster").
const e2eCluster = "e2e"

// remoteWriteLabel is the external label given with label=cluster:e2e.
const remoteWriteLabel = "cluster"

// TestSinkInfluxDBHeapsterSchema: kubemon demo in constant mode exports to a
// real InfluxDB 1.6 in Heapster's schema. Heapster's Grafana queries (node
// CPU by minute and node, per-container CPU) answer the simulator's truth
// within 1 % in millicores; every point of the node series up to the sink's
// position is there, minute by minute, as kubemon stores it; and in every
// measurement, container, pod, namespace, node and cluster series carry
// Heapster's tags (the pod's labels on pod and container points), one
// series per object of the truth.
func TestSinkInfluxDBHeapsterSchema(t *testing.T) {
	t.Parallel()
	needSinkBinaries(t, true, false)
	const (
		interval      = 2 * time.Second
		scrapeTimeout = time.Second
		nodes         = 5
		podsPerNode   = 40         // a cycle is more than one batch of 5,000 points
		sinkName      = "influxdb" // the type names an unnamed sink
	)
	settle := sinkSettle(interval, scrapeTimeout)
	idb := influxd.Start(t, influxd.Debian)
	p := startDemo(t, "--sim-mode", "constant", "--nodes", fmt.Sprint(nodes), "--pods-per-node", fmt.Sprint(podsPerNode),
		"--interval", interval.String(), "--scrape-timeout", scrapeTimeout.String(), "--data-dir", t.TempDir(),
		"--sink", "influxdb:"+idb.URL+"?db="+heapsterDB+"&cluster_name="+e2eCluster)
	waitFor(t, 30*time.Second, "/readyz", func() bool { c, _ := p.get(t, "/readyz"); return c == 200 })

	var tr truth
	p.getJSON(t, "/sim/truth", &tr)
	nodeCPU := map[string]float64{} // node → Σ its containers' millicores
	ctrCPU := map[ckey]float64{}
	ctrNode := map[ckey]string{}
	pods, namespaces := map[string]bool{}, map[string]bool{}
	for _, c := range tr.Containers {
		nodeCPU[c.Node] += c.CPUMillicores
		k := ckey{c.Namespace, c.Pod, c.Container}
		ctrCPU[k], ctrNode[k] = c.CPUMillicores, c.Node
		pods[c.Namespace+"/"+c.Pod] = true
		namespaces[c.Namespace] = true
	}
	if len(nodeCPU) != nodes || len(pods) != nodes*podsPerNode || len(ctrCPU) != 2*nodes*podsPerNode || len(namespaces) < 2 {
		t.Fatalf("truth: %d nodes, %d pods, %d containers, %d namespaces; want %d, %d, %d, ≥ 2",
			len(nodeCPU), len(pods), len(ctrCPU), len(namespaces), nodes, nodes*podsPerNode, 2*nodes*podsPerNode)
	}

	nodeRate := name(model.LevelNode, model.CPUUsageRate)
	waitFor(t, 60*time.Second, "CPU rates of every node", func() bool { return len(p.query(t, nodeRate)) == nodes })
	now := time.Now().UnixMilli()
	var firstAll int64 // when every node had its first rate
	for _, s := range storeSamples(t, p, nodeRate, now-5*60_000, now) {
		firstAll = max(firstAll, s[0].T)
	}
	// The sink's position past the first whole minute with rates from
	// every node, so that the dashboard's query has complete minutes.
	fullMinuteEnd := (firstAll+59_999)/60_000*60_000 + 60_000
	waitFor(t, settle+3*time.Minute, "the sink's position past "+stamp(fullMinuteEnd), func() bool {
		return positionMs(t, p, sinkName) >= fullMinuteEnd
	})
	pos := positionMs(t, p, sinkName)
	t.Logf("every node's first rate at %s; the sink's position %s (lag %.1f s, settle %v)", stamp(firstAll), stamp(pos),
		sinkMetric(t, p, sinkLag, sinkName), settle)

	// Heapster's dashboard query: node CPU, mean by minute and node.
	nodeType := model.LevelNode.Heapster()
	cpuRate := heapster(model.CPUUsageRate)
	dash := fmt.Sprintf(`SELECT mean(%q) FROM %q WHERE %q = '%s' AND time > now() - 30m GROUP BY time(1m), %q`,
		hsField, cpuRate, hsType, nodeType, hsNodename)
	res := idb.Query(t, heapsterDB, dash)
	if len(res) != nodes {
		t.Fatalf("%s: %d series, want one per node (%d)", dash, len(res), nodes)
	}
	// A minute bucket holds all its points when it began after every
	// node's first rate and ended before the sink's position; the others
	// hold some (the mean of a constant is the constant all the same).
	buckets, complete := 0, 0
	for _, s := range res {
		n := s.Tags[hsNodename]
		want, ok := nodeCPU[n]
		if !ok {
			t.Errorf("%s: node %q is not the truth's", dash, n)
			continue
		}
		ts, err := s.Times()
		if err != nil {
			t.Fatal(err)
		}
		means, err := s.Floats("mean")
		if err != nil {
			t.Fatal(err)
		}
		filled := 0
		for i, b := range ts {
			if math.IsNaN(means[i]) { // an empty minute (fill(null))
				if b+60_000 > firstAll && b+2*interval.Milliseconds() <= pos { // a node has a point every interval
					t.Errorf("%s: node %s has no points in the minute %s, which it had rates in up to the position", dash, n, stamp(b))
				}
				continue
			}
			filled++
			if b >= firstAll && b+60_000 <= pos {
				complete++
			}
			if !within(means[i], want, 0.01) {
				t.Errorf("%s: node %s, minute %s: %v m, the truth %v m", dash, n, stamp(b), means[i], want)
			}
		}
		if filled == 0 {
			t.Errorf("%s: node %s: no minute with points", dash, n)
		}
		buckets += filled
	}

	// Those points, one by one, are what kubemon stores (× 1000: Heapster's
	// millicores) up to the sink's position: no minute misses a point.
	want := map[string][]rawSample{}
	for k, s := range storeSamples(t, p, nodeRate, firstAll-60_000, pos) {
		for _, x := range s {
			want[k] = append(want[k], rawSample{x.T, x.V * model.Metrics[model.CPUUsageRate].HeapsterScale})
		}
	}
	nodePts := fmt.Sprintf(`SELECT %q FROM %q WHERE %q = '%s' AND time > %dms AND time <= %dms GROUP BY %q`,
		hsField, cpuRate, hsType, nodeType, firstAll-60_000, pos, hsNodename)
	got := map[string][]rawSample{}
	for _, s := range influxPoints(t, idb, nodePts) {
		got[seriesKey(map[string]string{pmodel.MetricNameLabel: nodeRate, model.LabelNode: s.Tags[hsNodename]})] = s.Points
	}
	if len(want) != nodes || sampleCount(want) < 15*nodes {
		t.Fatalf("kubemon's store: %d series of %s with %d samples up to %s, want %d series with ≥ 15 samples each",
			len(want), nodeRate, sampleCount(want), stamp(pos), nodes)
	}
	if complete < nodes {
		t.Errorf("%s: %d complete minutes (every point of the minute delivered), want at least one a node (%d)", dash, complete, nodes)
	}
	if compareSeries(t, nodePts, want, got) == 0 {
		t.Logf("%s: %d node-minutes within 1 %% of the truth (%d complete); %d node points up to %s equal to the store's",
			cpuRate, buckets, complete, sampleCount(got), stamp(pos))
	}

	// Heapster's per-container query: every point of every container of
	// the truth within 1 % of its truth.
	ctrType := model.LevelContainer.Heapster()
	perCtr := fmt.Sprintf(`SELECT %q FROM %q WHERE %q = '%s' AND time > now() - 30m GROUP BY %q, %q, %q`,
		hsField, cpuRate, hsType, ctrType, hsNamespace, hsPod, hsContainer)
	seen := map[ckey]bool{}
	points, bad := 0, 0
	for _, s := range influxPoints(t, idb, perCtr) {
		k := ckey{s.Tags[hsNamespace], s.Tags[hsPod], s.Tags[hsContainer]}
		w, ok := ctrCPU[k]
		if !ok || seen[k] {
			t.Errorf("%s: unknown or repeated container %v", perCtr, s.Tags)
			continue
		}
		seen[k] = true
		if len(s.Points) < 15 {
			t.Errorf("%s: container %v: %d points, want ≥ 15 (half a minute)", perCtr, k, len(s.Points))
		}
		for _, x := range s.Points {
			points++
			if !within(x.V, w, 0.01) {
				if bad++; bad <= 5 {
					t.Errorf("%s: container %v at %s: %v m, the truth %v m", perCtr, k, stamp(x.T), x.V, w)
				}
			}
		}
	}
	if len(seen) != len(ctrCPU) {
		t.Errorf("%s: %d containers, the truth has %d", perCtr, len(seen), len(ctrCPU))
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d points off", perCtr, bad, points)
	} else {
		t.Logf("%s: %d containers, %d points within 1 %% of the truth", ctrType, len(seen), points)
	}

	// Heapster's tags, by type, in every measurement: one series per
	// object (a point without the labels tag would be another series of
	// its container), the objects the truth's, all of them for CPU and
	// memory. A pod's labels are those of kubemon's pod info series.
	podLabels := map[string]string{}
	for _, s := range p.query(t, name(model.LevelPod, model.Info)) {
		podLabels[s.Metric[model.LabelNamespace]+"/"+s.Metric[model.LabelPod]] = s.Metric[model.LabelKubeLabels]
	}
	if len(podLabels) != len(pods) {
		t.Fatalf("%s: %d pods, the truth has %d", name(model.LevelPod, model.Info), len(podLabels), len(pods))
	}
	type spec struct {
		keys  []string // every tag key of the type, sorted
		count int      // objects of the truth
	}
	specs := map[string]spec{
		model.LevelContainer.Heapster(): {[]string{hsCluster, hsContainer, hsHostname, hsLabels, hsNamespace, hsNodename, hsPod, hsType}, len(ctrCPU)},
		model.LevelPod.Heapster():       {[]string{hsCluster, hsHostname, hsLabels, hsNamespace, hsNodename, hsPod, hsType}, len(pods)},
		model.LevelNamespace.Heapster(): {[]string{hsCluster, hsNamespace, hsType}, len(namespaces)},
		model.LevelNode.Heapster():      {[]string{hsCluster, hsHostname, hsNodename, hsType}, nodes},
		model.LevelCluster.Heapster():   {[]string{hsCluster, hsType}, 1},
	}
	everyObject := []model.MetricID{model.CPUUsageRate, model.MemoryWorkingSet}
	totals := map[string]int{} // type → series in all measurements
	// Problems by kind: how many, in which measurements, an example.
	type problem struct {
		n       int
		in      map[string]bool
		example string
	}
	problems := map[string]*problem{}
	report := func(kind, measurement, example string) {
		pr := problems[kind]
		if pr == nil {
			pr = &problem{in: map[string]bool{}, example: measurement + ": " + example}
			problems[kind] = pr
		}
		pr.n++
		pr.in[measurement] = true
	}
	for _, m := range model.Metrics {
		if m.Heapster == "" || m.ID == model.Info {
			continue
		}
		tagged := fmt.Sprintf(`SELECT last(%q) FROM %q WHERE time > now() - 30m GROUP BY *`, hsField, m.Heapster)
		objects := map[string]map[string]int{} // type → object → series
		for _, s := range idb.Query(t, heapsterDB, tagged) {
			typ := s.Tags[hsType]
			sp, ok := specs[typ]
			if !ok {
				continue // workload and sys_container: not Heapster's dashboards'
			}
			// GROUP BY * gives every key of the measurement, "" where a
			// series has none; the labels tag is checked below.
			var keys []string
			for k, v := range s.Tags {
				if v != "" && k != hsLabels {
					keys = append(keys, k)
				}
			}
			if slices.Sort(keys); !slices.Equal(keys, slices.DeleteFunc(slices.Clone(sp.keys), func(k string) bool { return k == hsLabels })) {
				report(fmt.Sprintf("%s series with tags other than %v", typ, sp.keys), m.Heapster, fmt.Sprint(s.Tags))
			}
			if s.Tags[hsCluster] != e2eCluster {
				report(fmt.Sprintf("%s series whose %s is not %q", typ, hsCluster, e2eCluster), m.Heapster, fmt.Sprint(s.Tags))
			}
			var object string
			switch typ {
			case model.LevelContainer.Heapster():
				k := ckey{s.Tags[hsNamespace], s.Tags[hsPod], s.Tags[hsContainer]}
				object = fmt.Sprint(k)
				if n := ctrNode[k]; n == "" || s.Tags[hsNodename] != n || s.Tags[hsHostname] != n {
					report(fmt.Sprintf("%s series not of a truth's container on its node (%s, %s)", typ, hsNodename, hsHostname), m.Heapster, fmt.Sprint(s.Tags))
				}
			case model.LevelPod.Heapster():
				object = s.Tags[hsNamespace] + "/" + s.Tags[hsPod]
				if !pods[object] || s.Tags[hsHostname] == "" || s.Tags[hsHostname] != s.Tags[hsNodename] {
					report(fmt.Sprintf("%s series not of a truth's pod, or %s not its %s", typ, hsHostname, hsNodename), m.Heapster, fmt.Sprint(s.Tags))
				}
			case model.LevelNamespace.Heapster():
				object = s.Tags[hsNamespace]
				if !namespaces[object] {
					report(fmt.Sprintf("%s series not of a truth's namespace", typ), m.Heapster, fmt.Sprint(s.Tags))
				}
			case model.LevelNode.Heapster():
				object = s.Tags[hsNodename]
				if _, ok := nodeCPU[object]; !ok || s.Tags[hsHostname] != object {
					report(fmt.Sprintf("%s series not of a truth's node, or %s not its %s", typ, hsHostname, hsNodename), m.Heapster, fmt.Sprint(s.Tags))
				}
			}
			if typ == model.LevelContainer.Heapster() || typ == model.LevelPod.Heapster() {
				pod := s.Tags[hsNamespace] + "/" + s.Tags[hsPod]
				if l := s.Tags[hsLabels]; l == "" || l != podLabels[pod] {
					report(fmt.Sprintf("%s series whose %s tag is not the pod's (kubemon's pod info)", typ, hsLabels), m.Heapster,
						fmt.Sprintf("%v; pod info has %q", s.Tags, podLabels[pod]))
				}
			}
			if objects[typ] == nil {
				objects[typ] = map[string]int{}
			}
			objects[typ][object]++
			totals[typ]++
		}
		for typ, sp := range specs {
			for o, n := range objects[typ] {
				if n > 1 {
					report(fmt.Sprintf("%s objects with more than one series", typ), m.Heapster, fmt.Sprintf("%d series of %s", n, o))
				}
			}
			l := model.LevelContainer
			for _, x := range []model.Level{model.LevelPod, model.LevelNamespace, model.LevelNode, model.LevelCluster} {
				if x.Heapster() == typ {
					l = x
				}
			}
			if n := len(objects[typ]); n > sp.count || (slices.Contains(everyObject, m.ID) && m.Levels.Has(l) && n != sp.count) {
				report(fmt.Sprintf("measurements with %s series of a wrong number of objects", typ), m.Heapster,
					fmt.Sprintf("%d objects, the truth has %d", n, sp.count))
			}
		}
	}
	for _, kind := range slices.Sorted(maps.Keys(problems)) {
		pr := problems[kind]
		t.Errorf("%d %s, in %d measurements (%v), e.g. %s", pr.n, kind, len(pr.in), slices.Sorted(maps.Keys(pr.in)), pr.example)
	}
	t.Logf("series by type in all measurements: %v", totals)
	if f := sinkMetric(t, p, sinkFailed, sinkName); f != 0 {
		t.Errorf("%s = %v, want 0", sinkFailed, f)
	}
}

// TestSinkOutage: both receivers (InfluxDB and Prometheus) are killed for
// five minutes, and four minutes in kubemon itself is killed and started
// again on its data directory, behind on both sinks. Once both caught up:
// (a) InfluxDB holds, point for point, what kubemon's store holds for every
// node and cluster series and the pods and containers of three pods, of
// every metric with a Heapster name, with the pods' labels on every pod and
// container point; (b) Prometheus holds every series of the store, sample
// for sample, with the external label; across both kubemon processes each
// sink accepted exactly as many samples as the store holds (none twice,
// none skipped); (c) while the receivers were down, kubemon kept scraping
// every node every interval; (d) no sample was refused or dropped. And
// while the receivers are down, kubemon_sink_lag_seconds says how far
// behind the sinks are; (e) a third sink, with a budget (max_lag=2m),
// skips what is beyond it when the receivers are back, once, and then
// delivers again.
func TestSinkOutage(t *testing.T) {
	t.Parallel()
	needSinkBinaries(t, true, true)
	const (
		interval      = 5 * time.Second
		scrapeTimeout = 2 * time.Second
		nodes         = 4
		podsPerNode   = 5
		outage        = 5 * time.Minute
		restartAfter  = 4 * time.Minute // kubemon is killed and started again this far into the outage
		maxGap        = interval * 3 / 2
		influxSink    = "influxdb" // the types name unnamed sinks
		rwSink        = "remotewrite"
		budgetSink    = "budget" // a third sink, to InfluxDB, with a budget
		budgetDB      = "budget"
		maxLag        = 2 * time.Minute
	)
	sinks := []string{influxSink, rwSink}
	settle := sinkSettle(interval, scrapeTimeout)
	idb := influxd.Start(t, influxd.Debian)
	prom := promserver.Start(t)
	args := []string{"--sim-mode", "constant", "--nodes", fmt.Sprint(nodes), "--pods-per-node", fmt.Sprint(podsPerNode),
		"--interval", interval.String(), "--scrape-timeout", scrapeTimeout.String(), "--data-dir", t.TempDir(),
		"--sink", "influxdb:" + idb.URL + "?db=" + heapsterDB + "&cluster_name=" + e2eCluster,
		"--sink", "remotewrite:" + prom.WriteURL() + "?label=" + remoteWriteLabel + ":" + e2eCluster,
		"--sink", "influxdb:" + idb.URL + "?db=" + budgetDB + "&name=" + budgetSink + "&max_lag=" + maxLag.String()}
	began := time.Now()
	p1 := startDemo(t, args...)
	waitFor(t, 30*time.Second, "/readyz", func() bool { c, _ := p1.get(t, "/readyz"); return c == 200 })
	var tr truth
	p1.getJSON(t, "/sim/truth", &tr)
	if len(tr.Containers) != 2*nodes*podsPerNode {
		t.Fatalf("truth has %d containers, want %d", len(tr.Containers), 2*nodes*podsPerNode)
	}

	// Data flows to both: each sink delivered two cycles.
	waitFor(t, settle+2*time.Minute, "both sinks delivering", func() bool {
		for _, s := range sinks {
			if m := sinkMetrics(t, p1, s); !(m[sinkSent] > 0) || !(m[sinkPosition]*1000 > float64(began.Add(2*interval).UnixMilli())) {
				return false
			}
		}
		return true
	})
	for _, s := range sinks {
		t.Logf("before the outage: %s sent %v samples, lag %.1f s", s, sinkMetric(t, p1, sinkSent, s), sinkMetric(t, p1, sinkLag, s))
	}
	down := time.Now()
	idb.Kill()
	prom.Kill()
	t.Logf("receivers killed at %s", stamp(down.UnixMilli()))

	time.Sleep(time.Until(down.Add(restartAfter)))
	// (c) Scraping kept its cadence while the sinks could deliver nothing.
	cadenceTo := time.Now().Add(-interval - scrapeTimeout - time.Second)
	series, samples, longest := nodeCadence(t, p1, nodes, down.UnixMilli(), cadenceTo.UnixMilli(), maxGap)
	t.Logf("receivers down: %d node series, %d samples from %s to %s, longest gap %v", series, samples,
		stamp(down.UnixMilli()), stamp(cadenceTo.UnixMilli()), longest)
	// (d) in the first process, and what it delivered: nothing more since
	// the receivers went down, so nothing is in flight.
	sent := map[string]float64{}
	for _, s := range sinks {
		lagHonest(t, p1, s) // minutes behind now
		m := sinkMetrics(t, p1, s)
		if m[sinkFailed] != 0 || m[sinkDropped] != 0 || !(m[sinkRetried] > 0) || !(m[sinkSent] > 0) {
			t.Errorf("first kubemon, sink %s: %s %v, %s %v (want 0 and 0), %s %v, %s %v (want > 0: it delivered, then retried)",
				s, sinkFailed, m[sinkFailed], sinkDropped, m[sinkDropped], sinkRetried, m[sinkRetried], sinkSent, m[sinkSent])
		}
		sent[s] = m[sinkSent]
	}
	killed := time.Now()
	p1.kill()
	p2 := startDemo(t, args...)
	t.Logf("kubemon killed at %s and started again", stamp(killed.UnixMilli()))

	time.Sleep(time.Until(down.Add(outage)))
	idb.Restart()
	prom.Restart()
	up := time.Now()
	took := waitCaughtUp(t, p2, sinks, settle, interval, 4*time.Minute)
	t.Logf("receivers back at %s; both sinks caught up in %v", stamp(up.UnixMilli()), took.Round(time.Second))
	// Until they delivered what the second kubemon stored too.
	waitFor(t, settle+time.Minute, "both sinks past the second kubemon's first cycles", func() bool {
		for _, s := range sinks {
			if positionMs(t, p2, s) < killed.Add(4*interval).UnixMilli() {
				return false
			}
		}
		return true
	})

	// Where each sink stands, read while it stands still.
	end := map[string]map[string]float64{}
	to := int64(math.MaxInt64)
	for _, s := range sinks {
		m := quietSink(t, p2, s)
		end[s] = m
		to = min(to, int64(math.Round(m[sinkPosition]*1000)))
		// (d)
		if m[sinkFailed] != 0 || m[sinkDropped] != 0 {
			t.Errorf("second kubemon, sink %s: %s %v, %s %v, want 0", s, sinkFailed, m[sinkFailed], sinkDropped, m[sinkDropped])
		}
	}
	if !(to > up.Add(-settle).UnixMilli()) {
		t.Fatalf("the sinks' positions (%s) are not past the receivers' return (%s) less the settle time", stamp(to), stamp(up.UnixMilli()))
	}
	from := began.Add(-time.Minute).UnixMilli() // before anything was stored
	store := storeSamples(t, p2, match("__name__=~", ".+"), from, time.Now().UnixMilli())
	t.Logf("kubemon's store: %d series, %d samples", len(store), sampleCount(store))

	// The gap kubemon's own restart left in its store (the sinks can only
	// hold what the store has).
	var restartGap time.Duration
	for k, s := range store {
		if seriesName(k) != name(model.LevelNode, model.MemoryWorkingSet) {
			continue
		}
		for i := 1; i < len(s); i++ {
			if s[i].T > down.UnixMilli() {
				restartGap = max(restartGap, time.Duration(s[i].T-s[i-1].T)*time.Millisecond)
			}
		}
	}
	t.Logf("longest gap in a node's series since the receivers went down (kubemon's restart): %v", restartGap)

	// Exactly what the store holds up to its position reached each sink:
	// what both processes delivered adds up to the store's samples.
	for _, s := range sinks {
		pos := int64(math.Round(end[s][sinkPosition] * 1000))
		n := 0
		for _, x := range store {
			for _, y := range x {
				if y.T <= pos {
					n++
				}
			}
		}
		total := sent[s] + end[s][sinkSent]
		if !(total == float64(n)) || n == 0 {
			t.Errorf("sink %s: %v + %v = %v samples accepted by the two kubemon processes, the store holds %d up to the position %s",
				s, sent[s], end[s][sinkSent], total, n, stamp(pos))
		} else {
			t.Logf("sink %s: %v + %v samples accepted = the store's %d up to %s", s, sent[s], end[s][sinkSent], n, stamp(pos))
		}
	}
	inWindow := func(m map[string][]rawSample) map[string][]rawSample {
		out := map[string][]rawSample{}
		for k, s := range m {
			for _, x := range s {
				if x.T > from && x.T <= to {
					out[k] = append(out[k], x)
				}
			}
		}
		return out
	}
	want := inWindow(store)
	after := 0 // samples the second kubemon stored
	for _, x := range want {
		for _, y := range x {
			if y.T > killed.UnixMilli() {
				after++
			}
		}
	}
	if after == 0 {
		t.Fatalf("no sample stored after kubemon's restart at %s up to %s", stamp(killed.UnixMilli()), stamp(to))
	}

	// (b) Prometheus: every series, sample for sample, with the external label.
	got, noExt := promSamples(t, prom, match("__name__=~", ".+"), from, to, map[string]string{remoteWriteLabel: e2eCluster})
	if len(noExt) > 0 {
		t.Errorf("prometheus: %d series without %s=%q, e.g. %s", len(noExt), remoteWriteLabel, e2eCluster, noExt[0])
	}
	if len(want) < 500 || len(got) != len(want) {
		t.Errorf("prometheus: %d series up to %s, kubemon's store %d (want ≥ 500)", len(got), stamp(to), len(want))
	}
	if compareSeries(t, "prometheus", want, got) == 0 {
		t.Logf("prometheus: %d series, %d samples up to %s (%d stored by the second kubemon), all equal to the store's", len(got), sampleCount(got), stamp(to), after)
	}

	// (a) InfluxDB: every node and cluster series, and three pods with
	// their containers, of every metric with a Heapster name.
	var chosen []string // namespace/pod
	var podCond []string
	for _, i := range []int{0, 2*podsPerNode + 1, len(tr.Containers) - 1} {
		c := tr.Containers[i]
		chosen = append(chosen, c.Namespace+"/"+c.Pod)
		podCond = append(podCond, fmt.Sprintf(`(%q = '%s' AND %q = '%s')`, hsNamespace, c.Namespace, hsPod, c.Pod))
	}
	wantIn := map[string][]rawSample{}
	perLevel := map[model.Level]int{}
	for k, s := range want {
		l, _, _ := model.ParseSeriesName(seriesName(k))
		switch {
		case l == model.LevelNode || l == model.LevelCluster:
		case (l == model.LevelPod || l == model.LevelContainer) && slices.Contains(chosen, labelOf(k, model.LabelNamespace)+"/"+labelOf(k, model.LabelPod)):
		default:
			continue
		}
		hk, scale, ok := heapsterKeyOf(k)
		if !ok {
			continue
		}
		perLevel[l]++
		for _, x := range s {
			wantIn[hk] = append(wantIn[hk], rawSample{x.T, x.V * scale})
		}
	}
	if perLevel[model.LevelNode] < 20*nodes || perLevel[model.LevelCluster] < 20 || perLevel[model.LevelPod] < 10*len(chosen) || perLevel[model.LevelContainer] < 2*10*len(chosen) {
		t.Fatalf("kubemon's store: %v series with a Heapster name of the nodes, the cluster and pods %v: too few", perLevel, chosen)
	}
	gotIn := map[string][]rawSample{}
	unlabelled, measurements := 0, 0
	for _, m := range model.Metrics {
		if m.Heapster == "" || m.ID == model.Info {
			continue
		}
		measurements++
		q := fmt.Sprintf(`SELECT %q FROM %q WHERE time > %dms AND time <= %dms AND (%q = '%s' OR %q = '%s' OR %s) GROUP BY *`,
			hsField, m.Heapster, from, to, hsType, model.LevelNode.Heapster(), hsType, model.LevelCluster.Heapster(), strings.Join(podCond, " OR "))
		for _, s := range influxPoints(t, idb, q) {
			typ := s.Tags[hsType]
			if typ != model.LevelNode.Heapster() && typ != model.LevelCluster.Heapster() && typ != model.LevelPod.Heapster() && typ != model.LevelContainer.Heapster() {
				continue
			}
			if (typ == model.LevelPod.Heapster() || typ == model.LevelContainer.Heapster()) && s.Tags[hsLabels] == "" {
				unlabelled += len(s.Points)
			}
			hk := heapsterKey(s.Measurement, s.Tags)
			// Series of one object with other tag values (labels) must
			// not hold the same time twice.
			gotIn[hk] = append(gotIn[hk], s.Points...)
		}
	}
	dup := 0
	for hk, pts := range gotIn {
		sort.SliceStable(pts, func(i, j int) bool { return pts[i].T < pts[j].T })
		for i := 1; i < len(pts); i++ {
			if pts[i].T == pts[i-1].T {
				if dup++; dup <= 3 {
					t.Errorf("influxdb: %s has two points at %s (%v, %v)", hk, stamp(pts[i].T), pts[i-1].V, pts[i].V)
				}
			}
		}
	}
	if unlabelled > 0 {
		t.Errorf("influxdb: %d pod and container points of pods %v without the pod's %s tag", unlabelled, chosen, hsLabels)
	}
	if compareSeries(t, "influxdb", wantIn, gotIn) == 0 && dup == 0 {
		t.Logf("influxdb: %d series (%v store series by level) of %d measurements, %d points up to %s, all equal to the store's",
			len(gotIn), perLevel, measurements, sampleCount(gotIn), stamp(to))
	}

	// (e) The budget sink was further behind than its budget when the
	// receivers came back: it skipped the oldest data (counted and logged,
	// once) and then delivers again, from its budget on to the present.
	limit := settle + interval + 5*time.Second
	for deadline := time.Now().Add(30 * time.Second); positionAge(t, p2, budgetSink) > limit && time.Now().Before(deadline); {
		time.Sleep(time.Second)
	}
	bm := sinkMetrics(t, p2, budgetSink)
	age := positionAge(t, p2, budgetSink)
	var newest int64
	last := fmt.Sprintf(`SELECT last(%q) FROM %q WHERE %q = '%s'`, hsField, heapster(model.CPUUsageRate), hsType, model.LevelCluster.Heapster())
	for _, s := range idb.Query(t, budgetDB, last) {
		ts, err := s.Times()
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range ts {
			newest = max(newest, x)
		}
	}
	skips := 0 // kubemon logs each skip with the sink's budget
	for _, l := range strings.Split(p2.Logs(), "\n") {
		if strings.Contains(l, "sink="+budgetSink) && strings.Contains(l, "maxLag="+maxLag.String()) {
			skips++
		}
	}
	if want := up.Add(-settle - interval - 5*time.Second).UnixMilli(); age > limit || newest < want || !(bm[sinkDropped] > 0) || bm[sinkFailed] != 0 || skips < 1 || skips > 3 {
		t.Errorf("sink %s (%s=%v), %v after the receivers came back: position %v old (want ≤ %v), newest point in InfluxDB %s (want ≥ %s), "+
			"%s %v (want > 0), %s %v (want 0), %s %v, %d skips logged (want 1 to 3)",
			budgetSink, "max_lag", maxLag, time.Since(up).Round(time.Second), age.Round(time.Second), limit, stamp(newest), stamp(want),
			sinkDropped, bm[sinkDropped], sinkFailed, bm[sinkFailed], sinkSent, bm[sinkSent], skips)
	} else {
		t.Logf("sink %s: %v samples beyond its budget skipped in %d logged skips, then delivering again (position %v old)",
			budgetSink, bm[sinkDropped], skips, age.Round(time.Second))
	}
}

// TestSinkRemoteWriteEqualsStore: in realistic mode (usage that changes
// every second, pod churn, restarts), what a real Prometheus received by
// remote write and answers equals kubemon's own store: as many series of
// every name, and every series sample for sample over the range the sink
// delivered, each with the external label.
func TestSinkRemoteWriteEqualsStore(t *testing.T) {
	t.Parallel()
	needSinkBinaries(t, false, true)
	const (
		interval      = 2 * time.Second
		scrapeTimeout = time.Second
		sinkName      = "remotewrite"
	)
	settle := sinkSettle(interval, scrapeTimeout)
	prom := promserver.Start(t)
	began := time.Now()
	p := startDemo(t, "--nodes", "4", "--pods-per-node", "6", "--interval", interval.String(), "--scrape-timeout", scrapeTimeout.String(),
		"--data-dir", t.TempDir(), "--sink", "remotewrite:"+prom.WriteURL()+"?label="+remoteWriteLabel+":"+e2eCluster,
		"--metrics-drop", "") // every series, the page faults of containers and pods too
	waitFor(t, 30*time.Second, "/readyz", func() bool { c, _ := p.get(t, "/readyz"); return c == 200 })
	// Half a minute of data delivered.
	waitFor(t, settle+2*time.Minute, "the sink's position 30 s past the start", func() bool {
		return positionMs(t, p, sinkName) > began.Add(30*time.Second).UnixMilli()
	})
	m := quietSink(t, p, sinkName)
	if !(m[sinkSent] > 0) || m[sinkFailed] != 0 || m[sinkDropped] != 0 {
		t.Errorf("%s %v (want > 0), %s %v, %s %v (want 0)", sinkSent, m[sinkSent], sinkFailed, m[sinkFailed], sinkDropped, m[sinkDropped])
	}
	to := int64(math.Round(m[sinkPosition] * 1000))
	from := began.Add(-time.Minute).UnixMilli() // before anything was stored
	all := match("__name__=~", ".+")
	want := storeSamples(t, p, all, from, to)
	got, noExt := promSamples(t, prom, all, from, to, map[string]string{remoteWriteLabel: e2eCluster})

	// Series counts by name first: every name kubemon stores.
	wantN, gotN := countByName(want), countByName(got)
	contract := 0
	for n := range wantN {
		if _, _, ok := model.ParseSeriesName(n); ok {
			contract++
		}
	}
	if contract < len(model.SeriesNames())*3/4 || sampleCount(want) < 10_000 {
		t.Fatalf("kubemon's store: %d series names (%d of the contract's %d), %d samples: too few to compare",
			len(wantN), contract, len(model.SeriesNames()), sampleCount(want))
	}
	names := slices.Sorted(maps.Keys(wantN))
	for n := range gotN {
		if _, ok := wantN[n]; !ok {
			names = append(names, n)
		}
	}
	badNames := 0
	for _, n := range names {
		if wantN[n] != gotN[n] {
			if badNames++; badNames <= 10 {
				t.Errorf("%s: %d series in prometheus, %d in kubemon's store", n, gotN[n], wantN[n])
			}
		}
	}
	if len(noExt) > 0 {
		t.Errorf("prometheus: %d series without %s=%q, e.g. %s", len(noExt), remoteWriteLabel, e2eCluster, noExt[0])
	}
	// Then every series, sample for sample.
	if compareSeries(t, "prometheus", want, got) == 0 && badNames == 0 {
		t.Logf("%d series names, %d series, %d samples from %s to %s: prometheus equals kubemon's store (%s %v)",
			len(wantN), len(want), sampleCount(want), stamp(from), stamp(to), sinkSent, m[sinkSent])
	}
	// The sink counted at least the samples compared as sent (it sends
	// staleness markers too, which queries do not show).
	if !(m[sinkSent] >= float64(sampleCount(want))) {
		t.Errorf("%s %v, fewer than the store's %d samples", sinkSent, m[sinkSent], sampleCount(want))
	}
}

// linesOf returns the points (lines) of an InfluxDB write request's body.
func linesOf(req *http.Request, body []byte) ([]string, error) {
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err == nil {
			body, err = io.ReadAll(zr)
		}
		if err != nil {
			return nil, fmt.Errorf("bad gzip: %w", err)
		}
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if l := sc.Text(); l != "" {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}

// refuser is an InfluxDB that refuses every write for good (400, with a
// message of its own) and remembers what it was sent.
type refuser struct {
	message string
	mu      sync.Mutex
	writes  int
	bodies  map[string]int // sha256 of a request body → requests
	points  map[string]int // a point (its line less the labels tag) → requests
}

// labelsTag matches a line protocol point's labels tag (a tag value escapes
// commas, spaces and equals signs with a backslash).
var labelsTag = regexp.MustCompile(`,` + hsLabels + `=(?:[^,\\ ]|\\.)*`)

func (r *refuser) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	switch req.URL.Path {
	case "/query": // CREATE DATABASE
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"results":[{"statement_id":0}]}`)
	case "/write":
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		sum := sha256.Sum256(body)
		lines, err := linesOf(req, body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.writes++
		r.bodies[hex.EncodeToString(sum[:])]++
		for _, l := range lines {
			r.points[labelsTag.ReplaceAllString(l, "")]++
		}
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "{\"error\":%q}\n", r.message)
	default:
		http.NotFound(w, req)
	}
}

// hanger accepts every request and never answers it.
type hanger struct {
	release  chan struct{}
	mu       sync.Mutex
	requests int
	first    time.Time
}

func (h *hanger) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	h.mu.Lock()
	h.requests++
	if h.first.IsZero() {
		h.first = time.Now()
	}
	h.mu.Unlock()
	_, _ = io.Copy(io.Discard, req.Body)
	select {
	case <-req.Context().Done(): // the client gave up
	case <-h.release:
	}
}

// TestSinkRefusedAndHanging: one sink's server refuses every write for good
// (400 and a message of its own), another's never answers. kubemon logs the
// refusing server's message, sends it each batch once and counts the
// samples as failed, not retried, and the refused sink keeps up with the
// present; the hanging sink's writes time out and are retried (its lag
// growing), while scraping keeps its cadence.
func TestSinkRefusedAndHanging(t *testing.T) {
	t.Parallel()
	const (
		interval      = 2 * time.Second
		scrapeTimeout = time.Second
		nodes         = 4
		refusedSink   = "refused"
		hangingSink   = "hanging"
	)
	settle := sinkSettle(interval, scrapeTimeout)
	token := make([]byte, 6)
	if _, err := rand.Read(token); err != nil {
		t.Fatal(err)
	}
	ref := &refuser{message: "partial write: field type conflict: " + hex.EncodeToString(token), bodies: map[string]int{}, points: map[string]int{}}
	refSrv := httptest.NewServer(ref)
	t.Cleanup(refSrv.Close)
	hang := &hanger{release: make(chan struct{})}
	hangSrv := httptest.NewServer(hang)
	t.Cleanup(hangSrv.Close)
	t.Cleanup(func() { close(hang.release) }) // before hangSrv.Close, which waits for the handlers

	p := startDemo(t, "--sim-mode", "constant", "--nodes", fmt.Sprint(nodes), "--pods-per-node", "4",
		"--interval", interval.String(), "--scrape-timeout", scrapeTimeout.String(), "--data-dir", t.TempDir(),
		"--sink", "influxdb:"+refSrv.URL+"?db="+heapsterDB+"&name="+refusedSink,
		"--sink", "remotewrite:"+hangSrv.URL+"/api/v1/write?name="+hangingSink+"&timeout=2s")
	waitFor(t, 30*time.Second, "/readyz", func() bool { c, _ := p.get(t, "/readyz"); return c == 200 })
	waitFor(t, settle+90*time.Second, "writes to both servers", func() bool {
		ref.mu.Lock()
		refused := ref.writes
		ref.mu.Unlock()
		hang.mu.Lock()
		hung := hang.requests
		hang.mu.Unlock()
		return refused >= 3 && hung >= 2
	})

	// The hanging sink: retried, more and more, its position stuck.
	a := sinkMetrics(t, p, hangingSink)
	time.Sleep(13 * interval)
	b := sinkMetrics(t, p, hangingSink)
	end := time.Now()
	if !(b[sinkRetried] > a[sinkRetried]) {
		t.Errorf("%s{sink=%q}: %v, %v %v later: want it growing (timeouts are retried)", sinkRetried, hangingSink, a[sinkRetried], b[sinkRetried], 13*interval)
	}
	if !(a[sinkPosition] == b[sinkPosition]) || b[sinkSent] != 0 || b[sinkFailed] != 0 {
		t.Errorf("sink %s: position %v then %v, %s %v, %s %v: want the position stuck, nothing sent and nothing failed",
			hangingSink, a[sinkPosition], b[sinkPosition], sinkSent, b[sinkSent], sinkFailed, b[sinkFailed])
	}
	lagHonest(t, p, hangingSink) // the lag grows while the sink hangs
	hang.mu.Lock()
	hungSince, hung := hang.first, hang.requests
	hang.mu.Unlock()
	// Scraping kept its cadence while the sink hung: every node's series,
	// a sample every interval (1.5 at most between two) over ≥ 10 intervals.
	from, to := hungSince, end.Add(-interval-scrapeTimeout-time.Second)
	if to.Sub(from) < 10*interval {
		t.Fatalf("the sink hung from %s to %s: less than 10 intervals", stamp(from.UnixMilli()), stamp(to.UnixMilli()))
	}
	series, samples, longest := nodeCadence(t, p, nodes, from.UnixMilli(), to.UnixMilli(), interval*3/2)
	t.Logf("sink %s hung from %s (%d requests, %s %v): %d node series, %d samples to %s, longest gap %v",
		hangingSink, stamp(from.UnixMilli()), hung, sinkRetried, b[sinkRetried], series, samples, stamp(to.UnixMilli()), longest)

	// The refused sink: each batch once, counted as failed, never
	// retried; its position keeps up; the server's message in the log.
	// Batches that give InfluxDB no point (a window's info series come
	// first, in batches of their own) need no request and count as sent:
	// at least the info samples, at most those of every series the sink
	// writes no point for.
	m := quietSink(t, p, refusedSink)
	start, pos := sinkStart(t, p, refusedSink), positionMs(t, p, refusedSink)
	var all, info, pointless int
	for k, ss := range storeSamples(t, p, `{__name__=~".+"}`, start, pos) {
		all += len(ss)
		if _, _, ok := heapsterKeyOf(k); !ok {
			pointless += len(ss)
		}
		if strings.HasSuffix(seriesName(k), "_info") {
			info += len(ss)
		}
	}
	if !(m[sinkFailed] > 0) || m[sinkRetried] != 0 || !(m[sinkSent] >= float64(info) && m[sinkSent] <= float64(pointless)) || !(m[sinkSent]+m[sinkFailed] >= float64(all)) || info == 0 {
		t.Errorf("sink %s from %s to %s: %s %v (want > 0), %s %v (want 0), %s %v (want %d to %d: the info samples to all without a point), %d samples stored (want ≤ sent + failed)",
			refusedSink, stamp(start), stamp(pos), sinkFailed, m[sinkFailed], sinkRetried, m[sinkRetried], sinkSent, m[sinkSent], info, pointless, all)
	}
	if age := positionAge(t, p, refusedSink); age > settle+interval+5*time.Second {
		t.Errorf("sink %s: position %v old, want at most the settle time (%v) and an interval: refusals must not hold it back", refusedSink, age, settle)
	}
	lagHonest(t, p, refusedSink)
	ref.mu.Lock()
	writes, bodies, points := ref.writes, len(ref.bodies), len(ref.points)
	twice := 0
	for _, n := range ref.points {
		if n > 1 {
			twice++
		}
	}
	ref.mu.Unlock()
	if writes < 3 || points == 0 || bodies != writes || twice > 0 {
		t.Errorf("refusing server: %d writes with %d distinct bodies, %d distinct points (%d received more than once): want ≥ 3 writes, each body and point once",
			writes, bodies, points, twice)
	}
	if n := strings.Count(p.Logs(), ref.message); n == 0 {
		t.Errorf("kubemon's log does not have the refusing server's message %q", ref.message)
	} else {
		t.Logf("sink %s: %d writes refused (%d points, %s %v), the server's message logged %d times", refusedSink, writes, points, sinkFailed, m[sinkFailed], n)
	}
}
