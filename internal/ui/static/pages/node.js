/**
 * Node (#/node/NAME): tiles for the node's CPU and memory (usage,
 * utilization, requests, limits, allocatable, capacity), network,
 * filesystem, pods, restarts and uptime; charts of CPU, memory, network and
 * filesystem over the range with request, allocatable and capacity lines;
 * the pods on the node.
 */

import { h } from "../dom.js";
import * as f from "../format.js";
import { m } from "../promql.js";
import { card, chartsGrid, first, instants, loadPods, notice, pageHead, podsTable, statOf, tile, tileStat, tiles } from "../components.js";

export async function render(ctx) {
  const [name] = ctx.segments.slice(1);
  ctx.title = `Node ${name}`;
  const L = { node: name };
  const Q = {
    cpu: m("node_cpu_usage_cores", L),
    cpu_utilization: m("node_cpu_utilization_ratio", L),
    cpu_allocatable: m("node_cpu_allocatable_cores", L),
    cpu_capacity: m("node_cpu_capacity_cores", L),
    cpu_request: m("node_cpu_request_cores", L),
    cpu_reservation: m("node_cpu_reservation_ratio", L),
    cpu_limit: m("node_cpu_limit_cores", L),
    memory: m("node_memory_working_set_bytes", L),
    memory_utilization: m("node_memory_utilization_ratio", L),
    memory_allocatable: m("node_memory_allocatable_bytes", L),
    memory_capacity: m("node_memory_capacity_bytes", L),
    memory_request: m("node_memory_request_bytes", L),
    memory_reservation: m("node_memory_reservation_ratio", L),
    memory_limit: m("node_memory_limit_bytes", L),
    rx: m("node_network_receive_bytes_per_second", L),
    tx: m("node_network_transmit_bytes_per_second", L),
    fs: m("node_filesystem_usage_bytes", L),
    fs_capacity: m("node_filesystem_capacity_bytes", L),
    fs_available: m("node_filesystem_available_bytes", L),
    fs_ratio: `${m("node_filesystem_usage_bytes", L)} / ${m("node_filesystem_capacity_bytes", L)}`,
    pods: `count(${m("pod_info", L)})`,
    restarts: m("node_restart_count", L),
    uptime: m("node_uptime_seconds", L),
  };
  const CHARTS = [
    {
      name: "cpu",
      title: "CPU",
      unit: "cores",
      series: [
        { label: "usage", query: Q.cpu, style: "area" },
        { label: "requests", query: Q.cpu_request, style: "request" },
        { label: "allocatable", query: Q.cpu_allocatable, style: "allocatable" },
        { label: "capacity", query: Q.cpu_capacity, style: "capacity" },
      ],
    },
    {
      name: "memory",
      title: "Memory",
      unit: "bytes",
      series: [
        { label: "working set", query: Q.memory, style: "area" },
        { label: "usage", query: m("node_memory_usage_bytes", L), style: "line" },
        { label: "requests", query: Q.memory_request, style: "request" },
        { label: "allocatable", query: Q.memory_allocatable, style: "allocatable" },
        { label: "capacity", query: Q.memory_capacity, style: "capacity" },
      ],
    },
    {
      name: "network",
      title: "Network",
      unit: "bytes/s",
      series: [
        { label: "receive", query: Q.rx, style: "line" },
        { label: "transmit", query: Q.tx, style: "line" },
      ],
    },
    {
      name: "filesystem",
      title: "Filesystem",
      unit: "bytes",
      series: [
        { label: "used", query: Q.fs, style: "area" },
        { label: "capacity", query: Q.fs_capacity, style: "capacity" },
      ],
    },
  ];

  const [r, charts, pods] = await Promise.all([instants(ctx, Q), ctx.loadCharts(CHARTS), loadPods(ctx, L)]);
  const s = (n, k, fmt) => tileStat(n, r[k], fmt);
  const known = first(r.cpu_capacity) !== null || first(r.cpu) !== null || pods.rows.length > 0;

  const t = podsTable(pods, { hide: ["node"], filter: ctx.params.get("q") || "" });
  ctx.search = (text) => t.setFilter(text);

  return h(
    "div",
    { class: "page" },
    pageHead({
      kind: "Node",
      title: name,
      facts: [
        ["Uptime", statOf(s("uptime", "uptime", f.duration))],
        ["Pods", statOf(s("pods", "pods", f.count))],
      ],
    }),
    known ? null : notice("warn", "No current data for this node.", " It may have left the cluster; the charts show what the range holds."),
    tiles(
      tile({
        title: "CPU usage",
        main: s("cpu-usage", "cpu", f.cores),
        bar: first(r.cpu_utilization),
        barLabel: "CPU usage of allocatable",
        subs: [
          ["of allocatable", s("cpu-utilization", "cpu_utilization", f.percent)],
          ["Allocatable", s("cpu-allocatable", "cpu_allocatable", f.cores)],
          ["Capacity", s("cpu-capacity", "cpu_capacity", f.cores)],
        ],
      }),
      tile({
        title: "CPU requested",
        main: s("cpu-request", "cpu_request", f.cores),
        bar: first(r.cpu_reservation),
        barLabel: "CPU requests of allocatable",
        subs: [
          ["Reservation", s("cpu-reservation", "cpu_reservation", f.percent)],
          ["Limits", s("cpu-limit", "cpu_limit", f.cores)],
        ],
      }),
      tile({
        title: "Memory working set",
        main: s("memory-working-set", "memory", f.bytes),
        bar: first(r.memory_utilization),
        barLabel: "Memory working set of allocatable",
        subs: [
          ["of allocatable", s("memory-utilization", "memory_utilization", f.percent)],
          ["Allocatable", s("memory-allocatable", "memory_allocatable", f.bytes)],
          ["Capacity", s("memory-capacity", "memory_capacity", f.bytes)],
        ],
      }),
      tile({
        title: "Memory requested",
        main: s("memory-request", "memory_request", f.bytes),
        bar: first(r.memory_reservation),
        barLabel: "Memory requests of allocatable",
        subs: [
          ["Reservation", s("memory-reservation", "memory_reservation", f.percent)],
          ["Limits", s("memory-limit", "memory_limit", f.bytes)],
        ],
      }),
      tile({
        title: "Network received",
        main: s("network-receive", "rx", f.byteRate),
        subs: [["Transmitted", s("network-transmit", "tx", f.byteRate)]],
      }),
      tile({
        title: "Filesystem used",
        main: s("filesystem-usage", "fs", f.bytes),
        bar: first(r.fs_ratio),
        barLabel: "Filesystem used of capacity",
        subs: [
          ["of capacity", s("filesystem-utilization", "fs_ratio", f.percent)],
          ["Capacity", s("filesystem-capacity", "fs_capacity", f.bytes)],
          ["Available", s("filesystem-available", "fs_available", f.bytes)],
        ],
      }),
      tile({
        title: "Restarts",
        main: s("restarts", "restarts", f.count),
        hint: "container restarts of the node's pods",
      }),
    ),
    chartsGrid(charts.map((c) => ctx.chart(c))),
    card("Pods on this node", t.el),
  );
}
