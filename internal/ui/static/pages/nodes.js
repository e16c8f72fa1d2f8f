/**
 * Nodes (#/nodes): every node with its CPU usage, utilization (of
 * allocatable), allocatable CPU, CPU reservation (requests of allocatable),
 * memory working set and utilization, pod count, restarts, filesystem use
 * and uptime. Sortable; the search box filters by name.
 */

import { h } from "../dom.js";
import * as f from "../format.js";
import { by } from "../promql.js";
import { label as K, series as S } from "../series.js";
import { table } from "../table.js";
import { card, instants, joinColumns, links, numColumn, pageHead, restartsColumn } from "../components.js";

const N = S.node;

export const Q = {
  nodes: `max by ${by(K.node)} (${N.cpuCapacity})`,
  cpu: N.cpuUsageRate,
  cpu_utilization: N.cpuUtilization,
  cpu_allocatable: N.cpuAllocatable,
  cpu_reservation: N.cpuReservation,
  memory: N.memoryWorkingSet,
  memory_utilization: N.memoryUtilization,
  memory_reservation: N.memoryReservation,
  pods: `count by ${by(K.node)} (${S.pod.info})`,
  restarts: N.restarts,
  filesystem: `${N.filesystemUsage} / ${N.filesystemLimit}`,
  uptime: N.uptime,
};

const COLS = Object.keys(Q).filter((k) => k !== "nodes");

export async function render(ctx) {
  ctx.title = "Nodes";
  const r = await instants(ctx, Q);
  const names = new Set();
  for (const k of ["nodes", "cpu", "memory"]) for (const s of r[k].result) names.add(s.metric[K.node]);
  const rows = joinColumns(new Map([...names].map((node) => [node, { node }])), r, COLS, (l) => l[K.node]);

  const num = numColumn(Q);
  // A ratio column, coloured from 75% (warn) and 90% (critical).
  const ratio = (id, label, title) => ({
    ...num(id, label, f.percent, title),
    cls: (x) => (Number(x[id]) >= 0.9 ? "crit-text" : Number(x[id]) >= 0.75 ? "warn-text" : null),
  });
  const t = table({
    name: "nodes",
    columns: [
      { id: "node", label: "Node", get: (x) => x.node, link: (x) => links.node(x.node) },
      num("cpu", "CPU", f.cores, "Sort by CPU usage"),
      ratio("cpu_utilization", "CPU %", "Sort by CPU usage of allocatable"),
      num("cpu_allocatable", "Allocatable", f.cores, "Sort by allocatable CPU"),
      num("cpu_reservation", "Requested %", f.percent, "Sort by CPU requests of allocatable"),
      num("memory", "Memory", f.bytes, "Sort by memory working set"),
      ratio("memory_utilization", "Memory %", "Sort by memory working set of allocatable"),
      num("memory_reservation", "Mem. req. %", f.percent, "Sort by memory requests of allocatable"),
      num("pods", "Pods", f.count),
      restartsColumn(num),
      ratio("filesystem", "Filesystem %"),
      num("uptime", "Uptime", f.duration),
    ],
    rows,
    key: (x) => x.node,
    sort: "node:asc",
    sortParam: "sort",
    filter: ctx.params.get("q") || "",
    noun: "nodes",
  });
  ctx.search = (text) => t.setFilter(text);

  return h("div", { class: "page" }, pageHead({ kind: "Cluster", title: "Nodes" }), card(`Nodes`, t.el));
}
