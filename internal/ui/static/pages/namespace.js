/**
 * Namespace (#/namespace/NS): tiles (pods, workloads, CPU and memory
 * against requests and limits, network, filesystem, restarts), charts of
 * CPU, memory, network and filesystem with request and limit lines, the
 * namespace's workloads and its pods; the Kubernetes events of the
 * namespace over the range (their Warning events and the alerts firing in
 * the namespace are marked on the charts).
 */

import { h } from "../dom.js";
import * as f from "../format.js";
import { ALERTS, by, m } from "../promql.js";
import { eventsCard, eventsTable, loadEvents } from "../events.js";
import { label as K, series as S } from "../series.js";
import * as router from "../router.js";
import {
  card,
  chartsGrid,
  instants,
  loadPods,
  loadWorkloads,
  networkStorageQueries,
  networkStorageTiles,
  pageHead,
  podsTable,
  stats,
  tile,
  tiles,
  usageCharts,
  usageQueries,
  usageTiles,
  workloadsTable,
} from "../components.js";

export async function render(ctx) {
  const [ns] = ctx.segments.slice(1);
  ctx.title = `Namespace ${ns}`;
  const L = { [K.namespace]: ns };
  const Q = {
    ...usageQueries(S.namespace, L),
    pods: `count(${m(S.pod.info, L)})`,
    workloads: `count(count by ${by(K.workloadKind, K.workload)} (${m(S.pod.info, L, [`${K.workload}!=""`])}))`,
    ...networkStorageQueries(S.namespace, L),
  };
  const events = loadEvents(ctx, { namespace: ns });
  const markers = [
    { kind: "alert", query: m(ALERTS, L) },
    { kind: "event", events },
  ];
  const [r, charts, workloads, pods, ev] = await Promise.all([
    instants(ctx, Q),
    ctx.loadCharts(usageCharts(S.namespace, L, { markers })),
    loadWorkloads(ctx, ns),
    loadPods(ctx, L),
    events,
  ]);
  const s = stats(r);
  const q = ctx.params.get("q") || "";
  const wt = workloadsTable(workloads, { hide: ["namespace"], sortParam: "wsort", filter: q });
  const pt = podsTable(pods, { hide: ["namespace"], filter: q });
  const et = eventsTable(ev, { filter: q });
  ctx.search = (text) => {
    wt.setFilter(text);
    pt.setFilter(text);
    et.setFilter(text);
  };
  return h(
    "div",
    { class: "page" },
    pageHead({
      kind: "Namespace",
      title: ns,
      actions: h("a", { class: "btn", href: router.link("/rightsizing", { ns }) }, "Right-size this namespace"),
    }),
    tiles(
      tile({ title: "Pods", main: s("pods", "pods", f.count), subs: [["Workloads", s("workloads", "workloads", f.count)], ["Restarts", s("restarts", "restarts", f.count)]] }),
      ...usageTiles(r),
      ...networkStorageTiles(r),
    ),
    chartsGrid(charts.map((c) => ctx.chart(c))),
    card("Workloads", wt.el),
    card("Pods", pt.el),
    eventsCard(ev, et),
  );
}
