/**
 * Workload (#/workload/NS/KIND/NAME): tiles (pods, CPU and memory against
 * requests and limits, network, restarts), charts with request and limit
 * lines, and the workload's pods (pod_info{workload_kind, workload}).
 */

import { h } from "../dom.js";
import * as f from "../format.js";
import { m } from "../promql.js";
import { a, card, chartsGrid, instants, links, loadPods, pageHead, podsTable, tile, tileStat, tiles, usageCharts, usageQueries, usageTiles } from "../components.js";

export async function render(ctx) {
  const [ns, kind, name] = ctx.segments.slice(1);
  ctx.title = `${kind} ${name}`;
  const L = { namespace: ns, workload_kind: kind, workload: name };
  const Q = {
    ...usageQueries("workload", L),
    pods: `count(${m("pod_info", L)})`,
    rx: m("workload_network_receive_bytes_per_second", L),
    tx: m("workload_network_transmit_bytes_per_second", L),
    fs: m("workload_filesystem_usage_bytes", L),
    ephemeral: m("workload_ephemeral_storage_usage_bytes", L),
  };
  const [r, charts, pods] = await Promise.all([
    instants(ctx, Q),
    ctx.loadCharts(usageCharts("workload", L)),
    loadPods(ctx, L, { namespace: ns }),
  ]);
  const s = (n, k, fmt) => tileStat(n, r[k], fmt);
  const pt = podsTable(pods, { hide: ["namespace", "workload"], filter: ctx.params.get("q") || "" });
  ctx.search = (text) => pt.setFilter(text);
  return h(
    "div",
    { class: "page" },
    pageHead({ kind, title: name, facts: [["Namespace", a(links.namespace(ns), ns)]] }),
    tiles(
      tile({ title: "Pods", main: s("pods", "pods", f.count), subs: [["Restarts", s("restarts", "restarts", f.count)]] }),
      ...usageTiles(r),
      tile({ title: "Network received", main: s("network-receive", "rx", f.byteRate), subs: [["Transmitted", s("network-transmit", "tx", f.byteRate)]] }),
      tile({ title: "Filesystem used", main: s("filesystem-usage", "fs", f.bytes), subs: [["Ephemeral storage", s("ephemeral-storage-usage", "ephemeral", f.bytes)]] }),
    ),
    chartsGrid(charts.map((c) => ctx.chart(c))),
    card("Pods", pt.el),
  );
}
