/**
 * Number and time formatting with units, for tiles, tables, chart axes and
 * legends. Every function takes the raw value (a number, or the string the
 * Prometheus API returned) and answers "–" for absent values (null,
 * undefined, "", NaN), so missing data never reads as zero.
 *
 * Units: CPU in cores ("1.52 cores") or millicores below one core ("250m");
 * bytes in binary units ("1.2 GiB"); rates with "/s"; ratios as
 * percentages; durations as "3d 4h".
 */

export const DASH = "–";

/** num parses an API value; NaN when absent or not a number. */
export function num(v) {
  if (v === null || v === undefined || v === "") return NaN;
  return typeof v === "number" ? v : Number(v);
}

function absent(v) {
  return !Number.isFinite(v);
}

/** sig rounds x to n significant digits and drops trailing zeros. */
export function sig(x, n = 3) {
  if (x === 0 || absent(x)) return String(x);
  const digits = Math.max(0, n - 1 - Math.floor(Math.log10(Math.abs(x))));
  return Number(x.toFixed(Math.min(digits, 6))).toString();
}

/** cores formats CPU: "250m" below one core, "1.52 cores" above. */
export function cores(v) {
  const x = num(v);
  if (absent(x)) return DASH;
  if (x === 0) return "0";
  if (Math.abs(x) < 1) {
    const m = x * 1000;
    return (Math.abs(m) < 10 ? sig(m, 2) : Math.round(m).toString()) + "m";
  }
  return sig(x, 3) + (Math.abs(x) === 1 ? " core" : " cores");
}

const BIN = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** bytes formats in binary units: "512 B", "1.2 GiB". */
export function bytes(v) {
  const x = num(v);
  if (absent(x)) return DASH;
  let i = 0;
  let y = Math.abs(x);
  while (y >= 1024 && i < BIN.length - 1) {
    y /= 1024;
    i++;
  }
  const s = i === 0 ? Math.round(y).toString() : y >= 100 ? Math.round(y).toString() : sig(y, 3);
  return (x < 0 ? "-" : "") + s + " " + BIN[i];
}

/** byteRate formats bytes per second: "1.2 MiB/s". */
export function byteRate(v) {
  const s = bytes(v);
  return s === DASH ? s : s + "/s";
}

/** percent formats a ratio (0-1) as a percentage: "45.2%". */
export function percent(v) {
  const x = num(v);
  if (absent(x)) return DASH;
  const p = x * 100;
  if (p === 0) return "0%";
  if (Math.abs(p) < 0.1) return "<0.1%";
  return (Math.abs(p) >= 100 ? Math.round(p).toString() : p.toFixed(1).replace(/\.0$/, "")) + "%";
}

/** count formats an integer with thousands separators. */
export function count(v) {
  const x = num(v);
  if (absent(x)) return DASH;
  return Math.round(x).toLocaleString("en-US");
}

/** duration formats seconds as the two largest units: "3d 4h", "12m 5s". */
export function duration(v) {
  const x = num(v);
  if (absent(x)) return DASH;
  let s = Math.max(0, Math.floor(x));
  const units = [
    ["d", 86400],
    ["h", 3600],
    ["m", 60],
    ["s", 1],
  ];
  const parts = [];
  for (const [u, n] of units) {
    if (s >= n || (u === "s" && parts.length === 0)) {
      parts.push(Math.floor(s / n) + u);
      s %= n;
    }
    if (parts.length === 2) break;
  }
  return parts.join(" ");
}

/** seconds formats a short duration in seconds: "12 ms", "1.4 s". */
export function seconds(v) {
  const x = num(v);
  if (absent(x)) return DASH;
  if (x < 1) return sig(x * 1000, 3) + " ms";
  return sig(x, 3) + " s";
}

/** formatter returns the formatting function for a unit name. */
export function formatter(unit) {
  switch (unit) {
    case "cores":
      return cores;
    case "bytes":
      return bytes;
    case "bytes/s":
      return byteRate;
    case "ratio":
      return percent;
    case "seconds":
      return duration;
    case "count":
      return count;
    default:
      return (v) => {
        const x = num(v);
        return absent(x) ? DASH : sig(x, 3);
      };
  }
}

/**
 * axisValues formats a chart axis's ticks in one unit chosen from the
 * largest tick, with as many decimals as the tick spacing needs.
 */
export function axisValues(unit, splits) {
  const finite = splits.filter((s) => Number.isFinite(s));
  const max = Math.max(0, ...finite.map(Math.abs));
  const step = finite.length > 1 ? Math.abs(finite[1] - finite[0]) : max || 1;
  const fixed = (x, div) => {
    const d = Math.max(0, Math.min(3, -Math.floor(Math.log10(step / div) + 1e-9)));
    return (x / div).toFixed(d);
  };
  switch (unit) {
    case "cores":
      if (max < 1) return splits.map((s) => (s === 0 ? "0" : fixed(s, 0.001) + "m"));
      return splits.map((s) => (s === 0 ? "0" : fixed(s, 1) + (s === 1 ? " core" : " cores")));
    case "bytes":
    case "bytes/s": {
      let i = 0;
      while (max >= 1024 ** (i + 1) && i < BIN.length - 1) i++;
      const suffix = " " + BIN[i] + (unit === "bytes/s" ? "/s" : "");
      return splits.map((s) => (s === 0 ? "0" : fixed(s, 1024 ** i) + suffix));
    }
    case "ratio":
      return splits.map((s) => fixed(s, 0.01) + "%");
    case "count":
      return splits.map((s) => fixed(s, 1));
    default:
      return splits.map((s) => sig(s, 3));
  }
}

const pad = (n) => String(n).padStart(2, "0");

/** clock formats a unix time (seconds) as local HH:MM:SS. */
export function clock(t) {
  const d = new Date(t * 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** dateTime formats a unix time (seconds) as local "Nov 29 14:05". */
export function dateTime(t, withSeconds = false) {
  const d = new Date(t * 1000);
  const month = d.toLocaleString("en-US", { month: "short" });
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}` + (withSeconds ? `:${pad(d.getSeconds())}` : "");
  return `${month} ${d.getDate()} ${hm}`;
}

/** rangeText describes a time range: "Nov 29 14:05 – 15:05" or across days. */
export function rangeText(start, end) {
  const a = new Date(start * 1000);
  const b = new Date(end * 1000);
  const sameDay = a.toDateString() === b.toDateString();
  return `${dateTime(start)} – ${sameDay ? `${pad(b.getHours())}:${pad(b.getMinutes())}` : dateTime(end)}`;
}

/** parseDuration reads "15s", "1m", "6h", "2d", "1w", "1h30m"; seconds, or NaN. */
export function parseDuration(s) {
  if (typeof s !== "string" || !/^(\d+(ms|s|m|h|d|w|y))+$/.test(s)) return NaN;
  const mult = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };
  let total = 0;
  for (const m of s.matchAll(/(\d+)(ms|s|m|h|d|w|y)/g)) total += Number(m[1]) * mult[m[2]];
  return total;
}

/** durationText names a preset range: 3600 → "1 hour", 172800 → "2 days". */
export function durationText(secs) {
  const units = [
    ["day", 86400],
    ["hour", 3600],
    ["minute", 60],
    ["second", 1],
  ];
  for (const [u, n] of units) {
    if (secs >= n && secs % n === 0) {
      const k = secs / n;
      return `${k} ${u}${k === 1 ? "" : "s"}`;
    }
  }
  return `${secs} seconds`;
}
