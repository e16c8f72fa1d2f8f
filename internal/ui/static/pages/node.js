/**
 * Node (#/node/NAME): tiles for the node's CPU and memory (usage,
 * utilization, requests, limits, allocatable, capacity), network,
 * filesystem, pods, restarts and uptime; charts of CPU, memory, network and
 * filesystem over the range with request, allocatable and capacity lines,
 * bands where an alert on the node (not on one of its pods) was firing and
 * the Warning events on the node; the pods on the node and the Kubernetes
 * events that happened on it over the range (api/v1/events?node=: the
 * Node's own and its pods').
 */

import { h } from "../dom.js";
import * as f from "../format.js";
import { ALERTS, m } from "../promql.js";
import { eventsCard, eventsTable, loadEvents } from "../events.js";
import { label as K, series as S } from "../series.js";
import {
  capacityCharts,
  capacityQueries,
  capacityTiles,
  card,
  chartsGrid,
  first,
  instants,
  loadPods,
  notice,
  pageHead,
  podsTable,
  statOf,
  stats,
  tile,
  tiles,
} from "../components.js";

export async function render(ctx) {
  const [name] = ctx.segments.slice(1);
  ctx.title = `Node ${name}`;
  const L = { [K.node]: name };
  const Q = {
    ...capacityQueries(S.node, L),
    fs_available: m(S.node.filesystemAvailable, L),
    pods: `count(${m(S.pod.info, L)})`,
    uptime: m(S.node.uptime, L),
  };
  // The events on the node: the Node's own and those of its pods.
  const events = loadEvents(ctx, { node: name });
  const markers = [
    // The node's own alerts: those about its pods carry its name too.
    { kind: "alert", query: m(ALERTS, L), keep: (l) => !l[K.pod] },
    { kind: "event", events },
  ];
  const [r, charts, pods, ev] = await Promise.all([
    instants(ctx, Q),
    ctx.loadCharts(capacityCharts(S.node, L, { memoryUsage: true, markers })),
    loadPods(ctx, L),
    events,
  ]);
  const s = stats(r);
  const known = first(r.cpu_capacity) !== null || first(r.cpu) !== null || pods.rows.length > 0;

  const t = podsTable(pods, { hide: ["node"], filter: ctx.params.get("q") || "" });
  const et = eventsTable(ev, { filter: ctx.params.get("q") || "" });
  ctx.search = (text) => {
    t.setFilter(text);
    et.setFilter(text);
  };

  const T = capacityTiles(r);
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
      T.cpu,
      T.cpuRequested,
      T.memory,
      T.memoryRequested,
      T.network,
      T.filesystem,
      tile({ title: "Restarts", main: s("restarts", "restarts", f.count), hint: "container restarts of the node's pods" }),
    ),
    chartsGrid(charts.map((c) => ctx.chart(c))),
    card("Pods on this node", t.el),
    eventsCard(ev, et),
  );
}
