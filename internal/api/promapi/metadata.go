package promapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/timestamp"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"

	kmodel "github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/version"
)

// checkContextEvery is how many series the series endpoint reads between
// context checks.
const checkContextEvery = 128

// metadataContext bounds a series/label lookup by Options.QueryTimeout.
func (a *API) metadataContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), a.queryTimeout)
}

// series serves /api/v1/series.
func (a *API) series(r *http.Request) apiResult {
	if len(r.Form["match[]"]) == 0 {
		return errResult(badData(errors.New("no match[] parameter provided")))
	}
	limit, start, end, matcherSets, apiErr := a.lookupParams(r)
	if apiErr != nil {
		return errResult(apiErr)
	}

	ctx, cancel := a.metadataContext(r)
	defer cancel()

	q, err := a.queryable.Querier(timestamp.FromTime(start), timestamp.FromTime(end))
	if err != nil {
		return errResult(classifyError(err))
	}
	defer q.Close()

	hints := &storage.SelectHints{
		Start: timestamp.FromTime(start),
		End:   timestamp.FromTime(end),
		Func:  "series", // Lookups that need no samples.
	}
	// Always select sorted series: the response is sorted, and sorted sets
	// are what the merge needs to de-duplicate several match[] selectors.
	var set storage.SeriesSet
	if len(matcherSets) > 1 {
		sets := make([]storage.SeriesSet, 0, len(matcherSets))
		for _, ms := range matcherSets {
			sets = append(sets, q.Select(ctx, true, hints, ms...))
		}
		set = storage.NewMergeSeriesSet(sets, 0, storage.ChainedSeriesMerge)
	} else {
		set = q.Select(ctx, true, hints, matcherSets[0]...)
	}

	var (
		warnings annotations.Annotations
		metrics  []labels.Labels
	)
	for i := 1; set.Next(); i++ {
		if i%checkContextEvery == 0 {
			if err := ctx.Err(); err != nil {
				return errResult(classifyError(err))
			}
		}
		if limit > 0 && len(metrics) >= limit {
			warnings.Add(errTruncated)
			break
		}
		metrics = append(metrics, set.At().Labels())
	}
	if err := set.Err(); err != nil {
		return errResult(classifyError(err))
	}
	warnings.Merge(set.Warnings())
	return apiResult{data: appendLabelsList(nil, metrics), warnings: warnings}
}

// labelRequest reads the parameters the label endpoints share (limit,
// start, end, match[]) and runs lookup with them.
func (a *API) labelRequest(r *http.Request, lookup func(storage.Querier, *storage.LabelHints, []*labels.Matcher) ([]string, annotations.Annotations, error)) apiResult {
	limit, start, end, matcherSets, apiErr := a.lookupParams(r)
	if apiErr != nil {
		return errResult(apiErr)
	}
	return a.labelLookup(start, end, limit, matcherSets, lookup)
}

// lookupParams reads the parameters of the series and label endpoints:
// limit, start, end and match[].
func (a *API) lookupParams(r *http.Request) (limit int, start, end time.Time, matcherSets [][]*labels.Matcher, apiErr *apiError) {
	if limit, apiErr = parseLimit(r); apiErr != nil {
		return
	}
	if start, end, apiErr = parseTimeRange(r); apiErr != nil {
		return
	}
	matcherSets, apiErr = a.parseMatchers(r)
	return
}

// labelNames serves /api/v1/labels.
func (a *API) labelNames(r *http.Request) apiResult {
	ctx, cancel := a.metadataContext(r)
	defer cancel()
	return a.labelRequest(r, func(q storage.Querier, hints *storage.LabelHints, ms []*labels.Matcher) ([]string, annotations.Annotations, error) {
		return q.LabelNames(ctx, hints, ms...)
	})
}

// labelValues serves /api/v1/label/{name}/values.
func (a *API) labelValues(r *http.Request) apiResult {
	name := r.PathValue("name")
	if strings.HasPrefix(name, "U__") {
		name = model.UnescapeName(name, model.ValueEncodingEscaping)
	}
	if !model.UTF8Validation.IsValidLabelName(name) {
		return errResult(badData(fmt.Errorf("invalid label name: %q", name)))
	}
	ctx, cancel := a.metadataContext(r)
	defer cancel()
	return a.labelRequest(r, func(q storage.Querier, hints *storage.LabelHints, ms []*labels.Matcher) ([]string, annotations.Annotations, error) {
		return q.LabelValues(ctx, name, hints, ms...)
	})
}

type labelLookupFunc func(storage.Querier, *storage.LabelHints, []*labels.Matcher) ([]string, annotations.Annotations, error)

// labelLookup runs lookup once per matcher set (or once without matchers)
// and returns the sorted, de-duplicated union, truncated to limit.
func (a *API) labelLookup(start, end time.Time, limit int, matcherSets [][]*labels.Matcher, lookup labelLookupFunc) apiResult {
	q, err := a.queryable.Querier(timestamp.FromTime(start), timestamp.FromTime(end))
	if err != nil {
		return errResult(classifyError(err))
	}
	defer q.Close()

	// No limit hint: a storage-side limit would return an arbitrary subset,
	// while the API returns the first values in sorted order.
	hints := &storage.LabelHints{}
	if len(matcherSets) == 0 {
		matcherSets = [][]*labels.Matcher{nil}
	}
	var (
		warnings annotations.Annotations
		result   []string
	)
	for _, ms := range matcherSets {
		vals, ws, err := lookup(q, hints, ms)
		warnings.Merge(ws)
		if err != nil {
			return apiResult{err: classifyError(err), warnings: warnings}
		}
		result = append(result, vals...)
	}
	slices.Sort(result)
	result = slices.Compact(result)
	if limit > 0 && len(result) > limit {
		result = result[:limit]
		warnings.Add(errTruncated)
	}
	return apiResult{data: appendStrings(nil, result), warnings: warnings}
}

// metricMetadata is one entry of /api/v1/metadata's answer.
type metricMetadata struct {
	Type string `json:"type"`
	Help string `json:"help"`
	Unit string `json:"unit"`
}

// seriesMetadata is the metadata of every series name kubemon writes, from
// the metric table, and seriesMetadataNames its names sorted.
var seriesMetadata, seriesMetadataNames = func() (map[string][]metricMetadata, []string) {
	m := map[string][]metricMetadata{}
	var names []string
	for _, s := range kmodel.AllSeries() {
		m[s.Name] = []metricMetadata{{Type: s.Metric.Kind.String(), Help: s.Metric.Help, Unit: s.Metric.Unit}}
		names = append(names, s.Name)
	}
	slices.Sort(names)
	return m, names
}()

// metadata serves /api/v1/metadata from the metric table: type, help and
// unit of every series name kubemon writes, as Prometheus answers it. The
// metric parameter picks one name; limit bounds the number of names (the
// first in name order; negative or absent: no bound, 0: none, as in
// Prometheus); limit_per_metric is accepted, every name having a single
// entry.
func (a *API) metadata(r *http.Request) apiResult {
	limit := -1
	for _, p := range []string{"limit", "limit_per_metric"} {
		v := r.FormValue(p)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return errResult(invalidParam(p, fmt.Errorf("cannot parse %q to a valid limit", v)))
		}
		if p == "limit" {
			limit = n
		}
	}
	out := map[string][]metricMetadata{}
	for _, name := range seriesMetadataNames {
		if limit >= 0 && len(out) >= limit {
			break
		}
		if m := r.FormValue("metric"); m == "" || m == name {
			out[name] = seriesMetadata[name]
		}
	}
	data, err := json.Marshal(out)
	if err != nil {
		return errResult(&apiError{errorInternal, err})
	}
	return apiResult{data: data}
}

// buildInfo is the data of /api/v1/status/buildinfo.
type buildInfo struct {
	Version   string `json:"version"`
	Revision  string `json:"revision"`
	Branch    string `json:"branch"`
	BuildUser string `json:"buildUser"`
	BuildDate string `json:"buildDate"`
	GoVersion string `json:"goVersion"`
}

// buildInfo serves /api/v1/status/buildinfo (needed by Grafana's data
// source health check): kubemon's version, revision and Go version. Branch,
// build user and build date are not recorded and stay empty.
func (a *API) buildInfo(*http.Request) apiResult {
	data, err := json.Marshal(buildInfo{Version: version.Version, Revision: version.Revision, GoVersion: version.GoVersion})
	if err != nil {
		return errResult(&apiError{errorInternal, err})
	}
	return apiResult{data: data}
}
