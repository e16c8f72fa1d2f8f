// Package eventsapi serves the Kubernetes events kubemon keeps
// (internal/events) at GET /api/v1/events, in the Prometheus HTTP API's
// envelope:
//
//	{"status":"success","data":[{...event...}, ...],"warnings":["..."]}
//	{"status":"error","errorType":"bad_data","error":"..."}
//
// Parameters, all optional, each given at most once: namespace (the
// event's), kind, name and uid (the involved object's), reason, type
// (Normal, Warning), node (the events that happened on a node: the Node's
// own and its pods'; see events.Query.Node), start and end (RFC 3339 or
// Unix seconds, as Prometheus's API takes them; both included, on the time
// an event last happened) and limit (default DefaultLimit, at most
// Options.MaxLimit). Events are returned newest first; when more match
// than limit, the oldest are left out and a warning says so. data is
// always there on success ([] when nothing matched) and never on an error.
// An unknown or repeated parameter, a bad node name, time or limit is a 400
// naming it. Requests are bounded by Options.Timeout (503 "timeout" past
// it) and their answer by the limit.
package eventsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kubemon/kubemon/internal/events"
)

// Defaults of Options.
const (
	DefaultLimit    = 1000
	DefaultMaxLimit = 10000
	DefaultTimeout  = 30 * time.Second
	// maxParamLen bounds a text parameter (a Kubernetes name is at most
	// 253 bytes).
	maxParamLen = 1024
	// maxNodeNameLen is the longest node name (a DNS subdomain).
	maxNodeNameLen = 253
)

// Querier answers event queries (events.Store).
type Querier interface {
	Query(ctx context.Context, q events.Query) (events.Result, error)
}

// Options configure the API. Store is required.
type Options struct {
	Store Querier
	// MaxLimit is the largest limit a request may ask for; default
	// DefaultMaxLimit.
	MaxLimit int
	// Timeout bounds one request; default DefaultTimeout.
	Timeout time.Duration
	Logger  *slog.Logger
}

// API serves /api/v1/events.
type API struct{ o Options }

// New returns the API.
func New(o Options) *API {
	if o.MaxLimit <= 0 {
		o.MaxLimit = DefaultMaxLimit
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &API{o: o}
}

// Register mounts the API on mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/events", a.list)
}

// Event is one event as the API answers it.
type Event struct {
	// UID, Namespace and Name are the Event object's own.
	UID       string `json:"uid"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// FirstTime and LastTime are when it first and last happened (RFC
	// 3339): lastTimestamp, or the events.k8s.io series' last observed
	// time or eventTime, whichever is set and latest; LastTime is what
	// start, end and the order are about.
	FirstTime time.Time `json:"firstTime"`
	LastTime  time.Time `json:"lastTime"`
	// Count is how many times it happened (at least 1).
	Count          int32  `json:"count"`
	Type           string `json:"type"`
	Reason         string `json:"reason"`
	Message        string `json:"message"`
	InvolvedObject Object `json:"involvedObject"`
	// Source is the reporter of the older API (source.component and host);
	// ReportingController and ReportingInstance that of events.k8s.io.
	Source              Source `json:"source"`
	ReportingController string `json:"reportingController,omitempty"`
	ReportingInstance   string `json:"reportingInstance,omitempty"`
	Action              string `json:"action,omitempty"`
	// Node is the node it happened on, when known (see events.Node).
	Node string `json:"node,omitempty"`
}

// Object is the involved object.
type Object struct {
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	UID        string `json:"uid,omitempty"`
	APIVersion string `json:"apiVersion,omitempty"`
	FieldPath  string `json:"fieldPath,omitempty"`
}

// Source is the older API's reporter.
type Source struct {
	Component string `json:"component,omitempty"`
	Host      string `json:"host,omitempty"`
}

func view(l events.Logged) Event {
	e := l.Event
	o := e.InvolvedObject
	return Event{
		UID: string(e.UID), Namespace: e.Namespace, Name: e.Name,
		FirstTime: events.FirstTime(e).UTC(), LastTime: l.Time.UTC(), Count: events.Count(e),
		Type: e.Type, Reason: e.Reason, Message: e.Message,
		InvolvedObject:      Object{Kind: o.Kind, Namespace: o.Namespace, Name: o.Name, UID: string(o.UID), APIVersion: o.APIVersion, FieldPath: o.FieldPath},
		Source:              Source{Component: e.Source.Component, Host: e.Source.Host},
		ReportingController: e.ReportingController, ReportingInstance: e.ReportingInstance, Action: e.Action,
		Node: events.Node(e),
	}
}

// params are the parameters a request may give.
var params = []string{"namespace", "kind", "name", "uid", "reason", "type", "node", "start", "end", "limit"}

// badParam is a 400 about one parameter.
type badParam struct {
	name string
	err  error
}

func (e *badParam) Error() string { return fmt.Sprintf("invalid parameter %q: %v", e.name, e.err) }

// parse reads the request's parameters into a query.
func (a *API) parse(r *http.Request) (events.Query, error) {
	vals := r.URL.Query()
	for k, v := range vals {
		if !slices.Contains(params, k) {
			return events.Query{}, &badParam{k, fmt.Errorf("unknown parameter; known are %s", strings.Join(params, ", "))}
		}
		if len(v) > 1 {
			return events.Query{}, &badParam{k, fmt.Errorf("given %d times; give it once", len(v))}
		}
		if len(v[0]) > maxParamLen {
			return events.Query{}, &badParam{k, fmt.Errorf("%d bytes long; at most %d", len(v[0]), maxParamLen)}
		}
	}
	q := events.Query{
		Namespace: vals.Get("namespace"), Kind: vals.Get("kind"), Name: vals.Get("name"), UID: vals.Get("uid"),
		Reason: vals.Get("reason"), Type: vals.Get("type"), Node: vals.Get("node"), Limit: DefaultLimit,
	}
	if err := nodeName(q.Node); err != nil {
		return q, &badParam{"node", err}
	}
	var err error
	if q.Start, err = timeParam(vals.Get("start")); err != nil {
		return q, &badParam{"start", err}
	}
	if q.End, err = timeParam(vals.Get("end")); err != nil {
		return q, &badParam{"end", err}
	}
	if !q.Start.IsZero() && !q.End.IsZero() && q.End.Before(q.Start) {
		return q, &badParam{"end", errors.New("end timestamp must not be before start time")}
	}
	if s := vals.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > a.o.MaxLimit {
			return q, &badParam{"limit", fmt.Errorf("%q: want a whole number from 1 to %d", s, a.o.MaxLimit)}
		}
		q.Limit = n
	}
	return q, nil
}

// nodeName checks a node name: a DNS subdomain (RFC 1123) as Kubernetes
// names nodes: at most 253 characters, lowercase letters, digits, '-' and
// '.', each dot-separated part starting and ending with a letter or digit.
// "" (no node) is fine.
func nodeName(s string) error {
	if s == "" {
		return nil
	}
	const want = "want a node name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
	if len(s) > maxNodeNameLen {
		return fmt.Errorf("%d bytes long; a node name is at most %d", len(s), maxNodeNameLen)
	}
	for part := range strings.SplitSeq(s, ".") {
		if part == "" || part[0] == '-' || part[len(part)-1] == '-' {
			return fmt.Errorf("%q: %s", s, want)
		}
		for _, c := range []byte(part) {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return fmt.Errorf("%q: %s", s, want)
			}
		}
	}
	return nil
}

// timeParam parses an RFC 3339 time or (fractional) Unix seconds, as
// Prometheus's API does; "" is the zero time (unbounded).
func timeParam(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || f >= float64(math.MaxInt64)/1e9 || f <= float64(math.MinInt64)/1e9 {
			return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp (want RFC 3339 or Unix seconds)", s)
}

// success is the answer of a query: data is always there, [] when
// nothing matched (as Prometheus's API always has data on success).
type success struct {
	Status   string   `json:"status"`
	Data     []Event  `json:"data"`
	Warnings []string `json:"warnings,omitempty"`
}

// failure is an error's answer: no data.
type failure struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	q, err := a.parse(r)
	if err != nil {
		a.fail(w, r, http.StatusBadRequest, "bad_data", err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.o.Timeout)
	defer cancel()
	res, err := a.o.Store.Query(ctx, q)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		a.fail(w, r, http.StatusServiceUnavailable, "timeout", fmt.Errorf("query timed out after %v: narrow it (start, end, namespace, kind and name, reason)", a.o.Timeout))
		return
	case errors.Is(err, context.Canceled):
		a.fail(w, r, http.StatusServiceUnavailable, "canceled", err)
		return
	case err != nil:
		a.fail(w, r, http.StatusInternalServerError, "internal", err)
		return
	}
	out := success{Status: "success", Data: make([]Event, len(res.Events))} // never nil: "data":[]
	for i, l := range res.Events {
		out.Data[i] = view(l)
	}
	switch {
	case res.SizeCapped:
		out.Warnings = []string{fmt.Sprintf("answer size cap (%d MiB) reached after %d events: older matching events were left out; narrow the time range", events.DefaultQueryMaxBytes>>20, len(res.Events))}
	case res.Truncated:
		out.Warnings = []string{fmt.Sprintf("limit %d reached: older matching events were left out; narrow the time range or raise limit (at most %d)", q.Limit, a.o.MaxLimit)}
	}
	w.Header().Set("Content-Type", "application/json")
	b, err := json.Marshal(out)
	if err != nil {
		a.fail(w, r, http.StatusInternalServerError, "internal", err)
		return
	}
	w.Write(b)
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, code int, typ string, err error) {
	if code >= 500 {
		a.o.Logger.Warn("events API request failed", "path", r.URL.Path, "query", r.URL.RawQuery, "errorType", typ, "err", err)
	}
	b, _ := json.Marshal(failure{Status: "error", ErrorType: typ, Error: err.Error()})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(b)
}
