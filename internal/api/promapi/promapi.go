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
	"sync"
	"sync/atomic"
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
	// DefaultMaxConcurrency is Prometheus's --query.max-concurrency default.
	DefaultMaxConcurrency = 20

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
	// QueryTimeout bounds every PromQL query, the time spent waiting for a
	// slot (MaxConcurrency) included, as Prometheus's --query.timeout: past
	// it the answer is a 503 of type "timeout". A request's own timeout
	// parameter can only shorten it. It also bounds series and label
	// lookups. Default 2m.
	QueryTimeout time.Duration
	// MaxSamples is the maximum number of samples a single query may load
	// into memory, as Prometheus's --query.max-samples: past it the answer
	// is a 422 of type "execution". Default 50,000,000.
	MaxSamples int
	// MaxConcurrency is the maximum number of PromQL queries (query and
	// query_range) executed at once, as Prometheus's
	// --query.max-concurrency; more wait for a slot, within their timeout.
	// Default 20.
	MaxConcurrency int
	// ActiveQueryDir is the directory of the active query log, Prometheus's
	// queries.active (memory-mapped, MaxConcurrency × 1 KB): the queries
	// running when the process died are logged at the next start. One API
	// per directory; kubemon's data directory suits (Prometheus keeps the
	// file in its TSDB directory). Empty: the concurrency slots are kept in
	// memory only, with no log.
	ActiveQueryDir string
	// MaxPoints is the maximum number of points per series a query_range
	// request may ask for. Default 11,000.
	MaxPoints int
	// Now returns the current time, used as the default evaluation time of
	// instant queries. Default time.Now.
	Now func() time.Time
	// Targets, when set, gives /api/v1/targets the scrape state of every
	// node; without it the endpoint lists none.
	Targets func() []Target
	// Runtime is what /api/v1/status/runtimeinfo reports.
	Runtime RuntimeInfo
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
	targets       func() []Target
	runtime       RuntimeInfo

	// tracker bounds concurrent queries; it counts the queries waiting.
	tracker *countingTracker
	// stop ends the queries in flight when Close is called; inflight
	// counts them, so that Close unmaps the active query log only once no
	// query can write to it.
	stop      context.Context
	stopAll   context.CancelFunc
	mu        sync.RWMutex
	closed    bool
	inflight  sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// New validates o, applies defaults and creates the PromQL engine.
func New(o Options) (*API, error) {
	if o.Queryable == nil {
		return nil, errors.New("promapi: Options.Queryable is required")
	}
	if o.LookbackDelta < 0 || o.QueryTimeout < 0 || o.MaxSamples < 0 || o.MaxPoints < 0 || o.MaxConcurrency < 0 {
		return nil, errors.New("promapi: LookbackDelta, QueryTimeout, MaxSamples, MaxPoints and MaxConcurrency must not be negative")
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
	if o.MaxConcurrency == 0 {
		o.MaxConcurrency = DefaultMaxConcurrency
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
		targets:       o.Targets,
		runtime:       o.Runtime,
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

	var tracker promql.QueryTracker = newMemTracker(o.MaxConcurrency)
	if o.ActiveQueryDir != "" {
		t, err := promql.NewActiveQueryTracker(o.ActiveQueryDir, o.MaxConcurrency, o.Logger.With("component", "activeQueryTracker"))
		if err != nil {
			return nil, fmt.Errorf("promapi: active query log in %s: %w", o.ActiveQueryDir, err)
		}
		tracker = t
	}
	a.tracker = &countingTracker{QueryTracker: tracker}
	a.stop, a.stopAll = context.WithCancel(context.Background())

	a.engine = promql.NewEngine(promql.EngineOpts{
		Logger:               o.Logger.With("component", "promql"),
		MaxSamples:           o.MaxSamples,
		Timeout:              o.QueryTimeout,
		ActiveQueryTracker:   a.tracker,
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

// Close cancels the queries in flight, waits for them to end, and closes
// the engine and its active query tracker (unmapping the active query
// log). Queries after Close are refused with a 503; Close may be called
// more than once.
func (a *API) Close() error {
	a.closeOnce.Do(func() {
		a.mu.Lock()
		a.closed = true
		a.mu.Unlock()
		a.stopAll()
		a.inflight.Wait()
		a.closeErr = a.engine.Close()
	})
	return a.closeErr
}

// begin registers a query in flight: its context ends with ctx or when
// Close is called. done must be called when the query has ended. ok is
// false once the API is closed.
func (a *API) begin(ctx context.Context) (_ context.Context, done func(), ok bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		return nil, nil, false
	}
	a.inflight.Add(1)
	ctx, cancel := context.WithCancel(ctx)
	unhook := context.AfterFunc(a.stop, cancel)
	return ctx, func() {
		unhook()
		cancel()
		a.inflight.Done()
	}, true
}

// countingTracker is a promql.QueryTracker that counts the queries waiting
// for a slot.
type countingTracker struct {
	promql.QueryTracker
	waiting atomic.Int64
}

// Insert waits for a slot. A wait ended by the context is reported as
// the engine reports a timeout or cancellation during evaluation ("query
// timed out in query queue"), not as a bare context error.
func (t *countingTracker) Insert(ctx context.Context, query string) (int, error) {
	t.waiting.Add(1)
	defer t.waiting.Add(-1)
	i, err := t.QueryTracker.Insert(ctx, query)
	switch {
	case err == nil:
	case errors.Is(err, context.DeadlineExceeded):
		err = promql.ErrQueryTimeout("query queue")
	case errors.Is(err, context.Canceled):
		err = promql.ErrQueryCanceled("query queue")
	}
	return i, err
}

// memTracker is a promql.QueryTracker that only bounds concurrency, for
// when no directory is given for Prometheus's active query log.
type memTracker struct {
	slots chan struct{}
}

func newMemTracker(n int) *memTracker { return &memTracker{slots: make(chan struct{}, n)} }

func (t *memTracker) GetMaxConcurrent() int { return cap(t.slots) }

func (t *memTracker) Insert(ctx context.Context, _ string) (int, error) {
	select {
	case t.slots <- struct{}{}:
		return 0, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (t *memTracker) Delete(int) { <-t.slots }

func (t *memTracker) Close() error { return nil }

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
	mux.Handle("/api/v1/status/runtimeinfo", a.handler("runtimeinfo", a.runtimeInfo))
	mux.Handle("/api/v1/targets", a.handler("targets", a.targetList))
}

// errorType is the "errorType" of an error response.
type errorType string

const (
	errorBadData     errorType = "bad_data"
	errorExec        errorType = "execution"
	errorTimeout     errorType = "timeout"
	errorCanceled    errorType = "canceled"
	errorInternal    errorType = "internal"
	errorUnavailable errorType = "unavailable"
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
	case errorUnavailable:
		return http.StatusServiceUnavailable
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
