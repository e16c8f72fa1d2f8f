package e2e

// Helpers of the sink tests (sinks_test.go): kubemon's sink self-metrics,
// raw samples from kubemon's store, from a Prometheus remote-write
// receiver (internal/testutil/promserver) and from InfluxDB
// (internal/testutil/influxd), and the comparisons between them.

import (
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	pmodel "github.com/prometheus/common/model"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/testutil/influxd"
	"github.com/kubemon/kubemon/internal/testutil/promserver"
)

// kubemon's sink self-metrics (internal/sink), each labelled sink="<name>".
const (
	sinkSent     = "kubemon_sink_samples_sent_total"
	sinkFailed   = "kubemon_sink_samples_failed_total"
	sinkRetried  = "kubemon_sink_samples_retried_total"
	sinkDropped  = "kubemon_sink_samples_dropped_total"
	sinkLag      = "kubemon_sink_lag_seconds"
	sinkPosition = "kubemon_sink_position_timestamp_seconds"
)

// Heapster's InfluxDB schema: the field every measurement has and the tag
// keys (the contract the sink is tested against, so spelled out here).
const (
	hsField     = "value"
	hsType      = "type"
	hsNamespace = "namespace_name"
	hsPod       = "pod_name"
	hsContainer = "container_name"
	hsNodename  = "nodename"
	hsHostname  = "hostname"
	hsLabels    = "labels"
	hsCluster   = "cluster_name"
)

// heapsterDB is the InfluxDB database the tests write to (Heapster's default).
const heapsterDB = "k8s"

// needSinkBinaries skips the test, loudly, when a receiver it runs is not
// installed.
func needSinkBinaries(t *testing.T, influx, prom bool) {
	t.Helper()
	if _, err := os.Stat(influxd.Debian); influx && err != nil {
		t.Skipf("SKIPPED: %s is missing (%v): this sink test needs Debian's package influxdb (InfluxDB 1.6); install it with hack/deps.sh", influxd.Debian, err)
	}
	if _, err := os.Stat(promserver.Binary); prom && err != nil {
		t.Skipf("SKIPPED: %s is missing (%v): this sink test needs Debian's package prometheus (2.42, the remote-write receiver); install it with hack/deps.sh", promserver.Binary, err)
	}
}

// sinkSettle is how far behind the present a sink reads, as documented
// (README, docs/architecture.md): the clock-skew tolerance, max(2 ×
// interval, 1m), plus the scrape timeout (and 2 s of margin).
func sinkSettle(interval, scrapeTimeout time.Duration) time.Duration {
	return max(2*interval, time.Minute) + scrapeTimeout + 2*time.Second
}

// sinkMetric is the value of kubemon's self-metric m of sink s, NaN when
// kubemon does not expose it (so that no comparison with it passes).
func sinkMetric(t *testing.T, p *proc, m, s string) float64 {
	t.Helper()
	return sinkMetrics(t, p, s)[m]
}

// sinkMetrics returns every self-metric of sink s (without histograms),
// read from one scrape of /metrics, by name.
func sinkMetrics(t *testing.T, p *proc, s string) map[string]float64 {
	t.Helper()
	code, b := p.get(t, "/metrics")
	out := map[string]float64{}
	for _, m := range []string{sinkSent, sinkFailed, sinkRetried, sinkDropped, sinkLag, sinkPosition} {
		out[m] = math.NaN()
	}
	if code != 200 {
		return out
	}
	suffix := fmt.Sprintf("{sink=%q} ", s)
	for _, line := range strings.Split(string(b), "\n") {
		n, rest, ok := strings.Cut(line, suffix)
		if _, known := out[n]; !ok || !known {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			f = math.NaN()
		}
		out[n] = f
	}
	return out
}

// positionMs is sink s's position (Unix ms) as its gauge shows it; 0 when
// it is not exposed.
func positionMs(t *testing.T, p *proc, s string) int64 {
	t.Helper()
	v := sinkMetric(t, p, sinkPosition, s)
	if !(v > 0) {
		return 0
	}
	return int64(math.Round(v * 1000))
}

// positionAge is how far behind the present sink s's position is, from its
// position gauge (not from its lag gauge: see lagHonest); +Inf when it is
// not exposed.
func positionAge(t *testing.T, p *proc, s string) time.Duration {
	t.Helper()
	pos := positionMs(t, p, s)
	if pos == 0 {
		return time.Duration(math.MaxInt64)
	}
	return time.Since(time.UnixMilli(pos))
}

// waitCaughtUp waits until every sink's lag is back within settle +
// interval + 5 s (a position moves once an interval, settle behind the
// present), as its lag gauge says and as its position is, and returns how
// long that took.
func waitCaughtUp(t *testing.T, p *proc, sinks []string, settle, interval, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	limit := settle + interval + 5*time.Second
	waitFor(t, timeout, fmt.Sprintf("sinks %v to catch up (%s and positions' age at most %v)", sinks, sinkLag, limit), func() bool {
		for _, s := range sinks {
			if positionAge(t, p, s) > limit || !(sinkMetric(t, p, sinkLag, s) <= limit.Seconds()) {
				return false
			}
		}
		return true
	})
	return time.Since(start)
}

// lagHonest fails unless sink s's lag gauge says how old its position is
// (both are computed when /metrics is read; the two reads here are up to
// 2 s apart).
func lagHonest(t *testing.T, p *proc, s string) {
	t.Helper()
	lag := sinkMetric(t, p, sinkLag, s)
	age := positionAge(t, p, s).Seconds()
	if !(math.Abs(lag-age) <= 2) {
		t.Errorf("sink %s: %s = %.1f s, but its position (%s %s) is %.1f s old", s, sinkLag, lag, sinkPosition,
			stamp(positionMs(t, p, s)), age)
	}
}

// sinkStart is the position a new sink s started from (Unix ms), from
// kubemon's log line saying so.
func sinkStart(t *testing.T, p *proc, s string) int64 {
	t.Helper()
	for _, l := range strings.Split(p.Logs(), "\n") {
		if !strings.Contains(l, "sink starts at the present") || !strings.Contains(l, " sink="+s+" ") {
			continue
		}
		_, v, ok := strings.Cut(l, " from=")
		v, _, _ = strings.Cut(v, " ")
		ts, err := time.Parse(time.RFC3339Nano, v)
		if !ok || err != nil {
			t.Fatalf("sink %s: no start time in %q (%v)", s, l, err)
		}
		return ts.UnixMilli()
	}
	t.Fatalf("kubemon did not log where sink %s started", s)
	return 0
}

// quietSink reads sink s's metrics twice, 300 ms apart, until both reads agree
// on the samples sent and the position (no window was being sent between
// them), and returns them.
func quietSink(t *testing.T, p *proc, s string) map[string]float64 {
	t.Helper()
	for range 50 {
		a := sinkMetrics(t, p, s)
		time.Sleep(300 * time.Millisecond)
		b := sinkMetrics(t, p, s)
		if a[sinkSent] == b[sinkSent] && a[sinkPosition] == b[sinkPosition] && a[sinkFailed] == b[sinkFailed] {
			return b
		}
	}
	t.Fatalf("sink %s never stood still for 300 ms", s)
	return nil
}

// rawSample is one raw sample: its time (Unix ms) and value.
type rawSample struct {
	T int64
	V float64
}

// storeSamples returns the raw samples kubemon's store holds in (from, to]
// (Unix ms) for the series of selector sel, keyed as rangeSeries keys them.
func storeSamples(t *testing.T, p *proc, sel string, from, to int64) map[string][]rawSample {
	t.Helper()
	q := fmt.Sprintf("%s[%dms] @ %.3f", sel, to-from+60_000, float64(to)/1000)
	out := map[string][]rawSample{}
	for k, pts := range rangeSeries(t, p, q) {
		for _, pt := range pts {
			if pt.T > from && pt.T <= to {
				out[k] = append(out[k], rawSample{pt.T, pt.f(t)})
			}
		}
	}
	return out
}

// promSamples returns the raw samples a Prometheus holds in (from, to] for
// the series of selector sel, keyed as rangeSeries keys them, without the
// external labels ext; series lacking one of them (or with another value)
// are returned in missingExt.
func promSamples(t *testing.T, srv *promserver.Server, sel string, from, to int64, ext map[string]string) (out map[string][]rawSample, missingExt []string) {
	t.Helper()
	q := fmt.Sprintf("%s[%dms]", sel, to-from+60_000)
	m, ok := srv.Query(t, q, time.UnixMilli(to)).(pmodel.Matrix)
	if !ok {
		t.Fatalf("prometheus: %s: not a matrix", q)
	}
	out = map[string][]rawSample{}
	for _, ss := range m {
		var ls []string
		bad := false
		for k, v := range ss.Metric {
			if want, isExt := ext[string(k)]; isExt {
				bad = bad || string(v) != want
				continue
			}
			ls = append(ls, fmt.Sprintf("%s=%q", k, v))
		}
		for k := range ext {
			if _, ok := ss.Metric[pmodel.LabelName(k)]; !ok {
				bad = true
			}
		}
		sort.Strings(ls)
		key := "{" + strings.Join(ls, ", ") + "}"
		if bad {
			missingExt = append(missingExt, ss.Metric.String())
		}
		for _, sp := range ss.Values {
			if ts := int64(sp.Timestamp); ts > from && ts <= to {
				out[key] = append(out[key], rawSample{ts, float64(sp.Value)})
			}
		}
	}
	return out, missingExt
}

// sampleCount is the number of samples of all series.
func sampleCount(m map[string][]rawSample) int {
	n := 0
	for _, s := range m {
		n += len(s)
	}
	return n
}

// compareSeries compares the samples of every series of got with want's,
// exactly (times and values; a NaN never equals), and reports at most a
// few differences; it returns the number of series that differ.
func compareSeries(t *testing.T, what string, want, got map[string][]rawSample) int {
	t.Helper()
	bad := 0
	report := func(format string, args ...any) {
		t.Helper()
		if bad++; bad <= 5 {
			t.Errorf("%s: "+format, append([]any{what}, args...)...)
		}
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w, g := want[k], got[k]
		if g == nil {
			report("%s: none of its %d samples (%s … %s)", k, len(w), stamp(w[0].T), stamp(w[len(w)-1].T))
			continue
		}
		if !slices.EqualFunc(w, g, func(a, b rawSample) bool { return a.T == b.T && a.V == b.V }) {
			report("%s: %d samples, kubemon's store has %d; first difference: %s", k, len(g), len(w), rawDiff(w, g))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			report("%s: %d samples kubemon's store does not have", k, len(g))
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d series differ in all", what, bad)
	}
	return bad
}

func stamp(ms int64) string { return time.UnixMilli(ms).UTC().Format("15:04:05.000") }

// rawDiff describes where two sample lists first differ.
func rawDiff(want, got []rawSample) string {
	for i := range want {
		if i >= len(got) {
			return fmt.Sprintf("%s = %v missing", stamp(want[i].T), want[i].V)
		}
		if got[i].T != want[i].T || got[i].V != want[i].V {
			return fmt.Sprintf("%s = %v in the store, %s = %v here", stamp(want[i].T), want[i].V, stamp(got[i].T), got[i].V)
		}
	}
	if len(got) > len(want) {
		return fmt.Sprintf("%s = %v is extra", stamp(got[len(want)].T), got[len(want)].V)
	}
	return "none"
}

// seriesName is the __name__ of a rangeSeries key.
func seriesName(key string) string { return labelOf(key, pmodel.MetricNameLabel) }

// countByName counts the series of m by name.
func countByName(m map[string][]rawSample) map[string]int {
	out := map[string]int{}
	for k := range m {
		out[seriesName(k)]++
	}
	return out
}

// cadence returns the gaps longer than maxGap between the times ts (Unix
// ms, oldest first) of one series in [from, to], the edges included, as
// "from–to" strings, and the longest gap.
func cadence(ts []int64, from, to int64, maxGap time.Duration) (gaps []string, longest time.Duration) {
	prev, long := from, int64(0)
	var in []int64
	for _, x := range ts {
		if x >= from && x <= to {
			in = append(in, x)
		}
	}
	for _, x := range append(in, to) {
		gap := x - prev
		long = max(long, gap)
		if gap > maxGap.Milliseconds() {
			gaps = append(gaps, fmt.Sprintf("%s–%s", stamp(prev), stamp(x)))
		}
		prev = x
	}
	return gaps, time.Duration(long) * time.Millisecond
}

// nodeCadence checks every node-level series in kubemon's store (each
// node with ≥ 10 series) for a sample every maxGap in [from, to], and
// returns the number of series and samples checked and the longest gap.
func nodeCadence(t *testing.T, p *proc, nodes int, from, to int64, maxGap time.Duration) (series, samples int, longest time.Duration) {
	t.Helper()
	got := storeSamples(t, p, match("__name__=~", anyOf(model.LevelNode)), from-maxGap.Milliseconds(), to+maxGap.Milliseconds())
	per := map[string]int{}
	bad := 0
	for _, k := range slices.Sorted(maps.Keys(got)) {
		s := got[k]
		ts := make([]int64, len(s))
		for i := range s {
			ts[i] = s[i].T
		}
		gaps, long := cadence(ts, from, to, maxGap)
		longest = max(longest, long)
		if len(gaps) > 0 {
			if bad++; bad <= 5 {
				t.Errorf("%s: %d gaps longer than %v from %s to %s: %v", k, len(gaps), maxGap, stamp(from), stamp(to), gaps[:min(len(gaps), 4)])
			}
		}
		per[labelOf(k, model.LabelNode)]++
		series++
		samples += len(s)
	}
	if bad > 5 {
		t.Errorf("%d node series with gaps longer than %v in all", bad, maxGap)
	}
	if len(per) != nodes {
		t.Errorf("node series of %d nodes in [%s, %s], want %d", len(per), stamp(from), stamp(to), nodes)
	}
	for n, c := range per {
		if c < 10 {
			t.Errorf("node %s: %d series, want ≥ 10", n, c)
		}
	}
	return series, samples, longest
}

// influxPoints runs an InfluxQL query whose answer is rawSample points of one
// field (SELECT "value" ... GROUP BY *) and returns them by series.
func influxPoints(t *testing.T, idb *influxd.Server, q string) []influxSeries {
	t.Helper()
	var out []influxSeries
	for _, s := range idb.Query(t, heapsterDB, q) {
		ts, err := s.Times()
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		vs, err := s.Floats(hsField)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		is := influxSeries{Measurement: s.Name, Tags: s.Tags}
		for i := range ts {
			is.Points = append(is.Points, rawSample{ts[i], vs[i]})
		}
		out = append(out, is)
	}
	return out
}

// influxSeries is one InfluxDB series and its points.
type influxSeries struct {
	Measurement string
	Tags        map[string]string
	Points      []rawSample
}

// heapsterKey identifies a point's object in Heapster's schema: type and
// the object's names (not the labels tag, which is not identity).
func heapsterKey(measurement string, tags map[string]string) string {
	return fmt.Sprintf("%s %s=%s %s=%s %s=%s %s=%s %s=%s", measurement, hsType, tags[hsType], hsNamespace, tags[hsNamespace],
		hsPod, tags[hsPod], hsContainer, tags[hsContainer], hsNodename, tags[hsNodename])
}

// heapsterKeyOf is heapsterKey of the store series with rangeSeries key k;
// ok is false for a series the InfluxDB sink does not write (no Heapster
// name, info series, not kubemon's).
func heapsterKeyOf(k string) (key string, scale float64, ok bool) {
	l, m, ok := model.ParseSeriesName(seriesName(k))
	if !ok || m == model.Info || heapster(m) == "" {
		return "", 0, false
	}
	return heapsterKey(heapster(m), map[string]string{
		hsType:      l.Heapster(),
		hsNamespace: labelOf(k, model.LabelNamespace),
		hsPod:       labelOf(k, model.LabelPod),
		hsContainer: labelOf(k, model.LabelContainer),
		hsNodename:  labelOf(k, model.LabelNode),
	}), model.Metrics[m].HeapsterScale, true
}

// seriesKey is the key rangeSeries gives the series with labels ls.
func seriesKey(ls map[string]string) string {
	parts := make([]string, 0, len(ls))
	for k, v := range ls {
		parts = append(parts, fmt.Sprintf("%s=%q", k, v))
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ", ") + "}"
}
