/**
 * Building blocks shared by the pages: instant-query helpers, stat tiles,
 * page headings, cards, links to objects, and the pods table (used by the
 * Pods, Node, Namespace and Workload pages).
 *
 * Stat tiles are test hooks: each value is an element with
 * data-testid="stat-<name>", data-query="<PromQL instant query>",
 * data-time="<the evaluation time, unix seconds>" (set by the app) and
 * data-value="<the value exactly as the API returned it>", with the
 * formatted text inside. When the query returned nothing the element shows
 * "–" and has data-empty-query instead of data-query and no data-value.
 * Numbers the page computed (not one query's answer) have neither.
 */

import { h } from "./dom.js";
import * as f from "./format.js";
import * as router from "./router.js";
import { m } from "./promql.js";
import { table } from "./table.js";

/**
 * instants runs named instant queries in parallel at the page's time:
 * instants(ctx, {cpu: "q1", mem: "q2"}) → {cpu: {query, result}, mem: ...}.
 */
export async function instants(ctx, queries) {
  const entries = Object.entries(queries);
  const results = await Promise.all(entries.map(([, q]) => ctx.query(q)));
  const out = {};
  entries.forEach(([k, q], i) => (out[k] = { query: q, result: results[i] }));
  return out;
}

/** first returns the first sample's value string of an instant result, or null. */
export function first(r) {
  const res = r.result || r;
  return res.length ? res[0].value[1] : null;
}

/** index maps an instant result by a key built from labels: index(r, (l) => l.node). */
export function index(r, keyFn) {
  const out = new Map();
  for (const s of r.result || r) out.set(keyFn(s.metric), s.value[1]);
  return out;
}

/** stat renders one value with its test hooks. */
export function stat(name, query, raw, fmt, attrs = {}) {
  const absent = raw === null || raw === undefined;
  return h(
    "span",
    {
      class: ["stat-value", attrs.class],
      // A query that returned nothing keeps it as data-empty-query (there is no number to compare).
      dataset: { testid: "stat-" + name, query: absent ? null : query, emptyQuery: absent ? query : null, value: absent ? null : raw },
      title: attrs.title || null,
    },
    absent ? f.DASH : fmt(raw),
  );
}

/** statOf renders a stat spec ({name, query, raw, fmt}). */
export function statOf(st) {
  return stat(st.name, st.query, st.raw, st.fmt);
}

/** tileStat is a stat from an instants() entry. */
export function tileStat(name, entry, fmt) {
  return { name, query: entry.query, raw: first(entry), fmt };
}

/**
 * tile renders a stat tile: title, main value, optional sub-values
 * ([label, stat]) and an optional bar (a ratio 0-1, e.g. usage/allocatable)
 * coloured by levels ([warn, critical] thresholds).
 */
export function tile({ title, main, subs = [], bar = null, barLabel = "", hint = null, tone = null, levels = [0.75, 0.9] }) {
  const ratio = bar === null || bar === undefined ? NaN : Number(bar);
  const level = ratio >= levels[1] ? "crit" : ratio >= levels[0] ? "warn" : "ok";
  return h(
    "div",
    { class: ["tile", tone ? "tone-" + tone : null] },
    h("div", { class: "tile-title" }, title),
    h("div", { class: "tile-main" }, stat(main.name, main.query, main.raw, main.fmt)),
    Number.isFinite(ratio)
      ? h(
          "div",
          {
            class: "bar " + level,
            role: "meter",
            "aria-valuemin": 0,
            "aria-valuemax": 100,
            "aria-valuenow": Math.round(ratio * 100),
            "aria-label": barLabel || title,
          },
          h("span", { style: { width: Math.min(100, Math.max(0, ratio * 100)).toFixed(1) + "%" } }),
        )
      : null,
    subs.length
      ? h(
          "dl",
          { class: "tile-subs" },
          subs.map(([label, s]) => h("div", null, h("dt", null, label), h("dd", null, stat(s.name, s.query, s.raw, s.fmt)))),
        )
      : null,
    hint ? h("div", { class: "tile-hint" }, hint) : null,
  );
}

export function tiles(...items) {
  return h("div", { class: "tiles" }, items);
}

/** pageHead renders the title block: a kind label, the name and facts (links). */
export function pageHead({ kind, title, facts = [], actions = null }) {
  return h(
    "div",
    { class: "page-head" },
    h(
      "div",
      { class: "page-title" },
      kind ? h("div", { class: "kind" }, kind) : null,
      h("h1", null, title),
      facts.length ? h("dl", { class: "facts" }, facts.filter(Boolean).map(([k, v]) => h("div", null, h("dt", null, k), h("dd", null, v)))) : null,
    ),
    actions ? h("div", { class: "page-actions" }, actions) : null,
  );
}

/** card wraps content with a heading. */
export function card(title, content, { testid = null, extra = null, cls = null } = {}) {
  return h(
    "section",
    { class: ["card", cls], dataset: { testid } },
    h("header", { class: "card-head" }, h("h2", null, title), extra),
    content,
  );
}

/** chartsGrid lays out chart cards two per row on wide screens. */
export function chartsGrid(cards) {
  return h("div", { class: "charts" }, cards.map((c) => c.el));
}

/* Links to object pages (keeping the time range), with their test ids. */
export const links = {
  node: (name) => ({ href: router.link(router.path("node", name)), testid: "link-node" }),
  namespace: (ns) => ({ href: router.link(router.path("namespace", ns)), testid: "link-namespace" }),
  workload: (ns, kind, name) => ({ href: router.link(router.path("workload", ns, kind, name)), testid: "link-workload" }),
  pod: (ns, pod) => ({ href: router.link(router.path("pod", ns, pod)), testid: "link-pod" }),
  container: (ns, pod, c) => ({ href: router.link(router.path("container", ns, pod, c)), testid: "link-container" }),
};

/** a renders a link object from `links` with its text. */
export function a(link, text) {
  return h("a", { href: link.href, dataset: { testid: link.testid } }, text);
}

/**
 * loadPods fetches the pods table's data. infoMatch selects pod_info
 * (node, namespace, workload, workload_kind); metricMatch the pod_* series
 * (which carry namespace, node and pod only). Rows are the pods pod_info
 * names, plus (when the selectors are the same) pods that have usage but
 * no pod_info.
 */
export async function loadPods(ctx, infoMatch, metricMatch = infoMatch) {
  const sameSel = JSON.stringify(infoMatch) === JSON.stringify(metricMatch);
  const q = {
    info: `max by (namespace, pod, node, workload_kind, workload) (${m("pod_info", infoMatch)})`,
    cpu: m("pod_cpu_usage_cores", metricMatch),
    cpu_request: m("pod_cpu_request_cores", metricMatch),
    cpu_limit: m("pod_cpu_limit_cores", metricMatch),
    memory: m("pod_memory_working_set_bytes", metricMatch),
    memory_request: m("pod_memory_request_bytes", metricMatch),
    memory_limit: m("pod_memory_limit_bytes", metricMatch),
    restarts: m("pod_restart_count", metricMatch),
    uptime: m("pod_uptime_seconds", metricMatch),
  };
  const r = await instants(ctx, q);
  const key = (l) => `${l.namespace}/${l.pod}`;
  const rows = new Map();
  for (const s of r.info.result) {
    const l = s.metric;
    rows.set(key(l), { namespace: l.namespace, pod: l.pod, node: l.node || "", workload_kind: l.workload_kind || "", workload: l.workload || "" });
  }
  if (sameSel) {
    for (const s of r.cpu.result.concat(r.memory.result)) {
      const k = key(s.metric);
      if (!rows.has(k)) rows.set(k, { namespace: s.metric.namespace, pod: s.metric.pod, node: s.metric.node || "", workload_kind: "", workload: "" });
    }
  }
  const cols = ["cpu", "cpu_request", "cpu_limit", "memory", "memory_request", "memory_limit", "restarts", "uptime"];
  const maps = Object.fromEntries(cols.map((c) => [c, index(r[c], key)]));
  for (const [k, row] of rows) for (const c of cols) row[c] = maps[c].get(k) ?? null;
  return { rows: [...rows.values()], queries: q };
}

/** podsTable renders loadPods' rows; hide: column ids to leave out (e.g. ["node"]). */
export function podsTable(data, { hide = [], sortParam = "sort", sort = "cpu:desc", name = "pods", filter = "" } = {}) {
  const q = data.queries;
  const cols = [
    { id: "pod", label: "Pod", get: (r) => r.pod, link: (r) => links.pod(r.namespace, r.pod) },
    { id: "namespace", label: "Namespace", get: (r) => r.namespace, link: (r) => links.namespace(r.namespace) },
    { id: "node", label: "Node", get: (r) => r.node, link: (r) => links.node(r.node) },
    {
      id: "workload",
      label: "Workload",
      get: (r) => r.workload,
      fmt: (v, r) => `${v}`,
      link: (r) => (r.workload ? links.workload(r.namespace, r.workload_kind, r.workload) : null),
      cellTitle: (r) => r.workload_kind || null,
    },
    { id: "cpu", label: "CPU", num: true, fmt: f.cores, get: (r) => r.cpu, query: q.cpu },
    { id: "cpu_request", label: "CPU req.", num: true, fmt: f.cores, get: (r) => r.cpu_request, query: q.cpu_request, title: "Sort by CPU request" },
    { id: "cpu_limit", label: "CPU limit", num: true, fmt: f.cores, get: (r) => r.cpu_limit, query: q.cpu_limit },
    { id: "memory", label: "Memory", num: true, fmt: f.bytes, get: (r) => r.memory, query: q.memory, title: "Sort by memory working set" },
    { id: "memory_request", label: "Mem. req.", num: true, fmt: f.bytes, get: (r) => r.memory_request, query: q.memory_request, title: "Sort by memory request" },
    { id: "memory_limit", label: "Mem. limit", num: true, fmt: f.bytes, get: (r) => r.memory_limit, query: q.memory_limit, title: "Sort by memory limit" },
    { id: "restarts", label: "Restarts", num: true, fmt: f.count, get: (r) => r.restarts, query: q.restarts, cls: (r) => (Number(r.restarts) > 0 ? "warn-text" : null) },
    { id: "uptime", label: "Uptime", num: true, fmt: f.duration, get: (r) => r.uptime, query: q.uptime },
  ].filter((c) => !hide.includes(c.id));
  return table({
    name,
    columns: cols,
    rows: data.rows,
    key: (r) => `${r.namespace}/${r.pod}`,
    sort,
    sortParam,
    filter,
    noun: "pods",
    empty: "no pods match",
    none: "no pods",
  });
}

/** notice renders an inline message box. */
export function notice(kind, title, ...body) {
  return h("div", { class: "notice notice-" + kind, role: kind === "error" ? "alert" : "status" }, title ? h("strong", null, title) : null, ...body);
}

/**
 * loadWorkloads fetches the workloads table's data (of one namespace, or
 * all when ns is empty). Rows are the workloads pod_info names (the pods'
 * owners) and those with usage series.
 */
export async function loadWorkloads(ctx, ns) {
  const L = { namespace: ns };
  const q = {
    pods: `count by (namespace, workload_kind, workload) (${m("pod_info", L, ['workload!=""'])})`,
    cpu: m("workload_cpu_usage_cores", L),
    cpu_request: m("workload_cpu_request_cores", L),
    cpu_limit: m("workload_cpu_limit_cores", L),
    memory: m("workload_memory_working_set_bytes", L),
    memory_request: m("workload_memory_request_bytes", L),
    memory_limit: m("workload_memory_limit_bytes", L),
    restarts: m("workload_restart_count", L),
  };
  const r = await instants(ctx, q);
  const key = (l) => `${l.namespace}/${l.workload_kind}/${l.workload}`;
  const rows = new Map();
  for (const s of r.pods.result.concat(r.cpu.result, r.memory.result)) {
    const l = s.metric;
    if (!l.workload) continue;
    if (!rows.has(key(l))) rows.set(key(l), { namespace: l.namespace, workload_kind: l.workload_kind || "", workload: l.workload });
  }
  const cols = Object.keys(q);
  const maps = Object.fromEntries(cols.map((c) => [c, index(r[c], key)]));
  for (const [k, row] of rows) for (const c of cols) row[c] = maps[c].get(k) ?? null;
  return { rows: [...rows.values()], queries: q };
}

/** workloadsTable renders loadWorkloads' rows. */
export function workloadsTable(data, { hide = [], sortParam = "sort", sort = "cpu:desc", filter = "" } = {}) {
  const q = data.queries;
  const cols = [
    { id: "workload", label: "Workload", get: (r) => r.workload, link: (r) => links.workload(r.namespace, r.workload_kind, r.workload) },
    { id: "kind", label: "Kind", get: (r) => r.workload_kind },
    { id: "namespace", label: "Namespace", get: (r) => r.namespace, link: (r) => links.namespace(r.namespace) },
    { id: "pods", label: "Pods", num: true, fmt: f.count, get: (r) => r.pods, query: q.pods },
    { id: "cpu", label: "CPU", num: true, fmt: f.cores, get: (r) => r.cpu, query: q.cpu },
    { id: "cpu_request", label: "CPU req.", num: true, fmt: f.cores, get: (r) => r.cpu_request, query: q.cpu_request, title: "Sort by CPU request" },
    { id: "cpu_limit", label: "CPU limit", num: true, fmt: f.cores, get: (r) => r.cpu_limit, query: q.cpu_limit },
    { id: "memory", label: "Memory", num: true, fmt: f.bytes, get: (r) => r.memory, query: q.memory, title: "Sort by memory working set" },
    { id: "memory_request", label: "Mem. req.", num: true, fmt: f.bytes, get: (r) => r.memory_request, query: q.memory_request, title: "Sort by memory request" },
    { id: "memory_limit", label: "Mem. limit", num: true, fmt: f.bytes, get: (r) => r.memory_limit, query: q.memory_limit, title: "Sort by memory limit" },
    { id: "restarts", label: "Restarts", num: true, fmt: f.count, get: (r) => r.restarts, query: q.restarts, cls: (r) => (Number(r.restarts) > 0 ? "warn-text" : null) },
  ].filter((c) => !hide.includes(c.id));
  return table({
    name: "workloads",
    columns: cols,
    rows: data.rows,
    key: (r) => `${r.namespace}/${r.workload_kind}/${r.workload}`,
    sort,
    sortParam,
    filter,
    noun: "workloads",
    empty: "no workloads match",
    none: "no workloads",
  });
}

/**
 * usageCharts describes the CPU, memory, network and filesystem charts of a
 * roll-up level (namespace_, workload_, pod_) for the label matchers L.
 */
export function usageCharts(prefix, L, { markers = [], network = true, filesystem = true, ephemeral = true } = {}) {
  const charts = [
    {
      name: "cpu",
      title: "CPU",
      unit: "cores",
      series: [
        { label: "usage", query: m(`${prefix}_cpu_usage_cores`, L), style: "area" },
        { label: "request", query: m(`${prefix}_cpu_request_cores`, L), style: "request" },
        { label: "limit", query: m(`${prefix}_cpu_limit_cores`, L), style: "limit" },
      ],
      markers,
    },
    {
      name: "memory",
      title: "Memory",
      unit: "bytes",
      series: [
        { label: "working set", query: m(`${prefix}_memory_working_set_bytes`, L), style: "area" },
        { label: "usage", query: m(`${prefix}_memory_usage_bytes`, L), style: "line" },
        { label: "request", query: m(`${prefix}_memory_request_bytes`, L), style: "request" },
        { label: "limit", query: m(`${prefix}_memory_limit_bytes`, L), style: "limit" },
      ],
      markers,
    },
  ];
  if (network) {
    charts.push({
      name: "network",
      title: "Network",
      unit: "bytes/s",
      series: [
        { label: "receive", query: m(`${prefix}_network_receive_bytes_per_second`, L), style: "line" },
        { label: "transmit", query: m(`${prefix}_network_transmit_bytes_per_second`, L), style: "line" },
      ],
      markers,
    });
  }
  if (filesystem) {
    const series = [{ label: "filesystem", query: m(`${prefix}_filesystem_usage_bytes`, L), style: "area" }];
    if (ephemeral) series.push({ label: "ephemeral storage", query: m(`${prefix}_ephemeral_storage_usage_bytes`, L), style: "line" });
    charts.push({ name: "filesystem", title: "Filesystem", unit: "bytes", series, markers });
  }
  return charts;
}

/** usageQueries are the instant queries of usageTiles for a level and matchers. */
export function usageQueries(prefix, L) {
  return {
    cpu: m(`${prefix}_cpu_usage_cores`, L),
    cpu_request: m(`${prefix}_cpu_request_cores`, L),
    cpu_limit: m(`${prefix}_cpu_limit_cores`, L),
    cpu_of_request: `${m(`${prefix}_cpu_usage_cores`, L)} / ${m(`${prefix}_cpu_request_cores`, L)}`,
    memory: m(`${prefix}_memory_working_set_bytes`, L),
    memory_request: m(`${prefix}_memory_request_bytes`, L),
    memory_limit: m(`${prefix}_memory_limit_bytes`, L),
    memory_of_request: `${m(`${prefix}_memory_working_set_bytes`, L)} / ${m(`${prefix}_memory_request_bytes`, L)}`,
    restarts: m(`${prefix}_restart_count`, L),
  };
}

/** usageTiles renders CPU and memory tiles (usage against request and limit) from usageQueries' results. */
export function usageTiles(r) {
  const s = (n, k, fmt) => tileStat(n, r[k], fmt);
  return [
    tile({
      title: "CPU usage",
      main: s("cpu-usage", "cpu", f.cores),
      bar: first(r.cpu_of_request),
      barLabel: "CPU usage of request",
      levels: [1, 2], // above its request a container competes for CPU; only the limit throttles it
      subs: [
        ["of request", s("cpu-usage-of-request", "cpu_of_request", f.percent)],
        ["Request", s("cpu-request", "cpu_request", f.cores)],
        ["Limit", s("cpu-limit", "cpu_limit", f.cores)],
      ],
    }),
    tile({
      title: "Memory working set",
      main: s("memory-working-set", "memory", f.bytes),
      bar: first(r.memory_of_request),
      barLabel: "Memory working set of request",
      levels: [0.9, 1], // above its request a pod is among the first evicted under memory pressure
      subs: [
        ["of request", s("memory-usage-of-request", "memory_of_request", f.percent)],
        ["Request", s("memory-request", "memory_request", f.bytes)],
        ["Limit", s("memory-limit", "memory_limit", f.bytes)],
      ],
    }),
  ];
}

/**
 * selectFilter renders a labelled <select> bound to a URL parameter
 * (changing it reloads the page's data): options are values, "" = all.
 */
export function selectFilter({ label, param, options, value, all = "All", id }) {
  const opts = [...new Set(options.filter(Boolean))].sort((x, y) => x.localeCompare(y, undefined, { numeric: true }));
  if (value && !opts.includes(value)) opts.unshift(value);
  const sel = h(
    "select",
    { class: "select", id: id || "filter-" + param, dataset: { testid: "filter-" + param } },
    h("option", { value: "" }, all),
    opts.map((o) => h("option", { value: o }, o)),
  );
  sel.value = value || "";
  sel.addEventListener("change", () => router.update({ [param]: sel.value || null }, { reload: true, replace: false }));
  return h("label", { for: sel.id }, label, sel);
}
