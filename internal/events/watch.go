package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// Putter stores events (Store.Put).
type Putter interface {
	Put(ctx context.Context, evs []*corev1.Event) (int, error)
}

// WatchOptions configure a Watcher. Client and Store are required.
type WatchOptions struct {
	Client kubernetes.Interface
	Store  Putter
	// PageSize is how many events one list request returns; default 500.
	PageSize int64
	// BatchSize is the most events written at once while watching;
	// default 256.
	BatchSize int
	// MinBackoff and MaxBackoff bound the exponential delay after a failed
	// list or watch; defaults 1 s and 1 min.
	MinBackoff, MaxBackoff time.Duration
	Logger                 *slog.Logger
	Registerer             prometheus.Registerer
}

// Watcher lists and watches every namespace's core/v1 Events and stores
// them. Unlike an informer it keeps no copy of the events in memory: a
// list is read page by page and stored page by page, and the watch that
// follows resumes from the last resourceVersion stored; when that is too
// old (410 Gone / Expired) it lists again. Events the API deletes (their
// TTL, one hour by default) stay in the store until its own retention.
type Watcher struct {
	o                           WatchOptions
	received, lists, errorCount prometheus.Counter
}

// NewWatcher checks o and returns its Watcher; Run drives it.
func NewWatcher(o WatchOptions) (*Watcher, error) {
	if o.Client == nil || o.Store == nil {
		return nil, errors.New("events: the watcher needs a Kubernetes client and a store")
	}
	if o.PageSize <= 0 {
		o.PageSize = 500
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 256
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(time.Minute, o.MinBackoff)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "kubemon", Subsystem: "events", Name: name, Help: help})
	}
	w := &Watcher{
		o:          o,
		received:   counter("watch_received_total", "Events received from the Kubernetes API (list items and watch notifications of added or modified events)."),
		lists:      counter("watch_lists_total", "Full lists of the Kubernetes API's events: at start, and when a watch's resourceVersion had expired (410)."),
		errorCount: counter("watch_errors_total", "Failed lists and watches of the Kubernetes API's events (each retried after a backoff)."),
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{w.received, w.lists, w.errorCount} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("events: %w", err)
			}
		}
	}
	return w, nil
}

// errExpired is a resourceVersion the API no longer has: list again.
var errExpired = errors.New("resourceVersion expired")

// Run lists and watches until ctx ends; it returns nil then. Failures are
// logged and retried with backoff, never returned: kubemon keeps running
// without events when it may not read them (RBAC), and says why.
func (w *Watcher) Run(ctx context.Context) error {
	log := w.o.Logger.With("component", "events")
	backoff := w.o.MinBackoff
	rv := ""
	fails := 0
	for ctx.Err() == nil {
		var err error
		if rv == "" {
			rv, err = w.list(ctx)
			if err == nil {
				log.Info("listed the cluster's events; watching", "resourceVersion", rv)
			}
		} else {
			rv, err = w.watch(ctx, rv)
		}
		select {
		case <-ctx.Done():
			return nil // shutting down: what failed was cut short
		default:
		}
		switch {
		case errors.Is(err, errExpired):
			log.Info("events watch expired (410); listing again")
			rv = ""
			continue
		case err == nil:
			backoff, fails = w.o.MinBackoff, 0
			continue
		}
		w.errorCount.Inc()
		fails++
		if apierrors.IsForbidden(err) {
			log.Error("kubemon may not list or watch events: grant its ServiceAccount list and watch on events (deploy/rbac.yaml); retrying", "err", err, "in", backoff)
		} else if fails == 1 || fails%10 == 0 {
			log.Warn("listing or watching events failed; retrying", "err", err, "in", backoff, "failures", fails)
		}
		wait := backoff + rand.N(backoff/2+1)
		backoff = min(2*backoff, w.o.MaxBackoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
	return nil
}

// list reads every event, page by page, storing each page, and returns the
// list's resourceVersion.
func (w *Watcher) list(ctx context.Context) (string, error) {
	w.lists.Inc()
	opts := metav1.ListOptions{Limit: w.o.PageSize}
	for {
		l, err := w.o.Client.CoreV1().Events(metav1.NamespaceAll).List(ctx, opts)
		if err != nil {
			if opts.Continue != "" && (apierrors.IsResourceExpired(err) || apierrors.IsGone(err)) {
				// The snapshot the pages come from expired mid-list:
				// start over (what was stored stays).
				opts.Continue = ""
				continue
			}
			return "", fmt.Errorf("listing events: %w", err)
		}
		evs := make([]*corev1.Event, len(l.Items))
		for i := range l.Items {
			evs[i] = &l.Items[i]
		}
		w.received.Add(float64(len(evs)))
		if _, err := w.o.Store.Put(ctx, evs); err != nil {
			return "", err
		}
		if l.Continue == "" {
			return l.ResourceVersion, nil
		}
		opts.Continue = l.Continue
	}
}

// watch watches from rv and stores what arrives, in batches of what is
// already waiting; it returns the resourceVersion up to which everything
// was stored (the next watch resumes there), with nil when the server
// ended the watch, errExpired when rv is too old.
func (w *Watcher) watch(ctx context.Context, rv string) (string, error) {
	timeout := int64(300 + rand.N(300)) // as client-go's reflector: 5–10 min
	wi, err := w.o.Client.CoreV1().Events(metav1.NamespaceAll).Watch(ctx, metav1.ListOptions{
		ResourceVersion: rv, AllowWatchBookmarks: true, TimeoutSeconds: &timeout,
	})
	if err != nil {
		if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
			return rv, errExpired
		}
		return rv, fmt.Errorf("watching events: %w", err)
	}
	defer wi.Stop()
	ch := wi.ResultChan()
	batch := make([]*corev1.Event, 0, w.o.BatchSize)
	next := rv // the resourceVersion once batch is stored
	// take adds one notification to the batch; a non-nil error ends the
	// watch (after the batch is stored).
	take := func(e watch.Event) error {
		switch e.Type {
		case watch.Added, watch.Modified:
			if ev, ok := e.Object.(*corev1.Event); ok {
				batch = append(batch, ev)
				next = ev.ResourceVersion
			}
		case watch.Deleted, watch.Bookmark:
			// Deleted events stay stored until kubemon's retention.
			if m, ok := e.Object.(interface{ GetResourceVersion() string }); ok && m.GetResourceVersion() != "" {
				next = m.GetResourceVersion()
			}
		case watch.Error:
			err := apierrors.FromObject(e.Object)
			if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
				return errExpired
			}
			return fmt.Errorf("watching events: %w", err)
		}
		return nil
	}
	for {
		var end error // why the watch ends after this batch
		select {
		case <-ctx.Done():
			return rv, ctx.Err()
		case e, ok := <-ch:
			if !ok {
				return rv, nil // the server ended the watch: resume from rv
			}
			end = take(e)
		}
		// Whatever else is already waiting goes in the same write.
	drain:
		for end == nil && len(batch) < cap(batch) {
			select {
			case e, ok := <-ch:
				if !ok {
					end = errWatchClosed
					break drain
				}
				end = take(e)
			default:
				break drain
			}
		}
		if len(batch) > 0 {
			w.received.Add(float64(len(batch)))
			if _, err := w.o.Store.Put(ctx, batch); err != nil {
				return rv, err // not stored: the next watch starts before it
			}
			clear(batch)
			batch = batch[:0]
		}
		rv = next
		switch {
		case errors.Is(end, errWatchClosed):
			return rv, nil
		case end != nil:
			return rv, end
		}
	}
}

// errWatchClosed is the server ending a watch (its timeout): not an error.
var errWatchClosed = errors.New("watch closed")
