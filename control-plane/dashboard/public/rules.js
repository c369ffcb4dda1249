// The rules view (GET /debug/rules): rejected rules first (each error with its position, and what
// stays in force instead), then configuration errors and warnings, then every rule in force with
// its file:line. Links from the other views land here (`#rules/<Kind/ns/name>`).
import { arr, fill, h, obj, str, unchanged } from './dom.js';

/** The rule a link pointed at, and whether it still has to be scrolled to. */
let highlighted = null;
let scrollPending = false;

export function init() {
  document.getElementById('rules').addEventListener('input', (e) => {
    if (e.target.id === 'rules-filter') filterInForce(e.target.value);
  });
}

export function render(state) {
  if (unchanged('rules', JSON.stringify(state.rules ?? null))) return void applyHighlight();
  const r = obj(state.rules);
  const inForce = arr(r.inForce).filter((x) => x && typeof x.key === 'string');
  const rejected = arr(r.rejected).filter(Boolean);
  const errors = arr(r.errors).map((e) => str(e));
  const warnings = arr(r.warnings).map((e) => str(e));
  const invalid = arr(r.invalidGeneratedResources);
  const box = document.getElementById('rules');
  const filterValue = document.getElementById('rules-filter')?.value ?? '';
  const hadFocus = document.activeElement?.id === 'rules-filter';
  fill(box,
    h('p', { class: 'summary', 'data-testid': 'rules-summary' }, `${inForce.length} in force · ${rejected.length} rejected · ${errors.length} errors · ${warnings.length} warnings`),
    h('section', { 'data-testid': 'rules-rejected', 'aria-labelledby': 'rules-rejected-h' },
      h('h3', { id: 'rules-rejected-h' }, `Rejected (${rejected.length})`),
      rejected.length === 0 ? h('p', { class: 'muted' }, 'Every rule in the sources is in force as written.') : h('ul', { class: 'rejected' }, rejected.map(rejectedItem))),
    errors.length ? h('details', { 'data-testid': 'rules-errors', open: rejected.length === 0 },
      h('summary', {}, h('h3', { class: 'inline' }, `Configuration errors (${errors.length})`)),
      h('ul', { class: 'issues' }, errors.map((e) => h('li', { class: 'mono' }, e)))) : null,
    h('section', { 'data-testid': 'rules-warnings', 'aria-labelledby': 'rules-warnings-h' },
      h('h3', { id: 'rules-warnings-h' }, `Warnings (${warnings.length})`),
      warnings.length === 0 ? h('p', { class: 'muted' }, 'No warnings.') : h('ul', { class: 'issues' }, warnings.map((w) => h('li', { class: 'mono', 'data-testid': 'rule-warning' }, w)))),
    invalid.length ? h('section', { 'data-testid': 'rules-invalid-generated' },
      h('h3', {}, `Generated resources Envoy would reject (${invalid.length})`),
      h('pre', {}, JSON.stringify(invalid, null, 2))) : null,
    h('section', { 'data-testid': 'rules-in-force', 'aria-labelledby': 'rules-in-force-h' },
      h('h3', { id: 'rules-in-force-h' }, `In force (${inForce.length})`),
      h('label', { for: 'rules-filter' }, 'Filter '),
      h('input', { id: 'rules-filter', type: 'search', placeholder: 'VirtualService, reviews, rules.yaml…', value: filterValue, autocomplete: 'off', 'data-testid': 'rules-filter' }),
      h('table', { class: 'in-force' },
        h('thead', {}, h('tr', {}, ['Kind', 'Namespace', 'Name', 'Source'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, inForce.map(inForceRow)))));
  filterInForce(filterValue);
  if (hadFocus) document.getElementById('rules-filter').focus();
  applyHighlight();
}

function rejectedItem(r) {
  const key = str(r.rule, '(unknown rule)');
  const inForce = str(r.inForce, 'nothing');
  return h('li', { id: `rejected:${key}`, 'data-testid': 'rejected-rule', 'data-rule': key, tabindex: -1 },
    h('h4', { class: 'mono' }, key),
    h('ul', { class: 'issues' }, arr(r.errors).map((e) => h('li', { class: 'mono error', 'data-testid': 'rejected-error' }, str(e)))),
    h('p', { 'data-testid': 'rejected-in-force' }, inForce === 'nothing' ? 'Nothing is in force instead: the rule has no accepted version.' : `In force instead: the last accepted version, ${inForce}.`));
}

function inForceRow(r) {
  const [kind, ns, ...name] = r.key.split('/');
  return h('tr', { id: `rule:${r.key}`, 'data-testid': 'rule-row', 'data-rule': r.key, tabindex: -1 },
    h('td', {}, kind), h('td', {}, str(ns, '–')), h('td', {}, name.join('/') || '–'), h('td', { class: 'mono' }, str(r.source, '–')));
}

function filterInForce(text) {
  const words = str(text).toLowerCase().split(/\s+/).filter(Boolean);
  for (const tr of document.querySelectorAll('#rules [data-testid=rule-row]')) {
    const hay = tr.textContent.toLowerCase();
    tr.hidden = !words.every((w) => hay.includes(w));
  }
}

/** Scrolls to and highlights a rule (in force or rejected); the highlight stays across updates. */
export function focus(key) {
  highlighted = key;
  scrollPending = true;
  applyHighlight();
}

function applyHighlight() {
  for (const old of document.querySelectorAll('#rules .highlight')) old.classList.remove('highlight');
  if (!highlighted) return;
  const el = document.getElementById(`rejected:${highlighted}`) ?? document.getElementById(`rule:${highlighted}`);
  if (!el) return;
  if (el.hidden) {
    document.getElementById('rules-filter').value = '';
    filterInForce('');
  }
  el.classList.add('highlight');
  if (scrollPending && !document.getElementById('view-rules').hidden) {
    scrollPending = false;
    el.scrollIntoView({ block: 'center' });
    el.focus({ preventScroll: true });
  }
}
