/**
 * Building blocks shared by the pages: instant-query helpers, stat tiles,
 * page headings, cards, links to objects, table columns, the pods and
 * workloads tables (used by the Pods, Workloads, Node, Namespace and
 * Workload pages), the namespace and node filters, and the queries, tiles
 * and charts of a level: usage against requests and limits (namespace,
 * workload, pod, container) or against allocatable and capacity (cluster,
 * node). Series names and label keys come from series.js.
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
import { by, m } from "./promql.js";
import { label as K, series as S } from "./series.js";
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

/** index maps an instant result by a key built from labels: index(r, (l) => l[K.node]). */
export function index(r, keyFn) {
  const out = new Map();
  for (const s of r.result || r) out.set(keyFn(s.metric), s.value[1]);
  return out;
}

/**
 * joinColumns sets row[c], for each column c, to the value instants entry
 * r[c] has for the row's key (null when it has none); rows: a Map key → row,
 * keyFn builds the key from a sample's labels. Returns the rows.
 */
export function joinColumns(rows, r, cols, keyFn) {
  for (const c of cols) {
    const values = index(r[c], keyFn);
    for (const [k, row] of rows) row[c] = values.get(k) ?? null;
  }
  return [...rows.values()];
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

/**
 * stats returns s(name, key, fmt), the stat spec of instants() entry r[key]
 * named prefix + name: const s = stats(r); statOf(s("cpu-usage", "cpu", f.cores)).
 */
export function stats(r, prefix = "") {
  return (name, key, fmt) => ({ name: prefix + name, query: r[key].query, raw: first(r[key]), fmt });
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
    h("div", { class: "tile-main" }, statOf(main)),
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
          subs.map(([label, s]) => h("div", null, h("dt", null, label), h("dd", null, statOf(s)))),
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
 * numColumn returns num(id, label, fmt, title): a numeric table column
 * showing row[id], the answer of queries[id] (its header's data-query).
 */
export function numColumn(queries) {
  return (id, label, fmt, title) => ({ id, label, num: true, fmt, get: (x) => x[id], query: queries[id], title });
}

/** restartsColumn is the Restarts column of num = numColumn(queries), highlighted above zero. */
export function restartsColumn(num) {
  return { ...num("restarts", "Restarts", f.count), cls: (x) => (Number(x.restarts) > 0 ? "warn-text" : null) };
}

/** usageColumns are the CPU, memory and restarts columns of the pods and workloads tables. */
function usageColumns(num) {
  return [
    num("cpu", "CPU", f.cores),
    num("cpu_request", "CPU req.", f.cores, "Sort by CPU request"),
    num("cpu_limit", "CPU limit", f.cores),
    num("memory", "Memory", f.bytes, "Sort by memory working set"),
    num("memory_request", "Mem. req.", f.bytes, "Sort by memory request"),
    num("memory_limit", "Mem. limit", f.bytes, "Sort by memory limit"),
    restartsColumn(num),
  ];
}

/**
 * loadPods fetches the pods table's data. infoMatch selects the pods' info
 * series (by node, namespace, workload kind and workload); metricMatch
 * their usage series (which carry namespace, node and pod only). Rows are
 * the pods the info series names, plus (when the selectors are the same)
 * pods that have usage but no info series.
 */
export async function loadPods(ctx, infoMatch, metricMatch = infoMatch) {
  const sameSel = JSON.stringify(infoMatch) === JSON.stringify(metricMatch);
  const q = {
    info: `max by ${by(K.namespace, K.pod, K.node, K.workloadKind, K.workload)} (${m(S.pod.info, infoMatch)})`,
    cpu: m(S.pod.cpuUsageRate, metricMatch),
    cpu_request: m(S.pod.cpuRequest, metricMatch),
    cpu_limit: m(S.pod.cpuLimit, metricMatch),
    memory: m(S.pod.memoryWorkingSet, metricMatch),
    memory_request: m(S.pod.memoryRequest, metricMatch),
    memory_limit: m(S.pod.memoryLimit, metricMatch),
    restarts: m(S.pod.restarts, metricMatch),
    uptime: m(S.pod.uptime, metricMatch),
  };
  const r = await instants(ctx, q);
  const key = (l) => `${l[K.namespace]}/${l[K.pod]}`;
  const rows = new Map();
  for (const s of r.info.result) {
    const l = s.metric;
    rows.set(key(l), { namespace: l[K.namespace], pod: l[K.pod], node: l[K.node] || "", workload_kind: l[K.workloadKind] || "", workload: l[K.workload] || "" });
  }
  if (sameSel) {
    for (const s of r.cpu.result.concat(r.memory.result)) {
      const l = s.metric;
      const k = key(l);
      if (!rows.has(k)) rows.set(k, { namespace: l[K.namespace], pod: l[K.pod], node: l[K.node] || "", workload_kind: "", workload: "" });
    }
  }
  const cols = Object.keys(q).filter((c) => c !== "info");
  return { rows: joinColumns(rows, r, cols, key), queries: q };
}

/** podsTable renders loadPods' rows; hide: column ids to leave out (e.g. ["node"]). */
export function podsTable(data, { hide = [], sortParam = "sort", sort = "cpu:desc", name = "pods", filter = "" } = {}) {
  const num = numColumn(data.queries);
  const cols = [
    { id: "pod", label: "Pod", get: (r) => r.pod, link: (r) => links.pod(r.namespace, r.pod) },
    { id: "namespace", label: "Namespace", get: (r) => r.namespace, link: (r) => links.namespace(r.namespace) },
    { id: "node", label: "Node", get: (r) => r.node, link: (r) => links.node(r.node) },
    {
      id: "workload",
      label: "Workload",
      get: (r) => r.workload,
      link: (r) => (r.workload ? links.workload(r.namespace, r.workload_kind, r.workload) : null),
      cellTitle: (r) => r.workload_kind || null,
    },
    ...usageColumns(num),
    num("uptime", "Uptime", f.duration),
  ].filter((c) => !hide.includes(c.id));
  return table({ name, columns: cols, rows: data.rows, key: (r) => `${r.namespace}/${r.pod}`, sort, sortParam, filter, noun: "pods" });
}

/** notice renders an inline message box. */
export function notice(kind, title, ...body) {
  return h("div", { class: "notice notice-" + kind, role: kind === "error" ? "alert" : "status" }, title ? h("strong", null, title) : null, ...body);
}

/**
 * loadWorkloads fetches the workloads table's data (of one namespace, or
 * all when ns is empty). Rows are the workloads the pods' info series
 * names (the pods' owners) and those with usage series.
 */
export async function loadWorkloads(ctx, ns) {
  const L = { [K.namespace]: ns };
  const q = {
    pods: `count by ${by(K.namespace, K.workloadKind, K.workload)} (${m(S.pod.info, L, [`${K.workload}!=""`])})`,
    cpu: m(S.workload.cpuUsageRate, L),
    cpu_request: m(S.workload.cpuRequest, L),
    cpu_limit: m(S.workload.cpuLimit, L),
    memory: m(S.workload.memoryWorkingSet, L),
    memory_request: m(S.workload.memoryRequest, L),
    memory_limit: m(S.workload.memoryLimit, L),
    restarts: m(S.workload.restarts, L),
  };
  const r = await instants(ctx, q);
  const key = (l) => `${l[K.namespace]}/${l[K.workloadKind]}/${l[K.workload]}`;
  const rows = new Map();
  for (const s of r.pods.result.concat(r.cpu.result, r.memory.result)) {
    const l = s.metric;
    if (!l[K.workload]) continue;
    if (!rows.has(key(l))) rows.set(key(l), { namespace: l[K.namespace], workload_kind: l[K.workloadKind] || "", workload: l[K.workload] });
  }
  return { rows: joinColumns(rows, r, Object.keys(q), key), queries: q };
}

/** workloadsTable renders loadWorkloads' rows. */
export function workloadsTable(data, { hide = [], sortParam = "sort", sort = "cpu:desc", filter = "" } = {}) {
  const num = numColumn(data.queries);
  const cols = [
    { id: "workload", label: "Workload", get: (r) => r.workload, link: (r) => links.workload(r.namespace, r.workload_kind, r.workload) },
    { id: "kind", label: "Kind", get: (r) => r.workload_kind },
    { id: "namespace", label: "Namespace", get: (r) => r.namespace, link: (r) => links.namespace(r.namespace) },
    num("pods", "Pods", f.count),
    ...usageColumns(num),
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
  });
}

/**
 * metrics returns q(metric): the series of a level (series.js's
 * series.<level>) with the matchers L, by metric key: q("cpuUsageRate").
 */
const metrics = (level, L) => (metric) => m(level[metric], L);

/** networkChart is the receive and transmit chart of a level (q from metrics()). */
function networkChart(q, markers) {
  return {
    name: "network",
    title: "Network",
    unit: "bytes/s",
    series: [
      { label: "receive", query: q("networkRxRate"), style: "line" },
      { label: "transmit", query: q("networkTxRate"), style: "line" },
    ],
    markers,
  };
}

/** networkTile is the network tile of stats s (rx and tx). */
function networkTile(s) {
  return tile({ title: "Network received", main: s("network-receive", "rx", f.byteRate), subs: [["Transmitted", s("network-transmit", "tx", f.byteRate)]] });
}

/**
 * usageCharts describes the CPU, memory, network and filesystem charts of a
 * roll-up level (series.namespace, .workload, .pod) for the label matchers L.
 */
export function usageCharts(level, L, { markers = [], network = true, filesystem = true, ephemeral = true } = {}) {
  const q = metrics(level, L);
  const charts = [
    {
      name: "cpu",
      title: "CPU",
      unit: "cores",
      series: [
        { label: "usage", query: q("cpuUsageRate"), style: "area" },
        { label: "request", query: q("cpuRequest"), style: "request" },
        { label: "limit", query: q("cpuLimit"), style: "limit" },
      ],
      markers,
    },
    {
      name: "memory",
      title: "Memory",
      unit: "bytes",
      series: [
        { label: "working set", query: q("memoryWorkingSet"), style: "area" },
        { label: "usage", query: q("memoryUsage"), style: "line" },
        { label: "request", query: q("memoryRequest"), style: "request" },
        { label: "limit", query: q("memoryLimit"), style: "limit" },
      ],
      markers,
    },
  ];
  if (network) charts.push(networkChart(q, markers));
  if (filesystem) {
    const series = [{ label: "filesystem", query: q("filesystemUsage"), style: "area" }];
    if (ephemeral) series.push({ label: "ephemeral storage", query: q("ephemeralStorageUsage"), style: "line" });
    charts.push({ name: "filesystem", title: "Filesystem", unit: "bytes", series, markers });
  }
  return charts;
}

/** usageQueries are the instant queries of usageTiles for a level (series.<level>) and matchers. */
export function usageQueries(level, L) {
  const q = metrics(level, L);
  return {
    cpu: q("cpuUsageRate"),
    cpu_request: q("cpuRequest"),
    cpu_limit: q("cpuLimit"),
    cpu_of_request: `${q("cpuUsageRate")} / ${q("cpuRequest")}`,
    memory: q("memoryWorkingSet"),
    memory_request: q("memoryRequest"),
    memory_limit: q("memoryLimit"),
    memory_of_request: `${q("memoryWorkingSet")} / ${q("memoryRequest")}`,
    restarts: q("restarts"),
  };
}

/** usageTiles renders CPU and memory tiles (usage against request and limit) from usageQueries' results. */
export function usageTiles(r) {
  const s = stats(r);
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

/** networkStorageQueries are the instant queries of networkStorageTiles for a roll-up level (series.namespace, .workload, .pod). */
export function networkStorageQueries(level, L) {
  const q = metrics(level, L);
  return {
    rx: q("networkRxRate"),
    tx: q("networkTxRate"),
    fs: q("filesystemUsage"),
    ephemeral: q("ephemeralStorageUsage"),
  };
}

/** networkStorageTiles renders the network and filesystem tiles from networkStorageQueries' results. */
export function networkStorageTiles(r) {
  const s = stats(r);
  return [
    networkTile(s),
    tile({ title: "Filesystem used", main: s("filesystem-usage", "fs", f.bytes), subs: [["Ephemeral storage", s("ephemeral-storage-usage", "ephemeral", f.bytes)]] }),
  ];
}

/**
 * capacityQueries are the instant queries of capacityTiles for the cluster
 * (series.cluster, no matchers) or a node (series.node, its node matcher).
 */
export function capacityQueries(level, L) {
  const q = metrics(level, L);
  return {
    cpu: q("cpuUsageRate"),
    cpu_utilization: q("cpuUtilization"),
    cpu_allocatable: q("cpuAllocatable"),
    cpu_capacity: q("cpuCapacity"),
    cpu_request: q("cpuRequest"),
    cpu_reservation: q("cpuReservation"),
    cpu_limit: q("cpuLimit"),
    memory: q("memoryWorkingSet"),
    memory_utilization: q("memoryUtilization"),
    memory_allocatable: q("memoryAllocatable"),
    memory_capacity: q("memoryCapacity"),
    memory_request: q("memoryRequest"),
    memory_reservation: q("memoryReservation"),
    memory_limit: q("memoryLimit"),
    rx: q("networkRxRate"),
    tx: q("networkTxRate"),
    fs: q("filesystemUsage"),
    fs_capacity: q("filesystemLimit"),
    fs_ratio: `${q("filesystemUsage")} / ${q("filesystemLimit")}`,
    restarts: q("restarts"),
  };
}

/**
 * capacityTiles renders the cluster's or a node's tiles from capacityQueries'
 * results (plus fs_available, when queried), with stat names prefixed by p
 * ("cluster-" on the Overview): {cpu, memory} (usage against allocatable and
 * capacity), {cpuRequested, memoryRequested} (requests, reservation and
 * limits), network and filesystem.
 */
export function capacityTiles(r, p = "") {
  const s = stats(r, p);
  const usage = (res, title, name, fmt) =>
    tile({
      title,
      main: s(name, res, fmt),
      bar: first(r[`${res}_utilization`]),
      barLabel: `${title} of allocatable`,
      subs: [
        ["of allocatable", s(`${res}-utilization`, `${res}_utilization`, f.percent)],
        ["Allocatable", s(`${res}-allocatable`, `${res}_allocatable`, fmt)],
        ["Capacity", s(`${res}-capacity`, `${res}_capacity`, fmt)],
      ],
    });
  const requested = (res, label, fmt) =>
    tile({
      title: `${label} requested`,
      main: s(`${res}-request`, `${res}_request`, fmt),
      bar: first(r[`${res}_reservation`]),
      barLabel: `${label} requests of allocatable`,
      subs: [
        ["Reservation", s(`${res}-reservation`, `${res}_reservation`, f.percent)],
        ["Limits", s(`${res}-limit`, `${res}_limit`, fmt)],
      ],
    });
  const fsSubs = [
    ["of capacity", s("filesystem-utilization", "fs_ratio", f.percent)],
    ["Capacity", s("filesystem-capacity", "fs_capacity", f.bytes)],
  ];
  if (r.fs_available) fsSubs.push(["Available", s("filesystem-available", "fs_available", f.bytes)]);
  return {
    cpu: usage("cpu", "CPU usage", "cpu-usage", f.cores),
    memory: usage("memory", "Memory working set", "memory-working-set", f.bytes),
    cpuRequested: requested("cpu", "CPU", f.cores),
    memoryRequested: requested("memory", "Memory", f.bytes),
    network: networkTile(s),
    filesystem: tile({
      title: "Filesystem used",
      main: s("filesystem-usage", "fs", f.bytes),
      bar: first(r.fs_ratio),
      barLabel: "Filesystem used of capacity",
      subs: fsSubs,
    }),
  };
}

/**
 * capacityCharts describes the CPU, memory, network and filesystem charts of
 * the cluster or a node (see capacityQueries) with request, allocatable and
 * capacity lines; memoryUsage adds the memory usage line.
 */
export function capacityCharts(level, L, { memoryUsage = false, markers = [] } = {}) {
  const q = metrics(level, L);
  const memory = [
    { label: "working set", query: q("memoryWorkingSet"), style: "area" },
    memoryUsage ? { label: "usage", query: q("memoryUsage"), style: "line" } : null,
    { label: "requests", query: q("memoryRequest"), style: "request" },
    { label: "allocatable", query: q("memoryAllocatable"), style: "allocatable" },
    { label: "capacity", query: q("memoryCapacity"), style: "capacity" },
  ];
  return [
    {
      name: "cpu",
      title: "CPU",
      unit: "cores",
      series: [
        { label: "usage", query: q("cpuUsageRate"), style: "area" },
        { label: "requests", query: q("cpuRequest"), style: "request" },
        { label: "allocatable", query: q("cpuAllocatable"), style: "allocatable" },
        { label: "capacity", query: q("cpuCapacity"), style: "capacity" },
      ],
      markers,
    },
    { name: "memory", title: "Memory", unit: "bytes", series: memory.filter(Boolean), markers },
    networkChart(q, markers),
    {
      name: "filesystem",
      title: "Filesystem",
      unit: "bytes",
      series: [
        { label: "used", query: q("filesystemUsage"), style: "area" },
        { label: "capacity", query: q("filesystemLimit"), style: "capacity" },
      ],
      markers,
    },
  ];
}

/**
 * selectFilter renders a labelled <select> bound to a URL parameter
 * (changing it reloads the page's data): options are values, "" = all,
 * sorted unless sorted is false.
 */
export function selectFilter({ label, param, options, value, all, sorted = true }) {
  let opts = [...new Set(options.filter(Boolean))];
  if (sorted) opts = opts.sort((x, y) => x.localeCompare(y, undefined, { numeric: true }));
  if (value && !opts.includes(value)) opts.unshift(value);
  const sel = h(
    "select",
    { class: "select", id: "filter-" + param, dataset: { testid: "filter-" + param } },
    h("option", { value: "" }, all),
    opts.map((o) => h("option", { value: o }, o)),
  );
  sel.value = value || "";
  sel.addEventListener("change", () => router.update({ [param]: sel.value || null }, { reload: true, replace: false }));
  return h("label", { for: sel.id }, label, sel);
}

const POD_FILTERS = {
  [K.namespace]: { label: "Namespace", param: "ns", all: "All namespaces" },
  [K.node]: { label: "Node", param: "node", all: "All nodes" },
};

/**
 * podFilter loads the namespaces or nodes that have pods (key: label.namespace
 * or label.node) and renders their filter, bound to the page's ns or node
 * parameter.
 */
export async function podFilter(ctx, key) {
  const { label, param, all } = POD_FILTERS[key];
  const r = await ctx.query(`count by ${by(key)} (${S.pod.info})`);
  return selectFilter({ label, param, all, options: r.map((x) => x.metric[key]), value: ctx.params.get(param) || "" });
}
