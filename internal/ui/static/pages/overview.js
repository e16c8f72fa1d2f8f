/**
 * Overview (#/): the cluster at a glance. Stat tiles (nodes, pods,
 * namespaces, CPU and memory usage against allocatable and capacity,
 * requests and reservation, network, filesystem, restarts, failing
 * scrapes), the cluster's CPU, memory, network and filesystem over the
 * range, the top 10 pods by CPU and by memory, the busiest nodes and the
 * nodes whose last scrape failed (api/v1/targets). The search box finds
 * nodes, namespaces and pods by name.
 */

import { h } from "../dom.js";
import * as f from "../format.js";
import * as api from "../api.js";
import { table } from "../table.js";
import * as router from "../router.js";
import { by } from "../promql.js";
import { label as K, series as S } from "../series.js";
import { a, capacityCharts, capacityQueries, capacityTiles, card, chartsGrid, index, instants, links, notice, pageHead, stats, tile, tiles } from "../components.js";

/** namespaces are the namespaces with an info series or CPU usage, one series each. */
const namespaces = `count by ${by(K.namespace)} (${S.namespace.info} or ${S.namespace.cpuUsageRate})`;

const Q = {
  nodes: `count(${S.node.cpuCapacity})`,
  pods: `count(${S.pod.info})`,
  namespaces: `count(${namespaces})`,
  ...capacityQueries(S.cluster),
  top_cpu: `topk(10, ${S.pod.cpuUsageRate})`,
  top_memory: `topk(10, ${S.pod.memoryWorkingSet})`,
  node_cpu: S.node.cpuUtilization,
  node_memory: S.node.memoryUtilization,
  node_reservation: S.node.cpuReservation,
};

export const SEARCH_QUERIES = {
  nodes: `count by ${by(K.node)} (${S.node.cpuCapacity})`,
  namespaces,
  pods: `count by ${by(K.namespace, K.pod)} (${S.pod.info})`,
};

const CHARTS = capacityCharts(S.cluster);

export async function render(ctx) {
  ctx.title = "Overview";
  const q0 = ctx.params.get("q") || "";
  const [r, charts, targets, search] = await Promise.all([
    instants(ctx, Q),
    ctx.loadCharts(CHARTS),
    api.targets({ signal: ctx.signal }),
    q0 ? loadSearch(ctx) : Promise.resolve(null),
  ]);

  // Search: nodes, namespaces and pods by name, with links.
  let names = search;
  const results = h("div", { class: "search-results", dataset: { testid: "search-results" } });
  const showSearch = async (text) => {
    const t = text.trim().toLowerCase();
    if (!t) {
      results.replaceChildren();
      results.hidden = true;
      return;
    }
    results.hidden = false;
    if (!names) {
      results.replaceChildren(h("p", { class: "muted" }, "Searching…"));
      try {
        names = await loadSearch(ctx); // aborted with the page
      } catch (err) {
        results.replaceChildren(notice("error", "Search failed", " " + err.message));
        return;
      }
    }
    results.replaceChildren(searchView(names, t));
  };
  if (q0 && names) {
    results.replaceChildren(searchView(names, q0.trim().toLowerCase()));
  } else results.hidden = true;

  const s = stats(r);

  // Failing scrapes from api/v1/targets (null before the endpoint exists).
  const active = targets ? targets.activeTargets || [] : [];
  const failing = targets ? active.filter((t) => t.health !== "up") : null;

  const T = capacityTiles(r, "cluster-");
  const tileRow = tiles(
    tile({
      title: "Nodes",
      main: s("nodes", "nodes", f.count),
      subs: [
        [
          "Failing scrapes",
          {
            name: "failing-scrapes",
            query: null, // counted from api/v1/targets, not a PromQL answer
            raw: failing ? String(failing.length) : null,
            fmt: (v) => `${v} of ${active.length}`,
          },
        ],
      ],
      tone: failing && failing.length ? "warn" : null,
    }),
    tile({ title: "Pods", main: s("pods", "pods", f.count), subs: [["Namespaces", s("namespaces", "namespaces", f.count)], ["Restarts", s("cluster-restarts", "restarts", f.count)]] }),
    T.cpu,
    T.memory,
    T.cpuRequested,
    T.memoryRequested,
    T.network,
    T.filesystem,
  );

  const topTable = (name, result, unitFmt, label, query) =>
    table({
      name,
      columns: [
        { id: "pod", label: "Pod", get: (x) => x.pod, link: (x) => links.pod(x.namespace, x.pod) },
        { id: "namespace", label: "Namespace", get: (x) => x.namespace, link: (x) => links.namespace(x.namespace) },
        { id: "node", label: "Node", get: (x) => x.node, link: (x) => links.node(x.node) },
        { id: "value", label, num: true, fmt: unitFmt, get: (x) => x.value, query },
      ],
      rows: result.map((x) => ({ namespace: x.metric[K.namespace], pod: x.metric[K.pod], node: x.metric[K.node], value: x.value[1] })),
      key: (x) => `${x.namespace}/${x.pod}`,
      sort: "value:desc",
      noun: "pods",
    });
  const topCpu = topTable("top-pods-cpu", r.top_cpu.result, f.cores, "CPU", Q.top_cpu);
  const topMem = topTable("top-pods-memory", r.top_memory.result, f.bytes, "Memory", Q.top_memory);

  const mem = index(r.node_memory, (l) => l[K.node]);
  const res = index(r.node_reservation, (l) => l[K.node]);
  const nodeRows = r.node_cpu.result
    .map((x) => ({ node: x.metric[K.node], cpu: x.value[1], memory: mem.get(x.metric[K.node]) ?? null, reservation: res.get(x.metric[K.node]) ?? null }))
    .sort((x, y) => Number(y.cpu) - Number(x.cpu) || x.node.localeCompare(y.node))
    .slice(0, 10);
  const topNodes = table({
    name: "top-nodes",
    columns: [
      { id: "node", label: "Node", get: (x) => x.node, link: (x) => links.node(x.node) },
      { id: "cpu_utilization", label: "CPU used", num: true, fmt: f.percent, get: (x) => x.cpu, query: Q.node_cpu },
      { id: "memory_utilization", label: "Memory used", num: true, fmt: f.percent, get: (x) => x.memory, query: Q.node_memory },
      { id: "cpu_reservation", label: "CPU requested", num: true, fmt: f.percent, get: (x) => x.reservation, query: Q.node_reservation },
    ],
    rows: nodeRows,
    key: (x) => x.node,
    sort: "cpu_utilization:desc",
    noun: "nodes",
  });

  const scrapes = failing
    ? table({
        name: "failing-scrapes",
        columns: [
          { id: "node", label: "Node", get: (t) => t.labels?.[K.node] || t.scrapeUrl, link: (t) => (t.labels?.[K.node] ? links.node(t.labels[K.node]) : null) },
          { id: "health", label: "Health", get: (t) => t.health, render: (t, c) => h("span", { class: "pill pill-" + (t.health === "down" ? "bad" : "unknown") }, c) },
          { id: "error", label: "Last error", get: (t) => t.lastError || "", cls: () => "wrap mono small" },
          {
            id: "last_scrape",
            label: "Last scrape",
            num: true,
            get: (t) => scrapeTime(t),
            fmt: (v) => (Number(v) > 0 ? `${f.duration(Date.now() / 1000 - Number(v))} ago` : "never"),
          },
          { id: "duration", label: "Duration", num: true, get: (t) => (scrapeTime(t) ? (t.lastScrapeDuration ?? null) : null), fmt: f.seconds },
        ],
        rows: failing,
        key: (t) => t.labels?.[K.node] || t.scrapeUrl,
        sort: "node:asc",
        noun: "failing targets",
        empty: "no failing scrapes match",
        none: `all ${active.length} scrapes are up`,
      })
    : null;

  // The search box filters the tables too.
  const filterables = [topCpu, topMem, topNodes, scrapes].filter(Boolean);
  ctx.search = (text) => {
    showSearch(text);
    for (const t of filterables) t.setFilter(text);
  };
  for (const t of filterables) t.setFilter(q0);

  return h(
    "div",
    { class: "page" },
    pageHead({
      kind: "Cluster",
      title: "Overview",
      facts: [
        ["Retention", f.durationText(ctx.info.retention)],
        ["Scrape interval", `${ctx.info.scrapeInterval}s`],
      ],
    }),
    results,
    tileRow,
    chartsGrid(charts.map((c) => ctx.chart(c))),
    h(
      "div",
      { class: "cols" },
      card("Top pods by CPU", topCpu.el),
      card("Top pods by memory (working set)", topMem.el),
      card("Busiest nodes", topNodes.el, { extra: h("a", { href: router.link("/nodes"), class: "card-link" }, "All nodes →") }),
      card("Failing scrapes", scrapes ? scrapes.el : notice("info", "n/a", " This kubemon does not serve api/v1/targets yet."), {
        extra: scrapes ? h("span", { class: "muted small" }, `${active.length - failing.length} of ${active.length} up`) : null,
      }),
    ),
  );
}

/** scrapeTime is a target's last scrape as unix seconds (a string), null when never scraped. */
function scrapeTime(t) {
  const ms = t.lastScrape ? Date.parse(t.lastScrape) : NaN;
  return ms > 0 ? String(ms / 1000) : null;
}

async function loadSearch(ctx) {
  const r = await instants(ctx, SEARCH_QUERIES);
  return {
    nodes: r.nodes.result.map((x) => x.metric[K.node]).sort(),
    namespaces: r.namespaces.result.map((x) => x.metric[K.namespace]).sort(),
    pods: r.pods.result.map((x) => [x.metric[K.namespace], x.metric[K.pod]]).sort((p, q) => p[1].localeCompare(q[1])),
  };
}

function searchView(names, t) {
  const LIMIT = 8;
  const nodes = names.nodes.filter((n) => n.toLowerCase().includes(t));
  const nss = names.namespaces.filter((n) => n.toLowerCase().includes(t));
  const pods = names.pods.filter(([ns, p]) => p.toLowerCase().includes(t) || `${ns}/${p}`.toLowerCase().includes(t));
  let firstMarked = false;
  const mark = (el) => {
    if (!firstMarked) {
      el.dataset.searchFirst = "";
      firstMarked = true;
    }
    return el;
  };
  const group = (title, items, total, render, listPath) =>
    h(
      "div",
      { class: "search-group" },
      h("h3", null, title, h("span", { class: "muted" }, ` ${total}`)),
      items.length ? h("ul", null, items.slice(0, LIMIT).map((x) => h("li", null, mark(render(x))))) : h("p", { class: "muted small" }, "none"),
      total > LIMIT ? h("p", { class: "small" }, h("a", { href: router.link(listPath, { q: t }) }, `all ${total} ${title.toLowerCase()} →`)) : null,
    );
  const total = nodes.length + nss.length + pods.length;
  return h(
    "section",
    { class: "card search-card", "aria-label": "Search results" },
    h("header", { class: "card-head" }, h("h2", null, `Search: “${t}”`), h("span", { class: "muted small" }, total ? `${total} found · Enter opens the first` : "nothing found")),
    h(
      "div",
      { class: "search-groups" },
      group("Nodes", nodes, nodes.length, (n) => a(links.node(n), n), "/nodes"),
      group("Namespaces", nss, nss.length, (n) => a(links.namespace(n), n), "/namespaces"),
      group("Pods", pods, pods.length, ([ns, p]) => h("span", null, a(links.pod(ns, p), p), h("span", { class: "muted small" }, ` ${ns}`)), "/pods"),
    ),
  );
}
