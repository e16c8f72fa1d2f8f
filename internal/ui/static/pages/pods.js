/**
 * Pods (#/pods?ns=NS&node=NODE): every pod (of a namespace and/or node)
 * with CPU and memory against requests and limits, restarts and uptime.
 * Sortable; the search box filters by name.
 */

import { h } from "../dom.js";
import { label as K } from "../series.js";
import { card, loadPods, pageHead, podFilter, podsTable } from "../components.js";

export async function render(ctx) {
  const ns = ctx.params.get("ns") || "";
  const node = ctx.params.get("node") || "";
  ctx.title = "Pods";
  const L = { [K.namespace]: ns, [K.node]: node };
  const [data, nsFilter, nodeFilter] = await Promise.all([loadPods(ctx, L), podFilter(ctx, K.namespace), podFilter(ctx, K.node)]);
  const hide = [];
  if (ns) hide.push("namespace");
  if (node) hide.push("node");
  const t = podsTable(data, { filter: ctx.params.get("q") || "", hide });
  ctx.search = (text) => t.setFilter(text);
  const where = [ns && `namespace ${ns}`, node && `node ${node}`].filter(Boolean).join(", ");
  return h(
    "div",
    { class: "page" },
    pageHead({ kind: "Cluster", title: "Pods" }),
    h("div", { class: "filters" }, nsFilter, nodeFilter),
    card(where ? `Pods in ${where}` : "Pods", t.el),
  );
}
