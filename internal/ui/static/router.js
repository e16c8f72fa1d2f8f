/**
 * Hash routing: the whole view state lives after the "#", so the server
 * path (whatever proxy prefix it has) never changes and every view can be
 * shared, reloaded and navigated with back/forward.
 *
 *   #/pods?ns=shop&sort=cpu:desc&range=6h&refresh=30s&q=web
 *   #/node/sim-node-0001?from=1700000000&to=1700003600
 *
 * Path segments are URI-encoded; the query string is URLSearchParams.
 * Changing the route or a data parameter (links, update with reload) fires
 * "hashchange" and the app reloads the page's data; view-only parameters
 * (sort, filter) are written with update, which replaces the history entry
 * without a reload.
 */

/** Parameters every link carries from page to page (the time range). */
export const GLOBAL_PARAMS = ["range", "from", "to", "refresh"];

/** current parses location.hash into {path, segments, params}. */
export function current() {
  return parse(location.hash);
}

/** parse reads a "#/a/b?x=1" string. */
export function parse(hash) {
  let s = hash.startsWith("#") ? hash.slice(1) : hash;
  const qi = s.indexOf("?");
  const qs = qi >= 0 ? s.slice(qi + 1) : "";
  s = qi >= 0 ? s.slice(0, qi) : s;
  const segments = s
    .split("/")
    .filter((x) => x !== "")
    .map((x) => {
      try {
        return decodeURIComponent(x);
      } catch {
        return x;
      }
    });
  return { path: "/" + segments.map(encodeURIComponent).join("/"), segments, params: new URLSearchParams(qs) };
}

/** path builds "/node/<name>" from segments, encoding each. */
export function path(...segments) {
  return "/" + segments.map((s) => encodeURIComponent(s)).join("/");
}

/** href builds "#<path>?<params>", leaving out empty values. */
export function href(p, params) {
  const sp = new URLSearchParams();
  if (params) {
    const entries = params instanceof URLSearchParams ? params.entries() : Object.entries(params);
    for (const [k, v] of entries) if (v !== null && v !== undefined && v !== "") sp.set(k, String(v));
  }
  // ":", "/" and "," are left readable (sort=cpu:desc); URLSearchParams reads them back as they are.
  const qs = sp.toString().replace(/%3A/gi, ":").replace(/%2F/gi, "/").replace(/%2C/gi, ",");
  return "#" + p + (qs ? "?" + qs : "");
}

/** globals returns the current range/refresh parameters, for links. */
export function globals() {
  const { params } = current();
  const out = {};
  for (const k of GLOBAL_PARAMS) if (params.has(k)) out[k] = params.get(k);
  return out;
}

/** link builds an in-app link keeping the time range: link(path("pod", ns, name)). */
export function link(p, extra) {
  return href(p, { ...globals(), ...(extra || {}) });
}

/**
 * update changes some parameters of the current route; null deletes one.
 * reload: fire hashchange (data parameters) or only rewrite the URL (view
 * state such as sort order or the filter text).
 */
export function update(changes, { reload = false, replace = !reload } = {}) {
  const cur = current();
  const params = new URLSearchParams(cur.params);
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === undefined || v === "") params.delete(k);
    else params.set(k, String(v));
  }
  const h = href(cur.path, params);
  if (h === location.hash) return;
  if (reload) {
    if (replace) location.replace(h);
    else location.hash = h;
  } else {
    history.replaceState(history.state, "", h);
  }
}
