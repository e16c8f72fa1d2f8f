/**
 * Namespaces (#/namespaces): every namespace with its pods, workloads, CPU
 * and memory usage against requests and limits, network and restarts.
 * Sortable; the search box filters by name.
 */

import { h } from "../dom.js";
import * as f from "../format.js";
import { by, m } from "../promql.js";
import { label as K, series as S } from "../series.js";
import { table } from "../table.js";
import { card, instants, joinColumns, links, numColumn, pageHead, restartsColumn } from "../components.js";

const NS = S.namespace;
const byNs = `count by ${by(K.namespace)}`;

export const Q = {
  namespaces: `${byNs} (${NS.info} or ${NS.cpuUsageRate})`,
  pods: `${byNs} (${S.pod.info})`,
  workloads: `${byNs} (count by ${by(K.namespace, K.workloadKind, K.workload)} (${m(S.pod.info, {}, [`${K.workload}!=""`])}))`,
  cpu: NS.cpuUsageRate,
  cpu_request: NS.cpuRequest,
  cpu_limit: NS.cpuLimit,
  memory: NS.memoryWorkingSet,
  memory_request: NS.memoryRequest,
  memory_limit: NS.memoryLimit,
  rx: NS.networkRxRate,
  tx: NS.networkTxRate,
  restarts: NS.restarts,
};

const COLS = Object.keys(Q).filter((k) => k !== "namespaces");

export async function render(ctx) {
  ctx.title = "Namespaces";
  const r = await instants(ctx, Q);
  const names = new Set();
  for (const k of ["namespaces", "pods"]) for (const s of r[k].result) if (s.metric[K.namespace]) names.add(s.metric[K.namespace]);
  const rows = joinColumns(new Map([...names].map((namespace) => [namespace, { namespace }])), r, COLS, (l) => l[K.namespace]);
  const num = numColumn(Q);
  const t = table({
    name: "namespaces",
    columns: [
      { id: "namespace", label: "Namespace", get: (x) => x.namespace, link: (x) => links.namespace(x.namespace) },
      num("pods", "Pods", f.count),
      num("workloads", "Workloads", f.count),
      num("cpu", "CPU", f.cores, "Sort by CPU usage"),
      num("cpu_request", "CPU req.", f.cores, "Sort by CPU requests"),
      num("cpu_limit", "CPU limit", f.cores, "Sort by CPU limits"),
      num("memory", "Memory", f.bytes, "Sort by memory working set"),
      num("memory_request", "Mem. req.", f.bytes, "Sort by memory requests"),
      num("memory_limit", "Mem. limit", f.bytes, "Sort by memory limits"),
      num("rx", "Net in", f.byteRate, "Sort by network received"),
      num("tx", "Net out", f.byteRate, "Sort by network transmitted"),
      restartsColumn(num),
    ],
    rows,
    key: (x) => x.namespace,
    sort: "namespace:asc",
    sortParam: "sort",
    filter: ctx.params.get("q") || "",
    noun: "namespaces",
  });
  ctx.search = (text) => t.setFilter(text);
  return h("div", { class: "page" }, pageHead({ kind: "Cluster", title: "Namespaces" }), card("Namespaces", t.el));
}
