package promapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/rules"
)

// RulesRetriever is what /api/v1/rules and /api/v1/alerts list: the groups
// and alerting rules being evaluated (kubemon's internal/rules, or
// Prometheus's own rules.Manager).
type RulesRetriever interface {
	RuleGroups() []*rules.Group
	AlertingRules() []*rules.AlertingRule
}

// RegisterRules mounts /api/v1/rules and /api/v1/alerts on mux, answering
// as Prometheus's do (so that Grafana's Prometheus data source lists the
// rules and alerts) from r; nil answers with none.
func (a *API) RegisterRules(mux *http.ServeMux, r RulesRetriever) {
	mux.Handle("/api/v1/rules", a.handler("rules", func(req *http.Request) apiResult { return a.rules(req, r) }))
	mux.Handle("/api/v1/alerts", a.handler("alerts", func(req *http.Request) apiResult { return a.alerts(r) }))
}

// alertJSON is an active alert, as Prometheus lists it.
type alertJSON struct {
	Labels          labels.Labels `json:"labels"`
	Annotations     labels.Labels `json:"annotations"`
	State           string        `json:"state"`
	ActiveAt        *time.Time    `json:"activeAt,omitempty"`
	KeepFiringSince *time.Time    `json:"keepFiringSince,omitempty"`
	Value           string        `json:"value"`
}

type ruleGroupJSON struct {
	Name           string    `json:"name"`
	File           string    `json:"file"`
	Rules          []any     `json:"rules"`
	Interval       float64   `json:"interval"` // seconds
	Limit          int       `json:"limit"`
	EvaluationTime float64   `json:"evaluationTime"` // seconds
	LastEvaluation time.Time `json:"lastEvaluation"`
}

type alertingRuleJSON struct {
	State          string           `json:"state"`
	Name           string           `json:"name"`
	Query          string           `json:"query"`
	Duration       float64          `json:"duration"`      // the rule's for, in seconds
	KeepFiringFor  float64          `json:"keepFiringFor"` // seconds
	Labels         labels.Labels    `json:"labels"`
	Annotations    labels.Labels    `json:"annotations"`
	Alerts         []*alertJSON     `json:"alerts"`
	Health         rules.RuleHealth `json:"health"`
	LastError      string           `json:"lastError,omitempty"`
	EvaluationTime float64          `json:"evaluationTime"` // seconds
	LastEvaluation time.Time        `json:"lastEvaluation"`
	Type           string           `json:"type"`
}

type recordingRuleJSON struct {
	Name           string           `json:"name"`
	Query          string           `json:"query"`
	Labels         labels.Labels    `json:"labels"`
	Health         rules.RuleHealth `json:"health"`
	LastError      string           `json:"lastError,omitempty"`
	EvaluationTime float64          `json:"evaluationTime"` // seconds
	LastEvaluation time.Time        `json:"lastEvaluation"`
	Type           string           `json:"type"`
}

func toAlertsJSON(as []*rules.Alert) []*alertJSON {
	out := make([]*alertJSON, len(as))
	for i, a := range as {
		out[i] = &alertJSON{
			Labels: a.Labels, Annotations: a.Annotations, State: a.State.String(),
			ActiveAt: &a.ActiveAt, Value: strconv.FormatFloat(a.Value, 'e', -1, 64),
		}
		if !a.KeepFiringSince.IsZero() {
			out[i].KeepFiringSince = &a.KeepFiringSince
		}
	}
	return out
}

// alerts answers /api/v1/alerts: every active (pending or firing) alert.
func (a *API) alerts(r RulesRetriever) apiResult {
	list := []*alertJSON{}
	if r != nil {
		for _, ar := range r.AlertingRules() {
			list = append(list, toAlertsJSON(ar.ActiveAlerts())...)
		}
	}
	return encodeJSON(map[string]any{"alerts": list})
}

// rules answers /api/v1/rules with Prometheus's parameters: type (alert or
// record), rule_name[], rule_group[], file[], match[] (on the rules'
// labels), exclude_alerts, and group_limit with group_next_token to page.
func (a *API) rules(req *http.Request, r RulesRetriever) apiResult {
	set := func(name string) map[string]bool {
		s := map[string]bool{}
		for _, v := range req.Form[name] {
			s[v] = true
		}
		return s
	}
	names, groupNames, files := set("rule_name[]"), set("rule_group[]"), set("file[]")
	matcherSets, apiErr := a.parseMatchers(req)
	if apiErr != nil {
		return errResult(apiErr)
	}
	typ := strings.ToLower(req.FormValue("type"))
	if typ != "" && typ != "alert" && typ != "record" {
		return errResult(invalidParam("type", fmt.Errorf("not supported value %q", typ)))
	}
	excludeAlerts := false
	if v := req.FormValue("exclude_alerts"); v != "" {
		b, err := strconv.ParseBool(strings.ToLower(v))
		if err != nil {
			return errResult(invalidParam("exclude_alerts", fmt.Errorf("error converting exclude_alerts: %w", err)))
		}
		excludeAlerts = b
	}
	maxGroups := int64(-1)
	nextToken := req.FormValue("group_next_token")
	if v := req.FormValue("group_limit"); v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return errResult(invalidParam("group_limit", fmt.Errorf("group_limit needs to be a valid number: %w", err)))
		}
		if n <= 0 {
			return errResult(invalidParam("group_limit", errors.New("group_limit needs to be greater than 0")))
		}
		maxGroups = n
	} else if nextToken != "" {
		return errResult(invalidParam("group_next_token", errors.New("group_limit needs to be present in order to paginate over the groups")))
	}

	var groups []*rules.Group
	if r != nil {
		groups = r.RuleGroups()
	}
	out := []*ruleGroupJSON{}
	next := ""
	found := false
	for _, g := range groups {
		if maxGroups > 0 && nextToken != "" && !found {
			if nextToken != groupToken(g.File(), g.Name()) {
				continue
			}
			found = true
		}
		if (len(groupNames) > 0 && !groupNames[g.Name()]) || (len(files) > 0 && !files[g.File()]) {
			continue
		}
		jg := &ruleGroupJSON{
			Name: g.Name(), File: g.File(), Rules: []any{}, Interval: g.Interval().Seconds(), Limit: g.Limit(),
			EvaluationTime: g.GetEvaluationTime().Seconds(), LastEvaluation: g.GetLastEvaluation(),
		}
		for _, rr := range g.Rules(matcherSets...) {
			if len(names) > 0 && !names[rr.Name()] {
				continue
			}
			lastError := ""
			if err := rr.LastError(); err != nil {
				lastError = err.Error()
			}
			switch rule := rr.(type) {
			case *rules.AlertingRule:
				if typ == "record" {
					continue
				}
				var active []*alertJSON
				if !excludeAlerts {
					active = toAlertsJSON(rule.ActiveAlerts())
				}
				jg.Rules = append(jg.Rules, alertingRuleJSON{
					State: rule.State().String(), Name: rule.Name(), Query: rule.Query().String(),
					Duration: rule.HoldDuration().Seconds(), KeepFiringFor: rule.KeepFiringFor().Seconds(),
					Labels: rule.Labels(), Annotations: rule.Annotations(), Alerts: active, Health: rule.Health(),
					LastError: lastError, EvaluationTime: rule.GetEvaluationDuration().Seconds(),
					LastEvaluation: rule.GetEvaluationTimestamp(), Type: "alerting",
				})
			case *rules.RecordingRule:
				if typ == "alert" {
					continue
				}
				jg.Rules = append(jg.Rules, recordingRuleJSON{
					Name: rule.Name(), Query: rule.Query().String(), Labels: rule.Labels(), Health: rule.Health(),
					LastError: lastError, EvaluationTime: rule.GetEvaluationDuration().Seconds(),
					LastEvaluation: rule.GetEvaluationTimestamp(), Type: "recording",
				})
			default:
				return errResult(&apiError{errorInternal, fmt.Errorf("failed to assert type of rule '%v'", rule.Name())})
			}
		}
		if len(jg.Rules) == 0 {
			continue // every rule filtered out
		}
		if maxGroups > 0 && int64(len(out)) == maxGroups {
			next = groupToken(g.File(), g.Name())
			break
		}
		out = append(out, jg)
	}
	if maxGroups > 0 && nextToken != "" && !found {
		return errResult(invalidParam("group_next_token", fmt.Errorf("invalid group_next_token '%v'. were rule groups changed?", nextToken)))
	}
	data := map[string]any{"groups": out}
	if next != "" {
		data["groupNextToken"] = next
	}
	return encodeJSON(data)
}

// groupToken is a group's page token, as Prometheus computes it.
func groupToken(file, group string) string {
	h := sha256.Sum256([]byte(file + ";" + group))
	return hex.EncodeToString(h[:])
}

func encodeJSON(v any) apiResult {
	data, err := json.Marshal(v)
	if err != nil {
		return errResult(&apiError{errorInternal, err})
	}
	return apiResult{data: data}
}

// Engine is the PromQL engine the API queries with, for rule evaluation to
// share (its concurrency slots, timeout, sample limit and active query
// log).
func (a *API) Engine() *promql.Engine { return a.engine }
