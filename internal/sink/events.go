package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
)

// Event is one stored Kubernetes event as an event sink gets it.
type Event struct {
	// Seq is its place in the event log's sequence.
	Seq uint64
	// Received is when kubemon stored it; Time when it last happened.
	Received, Time time.Time
	Event          *corev1.Event
}

// EventLog is the event store as event sinks read it: every write (a new
// event, or a newer version of one) has a sequence number, increasing.
type EventLog interface {
	// ID identifies the log; a position in another log's sequence does
	// not apply to it.
	ID() string
	// LastSeq is the newest write's sequence number.
	LastSeq() uint64
	// After returns up to n writes after seq, oldest first.
	After(ctx context.Context, seq uint64, n int) ([]Event, error)
}

// EventWriter sends events to one destination. Errors are classified as
// Writer's are: Retryable ones are sent again, others are dropped and
// counted.
type EventWriter interface {
	WriteEvents(ctx context.Context, evs []Event) error
}

// EventOptions configure an EventExporter. Zero values take the defaults
// noted.
type EventOptions struct {
	// Name names the sink in metrics, logs and its position file
	// (<Dir>/<Name>.events.position.json).
	Name   string
	Writer EventWriter
	Log    EventLog
	Dir    string
	// Interval is how often new events are looked for; default 5 s.
	Interval time.Duration
	// BatchSize is the most events per write; default 1,000 (Heapster's
	// eventer's).
	BatchSize int
	// Timeout bounds one write; default 30 s.
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the delay between retries of a
	// batch; defaults 500 ms and 30 s (a server's Retry-After is honoured
	// up to 5 minutes).
	MinBackoff, MaxBackoff time.Duration
	Logger                 *slog.Logger
	Registerer             prometheus.Registerer
	Now                    func() time.Time
}

// EventExporter delivers the event log's writes to one EventWriter, in
// order, from a position kept in a file (the log's ID and the sequence
// number delivered), so that a sink that is down, or a kubemon that
// restarts, loses nothing the log still holds; the log's retention and size
// cap are the budget. A new sink starts at the log's present.
type EventExporter struct {
	o    EventOptions
	path string
	pos  atomic.Uint64
	lag  atomic.Int64 // nanoseconds

	sent, failed, retried prometheus.Counter
	lagGauge, position    prometheus.GaugeFunc
}

// eventPosition is an event sink's position file.
type eventPosition struct {
	Log string `json:"log"`
	Seq uint64 `json:"seq"`
}

// NewEventExporter returns an EventExporter; Run drives it.
func NewEventExporter(o EventOptions) (*EventExporter, error) {
	if o.Name == "" || o.Writer == nil || o.Log == nil || o.Dir == "" {
		return nil, errors.New("sink: name, event writer, event log and directory are required")
	}
	if !validName.MatchString(o.Name) {
		return nil, fmt.Errorf("sink name %q: want letters, digits, '_', '.' and '-'", o.Name)
	}
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
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
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("sink %s: %w", o.Name, err)
	}
	e := &EventExporter{o: o, path: filepath.Join(o.Dir, o.Name+".events.position.json")}
	if err := e.load(); err != nil {
		return nil, err
	}
	cl := prometheus.Labels{"sink": o.Name}
	counter := func(n, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "kubemon", Subsystem: "sink", Name: n, Help: help, ConstLabels: cl})
	}
	gauge := func(n, help string, f func() float64) prometheus.GaugeFunc {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "kubemon", Subsystem: "sink", Name: n, Help: help, ConstLabels: cl}, f)
	}
	e.sent = counter("events_sent_total", "Kubernetes events (writes of the event store) the sink accepted.")
	e.failed = counter("events_failed_total", "Kubernetes events in batches the sink refused for good (4xx other than 429); not retried.")
	e.retried = counter("events_retried_total", "Kubernetes events sent again after a retryable failure (timeout, 429, 5xx).")
	e.lagGauge = gauge("events_lag_seconds", "Time since the oldest Kubernetes event not yet delivered was stored, in seconds; 0 when every stored event was delivered.",
		func() float64 { return time.Duration(e.lag.Load()).Seconds() })
	e.position = gauge("events_position", "Sequence number of the event store up to which every write was delivered or refused.",
		func() float64 { return float64(e.pos.Load()) })
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{e.sent, e.failed, e.retried, e.lagGauge, e.position} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("sink %s: %w", o.Name, err)
			}
		}
	}
	return e, nil
}

// load reads the position file; without one (a new sink) the position is
// the log's present, and is saved at once. A position in another log (the
// store's file was replaced) restarts at that log's beginning.
func (e *EventExporter) load() error {
	b, err := os.ReadFile(e.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		seq := e.o.Log.LastSeq()
		e.pos.Store(seq)
		return e.save(seq)
	case err != nil:
		return fmt.Errorf("sink %s: %w", e.o.Name, err)
	}
	var p eventPosition
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("sink %s: position file %s: %w (delete it to start the sink's events at the present)", e.o.Name, e.path, err)
	}
	if p.Log != e.o.Log.ID() {
		e.o.Logger.Warn("the event store is not the one this sink's position is in: sending all of it", "sink", e.o.Name,
			"position", e.path, "was", p.Log, "now", e.o.Log.ID())
		p.Seq = 0
	}
	e.pos.Store(p.Seq)
	return nil
}

func (e *EventExporter) save(seq uint64) error {
	b, _ := json.Marshal(eventPosition{Log: e.o.Log.ID(), Seq: seq})
	tmp := e.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return fmt.Errorf("sink %s: saving the events position: %w", e.o.Name, err)
	}
	if err := os.Rename(tmp, e.path); err != nil {
		return fmt.Errorf("sink %s: saving the events position: %w", e.o.Name, err)
	}
	return nil
}

// Position is the sequence number up to which every write was delivered.
func (e *EventExporter) Position() uint64 { return e.pos.Load() }

// Run exports until ctx ends; it returns nil then. It fails only when the
// position cannot be saved (the sink would otherwise resend forever).
func (e *EventExporter) Run(ctx context.Context) error {
	log := e.o.Logger.With("sink", e.o.Name)
	t := time.NewTicker(e.o.Interval)
	defer t.Stop()
	for {
		pos := e.pos.Load()
		batch, err := e.o.Log.After(ctx, pos, e.o.BatchSize)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			log.Error("reading the event store; retrying", "err", err)
		case len(batch) == 0:
			e.lag.Store(0)
		default:
			e.lag.Store(int64(max(0, e.o.Now().Sub(batch[0].Received))))
			if !e.send(ctx, log, batch) {
				return nil
			}
			last := batch[len(batch)-1].Seq
			if err := e.save(last); err != nil {
				return err
			}
			e.pos.Store(last)
			if len(batch) == e.o.BatchSize {
				continue // more waiting
			}
			e.lag.Store(0)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// send delivers one batch, retrying while the error is retryable; it
// returns false only when ctx ended first.
func (e *EventExporter) send(ctx context.Context, log *slog.Logger, b []Event) bool {
	n := float64(len(b))
	backoff := e.o.MinBackoff
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			e.retried.Add(n)
		}
		wctx, cancel := context.WithTimeout(ctx, e.o.Timeout)
		err := e.o.Writer.WriteEvents(wctx, b)
		cancel()
		if err == nil {
			e.sent.Add(n)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		retry, after := IsRetryable(err)
		if !retry {
			e.failed.Add(n)
			log.Error("sink refused a batch of events; it is not retried", "events", len(b), "err", err)
			return true
		}
		wait := backoff
		if after > 0 {
			wait = min(after, maxRetryAfter)
		}
		backoff = min(2*backoff, e.o.MaxBackoff)
		if attempt == 0 || attempt%10 == 0 {
			log.Warn("sink write of events failed; retrying", "events", len(b), "attempt", attempt+1, "in", wait, "err", err)
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
	}
}
