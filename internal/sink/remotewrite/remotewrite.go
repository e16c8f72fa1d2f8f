// Package remotewrite is the sink that sends kubemon's series to a
// Prometheus remote write 1.0 endpoint: Prometheus itself (with
// --web.enable-remote-write-receiver), Thanos Receive, Cortex, Mimir,
// VictoriaMetrics and anything else that speaks the protocol.
//
// A request is a prompb.WriteRequest, protobuf-encoded and
// snappy-block-compressed, POSTed with the headers the specification asks
// for (Content-Encoding: snappy, Content-Type: application/x-protobuf,
// X-Prometheus-Remote-Write-Version: 0.1.0, User-Agent kubemon/<version>).
// The client is written here rather than taken from Prometheus'
// storage/remote, whose client hides the server's Retry-After and whose
// queue cannot resume from kubemon's stored position: the Exporter
// (internal/sink) reads the store, batches and retries; a Writer only
// encodes and sends one batch.
package remotewrite

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/common/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/kubemon/kubemon/internal/sink"
	"github.com/kubemon/kubemon/internal/version"
)

// Defaults of Options, those of Prometheus' own remote_write.
const (
	// DefaultTimeout is Options.Timeout's default (Prometheus'
	// remote_timeout).
	DefaultTimeout = 30 * time.Second
	// DefaultMaxSamplesPerSend is Options.MaxSamplesPerSend's default
	// (Prometheus' queue_config.max_samples_per_send).
	DefaultMaxSamplesPerSend = 2000
)

// Options configure a Writer. Only URL is required.
type Options struct {
	// URL is the remote write endpoint, e.g.
	// http://prometheus:9090/api/v1/write (Prometheus 2.33+ with
	// --web.enable-remote-write-receiver), http://thanos-receive:19291/api/v1/receive,
	// http://mimir:8080/api/v1/push or http://victoriametrics:8428/api/v1/write.
	// The scheme is http or https. Credentials in the URL are sent as basic
	// auth by Go's HTTP client and are redacted from error messages.
	URL string

	// Timeout bounds each HTTP request (connecting, sending, reading the
	// answer), as a duration; 0 means DefaultTimeout (30 s). The deadline
	// of the context given to Write applies as well, whichever comes first.
	Timeout time.Duration

	// MaxSamplesPerSend is the most samples (not series) in one request;
	// a larger batch is split into several requests, sent one after the
	// other in the batch's order (a series with more samples than this is
	// split too, its samples staying in time order). 0 means
	// DefaultMaxSamplesPerSend (2,000).
	MaxSamplesPerSend int

	// ExternalLabels are added to every series sent, e.g.
	// {"cluster": "prod"} to tell clusters apart in a shared backend.
	// As with Prometheus' global external_labels, a label the series
	// already has wins: the external label of the same name is not added
	// to that series. Names must match [a-zA-Z_][a-zA-Z0-9_]* and must not
	// start with "__" (reserved); values must not be empty.
	ExternalLabels map[string]string

	// Headers are extra HTTP headers sent with every request, e.g.
	// X-Scope-OrgID (the tenant of Cortex, Mimir and Loki) or
	// THANOS-TENANT. Headers the protocol or the authentication set
	// (Authorization, Content-Type, Content-Encoding, User-Agent,
	// X-Prometheus-Remote-Write-Version, Host, ...) are refused.
	Headers map[string]string

	// Username and Password (or PasswordFile, a file holding the password,
	// read again on each request so a rotated secret is picked up) set
	// HTTP basic authentication. At most one of Password and PasswordFile.
	Username     string
	Password     string
	PasswordFile string

	// BearerToken (or BearerTokenFile, a file holding it, read again on
	// each request) is sent as "Authorization: Bearer <token>". At most
	// one of the two, and not together with basic authentication.
	BearerToken     string
	BearerTokenFile string

	// CAFile is a PEM file of the certificate authorities that verify the
	// server's certificate (the system's roots when empty).
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// servers that authenticate clients by certificate (both or neither).
	CertFile string
	KeyFile  string
	// ServerName is the name the server's certificate is verified against
	// (and sent in SNI) when it differs from the URL's host.
	ServerName string
	// InsecureSkipVerify disables verification of the server's
	// certificate. For tests only.
	InsecureSkipVerify bool
}

// Writer sends batches to one remote write endpoint. It implements
// sink.Writer and is safe for concurrent use.
type Writer struct {
	url       string // as configured, for requests
	name      string // redacted, for error messages
	client    *http.Client
	timeout   time.Duration
	max       int
	external  []prompb.Label // sorted by name
	userAgent string

	// progress remembers, for batches whose requests were partly settled
	// when a later one failed and may be retried, how far they got, so
	// that the Exporter's retry of the same batch does not send again what
	// the server already took (see Write).
	mu       sync.Mutex
	seed     maphash.Seed
	seq      uint64
	progress map[uint64]progress
}

// progress of a batch sent in several requests.
type progress struct {
	next           int   // requests settled: accepted, or refused for good
	refused        error // the first refusal among them
	refusedSamples int
	seq            uint64 // for eviction, oldest first
}

// maxProgress bounds the batches remembered: a few per shard is plenty, as
// an Exporter retries a batch before it sends the next one of that shard.
const maxProgress = 256

var _ sink.Writer = (*Writer)(nil)

// New checks o and builds the Writer (and its HTTP client, which reads the
// TLS files at once).
func New(o Options) (*Writer, error) {
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("remote write URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("remote write URL %q: want http:// or https:// and a host", u.Redacted())
	}
	w := &Writer{
		url:       o.URL,
		name:      u.Redacted(),
		timeout:   o.Timeout,
		max:       o.MaxSamplesPerSend,
		userAgent: "kubemon/" + version.Version,
		seed:      maphash.MakeSeed(),
		progress:  map[uint64]progress{},
	}
	if w.timeout < 0 {
		return nil, fmt.Errorf("remote write timeout %v is negative", o.Timeout)
	}
	if w.timeout == 0 {
		w.timeout = DefaultTimeout
	}
	if w.max < 0 {
		return nil, fmt.Errorf("remote write max samples per send %d is negative", o.MaxSamplesPerSend)
	}
	if w.max == 0 {
		w.max = DefaultMaxSamplesPerSend
	}
	for name, value := range o.ExternalLabels {
		if !validLabelName(name) || strings.HasPrefix(name, "__") {
			return nil, fmt.Errorf("remote write external label %q: want a name matching [a-zA-Z_][a-zA-Z0-9_]*, not starting with __", name)
		}
		if value == "" {
			return nil, fmt.Errorf("remote write external label %q has an empty value", name)
		}
		w.external = append(w.external, prompb.Label{Name: name, Value: value})
	}
	slices.SortFunc(w.external, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })

	cfg := config.HTTPClientConfig{
		// Prometheus' remote write defaults: redirects followed, HTTP/1.1.
		FollowRedirects: true,
		EnableHTTP2:     false,
		BearerToken:     config.Secret(o.BearerToken),
		BearerTokenFile: o.BearerTokenFile,
		TLSConfig: config.TLSConfig{
			CAFile:             o.CAFile,
			CertFile:           o.CertFile,
			KeyFile:            o.KeyFile,
			ServerName:         o.ServerName,
			InsecureSkipVerify: o.InsecureSkipVerify,
		},
	}
	if o.Username != "" || o.Password != "" || o.PasswordFile != "" {
		cfg.BasicAuth = &config.BasicAuth{Username: o.Username, Password: config.Secret(o.Password), PasswordFile: o.PasswordFile}
	}
	if len(o.Headers) > 0 {
		cfg.HTTPHeaders = &config.Headers{Headers: map[string]config.Header{}}
		for k, v := range o.Headers {
			cfg.HTTPHeaders.Headers[k] = config.Header{Values: []string{v}}
		}
		if err := cfg.HTTPHeaders.Validate(); err != nil {
			return nil, fmt.Errorf("remote write headers: %w", err)
		}
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("remote write TLS: a client certificate file needs its key file and the other way round")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("remote write HTTP client: %w", err)
	}
	w.client, err = config.NewClientFromConfig(cfg, "remote_write")
	if err != nil {
		return nil, fmt.Errorf("remote write HTTP client: %w", err)
	}
	return w, nil
}

func validLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' && i > 0) {
			return false
		}
	}
	return true
}

// Write sends the batch in requests of at most MaxSamplesPerSend samples,
// one after the other. Series' labels are sent sorted by name, with the
// external labels merged in; samples are sent as they are, staleness
// markers (value.StaleNaN) included, as Prometheus does.
//
// Each request stands alone, as in Prometheus' own queue: one the server
// refuses for good (a 4xx other than 429, e.g. 400 for an out-of-order
// sample) does not stop the requests after it, and Write then returns an
// error, not retryable, that counts the refused samples and carries the
// server's message. A transport error (refused connection, timeout, ctx's
// deadline) or a 429 or 5xx stops the batch with a sink.Retryable error
// (with the server's Retry-After). When that happens after some requests
// of the batch were settled, the Writer remembers it, and a Write of the
// same batch (same series, samples and order) resumes at the request that
// failed instead of sending the settled ones again, which Prometheus
// would refuse as out of order.
func (w *Writer) Write(ctx context.Context, batch []sink.Series) error {
	total := 0
	for i := range batch {
		total += len(batch[i].Samples)
	}
	if total == 0 {
		return nil
	}
	requests := (total + w.max - 1) / w.max

	var key uint64
	var p progress
	if requests > 1 {
		key = w.fingerprint(batch)
		w.mu.Lock()
		p = w.progress[key]
		w.mu.Unlock()
	}

	enc := encoder{w: w}
	var c cursor
	for i := 0; i < requests; i++ {
		var n int
		c, n = enc.chunk(batch, c, i >= p.next)
		if i < p.next {
			continue // settled by an earlier Write of this batch
		}
		err := w.send(ctx, enc.body)
		if err == nil {
			continue
		}
		if ok, _ := sink.IsRetryable(err); ok {
			if i > 0 {
				w.remember(key, progress{next: i, refused: p.refused, refusedSamples: p.refusedSamples})
			}
			if requests > 1 {
				err = fmt.Errorf("request %d of %d (%d samples): %w", i+1, requests, n, err)
			}
			return fmt.Errorf("remote write to %s: %w", w.name, err)
		}
		if p.refused == nil {
			p.refused = err
		}
		p.refusedSamples += n
	}
	if requests > 1 {
		w.forget(key)
	}
	if p.refused != nil {
		return fmt.Errorf("remote write to %s: %d of %d samples refused: %w", w.name, p.refusedSamples, total, p.refused)
	}
	return nil
}

// send POSTs one encoded request and classifies the outcome.
func (w *Writer) send(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return err // the URL was checked by New
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("User-Agent", w.userAgent)
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := w.client.Do(req)
	if err != nil {
		// The connection, TLS, a credentials file, the timeout or ctx:
		// sending again later may succeed.
		return sink.Retryable(err, 0)
	}
	defer resp.Body.Close()
	return sink.CheckResponse(resp)
}

// cursor is a position in a batch: series i, sample j.
type cursor struct{ i, j int }

// encoder builds requests, reusing its buffers from one to the next.
type encoder struct {
	w       *Writer
	ts      []prompb.TimeSeries
	labels  []prompb.Label
	samples []prompb.Sample
	spans   []span
	pb      []byte
	// body is the last request built, compressed. It is not reused: Go's
	// transport may still read a request's body after Do returned.
	body []byte
}

// span locates one series of a request in encoder.labels and .samples.
type span struct{ l0, l1, s0, s1 int }

// chunk takes the next request's worth of samples (at most MaxSamplesPerSend)
// from c, encodes it into e.body when build is true (only advancing past a
// request settled earlier otherwise), and returns where the next request
// starts and how many samples this one holds.
func (e *encoder) chunk(batch []sink.Series, c cursor, build bool) (cursor, int) {
	limit := e.w.max
	e.labels, e.samples, e.spans = e.labels[:0], e.samples[:0], e.spans[:0]
	n := 0
	for c.i < len(batch) && n < limit {
		s := batch[c.i].Samples[c.j:]
		take := min(len(s), limit-n)
		if take > 0 && build {
			sp := span{l0: len(e.labels), s0: len(e.samples)}
			e.labels = e.w.appendLabels(e.labels, batch[c.i].Labels)
			for _, x := range s[:take] {
				e.samples = append(e.samples, prompb.Sample{Timestamp: x.T, Value: x.V})
			}
			sp.l1, sp.s1 = len(e.labels), len(e.samples)
			e.spans = append(e.spans, sp)
		}
		n += take
		c.j += take
		if c.j >= len(batch[c.i].Samples) {
			c.i, c.j = c.i+1, 0
		}
	}
	if !build {
		return c, n
	}
	// The series' slices are taken once the buffers stopped growing.
	e.ts = e.ts[:0]
	for _, sp := range e.spans {
		e.ts = append(e.ts, prompb.TimeSeries{Labels: e.labels[sp.l0:sp.l1:sp.l1], Samples: e.samples[sp.s0:sp.s1:sp.s1]})
	}
	req := prompb.WriteRequest{Timeseries: e.ts}
	size := req.Size()
	if cap(e.pb) < size {
		e.pb = make([]byte, size)
	}
	e.pb = e.pb[:size]
	if _, err := req.MarshalToSizedBuffer(e.pb); err != nil {
		// Marshalling into a buffer of the computed size cannot fail.
		panic(fmt.Sprintf("remotewrite: encoding a write request: %v", err))
	}
	e.body = snappy.Encode(nil, e.pb)
	return c, n
}

// appendLabels appends the series' labels merged with the external labels,
// sorted by name; a series' own label wins over an external one of the same
// name (Prometheus' external_labels rule).
func (w *Writer) appendLabels(dst []prompb.Label, ls labels.Labels) []prompb.Label {
	ext := w.external
	ls.Range(func(l labels.Label) {
		for len(ext) > 0 && ext[0].Name < l.Name {
			dst = append(dst, ext[0])
			ext = ext[1:]
		}
		if len(ext) > 0 && ext[0].Name == l.Name {
			ext = ext[1:]
		}
		dst = append(dst, prompb.Label{Name: l.Name, Value: l.Value})
	})
	return append(dst, ext...)
}

// fingerprint identifies a batch's content, for resuming it.
func (w *Writer) fingerprint(batch []sink.Series) uint64 {
	var h maphash.Hash
	h.SetSeed(w.seed)
	var b [16]byte
	for i := range batch {
		batch[i].Labels.Range(func(l labels.Label) {
			h.WriteString(l.Name)
			h.WriteByte(0xff)
			h.WriteString(l.Value)
			h.WriteByte(0xff)
		})
		h.WriteByte(0xfe)
		for _, s := range batch[i].Samples {
			binary.LittleEndian.PutUint64(b[:8], uint64(s.T))
			binary.LittleEndian.PutUint64(b[8:], math.Float64bits(s.V))
			h.Write(b[:])
		}
	}
	return h.Sum64()
}

func (w *Writer) remember(key uint64, p progress) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seq++
	p.seq = w.seq
	if _, ok := w.progress[key]; !ok && len(w.progress) >= maxProgress {
		oldest, first := uint64(0), true
		for k, q := range w.progress {
			if first || q.seq < w.progress[oldest].seq {
				oldest, first = k, false
			}
		}
		delete(w.progress, oldest)
	}
	w.progress[key] = p
}

func (w *Writer) forget(key uint64) {
	w.mu.Lock()
	delete(w.progress, key)
	w.mu.Unlock()
}
