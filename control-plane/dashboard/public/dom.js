// Small DOM helpers shared by the views. Text always goes in as text nodes (never innerHTML), so
// names and messages from rules or proxies cannot inject markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = String(v);
    else el.setAttribute(k === 'className' ? 'class' : k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

/** Appends strings, nodes and (nested) arrays of them; null/undefined/false are skipped. */
export function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** An HTML element: h('a', { href: '#x', class: 'link' }, 'text', child). */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export const arr = (x) => (Array.isArray(x) ? x : []);
export const obj = (x) => (x && typeof x === 'object' && !Array.isArray(x) ? x : {});
export const str = (x, fallback = '') => (typeof x === 'string' ? x : x === undefined || x === null ? fallback : String(x));

/** `98.5%`, or an en dash when the figure is missing. */
export function percent(n, digits = 1) {
  return typeof n === 'number' && Number.isFinite(n) ? `${Number(n.toFixed(digits))}%` : '–';
}

/** `12.3 rps`, or an en dash. */
export function rate(n) {
  return typeof n === 'number' && Number.isFinite(n) ? `${Number(n.toFixed(n < 10 ? 2 : 1))} rps` : '–';
}

/** `app=reviews, version=v1` */
export function labelText(labels) {
  return Object.entries(obj(labels)).map(([k, v]) => `${k}=${v}`).join(', ');
}

/** The short name of a host: `reviews.default.svc.cluster.local` -> `reviews`. */
export function shortHost(host) {
  return str(host).split('.')[0];
}

/** The hash that opens the rules view at one rule (`Kind/namespace/name`). */
export function ruleHref(key) {
  return `#rules/${encodeURIComponent(str(key))}`;
}

/** A link to a rule in the rules view, with its position when known. */
export function ruleLink(key, at) {
  const [kind, ns, name] = str(key).split('/');
  const label = name !== undefined ? `${kind} ${ns}/${name}` : str(key);
  return h('a', { href: ruleHref(key), class: 'rule-link', 'data-rule': key }, label, at ? h('span', { class: 'at' }, ` (${at})`) : null);
}

/** A local time for an ISO date or epoch ms; '–' when missing. */
export function time(v) {
  if (v === undefined || v === null || v === '') return '–';
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? str(v) : d.toLocaleTimeString();
}

/** A state badge (SYNCED, STALE, NACKED, Progressing, ...). */
export function badge(text, extra = {}) {
  const t = str(text, 'unknown');
  return h('span', { class: `badge badge-${t.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`, ...extra }, t);
}

const drawn = new Map();

/**
 * True when a view would draw exactly what it drew last time (same `key`): the state streams in
 * every time anything changes (load figures each second), and redrawing a table or a panel that
 * did not change would close what the user opened and move the keyboard focus.
 */
export function unchanged(view, key) {
  if (drawn.get(view) === key) return true;
  drawn.set(view, key);
  return false;
}

/**
 * Runs `draw` (which replaces the children of `container`) and gives the keyboard focus back to the
 * element that had it: the one with the same data-testid (or id) inside the same
 * `data-focus-scope` (a canary, a proxy row).
 */
export function keepFocus(container, draw) {
  const a = document.activeElement;
  const inside = a && a !== container && container.contains(a);
  const scope = inside ? a.closest('[data-focus-scope]')?.getAttribute('data-focus-scope') : null;
  const tid = inside ? a.getAttribute('data-testid') : null;
  const id = inside ? a.id : null;
  draw();
  if (!inside) return;
  const within = scope ? container.querySelector(`[data-focus-scope="${CSS.escape(scope)}"]`) : container;
  const again = tid ? within?.querySelector(`[data-testid="${CSS.escape(tid)}"]`) : id ? document.getElementById(id) : null;
  again?.focus?.({ preventScroll: true });
}
