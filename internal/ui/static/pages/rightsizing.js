/**
 * Right-sizing (#/rightsizing?ns=NS&window=7d): for every container of a
 * namespace (or of the cluster), its CPU and memory requests and limits
 * against its usage over the window (p50, p95 and max), a suggested request
 * and a verdict.
 *
 * Replicas are one row: usage statistics are computed per container
 * (namespace, pod, container) and joined on the pods' info series to the
 * pod's workload, then the row takes the largest value across the replicas
 * (max by namespace, workload kind, workload, container). Pods without a
 * workload are their own row (workload kind "Pod"). All in PromQL, one
 * query per column, evaluated at the end of the page's time range.
 *
 *   suggested CPU request    = p95 × 1.2, rounded up to 10m
 *   suggested memory request = max × 1.2, rounded up to 1 MiB
 *   wasted                   = (request − suggested) × current replicas, when positive
 *   verdict (per resource)   = under-provisioned: no request, or p95 > request
 *                              over-provisioned: request > 2 × p95 and wasted per replica > 100m / 128 MiB
 *                              ok otherwise
 *   row verdict              = under if either resource is under, else over if either is over, else ok
 */

import { h } from "../dom.js";
import * as f from "../format.js";
import { by, dur, m, str } from "../promql.js";
import { label as K, series as S } from "../series.js";
import * as router from "../router.js";
import { table } from "../table.js";
import { card, instants, joinColumns, links, numColumn, pageHead, podFilter, stat } from "../components.js";

export const WINDOWS = ["1h", "6h", "24h", "7d"];
const DEFAULT_WINDOW = "7d";
const MI = 1024 * 1024;
const CPU_STEP = 0.01; // 10m
const CPU_WASTE = 0.1; // 100m
const MEM_WASTE = 128 * MI;
const HEADROOM = 1.2;

/** queries builds the page's PromQL for a namespace ("" = all) and window ("7d"). */
export function queries(ns, w) {
  const L = { [K.namespace]: ns };
  const info = (op) => m(S.pod.info, L, [`${K.workload}${op}""`]);
  const own =
    `max by ${by(K.namespace, K.pod, K.workloadKind, K.workload)} (last_over_time(${info("!=")}[${w}]))` +
    ` or label_replace(label_replace(max by ${by(K.namespace, K.pod)} (last_over_time(${info("=")}[${w}])),` +
    ` ${str(K.workload)}, "$1", ${str(K.pod)}, "(.+)"), ${str(K.workloadKind)}, "Pod", "", "")`;
  const join = `on ${by(K.namespace, K.pod)} group_left ${by(K.workloadKind, K.workload)} (${own})`;
  const row = by(K.namespace, K.workloadKind, K.workload, K.container);
  const agg = (expr) => `max by ${row} (${expr} * ${join})`;
  const CS = S.container;
  const cpu = m(CS.cpuUsageRate, L);
  const mem = m(CS.memoryWorkingSet, L);
  return {
    cpu_request: agg(`last_over_time(${m(CS.cpuRequest, L)}[${w}])`),
    cpu_limit: agg(`last_over_time(${m(CS.cpuLimit, L)}[${w}])`),
    cpu_p50: agg(`quantile_over_time(0.5, ${cpu}[${w}])`),
    cpu_p95: agg(`quantile_over_time(0.95, ${cpu}[${w}])`),
    cpu_max: agg(`max_over_time(${cpu}[${w}])`),
    memory_request: agg(`last_over_time(${m(CS.memoryRequest, L)}[${w}])`),
    memory_limit: agg(`last_over_time(${m(CS.memoryLimit, L)}[${w}])`),
    memory_p50: agg(`quantile_over_time(0.5, ${mem}[${w}])`),
    memory_p95: agg(`quantile_over_time(0.95, ${mem}[${w}])`),
    memory_max: agg(`max_over_time(${mem}[${w}])`),
    replicas: `count by ${row} (${mem} * ${join})`,
  };
}

const n = (v) => (v === null || v === undefined || v === "" ? NaN : Number(v));

/** suggestCpu: p95 × 1.2 rounded up to 10m (at least 10m). */
export function suggestCpu(p95) {
  const x = n(p95);
  if (!Number.isFinite(x)) return NaN;
  // In whole steps of 10m (the rounding guards against 0.3 / 0.01 = 29.999…).
  const steps = Math.ceil(Math.round(((x * HEADROOM) / CPU_STEP) * 1e6) / 1e6);
  return Math.max(1, steps) / 100;
}

/** suggestMemory: max × 1.2 rounded up to 1 MiB (at least 1 MiB). */
export function suggestMemory(max) {
  const x = n(max);
  if (!Number.isFinite(x)) return NaN;
  return Math.max(MI, Math.ceil((x * HEADROOM) / MI) * MI);
}

/** verdict for one resource. */
export function verdict(request, p95, suggested, minWaste) {
  const req = n(request);
  const p = n(p95);
  if (!Number.isFinite(p)) return "no data";
  if (!Number.isFinite(req) || req <= 0 || p > req) return "under-provisioned";
  if (req > 2 * p && req - suggested > minWaste) return "over-provisioned";
  return "ok";
}

function combine(a, b) {
  if (a === "under-provisioned" || b === "under-provisioned") return "under-provisioned";
  if (a === "over-provisioned" || b === "over-provisioned") return "over-provisioned";
  if (a === "no data" && b === "no data") return "no data";
  return "ok";
}

/** quantity formats a suggestion as a Kubernetes quantity: "250m", "300Mi". */
function cpuQuantity(v) {
  const cores = n(v);
  return Number.isFinite(cores) ? `${Math.round(cores * 1000)}m` : f.DASH;
}
function memQuantity(v) {
  const bytes = n(v);
  if (!Number.isFinite(bytes)) return f.DASH;
  const mi = Math.round(bytes / MI);
  return mi % 1024 === 0 ? `${mi / 1024}Gi` : `${mi}Mi`;
}

export async function render(ctx) {
  const ns = ctx.params.get("ns") || "";
  const windows = WINDOWS.filter((w) => f.parseDuration(w) <= ctx.info.retention);
  let w = ctx.params.get("window") || DEFAULT_WINDOW;
  if (!(f.parseDuration(w) > 0)) w = DEFAULT_WINDOW;
  w = dur(f.parseDuration(w));
  ctx.title = "Right-sizing";
  const Q = queries(ns, w);
  const [r, nsFilter] = await Promise.all([instants(ctx, Q), podFilter(ctx, K.namespace)]);

  const key = (l) => `${l[K.namespace]}/${l[K.workloadKind]}/${l[K.workload]}/${l[K.container]}`;
  const rows = new Map();
  for (const k of ["cpu_p95", "memory_p95", "cpu_request", "memory_request"]) {
    for (const s of r[k].result) {
      const l = s.metric;
      if (!rows.has(key(l))) rows.set(key(l), { namespace: l[K.namespace], workload_kind: l[K.workloadKind], workload: l[K.workload], container: l[K.container] });
    }
  }
  // (request − suggested) × replicas, when positive.
  const wasted = (request, suggested, replicas) => {
    const req = n(request);
    return Number.isFinite(req) && Number.isFinite(suggested) ? Math.max(0, req - suggested) * replicas : NaN;
  };
  let wastedCpu = 0;
  let wastedMem = 0;
  const counts = { "over-provisioned": 0, "under-provisioned": 0, ok: 0, "no data": 0 };
  for (const row of joinColumns(rows, r, Object.keys(Q), key)) {
    const replicas = Number.isFinite(n(row.replicas)) ? n(row.replicas) : 0;
    row.cpu_suggested = suggestCpu(row.cpu_p95);
    row.memory_suggested = suggestMemory(row.memory_max);
    row.cpu_wasted = wasted(row.cpu_request, row.cpu_suggested, replicas);
    row.memory_wasted = wasted(row.memory_request, row.memory_suggested, replicas);
    row.cpu_verdict = verdict(row.cpu_request, row.cpu_p95, row.cpu_suggested, CPU_WASTE);
    row.memory_verdict = verdict(row.memory_request, row.memory_p95, row.memory_suggested, MEM_WASTE);
    row.verdict = combine(row.cpu_verdict, row.memory_verdict);
    counts[row.verdict]++;
    if (Number.isFinite(row.cpu_wasted)) wastedCpu += row.cpu_wasted;
    if (Number.isFinite(row.memory_wasted)) wastedMem += row.memory_wasted;
  }

  const raw = numColumn(Q);
  const calc = (id, label, fmt, title) => ({
    id,
    label,
    num: true,
    fmt,
    get: (x) => (Number.isFinite(x[id]) ? String(x[id]) : null),
    title,
  });
  const pill = { "over-provisioned": "pill-warn", "under-provisioned": "pill-bad", ok: "pill-ok", "no data": "pill-unknown" };
  const t = table({
    name: "rightsizing",
    columns: [
      {
        id: "workload",
        label: "Workload",
        get: (x) => x.workload,
        link: (x) => (x.workload_kind === "Pod" ? links.pod(x.namespace, x.workload) : links.workload(x.namespace, x.workload_kind, x.workload)),
        cellTitle: (x) => x.workload_kind,
      },
      { id: "container", label: "Container", get: (x) => x.container },
      { id: "namespace", label: "Namespace", get: (x) => x.namespace, link: (x) => links.namespace(x.namespace) },
      { id: "kind", label: "Kind", get: (x) => x.workload_kind },
      raw("replicas", "Pods", f.count, "Sort by running pods"),
      raw("cpu_request", "CPU req.", f.cores, "Sort by CPU request"),
      raw("cpu_limit", "CPU limit", f.cores, "Sort by CPU limit"),
      raw("cpu_p50", "CPU p50", f.cores, "Sort by median CPU usage"),
      raw("cpu_p95", "CPU p95", f.cores, "Sort by 95th percentile CPU usage"),
      raw("cpu_max", "CPU max", f.cores, "Sort by maximum CPU usage"),
      { ...calc("cpu_suggested", "Suggest CPU", cpuQuantity, "Sort by suggested CPU request (p95 × 1.2)"), cls: () => "suggest" },
      calc("cpu_wasted", "Wasted CPU", f.cores, "Sort by CPU requested beyond the suggestion, times the running pods"),
      raw("memory_request", "Mem. req.", f.bytes, "Sort by memory request"),
      raw("memory_limit", "Mem. limit", f.bytes, "Sort by memory limit"),
      raw("memory_p50", "Mem. p50", f.bytes, "Sort by median memory working set"),
      raw("memory_p95", "Mem. p95", f.bytes, "Sort by 95th percentile memory working set"),
      raw("memory_max", "Mem. max", f.bytes, "Sort by maximum memory working set"),
      { ...calc("memory_suggested", "Suggest mem.", memQuantity, "Sort by suggested memory request (max × 1.2)"), cls: () => "suggest" },
      calc("memory_wasted", "Wasted mem.", f.bytes, "Sort by memory requested beyond the suggestion, times the running pods"),
      {
        id: "verdict",
        label: "Verdict",
        get: (x) => x.verdict,
        sortValue: (x) => ["under-provisioned", "over-provisioned", "ok", "no data"].indexOf(x.verdict),
        render: (x, c) => h("span", { class: "pill " + pill[x.verdict], dataset: { cpu: x.cpu_verdict, memory: x.memory_verdict } }, c),
        cellTitle: (x) => `CPU: ${x.cpu_verdict} · memory: ${x.memory_verdict}`,
      },
    ].filter((c) => !(ns && c.id === "namespace")),
    rows: [...rows.values()],
    key: (x) => `${x.namespace}/${x.workload_kind}/${x.workload}/${x.container}`,
    sort: "cpu_wasted:desc",
    sortParam: "sort",
    filter: ctx.params.get("q") || "",
    noun: "containers",
    none: "no containers with usage in this window",
  });
  ctx.search = (text) => t.setFilter(text);

  const windowLinks = h(
    "div",
    { class: "seg", role: "group", "aria-label": "Window" },
    windows.map((x) =>
      h("a", { href: router.link("/rightsizing", { ns, window: x, sort: ctx.params.get("sort") }), "aria-current": x === w ? "true" : null, dataset: { window: x } }, x),
    ),
  );
  // Computed numbers: stats without a query.
  const total = (label, name, value, fmt) => h("div", null, h("div", { class: "muted small" }, label), h("strong", null, stat(name, null, String(value), fmt)));
  const totals = h(
    "div",
    { class: "totals", dataset: { testid: "rightsizing-totals" } },
    total("Wasted CPU", "wasted-cpu", wastedCpu, f.cores),
    total("Wasted memory", "wasted-memory", wastedMem, f.bytes),
    total("Over-provisioned", "over-provisioned", counts["over-provisioned"], f.count),
    total("Under-provisioned", "under-provisioned", counts["under-provisioned"], f.count),
    total("OK", "ok", counts.ok, f.count),
  );

  return h(
    "div",
    { class: "page" },
    pageHead({ kind: ns ? `Namespace ${ns}` : "Cluster", title: "Right-sizing" }),
    h(
      "div",
      { class: "filters" },
      nsFilter,
      h("label", null, "Window", windowLinks),
      h("span", { class: "muted small" }, `usage over the ${f.durationText(f.parseDuration(w))} up to ${f.dateTime(ctx.time)}`),
    ),
    card("Totals", totals, { extra: h("span", { class: "muted small" }, `${f.count(rows.size)} containers (replicas of a workload are one row)`) }),
    card("Containers", t.el),
    h(
      "details",
      { class: "card method" },
      h("summary", null, "How this is computed"),
      h(
        "p",
        null,
        `Usage is each container's CPU (${S.container.cpuUsageRate}) and memory working set (${S.container.memoryWorkingSet}) over the window; replicas of a workload are joined on ${S.pod.info} and one row takes the largest value among them. `,
        "Suggested request: CPU p95 × 1.2 rounded up to 10m; memory max × 1.2 rounded up to 1 MiB. ",
        "Wasted: request minus suggestion, times the pods running now. ",
        "Under-provisioned: no request, or p95 above the request. Over-provisioned: request above 2 × p95 and more than 100m / 128 MiB wasted per pod.",
      ),
      h("pre", null, Object.entries(Q).map(([k, q]) => `${k}:\n  ${q}\n`).join("\n")),
    ),
  );
}
