// Package heapster serves Heapster's model API (/api/v1/model/...) from the
// store: the lists of entities and metrics, and each metric's values over a
// time range, in Heapster's names and units.
package heapster

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/kubemon/kubemon/internal/model"
)

// Options configure the API.
type Options struct {
	Queryable storage.Queryable
	Logger    *slog.Logger
	// Window is the default time range when a request gives no start, and the
	// range in which entities are listed; default 15 minutes (Heapster's).
	Window time.Duration
	// MaxPoints bounds the points one answer may carry, a pod list's as a
	// whole (all its pods together); past it the answer is a 422 asking for
	// a narrower range or fewer pods. Default 50,000.
	MaxPoints int
	// MaxPodListNames bounds the distinct pod names of one pod-list request
	// (/namespaces/{ns}/pod-list/{a,b,...}/metrics/{metric}); past it the
	// answer is a 400. Default DefaultMaxPodListNames.
	MaxPodListNames int
	Now             func() time.Time
}

// DefaultMaxPodListNames is the default of Options.MaxPodListNames.
const DefaultMaxPodListNames = 100

// API is Heapster's model API over the store.
type API struct {
	o Options
}

// MetricPoint is one value in Heapster's model API.
type MetricPoint struct {
	Timestamp time.Time `json:"timestamp"`
	// Value is the value in Heapster's unit, rounded to a whole number.
	Value uint64 `json:"value"`
	// FloatValue is the exact value when it is not a whole number.
	FloatValue *float64 `json:"floatValue,omitempty"`
}

// MetricResult is a metric's values.
type MetricResult struct {
	Metrics         []MetricPoint `json:"metrics"`
	LatestTimestamp time.Time     `json:"latestTimestamp"`
}

// MetricResultList holds the values of a metric for several entities.
type MetricResultList struct {
	Items []MetricResult `json:"items"`
}

// New returns the API.
func New(o Options) *API {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Window <= 0 {
		o.Window = 15 * time.Minute
	}
	if o.MaxPoints <= 0 {
		o.MaxPoints = 50_000
	}
	if o.MaxPodListNames <= 0 {
		o.MaxPodListNames = DefaultMaxPodListNames
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &API{o: o}
}

// entity selects one object of a level, by label matchers.
type entity struct {
	level model.Level
	match []*labels.Matcher
}

func eq(name, value string) *labels.Matcher {
	return labels.MustNewMatcher(labels.MatchEqual, name, value)
}

// Register mounts the API under /api/v1/model/.
func (a *API) Register(mux *http.ServeMux) {
	const p = "GET /api/v1/model"
	cluster := func(*http.Request) entity { return entity{level: model.LevelCluster} }
	node := func(r *http.Request) entity {
		return entity{model.LevelNode, []*labels.Matcher{eq(model.LabelNode, r.PathValue("node"))}}
	}
	free := func(r *http.Request) entity {
		return entity{model.LevelSysContainer, []*labels.Matcher{eq(model.LabelNode, r.PathValue("node")), eq(model.LabelContainer, r.PathValue("container"))}}
	}
	ns := func(r *http.Request) entity {
		return entity{model.LevelNamespace, []*labels.Matcher{eq(model.LabelNamespace, r.PathValue("ns"))}}
	}
	pod := func(r *http.Request) entity {
		return entity{model.LevelPod, []*labels.Matcher{eq(model.LabelNamespace, r.PathValue("ns")), eq(model.LabelPod, r.PathValue("pod"))}}
	}
	ctr := func(r *http.Request) entity {
		return entity{model.LevelContainer, []*labels.Matcher{eq(model.LabelNamespace, r.PathValue("ns")), eq(model.LabelPod, r.PathValue("pod")), eq(model.LabelContainer, r.PathValue("container"))}}
	}
	for path, e := range map[string]func(*http.Request) entity{
		"":              cluster,
		"/nodes/{node}": node,
		"/nodes/{node}/freecontainers/{container}":           free,
		"/namespaces/{ns}":                                   ns,
		"/namespaces/{ns}/pods/{pod}":                        pod,
		"/namespaces/{ns}/pods/{pod}/containers/{container}": ctr,
	} {
		handle(mux, p+path+"/metrics", a.metricNames(e))
		mux.HandleFunc(p+path+"/metrics/{metric...}", a.metricValues(e))
	}
	nodeIs := func(r *http.Request) *labels.Matcher { return eq(model.LabelNode, r.PathValue("node")) }
	nsIs := func(r *http.Request) *labels.Matcher { return eq(model.LabelNamespace, r.PathValue("ns")) }
	podIs := func(r *http.Request) *labels.Matcher { return eq(model.LabelPod, r.PathValue("pod")) }
	handle(mux, p+"/nodes", a.list(model.LabelNode, model.LevelNode))
	handle(mux, p+"/namespaces", a.list(model.LabelNamespace, model.LevelNamespace))
	handle(mux, p+"/nodes/{node}/pods", a.list(model.LabelPod, model.LevelPod, nodeIs))
	handle(mux, p+"/nodes/{node}/freecontainers", a.list(model.LabelContainer, model.LevelSysContainer, nodeIs))
	handle(mux, p+"/namespaces/{ns}/pods", a.list(model.LabelPod, model.LevelPod, nsIs))
	handle(mux, p+"/namespaces/{ns}/pods/{pod}/containers", a.list(model.LabelContainer, model.LevelContainer, nsIs, podIs))
	mux.HandleFunc(p+"/namespaces/{ns}/pod-list/{pods}/metrics/{metric...}", a.podList)
}

// handle mounts a list at path, with and without the trailing slash
// (Heapster documented both spellings).
func handle(mux *http.ServeMux, path string, h http.HandlerFunc) {
	mux.HandleFunc(path+"/{$}", h)
	mux.HandleFunc(path, h)
}

// levelMatcher selects every series of a level by its name prefix.
func levelMatcher(l model.Level) *labels.Matcher {
	return labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, l.Prefix()+"_.+")
}

// list answers the names of the entities of a level, seen in the window.
func (a *API) list(label string, l model.Level, filters ...func(*http.Request) *labels.Matcher) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ms := []*labels.Matcher{levelMatcher(l)}
		for _, f := range filters {
			ms = append(ms, f(r))
		}
		vals, err := a.labelValues(r.Context(), label, ms)
		if err != nil {
			a.fail(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, vals)
	}
}

// metricNames answers the Heapster names of the metrics an entity has.
func (a *API) metricNames(e func(*http.Request) entity) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		en := e(r)
		names, err := a.labelValues(r.Context(), labels.MetricName, append([]*labels.Matcher{levelMatcher(en.level)}, en.match...))
		if err != nil {
			a.fail(w, http.StatusInternalServerError, err)
			return
		}
		out := []string{}
		for _, n := range names {
			if m, ok := byPromName(en.level, n); ok {
				out = append(out, m.Heapster)
			}
		}
		sort.Strings(out)
		writeJSON(w, out)
	}
}

func (a *API) metricValues(e func(*http.Request) entity) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		en := e(r)
		res, status, err := a.values(r, en, r.PathValue("metric"), a.o.MaxPoints)
		if err != nil {
			a.fail(w, status, err)
			return
		}
		writeJSON(w, res)
	}
}

// podList answers a metric for several pods of a namespace, one item per
// distinct name in the order first asked (a name repeated is answered
// once). At most MaxPodListNames distinct names are accepted, and the
// items together carry at most MaxPoints points.
func (a *API) podList(w http.ResponseWriter, r *http.Request) {
	var names []string
	seen := map[string]bool{}
	for name := range strings.SplitSeq(r.PathValue("pods"), ",") {
		if seen[name] {
			continue
		}
		if len(names) == a.o.MaxPodListNames {
			a.fail(w, http.StatusBadRequest, fmt.Errorf("pod list: more than %d distinct pod names: ask in several requests", a.o.MaxPodListNames))
			return
		}
		seen[name] = true
		names = append(names, name)
	}
	out := MetricResultList{Items: make([]MetricResult, 0, len(names))}
	budget := a.o.MaxPoints
	for _, name := range names {
		en := entity{model.LevelPod, []*labels.Matcher{eq(model.LabelNamespace, r.PathValue("ns")), eq(model.LabelPod, name)}}
		res, status, err := a.values(r, en, r.PathValue("metric"), budget)
		if status == http.StatusUnprocessableEntity {
			err = fmt.Errorf("pod list: more than %d points in all: ask for fewer pods or narrow start/end", a.o.MaxPoints)
		}
		if err != nil {
			a.fail(w, status, err)
			return
		}
		budget -= len(res.Metrics)
		out.Items = append(out.Items, res)
	}
	writeJSON(w, out)
}

// values answers one entity's metric over the request's time range, in at
// most maxPoints points (past them, a 422).
func (a *API) values(r *http.Request, en entity, metric string, maxPoints int) (MetricResult, int, error) {
	res := MetricResult{Metrics: []MetricPoint{}}
	m, ok := model.ByHeapster(metric)
	if !ok || !m.Levels.Has(en.level) {
		return res, http.StatusNotFound, fmt.Errorf("unknown metric %q for %s", metric, en.level.Heapster())
	}
	start, end, err := a.timeRange(r)
	if err != nil {
		return res, http.StatusBadRequest, err
	}
	q, err := a.o.Queryable.Querier(start.UnixMilli(), end.UnixMilli())
	if err != nil {
		return res, http.StatusInternalServerError, err
	}
	defer q.Close()
	ms := append([]*labels.Matcher{eq(labels.MetricName, model.PromName(en.level, m.ID))}, en.match...)
	set := q.Select(r.Context(), false, nil, ms...)
	for set.Next() {
		it := set.At().Iterator(nil)
		for it.Next() != 0 {
			t, v := it.At()
			if math.IsNaN(v) {
				continue
			}
			if len(res.Metrics) >= maxPoints {
				return res, http.StatusUnprocessableEntity, fmt.Errorf("more than %d points: narrow start/end", maxPoints)
			}
			res.Metrics = append(res.Metrics, point(t, v*m.HeapsterScale))
		}
		if err := it.Err(); err != nil {
			return res, http.StatusInternalServerError, err
		}
	}
	if err := set.Err(); err != nil {
		return res, http.StatusInternalServerError, err
	}
	sort.SliceStable(res.Metrics, func(i, j int) bool { return res.Metrics[i].Timestamp.Before(res.Metrics[j].Timestamp) })
	if n := len(res.Metrics); n > 0 {
		res.LatestTimestamp = res.Metrics[n-1].Timestamp
	}
	return res, http.StatusOK, nil
}

func point(t int64, v float64) MetricPoint {
	p := MetricPoint{Timestamp: time.UnixMilli(t).UTC()}
	if v > 0 {
		p.Value = uint64(math.Round(v))
	}
	if v != math.Trunc(v) {
		p.FloatValue = &v
	}
	return p
}

// timeRange reads start and end (RFC 3339). end defaults to now, start to
// end minus the window.
func (a *API) timeRange(r *http.Request) (start, end time.Time, err error) {
	end = a.o.Now()
	if s := r.URL.Query().Get("end"); s != "" {
		if end, err = time.Parse(time.RFC3339, s); err != nil {
			return start, end, fmt.Errorf("bad end %q: want RFC 3339, e.g. 2026-01-02T15:04:05Z", s)
		}
	}
	start = end.Add(-a.o.Window)
	if s := r.URL.Query().Get("start"); s != "" {
		if start, err = time.Parse(time.RFC3339, s); err != nil {
			return start, end, fmt.Errorf("bad start %q: want RFC 3339, e.g. 2026-01-02T15:04:05Z", s)
		}
	}
	if end.Before(start) {
		return start, end, fmt.Errorf("end %s is before start %s", end.Format(time.RFC3339), start.Format(time.RFC3339))
	}
	return start, end, nil
}

func (a *API) labelValues(ctx context.Context, name string, ms []*labels.Matcher) ([]string, error) {
	now := a.o.Now()
	q, err := a.o.Queryable.Querier(now.Add(-a.o.Window).UnixMilli(), now.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer q.Close()
	vals, _, err := q.LabelValues(ctx, name, nil, ms...)
	if vals == nil {
		vals = []string{}
	}
	return vals, err
}

var promNames = func() map[string]model.Metric {
	m := map[string]model.Metric{}
	for l := model.Level(0); l < model.NumLevels; l++ {
		for _, mt := range model.Metrics {
			if mt.Levels.Has(l) {
				m[model.PromName(l, mt.ID)] = mt
			}
		}
	}
	return m
}()

func byPromName(l model.Level, name string) (model.Metric, bool) {
	if !strings.HasPrefix(name, l.Prefix()+"_") {
		return model.Metric{}, false
	}
	m, ok := promNames[name]
	return m, ok
}

func (a *API) fail(w http.ResponseWriter, status int, err error) {
	if status >= 500 {
		a.o.Logger.Error("model API", "err", err)
	}
	http.Error(w, err.Error(), status)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
