/**
 * kubemon's web UI: the shell (header, navigation, search, time range,
 * auto-refresh) and the page lifecycle.
 *
 * Each page module (pages/*.js) exports render(ctx), which fetches its data
 * (all queries in parallel, through ctx) and returns the page's DOM; the
 * shell swaps it in, mounts the charts and sets
 * document.body.dataset.state: "loading" when a load starts, "ready" once
 * every fetch is done and the DOM rendered, "error" when a fetch failed
 * (the message is shown), and data-ready-at the performance.now() of "ready".
 * A new route, range or refresh aborts the fetches
 * still in flight (AbortController).
 *
 * The time range: ?range=1h (a preset, live: it ends at the server's "now")
 * or ?from=UNIX&to=UNIX (absolute, set by dragging on a chart). Instant
 * queries (tiles, tables) are evaluated at the range's end, or one scrape
 * interval + 5 s before the present when the range ends later (the newest
 * moment whose samples have all been stored).
 */

import * as api from "./api.js";
import * as router from "./router.js";
import { h, debounce } from "./dom.js";
import { clearRegistry, chartCard, estimateStep, loadCharts } from "./chart.js";
import { clock, durationText, parseDuration, rangeText } from "./format.js";
import { notice } from "./components.js";

import * as overview from "./pages/overview.js";
import * as nodes from "./pages/nodes.js";
import * as node from "./pages/node.js";
import * as namespaces from "./pages/namespaces.js";
import * as namespace from "./pages/namespace.js";
import * as workloads from "./pages/workloads.js";
import * as workload from "./pages/workload.js";
import * as pods from "./pages/pods.js";
import * as pod from "./pages/pod.js";
import * as container from "./pages/container.js";
import * as rightsizing from "./pages/rightsizing.js";
import * as alerts from "./pages/alerts.js";

const ROUTES = [
  { match: [], page: overview, nav: "overview" },
  { match: ["nodes"], page: nodes, nav: "nodes" },
  { match: ["node", "*"], page: node, nav: "nodes" },
  { match: ["namespaces"], page: namespaces, nav: "namespaces" },
  { match: ["namespace", "*"], page: namespace, nav: "namespaces" },
  { match: ["workloads"], page: workloads, nav: "workloads" },
  { match: ["workload", "*", "*", "*"], page: workload, nav: "workloads" },
  { match: ["pods"], page: pods, nav: "pods" },
  { match: ["pod", "*", "*"], page: pod, nav: "pods" },
  { match: ["container", "*", "*", "*"], page: container, nav: "pods" },
  { match: ["rightsizing"], page: rightsizing, nav: "rightsizing" },
  { match: ["alerts"], page: alerts, nav: "alerts" },
];

const NAV = [
  ["overview", "Overview", "/"],
  ["nodes", "Nodes", "/nodes"],
  ["namespaces", "Namespaces", "/namespaces"],
  ["workloads", "Workloads", "/workloads"],
  ["pods", "Pods", "/pods"],
  ["rightsizing", "Right-sizing", "/rightsizing"],
  ["alerts", "Alerts", "/alerts"],
];

const PRESETS = ["15m", "1h", "6h", "24h", "2d", "7d", "14d", "30d", "90d"];
const REFRESH = [
  ["", "Off"],
  ["15s", "15s"],
  ["30s", "30s"],
  ["1m", "1m"],
  ["5m", "5m"],
];
const DEFAULT_RANGE = "1h";

const state = {
  info: { retention: 15 * 86400, scrapeInterval: 15 },
  clockOffset: 0, // server clock − browser clock, seconds
  controller: null,
  loadSeq: 0,
  cleanups: [],
  search: null, // the page's search handler
  timer: 0,
  lastPath: null,
  loading: false,
  inited: false, // init() has read the runtime info and the server's clock
};

/* ---------- the header ---------- */

const els = {};

function buildShell() {
  els.badge = h("span", { class: "nav-badge", dataset: { testid: "alerts-badge", count: "" }, hidden: true, title: "Alerts firing" });
  const navLinks = NAV.map(([id, label]) => h("a", { class: "nav-link", dataset: { nav: id } }, label, id === "alerts" ? els.badge : null));
  els.nav = h("nav", { class: "nav", id: "nav", "aria-label": "Main" }, navLinks);
  // At phone width the navigation is behind the menu button: it shows the count too.
  els.menuBadge = h("span", { class: "nav-badge menu-badge", hidden: true, "aria-hidden": "true" });
  els.menu = h(
    "button",
    { type: "button", class: "menu-btn", "aria-controls": "nav", "aria-expanded": "false", "aria-label": "Menu" },
    h("span", { class: "menu-icon", "aria-hidden": "true" }),
    els.menuBadge,
  );
  els.menu.addEventListener("click", () => {
    const open = !document.body.classList.contains("nav-open");
    document.body.classList.toggle("nav-open", open);
    els.menu.setAttribute("aria-expanded", String(open));
  });

  els.search = h("input", {
    type: "search",
    id: "search",
    class: "search",
    placeholder: "Search…",
    autocomplete: "off",
    spellcheck: "false",
    "aria-label": "Search",
  });
  const onSearch = debounce(() => {
    router.update({ q: els.search.value || null });
    if (state.search) state.search(els.search.value);
  }, 120);
  els.search.addEventListener("input", onSearch);
  els.search.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && els.search.value) {
      els.search.value = "";
      onSearch();
    }
    if (e.key === "Enter") {
      const firstLink = document.querySelector("[data-search-first]");
      if (firstLink) firstLink.click();
    }
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "/" && !e.ctrlKey && !e.metaKey && !["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement?.tagName)) {
      e.preventDefault();
      els.search.focus();
    }
  });

  els.range = h("select", { id: "range", class: "select", "aria-label": "Time range" });
  els.range.addEventListener("change", () => {
    router.update({ range: els.range.value, from: null, to: null }, { reload: true, replace: false });
  });
  els.zoomOut = h("button", { type: "button", class: "btn zoom-out", hidden: true, title: "Back to the preset range" }, "Zoom out");
  els.zoomOut.addEventListener("click", () => router.update({ from: null, to: null }, { reload: true, replace: false }));

  els.refresh = h(
    "select",
    { id: "refresh", class: "select", "aria-label": "Auto-refresh" },
    REFRESH.map(([v, label]) => h("option", { value: v }, label)),
  );
  els.refresh.addEventListener("change", () => {
    router.update({ refresh: els.refresh.value || null });
    scheduleRefresh();
  });
  els.reload = h("button", { type: "button", class: "btn icon-btn", title: "Reload now", "aria-label": "Reload now" }, "↻");
  els.reload.addEventListener("click", () => load({ soft: true }));
  els.updated = h("span", { class: "updated", "aria-live": "polite" }, "");
  els.progress = h("div", { class: "progress", "aria-hidden": "true" });

  const header = h(
    "header",
    { class: "top" },
    h(
      "div",
      { class: "top-row" },
      h("a", { class: "brand", href: "#/", "aria-label": "kubemon overview" }, h("img", { src: "ui/favicon.svg", alt: "", width: 22, height: 22 }), "kubemon"),
      els.menu,
      els.nav,
      h("div", { class: "spacer" }),
    ),
    h(
      "div",
      { class: "controls" },
      h("label", { class: "search-wrap" }, h("span", { class: "sr-only" }, "Search"), els.search),
      h(
        "div",
        { class: "control-group" },
        h("label", { class: "ctl" }, h("span", { class: "ctl-label" }, "Range"), els.range),
        els.zoomOut,
        h("label", { class: "ctl" }, h("span", { class: "ctl-label" }, "Refresh"), els.refresh),
        els.reload,
        els.updated,
      ),
    ),
    els.progress,
  );
  els.main = h("main", { id: "main", class: "main", tabindex: "-1" });
  const footer = h(
    "footer",
    { class: "foot" },
    "kubemon · data from this kubemon's Prometheus-compatible API · times in your browser's time zone",
  );
  document.getElementById("app").replaceChildren(header, els.main, footer);
  api.onActivity((n) => document.body.classList.toggle("busy", n > 0));
}

function updateShell(route, nav) {
  const { params } = route;
  for (const a of els.nav.querySelectorAll("a")) {
    const id = a.dataset.nav;
    const item = NAV.find((n) => n[0] === id);
    a.href = router.link(item[2]);
    if (id === nav) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.querySelector(".brand").href = router.link("/");

  // Range presets up to the store's retention.
  const range = params.get("range") || DEFAULT_RANGE;
  const presets = PRESETS.filter((p) => parseDuration(p) <= state.info.retention || p === "15m");
  const opts = presets.map((p) => h("option", { value: p }, `Last ${durationText(parseDuration(p))}`));
  if (!presets.includes(range) && parseDuration(range) > 0) opts.push(h("option", { value: range }, `Last ${durationText(parseDuration(range))}`));
  const abs = absoluteRange(params);
  if (abs) opts.unshift(h("option", { value: "", disabled: true }, rangeText(abs.from, abs.to)));
  els.range.replaceChildren(...opts);
  els.range.value = abs ? "" : range;
  els.zoomOut.hidden = !abs;

  const refresh = params.get("refresh") || "";
  els.refresh.value = REFRESH.some(([v]) => v === refresh) ? refresh : "";
  if (document.activeElement !== els.search) els.search.value = params.get("q") || "";
  els.search.placeholder = nav === "overview" ? "Search by name…" : "Filter this table…";
  els.search.title = nav === "overview" ? "Find nodes, namespaces and pods by name (press / to focus)" : "Filter the rows of this page's tables (press / to focus)";
  document.body.classList.remove("nav-open");
  els.menu.setAttribute("aria-expanded", "false");
}

function absoluteRange(params) {
  const from = Number(params.get("from"));
  const to = Number(params.get("to"));
  if (params.has("from") && params.has("to") && Number.isFinite(from) && Number.isFinite(to) && to > from) return { from, to };
  return null;
}

/* ---------- time ---------- */

function serverNow() {
  return Date.now() / 1000 + state.clockOffset;
}

/** chartWidth estimates a chart's plot width from the layout (for the query step). */
function chartWidth() {
  const w = els.main.clientWidth || window.innerWidth;
  const inner = w - 2 * parseFloat(getComputedStyle(els.main).paddingLeft || "0");
  const cols = window.innerWidth >= 1100 ? 2 : 1;
  const cardW = (inner - (cols - 1) * 16) / cols;
  return Math.max(200, Math.floor(cardW - 32 - 60));
}

function computeRange(params) {
  const abs = absoluteRange(params);
  let start;
  let end;
  let live = false;
  if (abs) {
    start = Math.floor(abs.from);
    end = Math.ceil(abs.to);
  } else {
    let span = parseDuration(params.get("range") || DEFAULT_RANGE);
    if (!(span > 0)) span = parseDuration(DEFAULT_RANGE);
    end = Math.floor(serverNow());
    start = end - span;
    live = true;
  }
  const span = end - start;
  const step = estimateStep(span, chartWidth(), state.info.scrapeInterval);
  // Instant queries (tiles, tables) are evaluated at the range's end, but
  // never later than the settled present: samples carry the kubelet's stats
  // time and are stored when the scrape ends, so the last seconds may still
  // fill in; one scrape interval (+5 s) back, every node's sample is there
  // and the numbers shown are the numbers the API gives for that time.
  const settled = Math.floor(serverNow() - Math.ceil(state.info.scrapeInterval) - 5);
  const time = Math.min(end, settled);
  return { start, end, step, span, live, time };
}

/* ---------- loading a page ---------- */

function matchRoute(segments) {
  for (const r of ROUTES) {
    if (r.match.length !== segments.length) continue;
    if (r.match.every((m, i) => m === "*" || m === segments[i])) return r;
  }
  return null;
}

function setState(s) {
  document.body.dataset.state = s;
  // When the view became usable, in ms since the navigation started
  // (performance.now()): the UI benchmarks read it.
  if (s === "ready") document.body.dataset.readyAt = String(performance.now());
}

async function load({ soft = false } = {}) {
  const route = router.current();
  const matched = matchRoute(route.segments);
  const seq = ++state.loadSeq;
  if (state.controller) state.controller.abort();
  const controller = new AbortController();
  state.controller = controller;
  const { signal } = controller;

  const samePath = state.lastPath === route.path;
  state.lastPath = route.path;
  clearRegistry();
  setState("loading");
  state.loading = true;
  document.body.classList.add("loading");
  if (!samePath && !soft) els.main.classList.add("stale");

  const mounts = [];
  const cleanups = [];
  try {
    await init(signal);
    updateShell(route, matched ? matched.nav : null);
    const range = computeRange(route.params);
    const ctx = {
      route,
      params: route.params,
      segments: route.segments,
      range,
      time: range.time,
      info: state.info,
      signal,
      query: (q) => api.query(q, { time: range.time, signal }),
      loadCharts: (specs) => loadCharts(specs, range, signal),
      chart: (loaded) => {
        const c = chartCard(loaded, { onZoom: zoomTo });
        mounts.push(c.mount);
        cleanups.push(c.destroy);
        return c;
      },
      onMount: (fn) => mounts.push(fn),
      onCleanup: (fn) => cleanups.push(fn),
      search: null, // a page sets ctx.search = (text) => ... to receive the search box
      title: "",
      now: serverNow, // the server's clock, unix seconds
    };
    if (!matched) {
      swap(notFound(route), [], [], null, samePath);
    } else {
      const content = await matched.page.render(ctx);
      if (seq !== state.loadSeq) return;
      document.title = (ctx.title ? ctx.title + " · " : "") + "kubemon";
      // Every PromQL stat was evaluated at ctx.time.
      for (const el of content.querySelectorAll("[data-testid^='stat-'][data-query], [data-testid^='stat-'][data-empty-query]")) {
        el.dataset.time = String(range.time);
      }
      swap(content, mounts, cleanups, ctx.search, samePath);
    }
    // The time every query of the view was evaluated at (unix seconds),
    // for the browser tests.
    document.body.dataset.time = String(range.time);
    els.updated.textContent = "Updated " + clock(Date.now() / 1000);
    els.updated.title = `Charts up to ${new Date(range.end * 1000).toLocaleString()}; numbers at ${new Date(range.time * 1000).toLocaleString()}`;
    setState("ready");
    // The navigation's count of firing alerts, once the view is ready (the
    // Alerts page sets it from its own answer).
    if (matched && matched.page !== alerts) refreshBadge(signal);
  } catch (err) {
    if (seq !== state.loadSeq || api.isAbort(err)) return;
    for (const fn of cleanups) fn();
    updateShell(route, matched ? matched.nav : null);
    swap(errorView(err), [], [], null, samePath);
    setState("error");
  } finally {
    if (seq === state.loadSeq) {
      state.loading = false;
      document.body.classList.remove("loading");
      els.main.classList.remove("stale");
    }
  }
}

function swap(content, mounts, cleanups, search, samePath) {
  for (const fn of state.cleanups) fn();
  state.cleanups = cleanups;
  state.search = search;
  els.main.replaceChildren(content);
  for (const fn of mounts) fn();
  if (!samePath) {
    window.scrollTo(0, 0);
  }
}

function zoomTo(from, to) {
  router.update({ from: String(from), to: String(to) }, { reload: true, replace: false });
}

/* ---------- the alerts badge ---------- */

/** setBadge shows how many alerts are firing next to "Alerts" (nothing when none). */
function setBadge(list) {
  const n = list.filter((a) => a.state === "firing").length;
  els.badge.textContent = String(n);
  els.badge.dataset.count = String(n);
  els.badge.hidden = n === 0;
  els.badge.title = `${n} alert${n === 1 ? "" : "s"} firing`;
  els.menuBadge.textContent = String(n);
  els.menuBadge.hidden = n === 0;
}

async function refreshBadge(signal) {
  try {
    setBadge(await api.alerts({ signal }));
  } catch {
    // Not allowed, or aborted by the next load: the badge keeps what it showed.
  }
}

/* ---------- refresh ---------- */

function scheduleRefresh() {
  clearInterval(state.timer);
  const every = parseDuration(router.current().params.get("refresh") || "");
  if (!(every > 0)) return;
  state.timer = setInterval(() => {
    const { params } = router.current();
    if (absoluteRange(params) || document.hidden || state.loading) return;
    load({ soft: true });
  }, every * 1000);
}

/* ---------- errors ---------- */

function notFound(route) {
  return h(
    "div",
    { class: "page" },
    notice("warn", "No such page", ` “#${route.path}” is not a kubemon view. `, h("a", { href: router.link("/") }, "Go to the overview")),
  );
}

function errorView(err) {
  if (err instanceof api.AuthError) return authPanel();
  if (err instanceof api.ForbiddenError) {
    return h(
      "div",
      { class: "page" },
      notice(
        "error",
        "Access denied (403)",
        h("p", { dataset: { testid: "error-message" } }, err.message),
        h("p", null, "Your credentials are valid but may not read kubemon's API: bind them to the kubemon-viewer ClusterRole, or use another token."),
      ),
      authPanel(true),
    );
  }
  const retry = h("button", { type: "button", class: "btn" }, "Retry");
  retry.addEventListener("click", () => load());
  return h(
    "div",
    { class: "page" },
    notice(
      "error",
      "Could not load this page",
      h("p", { class: "mono", dataset: { testid: "error-message" } }, err.message || String(err)),
      err.url ? h("p", { class: "muted small mono" }, decodeURIComponent(err.url)) : null,
      retry,
    ),
  );
}

function authPanel(compact = false) {
  const input = h("input", {
    type: "password",
    id: "token",
    class: "input mono",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "eyJhbGciOi…",
    value: api.getToken(),
  });
  const form = h(
    "form",
    { class: "token-form" },
    h("label", { for: "token" }, "Bearer token"),
    h("div", { class: "token-row" }, input, h("button", { type: "submit", class: "btn btn-primary" }, "Save and retry")),
    api.getToken()
      ? h("button", { type: "button", class: "btn btn-link", id: "forget-token" }, "Forget the saved token")
      : null,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    api.setToken(input.value);
    load();
  });
  form.querySelector("#forget-token")?.addEventListener("click", () => {
    api.setToken("");
    load();
  });
  const path = "http://127.0.0.1:8001/apis/kubemon.io/v1alpha1/";
  return h(
    "div",
    { class: compact ? "auth" : "page auth", dataset: { testid: "auth-panel" } },
    h(
      "section",
      { class: "card auth-card" },
      compact ? null : h("h1", null, "kubemon needs Kubernetes credentials"),
      compact
        ? null
        : h(
            "p",
            null,
            "Open it through ",
            h("code", null, "kubectl proxy"),
            " at ",
            h("a", { href: path }, path),
            ", or paste a token (",
            h("code", null, "kubectl create token <serviceaccount>"),
            " for a ServiceAccount bound to the ",
            h("code", null, "kubemon-viewer"),
            " ClusterRole).",
          ),
      form,
      h("p", { class: "muted small" }, "The token is kept in this tab's session storage only and sent as Authorization: Bearer on API calls."),
    ),
  );
}

/* ---------- start ---------- */

/**
 * init reads the store's retention and scrape interval and the server's
 * clock (instant queries are evaluated at the server's "now", not the
 * browser's), once; a failure (401 before a token is given) is retried with
 * the next load.
 */
async function init(signal) {
  if (state.inited) return;
  const t0 = Date.now() / 1000;
  const [info, t] = await Promise.all([
    api.runtimeInfo({ signal, parse: (s) => parseDuration(String(s).split(/\s+/)[0]) }),
    api.serverTime({ signal }),
  ]);
  state.info = info;
  state.clockOffset = t - (t0 + Date.now() / 1000) / 2;
  state.inited = true;
}

function start() {
  buildShell();
  window.addEventListener("kubemon:alerts", (e) => setBadge(e.detail.alerts));
  window.addEventListener("hashchange", () => {
    load();
    scheduleRefresh();
  });
  matchMedia("(prefers-color-scheme: dark)").addEventListener?.("change", () => load({ soft: true }));
  load();
  scheduleRefresh();
}

window.kubemon = window.kubemon || { charts: {} };
start();
