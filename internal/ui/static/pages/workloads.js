/**
 * Workloads (#/workloads?ns=NS): Deployments, StatefulSets, DaemonSets,
 * CronJobs… (the owners kubemon resolved for the pods) with their pods and
 * CPU and memory against requests and limits; filter by namespace.
 */

import { h } from "../dom.js";
import { card, instants, loadWorkloads, pageHead, selectFilter, workloadsTable } from "../components.js";

export async function render(ctx) {
  const ns = ctx.params.get("ns") || "";
  ctx.title = "Workloads";
  const [data, names] = await Promise.all([loadWorkloads(ctx, ns), instants(ctx, { ns: "count by (namespace) (pod_info)" })]);
  const t = workloadsTable(data, { filter: ctx.params.get("q") || "", hide: ns ? ["namespace"] : [] });
  ctx.search = (text) => t.setFilter(text);
  return h(
    "div",
    { class: "page" },
    pageHead({ kind: "Cluster", title: "Workloads" }),
    h("div", { class: "filters" }, selectFilter({ label: "Namespace", param: "ns", options: names.ns.result.map((x) => x.metric.namespace), value: ns, all: "All namespaces" })),
    card(ns ? `Workloads in ${ns}` : "Workloads", t.el),
  );
}
