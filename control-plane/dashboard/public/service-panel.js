// The side panel of the mesh graph: one service's rules (with file:line), subsets, endpoints by
// locality, policies (faults, mirrors, rate limits, authorization, mTLS) and reported load.
import { arr, fill, h, labelText, obj, percent, rate, ruleLink, shortHost, str } from './dom.js';

export function renderServicePanel(panel, svc, edges, state) {
  panel.hidden = false;
  const close = h('button', { type: 'button', class: 'close', 'data-testid': 'service-panel-close', 'aria-label': 'Close service details', onclick: () => panel.dispatchEvent(new Event('close-panel')) }, '×');
  fill(panel,
    h('div', { class: 'panel-head' }, h('h3', { tabindex: -1, 'data-testid': 'service-panel-title' }, str(svc.name, shortHost(svc.host)) || shortHost(svc.host)), close),
    h('p', { class: 'mono' }, svc.host),
    h('p', {}, `namespace ${str(svc.namespace, '–')}`, arr(svc.ports).length ? ` · ports ${arr(svc.ports).map((p) => `${p?.number}${p?.name ? ` (${p.name}, ${p.protocol ?? '?'})` : ''}`).join(', ')}` : ''),
    svc.load ? h('p', { 'data-testid': 'service-load' }, `Load: ${rate(svc.load.requestsPerSecond)}, ${percent(svc.load.successRate)} success`) : null,
    section('Rules', 'service-rules', arr(svc.rules).length === 0 ? none('No rule names this service.') : h('ul', {}, arr(svc.rules).map((r) => h('li', { 'data-testid': 'service-rule' }, ruleLink(r?.key, r?.at))))),
    section('Routes', 'service-routes', routesOf(svc, edges)),
    section('Subsets', 'service-subsets', subsetsOf(svc)),
    section('Endpoints by locality', 'service-endpoints', endpointsOf(svc)),
    section('Policies', 'service-policies', policiesOf(svc, state)));
}

function section(title, testid, body) {
  return h('section', { 'data-testid': testid }, h('h4', {}, title), body);
}

const none = (text) => h('p', { class: 'muted' }, text);

function routesOf(svc, edges) {
  const mine = edges.filter((e) => e.from === svc.host);
  if (mine.length === 0) return none('No VirtualService routes for this host: calls go to all its endpoints.');
  return h('ul', {}, mine.map((e) => h('li', {},
    `${str(e.route)} → ${shortHost(e.to)}${e.subset ? ` ${e.subset}` : ''}: ${e.weight ?? '?'}%`,
    e.weightsFrom ? h('span', { class: 'canary-mark' }, ` (weights from ${e.weightsFrom})`) : null,
    e.load ? ` · ${rate(e.load.requestsPerSecond)}, ${percent(e.load.successRate)} ok` : null)));
}

function subsetsOf(svc) {
  const subsets = arr(svc.subsets);
  if (subsets.length === 0) return none('No subsets (no DestinationRule subsets for this host).');
  return h('table', {},
    h('thead', {}, h('tr', {}, ['Subset', 'Labels', 'Endpoints'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, subsets.map((x) => h('tr', { 'data-testid': 'service-subset', 'data-subset': str(x?.name) },
      h('td', {}, str(x?.name)), h('td', { class: 'mono' }, labelText(x?.labels)), h('td', {}, str(x?.endpoints, '–'))))));
}

function endpointsOf(svc) {
  const eps = arr(svc.endpoints);
  if (eps.length === 0) return none('No endpoints.');
  const byLocality = new Map();
  for (const ep of eps) {
    // `region/zone/` with no subzone reads as `region/zone`.
    const loc = str(ep?.locality).replace(/\/+$/, '') || '(no locality)';
    if (!byLocality.has(loc)) byLocality.set(loc, []);
    byLocality.get(loc).push(ep);
  }
  return h('div', {}, [...byLocality].sort(([a], [b]) => a.localeCompare(b)).map(([loc, list]) => h('div', { class: 'locality', 'data-testid': 'locality', 'data-locality': loc },
    h('h5', {}, `${loc} (${list.length})`),
    h('ul', {}, list.map((ep) => h('li', { class: 'mono' }, str(ep?.address), ep?.subset ? ` · ${ep.subset}` : '', ep?.labels ? h('span', { class: 'muted' }, ` ${labelText(ep.labels)}`) : null))))));
}

function policiesOf(svc, state) {
  const p = obj(svc.policies);
  const rows = [];
  const item = (label, list, show) => rows.push(h('div', { class: 'policy', 'data-testid': `policy-${label.toLowerCase().replace(/\W+/g, '-')}` },
    h('h5', {}, label),
    arr(list).length === 0 ? none('none') : h('ul', {}, arr(list).map((x) => h('li', {}, show(x))))));
  item('Faults', p.faults, (f) => [str(f?.route), faultText(f?.fault), f?.origin ? [' from ', originLink(f.origin)] : f?.at ? ` (${f.at})` : '']);
  item('Mirrors', p.mirrors, (m) => `${str(m?.route)} → ${shortHost(m?.to)}${m?.subset ? ` ${m.subset}` : ''}${typeof m?.percent === 'number' ? ` (${m.percent}% copied)` : ''}`);
  const rule = (k) => (typeof k === 'string' ? ruleLink(k, atOf(k, state)) : originLink(k));
  item('Rate limits', p.rateLimits, rule);
  item('Authorization', p.authorization, rule);
  rows.push(h('div', { class: 'policy', 'data-testid': 'policy-mtls' }, h('h5', {}, 'mTLS'), p.mtls ? h('p', {}, str(p.mtls)) : none('no PeerAuthentication: the default')));
  return h('div', {}, rows);
}

/** `origin` may be a key or `{key, at}`. */
function originLink(origin) {
  return typeof origin === 'string' ? ruleLink(origin) : ruleLink(origin?.key, origin?.at);
}

/** A rule's file:line from the rules in force. */
function atOf(key, state) {
  const r = arr(obj(state?.rules).inForce).find((x) => x?.key === key);
  return r?.source;
}

/** `: delay 2000 ms for 10%, abort 503 for 5%` from a fault policy, when it is given. */
function faultText(f) {
  if (!f || typeof f !== 'object') return '';
  const parts = [];
  if (f.delay) parts.push(`delay ${f.delay.fixedDelayMs ?? '?'} ms for ${f.delay.percent ?? '?'}%`);
  if (f.abort) parts.push(`abort ${f.abort.httpStatus !== undefined ? `HTTP ${f.abort.httpStatus}` : f.abort.grpcStatus !== undefined ? `gRPC ${f.abort.grpcStatus}` : '?'} for ${f.abort.percent ?? '?'}%`);
  return parts.length ? `: ${parts.join(', ')}` : '';
}
