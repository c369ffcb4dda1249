// The proxies view: GET /debug/proxies as a table, filtered by a label selector (kubectl's form,
// as `meshpilot wait --proxy-selector` takes it) and by state; a NACKed proxy shows the client's
// message; one proxy's config dump (GET /debug/config_dump?proxy=ID) per type in a panel.
import { arr, badge, fill, h, keepFocus, labelText, obj, str, time, unchanged } from './dom.js';

let lastState = null;
/** The proxy whose config dump is open, the type shown, and the versions it was fetched at. */
const dump = { id: null, type: null, data: null, error: null, versions: null, loading: false };

export function init() {
  const rerender = () => lastState && render(lastState);
  document.getElementById('proxy-filters').addEventListener('submit', (e) => e.preventDefault());
  document.getElementById('proxy-selector').addEventListener('input', rerender);
  document.getElementById('proxy-state').addEventListener('change', rerender);
}

/**
 * A label selector: `app=reviews,version!=v1,canary,!legacy` (=, ==, != and existence). Throws a
 * message naming the bad term, as the admin API does.
 */
export function parseSelector(text) {
  const terms = str(text).split(',').map((t) => t.trim()).filter(Boolean).map((t) => {
    const m = /^(!?)([A-Za-z0-9._/-]+)\s*(?:(==|=|!=)\s*([A-Za-z0-9._-]*))?$/.exec(t);
    if (!m || (m[1] && m[3])) throw new Error(`bad label selector term "${t}" (expected key=value, key!=value, key or !key)`);
    const [, not, key, op, value] = m;
    if (!op) return not ? (l) => !(key in l) : (l) => key in l;
    return op === '!=' ? (l) => l[key] !== value : (l) => l[key] === value;
  });
  return (labels) => terms.every((f) => f(obj(labels)));
}

export function render(state) {
  lastState = state;
  const body = obj(state.proxies);
  const all = arr(body.proxies).filter((p) => p && typeof p.id === 'string');
  refreshDump(all);
  const selectorText = document.getElementById('proxy-selector').value;
  const want = document.getElementById('proxy-state').value;
  if (unchanged('proxies', `${JSON.stringify(state.proxies ?? null)}|${selectorText}|${want}`)) return;
  const errorEl = document.getElementById('proxy-selector-error');
  let match = () => true;
  try {
    match = parseSelector(selectorText);
    errorEl.textContent = '';
  } catch (err) {
    errorEl.textContent = err.message;
  }
  const shown = all.filter((p) => match(p.labels) && (!want || p.state === want));
  const summary = obj(body.summary);
  fill(document.getElementById('proxy-summary'),
    `${all.length} connected: ${summary.SYNCED ?? 0} SYNCED, ${summary.STALE ?? 0} STALE, ${summary.NACKED ?? 0} NACKED`,
    shown.length !== all.length ? ` · ${shown.length} shown` : '');
  const box = document.getElementById('proxies');
  keepFocus(box, () => {
    if (all.length === 0) fill(box, h('p', { class: 'empty' }, 'No proxy is connected.'));
    else if (shown.length === 0) fill(box, h('p', { class: 'empty' }, 'No proxy matches the filters.'));
    else fill(box, table(shown));
  });
}

const TYPE_ORDER = ['cds', 'eds', 'lds', 'rds'];
const typeNames = (types) => Object.keys(obj(types)).sort((a, b) => (TYPE_ORDER.indexOf(a) + 1 || 99) - (TYPE_ORDER.indexOf(b) + 1 || 99) || a.localeCompare(b));

function table(proxies) {
  return h('table', { class: 'proxies', 'data-testid': 'proxies-table' },
    h('caption', { class: 'visually-hidden' }, 'Connected proxies'),
    h('thead', {}, h('tr', {}, ['Proxy', 'Kind', 'Namespace', 'Labels', 'Locality', 'Connected', 'State', 'Per type', ''].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, proxies.flatMap(row)));
}

function row(p) {
  const types = obj(p.types);
  const nacks = typeNames(types).filter((t) => types[t]?.state === 'NACKED' || types[t]?.nack).map((t) => ({ t, ...types[t] }));
  const loc = obj(p.locality);
  const main = h('tr', { 'data-focus-scope': `${p.id}|${str(p.connectedSince)}`, 'data-testid': 'proxy-row', 'data-proxy-id': p.id, 'data-state': str(p.state), class: p.state === 'NACKED' ? 'nacked' : '' },
    h('td', { class: 'mono id' }, p.id, p.identity ? h('div', { class: 'muted' }, str(p.identity)) : null),
    h('td', {}, str(p.kind, '?'), h('span', { class: 'muted' }, ` ${str(p.protocol)}`)),
    h('td', {}, str(p.namespace, '–')),
    h('td', { class: 'mono' }, labelText(p.labels) || '–'),
    h('td', {}, [loc.region, loc.zone, loc.subzone].filter(Boolean).join('/') || '–'),
    h('td', { title: str(p.connectedSince) }, time(p.connectedSince)),
    h('td', {}, badge(p.state, { 'data-testid': 'proxy-state-badge' })),
    h('td', { class: 'types' }, typeNames(types).map((t) => h('span', { class: `type type-${str(types[t]?.state).toLowerCase()}`, title: `${t}: ${str(types[t]?.state)}${types[t]?.reason ? ` (${types[t].reason})` : ''}` }, `${t} ${str(types[t]?.state)}`))),
    h('td', {}, h('button', { type: 'button', 'data-testid': 'config-dump-button', 'aria-label': `Config dump of ${p.id}`, onclick: () => openDump(p.id) }, 'Config dump')));
  if (nacks.length === 0) return [main];
  // The client's own words, in full: why it rejected what it was sent.
  return [main, h('tr', { class: 'nack-row', 'data-testid': 'nack-row', 'data-proxy-id': p.id },
    h('td', { colspan: 9 }, nacks.map((n) => h('div', { class: 'nack', 'data-testid': 'nack-message', role: p.state === 'NACKED' ? 'note' : null },
      h('strong', {}, `${n.t} ${n.state === 'NACKED' ? 'NACKED' : 'last NACK'}`),
      n.nack?.version !== undefined ? ` version ${n.nack.version}: ` : ': ',
      h('span', { class: 'message' }, str(n.nack?.message, str(n.reason))),
      n.ackedVersion !== undefined ? h('span', { class: 'muted' }, ` (runs version ${n.ackedVersion})`) : null))))];
}

// ---- config dump ----

function versionsOf(p) {
  return JSON.stringify(Object.entries(obj(p?.types)).map(([t, x]) => [t, x?.sentVersion, x?.ackedVersion, x?.state]));
}

async function openDump(id, keepType = false) {
  dump.id = id;
  if (!keepType) dump.type = null;
  dump.loading = true;
  dump.error = null;
  renderDump();
  try {
    const res = await fetch(`debug/config_dump?proxy=${encodeURIComponent(id)}`, { cache: 'no-store' });
    const body = await res.json().catch(() => ({}));
    if (dump.id !== id) return;
    if (!res.ok) throw new Error(str(body.error, `HTTP ${res.status}`));
    dump.data = body;
    dump.versions = versionsOf(arr(obj(lastState?.proxies).proxies).find((p) => p?.id === id));
    dump.type = dump.type ?? typeNames(body.types)[0] ?? null;
  } catch (err) {
    if (dump.id !== id) return;
    dump.data = null;
    dump.error = err.message;
  } finally {
    if (dump.id === id) dump.loading = false;
  }
  renderDump();
  document.getElementById('config-dump-title')?.scrollIntoView({ block: 'nearest' });
}

/** Fetches the open dump again when what the proxy holds changed (a push, an ACK, a NACK). */
function refreshDump(all) {
  if (!dump.id || dump.loading || dump.versions === null) return;
  const p = all.find((x) => x.id === dump.id);
  if (p && versionsOf(p) !== dump.versions) void openDump(dump.id, true);
}

function renderDump() {
  const panel = document.getElementById('config-dump');
  if (!dump.id) {
    panel.hidden = true;
    return;
  }
  panel.hidden = false;
  const close = h('button', { type: 'button', class: 'close', 'data-testid': 'config-dump-close', 'aria-label': 'Close config dump', onclick: () => { dump.id = null; dump.data = null; renderDump(); } }, '×');
  const refresh = h('button', { type: 'button', 'data-testid': 'config-dump-refresh', onclick: () => openDump(dump.id, true) }, 'Refresh');
  const head = h('div', { class: 'panel-head' }, h('h3', { id: 'config-dump-title' }, 'Config dump ', h('span', { class: 'mono small' }, dump.id)), refresh, close);
  if (dump.loading && !dump.data) return void fill(panel, head, h('p', {}, 'Loading…'));
  if (dump.error) return void fill(panel, head, h('p', { class: 'error', role: 'alert' }, dump.error));
  const types = obj(dump.data?.types);
  const names = typeNames(types);
  const tabs = h('div', { class: 'dump-types', role: 'group', 'aria-label': 'xDS type' }, names.map((t) => h('button', {
    type: 'button', 'data-testid': 'config-dump-type', 'data-type': t, 'aria-pressed': String(t === dump.type),
    onclick: () => { dump.type = t; renderDump(); },
  }, `${t} (${arr(types[t]?.resources).length})`)));
  const t = types[dump.type];
  fill(panel, head, tabs, t ? typeDump(dump.type, t) : h('p', { class: 'muted' }, 'Nothing of any type was sent to this proxy.'));
}

function typeDump(name, t) {
  return h('div', { 'data-testid': 'config-dump-body', 'data-type': name },
    h('p', {}, badge(t.state), ` ${str(t.typeUrl)} · sent ${str(t.sentVersion, '–')} · ACKed ${str(t.ackedVersion, '–')}`),
    t.nack ? h('p', { class: 'nack' }, `NACK of version ${str(t.nack.version)}: ${str(t.nack.message)}`) : null,
    t.note ? h('p', { class: 'muted' }, t.note) : null,
    arr(t.resources).length === 0 ? h('p', { class: 'muted' }, 'No resources.') : h('div', {}, arr(t.resources).map((r) => h('details', { class: 'resource' },
      h('summary', {}, h('span', { class: 'mono' }, str(r?.name)), h('span', { class: 'muted' }, ` ${str(r?.version)}`)),
      h('pre', {}, JSON.stringify(r?.resource, null, 2))))));
}
