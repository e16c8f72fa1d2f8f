/**
 * Pod (#/pod/NS/NAME): where it runs (node, workload, labels), tiles (CPU
 * and memory against request and limit, network, filesystem, restarts,
 * uptime), charts of CPU, memory, network and filesystem with request and
 * limit lines and markers: wherever a container restarted (or was
 * OOM-killed: its OOM-kill counter went up), a Warning event of the pod
 * happened, and a band where an alert on the pod or its containers was
 * firing; its containers, and the pod's Kubernetes events over the range.
 */

import { h } from "../dom.js";
import * as f from "../format.js";
import { ALERTS, by, m } from "../promql.js";
import { label as K, series as S } from "../series.js";
import { table } from "../table.js";
import { eventsCard, eventsTable, loadEvents } from "../events.js";
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

/**
 * eventMarkers are the markers of a pod's or a container's charts (L: its
 * matchers): restarts, OOM kills, firing alerts whose labels name it, and
 * the Warning events among events (a loadEvents promise; keep filters them).
 */
export function eventMarkers(L, events, keep) {
  return [
    { kind: "restart", query: m(S.container.restarts, L) },
    { kind: "oom", query: m(S.container.oomKills, L) },
    { kind: "alert", query: m(ALERTS, L) },
    { kind: "event", events, keep },
  ];
}

export async function render(ctx) {
  const [ns, pod] = ctx.segments.slice(1);
  ctx.title = `Pod ${pod}`;
  const L = { [K.namespace]: ns, [K.pod]: pod };
  const P = S.pod;
  const Q = {
    info: m(P.info, L),
    ...usageQueries(P, L),
    memory_usage: m(P.memoryUsage, L),
    rss: m(P.memoryRSS, L),
    ...networkStorageQueries(P, L),
    uptime: m(P.uptime, L),
  };
  const CS = S.container;
  const C = {
    containers: `max by ${by(K.container)} (${m(CS.uptime, L)} or ${m(CS.cpuUsageRate, L)} or ${m(CS.memoryWorkingSet, L)})`,
    cpu: m(CS.cpuUsageRate, L),
    cpu_request: m(CS.cpuRequest, L),
    cpu_limit: m(CS.cpuLimit, L),
    memory: m(CS.memoryWorkingSet, L),
    memory_request: m(CS.memoryRequest, L),
    memory_limit: m(CS.memoryLimit, L),
    fs: m(CS.filesystemUsage, L),
    restarts: m(CS.restarts, L),
    uptime: m(CS.uptime, L),
  };
  const events = loadEvents(ctx, { namespace: ns, kind: "Pod", name: pod });
  const [r, c, charts, ev] = await Promise.all([
    instants(ctx, Q),
    instants(ctx, C),
    ctx.loadCharts(usageCharts(P, L, { markers: eventMarkers(L, events) })),
    events,
  ]);
  const s = stats(r);

  const info = r.info.result.length ? r.info.result[0].metric : {};
  const nodeName = info[K.node] || (r.cpu.result[0] && r.cpu.result[0].metric[K.node]) || (r.memory.result[0] && r.memory.result[0].metric[K.node]) || "";
  const labels = Object.entries(info)
    .filter(([k]) => k.startsWith(K.kubeLabelPrefix))
    .map(([k, v]) => [k.slice(K.kubeLabelPrefix.length), v]);

  // Containers.
  const containers = new Map(c.containers.result.map((x) => [x.metric[K.container], { container: x.metric[K.container] }]));
  const rows = joinColumns(containers, c, Object.keys(C).filter((k) => k !== "containers"), (l) => l[K.container]);
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
  const et = eventsTable(ev, { filter: ctx.params.get("q") || "", of: "pod" });
  ctx.search = (text) => {
    ct.setFilter(text);
    et.setFilter(text);
  };

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
        info[K.workload]
          ? ["Workload", h("span", null, a(links.workload(ns, info[K.workloadKind], info[K.workload]), info[K.workload]), h("span", { class: "muted" }, ` (${info[K.workloadKind]})`))]
          : null,
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
    eventsCard(ev, et),
  );
}
