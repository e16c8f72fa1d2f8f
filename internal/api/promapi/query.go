package promapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/prometheus/promql"
)

var errTruncated = errors.New("results truncated due to limit")

// queryParam returns the mandatory, non-blank query parameter.
func queryParam(r *http.Request) (string, *apiError) {
	qs := r.FormValue("query")
	if strings.TrimSpace(qs) == "" {
		return "", invalidParam("query", errors.New("query must not be empty"))
	}
	return qs, nil
}

// queryOpts builds the per-query engine options from the optional
// lookback_delta parameter (0 means the engine's default).
func queryOpts(r *http.Request) (promql.QueryOpts, *apiError) {
	var lookback time.Duration
	if v := r.FormValue("lookback_delta"); v != "" {
		d, err := parseDuration(v)
		if err != nil {
			return nil, invalidParam("lookback_delta", err)
		}
		if d < 0 {
			return nil, invalidParam("lookback_delta", fmt.Errorf("lookback delta must not be negative, got %s", v))
		}
		lookback = d
	}
	return promql.NewPrometheusQueryOpts(false, lookback, nil), nil
}

// withQueryTimeout derives the execution context of a query from ctx (the
// request's): bounded by the optional timeout parameter, as Prometheus
// does; the engine bounds it further by Options.QueryTimeout, so the
// parameter can shorten the configured timeout but not extend it.
func withQueryTimeout(ctx context.Context, r *http.Request) (context.Context, context.CancelFunc, *apiError) {
	timeout, apiErr := parseTimeout(r)
	if apiErr != nil {
		return nil, nil, apiErr
	}
	if timeout > 0 {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		return ctx, cancel, nil
	}
	return ctx, func() {}, nil
}

// constructionError maps an error returned while building a query: running
// out of time or being canceled keeps its type, anything else is a bad
// query.
func constructionError(err error) *apiError {
	if e := classifyError(err); e.typ == errorTimeout || e.typ == errorCanceled {
		return e
	}
	return invalidParam("query", err)
}

// query serves /api/v1/query.
func (a *API) query(r *http.Request) apiResult {
	qs, apiErr := queryParam(r)
	if apiErr != nil {
		return errResult(apiErr)
	}
	limit, apiErr := parseLimit(r)
	if apiErr != nil {
		return errResult(apiErr)
	}
	ts, apiErr := parseTimeParam(r, "time", a.now())
	if apiErr != nil {
		return errResult(apiErr)
	}
	return a.run(r, qs, limit, func(ctx context.Context, opts promql.QueryOpts) (promql.Query, error) {
		return a.engine.NewInstantQuery(ctx, a.queryable, opts, qs, ts)
	})
}

// queryRange serves /api/v1/query_range.
func (a *API) queryRange(r *http.Request) apiResult {
	qs, apiErr := queryParam(r)
	if apiErr != nil {
		return errResult(apiErr)
	}
	limit, apiErr := parseLimit(r)
	if apiErr != nil {
		return errResult(apiErr)
	}
	start, err := parseTime(r.FormValue("start"))
	if err != nil {
		return errResult(invalidParam("start", err))
	}
	end, err := parseTime(r.FormValue("end"))
	if err != nil {
		return errResult(invalidParam("end", err))
	}
	if end.Before(start) {
		return errResult(invalidParam("end", errors.New("end timestamp must not be before start time")))
	}
	step, err := parseDuration(r.FormValue("step"))
	if err != nil {
		return errResult(invalidParam("step", err))
	}
	if step <= 0 {
		return errResult(invalidParam("step", errors.New("zero or negative query resolution step widths are not accepted. Try a positive integer")))
	}
	// Limit the number of returned points per series, like Prometheus.
	if end.Sub(start)/step > time.Duration(a.maxPoints) {
		return errResult(badData(fmt.Errorf("exceeded maximum resolution of %s points per timeseries. Try decreasing the query resolution (?step=XX)", formatThousands(a.maxPoints))))
	}
	return a.run(r, qs, limit, func(ctx context.Context, opts promql.QueryOpts) (promql.Query, error) {
		return a.engine.NewRangeQuery(ctx, a.queryable, opts, qs, start, end, step)
	})
}

// run reads the options and timeout both query endpoints share, builds the
// query with newQuery and executes it.
func (a *API) run(r *http.Request, qs string, limit int, newQuery func(context.Context, promql.QueryOpts) (promql.Query, error)) apiResult {
	opts, apiErr := queryOpts(r)
	if apiErr != nil {
		return errResult(apiErr)
	}
	ctx, done, ok := a.begin(r.Context())
	if !ok {
		return errResult(&apiError{errorUnavailable, errors.New("the query engine is shut down")})
	}
	defer done()
	ctx, cancel, apiErr := withQueryTimeout(ctx, r)
	if apiErr != nil {
		return errResult(apiErr)
	}
	defer cancel()

	qry, err := newQuery(ctx, opts)
	if err != nil {
		return errResult(constructionError(err))
	}
	defer qry.Close()
	return a.execQuery(ctx, qry, qs, limit)
}

// execQuery runs qry and encodes its result before the caller closes it.
func (a *API) execQuery(ctx context.Context, qry promql.Query, qs string, limit int) apiResult {
	res := qry.Exec(ctx)
	if res.Err != nil {
		return apiResult{err: classifyError(res.Err), warnings: res.Warnings, query: qs}
	}
	warnings := res.Warnings
	if limit > 0 {
		switch v := res.Value.(type) {
		case promql.Vector:
			if len(v) > limit {
				res.Value = v[:limit]
				warnings.Add(errTruncated)
			}
		case promql.Matrix:
			if len(v) > limit {
				res.Value = v[:limit]
				warnings.Add(errTruncated)
			}
		}
	}
	data, err := appendQueryData(nil, res.Value)
	if err != nil {
		return errResult(&apiError{errorInternal, err})
	}
	return apiResult{data: data, warnings: warnings, query: qs}
}

// queryExemplars serves /api/v1/query_exemplars. kubemon stores no
// exemplars, so after validating the parameters the result is always empty.
func (a *API) queryExemplars(r *http.Request) apiResult {
	if _, _, apiErr := parseTimeRange(r); apiErr != nil {
		return errResult(apiErr)
	}
	qs, apiErr := queryParam(r)
	if apiErr != nil {
		return errResult(apiErr)
	}
	if _, err := a.parser.ParseExpr(qs); err != nil {
		return errResult(invalidParam("query", err))
	}
	return apiResult{data: []byte("[]")}
}
