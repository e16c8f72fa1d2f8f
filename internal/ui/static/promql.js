/**
 * PromQL building blocks: label matchers with the values escaped, so a name
 * from the cluster always stays one string literal.
 */

/** str quotes a label value as a PromQL string literal. */
export function str(v) {
  return '"' + String(v).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n") + '"';
}

/**
 * sel builds a selector body: sel({namespace: "a", pod: "b"}) → '{namespace="a",pod="b"}'.
 * Undefined, null and "" values are left out (an empty object gives "");
 * extra is a list of matchers written out, e.g. ['workload!=""'].
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

/** m names a metric with matchers: m("pod_info", {node: "n1"}) → 'pod_info{node="n1"}'. */
export function m(metric, labels, extra) {
  return metric + sel(labels, extra);
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
