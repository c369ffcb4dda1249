// The mesh graph: an SVG laid out here (no library). Namespaces are boxes; each service is a card
// with its routes on the left and its subsets on the right; an arrow goes from each route to the
// subset (or service) it sends traffic to, labelled with its weight and, when proxies report load,
// the request rate and success rate. Arrows whose weights a Canary sets are drawn orange, dashed.
import { arr, fill, h, obj, percent, rate, ruleLink, s, shortHost, str, unchanged } from './dom.js';
import { renderServicePanel } from './service-panel.js';

const CARD_W = 360;
const HEAD_H = 44;
const ROW_H = 30;
const PAD = 12;
const CHIP_W = 76;
const CHIP_H = 22;
const ROUTE_ANCHOR_X = 118;
const GAP_X = 40;
const GAP_Y = 36;
const MAX_COLS = 4;
const NS_PAD = 18;
const NS_HEAD = 30;
const CALLER_W = 120;
const CALLER_H = 26;
/** The group of hosts that routes name but no service describes. */
const NO_SERVICE = '\u0000no-service';

let selected = null;
let lastState = null;
/** Columns of cards the graph was last laid out with (from the width available). */
let lastCols = 0;

export function init() {
  // Fewer columns when the box narrows (the side panel opens, the window shrinks), more when it widens.
  const box = document.getElementById('graph');
  if (typeof ResizeObserver === 'function') {
    new ResizeObserver(() => {
      if (lastState && !box.closest('[hidden]') && columnsFor(box, lastState) !== lastCols) render(lastState);
    }).observe(box);
  }
  document.getElementById('service-panel').addEventListener('close-panel', () => {
    const host = selected;
    selected = null;
    if (lastState) render(lastState);
    document.querySelector(`[data-testid=service][data-host="${CSS.escape(host ?? '')}"]`)?.focus();
  });
}

export function render(state) {
  lastState = state;
  const g = obj(state.graph);
  const services = arr(g.services).filter((x) => x && typeof x.host === 'string');
  const edges = arr(g.edges).filter((e) => e && typeof e.from === 'string' && typeof e.to === 'string');
  const callers = arr(g.callers).filter((c) => c && typeof c.from === 'string' && typeof c.to === 'string');
  const box = document.getElementById('graph');
  const cols = columnsFor(box, state);
  if (unchanged('graph', `${JSON.stringify(state.graph ?? null)}|${selected}|${cols}`)) return;
  const focusedHost = document.activeElement?.closest?.('[data-testid=service]')?.dataset.host;
  if (services.length === 0 && edges.length === 0) {
    fill(box, h('p', { class: 'empty', 'data-testid': 'graph-empty' }, 'No services yet: meshpilot knows a service from a ServiceEntry (or a Kubernetes Service).'));
  } else {
    lastCols = cols;
    fill(box, drawGraph(g, services, edges, callers, cols));
    if (focusedHost) box.querySelector(`[data-testid=service][data-host="${CSS.escape(focusedHost)}"]`)?.focus();
  }
  renderEdgeTable(edges);
  const panel = document.getElementById('service-panel');
  const service = services.find((x) => x.host === selected);
  if (service) renderServicePanel(panel, service, edges, state);
  else {
    selected = null;
    panel.hidden = true;
  }
}

/** Selects a service (also from tests or links: `#graph/<host>`). */
export function focus(host) {
  selected = host;
  if (lastState) render(lastState);
}

function select(host) {
  selected = selected === host ? null : host;
  render(lastState);
  if (selected) document.getElementById('service-panel').querySelector('h3')?.focus();
}

// ---- layout ----

function columnsFor(box, state) {
  const left = arr(obj(state.graph).callers).length ? NS_PAD + CALLER_W + GAP_X : NS_PAD;
  const width = box.clientWidth || 1200;
  return Math.max(1, Math.min(MAX_COLS, Math.floor((width - left - 2 * NS_PAD + GAP_X) / (CARD_W + GAP_X))));
}

function layout(g, services, edges, callers, cols) {
  // Hosts that edges name but no service describes (outside the mesh) still get a card.
  const known = new Map(services.map((x) => [x.host, x]));
  for (const e of edges) {
    for (const host of [e.from, e.to]) {
      if (!known.has(host)) known.set(host, { host, name: shortHost(host), namespace: NO_SERVICE, subsets: [], placeholder: true });
    }
  }
  const all = [...known.values()];
  const namespaces = [...new Set([...arr(g.namespaces).map(str), ...all.map((x) => str(x.namespace, '(none)'))])].filter((ns) => all.some((x) => str(x.namespace, '(none)') === ns));

  const cards = new Map();
  const left = callers.length ? NS_PAD + CALLER_W + GAP_X : NS_PAD;
  let y = NS_PAD;
  const groups = [];
  let width = left;
  for (const ns of namespaces) {
    const members = all.filter((x) => str(x.namespace, '(none)') === ns).sort((a, b) => str(a.name || a.host).localeCompare(str(b.name || b.host)));
    const groupY = y;
    let rowY = y + NS_HEAD;
    let rowH = 0;
    members.forEach((svc, i) => {
      const col = i % cols;
      if (col === 0 && i > 0) {
        rowY += rowH + GAP_Y;
        rowH = 0;
      }
      const routes = [...new Set(edges.filter((e) => e.from === svc.host).map((e) => str(e.route)))];
      const chips = arr(svc.subsets).map((x) => str(x?.name)).filter(Boolean);
      if (edges.some((e) => e.to === svc.host && !e.subset)) chips.push('');
      const rows = Math.max(routes.length, chips.length, 1);
      const height = HEAD_H + rows * ROW_H + PAD + (svc.load ? 16 : 0);
      const x = left + NS_PAD + col * (CARD_W + GAP_X);
      cards.set(svc.host, { svc, x, y: rowY, height, routes, chips });
      rowH = Math.max(rowH, height);
      width = Math.max(width, x + CARD_W + NS_PAD);
    });
    const groupH = rowY + rowH + NS_PAD - groupY;
    groups.push({ ns, y: groupY, height: groupH, width: 0 });
    y += groupH + GAP_Y;
  }
  for (const gr of groups) gr.width = width - left;
  const callerNodes = [...new Set(callers.map((c) => c.from))].map((from, i) => ({ from, x: NS_PAD, y: NS_PAD + NS_HEAD + i * (CALLER_H + 14) }));
  const height = Math.max(y, NS_PAD + NS_HEAD + callerNodes.length * (CALLER_H + 14) + NS_PAD);
  return { cards, groups, left, width: width + NS_PAD, height, callerNodes };
}

const rowMid = (card, i) => card.y + HEAD_H + i * ROW_H + ROW_H / 2;

function routeAnchor(card, route) {
  const i = card.routes.indexOf(route);
  return i < 0 ? { x: card.x + CARD_W / 2, y: card.y + HEAD_H / 2 } : { x: card.x + ROUTE_ANCHOR_X, y: rowMid(card, i) };
}

function targetAnchor(card, subset) {
  const i = card.chips.indexOf(subset ?? '');
  return i < 0 ? { x: card.x, y: card.y + HEAD_H / 2 } : { x: card.x + CARD_W - PAD - CHIP_W - 3, y: rowMid(card, i) };
}

/** A cubic curve leaving `a` and entering `b` horizontally; `at(t)` is its point at t in [0, 1]. */
function curve(a, b) {
  const dx = Math.max(40, Math.abs(b.x - a.x) / 2);
  const c1 = { x: a.x + dx, y: a.y };
  const c2 = { x: b.x - dx, y: b.y };
  const at = (t) => {
    const u = 1 - t;
    const [k0, k1, k2, k3] = [u * u * u, 3 * u * u * t, 3 * u * t * t, t * t * t];
    return { x: k0 * a.x + k1 * c1.x + k2 * c2.x + k3 * b.x, y: k0 * a.y + k1 * c1.y + k2 * c2.y + k3 * b.y };
  };
  return { d: `M${a.x},${a.y} C${c1.x},${c1.y} ${c2.x},${c2.y} ${b.x},${b.y}`, at };
}

/**
 * Where along its edge a label goes: the middle if that is free, else the nearest point that does
 * not cover a label already placed (edges from one route fan out, so their middles meet).
 */
function placeLabel(at, w, hgt, placed) {
  // How much of a label at p would cover the ones already placed (0: none).
  const overlap = (p) => placed.reduce((sum, q) => {
    const ox = Math.max(0, (w + q.w) / 2 - Math.abs(p.x - q.x));
    const oy = Math.max(0, (hgt + q.h) / 2 - Math.abs(p.y - q.y));
    return sum + ox * oy;
  }, 0);
  let best = null;
  for (const t of [0.5, 0.4, 0.6, 0.32, 0.68, 0.25, 0.75, 0.2, 0.8]) {
    const p = at(t);
    const o = overlap(p);
    if (!best || o < best.o) best = { ...p, o };
    if (o === 0) break;
  }
  placed.push({ x: best.x, y: best.y, w, h: hgt });
  return best;
}

// ---- drawing ----

function drawGraph(g, services, edges, callers, cols) {
  const L = layout(g, services, edges, callers, cols);
  const placed = [];
  const svg = s('svg', { viewBox: `0 0 ${L.width} ${L.height}`, width: L.width, height: L.height, role: 'group', 'aria-labelledby': 'graph-title', class: 'mesh-graph' });
  svg.append(s('title', { id: 'graph-title' }, `Mesh graph: ${services.length} services, ${edges.length} route destinations`));
  svg.append(s('defs', {},
    s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerUnits: 'userSpaceOnUse', markerWidth: 10, markerHeight: 10, orient: 'auto-start-reverse' }, s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow-head' })),
    s('marker', { id: 'arrow-canary', viewBox: '0 0 10 10', refX: 9, refY: 5, markerUnits: 'userSpaceOnUse', markerWidth: 10, markerHeight: 10, orient: 'auto-start-reverse' }, s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow-head canary' })),
  ));
  for (const gr of L.groups) {
    svg.append(s('g', { class: 'namespace', 'data-testid': 'namespace', 'data-namespace': gr.ns === NO_SERVICE ? '' : gr.ns },
      s('rect', { x: L.left, y: gr.y, width: gr.width, height: gr.height, rx: 10 }),
      s('text', { x: L.left + NS_PAD, y: gr.y + 20, class: 'ns-label' }, gr.ns === NO_SERVICE ? 'hosts no service describes' : `namespace ${gr.ns}`)));
  }
  for (const card of L.cards.values()) svg.append(drawCard(card));
  const edgeLayer = s('g', { class: 'edges' });
  for (const e of edges) {
    const from = L.cards.get(e.from);
    const to = L.cards.get(e.to);
    if (from && to) edgeLayer.append(drawEdge(e, routeAnchor(from, str(e.route)), targetAnchor(to, e.subset), placed));
  }
  for (const c of callers) {
    const node = L.callerNodes.find((n) => n.from === c.from);
    const to = L.cards.get(c.to);
    if (!node || !to) continue;
    const { d } = curve({ x: node.x + CALLER_W, y: node.y + CALLER_H / 2 }, { x: to.x, y: to.y + HEAD_H / 2 });
    edgeLayer.append(s('path', { d, class: 'caller-edge', 'marker-end': 'url(#arrow)', 'data-testid': 'caller-edge', 'data-from': c.from, 'data-to': c.to }));
  }
  svg.append(edgeLayer);
  for (const n of L.callerNodes) {
    svg.append(s('g', { class: 'caller', 'data-testid': 'caller', 'data-caller': n.from },
      s('rect', { x: n.x, y: n.y, width: CALLER_W, height: CALLER_H, rx: CALLER_H / 2 }),
      s('text', { x: n.x + CALLER_W / 2, y: n.y + 17, 'text-anchor': 'middle' }, clip(n.from, 16)),
      s('title', {}, `caller ${n.from} (from load reports)`)));
  }
  return svg;
}

function clip(text, n) {
  const t = str(text);
  return t.length > n ? `${t.slice(0, n - 1)}…` : t;
}

function drawCard({ svc, x, y, height, routes, chips }) {
  const name = str(svc.name, shortHost(svc.host)) || shortHost(svc.host);
  const ports = arr(svc.ports).map((p) => `${p?.number ?? '?'}${p?.protocol ? `/${p.protocol}` : ''}`).join(' ');
  const open = () => select(svc.host);
  const g = s('g', {
    class: `service${svc.host === selected ? ' selected' : ''}${svc.placeholder ? ' placeholder' : ''}`,
    'data-testid': 'service', 'data-host': svc.host, 'data-name': name,
    tabindex: 0, role: 'button', 'aria-pressed': String(svc.host === selected), 'aria-label': `service ${svc.host}: show its rules, endpoints and policies`,
    onclick: open,
    onkeydown: (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        open();
      }
    },
  });
  g.append(s('title', {}, svc.host));
  g.append(s('rect', { x, y, width: CARD_W, height, rx: 8, class: 'card' }));
  g.append(s('text', { x: x + PAD, y: y + 20, class: 'service-name' }, name));
  g.append(s('text', { x: x + PAD, y: y + 36, class: 'service-meta' }, clip(`${svc.host}${ports ? `  ${ports}` : ''}`, 52)));
  if (routes.length === 0) g.append(s('text', { x: x + PAD, y: rowMid({ y }, 0) + 4, class: 'muted' }, svc.placeholder ? 'not a known service' : 'no routing rule'));
  routes.forEach((r, i) => {
    const label = r.split('/').pop() || r;
    g.append(s('g', { class: 'route', 'data-testid': 'route', 'data-route': r },
      s('text', { x: x + PAD, y: rowMid({ y }, i) + 4 }, clip(label, 18), s('title', {}, `route ${r}`)),
      s('circle', { cx: x + ROUTE_ANCHOR_X, cy: rowMid({ y }, i), r: 3 })));
  });
  const subsets = arr(svc.subsets);
  chips.forEach((c, i) => {
    const info = subsets.find((x) => x?.name === c);
    const cx = x + CARD_W - PAD - CHIP_W;
    const cy = rowMid({ y }, i) - CHIP_H / 2;
    const n = info?.endpoints;
    const empty = c !== '' && n === 0;
    g.append(s('g', { class: `subset${empty ? ' empty' : ''}`, 'data-testid': 'subset', 'data-subset': c },
      s('rect', { x: cx, y: cy, width: CHIP_W, height: CHIP_H, rx: 11 }),
      s('text', { x: cx + CHIP_W / 2, y: cy + 15, 'text-anchor': 'middle' }, c === '' ? 'all' : `${clip(c, 8)}${typeof n === 'number' ? ` · ${n}` : ''}`),
      s('title', {}, c === '' ? 'every endpoint of the service' : `subset ${c}: ${typeof n === 'number' ? `${n} endpoint${n === 1 ? '' : 's'}` : 'endpoints unknown'}`)));
  });
  if (svc.load) {
    g.append(s('text', { x: x + PAD, y: y + height - 8, class: 'load' }, `${rate(svc.load.requestsPerSecond)} · ${percent(svc.load.successRate)} success`));
  }
  return g;
}

function edgeLoadText(load) {
  if (!load) return '';
  return `${rate(load.requestsPerSecond)} · ${percent(load.successRate)} ok`;
}

/** The shorter form drawn on an arrow (the tooltip and the table have the long one). */
function edgeLoadLabel(load) {
  if (!load) return '';
  return `${rate(load.requestsPerSecond)} ${percent(load.successRate, 0)}`;
}

function drawEdge(e, a, b, placed) {
  const { d, at } = curve(a, b);
  const canary = Boolean(e.weightsFrom);
  const weight = typeof e.weight === 'number' ? e.weight : null;
  const cls = ['edge', canary ? 'canary' : '', weight === 0 ? 'zero' : ''].filter(Boolean).join(' ');
  const load = edgeLoadLabel(e.load);
  const weightText = `${weight === null ? '?' : `${weight}%`}${canary ? ' ⚑' : ''}`;
  // Text widths are estimated (about 7 px a character at these sizes): enough to keep labels apart.
  const w = Math.max(weightText.length * 7.5, load.length * 6) + 8;
  const mid = placeLabel(at, w, load ? 28 : 16, placed);
  const title = `${str(e.route)} → ${shortHost(e.to)}${e.subset ? ` ${e.subset}` : ''}: ${weight ?? '?'}%${canary ? ` (weights from ${e.weightsFrom})` : ''}${e.load ? `, ${edgeLoadText(e.load)}` : ''}`;
  return s('g', {
    class: cls, 'data-testid': 'edge', 'data-edge-id': str(e.id), 'data-from': e.from, 'data-to': e.to,
    'data-subset': str(e.subset), 'data-route': str(e.route), 'data-weight': weight ?? '', ...(canary ? { 'data-weights-from': e.weightsFrom } : {}),
  },
  s('title', {}, title),
  s('path', { d, 'marker-end': canary ? 'url(#arrow-canary)' : 'url(#arrow)' }),
  s('text', { x: mid.x, y: mid.y - (load ? 4 : -4), 'text-anchor': 'middle', class: 'edge-label' },
    s('tspan', { 'data-testid': 'edge-weight' }, weight === null ? '?' : `${weight}%`),
    canary ? s('tspan', { class: 'canary-mark', 'aria-hidden': 'true' }, ' ⚑') : null),
  load ? s('text', { x: mid.x, y: mid.y + 10, 'text-anchor': 'middle', class: 'edge-load', 'data-testid': 'edge-load' }, load) : null);
}

function renderEdgeTable(edges) {
  const box = document.getElementById('edge-table');
  if (edges.length === 0) {
    fill(box, h('p', { class: 'empty' }, 'No routing rules send traffic anywhere yet.'));
    return;
  }
  fill(box, h('table', { 'data-testid': 'edge-table' },
    h('thead', {}, h('tr', {}, ['From', 'Route', 'To', 'Subset', 'Weight', 'Load', 'Rule'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, edges.map((e) => h('tr', { 'data-testid': 'edge-row', 'data-route': str(e.route), 'data-subset': str(e.subset) },
      h('td', {}, shortHost(e.from)),
      h('td', {}, str(e.route)),
      h('td', {}, shortHost(e.to)),
      h('td', {}, str(e.subset, '(all)') || '(all)'),
      h('td', {}, typeof e.weight === 'number' ? `${e.weight}%` : '?', e.weightsFrom ? h('span', { class: 'canary-mark' }, ` (${e.weightsFrom})`) : null),
      h('td', {}, edgeLoadText(e.load) || '–'),
      h('td', {}, e.origin?.key ? ruleLink(e.origin.key, e.origin.at) : '–'))))));
}
