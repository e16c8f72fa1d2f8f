/**
 * A tiny DOM builder. Text is always set as text (never parsed as HTML), so
 * names from the cluster cannot inject markup; event handlers are attached
 * with addEventListener (the page's Content-Security-Policy forbids inline
 * handlers).
 *
 *   h("a", {href: "#/pods", class: "link", dataset: {testid: "link-pod"}}, "web-1")
 */

/**
 * h creates an element. attrs: class, dataset (object), style (object),
 * on (object of event listeners), any other key is set as an attribute
 * (null/undefined/false skipped, true as ""). Children: nodes, strings,
 * numbers, arrays (flattened), null/false skipped.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = Array.isArray(v) ? v.filter(Boolean).join(" ") : v;
      else if (k === "dataset") {
        for (const [dk, dv] of Object.entries(v)) if (dv !== null && dv !== undefined) el.dataset[dk] = String(dv);
      } else if (k === "style") Object.assign(el.style, v);
      else if (k === "on") for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
      else if (k === "text") el.textContent = v;
      else if (k === "value" && "value" in el) el.value = v;
      else el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** debounce delays fn until calls stop for ms. */
export function debounce(fn, ms) {
  let t = 0;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}
