// Package querybackend reads a Prometheus-compatible query backend (Thanos
// Query, Prometheus, or another kubemon) through its HTTP API v1 as a
// storage.Queryable, so that kubemon's APIs and rules answer from the data
// of every member rather than from the local store (--query-url).
//
// A Select asks the backend for the raw samples of one selector over the
// selected range: an instant query of the range-vector selector
// `{matchers}[<range>ms]` at the range's end, which Thanos Query answers
// deduplicated over its replica label. A Select with the "series" hint (the
// series API) asks /api/v1/series instead; label names and values come from
// /api/v1/labels and /api/v1/label/<name>/values.
package querybackend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/valyala/fastjson"
)

// Defaults of Options.
const (
	DefaultTimeout  = 2 * time.Minute
	DefaultMaxBytes = 256 << 20
)

// Options configures a Queryable.
type Options struct {
	// URL is the backend's base URL, under which /api/v1/query answers
	// (e.g. http://thanos-query.monitoring:10902).
	URL string
	// Client sends the requests (default: a client of its own).
	Client *http.Client
	// Timeout bounds each request (default DefaultTimeout).
	Timeout time.Duration
	// MaxBytes bounds each response body, in bytes (default DefaultMaxBytes):
	// a larger answer fails the query rather than the process.
	MaxBytes int64
}

// Queryable is a storage.Queryable over a query backend's HTTP API.
type Queryable struct {
	o    Options
	base *url.URL
}

// New checks o.URL and returns a Queryable over it.
func New(o Options) (*Queryable, error) {
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("query backend URL %q: %w", o.URL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("query backend URL %q: want http(s)://host[:port][/path]", o.URL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("query backend URL %q: no query or fragment", o.URL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	return &Queryable{o: o, base: u}, nil
}

// String is the backend's URL.
func (q *Queryable) String() string { return q.base.String() }

// Querier returns a querier over [mint, maxt] (milliseconds, inclusive).
func (q *Queryable) Querier(mint, maxt int64) (storage.Querier, error) {
	return &querier{q: q, mint: mint, maxt: maxt}, nil
}

type querier struct {
	q          *Queryable
	mint, maxt int64
}

func (*querier) Close() error { return nil }

// Select returns the series matching ms with their samples in the hinted
// range (clamped to the querier's), sorted by labels.
func (s *querier) Select(ctx context.Context, _ bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	start, end := s.mint, s.maxt
	if hints != nil {
		start, end = max(start, hints.Start), min(end, hints.End)
	}
	start = max(start, 0) // the backend's API has no time before 1970
	if end < start {
		return storage.EmptySeriesSet()
	}
	sel := selector(ms)
	if hints != nil && hints.Func == "series" {
		form := url.Values{"match[]": {sel}, "start": {formatTime(start)}, "end": {formatTime(end)}}
		if hints.Limit > 0 {
			form.Set("limit", strconv.Itoa(hints.Limit))
		}
		v, warns, err := s.q.call(ctx, http.MethodPost, "/api/v1/series", form)
		if err != nil {
			return storage.ErrSeriesSet(err)
		}
		set, err := decodeSeries(v, hints.Limit)
		if err != nil {
			return storage.ErrSeriesSet(s.q.errorf("/api/v1/series", err))
		}
		set.warns = warns
		return set
	}
	// The range selector is left-open in Prometheus 3 (and Thanos): one
	// millisecond more takes in a sample at start; anything earlier that
	// a closed range returns is dropped below.
	form := url.Values{
		"query": {fmt.Sprintf("%s[%dms]", sel, end-start+1)},
		"time":  {formatTime(end)},
	}
	v, warns, err := s.q.call(ctx, http.MethodPost, "/api/v1/query", form)
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	set, err := decodeMatrix(v, start, end)
	if err != nil {
		return storage.ErrSeriesSet(s.q.errorf("/api/v1/query", err))
	}
	set.warns = warns
	return set
}

// LabelNames returns the label names of the series matching ms in the
// querier's range, sorted.
func (s *querier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return s.strings(ctx, "/api/v1/labels", hints, ms)
}

// LabelValues returns the values of label name on the series matching ms in
// the querier's range, sorted.
func (s *querier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return s.strings(ctx, "/api/v1/label/"+url.PathEscape(name)+"/values", hints, ms)
}

func (s *querier) strings(ctx context.Context, path string, hints *storage.LabelHints, ms []*labels.Matcher) ([]string, annotations.Annotations, error) {
	form := url.Values{"start": {formatTime(max(s.mint, 0))}, "end": {formatTime(max(s.maxt, 0))}}
	if len(ms) > 0 {
		form.Set("match[]", selector(ms))
	}
	if hints != nil && hints.Limit > 0 {
		form.Set("limit", strconv.Itoa(hints.Limit))
	}
	// GET: Prometheus and Thanos take no POST for label values.
	v, warns, err := s.q.call(ctx, http.MethodGet, path, form)
	if err != nil {
		return nil, warns, err
	}
	arr, err := v.Array()
	if err != nil {
		return nil, warns, s.q.errorf(path, fmt.Errorf("data: %w", err))
	}
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		b, err := e.StringBytes()
		if err != nil {
			return nil, warns, s.q.errorf(path, fmt.Errorf("data: %w", err))
		}
		out = append(out, string(b))
	}
	slices.Sort(out)
	if hints != nil && hints.Limit > 0 && len(out) > hints.Limit {
		out = out[:hints.Limit]
	}
	return out, warns, nil
}

// selector is the vector selector of ms, e.g. {__name__="x",pod=~"a.*"}.
func selector(ms []*labels.Matcher) string {
	return (&parser.VectorSelector{LabelMatchers: ms}).String()
}

// formatTime is a Unix time in milliseconds as the API's seconds.
func formatTime(ms int64) string {
	return strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64)
}

func (q *Queryable) errorf(path string, err error) error {
	return fmt.Errorf("query backend %s%s: %w", q.base.Redacted(), path, err)
}

// call sends form to path, in the body of a POST or the query of a GET,
// and returns the envelope's data and warnings, or the backend's error.
func (q *Queryable) call(ctx context.Context, method, path string, form url.Values) (*fastjson.Value, annotations.Annotations, error) {
	ctx, cancel := context.WithTimeout(ctx, q.o.Timeout)
	defer cancel()
	u := *q.base
	u.Path += path
	var send io.Reader
	if method == http.MethodPost {
		send = strings.NewReader(form.Encode())
	} else {
		u.RawQuery = form.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), send)
	if err != nil {
		return nil, nil, q.errorf(path, err)
	}
	if send != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := q.o.Client.Do(req)
	if err != nil {
		return nil, nil, q.errorf(path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, q.o.MaxBytes+1))
	if err != nil {
		return nil, nil, q.errorf(path, fmt.Errorf("reading the answer: %w", err))
	}
	if int64(len(body)) > q.o.MaxBytes {
		return nil, nil, q.errorf(path, fmt.Errorf("answer over %d bytes", q.o.MaxBytes))
	}
	var p fastjson.Parser
	v, perr := p.ParseBytes(body)
	if perr != nil || v.Type() != fastjson.TypeObject {
		if resp.StatusCode/100 != 2 {
			return nil, nil, q.errorf(path, fmt.Errorf("%s: %s", resp.Status, snippet(body)))
		}
		return nil, nil, q.errorf(path, fmt.Errorf("not a Prometheus API answer: %s", snippet(body)))
	}
	var warns annotations.Annotations
	for _, w := range v.GetArray("warnings") {
		if b, err := w.StringBytes(); err == nil {
			warns = warns.Add(errors.New(string(b)))
		}
	}
	if st := string(v.GetStringBytes("status")); st != "success" {
		return nil, warns, q.errorf(path, fmt.Errorf("%s: %s: %s", resp.Status, v.GetStringBytes("errorType"), v.GetStringBytes("error")))
	}
	data := v.Get("data")
	if data == nil {
		return nil, warns, q.errorf(path, errors.New("answer without data"))
	}
	return data, warns, nil
}

// snippet is the start of a body, for an error message.
func snippet(b []byte) string {
	const n = 200
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = s[:n] + "…"
	}
	return strconv.Quote(s)
}

// decodeMatrix reads a query's matrix, keeping samples in [start, end].
func decodeMatrix(v *fastjson.Value, start, end int64) (*seriesSet, error) {
	if rt := string(v.GetStringBytes("resultType")); rt != "matrix" {
		return nil, fmt.Errorf("result type %q, want matrix", rt)
	}
	res, err := v.Get("result").Array()
	if err != nil {
		return nil, fmt.Errorf("result: %w", err)
	}
	set := &seriesSet{i: -1, series: make([]*series, 0, len(res))}
	for _, r := range res {
		lset, err := decodeLabels(r.Get("metric"))
		if err != nil {
			return nil, err
		}
		if r.Exists("histograms") {
			return nil, fmt.Errorf("series %s: native histograms are not supported", lset)
		}
		vals := r.GetArray("values")
		s := &series{lset: lset, t: make([]int64, 0, len(vals)), v: make([]float64, 0, len(vals))}
		for _, p := range vals {
			pair, err := p.Array()
			if err != nil || len(pair) != 2 {
				return nil, fmt.Errorf("series %s: sample %s: want [time, \"value\"]", lset, p)
			}
			secs, err := pair[0].Float64()
			if err != nil {
				return nil, fmt.Errorf("series %s: sample time: %w", lset, err)
			}
			vb, err := pair[1].StringBytes()
			if err != nil {
				return nil, fmt.Errorf("series %s: sample value: %w", lset, err)
			}
			f, err := strconv.ParseFloat(string(vb), 64)
			if err != nil {
				return nil, fmt.Errorf("series %s: sample value: %w", lset, err)
			}
			t := int64(math.Round(secs * 1000))
			if t < start || t > end {
				continue
			}
			if n := len(s.t); n > 0 && t <= s.t[n-1] {
				return nil, fmt.Errorf("series %s: samples out of order at %s", lset, pair[0])
			}
			s.t, s.v = append(s.t, t), append(s.v, f)
		}
		if len(s.t) > 0 {
			set.series = append(set.series, s)
		}
	}
	set.sort()
	return set, nil
}

// decodeSeries reads the series API's label sets, as series without samples.
func decodeSeries(v *fastjson.Value, limit int) (*seriesSet, error) {
	arr, err := v.Array()
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	set := &seriesSet{i: -1, series: make([]*series, 0, len(arr))}
	for _, m := range arr {
		lset, err := decodeLabels(m)
		if err != nil {
			return nil, err
		}
		set.series = append(set.series, &series{lset: lset})
	}
	set.sort()
	if limit > 0 && len(set.series) > limit {
		set.series = set.series[:limit]
	}
	return set, nil
}

func decodeLabels(m *fastjson.Value) (labels.Labels, error) {
	o, err := m.Object()
	if err != nil {
		return labels.EmptyLabels(), fmt.Errorf("metric: %w", err)
	}
	b := labels.NewScratchBuilder(o.Len())
	o.Visit(func(k []byte, v *fastjson.Value) {
		if s, e := v.StringBytes(); e != nil {
			err = fmt.Errorf("label %q: %w", k, e)
		} else {
			b.Add(string(k), string(s))
		}
	})
	if err != nil {
		return labels.EmptyLabels(), err
	}
	b.Sort()
	return b.Labels(), nil
}

// seriesSet is a sorted list of series.
type seriesSet struct {
	series []*series
	i      int
	warns  annotations.Annotations
}

func (s *seriesSet) sort() {
	slices.SortFunc(s.series, func(a, b *series) int { return labels.Compare(a.lset, b.lset) })
}

func (s *seriesSet) Next() bool {
	s.i++
	return s.i < len(s.series)
}
func (s *seriesSet) At() storage.Series                { return s.series[s.i] }
func (*seriesSet) Err() error                          { return nil }
func (s *seriesSet) Warnings() annotations.Annotations { return s.warns }

// series is one series' float samples: times in milliseconds, ascending.
type series struct {
	lset labels.Labels
	t    []int64
	v    []float64
}

func (s *series) Labels() labels.Labels { return s.lset }

func (s *series) Iterator(chunkenc.Iterator) chunkenc.Iterator {
	return storage.NewListSeriesIterator(samples{s})
}

// samples adapts a series to storage.Samples.
type samples struct{ s *series }

func (x samples) Len() int                { return len(x.s.t) }
func (x samples) Get(i int) chunks.Sample { return sample{t: x.s.t[i], f: x.s.v[i]} }

// sample is a float sample.
type sample struct {
	t int64
	f float64
}

func (s sample) T() int64                    { return s.t }
func (sample) ST() int64                     { return 0 }
func (s sample) F() float64                  { return s.f }
func (sample) H() *histogram.Histogram       { return nil }
func (sample) FH() *histogram.FloatHistogram { return nil }
func (sample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s sample) Copy() chunks.Sample         { return s }
