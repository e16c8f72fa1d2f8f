/**
 * Container (#/container/NS/POD/CONTAINER): tiles (CPU and memory against
 * request and limit, memory usage and RSS, filesystem, restarts, uptime)
 * and charts of CPU, memory (working set, usage, RSS) and filesystem with
 * request and limit lines and restart, OOM-kill, alert and Warning-event
 * markers (the events of the container or of its pod as a whole); the
 * pod's Kubernetes events over the range.
 */

import { h } from "../dom.js";
import * as f from "../format.js";
import { m } from "../promql.js";
import { label as K, series as S } from "../series.js";
import { a, chartsGrid, first, instants, links, notice, pageHead, statOf, stats, tile, tiles, usageQueries, usageTiles } from "../components.js";
import { containerOf } from "../chart.js";
import { eventsCard, eventsTable, loadEvents } from "../events.js";
import { eventMarkers } from "./pod.js";

export async function render(ctx) {
  const [ns, pod, container] = ctx.segments.slice(1);
  ctx.title = `Container ${container}`;
  const L = { [K.namespace]: ns, [K.pod]: pod, [K.container]: container };
  const CS = S.container;
  const Q = {
    ...usageQueries(CS, L),
    memory_usage: m(CS.memoryUsage, L),
    rss: m(CS.memoryRSS, L),
    fs: m(CS.filesystemUsage, L),
    uptime: m(CS.uptime, L),
  };
  const events = loadEvents(ctx, { namespace: ns, kind: "Pod", name: pod });
  // Markers for the events of this container and of the pod as a whole.
  const mine = (e) => {
    const c = containerOf((e.involvedObject || {}).fieldPath);
    return !c || c === container;
  };
  const markers = eventMarkers(L, events, mine);
  const CHARTS = [
    {
      name: "cpu",
      title: "CPU",
      unit: "cores",
      series: [
        { label: "usage", query: Q.cpu, style: "area" },
        { label: "request", query: Q.cpu_request, style: "request" },
        { label: "limit", query: Q.cpu_limit, style: "limit" },
      ],
      markers,
    },
    {
      name: "memory",
      title: "Memory",
      unit: "bytes",
      series: [
        { label: "working set", query: Q.memory, style: "area" },
        { label: "usage", query: Q.memory_usage, style: "line" },
        { label: "rss", query: Q.rss, style: "line" },
        { label: "request", query: Q.memory_request, style: "request" },
        { label: "limit", query: Q.memory_limit, style: "limit" },
      ],
      markers,
    },
    {
      name: "filesystem",
      title: "Filesystem",
      unit: "bytes",
      series: [{ label: "used", query: Q.fs, style: "area" }],
      markers,
    },
  ];
  const [r, charts, ev] = await Promise.all([instants(ctx, Q), ctx.loadCharts(CHARTS), events]);
  const et = eventsTable(ev, { filter: ctx.params.get("q") || "", of: "pod" });
  ctx.search = (text) => et.setFilter(text);
  const s = stats(r);
  const nodeName = (r.cpu.result[0] || r.memory.result[0] || r.uptime.result[0])?.metric[K.node] || "";
  const gone = first(r.cpu) === null && first(r.memory) === null && first(r.uptime) === null;
  return h(
    "div",
    { class: "page" },
    pageHead({
      kind: "Container",
      title: container,
      facts: [
        ["Pod", a(links.pod(ns, pod), pod)],
        ["Namespace", a(links.namespace(ns), ns)],
        nodeName ? ["Node", a(links.node(nodeName), nodeName)] : null,
        ["Uptime", statOf(s("uptime", "uptime", f.duration))],
      ],
    }),
    gone ? notice("warn", "No current data for this container.", " It may have been deleted; the charts show what the range holds.") : null,
    tiles(
      ...usageTiles(r),
      tile({
        title: "Memory usage",
        main: s("memory-usage", "memory_usage", f.bytes),
        subs: [["RSS", s("memory-rss", "rss", f.bytes)]],
        hint: "usage includes the page cache",
      }),
      tile({ title: "Filesystem used", main: s("filesystem-usage", "fs", f.bytes), hint: "root filesystem and logs" }),
      tile({ title: "Restarts", main: s("restarts", "restarts", f.count), tone: Number(first(r.restarts)) > 0 ? "warn" : null }),
    ),
    chartsGrid(charts.map((x) => ctx.chart(x))),
    eventsCard(ev, et),
  );
}
