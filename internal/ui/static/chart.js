/**
 * Time-series charts on uPlot (vendor/uPlot.iife.min.js, the global
 * `uPlot`).
 *
 * A page describes a chart declaratively:
 *
 *   {name: "cpu", title: "CPU", unit: "cores", series: [
 *      {label: "usage", query: m(series.pod.cpuUsageRate, L), style: "area"},
 *      {label: "request", query: m(series.pod.cpuRequest, L), style: "request"}],
 *    markers: [{kind: "restart", query: m(series.container.restarts, L)}]}
 *
 * loadCharts fetches every query of every chart in parallel (query_range
 * over the page's range and step), and chartCard draws one: usage as lines
 * or areas, requests, limits, allocatable and capacity as dashed lines,
 * axes in the chart's unit, a live legend (the values under the cursor),
 * vertical markers where a counter (a container's restart count) went up,
 * and drag-to-zoom, which hands the selected range to the page (every chart
 * of the page then reloads on it). Charts resize with their container.
 *
 * What each chart drew is published for tests as
 * window.kubemon.charts[name] = {query, start, end, step, series, markers}.
 */

import { h } from "./dom.js";
import { label as K } from "./series.js";
import { queryRange } from "./api.js";
import { axisValues, dateTime, formatter, rangeText } from "./format.js";

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
  const jobs = specs.map((spec) =>
    Promise.all([Promise.all(spec.series.map((s) => fetchOnce(s.query))), Promise.all((spec.markers || []).map((mk) => fetchOnce(mk.query)))]),
  );
  const results = await Promise.all(jobs);
  return specs.map((spec, i) => {
    const [ser, mks] = results[i];
    const series = spec.series.map((s, j) => ({ spec: s, matrix: ser[j] }));
    const markers = (spec.markers || []).map((mk, j) => ({ spec: mk, matrix: mks[j] }));
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

/** markerPlugin draws a vertical line at each marker's time. */
function markerPlugin(markers, colors) {
  return {
    hooks: {
      draw: [
        (u) => {
          if (!markers.length) return;
          const { ctx, bbox } = u;
          const [xmin, xmax] = [u.scales.x.min, u.scales.x.max];
          ctx.save();
          ctx.lineWidth = Math.max(1, devicePixelRatio);
          ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
          for (const mk of markers) {
            if (mk.time < xmin || mk.time > xmax) continue;
            const x = Math.round(u.valToPos(mk.time, "x", true)) + 0.5;
            ctx.strokeStyle = colors[mk.kind] || colors.restart;
            ctx.beginPath();
            ctx.moveTo(x, bbox.top);
            ctx.lineTo(x, bbox.top + bbox.height);
            ctx.stroke();
            // a small flag at the top
            ctx.fillStyle = ctx.strokeStyle;
            ctx.beginPath();
            const s = 5 * devicePixelRatio;
            ctx.moveTo(x - s, bbox.top);
            ctx.lineTo(x + s, bbox.top);
            ctx.lineTo(x, bbox.top + s * 1.4);
            ctx.closePath();
            ctx.fill();
          }
          ctx.restore();
        },
      ],
    },
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
  const markers = [];
  for (const { spec: mk, matrix } of loaded.markers) {
    for (const inc of increases(matrix)) {
      const who = inc.labels[K.container] || inc.labels[K.pod] || "";
      const what = mk.kind === "oom" ? "OOM kill" : "restart";
      markers.push({ time: inc.time, kind: mk.kind, label: `${who ? who + " " : ""}${what}${inc.by > 1 ? ` ×${inc.by}` : ""}`, by: inc.by });
    }
  }

  registry()[spec.name] = {
    title: spec.title,
    unit: spec.unit,
    query: spec.series.map((s) => s.query),
    markerQuery: (spec.markers || []).map((m) => m.query),
    start: range.start,
    end: range.end,
    step: range.step,
    series: lines.map((l) => ({ label: l.label, query: l.query, values: l.values })),
    markers: markers.map((m) => ({ time: m.time, kind: m.kind, label: m.label })),
  };

  const plotEl = h("div", { class: "chart-plot" });
  const empty = lines.every((l) => l.values.length === 0);
  const markerNote = markers.length
    ? h(
        "ul",
        { class: "chart-markers", "aria-label": "events" },
        summarizeMarkers(markers).map((m) =>
          h("li", { class: "marker-" + m.kind, title: m.times.map((t) => dateTime(t, true)).join(", ") }, h("span", { class: "swatch" }), m.text),
        ),
      )
    : null;
  const el = h(
    "section",
    { class: "card chart-card", dataset: { testid: "chart-" + spec.name }, "aria-label": spec.title },
    h(
      "header",
      { class: "card-head" },
      h("h3", null, spec.title),
      h("span", { class: "chart-range", title: "Time range and resolution" }, `${rangeText(range.start, range.end)} · ${range.step}s step`),
    ),
    h("div", { class: "chart-body" }, plotEl, empty ? h("div", { class: "chart-empty" }, "No data in this time range") : null),
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

function summarizeMarkers(markers) {
  const groups = new Map();
  for (const m of markers) {
    const key = m.kind;
    if (!groups.has(key)) groups.set(key, { kind: m.kind, n: 0, times: [] });
    const g = groups.get(key);
    g.n += m.by;
    g.times.push(m.time);
  }
  return [...groups.values()].map((g) => ({
    kind: g.kind,
    times: g.times,
    text: `${g.n} ${g.kind === "oom" ? "OOM kill" : "restart"}${g.n === 1 ? "" : "s"} in range`,
  }));
}

/**
 * estimateStep returns the query step (whole seconds) that gives about one
 * point per pixel of the chart: max(scrapeInterval, ceil(range / width)).
 */
export function estimateStep(span, width, scrapeInterval) {
  return Math.max(Math.ceil(scrapeInterval), Math.ceil(span / Math.max(100, width)));
}
