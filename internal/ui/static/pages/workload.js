/**
 * Workload (#/workload/NS/KIND/NAME): tiles (pods, CPU and memory against
 * requests and limits, network, restarts), charts with request and limit
 * lines, and the workload's pods (the pods whose info series names the
 * workload); the Kubernetes events of the workload, of the pods it had over
 * the range and of what it owns by name (a Deployment's ReplicaSets, a
 * CronJob's Jobs), their Warning events and the alerts firing on the
 * workload or its pods marked on the charts.
 */

import { h } from "../dom.js";
import * as f from "../format.js";
import { ALERTS, by, dur, m } from "../promql.js";
import { eventsCard, eventsTable, loadEvents, workloadEvents } from "../events.js";
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
  // The pods it had over the range, for their events.
  const span = dur(ctx.range.end - ctx.range.start);
  const podsQuery = `max by ${by(K.pod)} (last_over_time(${m(S.pod.info, L)}[${span}]))`;
  const events = ctx
    .query(podsQuery)
    .then((r) => loadEvents(ctx, { namespace: ns }, workloadEvents(kind, name, new Set(r.map((x) => x.metric[K.pod])))));
  const NS = { [K.namespace]: ns };
  const markers = [
    // Alerts on the workload, and on its pods.
    { kind: "alert", query: `${m(ALERTS, L)} or (${m(ALERTS, NS)} and on ${by(K.namespace, K.pod)} ${m(S.pod.info, L)})` },
    { kind: "event", events },
  ];
  const [r, charts, pods, ev] = await Promise.all([
    instants(ctx, Q),
    ctx.loadCharts(usageCharts(S.workload, L, { markers })),
    loadPods(ctx, L, NS),
    events,
  ]);
  const s = stats(r);
  const pt = podsTable(pods, { hide: ["namespace", "workload"], filter: ctx.params.get("q") || "" });
  const et = eventsTable(ev, { filter: ctx.params.get("q") || "", dataset: { podsQuery, podsTime: ctx.time } });
  ctx.search = (text) => {
    pt.setFilter(text);
    et.setFilter(text);
  };
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
    eventsCard(ev, et),
  );
}
