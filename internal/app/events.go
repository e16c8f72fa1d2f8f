package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"

	"github.com/kubemon/kubemon/internal/api/eventsapi"
	"github.com/kubemon/kubemon/internal/config"
	"github.com/kubemon/kubemon/internal/events"
	"github.com/kubemon/kubemon/internal/sink"
)

// EventFeed puts events into the store from somewhere other than the
// Kubernetes API until ctx ends (demo: events.PodFeed over the simulator's
// pods).
type EventFeed func(ctx context.Context, store events.Putter) error

// eventsPart is the running events store; close stops the group and then
// closes the store's file.
type eventsPart struct {
	store *events.Store
	g     *group
}

func (e *eventsPart) close(log *slog.Logger) {
	if e == nil {
		return
	}
	e.g.stop() // the watcher, feed and sinks write and read the file
	if err := e.store.Close(); err != nil {
		log.Error("closing the events store", "err", err)
	}
}

// startEvents opens the events store in <dataDir>/events, serves it at
// GET /api/v1/events on mux, starts the event sinks (before anything is
// written, so a new sink starts at the present), the retention loop, and
// the source of events: feed when given, else a watch of the Kubernetes
// API kube reaches (none without it). It returns nil when events are off.
func startEvents(cfg config.Config, kube kubernetes.Interface, feed EventFeed, mux *http.ServeMux,
	log *slog.Logger, reg prometheus.Registerer, g *group) (*eventsPart, error) {
	if !cfg.Events.Enabled {
		return nil, nil
	}
	st, err := events.Open(events.Options{
		Dir: filepath.Join(cfg.DataDir, "events"), Retention: cfg.EventsRetention(), MaxBytes: int64(cfg.Events.MaxSize),
		Logger: log.With("component", "events"), Registerer: reg,
	})
	if err != nil {
		return nil, err
	}
	part := &eventsPart{store: st, g: g}
	ok := false
	defer func() {
		if !ok {
			part.close(log)
		}
	}()
	eventsapi.New(eventsapi.Options{Store: st, Logger: log}).Register(mux)
	if err := startEventSinks(cfg, st, log, reg, g.run); err != nil {
		return nil, err
	}
	g.run("events retention", st.Run)
	switch {
	case feed != nil:
		g.run("events feed", func(ctx context.Context) error { return feed(ctx, st) })
	case kube != nil:
		w, err := events.NewWatcher(events.WatchOptions{Client: kube, Store: st, Logger: log, Registerer: reg})
		if err != nil {
			return nil, err
		}
		g.run("events watch", w.Run)
	default:
		log.Info("no Kubernetes API: no events are watched (/api/v1/events serves what the store holds)")
	}
	ok = true
	return part, nil
}

// startEventSinks runs an EventExporter for every sink that takes events.
func startEventSinks(cfg config.Config, st *events.Store, log *slog.Logger, reg prometheus.Registerer, goRun func(string, func(context.Context) error)) error {
	sinks := append([]config.Sink(nil), cfg.Sinks...)
	config.NameSinks(sinks)
	for _, s := range sinks {
		if !s.ExportsEvents() {
			continue
		}
		w, _, _, err := newWriter(s)
		if err != nil {
			return fmt.Errorf("sink %s: %w", s.Name, err)
		}
		ew, ok := w.(sink.EventWriter)
		if !ok {
			return fmt.Errorf("sink %s: a %s sink does not take events", s.Name, s.Type)
		}
		e, err := sink.NewEventExporter(sink.EventOptions{
			Name: s.Name, Writer: ew, Log: eventLog{st}, Dir: filepath.Join(cfg.DataDir, "sinks"),
			Timeout: s.Timeout, Logger: log, Registerer: reg,
		})
		if err != nil {
			return err
		}
		log.Info("event sink configured", "sink", s.Name, "type", s.Type, "url", redact(s.URL), "position", e.Position())
		goRun("event sink "+s.Name, e.Run)
	}
	return nil
}

// eventLog is the events store as the sinks read it.
type eventLog struct{ *events.Store }

func (l eventLog) After(ctx context.Context, seq uint64, n int) ([]sink.Event, error) {
	ls, err := l.Store.After(ctx, seq, n)
	out := make([]sink.Event, len(ls))
	for i, e := range ls {
		out[i] = sink.Event{Seq: e.Seq, Received: e.Received, Time: e.Time, Event: e.Event}
	}
	return out, err
}
