// Package notify sends the alerts of kubemon's rules to Alertmanager (API
// v2, with Prometheus's own notifier: a queue and send loop per
// Alertmanager, external labels added) and to generic webhooks (a POST of
// Alertmanager's webhook JSON per rule's changed alerts: firing once, again
// after RepeatInterval, and resolved; retried with backoff from a bounded
// queue). Its Notify is a rules.NotifyFunc.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	config_util "github.com/prometheus/common/config"
	pmodel "github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/notifier"
	promrules "github.com/prometheus/prometheus/rules"
)

// Defaults of Options.
const (
	// DefaultTimeout bounds one request to an Alertmanager or a webhook,
	// its retries included for an Alertmanager.
	DefaultTimeout = 10 * time.Second
	// DefaultQueueCapacity is how many alerts wait for each Alertmanager,
	// and how many notifications (POSTs) for each webhook, before the
	// oldest are dropped (Prometheus's --alertmanager.notification-queue-capacity).
	DefaultQueueCapacity = 10000
	// DefaultRepeatInterval is how long a webhook waits before it is told
	// again of an alert still firing (Alertmanager's repeat_interval).
	DefaultRepeatInterval = 4 * time.Hour
	// DefaultRetryFor is how long a webhook notification is retried before
	// it is given up and counted failed.
	DefaultRetryFor = 5 * time.Minute
)

// Options configure a Notifier.
type Options struct {
	// Alertmanagers are Alertmanagers' base URLs
	// (http[s]://[user:password@]host:port[/path-prefix]); alerts are
	// POSTed to <url>/api/v2/alerts.
	Alertmanagers []string
	// Webhooks are URLs that get Alertmanager's webhook JSON.
	Webhooks []string
	// ExternalLabels are added to every alert that lacks them (such as
	// cluster=prod).
	ExternalLabels labels.Labels
	// ExternalURL, when set, is kubemon's URL as its users reach it: an
	// alert's generatorURL is the PromQL query of its rule there.
	ExternalURL string
	// Timeout: 0 means DefaultTimeout.
	Timeout time.Duration
	// QueueCapacity: 0 means DefaultQueueCapacity.
	QueueCapacity int
	// RepeatInterval: 0 means DefaultRepeatInterval.
	RepeatInterval time.Duration
	// RetryFor: 0 means DefaultRetryFor.
	RetryFor time.Duration
	// Logger defaults to a logger that discards everything.
	Logger *slog.Logger
	// Registerer receives Prometheus's notifier metrics
	// (prometheus_notifications_*{alertmanager}) and kubemon_webhook_*.
	Registerer prometheus.Registerer
	// Client sends the requests; default: http.Client without timeout
	// (requests are bounded by Timeout).
	Client *http.Client
}

// Notifier sends alerts. Create it with New, run it with Run, hand it
// alerts with Notify.
type Notifier struct {
	o     Options
	log   *slog.Logger
	am    *notifier.Manager // nil without Alertmanagers
	tsets map[string][]*targetgroup.Group
	hooks []*webhook
}

// New checks the URLs and builds the senders.
func New(o Options) (*Notifier, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.QueueCapacity <= 0 {
		o.QueueCapacity = DefaultQueueCapacity
	}
	if o.RepeatInterval <= 0 {
		o.RepeatInterval = DefaultRepeatInterval
	}
	if o.RetryFor <= 0 {
		o.RetryFor = DefaultRetryFor
	}
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	n := &Notifier{o: o, log: o.Logger}
	var errs []error
	if len(o.Alertmanagers) > 0 {
		if err := n.buildAlertmanagers(); err != nil {
			errs = append(errs, err)
		}
	}
	var m *webhookMetrics
	if len(o.Webhooks) > 0 {
		var err error
		if m, err = newWebhookMetrics(o.Registerer); err != nil {
			errs = append(errs, err)
		}
	}
	for _, raw := range o.Webhooks {
		if _, err := ParseURL(raw); err != nil {
			errs = append(errs, fmt.Errorf("alert webhook %s: %w", Redact(raw), err))
			continue
		}
		if m != nil {
			n.hooks = append(n.hooks, newWebhook(raw, o, m))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return n, nil
}

// ParseURL checks an Alertmanager's or a webhook's URL: http or https, a
// host, no query or fragment.
func ParseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a URL") // url's error repeats the URL, credentials included
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("scheme %q: want http or https", u.Scheme)
	case u.Host == "":
		return nil, errors.New("no host")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, errors.New("want no query or fragment")
	}
	return u, nil
}

// Redact is a URL as logs and metric labels show it: without credentials
// (user information and query).
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable URL>"
	}
	u.User = nil
	u.RawQuery, u.ForceQuery = "", false
	u.Fragment = ""
	return u.String()
}

// buildAlertmanagers configures Prometheus's notifier with one
// Alertmanager set per URL, each its own queue and send loop.
func (n *Notifier) buildAlertmanagers() error {
	cfg := &config.Config{GlobalConfig: config.GlobalConfig{ExternalLabels: n.o.ExternalLabels}}
	n.tsets = map[string][]*targetgroup.Group{}
	for i, raw := range n.o.Alertmanagers {
		u, err := ParseURL(raw)
		if err != nil {
			return fmt.Errorf("alertmanager %s: %w", Redact(raw), err)
		}
		hc := config_util.DefaultHTTPClientConfig
		if u.User != nil {
			pw, _ := u.User.Password()
			hc.BasicAuth = &config_util.BasicAuth{Username: u.User.Username(), Password: config_util.Secret(pw)}
		}
		cfg.AlertingConfig.AlertmanagerConfigs = append(cfg.AlertingConfig.AlertmanagerConfigs, &config.AlertmanagerConfig{
			HTTPClientConfig: hc, Scheme: u.Scheme, PathPrefix: strings.TrimSuffix(u.Path, "/"),
			Timeout: pmodel.Duration(n.o.Timeout), APIVersion: config.AlertmanagerAPIVersionV2,
		})
		// The key ApplyConfig gives the i-th set (AlertmanagerConfigs.ToMap).
		key := fmt.Sprintf("config-%d", i)
		n.tsets[key] = []*targetgroup.Group{{
			Source:  key,
			Targets: []pmodel.LabelSet{{pmodel.AddressLabel: pmodel.LabelValue(u.Host)}},
		}}
	}
	n.am = notifier.NewManager(&notifier.Options{
		QueueCapacity: n.o.QueueCapacity,
		Registerer:    n.o.Registerer,
		Do:            retryingDo(n.o.Timeout), //nolint:bodyclose // Do returns the response; the notifier closes it

	}, pmodel.UTF8Validation, n.log.With("component", "notifier"))
	if err := n.am.ApplyConfig(cfg); err != nil {
		return fmt.Errorf("alertmanagers: %w", err)
	}
	return nil
}

// Run sends until ctx ends. Notifications still queued then are dropped
// (and counted): shutting down does not wait for an Alertmanager or a
// webhook that is down.
func (n *Notifier) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	if n.am != nil {
		tsets := make(chan map[string][]*targetgroup.Group, 1)
		tsets <- n.tsets
		wg.Go(func() { n.am.Run(tsets) })
		for _, raw := range n.o.Alertmanagers {
			n.log.Info("sending alerts to Alertmanager", "url", Redact(raw))
		}
	}
	for _, h := range n.hooks {
		wg.Go(func() { h.run(ctx) })
		n.log.Info("sending alerts to a webhook", "url", h.label)
	}
	<-ctx.Done()
	if n.am != nil {
		n.am.Stop()
	}
	wg.Wait()
	return nil
}

// Notify sends alerts of the rule with expression expr: a
// rules.NotifyFunc.
func (n *Notifier) Notify(_ context.Context, expr string, alerts ...*promrules.Alert) {
	if len(alerts) == 0 {
		return
	}
	out := make([]*notifier.Alert, 0, len(alerts))
	for _, a := range alerts {
		na := &notifier.Alert{
			StartsAt: a.FiredAt, Labels: a.Labels, Annotations: a.Annotations,
			GeneratorURL: n.generatorURL(expr),
		}
		if !a.ResolvedAt.IsZero() {
			na.EndsAt = a.ResolvedAt
		} else {
			na.EndsAt = a.ValidUntil
		}
		out = append(out, na)
	}
	if n.am != nil {
		n.am.Send(out...)
	}
	for _, h := range n.hooks {
		h.notify(out, time.Now())
	}
}

// generatorURL links an alert to its rule's expression in kubemon's query
// API, when kubemon's external URL is known.
func (n *Notifier) generatorURL(expr string) string {
	if n.o.ExternalURL == "" {
		return ""
	}
	return strings.TrimSuffix(n.o.ExternalURL, "/") + "/api/v1/query?query=" + url.QueryEscape(expr)
}

// retryingDo is the notifier's Do: a request that fails for want of a
// connection, or with 429 or a 5xx, is sent again with exponential backoff
// (250 ms, doubling, at most 2 s) within timeout, the notifier's bound for
// the whole send. The rule manager sends firing alerts again every resend
// delay anyway, so an Alertmanager down for longer misses nothing lasting.
func retryingDo(timeout time.Duration) func(context.Context, *http.Client, *http.Request) (*http.Response, error) {
	return func(ctx context.Context, client *http.Client, req *http.Request) (*http.Response, error) {
		if client == nil {
			client = http.DefaultClient
		}
		backoff := 250 * time.Millisecond
		for attempt := 0; ; attempt++ {
			r := req.WithContext(ctx)
			if attempt > 0 && req.GetBody != nil {
				body, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				r.Body = body
			}
			resp, err := client.Do(r)
			if err == nil && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode < 500 {
				return resp, nil
			}
			if ctx.Err() != nil || req.GetBody == nil {
				return resp, err
			}
			deadline, ok := ctx.Deadline()
			if ok && time.Until(deadline) < backoff {
				return resp, err // no time left to try again
			}
			if resp != nil {
				drain(resp)
			}
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("giving up after %d attempts within %s: %w", attempt+1, timeout, ctx.Err())
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
		}
	}
}
