/**
 * Kubernetes events on an object's page: the events of the object (and,
 * for a namespace or a workload, of what it holds; for a node, of what
 * happened on it: its pods') over the page's time range, from kubemon's GET api/v1/events (docs/events.md), newest first,
 * as a sortable table with Warning events highlighted; the same events
 * give the charts their Warning-event markers (chart.js).
 *
 *   const ev = loadEvents(ctx, {namespace: ns, kind: "Pod", name: pod});  // a promise
 *   charts: markers: [..., {kind: "event", events: ev}]
 *   eventsCard(await ev, {filter})                                          // the table
 *
 * Test hooks: the table is data-testid="table-events" with data-query, the
 * relative URL it was read from; each row's data-key is the event's UID,
 * its last-seen and first-seen cells carry data-value in unix seconds, its
 * count cell the count, and Warning rows the class "row-warning" and
 * data-type="Warning".
 */

import * as api from "./api.js";
import { h } from "./dom.js";
import * as f from "./format.js";
import { containerOf, eventTime } from "./chart.js";
import { table } from "./table.js";
import { a, card, links, notice } from "./components.js";

/** Most events a page asks for (the API's answer says when more matched). */
export const EVENTS_LIMIT = 1000;

/** The workload kinds that have a page of their own (the pods' owners). */
const WORKLOAD_KINDS = new Set(["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "ReplicationController"]);

/**
 * loadEvents fetches the events matching params (namespace, kind, name,
 * node, …) that last happened in the page's range; keep, when given, leaves
 * some out (a workload's page keeps its own and its pods'). Resolves to
 * {url, events, warnings}; events (and url) are null when this kubemon
 * keeps no events (nothing was asked, or the endpoint answered 404).
 */
export async function loadEvents(ctx, params, keep) {
  const r = await api.events({ ...params, start: ctx.range.start, end: ctx.range.end, limit: EVENTS_LIMIT }, { signal: ctx.signal });
  if (keep && r.events) r.events = r.events.filter(keep);
  return r;
}

/**
 * workloadEvents keeps the events of a workload (kind, name), of its pods
 * (a Set of pod names) and of what it owns by name: a Deployment's
 * ReplicaSets (NAME-<hash>), a CronJob's Jobs (NAME-<digits>).
 */
export function workloadEvents(kind, name, pods) {
  const rs = new RegExp("^" + name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") + "-[a-z0-9]+$");
  const job = new RegExp("^" + name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") + "-[0-9]+$");
  return (e) => {
    const o = e.involvedObject || {};
    if (o.kind === kind && o.name === name) return true;
    if (o.kind === "Pod") return pods.has(o.name);
    if (kind === "Deployment" && o.kind === "ReplicaSet") return rs.test(o.name);
    if (kind === "CronJob" && o.kind === "Job") return job.test(o.name);
    return false;
  };
}

/** objectLink renders an event's involved object, linked to its page when kubemon has one. */
function objectCell(e) {
  const o = e.involvedObject || {};
  const ns = o.namespace || e.namespace;
  const ctr = containerOf(o.fieldPath);
  let name = o.name || "";
  if (o.kind === "Pod" && ns) name = a(links.pod(ns, o.name), o.name);
  else if (o.kind === "Node") name = a(links.node(o.name), o.name);
  else if (o.kind === "Namespace") name = a(links.namespace(o.name), o.name);
  else if (WORKLOAD_KINDS.has(o.kind) && ns) name = a(links.workload(ns, o.kind, o.name), o.name);
  return h(
    "span",
    null,
    h("span", { class: "muted" }, (o.kind || "") + " "),
    name,
    ctr && o.kind === "Pod" && ns ? [h("span", { class: "muted" }, " / "), a(links.container(ns, o.name, ctr), ctr)] : ctr ? ` / ${ctr}` : null,
  );
}

const objectText = (e) => {
  const o = e.involvedObject || {};
  const ctr = containerOf(o.fieldPath);
  return `${o.kind || ""} ${o.name || ""}${ctr ? " / " + ctr : ""}`;
};

const sourceText = (e) => {
  const s = e.source || {};
  const who = s.component || e.reportingController || "";
  const where = s.host || e.reportingInstance || "";
  return who && where && where !== who ? `${who} on ${where}` : who || where;
};

/**
 * eventsTable renders the events (newest first unless the URL's esort says
 * otherwise). of: "pod" on a pod's or a container's page (a Container
 * column instead of the Object), else the involved object with links (a
 * node's page: the Node and its pods).
 */
export function eventsTable(data, { filter = "", of = "", dataset = {} } = {}) {
  const hide = of === "pod" ? ["object"] : ["container"];
  const time = (v) => f.dateTime(v, true);
  const cols = [
    { id: "last", label: "Last seen", num: true, fmt: time, get: (e) => eventTime(e), title: "Sort by when it last happened" },
    {
      id: "type",
      label: "Type",
      get: (e) => e.type,
      render: (e) => h("span", { class: ["pill", e.type === "Warning" ? "pill-warn" : null] }, e.type || "–"),
    },
    { id: "reason", label: "Reason", get: (e) => e.reason, cls: (e) => (e.type === "Warning" ? "warn-text" : null) },
    { id: "object", label: "Object", get: objectText, render: (e) => objectCell(e) },
    {
      id: "container",
      label: "Container",
      get: (e) => containerOf((e.involvedObject || {}).fieldPath) || null,
      render: (e, text) => {
        const o = e.involvedObject || {};
        const ns = o.namespace || e.namespace;
        const c = containerOf(o.fieldPath);
        return c && o.kind === "Pod" && ns ? a(links.container(ns, o.name, c), c) : text;
      },
    },
    { id: "message", label: "Message", get: (e) => e.message, cls: () => "wrap" },
    { id: "count", label: "Count", num: true, fmt: f.count, get: (e) => e.count },
    { id: "first", label: "First seen", num: true, fmt: time, get: (e) => Date.parse(e.firstTime) / 1000, title: "Sort by when it first happened" },
    { id: "source", label: "Source", get: sourceText },
  ].filter((c) => !hide.includes(c.id));
  return table({
    name: "events",
    columns: cols,
    rows: data.events || [],
    key: (e) => e.uid,
    sort: "last:desc",
    sortParam: "esort",
    filter,
    noun: "events",
    rowAttrs: (e) => ({ class: e.type === "Warning" ? "row-warning" : null, dataset: { type: e.type } }),
    attrs: { dataset: { ...dataset, query: data.url } },
  });
}

/**
 * eventsCard renders the Events card: the table (t from eventsTable) and
 * what the API warned about (older events left out); when this kubemon
 * keeps no events, a quiet note instead (data-testid="events-off"), not
 * a warning: it is how it was configured.
 */
export function eventsCard(data, t) {
  if (data.events === null) {
    return card(
      "Events",
      h("p", { class: "muted small", dataset: { testid: "events-off" } }, "Events are off: this kubemon keeps no Kubernetes events (--events.enabled=false)."),
      { testid: "events" },
    );
  }
  const warnings = data.warnings || [];
  const n = data.events.length;
  const warn = data.events.filter((e) => e.type === "Warning").length;
  return card(
    "Events",
    h(
      "div",
      { class: "stack" },
      warnings.map((w) => notice("warn", null, w)),
      t.el,
    ),
    {
      testid: "events",
      extra: h("span", { class: "muted small" }, `${f.count(n)} in this range${warn ? ` · ${f.count(warn)} Warning` : ""}`),
    },
  );
}
