/**
 * Workload (#/workload/NS/KIND/NAME): tiles (pods, CPU and memory against
 * requests and limits, network, restarts), charts with request and limit
 * lines, and the workload's pods (the pods whose info series names the
 * workload).
 */

import { h } from "../dom.js";
import * as f from "../format.js";
import { m } from "../promql.js";
import { label as K, series as S } from "../series.js";
import {
  a,
  card,
  chartsGrid,
  instants,
  links,
  loadPods,
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
} from "../components.js";

export async function render(ctx) {
  const [ns, kind, name] = ctx.segments.slice(1);
  ctx.title = `${kind} ${name}`;
  const L = { [K.namespace]: ns, [K.workloadKind]: kind, [K.workload]: name };
  const Q = {
    ...usageQueries(S.workload, L),
    pods: `count(${m(S.pod.info, L)})`,
    ...networkStorageQueries(S.workload, L),
  };
  const [r, charts, pods] = await Promise.all([
    instants(ctx, Q),
    ctx.loadCharts(usageCharts(S.workload, L)),
    loadPods(ctx, L, { [K.namespace]: ns }),
  ]);
  const s = stats(r);
  const pt = podsTable(pods, { hide: ["namespace", "workload"], filter: ctx.params.get("q") || "" });
  ctx.search = (text) => pt.setFilter(text);
  return h(
    "div",
    { class: "page" },
    pageHead({ kind, title: name, facts: [["Namespace", a(links.namespace(ns), ns)]] }),
    tiles(
      tile({ title: "Pods", main: s("pods", "pods", f.count), subs: [["Restarts", s("restarts", "restarts", f.count)]] }),
      ...usageTiles(r),
      ...networkStorageTiles(r),
    ),
    chartsGrid(charts.map((c) => ctx.chart(c))),
    card("Pods", pt.el),
  );
}
