/**
 * Workloads (#/workloads?ns=NS): Deployments, StatefulSets, DaemonSets,
 * CronJobs… (the owners kubemon resolved for the pods) with their pods and
 * CPU and memory against requests and limits; filter by namespace.
 */

import { h } from "../dom.js";
import { label as K } from "../series.js";
import { card, loadWorkloads, pageHead, podFilter, workloadsTable } from "../components.js";

export async function render(ctx) {
  const ns = ctx.params.get("ns") || "";
  ctx.title = "Workloads";
  const [data, nsFilter] = await Promise.all([loadWorkloads(ctx, ns), podFilter(ctx, K.namespace)]);
  const t = workloadsTable(data, { filter: ctx.params.get("q") || "", hide: ns ? ["namespace"] : [] });
  ctx.search = (text) => t.setFilter(text);
  return h(
    "div",
    { class: "page" },
    pageHead({ kind: "Cluster", title: "Workloads" }),
    h("div", { class: "filters" }, nsFilter),
    card(ns ? `Workloads in ${ns}` : "Workloads", t.el),
  );
}
