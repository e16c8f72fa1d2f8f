package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubemon/kubemon/internal/app"
	"github.com/kubemon/kubemon/internal/config"
	"github.com/kubemon/kubemon/internal/events"
	"github.com/kubemon/kubemon/internal/sim"
)

// eventFlags binds the events store's flags (serve and demo).
func eventFlags(fs *flag.FlagSet, c *config.Config) {
	fs.BoolVar(&c.Events.Enabled, "events.enabled", c.Events.Enabled, "watch the Kubernetes API's events, keep them in <data-dir>/events and serve them at /api/v1/events")
	fs.DurationVar(&c.Events.Retention, "events.retention", c.Events.Retention, "how long an event is kept after it last happened (0: 7 days, or --retention if shorter)")
	fs.Var(&c.Events.MaxSize, "events.max-size", "most bytes the stored events take, oldest dropped first (e.g. 256MiB; at least 1MiB)")
}

// demoEvents makes the simulated cluster's events: the scheduler's and the
// kubelets' events of its pods' lifecycles (events.PodFeed over the
// simulator's pod list, read in process, page by page).
func demoEvents(cl *sim.Cluster, interval time.Duration, log *slog.Logger) app.EventFeed {
	h := cl.Handler()
	list := func(ctx context.Context, each func(*corev1.Pod)) error {
		cont := ""
		for {
			req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/api/v1/pods?limit=500&continue="+url.QueryEscape(cont), nil)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				return fmt.Errorf("simulator's pod list: %d %s", rec.Code, rec.Body.Bytes())
			}
			var l corev1.PodList
			if err := json.Unmarshal(rec.Body.Bytes(), &l); err != nil {
				return fmt.Errorf("simulator's pod list: %w", err)
			}
			for i := range l.Items {
				each(&l.Items[i])
			}
			if l.Continue == "" {
				return nil
			}
			cont = l.Continue
		}
	}
	return func(ctx context.Context, st events.Putter) error {
		f, err := events.NewPodFeed(events.PodFeedOptions{List: list, Store: st, Interval: interval, Logger: log.With("component", "events")})
		if err != nil {
			return err
		}
		return f.Run(ctx)
	}
}
