package e2e

import (
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubemon/kubemon/internal/model"
)

// sigTruth is what /sim/truth says of one container (the fields this file
// compares).
type sigTruth struct {
	Node, Namespace, Pod, Container string
	RestartCount                    int32  `json:"restartCount"`
	State                           string `json:"state"`
	WaitingReason                   string `json:"waitingReason"`
	LastTerminationReason           string `json:"lastTerminationReason"`
	OOMKills                        int32  `json:"oomKills"`
	OOMEvents                       int32  `json:"oomEvents"`
	CFS                             *struct {
		Periods                   uint64  `json:"periods"`
		ThrottledPeriods          uint64  `json:"throttledPeriods"`
		ThrottledSeconds          float64 `json:"throttledSeconds"`
		ThrottledPeriodsPerSecond float64 `json:"throttledPeriodsPerSecond"`
	} `json:"cfs"`
}

type sigKey struct{ ns, pod, ctr string }

// sigTruths reads /sim/truth at Unix seconds, once per second asked.
type sigTruths struct {
	p     *proc
	cache map[int64]map[sigKey]sigTruth
}

func (s *sigTruths) at(t *testing.T, sec int64) map[sigKey]sigTruth {
	t.Helper()
	if m, ok := s.cache[sec]; ok {
		return m
	}
	var tr struct {
		Time       time.Time  `json:"time"`
		Containers []sigTruth `json:"containers"`
	}
	s.p.getJSON(t, "/sim/truth?time="+strconv.FormatInt(sec, 10), &tr)
	if tr.Time.Unix() != sec || len(tr.Containers) == 0 {
		t.Fatalf("/sim/truth?time=%d: at %v, %d containers", sec, tr.Time, len(tr.Containers))
	}
	m := map[sigKey]sigTruth{}
	for _, c := range tr.Containers {
		m[sigKey{c.Namespace, c.Pod, c.Container}] = c
	}
	s.cache[sec] = m
	return m
}

// sigSeries is one stored series' raw samples.
type sigSeries struct {
	labels map[string]string
	pts    []rawSample
}

// stored returns the raw samples of selector sel over the last window.
func stored(t *testing.T, p *proc, sel string, window time.Duration) []sigSeries {
	t.Helper()
	var r struct {
		Status string `json:"status"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	q := fmt.Sprintf("%s[%ds]", sel, int(window.Seconds()))
	p.getJSON(t, "/api/v1/query?query="+url.QueryEscape(q), &r)
	if r.Status != "success" || r.Data.ResultType != "matrix" {
		t.Fatalf("query %s: %+v", q, r)
	}
	var out []sigSeries
	for _, s := range r.Data.Result {
		ss := sigSeries{labels: s.Metric}
		for _, v := range s.Values {
			ts, _ := v[0].(float64)
			f, err := strconv.ParseFloat(v[1].(string), 64)
			if err != nil {
				t.Fatal(err)
			}
			ss.pts = append(ss.pts, rawSample{T: int64(math.Round(ts * 1000)), V: f})
		}
		out = append(out, ss)
	}
	sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i].labels) < fmt.Sprint(out[j].labels) })
	return out
}

func (s sigSeries) key() sigKey {
	return sigKey{s.labels[model.LabelNamespace], s.labels[model.LabelPod], s.labels[model.LabelContainer]}
}

// TestSignalsSimulated runs kubemon demo (constant mode, a 2 s interval, a
// sink whose destination is down, a store size limit) and injects the
// simulator's faults: a container OOM-killed, another with a process
// OOM-killed twice, one throttled, one crash looping, one node's kubelet
// down. Every stored sample of the signals' series equals the simulator's
// truth at the sample's time (/sim/truth?time=): OOM kills, restarts and
// crash loops of every container, the throttled container's CFS counters,
// and the rates and ratios of every two consecutive samples; the roll-ups
// follow; node_kubelet_up is 0 exactly while the kubelet was down; the
// dead sink's lag and the store's size and limit are stored.
func TestSignalsSimulated(t *testing.T) {
	const interval = 2 * time.Second
	p := startDemo(t, "--nodes", "2", "--pods-per-node", "6", "--sim-mode", "constant", "--interval", interval.String(),
		"--data-dir", filepath.Join(t.TempDir(), "data"), "--retention-size", "1GiB",
		"--sink", "remotewrite:http://127.0.0.1:1/api/v1/write?name=dead", "--default-rules=false")
	truths := &sigTruths{p: p, cache: map[int64]map[sigKey]sigTruth{}}
	began := time.Now()

	// Every container's OOM kill counter is there before anything happens.
	first := truths.at(t, time.Now().Unix())
	oomKills := name(model.LevelContainer, model.OOMKills)
	waitFor(t, 60*time.Second, "every container's "+oomKills, func() bool {
		return len(p.query(t, oomKills)) == len(first) && len(p.query(t, name(model.LevelContainer, model.CFSThrottledRatio))) > 0
	})

	// The containers: on the first node, distinct, the throttled one with a CPU limit.
	var nodes []string
	byNode := map[string][]sigTruth{}
	for _, c := range first {
		if byNode[c.Node] == nil {
			nodes = append(nodes, c.Node)
		}
		byNode[c.Node] = append(byNode[c.Node], c)
	}
	sort.Strings(nodes)
	if len(nodes) != 2 {
		t.Fatalf("%d nodes in the truth", len(nodes))
	}
	ctrs := byNode[nodes[0]]
	sort.Slice(ctrs, func(i, j int) bool {
		return ctrs[i].Pod+"/"+ctrs[i].Container < ctrs[j].Pod+"/"+ctrs[j].Container
	})
	var throttled, killed, oomProc, looping sigTruth
	for _, c := range ctrs {
		switch {
		case throttled.Pod == "" && c.CFS != nil:
			throttled = c
		case killed.Pod == "":
			killed = c
		case oomProc.Pod == "" && c.Pod != killed.Pod:
			oomProc = c
		case looping.Pod == "" && c.Pod != killed.Pod && c.Pod != oomProc.Pod:
			looping = c
		}
	}
	if throttled.Pod == "" || looping.Pod == "" {
		t.Fatalf("no throttleable container or too few pods on %s: %+v", nodes[0], ctrs)
	}
	fault := func(c sigTruth, f string) {
		p.post(t, "/sim/fault?"+url.Values{"pod": {c.Namespace + "/" + c.Pod}, "container": {c.Container}, "fault": {f}}.Encode())
	}
	t.Logf("OOM-killed %s/%s, a process of %s/%s OOM-killed twice, %s/%s throttled, %s/%s crash looping, %s down",
		killed.Pod, killed.Container, oomProc.Pod, oomProc.Container, throttled.Pod, throttled.Container, looping.Pod, looping.Container, nodes[1])

	t0 := time.Now()
	fault(killed, "oom")
	fault(oomProc, "oom-process")
	fault(throttled, "throttle")
	fault(looping, "crashloop")
	p.post(t, "/sim/fault?"+url.Values{"node": {nodes[1]}, "fault": {"down"}}.Encode())
	downAt := time.Now()
	time.Sleep(9 * time.Second)
	p.post(t, "/sim/fault?"+url.Values{"node": {nodes[1]}, "fault": {"none"}}.Encode())
	upAt := time.Now()
	time.Sleep(time.Until(t0.Add(25 * time.Second)))
	fault(oomProc, "oom-process")
	time.Sleep(time.Until(t0.Add(40 * time.Second)))
	fault(throttled, "none")
	throttleEnd := time.Now()
	time.Sleep(time.Until(t0.Add(50 * time.Second)))
	fault(looping, "none") // its next run, at about t0+76 s, keeps running
	time.Sleep(time.Until(t0.Add(85 * time.Second)))
	window := time.Since(began) + 10*time.Second

	// OOM kills, restarts and crash loops of every container: each sample
	// equals the truth at its time, or a second later (the pod status is
	// read just after the stats), or before (the simulator dates a fault
	// to the second it was set in, so the stats of that second read
	// before it do not have it).
	equalsTruth := func(what string, m model.MetricID, truthOf func(sigTruth) float64) (compared int, seen map[sigKey]float64) {
		seen = map[sigKey]float64{}
		for _, s := range stored(t, p, name(model.LevelContainer, m), window) {
			k := s.key()
			for _, pt := range s.pts {
				sec := pt.T / 1000
				a, okA := truths.at(t, sec)[k]
				b, okB := truths.at(t, min(sec+1, time.Now().Unix()))[k]
				before, okBefore := truths.at(t, sec-1)[k]
				if !okA || !okB || !okBefore {
					t.Errorf("%s %v at %d: not in the truth", what, k, sec)
					continue
				}
				if !(pt.V == truthOf(a) || pt.V == truthOf(b) || pt.V == truthOf(before)) {
					t.Errorf("%s of %v at %s: %v, the truth %v (a second later %v, before %v)", what, k, time.UnixMilli(pt.T).UTC().Format(time.TimeOnly),
						pt.V, truthOf(a), truthOf(b), truthOf(before))
				}
				compared++
				seen[k] = math.Max(seen[k], pt.V)
			}
		}
		if len(seen) != len(first) {
			t.Errorf("%s of %d containers stored, the truth has %d", what, len(seen), len(first))
		}
		return compared, seen
	}
	n, kills := equalsTruth("OOM kills", model.OOMKills, func(c sigTruth) float64 { return float64(c.OOMKills) })
	k := func(c sigTruth) sigKey { return sigKey{c.Namespace, c.Pod, c.Container} }
	if kills[k(killed)] != 1 || kills[k(oomProc)] != 2 || kills[k(looping)] != 0 {
		t.Errorf("OOM kills stored: the killed container %v, the one with processes killed %v, the crash-looping one %v; want 1, 2, 0",
			kills[k(killed)], kills[k(oomProc)], kills[k(looping)])
	}
	m, restarts := equalsTruth("restarts", model.Restarts, func(c sigTruth) float64 { return float64(c.RestartCount) })
	o, loops := equalsTruth("crash loop", model.CrashLoopBackOff, func(c sigTruth) float64 {
		if c.WaitingReason == "CrashLoopBackOff" {
			return 1
		}
		return 0
	})
	if loops[k(looping)] != 1 || restarts[k(looping)] < float64(first[k(looping)].RestartCount+3) || restarts[k(killed)] != float64(first[k(killed)].RestartCount+1) {
		t.Errorf("the crash-looping container: in CrashLoopBackOff %v, restarts %v (from %d); the killed one's restarts %v",
			loops[k(looping)], restarts[k(looping)], first[k(looping)].RestartCount, restarts[k(killed)])
	}
	t.Logf("%d samples of OOM kills, %d of restarts, %d of crash loops equal the truth", n, m, o)

	// The crash loop rolls up: the pod's value is its containers' at the
	// same time; the cluster had one container in CrashLoopBackOff and
	// has none now.
	podLoops := stored(t, p, sel(model.LevelPod, model.CrashLoopBackOff, model.LabelNamespace, looping.Namespace, model.LabelPod, looping.Pod), window)
	ctrLoops := stored(t, p, sel(model.LevelContainer, model.CrashLoopBackOff, model.LabelNamespace, looping.Namespace, model.LabelPod, looping.Pod), window)
	byTime := map[int64]float64{}
	for _, s := range ctrLoops {
		for _, pt := range s.pts {
			byTime[pt.T] += pt.V
		}
	}
	if len(podLoops) != 1 || len(podLoops[0].pts) < 10 {
		t.Fatalf("%s: %+v", name(model.LevelPod, model.CrashLoopBackOff), podLoops)
	}
	ones := 0
	for _, pt := range podLoops[0].pts {
		if want, ok := byTime[pt.T]; !ok || pt.V != want {
			t.Errorf("pod crash loop at %d: %v, its containers' sum %v (%v)", pt.T, pt.V, want, ok)
		}
		if pt.V == 1 {
			ones++
		}
	}
	if ones < 5 {
		t.Errorf("the pod in CrashLoopBackOff in %d samples", ones)
	}
	clusterLoops := name(model.LevelCluster, model.CrashLoopBackOff)
	if v := p.scalar(t, "max_over_time("+clusterLoops+"[5m])"); v != 1 {
		t.Errorf("max of %s: %v, want 1", clusterLoops, v)
	}
	if v := p.scalar(t, clusterLoops); v != 0 {
		t.Errorf("%s now: %v, want 0 (the crash loop ended)", clusterLoops, v)
	}
	// OOM kills roll up as rates.
	for _, l := range []model.Level{model.LevelPod, model.LevelNamespace, model.LevelNode, model.LevelCluster} {
		q := fmt.Sprintf("max(max_over_time(%s[5m]))", name(l, model.OOMKillsRate))
		if v := p.scalar(t, q); !(v > 0) {
			t.Errorf("%s: %v, want the kills' rate", q, v)
		}
	}

	// Throttling: the throttled container's CFS counters equal the truth
	// at each sample's time, and every rate and the ratio equal the
	// truth's change between two consecutive samples; while throttled
	// the ratio is 0.9. No other container is throttled (constant mode).
	cfsOf := func(m model.MetricID, c sigTruth) float64 {
		if c.CFS == nil {
			return math.NaN()
		}
		switch m {
		case model.CFSPeriods:
			return float64(c.CFS.Periods)
		case model.CFSThrottledPeriods:
			return float64(c.CFS.ThrottledPeriods)
		}
		return c.CFS.ThrottledSeconds
	}
	thrSel := func(m model.MetricID) string {
		return sel(model.LevelContainer, m, model.LabelNamespace, throttled.Namespace, model.LabelPod, throttled.Pod, model.LabelContainer, throttled.Container)
	}
	counters := map[model.MetricID][]rawSample{}
	for _, m := range []model.MetricID{model.CFSPeriods, model.CFSThrottledPeriods, model.CFSThrottledTime} {
		s := stored(t, p, thrSel(m), window)
		if len(s) != 1 || len(s[0].pts) < 20 {
			t.Fatalf("%s: %d series", thrSel(m), len(s))
		}
		counters[m] = s[0].pts
		for _, pt := range s[0].pts {
			if want := cfsOf(m, truths.at(t, pt.T/1000)[k(throttled)]); !(math.Abs(pt.V-want) <= 1e-9) {
				t.Errorf("%s at %d: %v, the truth %v", thrSel(m), pt.T, pt.V, want)
			}
		}
	}
	rates := map[model.MetricID]map[int64]float64{}
	for _, m := range []model.MetricID{model.CFSPeriodsRate, model.CFSThrottledPeriodsRate, model.CFSThrottledTimeRate, model.CFSThrottledRatio} {
		rates[m] = map[int64]float64{}
		for _, s := range stored(t, p, thrSel(m), window) {
			for _, pt := range s.pts {
				rates[m][pt.T] = pt.V
			}
		}
	}
	checked, full := 0, 0
	per, thr, secs := counters[model.CFSPeriods], counters[model.CFSThrottledPeriods], counters[model.CFSThrottledTime]
	for i := 1; i < len(per); i++ {
		prev, t1 := per[i-1].T, per[i].T
		if thr[i].T != t1 || secs[i].T != t1 {
			t.Fatalf("the CFS counters' samples are not at the same times: %d %d %d", t1, thr[i].T, secs[i].T)
		}
		dt := float64(t1-prev) / 1000
		want := map[model.MetricID]float64{
			model.CFSPeriodsRate:          (per[i].V - per[i-1].V) / dt,
			model.CFSThrottledPeriodsRate: (thr[i].V - thr[i-1].V) / dt,
			model.CFSThrottledTimeRate:    (secs[i].V - secs[i-1].V) / dt,
			model.CFSThrottledRatio:       (thr[i].V - thr[i-1].V) / (per[i].V - per[i-1].V),
		}
		for m, w := range want {
			if got, ok := rates[m][t1]; !ok || !(math.Abs(got-w) <= 1e-9*math.Max(1, math.Abs(w))) {
				t.Errorf("%s at %d: %v (%v), from the truth's counters %v", name(model.LevelContainer, m), t1, got, ok, w)
			}
		}
		checked++
	}
	for i := 1; i < len(per); i++ { // pairs wholly inside the fault: 9 of 10 periods throttled
		if per[i-1].T/1000 >= t0.Unix()+1 && per[i].T < throttleEnd.UnixMilli()-1000 {
			if r := rates[model.CFSThrottledRatio][per[i].T]; !(math.Abs(r-0.9) <= 1e-12) {
				t.Errorf("throttled ratio at %d during the fault: %v, want 0.9", per[i].T, r)
			}
			full++
		}
	}
	if checked < 20 || full < 8 {
		t.Errorf("%d pairs of samples checked, %d inside the fault", checked, full)
	}
	others := fmt.Sprintf("max(max_over_time(%s[%ds]))", sel(model.LevelContainer, model.CFSThrottledRatio,
		model.LabelContainer+"!=", throttled.Container, model.LabelPod+"!=", throttled.Pod), int(window.Seconds()))
	if r := p.query(t, others); len(r) != 1 || r[0].v(t) != 0 {
		t.Errorf("other containers throttled: %v", r)
	}
	levels := []model.Level{model.LevelPod, model.LevelNamespace, model.LevelNode, model.LevelCluster}
	if info := p.query(t, sel(model.LevelPod, model.Info, model.LabelNamespace, throttled.Namespace, model.LabelPod, throttled.Pod)); len(info) == 1 && info[0].Metric[model.LabelWorkload] != "" {
		levels = append(levels, model.LevelWorkload) // not a bare pod
	}
	for _, l := range levels {
		q := fmt.Sprintf("max(max_over_time(%s[%ds]))", name(l, model.CFSThrottledRatio), int(window.Seconds()))
		if v := p.scalar(t, q); !(v > 0 && v <= 0.9) {
			t.Errorf("%s: %v, want the throttled container's share", q, v)
		}
	}

	// node_kubelet_up: 0 exactly for the scrapes begun while the kubelet
	// was down, 1 for the others.
	up := stored(t, p, name(model.LevelNode, model.KubeletUp), window)
	if len(up) != 2 {
		t.Fatalf("%s: %d series", name(model.LevelNode, model.KubeletUp), len(up))
	}
	zeros := 0
	for _, s := range up {
		for _, pt := range s.pts {
			want := 1.0
			if s.labels[model.LabelNode] == nodes[1] && pt.T > downAt.UnixMilli() && pt.T < upAt.UnixMilli() {
				want = 0
			}
			slack := pt.T > downAt.UnixMilli()-200 && pt.T < downAt.UnixMilli()+200 || pt.T > upAt.UnixMilli()-200 && pt.T < upAt.UnixMilli()+200
			if pt.V != want && !slack {
				t.Errorf("%s of %s at %d: %v, want %v (down from %d to %d)", name(model.LevelNode, model.KubeletUp), s.labels[model.LabelNode], pt.T, pt.V, want, downAt.UnixMilli(), upAt.UnixMilli())
			}
			if pt.V == 0 {
				zeros++
			}
		}
		if n := len(s.pts); n < int(window/interval)/2 {
			t.Errorf("%s of %s: %d samples in %s", name(model.LevelNode, model.KubeletUp), s.labels[model.LabelNode], n, window)
		}
	}
	if zeros < 3 {
		t.Errorf("%d scrapes of the down kubelet stored as 0", zeros)
	}

	// kubemon's own: the dead sink falls behind second by second, as its
	// self-metric says; the store's size is under its limit.
	lag := stored(t, p, sel(model.LevelKubemon, model.SinkLag, model.LabelSink, "dead"), window)
	if len(lag) != 1 || len(lag[0].pts) < 20 {
		t.Fatalf("%s: %+v", name(model.LevelKubemon, model.SinkLag), lag)
	}
	// A new sink starts at the present less its settle time (about 63 s
	// here): it passes over the empty time before kubemon's first data,
	// then stays there.
	pts := lag[0].pts
	for i := 1; i < len(pts); i++ {
		d, dt := pts[i].V-pts[i-1].V, float64(pts[i].T-pts[i-1].T)/1000
		if i >= len(pts)-8 && !(math.Abs(d-dt) <= 0.05) || !(d >= -1) {
			t.Errorf("the dead sink's lag grew %v s in %v s (sample %d of %d)", d, dt, i, len(pts))
		}
	}
	last := pts[len(pts)-1]
	self := p.metric(t, `kubemon_sink_lag_seconds{sink="dead"}`)
	if want := last.V + time.Since(time.UnixMilli(last.T)).Seconds(); !(math.Abs(self-want) <= 1.5) {
		t.Errorf("stored lag %v at %d, the self-metric %v now: want it %v", last.V, last.T, self, want)
	}
	if last.V < 60 {
		t.Errorf("the dead sink's lag %v s, less than its settle time", last.V)
	}
	size := p.scalar(t, name(model.LevelKubemon, model.StoreSize))
	limit := p.scalar(t, name(model.LevelKubemon, model.StoreSizeLimit))
	if !(size > 0 && size < limit) || limit != 1<<30 {
		t.Errorf("store size %v, limit %v: want 0 < size < 1 GiB", size, limit)
	}
	if logs := p.Logs(); strings.Contains(logs, "storing kubemon's own series") {
		t.Errorf("kubemon's own series were not stored:\n%s", logs)
	}
}
