// The dashboard's shell: tabs, the live state (one EventSource on dashboard/events, polling
// dashboard/api/state while that is not possible), and handing each state to the visible view.
// Views render from the latest state only; what the user chose (a selected service, filters, an
// open config dump) lives in the views, so an update never throws it away.
import * as graph from './graph.js';
import * as proxies from './proxies.js';
import * as rules from './rules.js';
import * as explain from './explain.js';
import * as canaries from './canaries.js';
import { arr, obj } from './dom.js';

const VIEWS = { graph, proxies, rules, explain, canaries };
const POLL_MS = 2000;
const SSE_RETRY_MS = 10_000;

let state = null;
let active = 'graph';
/** Views that have not seen the latest state (rendered when shown). */
const stale = new Set(Object.keys(VIEWS));

const ctx = {
  state: () => state,
  /** Shows a view; `target` is passed to its `focus` (e.g. a rule key). */
  show,
};

function setState(next) {
  if (!next || typeof next !== 'object') return;
  state = next;
  document.getElementById('generation').textContent = String(next.generation ?? '–');
  updateCounts(next);
  for (const v of Object.keys(VIEWS)) stale.add(v);
  renderActive();
  // Views that keep something across states hear of every one, shown or not (the explain view
  // marks an answer made on older rules; the canaries view records each step for its timeline).
  for (const v of Object.values(VIEWS)) v.stateChanged?.(next);
}

function updateCounts(s) {
  const summary = obj(obj(s.proxies).summary);
  const nacked = summary.NACKED ?? 0;
  const count = (id, text, warn) => {
    const el = document.getElementById(id);
    el.textContent = text;
    el.classList.toggle('warn', Boolean(warn));
  };
  count('count-proxies', `${summary.proxies ?? arr(obj(s.proxies).proxies).length}${nacked ? `, ${nacked} NACKED` : ''}`, nacked);
  const rejected = arr(obj(s.rules).rejected).length;
  count('count-rules', rejected ? `${rejected} rejected` : '', rejected);
  const running = arr(s.canaries).filter((c) => c?.phase === 'Progressing' || c?.phase === 'Paused').length + arr(s.experiments).filter((e) => e?.active).length;
  count('count-canaries', running ? String(running) : '', false);
}

function renderActive() {
  if (!state || !stale.has(active)) return;
  stale.delete(active);
  try {
    VIEWS[active].render(state, ctx);
  } catch (err) {
    // A view that cannot draw this state must not stop the others or the live updates.
    console.warn(`dashboard: the ${active} view could not render`, err);
  }
}

function show(view, target) {
  if (!VIEWS[view]) view = 'graph';
  active = view;
  for (const tab of document.querySelectorAll('[role=tab]')) {
    const on = tab.dataset.view === view;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    document.getElementById(tab.getAttribute('aria-controls')).hidden = !on;
  }
  renderActive();
  if (target !== undefined) VIEWS[view].focus?.(target);
}

/** `#rules/Kind%2Fns%2Fname` -> ['rules', 'Kind/ns/name'] */
function fromHash() {
  const [view, ...rest] = location.hash.replace(/^#/, '').split('/');
  const target = rest.length ? decodeURIComponent(rest.join('/')) : undefined;
  show(view || 'graph', target);
}

function initTabs() {
  const tabs = [...document.querySelectorAll('[role=tab]')];
  for (const tab of tabs) {
    tab.addEventListener('click', () => {
      if (location.hash !== `#${tab.dataset.view}`) location.hash = tab.dataset.view;
      else show(tab.dataset.view);
    });
    // Arrow keys move between tabs, as the ARIA tabs pattern has it.
    tab.addEventListener('keydown', (e) => {
      const i = tabs.indexOf(tab);
      const next = e.key === 'ArrowRight' ? tabs[(i + 1) % tabs.length] : e.key === 'ArrowLeft' ? tabs[(i - 1 + tabs.length) % tabs.length] : null;
      if (next) {
        next.focus();
        next.click();
      }
    });
  }
  window.addEventListener('hashchange', fromHash);
}

// ---- live state ----

let pollTimer = null;
let source = null;

function setMode(mode, text) {
  const el = document.getElementById('live-status');
  el.dataset.mode = mode;
  el.textContent = text;
}

async function pollOnce() {
  try {
    const res = await fetch('dashboard/api/state', { cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const next = await res.json();
    // The stream may have come back while this was in flight: it is newer.
    if (!pollTimer) return;
    setState(next);
    setMode('polling', `polling every ${POLL_MS / 1000} s`);
  } catch (err) {
    if (pollTimer) setMode('offline', `cannot reach meshpilot (${err.message}); retrying`);
  }
}

function startPolling() {
  if (pollTimer) return;
  void pollOnce();
  pollTimer = setInterval(pollOnce, POLL_MS);
}

function stopPolling() {
  clearInterval(pollTimer);
  pollTimer = null;
}

function connect() {
  if (typeof EventSource !== 'function') return startPolling();
  source = new EventSource('dashboard/events');
  source.addEventListener('state', (e) => {
    stopPolling();
    setMode('live', 'live');
    try {
      setState(JSON.parse(e.data));
    } catch (err) {
      console.warn('dashboard: a state event was not JSON', err);
    }
  });
  source.addEventListener('error', () => {
    // CONNECTING: the browser reconnects by itself; poll meanwhile. CLOSED: the server refused the
    // stream (an older meshpilot, a proxy in between): poll, and try the stream again later.
    startPolling();
    if (source.readyState === EventSource.CLOSED) {
      source = null;
      setTimeout(connect, SSE_RETRY_MS);
    }
  });
}

for (const v of Object.values(VIEWS)) v.init?.(ctx);
initTabs();
fromHash();
connect();
