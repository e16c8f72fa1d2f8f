/**
 * PromQL building blocks: label matchers with the values escaped, so a name
 * from the cluster always stays one string literal, and label lists. Series
 * names and label keys come from series.js, never spelled here or in the
 * pages.
 */

/** str quotes a label value as a PromQL string literal. */
export function str(v) {
  return '"' + String(v).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n") + '"';
}

/**
 * sel builds a selector body from label keys (from series.js's label) and
 * values: sel({[label.namespace]: "a", [label.pod]: "b"}) → '{<namespace>="a",<pod>="b"}'.
 * Undefined, null and "" values are left out (an empty object gives "");
 * extra is a list of matchers written out, e.g. [`${label.workload}!=""`].
 */
export function sel(labels, extra = []) {
  const parts = [];
  for (const [k, v] of Object.entries(labels || {})) {
    if (v === undefined || v === null || v === "") continue;
    parts.push(`${k}=${str(v)}`);
  }
  parts.push(...extra);
  return parts.length ? "{" + parts.join(",") + "}" : "";
}

/**
 * m names a series with matchers: m(series.pod.info, {[label.node]: "n1"})
 * → '<the series>{<node>="n1"}'. A name that is not a string (a key
 * series.js lacks) is a mistake in the page: it throws.
 */
export function m(name, labels, extra) {
  if (typeof name !== "string" || !name) throw new Error(`promql: no series name: ${name}`);
  return name + sel(labels, extra);
}

/** by lists label keys for a by, on or group_left clause: by(label.namespace, label.pod) → "(<namespace>, <pod>)". */
export function by(...keys) {
  return `(${keys.join(", ")})`;
}

/** dur formats seconds as a PromQL duration ("7d", "6h", "90s"). */
export function dur(secs) {
  secs = Math.max(1, Math.round(secs));
  for (const [u, n] of [
    ["d", 86400],
    ["h", 3600],
    ["m", 60],
  ]) {
    if (secs % n === 0) return secs / n + u;
  }
  return secs + "s";
}

/**
 * Prometheus's own names for alerts (not kubemon's series, so not in
 * series.js): the series the rule manager writes for every pending and
 * firing alert (value 1, the alert's labels plus these two), as
 * rules.AlertMetricName, rules.AlertNameLabel and rules.AlertStateLabel.
 */
export const ALERTS = "ALERTS";
export const ALERT_NAME = "alertname";
export const ALERT_STATE = "alertstate";
