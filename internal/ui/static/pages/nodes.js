/**
 * Nodes (#/nodes): every node with its CPU usage, utilization (of
 * allocatable), allocatable CPU, CPU reservation (requests of allocatable),
 * memory working set and utilization, pod count, restarts, filesystem use
 * and uptime. Sortable; the search box filters by name.
 */

import { h } from "../dom.js";
import * as f from "../format.js";
import { table } from "../table.js";
import { card, index, instants, links, pageHead } from "../components.js";

export const Q = {
  nodes: "max by (node) (node_cpu_capacity_cores)",
  cpu: "node_cpu_usage_cores",
  cpu_utilization: "node_cpu_utilization_ratio",
  cpu_allocatable: "node_cpu_allocatable_cores",
  cpu_reservation: "node_cpu_reservation_ratio",
  memory: "node_memory_working_set_bytes",
  memory_utilization: "node_memory_utilization_ratio",
  memory_allocatable: "node_memory_allocatable_bytes",
  memory_reservation: "node_memory_reservation_ratio",
  pods: "count by (node) (pod_info)",
  restarts: "node_restart_count",
  filesystem: "node_filesystem_usage_bytes / node_filesystem_capacity_bytes",
  uptime: "node_uptime_seconds",
};

const COLS = Object.keys(Q).filter((k) => k !== "nodes");

export async function render(ctx) {
  ctx.title = "Nodes";
  const r = await instants(ctx, Q);
  const byNode = (l) => l.node;
  const names = new Set();
  for (const k of ["nodes", "cpu", "memory"]) for (const s of r[k].result) names.add(s.metric.node);
  const maps = Object.fromEntries(COLS.map((c) => [c, index(r[c], byNode)]));
  const rows = [...names].map((node) => {
    const row = { node };
    for (const c of COLS) row[c] = maps[c].get(node) ?? null;
    return row;
  });

  const level = (v) => (Number(v) >= 0.9 ? "crit-text" : Number(v) >= 0.75 ? "warn-text" : null);
  const t = table({
    name: "nodes",
    columns: [
      { id: "node", label: "Node", get: (x) => x.node, link: (x) => links.node(x.node) },
      { id: "cpu", label: "CPU", num: true, fmt: f.cores, get: (x) => x.cpu, query: Q.cpu, title: "Sort by CPU usage" },
      { id: "cpu_utilization", label: "CPU %", num: true, fmt: f.percent, get: (x) => x.cpu_utilization, query: Q.cpu_utilization, cls: (x) => level(x.cpu_utilization), title: "Sort by CPU usage of allocatable" },
      { id: "cpu_allocatable", label: "Allocatable", num: true, fmt: f.cores, get: (x) => x.cpu_allocatable, query: Q.cpu_allocatable, title: "Sort by allocatable CPU" },
      { id: "cpu_reservation", label: "Requested %", num: true, fmt: f.percent, get: (x) => x.cpu_reservation, query: Q.cpu_reservation, title: "Sort by CPU requests of allocatable" },
      { id: "memory", label: "Memory", num: true, fmt: f.bytes, get: (x) => x.memory, query: Q.memory, title: "Sort by memory working set" },
      { id: "memory_utilization", label: "Memory %", num: true, fmt: f.percent, get: (x) => x.memory_utilization, query: Q.memory_utilization, cls: (x) => level(x.memory_utilization), title: "Sort by memory working set of allocatable" },
      { id: "memory_reservation", label: "Mem. req. %", num: true, fmt: f.percent, get: (x) => x.memory_reservation, query: Q.memory_reservation, title: "Sort by memory requests of allocatable" },
      { id: "pods", label: "Pods", num: true, fmt: f.count, get: (x) => x.pods, query: Q.pods },
      { id: "restarts", label: "Restarts", num: true, fmt: f.count, get: (x) => x.restarts, query: Q.restarts, cls: (x) => (Number(x.restarts) > 0 ? "warn-text" : null) },
      { id: "filesystem", label: "Filesystem %", num: true, fmt: f.percent, get: (x) => x.filesystem, query: Q.filesystem, cls: (x) => level(x.filesystem) },
      { id: "uptime", label: "Uptime", num: true, fmt: f.duration, get: (x) => x.uptime, query: Q.uptime },
    ],
    rows,
    key: (x) => x.node,
    sort: "node:asc",
    sortParam: "sort",
    filter: ctx.params.get("q") || "",
    noun: "nodes",
    empty: "no nodes match",
    none: "no nodes",
  });
  ctx.search = (text) => t.setFilter(text);

  return h("div", { class: "page" }, pageHead({ kind: "Cluster", title: "Nodes" }), card(`Nodes`, t.el));
}
