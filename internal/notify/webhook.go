package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/notifier"
)

// WebhookMessage is the body of a webhook notification: Alertmanager's
// webhook format (version 4), one per rule evaluation with changed alerts,
// grouped by alertname.
type WebhookMessage struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"` // firing when any alert fires, else resolved
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []WebhookAlert    `json:"alerts"`
}

// WebhookAlert is one alert of a WebhookMessage.
type WebhookAlert struct {
	Status       string            `json:"status"` // firing or resolved
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"` // when resolved; the time it is valid until while firing
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// WebhookReceiver is the receiver name webhook messages carry.
const WebhookReceiver = "kubemon"

// webhookMetrics are the webhooks' self-metrics, by webhook (its redacted
// URL).
type webhookMetrics struct {
	sent, failed, dropped, retries *prometheus.CounterVec
	queue                          *prometheus.GaugeVec
}

func newWebhookMetrics(reg prometheus.Registerer) (*webhookMetrics, error) {
	c := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "kubemon", Subsystem: "webhook", Name: name, Help: help}, []string{"webhook"})
	}
	m := &webhookMetrics{
		sent:    c("alerts_sent_total", "Alerts delivered to a webhook (each alert of a notification counts)."),
		failed:  c("alerts_failed_total", "Alerts of webhook notifications given up: refused for good (a 4xx) or still failing after the retry time."),
		dropped: c("alerts_dropped_total", "Alerts of webhook notifications dropped unsent: the queue was full (the oldest go), or kubemon stopped."),
		retries: c("retries_total", "Webhook requests sent again after a failure."),
		queue: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "kubemon", Subsystem: "webhook", Name: "queue_length",
			Help: "Webhook notifications waiting to be sent (not the one being sent)."}, []string{"webhook"}),
	}
	if reg != nil {
		for _, col := range []prometheus.Collector{m.sent, m.failed, m.dropped, m.retries, m.queue} {
			if err := reg.Register(col); err != nil {
				return nil, fmt.Errorf("webhook metrics: %w", err)
			}
		}
	}
	return m, nil
}

// webhook sends notifications to one URL, in order, from a bounded queue
// (of the messages waiting: the one being sent has left it).
type webhook struct {
	url, label string
	o          Options
	log        *slog.Logger
	m          *webhookMetrics

	mu    sync.Mutex
	queue []*WebhookMessage
	wake  chan struct{}
	// sent is what the webhook was told of each alert, by fingerprint: an
	// alert is sent when it starts firing, again after RepeatInterval,
	// and when it resolves (then forgotten).
	sent map[uint64]sentAlert
}

type sentAlert struct {
	at         time.Time    // when it was last sent firing
	validUntil time.Time    // its endsAt then: past it, unrefreshed, it is resolved
	last       WebhookAlert // as sent
}

func newWebhook(target string, o Options, m *webhookMetrics) *webhook {
	h := &webhook{url: target, label: Redact(target), o: o, m: m, wake: make(chan struct{}, 1), sent: map[uint64]sentAlert{}}
	h.log = o.Logger.With("webhook", h.label)
	m.sent.WithLabelValues(h.label)
	m.failed.WithLabelValues(h.label)
	m.dropped.WithLabelValues(h.label)
	m.retries.WithLabelValues(h.label)
	m.queue.WithLabelValues(h.label)
	return h
}

// notify queues a message with the alerts the webhook has not been told of
// in that state, and resolved messages for alerts that expired unrefreshed
// (their rule went away).
func (h *webhook) notify(alerts []*notifier.Alert, now time.Time) {
	h.mu.Lock()
	var changed []WebhookAlert
	for _, a := range alerts {
		ls := withExternal(a.Labels, h.o.ExternalLabels)
		fp := ls.Hash()
		wa := WebhookAlert{
			Labels: ls.Map(), Annotations: a.Annotations.Map(), StartsAt: a.StartsAt, EndsAt: a.EndsAt,
			GeneratorURL: a.GeneratorURL, Fingerprint: fmt.Sprintf("%016x", fp),
		}
		prev, known := h.sent[fp]
		if a.ResolvedAt(now) {
			if known {
				wa.Status = "resolved"
				changed = append(changed, wa)
				delete(h.sent, fp)
			}
			continue
		}
		if known {
			prev.validUntil = a.EndsAt
			prev.last.EndsAt = a.EndsAt
			h.sent[fp] = prev
			if now.Sub(prev.at) < h.o.RepeatInterval {
				continue
			}
		}
		wa.Status = "firing"
		h.sent[fp] = sentAlert{at: now, validUntil: a.EndsAt, last: wa}
		changed = append(changed, wa)
	}
	msgs := h.messages(changed)
	msgs = append(msgs, h.expiredLocked(now)...)
	h.mu.Unlock()
	for _, m := range msgs {
		h.enqueue(m)
	}
}

// expiredLocked resolves alerts that were not refreshed before their
// endsAt (their rule was removed): one message per alertname.
func (h *webhook) expiredLocked(now time.Time) []*WebhookMessage {
	byName := map[string][]WebhookAlert{}
	for fp, s := range h.sent {
		if s.validUntil.After(now) {
			continue
		}
		wa := s.last
		wa.Status, wa.EndsAt = "resolved", s.validUntil
		name := wa.Labels[labels.AlertName]
		byName[name] = append(byName[name], wa)
		delete(h.sent, fp)
	}
	var out []*WebhookMessage
	for _, was := range byName {
		out = append(out, h.messages(was)...)
	}
	return out
}

// MaxWebhookAlerts is the most alerts one webhook message carries; a rule
// with more changed alerts is told in several messages.
const MaxWebhookAlerts = 1000

// messages groups alerts of one rule into messages of at most
// MaxWebhookAlerts alerts.
func (h *webhook) messages(alerts []WebhookAlert) []*WebhookMessage {
	var out []*WebhookMessage
	for len(alerts) > 0 {
		n := min(len(alerts), MaxWebhookAlerts)
		out = append(out, h.message(alerts[:n]))
		alerts = alerts[n:]
	}
	return out
}

// message groups alerts of one rule as Alertmanager's webhook does.
func (h *webhook) message(alerts []WebhookAlert) *WebhookMessage {
	status := "resolved"
	for _, a := range alerts {
		if a.Status == "firing" {
			status = "firing"
		}
	}
	name := alerts[0].Labels[labels.AlertName]
	group := map[string]string{labels.AlertName: name}
	return &WebhookMessage{
		Version: "4", GroupKey: "{}:{" + labels.AlertName + "=" + strconv.Quote(name) + "}",
		Status: status, Receiver: WebhookReceiver, GroupLabels: group,
		CommonLabels:      common(alerts, func(a WebhookAlert) map[string]string { return a.Labels }),
		CommonAnnotations: common(alerts, func(a WebhookAlert) map[string]string { return a.Annotations }),
		ExternalURL:       h.o.ExternalURL, Alerts: alerts,
	}
}

// common is the pairs every alert has.
func common(alerts []WebhookAlert, get func(WebhookAlert) map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range get(alerts[0]) {
		out[k] = v
	}
	for _, a := range alerts[1:] {
		m := get(a)
		for k, v := range out {
			if m[k] != v {
				delete(out, k)
			}
		}
	}
	return out
}

// withExternal adds the external labels an alert lacks.
func withExternal(ls, ext labels.Labels) labels.Labels {
	if ext.IsEmpty() {
		return ls
	}
	b := labels.NewBuilder(ls)
	ext.Range(func(l labels.Label) {
		if ls.Get(l.Name) == "" {
			b.Set(l.Name, l.Value)
		}
	})
	return b.Labels()
}

// enqueue adds a message, dropping the oldest when the queue is full.
func (h *webhook) enqueue(m *WebhookMessage) {
	h.mu.Lock()
	if len(h.queue) >= h.o.QueueCapacity {
		old := h.queue[0]
		h.queue = h.queue[1:]
		h.m.dropped.WithLabelValues(h.label).Add(float64(len(old.Alerts)))
		h.log.Warn("webhook queue full, dropping the oldest notification", "alerts", len(old.Alerts), "capacity", h.o.QueueCapacity)
	}
	h.queue = append(h.queue, m)
	h.m.queue.WithLabelValues(h.label).Set(float64(len(h.queue)))
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// run sends the queue's messages in order until ctx ends; then the rest
// are dropped.
func (h *webhook) run(ctx context.Context) {
	tick := time.NewTicker(30 * time.Second) // resolves expired alerts without new notifications
	defer tick.Stop()
	for {
		h.mu.Lock()
		var m *WebhookMessage
		if len(h.queue) > 0 {
			m = h.queue[0]
			h.queue = h.queue[1:]
			h.m.queue.WithLabelValues(h.label).Set(float64(len(h.queue)))
		}
		h.mu.Unlock()
		if m != nil {
			h.deliver(ctx, m)
		}
		if ctx.Err() != nil {
			h.mu.Lock()
			n := 0
			for _, q := range h.queue {
				n += len(q.Alerts)
			}
			h.queue = nil
			h.m.queue.WithLabelValues(h.label).Set(0)
			h.mu.Unlock()
			if n > 0 {
				h.m.dropped.WithLabelValues(h.label).Add(float64(n))
				h.log.Warn("kubemon stopping: webhook notifications not sent", "alerts", n)
			}
			return
		}
		if m != nil {
			continue
		}
		select {
		case <-ctx.Done():
		case <-h.wake:
		case <-tick.C:
			h.mu.Lock()
			msgs := h.expiredLocked(time.Now())
			h.mu.Unlock()
			for _, m := range msgs {
				h.enqueue(m)
			}
		}
	}
}

// deliver POSTs m, retrying timeouts, connection errors, 429 and 5xx with
// exponential backoff (500 ms doubling to 30 s, or the server's
// Retry-After up to that) for RetryFor.
func (h *webhook) deliver(ctx context.Context, m *WebhookMessage) {
	body, err := json.Marshal(m)
	if err != nil { // cannot happen: strings and times
		h.m.failed.WithLabelValues(h.label).Add(float64(len(m.Alerts)))
		h.log.Error("encoding a webhook notification", "err", err)
		return
	}
	n := float64(len(m.Alerts))
	giveUp := time.Now().Add(h.o.RetryFor)
	backoff := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		retry, wait, err := h.post(ctx, body)
		if err == nil {
			h.m.sent.WithLabelValues(h.label).Add(n)
			if attempt > 1 {
				h.log.Info("webhook notification delivered after retries", "attempts", attempt, "status", m.Status, "alerts", len(m.Alerts))
			}
			return
		}
		if ctx.Err() != nil {
			h.m.dropped.WithLabelValues(h.label).Add(n)
			return
		}
		if !retry {
			h.m.failed.WithLabelValues(h.label).Add(n)
			h.log.Error("webhook refused the notification; not retried", "err", err, "status", m.Status, "alerts", len(m.Alerts))
			return
		}
		wait = max(wait, backoff)
		if time.Now().Add(wait).After(giveUp) {
			h.m.failed.WithLabelValues(h.label).Add(n)
			h.log.Error("webhook notification given up", "err", err, "attempts", attempt, "retryFor", h.o.RetryFor, "status", m.Status, "alerts", len(m.Alerts))
			return
		}
		h.log.Warn("webhook notification failed; retrying", "err", err, "attempt", attempt, "in", wait)
		h.m.retries.WithLabelValues(h.label).Inc()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			h.m.dropped.WithLabelValues(h.label).Add(n)
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// post sends one request. retry says whether a failure may pass; wait is
// the server's Retry-After (at most 30 s), if it gave one.
func (h *webhook) post(ctx context.Context, body []byte) (retry bool, wait time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, h.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return false, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "kubemon")
	resp, err := h.o.Client.Do(req)
	if err != nil {
		return true, 0, errors.New(Redact(h.url) + ": " + errorText(err)) // the URL in err may hold credentials
	}
	defer drain(resp)
	if resp.StatusCode/100 == 2 {
		return false, 0, nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	err = fmt.Errorf("%s: %s: %s", h.label, resp.Status, bytes.TrimSpace(msg))
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s > 0 {
			wait = min(time.Duration(s)*time.Second, 30*time.Second)
		}
		return true, wait, err
	}
	return false, 0, err
}

// errorText is a client error without the URL the net/http error repeats.
func errorText(err error) string {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err.Error()
	}
	return err.Error()
}

// drain reads what is left of a response body (at most 64 KiB, so that the
// connection is reused) and closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}
