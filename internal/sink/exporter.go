package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// Options configure an Exporter. Zero values take the defaults noted.
type Options struct {
	// Name names the sink in metrics, logs and its position file.
	Name string
	// Writer sends the batches.
	Writer Writer
	// Store is what is exported: kubemon's store.
	Store storage.Queryable
	// Dir holds the sink's position file (kubemon uses <dataDir>/sinks).
	Dir string
	// Interval is how often new data is looked for; default 15 s.
	Interval time.Duration
	// Settle is how far behind the present the sink reads: a sample may be
	// stored up to this long after its timestamp (a scrape's samples carry
	// the time it began), so a range is read only once nothing more can
	// land in it; default 15 s.
	Settle time.Duration
	// MaxWindow bounds the time range read at once (catching up after an
	// outage reads window after window); default 1 minute.
	MaxWindow time.Duration
	// BatchSize is the most samples per Write; default 2,000.
	BatchSize int
	// Shards is how many Writes run at once. Series are assigned to shards
	// by a hash of their labels, so each series' samples arrive in order;
	// default 1.
	Shards int
	// Timeout bounds one Write; default 30 s.
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the exponential delay between
	// retries of a batch; defaults 500 ms and 30 s. A Retry-After the
	// server gives is honoured up to 5 minutes.
	MinBackoff, MaxBackoff time.Duration
	// MaxLag is the budget of a sink that falls behind: data older than
	// MaxLag is skipped (counted in samples_dropped_total and logged).
	// 0 keeps everything the store still holds (its retention).
	MaxLag     time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
}

func (o *Options) defaults() {
	if o.Interval <= 0 {
		o.Interval = 15 * time.Second
	}
	if o.Settle <= 0 {
		o.Settle = 15 * time.Second
	}
	if o.MaxWindow <= 0 {
		o.MaxWindow = time.Minute
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 2000
	}
	if o.Shards <= 0 {
		o.Shards = 1
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(30*time.Second, o.MinBackoff)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// maxRetryAfter caps the delay a server may ask for.
const maxRetryAfter = 5 * time.Minute

// Exporter delivers what the store holds to one Writer: it reads the store
// window by window from its position, sends each window's samples in
// batches over its shards, retries what may succeed later, and moves its
// position (kept in a file, batch by batch) only past what was delivered or
// refused for good. Scraping and storing never wait for it.
type Exporter struct {
	o   Options
	pos *positionFile
	m   *exporterMetrics
	// rate is the recent number of samples per second of stored data, for
	// the pending estimate (float64 bits).
	rate atomic.Uint64
}

// NewExporter returns an Exporter; Run drives it.
func NewExporter(o Options) (*Exporter, error) {
	o.defaults()
	if o.Name == "" || o.Writer == nil || o.Store == nil || o.Dir == "" {
		return nil, errors.New("sink: name, writer, store and directory are required")
	}
	pos, err := openPosition(o.Dir, o.Name)
	if err != nil {
		return nil, err
	}
	e := &Exporter{o: o, pos: pos}
	e.m = newExporterMetrics(o.Name, e)
	if o.Registerer != nil {
		if err := e.m.register(o.Registerer); err != nil {
			return nil, fmt.Errorf("sink %s: %w", o.Name, err)
		}
	}
	return e, nil
}

// Run exports until ctx ends. It returns nil then; it fails only when the
// position cannot be written (the sink would otherwise resend forever).
func (e *Exporter) Run(ctx context.Context) error {
	log := e.o.Logger.With("sink", e.o.Name)
	st := e.pos.get()
	if st.To == 0 {
		// A new sink starts at the present: the history before it was
		// configured is not sent.
		st = position{To: e.o.Now().Add(-e.o.Settle).UnixMilli()}
		if err := e.pos.save(st); err != nil {
			return err
		}
		log.Info("sink starts at the present", "from", time.UnixMilli(st.To).UTC())
	} else {
		log.Info("sink resumes from its position", "from", time.UnixMilli(st.To).UTC(), "lag", e.o.Now().Sub(time.UnixMilli(st.To)).Round(time.Second))
	}
	for {
		now := e.o.Now()
		upTo := now.Add(-e.o.Settle).UnixMilli()
		st = e.pos.get()
		if st.Acked == nil {
			if oldest, ok := e.oldestBlock(); ok && oldest-1 > st.To && oldest <= upTo {
				if err := e.expired(ctx, log, st.To, oldest-1); err != nil {
					return err
				}
				st = e.pos.get()
			}
		}
		if st.Acked == nil && e.o.MaxLag > 0 && upTo-st.To > e.o.MaxLag.Milliseconds() {
			// Skip the oldest data, then send from there in this same
			// iteration: checking the budget again first would skip
			// again whenever counting took a moment, and never send.
			if err := e.skip(ctx, log, st.To, upTo-e.o.MaxLag.Milliseconds()); err != nil {
				return err
			}
			st = e.pos.get()
		}
		if st.Acked != nil || upTo > st.To {
			w := st
			if w.Acked == nil { // a new window
				w = position{From: st.To, To: min(upTo, st.To+e.o.MaxWindow.Milliseconds()),
					Shards: e.o.Shards, BatchSize: e.o.BatchSize, Acked: make([]int, e.o.Shards)}
			}
			err := e.exportWindow(ctx, log, w)
			var re *readError
			switch {
			case ctx.Err() != nil:
				return nil //nolint:nilerr // stopping is not a failure
			case errors.As(err, &re):
				log.Warn("reading the store for the sink failed; retrying next interval", "err", err)
			case err != nil:
				return err
			default:
				if w.To < upTo {
					continue // catching up
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(e.o.Interval):
		}
	}
}

// delivered is the time (Unix ms) up to which every stored sample was
// delivered or refused for good: the position, or the start of the window
// being sent; 0 before the first position.
func (e *Exporter) delivered() int64 {
	st := e.pos.get()
	if st.Acked != nil {
		return st.From
	}
	return st.To
}

// Name is the sink's name, as its self-metrics' sink label has it.
func (e *Exporter) Name() string { return e.o.Name }

// Lag is how far behind the present the delivered data ends, in seconds
// (kubemon_sink_lag_seconds); ok is false before the sink has a position.
func (e *Exporter) Lag() (seconds float64, ok bool) {
	return e.lag(), e.delivered() != 0
}

// lag is how far behind the present the delivered data ends, in seconds.
func (e *Exporter) lag() float64 {
	d := e.delivered()
	if d == 0 {
		return 0
	}
	return max(0, e.o.Now().Sub(time.UnixMilli(d)).Seconds())
}

// pending estimates the samples stored but not yet delivered: the lag
// beyond the settle time × the recent samples per second.
func (e *Exporter) pending() float64 {
	return math.Float64frombits(e.rate.Load()) * max(0, e.lag()-e.o.Settle.Seconds())
}

// bytesPerSample is a raw sample's size (an int64 time and a float64),
// used to express the pending estimate in bytes.
const bytesPerSample = 16

// skip moves the position from "from" to "to" without sending: the sink is
// further behind than its budget. The skipped samples are counted.
func (e *Exporter) skip(ctx context.Context, log *slog.Logger, from, to int64) error {
	n, err := e.count(ctx, from, to)
	if err != nil && ctx.Err() == nil {
		log.Warn("counting the samples skipped", "err", err)
	}
	return e.passOver(log, from, to, n, "sink is behind more than its budget (maxLag): oldest data skipped", "samples", n, "maxLag", e.o.MaxLag)
}

// passOver moves the position from "from" to "to", counting the n samples
// there as dropped and logging msg with the range and attrs.
func (e *Exporter) passOver(log *slog.Logger, from, to int64, n int, msg string, attrs ...any) error {
	e.m.dropped.Add(float64(n))
	log.Warn(msg, append([]any{"from", time.UnixMilli(from).UTC(), "to", time.UnixMilli(to).UTC()}, attrs...)...)
	return e.pos.save(position{To: to})
}

// oldestBlock returns the start of the store's oldest block (Unix ms),
// when the store is a TSDB with blocks. Retention deletes whole blocks,
// oldest first, so data before it that the sink has not delivered is gone.
func (e *Exporter) oldestBlock() (int64, bool) {
	db, ok := e.o.Store.(interface{ BlockMetas() []tsdb.BlockMeta })
	if !ok {
		return 0, false
	}
	bs := db.BlockMetas()
	if len(bs) == 0 {
		return 0, false
	}
	return bs[0].MinTime, true
}

// expired moves the position from "from" to "to": the store's retention
// (retention or retentionSize) removed that data before the sink delivered
// it. The samples lost are estimated from the window that follows and
// counted as dropped.
func (e *Exporter) expired(ctx context.Context, log *slog.Logger, from, to int64) error {
	win := e.o.MaxWindow.Milliseconds()
	n, err := e.count(ctx, to, to+win)
	if err != nil && ctx.Err() == nil {
		log.Warn("counting the samples after the expired range", "err", err)
	}
	lost := int(float64(n) / float64(win) * float64(to-from))
	return e.passOver(log, from, to, lost, "the store removed data before the sink delivered it (retention or retentionSize): it is lost for this sink",
		"estimatedSamples", lost)
}

func (e *Exporter) count(ctx context.Context, from, to int64) (int, error) {
	n := 0
	err := e.read(ctx, from, to, anySeries, func(_ labels.Labels, s []Sample) { n += len(s) })
	return n, err
}

// anySeries matches every series.
var anySeries = labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+")

// phases are the parts of a window, sent one after the other: the info
// series first (writers such as InfluxDB's take a pod's labels from its info
// series for the pod's other series), and the rest once every info batch is
// delivered, so the order holds over any number of shards.
var phases = []*labels.Matcher{
	labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+_info"),
	labels.MustNewMatcher(labels.MatchNotRegexp, labels.MetricName, ".+_info"),
}

// read calls f with every series matching m that holds samples in
// (from, to], in a stable order (sorted by labels).
func (e *Exporter) read(ctx context.Context, from, to int64, m *labels.Matcher, f func(labels.Labels, []Sample)) error {
	q, err := e.o.Store.Querier(from+1, to)
	if err != nil {
		return err
	}
	defer q.Close()
	ss := q.Select(ctx, true, &storage.SelectHints{Start: from + 1, End: to}, m)
	var it chunkenc.Iterator
	var buf []Sample
	for ss.Next() {
		s := ss.At()
		it = s.Iterator(it)
		buf = buf[:0]
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			if vt != chunkenc.ValFloat {
				continue // kubemon stores floats only
			}
			t, v := it.At()
			if t <= from || t > to {
				continue
			}
			buf = append(buf, Sample{T: t, V: v})
		}
		if err := it.Err(); err != nil {
			return err
		}
		if len(buf) > 0 {
			f(s.Labels(), buf)
		}
	}
	return ss.Err()
}

// exportWindow sends the samples in (w.From, w.To], phase by phase,
// skipping the batches already acknowledged (w.Acked, per shard), and saves
// the position after every batch. A window is read in the same order each
// time, so after a restart the same batches are formed and only the rest is
// sent.
func (e *Exporter) exportWindow(ctx context.Context, log *slog.Logger, w position) error {
	if w.Shards != e.o.Shards || w.BatchSize != e.o.BatchSize || len(w.Acked) != w.Shards {
		// The sharding changed since the position was saved: the batches
		// differ, so the window is sent whole (receivers ignore exact
		// duplicates).
		log.Info("sharding changed since the last run: resending the current window whole", "shards", e.o.Shards, "batchSize", e.o.BatchSize)
		w = position{From: w.From, To: w.To, Shards: e.o.Shards, BatchSize: e.o.BatchSize, Acked: make([]int, e.o.Shards)}
	}
	if err := e.pos.save(w); err != nil {
		return err
	}
	ws := &windowSend{e: e, log: log, w: w, delivered: slices.Clone(w.Acked), formed: make([]int, e.o.Shards)}
	total := 0
	for _, m := range phases {
		n, err := ws.phase(ctx, m)
		total += n
		if err != nil {
			return err
		}
	}
	if secs := float64(w.To-w.From) / 1000; secs > 0 {
		e.rate.Store(math.Float64bits(float64(total) / secs))
	}
	return e.pos.save(position{To: w.To})
}

// windowSend is one window being sent.
type windowSend struct {
	e         *Exporter
	log       *slog.Logger
	delivered []int // batches acknowledged before this run, per shard: not sent again
	formed    []int // batches formed so far in this window, per shard

	mu      sync.Mutex // guards w.Acked and the position file
	w       position
	saveErr error
}

// phase reads the window's series matching m and sends them over the
// shards; it returns once every batch formed was delivered (or refused for
// good), with the number of samples read.
func (ws *windowSend) phase(ctx context.Context, m *labels.Matcher) (int, error) {
	e := ws.e
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type shard struct {
		batch   []Series
		samples int
		ch      chan []Series
	}
	shards := make([]*shard, e.o.Shards)
	var wg sync.WaitGroup
	for i := range shards {
		sh := &shard{ch: make(chan []Series, 1)}
		shards[i] = sh
		wg.Go(func() {
			for b := range sh.ch {
				if !e.send(ctx, ws.log, b) {
					cancel()
					for range sh.ch { // drain, so the reader never blocks
					}
					return
				}
				ws.mu.Lock()
				ws.w.Acked[i]++
				if err := e.pos.save(ws.w); err != nil && ws.saveErr == nil {
					ws.saveErr = err
					cancel()
				}
				ws.mu.Unlock()
			}
		})
	}
	flush := func(i int) {
		sh := shards[i]
		if len(sh.batch) == 0 {
			return
		}
		b := sh.batch
		sh.batch, sh.samples = nil, 0
		ws.formed[i]++
		if ws.formed[i] <= ws.delivered[i] {
			// Delivered before a restart: not sent again, only shown.
			if o, ok := e.o.Writer.(Observer); ok {
				o.Observe(b)
			}
			return
		}
		select {
		case sh.ch <- b:
		case <-ctx.Done():
		}
	}
	total := 0
	err := e.read(ctx, ws.w.From, ws.w.To, m, func(ls labels.Labels, samples []Sample) {
		total += len(samples)
		i := int(ls.Hash() % uint64(len(shards)))
		sh := shards[i]
		for len(samples) > 0 {
			n := min(len(samples), e.o.BatchSize-sh.samples)
			sh.batch = append(sh.batch, Series{Labels: ls, Samples: append([]Sample(nil), samples[:n]...)})
			sh.samples += n
			samples = samples[n:]
			if sh.samples >= e.o.BatchSize {
				flush(i)
			}
		}
	})
	if err == nil {
		for i := range shards {
			flush(i)
		}
	}
	for _, sh := range shards {
		close(sh.ch)
	}
	wg.Wait()
	if err != nil && ctx.Err() == nil {
		return total, &readError{err}
	}
	if ws.saveErr != nil {
		return total, ws.saveErr
	}
	return total, ctx.Err()
}

// readError is a failure to read the store: retried, never fatal.
type readError struct{ err error }

func (e *readError) Error() string { return "reading the store: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// send delivers one batch, retrying while the error is retryable; it
// returns false only when ctx ended first.
func (e *Exporter) send(ctx context.Context, log *slog.Logger, b []Series) bool {
	n := 0
	for i := range b {
		n += len(b[i].Samples)
	}
	backoff := e.o.MinBackoff
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			e.m.retried.Add(float64(n))
		}
		wctx, cancel := context.WithTimeout(ctx, e.o.Timeout)
		start := time.Now()
		err := e.o.Writer.Write(wctx, b)
		cancel()
		e.m.latency.Observe(time.Since(start).Seconds())
		if err == nil {
			e.m.sent.Add(float64(n))
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		retry, after := IsRetryable(err)
		if !retry {
			e.m.failed.Add(float64(n))
			log.Error("sink refused a batch; it is not retried", "samples", n, "err", err)
			return true
		}
		wait := backoff
		if after > 0 {
			wait = min(after, maxRetryAfter)
		}
		backoff = min(2*backoff, e.o.MaxBackoff)
		if attempt == 0 || attempt%10 == 0 {
			log.Warn("sink write failed; retrying", "samples", n, "attempt", attempt+1, "in", wait, "err", err)
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
	}
}

type exporterMetrics struct {
	sent, failed, retried, dropped prometheus.Counter
	pendingSamples, pendingBytes   prometheus.GaugeFunc
	lag, position                  prometheus.GaugeFunc
	latency                        prometheus.Histogram
}

// newExporterMetrics returns e's metrics; the gauges are computed from e's
// position when they are collected, so they move while a batch is retried.
func newExporterMetrics(name string, e *Exporter) *exporterMetrics {
	cl := prometheus.Labels{"sink": name}
	counter := func(n, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "kubemon", Subsystem: "sink", Name: n, Help: help, ConstLabels: cl})
	}
	gauge := func(n, help string, f func() float64) prometheus.GaugeFunc {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "kubemon", Subsystem: "sink", Name: n, Help: help, ConstLabels: cl}, f)
	}
	return &exporterMetrics{
		sent:           counter("samples_sent_total", "Samples the sink accepted."),
		failed:         counter("samples_failed_total", "Samples in batches the sink refused for good (4xx other than 429); not retried."),
		retried:        counter("samples_retried_total", "Samples sent again after a retryable failure (timeout, 429, 5xx)."),
		dropped:        counter("samples_dropped_total", "Samples never sent: skipped because the sink fell further behind than its budget (maxLag), or removed by the store's retention before delivery (estimated from the data that follows)."),
		pendingSamples: gauge("pending_samples", "Estimated samples stored but not yet delivered (lag beyond the settle time × recent samples per second).", e.pending),
		pendingBytes:   gauge("pending_bytes", "Estimated raw size of the pending samples, in bytes (16 per sample).", func() float64 { return e.pending() * bytesPerSample }),
		lag:            gauge("lag_seconds", "Age of the sink's position: how far behind the present its delivered data ends, in seconds (at least the settle time).", e.lag),
		position:       gauge("position_timestamp_seconds", "Unix time up to which every stored sample was delivered or refused.", func() float64 { return float64(e.delivered()) / 1000 }),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "kubemon", Subsystem: "sink", Name: "request_duration_seconds",
			Help: "Duration of one write to the sink, in seconds.", ConstLabels: cl, Buckets: prometheus.ExponentialBuckets(0.005, 3, 10)}),
	}
}

func (m *exporterMetrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.sent, m.failed, m.retried, m.dropped, m.pendingSamples, m.pendingBytes, m.lag, m.position, m.latency} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}
