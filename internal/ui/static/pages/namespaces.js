/**
 * Namespaces (#/namespaces): every namespace with its pods, workloads, CPU
 * and memory usage against requests and limits, network and restarts.
 * Sortable; the search box filters by name.
 */

import { h } from "../dom.js";
import * as f from "../format.js";
import { table } from "../table.js";
import { card, instants, joinColumns, links, numColumn, pageHead, restartsColumn } from "../components.js";

export const Q = {
  namespaces: "count by (namespace) (namespace_info or namespace_cpu_usage_cores)",
  pods: "count by (namespace) (pod_info)",
  workloads: 'count by (namespace) (count by (namespace, workload_kind, workload) (pod_info{workload!=""}))',
  cpu: "namespace_cpu_usage_cores",
  cpu_request: "namespace_cpu_request_cores",
  cpu_limit: "namespace_cpu_limit_cores",
  memory: "namespace_memory_working_set_bytes",
  memory_request: "namespace_memory_request_bytes",
  memory_limit: "namespace_memory_limit_bytes",
  rx: "namespace_network_receive_bytes_per_second",
  tx: "namespace_network_transmit_bytes_per_second",
  restarts: "namespace_restart_count",
};

const COLS = Object.keys(Q).filter((k) => k !== "namespaces");

export async function render(ctx) {
  ctx.title = "Namespaces";
  const r = await instants(ctx, Q);
  const names = new Set();
  for (const k of ["namespaces", "pods"]) for (const s of r[k].result) if (s.metric.namespace) names.add(s.metric.namespace);
  const rows = joinColumns(new Map([...names].map((namespace) => [namespace, { namespace }])), r, COLS, (l) => l.namespace);
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
