/**
 * Alerts (#/alerts?state=firing&severity=critical&health=err): the
 * pending and firing alerts (api/v1/alerts) with their severity, the
 * objects their labels name (linked to their pages), summary, description
 * and runbook, since when they are active and their value; then the rule
 * groups and their rules (api/v1/rules) with health, last error and last
 * evaluation. Both APIs answer in Prometheus's format. The tables sort and
 * the search box filters them; the filters are in the URL.
 *
 * Test hooks: tables "alerts" (row key: the alert's labels as
 * {name="value",…} sorted by name; data-state), "rule-groups" (key
 * FILE:GROUP) and "rules" (key FILE:GROUP#INDEX, the rule's place in its
 * group); stats firing, pending, rules, rule-errors, rule-groups (computed
 * from the answers: data-value, no data-query).
 */

import * as api from "../api.js";
import { h } from "../dom.js";
import * as f from "../format.js";
import { ALERT_NAME } from "../promql.js";
import { label as K } from "../series.js";
import { table } from "../table.js";
import { a, card, links, notice, pageHead, selectFilter, tiles, tile } from "../components.js";

const SEVERITY_RANK = { critical: 4, error: 3, page: 3, warning: 2, info: 1, none: 0 };
const STATE_RANK = { firing: 2, pending: 1, inactive: 0 };

/** labelsKey writes a label set as {name="value",…}, names sorted: an alert's identity. */
export function labelsKey(labels) {
  const keys = Object.keys(labels || {}).sort();
  return "{" + keys.map((k) => `${k}=${JSON.stringify(labels[k])}`).join(",") + "}";
}

/** The label keys that name an object (linked) rather than describe the alert. */
const OBJECT_KEYS = [K.namespace, K.workloadKind, K.workload, K.pod, K.container, K.node];

/** objectLinks renders links to the pages of the objects an alert's labels name. */
export function objectLinks(l) {
  const ns = l[K.namespace];
  const parts = [];
  if (ns) parts.push(a(links.namespace(ns), ns));
  if (ns && l[K.workload] && l[K.workloadKind]) parts.push(a(links.workload(ns, l[K.workloadKind], l[K.workload]), l[K.workload]));
  if (ns && l[K.pod]) parts.push(a(links.pod(ns, l[K.pod]), l[K.pod]));
  if (ns && l[K.pod] && l[K.container]) parts.push(a(links.container(ns, l[K.pod], l[K.container]), l[K.container]));
  const out = [];
  parts.forEach((p, i) => out.push(i ? h("span", { class: "muted" }, " / ") : null, p));
  if (l[K.node]) out.push(parts.length ? h("span", { class: "muted" }, " on ") : null, a(links.node(l[K.node]), l[K.node]));
  return out.filter(Boolean);
}

const objectText = (l) => [l[K.namespace], l[K.workload], l[K.pod], l[K.container], l[K.node]].filter(Boolean).join(" / ");

/** safeURL returns u when it is an http(s) URL (a runbook link), else null. */
function safeURL(u) {
  try {
    const x = new URL(u, location.href);
    return x.protocol === "http:" || x.protocol === "https:" ? x.href : null;
  } catch {
    return null;
  }
}

/** unixOf reads an RFC 3339 time as unix seconds; null for none (Go's zero time). */
function unixOf(s) {
  const t = Date.parse(s || "");
  return Number.isFinite(t) && t > 0 ? t / 1000 : null;
}

function statePill(state) {
  const cls = state === "firing" ? "pill-bad" : state === "pending" ? "pill-warn" : null;
  return h("span", { class: ["pill", cls] }, state || "–");
}

function severityPill(sev) {
  const r = SEVERITY_RANK[sev] ?? 0;
  return sev ? h("span", { class: ["pill", r >= 3 ? "pill-bad" : r === 2 ? "pill-warn" : null] }, sev) : null;
}

function healthPill(health) {
  const cls = health === "ok" ? "pill-ok" : health === "err" ? "pill-bad" : "pill-unknown";
  return h("span", { class: ["pill", cls] }, health || "unknown");
}

export async function render(ctx) {
  ctx.title = "Alerts";
  const params = ctx.params;
  const [alerts, groups] = await Promise.all([api.alerts({ signal: ctx.signal }), api.ruleGroups({ signal: ctx.signal })]);
  const now = ctx.now();
  window.dispatchEvent(new CustomEvent("kubemon:alerts", { detail: { alerts } }));

  const firing = alerts.filter((x) => x.state === "firing").length;
  const pending = alerts.filter((x) => x.state === "pending").length;
  const rules = [];
  groups.forEach((g) =>
    (g.rules || []).forEach((r, i) => rules.push({ ...r, group: g.name, file: g.file, index: i, key: `${g.file}:${g.name}#${i}` })),
  );
  const ruleErrors = rules.filter((r) => r.health === "err").length;

  // Filters.
  const state = params.get("state") || "";
  const severity = params.get("severity") || "";
  const health = params.get("health") || "";
  const severities = alerts.map((x) => (x.labels || {}).severity).filter(Boolean);
  const shownAlerts = alerts.filter((x) => (!state || x.state === state) && (!severity || (x.labels || {}).severity === severity));
  const shownRules = rules.filter((r) => !health || (r.health || "unknown") === health);
  const q = params.get("q") || "";

  const at = table({
    name: "alerts",
    columns: [
      { id: "alert", label: "Alert", get: (x) => x.labels[ALERT_NAME] || "", cls: () => "strong" },
      { id: "state", label: "State", get: (x) => x.state, sortValue: (x) => STATE_RANK[x.state] ?? 0, render: (x) => statePill(x.state) },
      {
        id: "severity",
        label: "Severity",
        get: (x) => x.labels.severity,
        sortValue: (x) => SEVERITY_RANK[x.labels.severity] ?? 0,
        render: (x) => severityPill(x.labels.severity),
      },
      { id: "object", label: "Object", get: (x) => objectText(x.labels), render: (x) => h("span", null, objectLinks(x.labels)) },
      {
        id: "summary",
        label: "Summary",
        get: (x) => [x.annotations.summary, x.annotations.description].filter(Boolean).join(" "),
        cls: () => "wrap",
        render: (x, text) => {
          const an = x.annotations || {};
          const rb = an.runbook_url ? safeURL(an.runbook_url) : null;
          if (!an.summary && !an.description && !rb) return text;
          return h(
            "div",
            { class: "alert-text" },
            an.summary ? h("div", null, an.summary) : null,
            an.description ? h("div", { class: "muted small" }, an.description) : null,
            rb ? h("a", { href: rb, target: "_blank", rel: "noopener noreferrer", class: "small", dataset: { testid: "runbook" } }, "Runbook ↗") : null,
          );
        },
      },
      {
        id: "since",
        label: "Active since",
        num: true,
        get: (x) => unixOf(x.activeAt),
        fmt: (t) => `${f.dateTime(t, true)} (${f.duration(now - t)})`,
        title: "Sort by when the alert became active",
      },
      { id: "value", label: "Value", num: true, get: (x) => x.value, fmt: (v) => f.sig(Number(v), 4) },
      {
        id: "labels",
        label: "Labels",
        get: (x) =>
          Object.entries(x.labels)
            .filter(([k]) => k !== ALERT_NAME && k !== "severity" && !OBJECT_KEYS.includes(k))
            .map(([k, v]) => `${k}=${v}`)
            .join(" "),
        render: (x, text) =>
          text === f.DASH
            ? text
            : h(
                "ul",
                { class: "chips" },
                Object.entries(x.labels)
                  .filter(([k]) => k !== ALERT_NAME && k !== "severity" && !OBJECT_KEYS.includes(k))
                  .map(([k, v]) => h("li", { class: "chip" }, h("span", { class: "muted" }, k + "="), v)),
              ),
      },
    ],
    rows: shownAlerts.map((x) => ({ ...x, labels: x.labels || {}, annotations: x.annotations || {} })),
    key: (x) => labelsKey(x.labels),
    sort: "state:desc",
    sortParam: "sort",
    filter: q,
    noun: "alerts",
    none: state || severity ? "no alerts of this kind" : "no alerts are pending or firing",
    rowAttrs: (x) => ({ class: "row-" + x.state, dataset: { state: x.state } }),
  });

  const groupRows = groups.map((g) => {
    const rs = g.rules || [];
    const errs = rs.filter((r) => r.health === "err");
    const unknown = rs.some((r) => r.health !== "ok" && r.health !== "err");
    return {
      key: `${g.file}:${g.name}`,
      name: g.name,
      file: g.file,
      interval: g.interval,
      rules: rs.length,
      errors: errs.length,
      health: errs.length ? "err" : unknown ? "unknown" : "ok",
      lastError: errs.length ? errs[0].lastError || "" : "",
      lastEvaluation: unixOf(g.lastEvaluation),
      evaluationTime: g.evaluationTime,
    };
  });
  const time = (t) => f.dateTime(t, true);
  const gt = table({
    name: "rule-groups",
    columns: [
      { id: "group", label: "Group", get: (g) => g.name, cls: () => "strong" },
      { id: "file", label: "File", get: (g) => g.file, cls: () => "mono small" },
      { id: "health", label: "Health", get: (g) => g.health, render: (g) => healthPill(g.health) },
      { id: "rules", label: "Rules", num: true, fmt: f.count, get: (g) => g.rules },
      { id: "errors", label: "Errors", num: true, fmt: f.count, get: (g) => g.errors, cls: (g) => (g.errors ? "crit-text" : null) },
      { id: "last_error", label: "Last error", get: (g) => g.lastError, cls: () => "wrap crit-text small" },
      { id: "interval", label: "Interval", num: true, fmt: f.duration, get: (g) => g.interval },
      { id: "last_evaluation", label: "Last evaluation", num: true, fmt: time, get: (g) => g.lastEvaluation },
      { id: "evaluation_time", label: "Took", num: true, fmt: f.seconds, get: (g) => g.evaluationTime, title: "Sort by the last evaluation's duration" },
    ],
    rows: groupRows,
    key: (g) => g.key,
    sort: "group:asc",
    sortParam: "gsort",
    filter: q,
    noun: "rule groups",
    none: "no rules are loaded",
    rowAttrs: (g) => ({ class: g.health === "err" ? "row-error" : null }),
  });

  const rt = table({
    name: "rules",
    columns: [
      { id: "rule", label: "Rule", get: (r) => r.name, cls: () => "strong" },
      { id: "group", label: "Group", get: (r) => r.group },
      {
        id: "state",
        label: "State",
        get: (r) => (r.type === "alerting" ? r.state : null),
        // Recording rules (no state) after inactive alerting rules.
        sortValue: (r) => (r.type === "alerting" ? (STATE_RANK[r.state] ?? 0) + 1 : 0),
        render: (r, text) => (r.type === "alerting" ? statePill(r.state) : text),
      },
      { id: "health", label: "Health", get: (r) => r.health || "unknown", render: (r) => healthPill(r.health) },
      { id: "alerts", label: "Alerts", num: true, fmt: f.count, get: (r) => (r.type === "alerting" ? (r.alerts || []).length : null), title: "Sort by active alerts" },
      { id: "last_evaluation", label: "Last evaluation", num: true, fmt: time, get: (r) => unixOf(r.lastEvaluation) },
      { id: "evaluation_time", label: "Took", num: true, fmt: f.seconds, get: (r) => r.evaluationTime, title: "Sort by the last evaluation's duration" },
      { id: "for", label: "For", num: true, fmt: f.duration, get: (r) => (r.type === "alerting" ? r.duration : null), title: "Sort by the rule's for:" },
      { id: "type", label: "Type", get: (r) => r.type },
      { id: "last_error", label: "Last error", get: (r) => r.lastError || "", cls: () => "wrap crit-text small" },
      { id: "query", label: "Query", get: (r) => r.query, cls: () => "wrap mono small" },
    ],
    rows: shownRules,
    key: (r) => r.key,
    sort: "state:desc",
    sortParam: "rsort",
    filter: q,
    noun: "rules",
    none: health ? "no rules of this health" : "no rules are loaded",
    rowAttrs: (r) => ({ class: r.health === "err" ? "row-error" : null, dataset: { health: r.health || "unknown" } }),
  });

  ctx.search = (text) => {
    at.setFilter(text);
    gt.setFilter(text);
    rt.setFilter(text);
  };

  return h(
    "div",
    { class: "page" },
    pageHead({ kind: "Cluster", title: "Alerts" }),
    tiles(
      tile({ title: "Firing", main: spec("firing", firing), tone: firing ? "crit" : null, hint: "alerts past their for: duration" }),
      tile({ title: "Pending", main: spec("pending", pending), tone: pending ? "warn" : null, hint: "true, waiting out their for:" }),
      tile({ title: "Rules", main: spec("rules", rules.length), subs: [["Groups", spec("rule-groups", groups.length)]] }),
      tile({ title: "Rules failing", main: spec("rule-errors", ruleErrors), tone: ruleErrors ? "crit" : null, hint: "health err: the last evaluation failed" }),
    ),
    rules.length === 0
      ? notice("info", "No rules are loaded.", " Give kubemon Prometheus rule files with --rules, or keep the default rule pack on (--default-rules).")
      : null,
    card(
      "Active alerts",
      h(
        "div",
        { class: "stack" },
        h(
          "div",
          { class: "filters" },
          selectFilter({ label: "State", param: "state", all: "Firing and pending", options: ["firing", "pending"], value: state, sorted: false }),
          selectFilter({ label: "Severity", param: "severity", all: "Any severity", options: severities, value: severity }),
        ),
        at.el,
      ),
      { testid: "alerts", extra: h("span", { class: "muted small" }, `${f.count(firing)} firing · ${f.count(pending)} pending`) },
    ),
    card("Rule groups", gt.el, { testid: "rule-groups" }),
    card(
      "Rules",
      h(
        "div",
        { class: "stack" },
        h("div", { class: "filters" }, selectFilter({ label: "Health", param: "health", all: "Any health", options: ["ok", "err", "unknown"], value: health, sorted: false })),
        rt.el,
      ),
      { testid: "rules" },
    ),
  );

  function spec(name, v) {
    return { name, query: null, raw: String(v), fmt: f.count };
  }
}
