/**
 * Namespace (#/namespace/NS): tiles (pods, workloads, CPU and memory
 * against requests and limits, network, filesystem, restarts), charts of
 * CPU, memory, network and filesystem with request and limit lines, the
 * namespace's workloads and its pods.
 */

import { h } from "../dom.js";
import * as f from "../format.js";
import { by, m } from "../promql.js";
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
  const [r, charts, workloads, pods] = await Promise.all([
    instants(ctx, Q),
    ctx.loadCharts(usageCharts(S.namespace, L)),
    loadWorkloads(ctx, ns),
    loadPods(ctx, L),
  ]);
  const s = stats(r);
  const q = ctx.params.get("q") || "";
  const wt = workloadsTable(workloads, { hide: ["namespace"], sortParam: "wsort", filter: q });
  const pt = podsTable(pods, { hide: ["namespace"], filter: q });
  ctx.search = (text) => {
    wt.setFilter(text);
    pt.setFilter(text);
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
  );
}
