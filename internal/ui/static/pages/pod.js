/**
 * Pod (#/pod/NS/NAME): where it runs (node, workload, labels), tiles (CPU
 * and memory against request and limit, network, filesystem, restarts,
 * uptime), charts of CPU, memory, network and filesystem with request and
 * limit lines and a marker wherever a container restarted (or was
 * OOM-killed, from container_oom_kills_total when kubemon stores it), and
 * its containers.
 */

import { h } from "../dom.js";
import * as f from "../format.js";
import { m } from "../promql.js";
import { table } from "../table.js";
import {
  a,
  card,
  chartsGrid,
  first,
  instants,
  joinColumns,
  links,
  networkStorageQueries,
  networkStorageTiles,
  notice,
  numColumn,
  pageHead,
  restartsColumn,
  statOf,
  stats,
  tile,
  tiles,
  usageCharts,
  usageQueries,
  usageTiles,
} from "../components.js";

export function eventMarkers(L) {
  return [
    { kind: "restart", query: m("container_restart_count", L) },
    { kind: "oom", query: m("container_oom_kills_total", L) },
  ];
}

export async function render(ctx) {
  const [ns, pod] = ctx.segments.slice(1);
  ctx.title = `Pod ${pod}`;
  const L = { namespace: ns, pod };
  const Q = {
    info: m("pod_info", L),
    ...usageQueries("pod", L),
    memory_usage: m("pod_memory_usage_bytes", L),
    rss: m("pod_memory_rss_bytes", L),
    ...networkStorageQueries("pod", L),
    uptime: m("pod_uptime_seconds", L),
  };
  const C = {
    containers: `max by (container) (${m("container_uptime_seconds", L)} or ${m("container_cpu_usage_cores", L)} or ${m("container_memory_working_set_bytes", L)})`,
    cpu: m("container_cpu_usage_cores", L),
    cpu_request: m("container_cpu_request_cores", L),
    cpu_limit: m("container_cpu_limit_cores", L),
    memory: m("container_memory_working_set_bytes", L),
    memory_request: m("container_memory_request_bytes", L),
    memory_limit: m("container_memory_limit_bytes", L),
    fs: m("container_filesystem_usage_bytes", L),
    restarts: m("container_restart_count", L),
    uptime: m("container_uptime_seconds", L),
  };
  const [r, c, charts] = await Promise.all([instants(ctx, Q), instants(ctx, C), ctx.loadCharts(usageCharts("pod", L, { markers: eventMarkers(L) }))]);
  const s = stats(r);

  const info = r.info.result.length ? r.info.result[0].metric : {};
  const nodeName = info.node || (r.cpu.result[0] && r.cpu.result[0].metric.node) || (r.memory.result[0] && r.memory.result[0].metric.node) || "";
  const labels = Object.entries(info)
    .filter(([k]) => k.startsWith("label_"))
    .map(([k, v]) => [k.slice(6), v]);

  // Containers.
  const containers = new Map(c.containers.result.map((x) => [x.metric.container, { container: x.metric.container }]));
  const rows = joinColumns(containers, c, Object.keys(C).filter((k) => k !== "containers"), (l) => l.container);
  const num = numColumn(C);
  const ct = table({
    name: "containers",
    columns: [
      { id: "container", label: "Container", get: (x) => x.container, link: (x) => links.container(ns, pod, x.container) },
      num("cpu", "CPU", f.cores, "Sort by CPU usage"),
      num("cpu_request", "CPU req.", f.cores, "Sort by CPU request"),
      num("cpu_limit", "CPU limit", f.cores, "Sort by CPU limit"),
      num("memory", "Memory", f.bytes, "Sort by memory working set"),
      num("memory_request", "Mem. req.", f.bytes, "Sort by memory request"),
      num("memory_limit", "Mem. limit", f.bytes, "Sort by memory limit"),
      num("fs", "Filesystem", f.bytes, "Sort by filesystem use"),
      restartsColumn(num),
      num("uptime", "Uptime", f.duration),
    ],
    rows,
    key: (x) => `${ns}/${pod}/${x.container}`,
    sort: "container:asc",
    sortParam: "sort",
    filter: ctx.params.get("q") || "",
    noun: "containers",
  });
  ctx.search = (text) => ct.setFilter(text);

  const gone = !r.info.result.length && first(r.cpu) === null && first(r.memory) === null;
  return h(
    "div",
    { class: "page" },
    pageHead({
      kind: "Pod",
      title: pod,
      facts: [
        ["Namespace", a(links.namespace(ns), ns)],
        nodeName ? ["Node", a(links.node(nodeName), nodeName)] : null,
        info.workload ? ["Workload", h("span", null, a(links.workload(ns, info.workload_kind, info.workload), info.workload), h("span", { class: "muted" }, ` (${info.workload_kind})`))] : null,
        ["Uptime", statOf(s("uptime", "uptime", f.duration))],
      ],
    }),
    labels.length
      ? h(
          "ul",
          { class: "chips", "aria-label": "Labels" },
          labels.map(([k, v]) => h("li", { class: "chip" }, h("span", { class: "muted" }, k + "="), v)),
        )
      : null,
    gone ? notice("warn", "No current data for this pod.", " It may have been deleted; the charts show what the range holds.") : null,
    tiles(
      ...usageTiles(r),
      tile({
        title: "Restarts",
        main: s("restarts", "restarts", f.count),
        tone: Number(first(r.restarts)) > 0 ? "warn" : null,
        subs: [["Memory usage", s("memory-usage", "memory_usage", f.bytes)], ["Memory RSS", s("memory-rss", "rss", f.bytes)]],
      }),
      ...networkStorageTiles(r),
    ),
    chartsGrid(charts.map((x) => ctx.chart(x))),
    card("Containers", ct.el),
  );
}
