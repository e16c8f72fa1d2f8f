/**
 * Calls to kubemon's Prometheus-compatible API: every URL is relative to the
 * page (so the UI works under kubectl proxy's /apis/kubemon.io/v1alpha1/ or
 * any other prefix), every call carries the saved bearer token if there is
 * one, and failures become typed errors the app can show:
 *
 *   AuthError       401: the caller needs credentials (the app shows the token panel)
 *   ForbiddenError  403: authenticated but not allowed (the server's message is shown)
 *   ApiError        any other failure (PromQL errors, 5xx, network)
 *
 * An aborted call (the page or range changed) rejects with the DOMException
 * "AbortError", which the app ignores.
 */

const TOKEN_KEY = "kubemon.token";

export class ApiError extends Error {
  constructor(message, { status = 0, errorType = "", url = "" } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.errorType = errorType;
    this.url = url;
  }
}
export class AuthError extends ApiError {
  constructor(message, opts) {
    super(message, opts);
    this.name = "AuthError";
  }
}
export class ForbiddenError extends ApiError {
  constructor(message, opts) {
    super(message, opts);
    this.name = "ForbiddenError";
  }
}

/** isAbort tells an aborted fetch from a failure. */
export function isAbort(err) {
  return err && (err.name === "AbortError" || err.name === "TimeoutError");
}

export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return "";
  }
}

export function setToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token.trim());
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage disabled: the token lasts for this call only */
  }
}

/** Count of calls in flight, for the header's activity indicator. */
let inflight = 0;
const listeners = new Set();
export function onActivity(fn) {
  listeners.add(fn);
}
function activity(delta) {
  inflight += delta;
  for (const fn of listeners) fn(inflight);
}

/**
 * get fetches a relative API URL and returns the parsed "data" of a
 * Prometheus envelope (envelope: the whole envelope, with its warnings).
 * optional404: answer null instead of failing when the endpoint does not
 * exist (yet).
 */
export async function get(url, { signal, optional404 = false, envelope = false } = {}) {
  const headers = { Accept: "application/json" };
  const token = getToken();
  if (token) headers.Authorization = "Bearer " + token;
  let res;
  activity(1);
  try {
    try {
      res = await fetch(url, { headers, signal, credentials: "same-origin", cache: "no-store" });
    } catch (err) {
      if (isAbort(err)) throw err;
      throw new ApiError(`kubemon did not answer (${err.message})`, { url });
    }
    if (optional404 && res.status === 404) return null;
    let body = null;
    const text = await res.text();
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = null;
    }
    const message = (body && body.error) || text.trim() || res.statusText || `HTTP ${res.status}`;
    if (res.status === 401) throw new AuthError(message, { status: 401, url });
    if (res.status === 403) throw new ForbiddenError(message, { status: 403, url });
    if (!res.ok || !body || body.status !== "success") {
      throw new ApiError(message, { status: res.status, errorType: (body && body.errorType) || "", url });
    }
    return envelope ? body : body.data;
  } finally {
    activity(-1);
  }
}

function qs(params) {
  const sp = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) sp.set(k, String(v));
  return sp.toString();
}

/**
 * query runs an instant query; returns the result array of a vector, or
 * [{metric: {}, value}] for a scalar. Plain selectors are batched (below).
 */
export async function query(q, { time, signal } = {}) {
  const batch = batched("query", q, { time }, signal);
  if (batch) return batch;
  return queryNow(q, { time, signal });
}

async function queryNow(q, { time, signal }) {
  const data = await get("api/v1/query?" + qs({ query: q, time }), { signal });
  if (data.resultType === "scalar" || data.resultType === "string") return [{ metric: {}, value: data.result }];
  return data.result;
}

/** queryRange runs a range query; returns the matrix (array of {metric, values}). Plain selectors are batched. */
export async function queryRange(q, start, end, step, { signal } = {}) {
  const batch = batched("query_range", q, { start, end, step }, signal);
  if (batch) return batch;
  return queryRangeNow(q, { start, end, step, signal });
}

async function queryRangeNow(q, { start, end, step, signal }) {
  const data = await get("api/v1/query_range?" + qs({ query: q, start, end, step }), { signal });
  return data.result;
}

/*
 * Batching. A browser sends at most 6 requests at a time to a server over
 * HTTP/1.1, so a page of 40 queries waits on its own queue. The plain
 * selectors (a metric name and label matchers, no function) asked for in
 * the same turn of the event loop, with the same matchers, the same
 * evaluation time or range and the same abort signal, are fetched as one
 * query, {__name__=~"a|b|c", matchers…}, whose answer is split by metric
 * name: each caller gets exactly the series its own selector selects (a
 * pod's 20 tiles cost one request, not 20). A lone selector, or any other
 * expression, is sent as it is.
 */
const SELECTOR = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^{}]*)\})?$/;
const signalIds = new WeakMap();
let lastSignalId = 0;
let pendingBatches = null; // key → {kind, matchers, params, signal, members: [{name, resolve, reject}]}

function batched(kind, q, params, signal) {
  const m = SELECTOR.exec(q.trim());
  if (!m || (m[2] || "").includes("__name__")) return null;
  const [, name, matchers = ""] = m;
  if (!pendingBatches) {
    pendingBatches = new Map();
    setTimeout(flushBatches, 0);
  }
  let sid = 0;
  if (signal) {
    if (!signalIds.has(signal)) signalIds.set(signal, ++lastSignalId);
    sid = signalIds.get(signal);
  }
  const key = [kind, matchers.trim(), JSON.stringify(params), sid].join("\n");
  let b = pendingBatches.get(key);
  if (!b) pendingBatches.set(key, (b = { kind, matchers: matchers.trim(), params, signal, members: [] }));
  return new Promise((resolve, reject) => b.members.push({ q, name, resolve, reject }));
}

function flushBatches() {
  const batches = pendingBatches;
  pendingBatches = null;
  for (const b of batches.values()) {
    const names = [...new Set(b.members.map((x) => x.name))];
    const one = names.length === 1;
    const q = one ? b.members[0].q : `{__name__=~"${names.join("|")}"${b.matchers ? "," + b.matchers : ""}}`;
    const run = b.kind === "query" ? queryNow(q, { ...b.params, signal: b.signal }) : queryRangeNow(q, { ...b.params, signal: b.signal });
    run.then(
      (result) => {
        for (const x of b.members) x.resolve(one ? result : result.filter((s) => s.metric.__name__ === x.name));
      },
      (err) => {
        for (const x of b.members) x.reject(err);
      },
    );
  }
}

/**
 * eventsURL is the relative URL of GET /api/v1/events with params
 * (namespace, kind, name, uid, reason, type, node, start, end, limit;
 * empty ones left out).
 */
export function eventsURL(params) {
  const p = {};
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") p[k] = v;
  return "api/v1/events?" + qs(p);
}

/**
 * Whether this kubemon keeps events: true until it says otherwise. The
 * runtime info (init, before any page) says eventsEnabled: false when it
 * runs with --events.enabled=false, and then no page asks for events: the
 * endpoint answers 404, which the browser reports as a failed request. A
 * kubemon whose runtime info does not say answers 404 to the first page's
 * request, and the next pages do not ask again.
 */
let eventsEnabled = true;

/** eventsOff tells whether this kubemon keeps no events (as far as the UI knows). */
export function eventsOff() {
  return !eventsEnabled;
}

/**
 * events fetches Kubernetes events (newest first) from eventsURL(params):
 * {url, events, warnings}, or {url: null, events: null, warnings: []}
 * when this kubemon keeps no events (--events.enabled=false: the runtime
 * info said so, and nothing is asked, or the endpoint answered 404).
 */
export async function events(params, { signal } = {}) {
  const off = { url: null, events: null, warnings: [] };
  if (!eventsEnabled) return off;
  const url = eventsURL(params);
  const body = await get(url, { signal, optional404: true, envelope: true });
  if (!body) {
    eventsEnabled = false;
    return off;
  }
  return { url, events: body.data || [], warnings: body.warnings || [] };
}

/** alerts returns the pending and firing alerts (/api/v1/alerts, Prometheus's format). */
export async function alerts({ signal } = {}) {
  const data = await get("api/v1/alerts", { signal });
  return (data && data.alerts) || [];
}

/** ruleGroups returns the rule groups with their rules (/api/v1/rules, Prometheus's format). */
export async function ruleGroups({ signal } = {}) {
  const data = await get("api/v1/rules", { signal });
  return (data && data.groups) || [];
}

/** targets returns the scrape targets (Prometheus's format), or null before the endpoint exists. */
export async function targets({ signal } = {}) {
  return get("api/v1/targets", { signal, optional404: true });
}

/**
 * runtimeInfo returns {retention, scrapeInterval} in seconds, with the
 * defaults (15d, 15s) when the endpoint does not answer them, and notes
 * whether this kubemon keeps events (eventsEnabled, kubemon's addition to
 * Prometheus's fields; events() then asks for none when it is false).
 */
export async function runtimeInfo({ signal, parse } = {}) {
  const out = { retention: 15 * 86400, scrapeInterval: 15 };
  const data = await get("api/v1/status/runtimeinfo", { signal, optional404: true });
  if (data) {
    if (data.eventsEnabled === false) eventsEnabled = false;
    else if (data.eventsEnabled === true) eventsEnabled = true;
    const r = parse(data.storageRetention || "");
    if (r > 0) out.retention = r;
    const i = parse(data.scrapeInterval || "");
    if (i > 0) out.scrapeInterval = i;
  }
  return out;
}

/** serverTime returns the server's clock (unix seconds), to query "now" as the server sees it. */
export async function serverTime({ signal } = {}) {
  const r = await query("time()", { signal });
  return Number(r[0].value[1]);
}
