// Package promapi serves a compact, Prometheus-compatible HTTP query API
// (the subset of /api/v1 that Grafana's Prometheus data source needs) on top
// of any storage.Queryable, typically kubemon's embedded *tsdb.DB.
//
// The implementation deliberately does not import
// github.com/prometheus/prometheus/web/api/v1, which pulls in the cloud SDKs
// of the service-discovery packages; it drives the PromQL engine and the
// storage interfaces directly and reproduces Prometheus's wire format,
// parameter parsing, error types and HTTP status codes.
package promapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
)

// Defaults applied by New for zero-valued Options fields.
const (
	DefaultLookbackDelta = 5 * time.Minute
	DefaultQueryTimeout  = 2 * time.Minute
	DefaultMaxSamples    = 50_000_000
	DefaultMaxPoints     = 11_000

	// defaultSubqueryStep is the step of subqueries written without one
	// (`expr[30m:]`); Prometheus uses the global evaluation interval, whose
	// default is one minute.
	defaultSubqueryStep = time.Minute

	// statusClientClosedConnection is the non-standard status code Prometheus
	// uses for canceled queries.
	statusClientClosedConnection = 499
)

// Options configures the API.
type Options struct {
	// Queryable is the storage queried by every endpoint. Required; a
	// *tsdb.DB works.
	Queryable storage.Queryable
	// Logger defaults to a logger that discards everything.
	Logger *slog.Logger
	// Registerer, if set, receives request counters and durations by
	// endpoint and status code (namespace "kubemon", subsystem "promapi").
	Registerer prometheus.Registerer
	// LookbackDelta is the staleness lookback of instant vector selectors.
	// Default 5m.
	LookbackDelta time.Duration
	// QueryTimeout bounds every query (and series/label lookups). Default 2m.
	QueryTimeout time.Duration
	// MaxSamples is the maximum number of samples a single query may load
	// into memory. Default 50,000,000.
	MaxSamples int
	// MaxPoints is the maximum number of points per series a query_range
	// request may ask for. Default 11,000.
	MaxPoints int
	// Now returns the current time, used as the default evaluation time of
	// instant queries. Default time.Now.
	Now func() time.Time
}

// API serves the Prometheus HTTP API v1 subset. Create it with New.
type API struct {
	queryable     storage.Queryable
	logger        *slog.Logger
	engine        *promql.Engine
	parser        parser.Parser
	lookbackDelta time.Duration
	queryTimeout  time.Duration
	maxPoints     int
	now           func() time.Time

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// New validates o, applies defaults and creates the PromQL engine.
func New(o Options) (*API, error) {
	if o.Queryable == nil {
		return nil, errors.New("promapi: Options.Queryable is required")
	}
	if o.LookbackDelta < 0 || o.QueryTimeout < 0 || o.MaxSamples < 0 || o.MaxPoints < 0 {
		return nil, errors.New("promapi: LookbackDelta, QueryTimeout, MaxSamples and MaxPoints must not be negative")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.LookbackDelta == 0 {
		o.LookbackDelta = DefaultLookbackDelta
	}
	if o.QueryTimeout == 0 {
		o.QueryTimeout = DefaultQueryTimeout
	}
	if o.MaxSamples == 0 {
		o.MaxSamples = DefaultMaxSamples
	}
	if o.MaxPoints == 0 {
		o.MaxPoints = DefaultMaxPoints
	}
	if o.Now == nil {
		o.Now = time.Now
	}

	a := &API{
		queryable:     o.Queryable,
		logger:        o.Logger,
		parser:        parser.NewParser(parser.Options{}),
		lookbackDelta: o.LookbackDelta,
		queryTimeout:  o.QueryTimeout,
		maxPoints:     o.MaxPoints,
		now:           o.Now,
	}

	if o.Registerer != nil {
		requests, err := registerOrExisting(o.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kubemon",
			Subsystem: "promapi",
			Name:      "requests_total",
			Help:      "Number of Prometheus API requests by endpoint and HTTP status code.",
		}, []string{"endpoint", "code"}))
		if err != nil {
			return nil, fmt.Errorf("promapi: registering metrics: %w", err)
		}
		duration, err := registerOrExisting(o.Registerer, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "kubemon",
			Subsystem: "promapi",
			Name:      "request_duration_seconds",
			Help:      "Duration of Prometheus API requests by endpoint and HTTP status code.",
			Buckets:   []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"endpoint", "code"}))
		if err != nil {
			return nil, fmt.Errorf("promapi: registering metrics: %w", err)
		}
		a.requests, a.duration = requests, duration
	}

	a.engine = promql.NewEngine(promql.EngineOpts{
		Logger:               o.Logger.With("component", "promql"),
		MaxSamples:           o.MaxSamples,
		Timeout:              o.QueryTimeout,
		LookbackDelta:        o.LookbackDelta,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
		NoStepSubqueryIntervalFn: func(int64) int64 {
			return defaultSubqueryStep.Milliseconds()
		},
		Parser: a.parser,
	})
	return a, nil
}

// registerOrExisting registers c, or returns the identical collector that is
// already registered (so that several APIs may share one registry).
func registerOrExisting[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

// Close closes the engine's active query tracker, if any.
func (a *API) Close() error {
	return a.engine.Close()
}

// Register mounts the endpoints under /api/v1/ on mux. Every endpoint
// accepts GET (and HEAD) with URL parameters and POST with an
// application/x-www-form-urlencoded body.
func (a *API) Register(mux *http.ServeMux) {
	mux.Handle("/api/v1/query", a.handler("query", a.query))
	mux.Handle("/api/v1/query_range", a.handler("query_range", a.queryRange))
	mux.Handle("/api/v1/query_exemplars", a.handler("query_exemplars", a.queryExemplars))
	mux.Handle("/api/v1/series", a.handler("series", a.series))
	mux.Handle("/api/v1/labels", a.handler("labels", a.labelNames))
	mux.Handle("/api/v1/label/{name}/values", a.handler("label_values", a.labelValues))
	mux.Handle("/api/v1/metadata", a.handler("metadata", a.metadata))
	mux.Handle("/api/v1/status/buildinfo", a.handler("buildinfo", a.buildInfo))
}

// errorType is the "errorType" of an error response.
type errorType string

const (
	errorBadData  errorType = "bad_data"
	errorExec     errorType = "execution"
	errorTimeout  errorType = "timeout"
	errorCanceled errorType = "canceled"
	errorInternal errorType = "internal"
)

func (t errorType) statusCode() int {
	switch t {
	case errorBadData:
		return http.StatusBadRequest
	case errorExec:
		return http.StatusUnprocessableEntity
	case errorTimeout:
		return http.StatusServiceUnavailable
	case errorCanceled:
		return statusClientClosedConnection
	default:
		return http.StatusInternalServerError
	}
}

type apiError struct {
	typ errorType
	err error
}

func badData(err error) *apiError { return &apiError{errorBadData, err} }

func invalidParam(param string, err error) *apiError {
	return badData(fmt.Errorf("invalid parameter %q: %w", param, err))
}

// classifyError maps an error from the engine or the storage to an API
// error the same way Prometheus does.
func classifyError(err error) *apiError {
	if _, ok := errors.AsType[promql.ErrQueryCanceled](err); ok {
		return &apiError{errorCanceled, err}
	}
	if _, ok := errors.AsType[promql.ErrQueryTimeout](err); ok {
		return &apiError{errorTimeout, err}
	}
	if _, ok := errors.AsType[promql.ErrStorage](err); ok {
		return &apiError{errorInternal, err}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return &apiError{errorCanceled, err}
	case errors.Is(err, context.DeadlineExceeded):
		return &apiError{errorTimeout, err}
	}
	return &apiError{errorExec, err}
}

// apiResult is what an endpoint produces: the already-encoded "data" member
// (encoded inside the endpoint so that query results can be released
// afterwards), warnings and infos, or an error.
type apiResult struct {
	data     []byte
	warnings annotations.Annotations
	query    string // for positions in annotations
	err      *apiError
}

func errResult(e *apiError) apiResult { return apiResult{err: e} }

type endpointFunc func(r *http.Request) apiResult

func (a *API) handler(name string, f endpointFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		begin := time.Now()
		code := a.serve(w, r, f)
		if a.requests != nil {
			c := strconv.Itoa(code)
			a.requests.WithLabelValues(name, c).Inc()
			a.duration.WithLabelValues(name, c).Observe(time.Since(begin).Seconds())
		}
	})
}

// serve runs f and writes the response envelope. It returns the status code.
func (a *API) serve(w http.ResponseWriter, r *http.Request, f endpointFunc) int {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		return a.writeError(w, http.StatusMethodNotAllowed,
			&apiError{errorBadData, fmt.Errorf("method %s not allowed", r.Method)})
	}
	if err := r.ParseForm(); err != nil {
		return a.writeError(w, 0, badData(fmt.Errorf("error parsing form values: %w", err)))
	}
	res := f(r)
	if res.err != nil {
		switch res.err.typ {
		case errorBadData:
		case errorInternal:
			a.logger.Warn("API request failed", "path", r.URL.Path, "errorType", string(res.err.typ), "err", res.err.err)
		default:
			a.logger.Debug("API request failed", "path", r.URL.Path, "errorType", string(res.err.typ), "err", res.err.err)
		}
		return a.writeError(w, 0, res.err)
	}

	warnings, infos := res.warnings.AsStrings(res.query, 10, 10)
	buf := make([]byte, 0, len(res.data)+64)
	buf = append(buf, `{"status":"success","data":`...)
	buf = append(buf, res.data...)
	buf = appendStringList(buf, "warnings", warnings)
	buf = appendStringList(buf, "infos", infos)
	buf = append(buf, '}')

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(buf); err != nil {
		a.logger.Debug("error writing API response", "path", r.URL.Path, "err", err)
	}
	return http.StatusOK
}

func appendStringList(buf []byte, field string, list []string) []byte {
	if len(list) == 0 {
		return buf
	}
	buf = append(buf, ',')
	buf = appendString(buf, field)
	buf = append(buf, ":["...)
	for i, s := range list {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendString(buf, s)
	}
	return append(buf, ']')
}

// writeError writes an error envelope. code 0 means "derive from the error
// type".
func (a *API) writeError(w http.ResponseWriter, code int, e *apiError) int {
	if code == 0 {
		code = e.typ.statusCode()
	}
	buf := append([]byte(nil), `{"status":"error","errorType":`...)
	buf = appendString(buf, string(e.typ))
	buf = append(buf, `,"error":`...)
	buf = appendString(buf, e.err.Error())
	buf = append(buf, '}')

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if _, err := w.Write(buf); err != nil {
		a.logger.Debug("error writing API error response", "err", err)
	}
	return code
}
