/**
 * Sortable, filterable tables.
 *
 *   table({name: "pods", key: (r) => r.namespace + "/" + r.pod, rows,
 *          columns: [{id: "pod", label: "Pod", get: (r) => r.pod, link: (r) => ({href, testid: "link-pod"})},
 *                    {id: "cpu", label: "CPU", num: true, fmt: cores, get: (r) => r.cpu, query: series.pod.cpuUsageRate}],
 *          sort: "cpu:desc", sortParam: "sort", noun: "pods"})
 *
 * The empty table says `none` ("no pods"), or `empty` ("no pods match")
 * when the filter left no rows.
 *
 * Clicking a header (a button, so the keyboard works) sorts by it and
 * writes "<col>:<asc|desc>" to the URL parameter sortParam (when given);
 * aria-sort marks the sorted column. Numeric cells are right-aligned, carry
 * data-value="<raw value>" (the API's string) and sort as numbers with
 * absent values last. At most `limit` rows (500) are rendered until "Show
 * all" is pressed. setFilter(text) keeps the rows whose name columns contain
 * the text.
 *
 * rowAttrs(r), when given, adds attributes to a row (a class, dataset
 * entries); attrs to the <table> element.
 *
 * Test hooks: the table has data-testid="table-<name>", each body row
 * data-testid="row" and data-key, each cell data-col; links carry
 * data-testid (link-node, link-pod, ...).
 */

import { h } from "./dom.js";
import { DASH, count as fmtCount } from "./format.js";
import * as router from "./router.js";

const LIMIT = 500;

function parseSort(s, columns, fallback) {
  const [id, dir] = String(s || "").split(":");
  if (columns.some((c) => c.id === id)) return { id, dir: dir === "asc" ? "asc" : "desc" };
  if (fallback && fallback !== s) return parseSort(fallback, columns, null);
  return null;
}

export function table(opts) {
  const { name, columns, key, sortParam, noun = "rows", empty = `no ${noun} match`, none = `no ${noun}` } = opts;
  const rows = opts.rows || [];
  let sort = parseSort(sortParam ? router.current().params.get(sortParam) : null, columns, opts.sort);
  let filter = opts.filter || "";
  let showAll = false;

  const thead = h("thead");
  const tbody = h("tbody");
  const foot = h("div", { class: "table-foot" });
  const extra = opts.attrs || {};
  const tableEl = h(
    "table",
    { ...extra, class: ["data", extra.class], dataset: { ...(extra.dataset || {}), testid: "table-" + name } },
    thead,
    tbody,
  );
  const el = h("div", { class: "table-wrap" }, h("div", { class: "table-scroll" }, tableEl), foot);

  const searchText = (r) => {
    const parts = [key(r)];
    for (const c of columns) if (!c.num) parts.push(String(c.get(r) ?? ""));
    return parts.join(" ").toLowerCase();
  };

  const ind = (sorted) => h("span", { class: "sort-ind", "aria-hidden": "true" }, sorted ? (sort.dir === "asc" ? "▲" : "▼") : "");

  const renderHead = () => {
    const tr = h("tr");
    for (const c of columns) {
      const sorted = sort && sort.id === c.id;
      const ariaSort = sorted ? (sort.dir === "asc" ? "ascending" : "descending") : "none";
      const btn = h(
        "button",
        {
          type: "button",
          class: "sort",
          title: c.title || `Sort by ${c.label}`,
          on: {
            click: () => {
              if (sort && sort.id === c.id) sort = { id: c.id, dir: sort.dir === "asc" ? "desc" : "asc" };
              else sort = { id: c.id, dir: c.num ? "desc" : "asc" };
              if (sortParam) router.update({ [sortParam]: `${sort.id}:${sort.dir}` });
              render();
              thead.querySelector(`th[data-col="${c.id}"] button`)?.focus();
            },
          },
        },
        // The arrow sits on the side away from the alignment, so labels line up with their cells.
        c.num ? ind(sorted) : null,
        c.label,
        c.num ? null : ind(sorted),
      );
      tr.appendChild(
        h("th", { scope: "col", class: c.num ? "num" : null, "aria-sort": ariaSort, dataset: { col: c.id, query: c.query } }, btn),
      );
    }
    thead.replaceChildren(tr);
  };

  const sortValue = (c, r) => {
    if (c.sortValue) return c.sortValue(r);
    const v = c.get(r);
    if (c.num) return v === null || v === undefined || v === "" ? NaN : Number(v);
    return v === null || v === undefined ? "" : String(v);
  };

  const render = () => {
    renderHead();
    const f = filter.trim().toLowerCase();
    let view = f ? rows.filter((r) => searchText(r).includes(f)) : rows.slice();
    if (sort) {
      const c = columns.find((x) => x.id === sort.id);
      const mul = sort.dir === "asc" ? 1 : -1;
      const keyed = view.map((r) => ({ r, v: sortValue(c, r), k: key(r) }));
      keyed.sort((a, b) => {
        if (c.num) {
          const an = Number.isNaN(a.v);
          const bn = Number.isNaN(b.v);
          if (an || bn) return an === bn ? a.k.localeCompare(b.k) : an ? 1 : -1;
          if (a.v !== b.v) return (a.v - b.v) * mul;
          return a.k.localeCompare(b.k);
        }
        const cmp = String(a.v).localeCompare(String(b.v), undefined, { numeric: true });
        return cmp !== 0 ? cmp * mul : a.k.localeCompare(b.k);
      });
      view = keyed.map((x) => x.r);
    }
    const shown = showAll ? view : view.slice(0, LIMIT);
    const frag = document.createDocumentFragment();
    for (const r of shown) {
      const ra = opts.rowAttrs ? opts.rowAttrs(r) : {};
      const tr = h("tr", { ...ra, dataset: { ...(ra.dataset || {}), testid: "row", key: key(r) } });
      for (const c of columns) {
        const raw = c.get(r);
        const absent = raw === null || raw === undefined || raw === "";
        let content = absent ? DASH : c.fmt ? c.fmt(raw, r) : String(raw);
        const ln = !absent && c.link ? c.link(r) : null;
        if (ln) content = h("a", { href: ln.href, dataset: { testid: ln.testid } }, content);
        if (c.render) content = c.render(r, content);
        tr.appendChild(
          h(
            "td",
            {
              class: [c.num ? "num" : null, c.cls ? c.cls(r) : null],
              dataset: { col: c.id, value: c.num && !absent ? String(raw) : null },
              title: c.cellTitle ? c.cellTitle(r) : null,
            },
            content,
          ),
        );
      }
      frag.appendChild(tr);
    }
    if (shown.length === 0) {
      frag.appendChild(h("tr", { class: "empty" }, h("td", { colspan: columns.length }, f ? empty : none)));
    }
    tbody.replaceChildren(frag);

    const parts = [];
    const total = rows.length;
    parts.push(
      h(
        "span",
        { class: "muted" },
        f ? `${fmtCount(view.length)} of ${fmtCount(total)} ${noun} match “${filter.trim()}”` : `${fmtCount(total)} ${noun}`,
      ),
    );
    if (view.length > shown.length) {
      parts.push(
        h("span", { class: "muted" }, ` · showing the first ${fmtCount(shown.length)}`),
        h(
          "button",
          {
            type: "button",
            class: "btn btn-small",
            on: {
              click: () => {
                showAll = true;
                render();
              },
            },
          },
          `Show all ${fmtCount(view.length)}`,
        ),
      );
    }
    foot.replaceChildren(...parts);
  };

  render();
  return {
    el,
    setFilter(text) {
      filter = text || "";
      render();
    },
  };
}
