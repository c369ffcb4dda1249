// The explain view: a form for one request from one caller, POSTed to /debug/explain with
// `text: true`; the answer is shown exactly as `meshpilot explain` prints it, with every rule it
// names linked to the rules view, and the rules behind each step listed below it.
import { arr, fill, h, obj, ruleHref, ruleLink, str } from './dom.js';

let lastState = null;
/** The generation the shown answer was computed at. */
let answeredAt = null;

export function init() {
  document.getElementById('explain-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void run();
  });
}

export function render(state) {
  lastState = state;
  // Connected proxies as suggestions for "From" (a node id is taken with its identity).
  const list = document.getElementById('explain-proxies');
  const seen = new Set();
  const proxies = arr(obj(state.proxies).proxies).filter((p) => typeof p?.id === 'string' && !seen.has(p.id) && seen.add(p.id));
  fill(list, proxies.map((p) => h('option', { value: p.id }, `${str(p.kind)} ${str(p.namespace)} ${Object.entries(obj(p.labels)).map(([k, v]) => `${k}=${v}`).join(',')}`)));
  stateChanged(state);
}

/** Marks a shown answer as made on older rules (the view listens while hidden too). */
export function stateChanged(state) {
  lastState = state;
  const note = document.getElementById('explain-stale');
  if (note) note.hidden = answeredAt === null || state.generation === answeredAt;
}

/** The request body from the form; headers one per line, blank lines skipped. */
export function formBody(form) {
  const v = (name) => str(form.elements[name]?.value).trim();
  const body = { request: v('request'), text: true };
  if (v('from')) body.from = v('from');
  if (v('namespace')) body.namespace = v('namespace');
  if (v('labels')) body.labels = v('labels');
  if (v('kind')) body.kind = v('kind');
  const headers = str(form.elements.headers?.value).split('\n').map((l) => l.trim()).filter(Boolean);
  if (headers.length) body.headers = headers;
  return body;
}

async function run() {
  const form = document.getElementById('explain-form');
  const out = document.getElementById('explain-result');
  const button = document.getElementById('explain-submit');
  const generation = lastState?.generation ?? null;
  button.disabled = true;
  fill(out, h('p', { class: 'muted' }, 'Explaining…'));
  try {
    const res = await fetch('debug/explain', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(formBody(form)) });
    const body = await res.json().catch(() => ({ error: `HTTP ${res.status}: the answer is not JSON` }));
    if (!res.ok) {
      answeredAt = null;
      const errors = arr(body.errors).length ? arr(body.errors) : [str(body.error, `HTTP ${res.status}`)];
      fill(out, h('div', { class: 'error', role: 'alert', 'data-testid': 'explain-error' }, h('p', {}, 'meshpilot could not explain this request:'), h('ul', {}, errors.map((e) => h('li', {}, str(e))))));
      return;
    }
    answeredAt = generation;
    fill(out,
      h('p', { id: 'explain-stale', class: 'stale', hidden: true, 'data-testid': 'explain-stale' }, 'The rules changed since this answer: explain again for the current ones.'),
      h('p', { class: 'outcome', 'data-testid': 'explain-outcome' }, str(obj(body.outcome).summary)),
      h('pre', { class: 'explain-text', 'data-testid': 'explain-text' }, linkRules(str(body.text))),
      rulesBehind(body));
    stateChanged(lastState ?? {});
  } catch (err) {
    fill(out, h('p', { class: 'error', role: 'alert', 'data-testid': 'explain-error' }, `cannot reach meshpilot: ${err.message}`));
  } finally {
    button.disabled = false;
  }
}

/**
 * The text with each rule it names (`VirtualService default/reviews ...`) as a link to the rules
 * view; the text itself is unchanged, so it reads (and copies) as the CLI prints it.
 */
function linkRules(text) {
  const keys = [...arr(obj(lastState?.rules).inForce).map((r) => str(r?.key)), ...arr(obj(lastState?.rules).rejected).map((r) => str(r?.rule))].filter((k) => k.split('/').length === 3);
  const byName = new Map(keys.map((k) => {
    const [kind, ns, name] = k.split('/');
    return [`${kind} ${ns}/${name}`, k];
  }));
  if (byName.size === 0) return text;
  const escape = (x) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // Longest first, and not followed by more of a name: `default/reviews` is not `default/reviews-v2`.
  const re = new RegExp(`(${[...byName.keys()].sort((a, b) => b.length - a.length).map(escape).join('|')})(?![\\w.-])`, 'g');
  const parts = [];
  let last = 0;
  for (const m of text.matchAll(re)) {
    parts.push(text.slice(last, m.index));
    parts.push(h('a', { href: ruleHref(byName.get(m[1])), class: 'rule-link', 'data-rule': byName.get(m[1]) }, m[1]));
    last = m.index + m[1].length;
  }
  parts.push(text.slice(last));
  return parts;
}

/** Every rule reference in the answer, in the order of the walk, once each. */
function refsOf(e) {
  const refs = [];
  const add = (step, r) => {
    if (r && typeof r.key === 'string') refs.push({ step, ref: r });
  };
  for (const r of arr(e.routes)) add(`route #${r?.index} ${str(r?.name)}`, r?.rule);
  for (const d of arr(e.destinations)) {
    for (const r of arr(d?.rules)) add(`destination ${str(d?.cluster)}`, r);
    for (const i of arr(d?.inbound)) {
      add(`TLS at ${str(i?.endpoint)}`, i?.tls?.calleeRule);
      for (const a of arr(i?.authz)) for (const m of [...arr(a?.matched), ...arr(a?.unknown)]) add(`${str(a?.filter)} at ${str(i?.endpoint)}`, m?.rule);
      for (const l of arr(i?.rateLimits)) add(`rate limit at ${str(i?.endpoint)}`, l?.rule);
    }
  }
  add('weights', e.weightsFrom);
  for (const f of arr(e.faults)) add(`fault (${str(f?.kind)})`, f?.rule);
  for (const m of arr(e.mirrors)) add('mirror', m?.rule);
  add('timeout', e.timeout?.rule);
  add('retries', e.retry?.rule);
  for (const l of arr(e.rateLimits)) add('rate limit', l?.rule);
  const seen = new Set();
  return refs.filter(({ step, ref }) => {
    const id = `${step}|${ref.key}|${ref.at}|${ref.path ?? ''}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

function rulesBehind(e) {
  const refs = refsOf(e);
  if (refs.length === 0) return h('p', { class: 'muted' }, 'No rule is behind this answer: it comes from the defaults.');
  return h('section', { 'data-testid': 'explain-rules' },
    h('h3', {}, 'Rules behind each step'),
    h('ul', {}, refs.map(({ step, ref }) => h('li', {}, h('span', { class: 'step' }, `${step}: `), ruleLink(ref.key, ref.at), ref.path ? h('span', { class: 'mono muted' }, ` ${ref.path}`) : null))));
}
