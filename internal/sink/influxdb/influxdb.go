// Package influxdb writes kubemon's series to InfluxDB in Heapster's schema,
// so that the Grafana dashboards made for Heapster's InfluxDB sink keep
// working: one measurement per metric, named by its Heapster name
// ("cpu/usage_rate"), with one float field "value" in Heapster's unit, and
// Heapster's tags (type, namespace_name, pod_name, container_name, nodename,
// hostname, labels, cluster_name; workload_kind and workload_name for
// kubemon's workload level). With Options.WithFields it uses the layout of
// Heapster's withfields=true instead: measurement "cpu", field "usage_rate".
//
// It speaks InfluxDB 1.x's /write (creating the database and retention
// policy as Heapster did) and InfluxDB 2.x's /api/v2/write (which InfluxDB
// 1.8 serves too), in line protocol at millisecond precision, gzipped, at
// most 5,000 points a request.
//
// Values are floats, where Heapster wrote most of them as integers: in a
// database Heapster filled, InfluxDB refuses them (400 "field type
// conflict") until its next shard group begins; write to a new database or
// retention policy instead.
package influxdb

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
	"github.com/prometheus/common/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"

	"github.com/kubemon/kubemon/internal/model"
	"github.com/kubemon/kubemon/internal/sink"
)

// Options configure a Writer. URL and either Database (InfluxDB 1.x) or
// Bucket (InfluxDB 2.x API) are required.
type Options struct {
	// URL is the server's base URL, e.g. "http://influxdb:8086"; a path
	// (a reverse proxy's prefix) is kept, "/write" is appended to it.
	URL string

	// Database is the InfluxDB 1.x database ("k8s" was Heapster's
	// default). It is created (CREATE DATABASE) on the first Write and
	// whenever a write answers that it does not exist.
	Database string
	// RetentionPolicy is the retention policy written to (1.x); empty
	// means the database's default policy.
	RetentionPolicy string
	// RetentionDuration, with RetentionPolicy, has the policy created (or
	// altered to this duration) as the database's default with
	// replication 1, as Heapster's retention= option did. At least one
	// hour (InfluxDB's minimum); zero leaves the policy alone (it must
	// then exist).
	RetentionDuration time.Duration
	// User and Password are sent with HTTP basic authentication (1.x)
	// when User is set. Creating the database needs an admin user; with
	// a user who may only write, create the database beforehand.
	User     string
	Password string

	// Bucket selects InfluxDB 2.x's write API, /api/v2/write. InfluxDB
	// 1.8's compatibility API takes "database/retention-policy" (or just
	// "database") here. Nothing is created in this mode.
	Bucket string
	// Org is the 2.x organization (InfluxDB 1.8 ignores it).
	Org string
	// Token is sent as "Authorization: Token <Token>" when set (2.x; for
	// InfluxDB 1.8 with authentication on, "user:password").
	Token string

	// ClusterName is the cluster_name tag of every point (Heapster's
	// cluster_name option); omitted when empty.
	ClusterName string
	// WithFields writes Heapster's withfields layout: the measurement is
	// the Heapster name's part before the first "/" ("cpu") and the field
	// the rest ("usage_rate"); a name without "/" keeps field "value".
	WithFields bool
	// DisableGzip sends request bodies uncompressed.
	DisableGzip bool
	// Timeout bounds each HTTP request (connecting, sending, reading the
	// answer); default 30 seconds. Write's context bounds them too.
	Timeout time.Duration
	// CAFile is a PEM file of the certificate authorities trusted for an
	// https URL, instead of the system's.
	CAFile string
	// InsecureSkipVerify accepts any server certificate (testing only).
	InsecureSkipVerify bool
}

// DefaultTimeout is the default of Options.Timeout.
const DefaultTimeout = 30 * time.Second

// MaxPointsPerRequest is the most points one HTTP request carries
// (InfluxDB's recommended batch size); a larger batch takes several.
const MaxPointsPerRequest = 5000

// labelsTTL is how long a pod's labels are remembered after its info series
// was last seen (in sample time).
const labelsTTL = time.Hour

// Stats are a Writer's counts since New. Samples skipped are never sent;
// together with Points they account for every sample given to Write (a
// batch that failed is counted again when it is written again).
type Stats struct {
	// Points is the number of points InfluxDB accepted.
	Points uint64
	// Requests is the number of write requests that succeeded.
	Requests uint64
	// Failed is the number of points in requests that failed.
	Failed uint64
	// SkippedUnknown counts samples of series that are not kubemon's
	// (model.ParseSeriesName does not know their name).
	SkippedUnknown uint64
	// SkippedNoHeapster counts samples of metrics Heapster did not have
	// (no Heapster name).
	SkippedNoHeapster uint64
	// SkippedInfo counts samples of info series (their labels become the
	// labels tag of the pod's points, they are not written themselves).
	SkippedInfo uint64
	// SkippedStale counts staleness markers.
	SkippedStale uint64
	// SkippedNonFinite counts NaN and ±Inf values.
	SkippedNonFinite uint64
	// SkippedInvalid counts points line protocol cannot carry (a tag
	// value with a control character, a time beyond 2262).
	SkippedInvalid uint64
}

// Skipped is the sum of the Skipped counts.
func (s Stats) Skipped() uint64 {
	return s.SkippedUnknown + s.SkippedNoHeapster + s.SkippedInfo + s.SkippedStale + s.SkippedNonFinite + s.SkippedInvalid
}

type counters struct {
	points, requests, failed                             atomic.Uint64
	unknown, noHeapster, info, stale, nonFinite, invalid atomic.Uint64
}

// Writer writes batches to one InfluxDB. It is safe for concurrent use.
type Writer struct {
	o        Options
	client   *http.Client
	writeURL string
	queryURL string // 1.x only
	v2       bool

	// created is true once the database (and retention policy) were
	// created; mu serializes the creation.
	mu        sync.Mutex
	created   bool
	createErr error // why the last creation failed for good

	labelsMu  sync.Mutex
	podLabels map[podKey]podLabels
	swept     int64 // sample time (ms) of the last sweep of podLabels

	n counters
}

type podKey struct{ namespace, pod string }

type podLabels struct {
	labels string
	t      int64 // time of the info sample they come from, Unix ms
}

// New checks o and returns its Writer. It does not contact the server.
func New(o Options) (*Writer, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("influxdb: URL %q: want http(s)://host:port", o.URL)
	}
	switch {
	case o.Bucket != "" && o.Database != "":
		return nil, errors.New("influxdb: set Database (InfluxDB 1.x) or Bucket (2.x API), not both")
	case o.Bucket == "" && o.Database == "":
		return nil, errors.New("influxdb: Database (InfluxDB 1.x) or Bucket (2.x API) is required")
	case o.Bucket != "" && (o.RetentionPolicy != "" || o.RetentionDuration != 0 || o.User != ""):
		return nil, errors.New("influxdb: RetentionPolicy, RetentionDuration and User are for InfluxDB 1.x (Database); with Bucket use Token")
	case o.Database != "" && (o.Org != "" || o.Token != ""):
		return nil, errors.New("influxdb: Org and Token are for the 2.x API (Bucket); with Database use User and Password")
	case o.RetentionDuration != 0 && o.RetentionPolicy == "":
		return nil, errors.New("influxdb: RetentionDuration needs RetentionPolicy (the policy's name)")
	case o.RetentionDuration < 0 || (o.RetentionDuration > 0 && o.RetentionDuration < time.Hour):
		return nil, fmt.Errorf("influxdb: RetentionDuration %v: InfluxDB's minimum is 1h", o.RetentionDuration)
	case o.RetentionDuration%time.Millisecond != 0:
		return nil, fmt.Errorf("influxdb: RetentionDuration %v: whole milliseconds only", o.RetentionDuration)
	case o.Timeout < 0:
		return nil, fmt.Errorf("influxdb: Timeout %v is negative", o.Timeout)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	// The same HTTP client library as the remote-write sink (and
	// Prometheus): TLS from CAFile and InsecureSkipVerify.
	client, err := config.NewClientFromConfig(config.HTTPClientConfig{
		FollowRedirects: true,
		TLSConfig:       config.TLSConfig{CAFile: o.CAFile, InsecureSkipVerify: o.InsecureSkipVerify},
	}, "influxdb", config.WithIdleConnTimeout(90*time.Second))
	if err != nil {
		return nil, fmt.Errorf("influxdb: HTTP client: %w", err)
	}
	// Content-Encoding of the answers is not asked for: they are short.
	w := &Writer{
		o:         o,
		client:    client,
		v2:        o.Bucket != "",
		podLabels: map[podKey]podLabels{},
	}
	base := strings.TrimSuffix(u.String(), "/")
	q := url.Values{}
	if w.v2 {
		if o.Org != "" {
			q.Set("org", o.Org)
		}
		q.Set("bucket", o.Bucket)
		q.Set("precision", "ms")
		w.writeURL = base + "/api/v2/write?" + q.Encode()
	} else {
		q.Set("db", o.Database)
		if o.RetentionPolicy != "" {
			q.Set("rp", o.RetentionPolicy)
		}
		q.Set("precision", "ms")
		w.writeURL = base + "/write?" + q.Encode()
		w.queryURL = base + "/query"
	}
	return w, nil
}

// Stats returns the counts since New.
func (w *Writer) Stats() Stats {
	return Stats{
		Points:            w.n.points.Load(),
		Requests:          w.n.requests.Load(),
		Failed:            w.n.failed.Load(),
		SkippedUnknown:    w.n.unknown.Load(),
		SkippedNoHeapster: w.n.noHeapster.Load(),
		SkippedInfo:       w.n.info.Load(),
		SkippedStale:      w.n.stale.Load(),
		SkippedNonFinite:  w.n.nonFinite.Load(),
		SkippedInvalid:    w.n.invalid.Load(),
	}
}

// names are a (level, metric)'s measurement and field; measurement "" for
// a metric that is not written.
type names struct{ measurement, field string }

func namesOf(withFields bool) (out [model.NumLevels][model.NumMetrics]names) {
	for l := range model.NumLevels {
		for _, m := range model.Metrics {
			if !m.Levels.Has(l) || m.Heapster == "" || m.ID == model.Info {
				continue
			}
			n := names{m.Heapster, "value"}
			if withFields {
				if meas, field, ok := strings.Cut(m.Heapster, "/"); ok {
					n = names{meas, field}
				}
			}
			out[l][m.ID] = n
		}
	}
	return out
}

var (
	plainNames  = namesOf(false)
	fieldsNames = namesOf(true)
)

// Heapster's tag keys, in the lexical order line protocol wants them.
const (
	tagCluster      = "cluster_name"
	tagContainer    = "container_name"
	tagHostname     = "hostname"
	tagLabels       = "labels"
	tagNamespace    = "namespace_name"
	tagNodename     = "nodename"
	tagPod          = "pod_name"
	tagSink         = "sink_name" // kubemon's own sinks' series
	tagType         = "type"
	tagWorkloadKind = "workload_kind"
	tagWorkload     = "workload_name"
)

type tag struct{ k, v string }

// tagsOf lists a series' tags in lexical key order, empty values left out.
func (w *Writer) tagsOf(dst []tag, l model.Level, ls labels.Labels, podLabels string) []tag {
	node := ls.Get(model.LabelNode)
	add := func(k, v string) {
		if v != "" {
			dst = append(dst, tag{k, v})
		}
	}
	add(tagCluster, w.o.ClusterName)
	add(tagContainer, ls.Get(model.LabelContainer))
	add(tagHostname, node)
	add(tagLabels, podLabels)
	add(tagNamespace, ls.Get(model.LabelNamespace))
	add(tagNodename, node)
	add(tagPod, ls.Get(model.LabelPod))
	add(tagSink, ls.Get(model.LabelSink))
	add(tagType, l.Heapster())
	add(tagWorkloadKind, ls.Get(model.LabelWorkloadKind))
	add(tagWorkload, ls.Get(model.LabelWorkload))
	return dst
}

// learnLabels remembers the pods' labels from the batch's pod info series
// (the newest non-stale sample of each pod wins), and forgets pods whose
// info was not seen for labelsTTL.
func (w *Writer) learnLabels(batch []sink.Series) {
	w.labelsMu.Lock()
	defer w.labelsMu.Unlock()
	var newest int64
	for i := range batch {
		s := &batch[i]
		l, m, ok := model.ParseSeriesName(s.Labels.Get(labels.MetricName))
		if !ok || m != model.Info || l != model.LevelPod {
			continue
		}
		for j := len(s.Samples) - 1; j >= 0; j-- {
			sm := s.Samples[j]
			if value.IsStaleNaN(sm.V) {
				continue
			}
			k := podKey{s.Labels.Get(model.LabelNamespace), s.Labels.Get(model.LabelPod)}
			if old, ok := w.podLabels[k]; !ok || sm.T >= old.t {
				w.podLabels[k] = podLabels{s.Labels.Get(model.LabelKubeLabels), sm.T}
			}
			newest = max(newest, sm.T)
			break
		}
	}
	ttl := labelsTTL.Milliseconds()
	if newest-w.swept > ttl/6 {
		for k, p := range w.podLabels {
			if p.t < newest-ttl {
				delete(w.podLabels, k)
			}
		}
		w.swept = newest
	}
}

// Observe learns the pods' labels from a batch delivered before a restart
// (sink.Observer).
func (w *Writer) Observe(batch []sink.Series) { w.learnLabels(batch) }

func (w *Writer) labelsOf(ls labels.Labels) string {
	w.labelsMu.Lock()
	defer w.labelsMu.Unlock()
	return w.podLabels[podKey{ls.Get(model.LabelNamespace), ls.Get(model.LabelPod)}].labels
}

// Write sends the batch's points, MaxPointsPerRequest a request. A request
// that fails with a retryable error ends the Write at once (the whole batch
// is sent again later, which is harmless: InfluxDB overwrites identical
// points); after one that fails otherwise the rest are still sent and the
// first such error is returned.
func (w *Writer) Write(ctx context.Context, batch []sink.Series) error {
	if !w.v2 {
		if err := w.ensureDatabase(ctx); err != nil {
			return err
		}
	}
	w.learnLabels(batch)
	nm := &plainNames
	if w.o.WithFields {
		nm = &fieldsNames
	}
	var (
		enc      lineprotocol.Encoder
		tags     []tag
		pending  int
		firstErr error
	)
	enc.SetPrecision(lineprotocol.Millisecond)
	flush := func() error {
		if pending == 0 {
			return nil
		}
		n := pending
		err := w.send(ctx, enc.Bytes(), n)
		pending = 0
		// A new buffer: the transport may still read the old one (an
		// uncompressed body) after an early answer.
		enc.SetBuffer(nil)
		if err == nil {
			return nil
		}
		w.n.failed.Add(uint64(n))
		if retry, _ := sink.IsRetryable(err); retry {
			return err
		}
		if firstErr == nil {
			firstErr = err
		}
		return nil
	}
	for i := range batch {
		s := &batch[i]
		l, m, ok := model.ParseSeriesName(s.Labels.Get(labels.MetricName))
		switch {
		case !ok:
			w.n.unknown.Add(uint64(len(s.Samples)))
			continue
		case m == model.Info:
			w.n.info.Add(uint64(len(s.Samples)))
			continue
		case nm[l][m].measurement == "":
			w.n.noHeapster.Add(uint64(len(s.Samples)))
			continue
		}
		n := nm[l][m]
		podLabels := ""
		if l == model.LevelPod || l == model.LevelContainer {
			podLabels = w.labelsOf(s.Labels)
		}
		tags = w.tagsOf(tags[:0], l, s.Labels, podLabels)
		scale := model.Metrics[m].HeapsterScale
		for _, sm := range s.Samples {
			if value.IsStaleNaN(sm.V) {
				w.n.stale.Add(1)
				continue
			}
			v, ok := lineprotocol.FloatValue(sm.V * scale)
			if !ok {
				w.n.nonFinite.Add(1)
				continue
			}
			enc.StartLine(n.measurement)
			for _, t := range tags {
				enc.AddTag(t.k, t.v)
			}
			enc.AddField(n.field, v)
			enc.EndLine(time.UnixMilli(sm.T))
			if enc.Err() != nil {
				// The encoder dropped the line.
				w.n.invalid.Add(1)
				enc.ClearErr()
				continue
			}
			if pending++; pending == MaxPointsPerRequest {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return firstErr
}

var gzipPool = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

// send posts one request of n points; on a 404 "database not found" (1.x)
// it creates the database and sends once more.
func (w *Writer) send(ctx context.Context, lines []byte, n int) error {
	body := lines
	if !w.o.DisableGzip {
		var buf bytes.Buffer
		buf.Grow(len(lines) / 4)
		zw := gzipPool.Get().(*gzip.Writer)
		zw.Reset(&buf)
		_, _ = zw.Write(lines) // a bytes.Buffer does not fail
		_ = zw.Close()
		gzipPool.Put(zw)
		body = buf.Bytes()
	}
	for attempt := 0; ; attempt++ {
		status, err := w.post(ctx, body)
		if err == nil {
			w.n.points.Add(uint64(n))
			w.n.requests.Add(1)
			return nil
		}
		if w.v2 || attempt > 0 || status != http.StatusNotFound || !strings.Contains(err.Error(), "database not found") {
			return err
		}
		// The database was dropped since it was created: create it again.
		w.mu.Lock()
		w.created = false
		w.mu.Unlock()
		if cerr := w.ensureDatabase(ctx); cerr != nil {
			return cerr
		}
		w.mu.Lock()
		cerr := w.createErr
		w.mu.Unlock()
		if cerr != nil {
			return fmt.Errorf("%w (creating it failed: %w)", err, cerr)
		}
	}
}

// post sends one write request and classifies its outcome.
func (w *Writer) post(ctx context.Context, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, w.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.writeURL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	if !w.o.DisableGzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	w.authorize(req)
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, sink.Retryable(fmt.Errorf("influxdb: write: %w", err), 0)
	}
	defer resp.Body.Close()
	if err := sink.CheckResponse(resp); err != nil {
		return resp.StatusCode, fmt.Errorf("influxdb: write to %s: %w", w.target(), err)
	}
	return resp.StatusCode, nil
}

func (w *Writer) authorize(req *http.Request) {
	switch {
	case w.v2 && w.o.Token != "":
		req.Header.Set("Authorization", "Token "+w.o.Token)
	case !w.v2 && w.o.User != "":
		req.SetBasicAuth(w.o.User, w.o.Password)
	}
}

func (w *Writer) target() string {
	if w.v2 {
		return "bucket " + w.o.Bucket
	}
	if w.o.RetentionPolicy != "" {
		return "database " + w.o.Database + ", retention policy " + w.o.RetentionPolicy
	}
	return "database " + w.o.Database
}

// ensureDatabase creates the database and the retention policy unless done
// already. A creation the server refuses for good (a user without admin
// rights) is not retried: writes go on, to a database that may well exist.
func (w *Writer) ensureDatabase(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.created {
		return nil
	}
	stmts := []string{"CREATE DATABASE " + quoteIdent(w.o.Database)}
	if w.o.RetentionPolicy != "" && w.o.RetentionDuration > 0 {
		stmts = append(stmts, fmt.Sprintf("CREATE RETENTION POLICY %s ON %s DURATION %s REPLICATION 1 DEFAULT",
			quoteIdent(w.o.RetentionPolicy), quoteIdent(w.o.Database), durationLit(w.o.RetentionDuration)))
	}
	w.createErr = nil
	for i, q := range stmts {
		err := w.query(ctx, q)
		if err != nil && i == 1 && (strings.Contains(err.Error(), "already exists") || strings.Contains(err.Error(), "conflicts with an existing policy")) {
			// A policy of that name with other settings: make it ours.
			err = w.query(ctx, fmt.Sprintf("ALTER RETENTION POLICY %s ON %s DURATION %s REPLICATION 1 DEFAULT",
				quoteIdent(w.o.RetentionPolicy), quoteIdent(w.o.Database), durationLit(w.o.RetentionDuration)))
		}
		if err != nil {
			if retry, _ := sink.IsRetryable(err); retry {
				return err
			}
			// Not retried; the write's own answer tells whether it mattered.
			w.createErr = err
			break
		}
	}
	w.created = true
	return nil
}

// query runs one InfluxQL statement through POST /query.
func (w *Writer) query(ctx context.Context, q string) error {
	ctx, cancel := context.WithTimeout(ctx, w.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.queryURL, strings.NewReader(url.Values{"q": {q}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w.authorize(req)
	resp, err := w.client.Do(req)
	if err != nil {
		return sink.Retryable(fmt.Errorf("influxdb: %s: %w", q, err), 0)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("influxdb: %s: %w", q, sink.CheckResponse(resp))
	}
	var res struct {
		Error   string `json:"error"`
		Results []struct {
			Error string `json:"error"`
		} `json:"results"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&res); err != nil {
		return fmt.Errorf("influxdb: %s: reading the answer: %w", q, err)
	}
	if res.Error != "" {
		return fmt.Errorf("influxdb: %s: %s", q, res.Error)
	}
	for _, r := range res.Results {
		if r.Error != "" {
			return fmt.Errorf("influxdb: %s: %s", q, r.Error)
		}
	}
	return nil
}

// quoteIdent quotes an InfluxQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

// durationLit spells d as an InfluxQL duration literal in its largest
// whole unit up to days ("7d", "36h", "90m").
func durationLit(d time.Duration) string {
	for _, u := range []struct {
		d    time.Duration
		unit string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if d%u.d == 0 {
			return fmt.Sprintf("%d%s", d/u.d, u.unit)
		}
	}
	return fmt.Sprintf("%dms", d.Milliseconds())
}

var _ sink.Writer = (*Writer)(nil)
