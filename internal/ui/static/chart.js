/**
 * Time-series charts on uPlot (vendor/uPlot.iife.min.js, the global
 * `uPlot`).
 *
 * A page describes a chart declaratively:
 *
 *   {name: "cpu", title: "CPU", unit: "cores", series: [
 *      {label: "usage", query: m(series.pod.cpuUsageRate, L), style: "area"},
 *      {label: "request", query: m(series.pod.cpuRequest, L), style: "request"}],
 *    markers: [{kind: "restart", query: m(series.container.restarts, L)},
 *              {kind: "alert", query: m(ALERTS, L)},
 *              {kind: "event", events: eventsPromise}]}
 *
 * loadCharts fetches every query of every chart in parallel (query_range
 * over the page's range and step), and chartCard draws one: usage as lines
 * or areas, requests, limits, allocatable and capacity as dashed lines,
 * axes in the chart's unit, a live legend (the values under the cursor),
 * markers, and drag-to-zoom, which hands the selected range to the page
 * (every chart of the page then reloads on it). Charts resize with their
 * container.
 *
 * Markers, by kind:
 *   restart, oom  a dashed vertical line with a flag at the top where a
 *                 counter (a container's restart or OOM-kill count) went up;
 *   event         a dotted line with a diamond at the bottom at the time a
 *                 Warning event last happened (the page's events, from
 *                 api/v1/events, already fetched: {url, events});
 *   alert         a shaded band over each run of points of an ALERTS series
 *                 (Prometheus's series of active alerts) whose alertstate
 *                 is "firing": from the first point to the last one.
 * A marker spec's keep(labels or event) leaves some out. The list under
 * the chart says what they are; hovering the plot names the markers under
 * the cursor.
 *
 * What each chart drew is published for tests as
 * window.kubemon.charts[name] = {query, markerQuery, eventsQuery, start,
 * end, step, series, markers}.
 */

import { h } from "./dom.js";
import { label as K } from "./series.js";
import { queryRange } from "./api.js";
import { axisValues, dateTime, formatter, rangeText } from "./format.js";
import { ALERT_NAME, ALERT_STATE } from "./promql.js";

/* global uPlot */

const dark = () => window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;

/** Colours per series style; each chart picks usage colours in order. */
function palette() {
  const d = dark();
  return {
    text: d ? "#aab4c3" : "#5b6574",
    grid: d ? "rgba(255,255,255,0.07)" : "rgba(15,23,42,0.07)",
    usage: d ? ["#6aa2ff", "#3ccfb4", "#c79bff", "#ffb86b"] : ["#2f6fde", "#0f9d88", "#8a4fd8", "#d9822b"],
    request: d ? "#f2c14e" : "#c98a06",
    limit: d ? "#ff7a7a" : "#d23b3b",
    allocatable: d ? "#6fd08c" : "#2e9a4f",
    capacity: d ? "#9aa4b2" : "#7b8594",
    restart: d ? "#ffb86b" : "#e0701b",
    oom: d ? "#ff6b8b" : "#c81e4a",
    event: d ? "#e08ee0" : "#a3359f",
    alert: d ? "#ff6b6b" : "#d23b3b",
  };
}

function alpha(hex, a) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${a})`;
}

/** The registry of what the page's charts drew (cleared on navigation). */
export function registry() {
  if (!window.kubemon) window.kubemon = {};
  if (!window.kubemon.charts) window.kubemon.charts = {};
  return window.kubemon.charts;
}

export function clearRegistry() {
  registry();
  window.kubemon.charts = {};
}

/** seriesName tells apart the series one query returned, by the labels that differ. */
function seriesNames(label, matrix) {
  if (matrix.length <= 1) return matrix.map(() => label);
  const keys = new Set();
  for (const s of matrix) for (const k of Object.keys(s.metric)) if (k !== "__name__") keys.add(k);
  const varying = [...keys].filter((k) => new Set(matrix.map((s) => s.metric[k])).size > 1);
  return matrix.map((s) => {
    const parts = varying.map((k) => s.metric[k]).filter(Boolean);
    return parts.length ? `${label} ${parts.join("/")}` : label;
  });
}

/** increases finds the times a series went up: [{time, by, labels}]. */
function increases(matrix) {
  const out = [];
  for (const s of matrix) {
    for (let i = 1; i < s.values.length; i++) {
      const prev = Number(s.values[i - 1][1]);
      const cur = Number(s.values[i][1]);
      if (cur > prev) out.push({ time: s.values[i][0], by: cur - prev, labels: s.metric });
    }
  }
  return out.sort((a, b) => a.time - b.time);
}

/** who names what a marker is about: its container, pod, node, workload or namespace. */
function who(labels) {
  return labels[K.container] || labels[K.pod] || labels[K.node] || labels[K.workload] || labels[K.namespace] || "";
}

/**
 * alertRuns finds, in ALERTS series, the runs of points of firing alerts
 * (points at most one step apart): [{time, end, labels}], time and end the
 * first and last point's.
 */
function alertRuns(matrix, step, keep) {
  const out = [];
  for (const s of matrix) {
    if (s.metric[ALERT_STATE] !== "firing" || (keep && !keep(s.metric))) continue;
    let run = null;
    for (const [t] of s.values) {
      if (run && t - run.end <= step + 1e-6) run.end = t;
      else {
        if (run) out.push(run);
        run = { time: t, end: t, labels: s.metric };
      }
    }
    if (run) out.push(run);
  }
  return out.sort((a, b) => a.time - b.time);
}

/** containerOf reads the container an event's fieldPath names ("spec.containers{app}" → "app"), or "". */
export function containerOf(fieldPath) {
  const x = /^spec\.(?:initContainers|containers|ephemeralContainers)\{(.+)\}$/.exec(fieldPath || "");
  return x ? x[1] : "";
}

/** eventTime is an event's last time (RFC 3339) in unix seconds. */
export function eventTime(e) {
  return Date.parse(e.lastTime) / 1000;
}

/**
 * buildMarkers turns the loaded marker specs into markers, by time:
 * {time, kind, label, by} and, for alerts, end.
 */
function buildMarkers(loadedMarkers, step) {
  const out = [];
  for (const { spec: mk, matrix, data } of loadedMarkers) {
    if (mk.kind === "restart" || mk.kind === "oom") {
      for (const inc of increases(matrix)) {
        const w = inc.labels[K.container] || inc.labels[K.pod] || "";
        const what = mk.kind === "oom" ? "OOM kill" : "restart";
        out.push({ time: inc.time, kind: mk.kind, label: `${w ? w + " " : ""}${what}${inc.by > 1 ? ` ×${inc.by}` : ""}`, by: inc.by });
      }
    } else if (mk.kind === "alert") {
      for (const run of alertRuns(matrix, step, mk.keep)) {
        const l = run.labels;
        const w = who(l);
        const sev = l.severity ? ` (${l.severity})` : "";
        out.push({ time: run.time, end: run.end, kind: "alert", label: `${l[ALERT_NAME] || "alert"}${sev} firing${w ? " on " + w : ""}`, by: 1 });
      }
    } else if (mk.kind === "event") {
      for (const e of (data && data.events) || []) {
        if (e.type !== "Warning" || (mk.keep && !mk.keep(e))) continue;
        const o = e.involvedObject || {};
        const ctr = containerOf(o.fieldPath);
        const what = `${o.name || o.kind || ""}${ctr ? "/" + ctr : ""}`;
        out.push({ time: eventTime(e), kind: "event", label: `${e.reason}${what ? " " + what : ""}${e.count > 1 ? ` ×${e.count}` : ""}: ${e.message}`, by: 1 });
      }
    }
  }
  return out.sort((a, b) => a.time - b.time || a.kind.localeCompare(b.kind));
}

/**
 * loadCharts fetches all charts' queries in parallel; range = {start, end,
 * step}. Returns one loaded chart per spec, in order.
 */
export async function loadCharts(specs, range, signal) {
  const { start, end, step } = range;
  // Each distinct query is fetched once (restart markers are shared by a page's charts).
  const pending = new Map();
  const fetchOnce = (q) => {
    if (!pending.has(q)) pending.set(q, queryRange(q, start, end, step, { signal }));
    return pending.get(q);
  };
  // Event markers come with their events (a promise the page shares with its events table).
  const markerData = (mk) => (mk.kind === "event" ? Promise.resolve(mk.events) : fetchOnce(mk.query));
  const jobs = specs.map((spec) =>
    Promise.all([Promise.all(spec.series.map((s) => fetchOnce(s.query))), Promise.all((spec.markers || []).map(markerData))]),
  );
  const results = await Promise.all(jobs);
  return specs.map((spec, i) => {
    const [ser, mks] = results[i];
    const series = spec.series.map((s, j) => ({ spec: s, matrix: ser[j] }));
    const markers = (spec.markers || []).map((mk, j) => (mk.kind === "event" ? { spec: mk, data: mks[j] } : { spec: mk, matrix: mks[j] }));
    return { spec, range, series, markers };
  });
}

/** align joins series on the union of their timestamps (null where one has no sample). */
function align(lines) {
  const ts = new Set();
  for (const l of lines) for (const [t] of l.values) ts.add(t);
  const xs = [...ts].sort((a, b) => a - b);
  const index = new Map(xs.map((t, i) => [t, i]));
  const ys = lines.map((l) => {
    const y = new Array(xs.length).fill(null);
    for (const [t, v] of l.values) y[index.get(t)] = v;
    return y;
  });
  return [xs, ...ys];
}

const BYTE_INCRS = (() => {
  const out = [];
  for (let k = 0; k < 6; k++) for (const m of [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]) out.push(m * 1024 ** k);
  return out;
})();

/**
 * markerPlugin draws the markers: alert bands behind the series (a shaded
 * span with a bar along the top), restart and OOM-kill lines with a flag at
 * the top and Warning events as dotted lines with a diamond at the bottom,
 * over them.
 */
function markerPlugin(markers, colors) {
  const inView = (u, mk) => !((mk.end ?? mk.time) < u.scales.x.min || mk.time > u.scales.x.max);
  return {
    hooks: {
      drawClear: [
        (u) => {
          const bands = markers.filter((mk) => mk.kind === "alert" && inView(u, mk));
          if (!bands.length) return;
          const { ctx, bbox } = u;
          const dpr = devicePixelRatio;
          ctx.save();
          for (const mk of bands) {
            const x0 = Math.max(bbox.left, u.valToPos(mk.time, "x", true));
            const x1 = Math.min(bbox.left + bbox.width, u.valToPos(mk.end, "x", true));
            const w = Math.max(2 * dpr, x1 - x0);
            ctx.fillStyle = alpha(colors.alert, 0.1);
            ctx.fillRect(x0, bbox.top, w, bbox.height);
            ctx.fillStyle = alpha(colors.alert, 0.75);
            ctx.fillRect(x0, bbox.top, w, 3 * dpr);
          }
          ctx.restore();
        },
      ],
      draw: [
        (u) => {
          const lines = markers.filter((mk) => mk.kind !== "alert" && inView(u, mk));
          if (!lines.length) return;
          const { ctx, bbox } = u;
          const dpr = devicePixelRatio;
          const s = 5 * dpr;
          ctx.save();
          ctx.lineWidth = Math.max(1, dpr);
          for (const mk of lines) {
            const x = Math.round(u.valToPos(mk.time, "x", true)) + 0.5;
            const color = colors[mk.kind] || colors.restart;
            ctx.strokeStyle = color;
            ctx.fillStyle = color;
            ctx.setLineDash(mk.kind === "event" ? [1.5 * dpr, 2.5 * dpr] : [4 * dpr, 3 * dpr]);
            ctx.beginPath();
            ctx.moveTo(x, bbox.top);
            ctx.lineTo(x, bbox.top + bbox.height);
            ctx.stroke();
            ctx.beginPath();
            if (mk.kind === "event") {
              // a diamond at the bottom
              const y = bbox.top + bbox.height - s;
              ctx.moveTo(x, y - s);
              ctx.lineTo(x + s, y);
              ctx.lineTo(x, y + s);
              ctx.lineTo(x - s, y);
            } else {
              // a flag at the top
              ctx.moveTo(x - s, bbox.top);
              ctx.lineTo(x + s, bbox.top);
              ctx.lineTo(x, bbox.top + s * 1.4);
            }
            ctx.closePath();
            ctx.fill();
          }
          ctx.restore();
        },
      ],
    },
  };
}

const KIND_NAMES = { restart: "Restart", oom: "OOM kill", event: "Warning event", alert: "Alert firing" };

/**
 * markerTip shows, while the cursor is over the plot, the markers under it
 * (within 6 px of a line, or inside a band): what they are and when.
 */
function markerTip(markers, tip) {
  return (u) => {
    const left = u.cursor.left;
    if (!markers.length || left == null || left < 0) {
      tip.hidden = true;
      return;
    }
    const near = [];
    for (const mk of markers) {
      const x0 = u.valToPos(mk.time, "x");
      const x1 = mk.kind === "alert" ? u.valToPos(mk.end, "x") : x0;
      if (left >= x0 - 6 && left <= x1 + 6) near.push(mk);
    }
    if (!near.length) {
      tip.hidden = true;
      return;
    }
    const shown = near.slice(0, 6);
    tip.replaceChildren(
      ...shown.map((mk) =>
        h(
          "div",
          { class: "tip-row marker-" + mk.kind },
          h("span", { class: "swatch" }),
          h("strong", null, KIND_NAMES[mk.kind] || mk.kind),
          " ",
          mk.kind === "alert" ? `${dateTime(mk.time, true)} – ${dateTime(mk.end, true)}` : dateTime(mk.time, true),
          h("div", { class: "tip-label" }, mk.label),
        ),
      ),
      ...(near.length > shown.length ? [h("div", { class: "muted" }, `and ${near.length - shown.length} more`)] : []),
    );
    tip.hidden = false;
    const plotLeft = u.over.offsetLeft;
    const width = u.over.clientWidth;
    // Beside the cursor, on the side with room.
    tip.style.left = "";
    tip.style.right = "";
    if (left < width / 2) tip.style.left = `${plotLeft + left + 12}px`;
    else tip.style.right = `${u.root.clientWidth - plotLeft - left + 12}px`;
  };
}

/**
 * chartCard builds one chart's card. Returns {el, mount, destroy}: mount
 * creates the plot once the card is in the document (it measures the
 * width), destroy releases it. onZoom(from, to) is called with a dragged
 * selection (unix seconds).
 */
export function chartCard(loaded, { onZoom, height = 220 } = {}) {
  const { spec, range } = loaded;
  const colors = palette();
  const fmt = formatter(spec.unit);

  // The series drawn, one per returned series of each query.
  const lines = [];
  let usageIdx = 0;
  for (const { spec: s, matrix } of loaded.series) {
    const names = seriesNames(s.label, matrix);
    matrix.forEach((ser, j) => {
      const style = s.style || "line";
      let color;
      if (style === "area" || style === "line") color = s.color || colors.usage[usageIdx++ % colors.usage.length];
      else color = colors[style] || colors.capacity;
      lines.push({
        label: names[j],
        query: s.query,
        style,
        color,
        values: ser.values.map(([t, v]) => [t, Number(v)]),
      });
    });
  }
  const markers = buildMarkers(loaded.markers, range.step);
  const eventsSpec = loaded.markers.find((x) => x.spec.kind === "event");

  registry()[spec.name] = {
    title: spec.title,
    unit: spec.unit,
    query: spec.series.map((s) => s.query),
    markerQuery: (spec.markers || []).filter((m) => m.query).map((m) => m.query),
    eventsQuery: eventsSpec && eventsSpec.data ? eventsSpec.data.url : null,
    start: range.start,
    end: range.end,
    step: range.step,
    series: lines.map((l) => ({ label: l.label, query: l.query, values: l.values })),
    markers: markers.map((m) => (m.kind === "alert" ? { time: m.time, end: m.end, kind: m.kind, label: m.label } : { time: m.time, kind: m.kind, label: m.label })),
  };

  const plotEl = h("div", { class: "chart-plot" });
  const empty = lines.every((l) => l.values.length === 0);
  const markerNote = markers.length
    ? h(
        "ul",
        { class: "chart-markers", "aria-label": "Markers", dataset: { testid: "chart-markers" } },
        summarizeMarkers(markers).map((m) =>
          h("li", { class: "marker-" + m.kind, dataset: { kind: m.kind }, title: m.title }, h("span", { class: "swatch" }), m.text),
        ),
      )
    : null;
  const tip = h("div", { class: "chart-tip", role: "tooltip", hidden: true });
  const el = h(
    "section",
    { class: "card chart-card", dataset: { testid: "chart-" + spec.name }, "aria-label": spec.title },
    h(
      "header",
      { class: "card-head" },
      h("h3", null, spec.title),
      h("span", { class: "chart-range", title: "Time range and resolution" }, `${rangeText(range.start, range.end)} · ${range.step}s step`),
    ),
    h("div", { class: "chart-body" }, plotEl, empty ? h("div", { class: "chart-empty" }, "No data in this time range") : null, tip),
    markerNote,
  );

  let plot = null;
  let ro = null;
  const mount = () => {
    const width = Math.max(200, Math.floor(plotEl.clientWidth || 600));
    const data = align(lines);
    const opts = {
      width,
      height,
      padding: [10, 12, 0, 4],
      legend: { live: true },
      cursor: {
        drag: { x: true, y: false, setScale: false },
        sync: { key: "kubemon" },
        points: { size: 7 },
      },
      select: { show: true },
      scales: {
        x: { time: true, range: () => [range.start, range.end] },
        y: {
          range: (u, min, max) => [0, Number.isFinite(max) && max > 0 ? max * 1.1 : 1],
        },
      },
      axes: [
        {
          stroke: colors.text,
          grid: { stroke: colors.grid, width: 1 },
          ticks: { stroke: colors.grid, width: 1 },
          font: "11px system-ui, sans-serif",
          values: timeTicks,
        },
        {
          stroke: colors.text,
          grid: { stroke: colors.grid, width: 1 },
          ticks: { show: false },
          font: "11px system-ui, sans-serif",
          values: (u, splits) => axisValues(spec.unit, splits),
          incrs: spec.unit === "bytes" || spec.unit === "bytes/s" ? BYTE_INCRS : undefined,
          size: (u, values) => {
            if (!values) return 50;
            const longest = Math.max(...values.map((v) => String(v).length));
            return Math.ceil(longest * 6.6) + 16;
          },
        },
      ],
      series: [
        { value: (u, v, si, idx) => (idx == null ? "latest" : v == null ? "" : dateTime(v, true)) },
        ...lines.map((l) => {
          const dashed = !(l.style === "area" || l.style === "line");
          return {
            label: l.label,
            stroke: l.color,
            width: dashed ? 1.5 : 1.75,
            dash: dashed ? (l.style === "capacity" ? [2, 4] : [7, 5]) : undefined,
            fill: l.style === "area" ? alpha(l.color, 0.13) : undefined,
            points: { show: false },
            spanGaps: false,
            // The value under the cursor; the latest one when the cursor is away.
            value: (u, v, si, idx) => (idx == null ? fmt(lastValue(u.data[si])) : fmt(v)),
          };
        }),
      ],
      plugins: [markerPlugin(markers, colors)],
      hooks: {
        setCursor: [markerTip(markers, tip)],
        setSelect: [
          (u) => {
            if (!onZoom || u.select.width < 4) return;
            const from = Math.floor(u.posToVal(u.select.left, "x"));
            const to = Math.ceil(u.posToVal(u.select.left + u.select.width, "x"));
            u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
            if (to - from >= 60) onZoom(from, to);
          },
        ],
      },
    };
    // uPlot needs data arrays even when empty.
    plot = new uPlot(opts, data, plotEl);
    let lastWidth = width;
    ro = new ResizeObserver((entries) => {
      const w = Math.floor(entries[0].contentRect.width);
      if (plot && w > 0 && Math.abs(w - lastWidth) >= 2) {
        lastWidth = w;
        plot.setSize({ width: Math.max(200, w), height });
      }
    });
    ro.observe(plotEl);
  };
  const destroy = () => {
    if (ro) ro.disconnect();
    if (plot) plot.destroy();
    plot = null;
    ro = null;
  };
  return { el, mount, destroy };
}

const pad2 = (x) => String(x).padStart(2, "0");

/** timeTicks labels the time axis in 24-hour local time, with the date under the first tick of each day. */
function timeTicks(u, splits, axisIdx, space, incr) {
  let prevDay = "";
  return splits.map((t) => {
    const d = new Date(t * 1000);
    const day = d.toLocaleString("en-US", { month: "short" }) + " " + d.getDate();
    if (incr >= 86400) return day;
    let hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
    if (incr < 60) hm += `:${pad2(d.getSeconds())}`;
    const label = day !== prevDay ? `${hm}\n${day}` : hm;
    prevDay = day;
    return label;
  });
}

function lastValue(ys) {
  if (!ys) return null;
  for (let i = ys.length - 1; i >= 0; i--) if (ys[i] != null) return ys[i];
  return null;
}

/** summarizeMarkers gives the legend of a chart's markers: one line per kind, its times in the title. */
function summarizeMarkers(markers) {
  const groups = new Map();
  for (const m of markers) {
    if (!groups.has(m.kind)) groups.set(m.kind, { kind: m.kind, n: 0, items: [], names: new Set() });
    const g = groups.get(m.kind);
    g.n += m.by;
    g.items.push(m);
    if (m.kind === "alert") g.names.add(m.label.split(" ")[0]);
  }
  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
  const order = ["alert", "event", "oom", "restart"];
  return [...groups.values()]
    .sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind))
    .map((g) => {
      let text;
      if (g.kind === "oom") text = plural(g.n, "OOM kill", "OOM kills") + " in range";
      else if (g.kind === "restart") text = plural(g.n, "restart", "restarts") + " in range";
      else if (g.kind === "event") text = plural(g.n, "Warning event", "Warning events");
      else text = `${[...g.names].join(", ")} firing` + (g.n > 1 ? ` (${g.n} spans)` : "");
      const lines = g.items
        .slice(0, 40)
        .map((m) => (m.kind === "alert" ? `${dateTime(m.time, true)} – ${dateTime(m.end, true)}` : dateTime(m.time, true)) + "  " + m.label);
      if (g.items.length > 40) lines.push(`… and ${g.items.length - 40} more`);
      const title = lines.join("\n");
      return { kind: g.kind, text, title };
    });
}

/**
 * estimateStep returns the query step (whole seconds) that gives about one
 * point per pixel of the chart: max(scrapeInterval, ceil(range / width)).
 */
export function estimateStep(span, width, scrapeInterval) {
  return Math.max(Math.ceil(scrapeInterval), Math.ceil(span / Math.max(100, width)));
}
