// Canaries and fault experiments: each canary's phase and current step, the success rates its
// decisions read (the subsets' load reports), a timeline of its steps (and of the changes seen
// while this page is open), and, only when meshpilot runs with --dashboard-actions, buttons that
// POST /debug/canaries/NS/NAME/CMD.
import { arr, badge, fill, h, keepFocus, obj, percent, rate, ruleLink, shortHost, str, time, unchanged } from './dom.js';

const COMMANDS = [
  { cmd: 'promote', label: 'Promote', when: ['Progressing', 'Paused'] },
  { cmd: 'pause', label: 'Pause', when: ['Progressing'] },
  { cmd: 'resume', label: 'Resume', when: ['Paused'] },
  { cmd: 'abort', label: 'Abort', when: ['Progressing', 'Paused'] },
];

/** Canary key -> changes seen while the page is open: {at, phase, step, weight, reason}. */
const history = new Map();
let busy = false;
let lastState = null;

export function render(state) {
  lastState = state;
  const canaries = arr(state.canaries).filter((c) => c && typeof c.key === 'string');
  const experiments = arr(state.experiments).filter((x) => x && typeof x.key === 'string');
  for (const c of canaries) remember(c);
  const actions = state.actions === true;
  const box = document.getElementById('canaries');
  if (unchanged('canaries', JSON.stringify([state.canaries, state.experiments, state.load, actions, busy, canaries.map((c) => history.get(c.key)?.length)]))) return;
  keepFocus(box, () => fill(box,
    h('section', { 'aria-labelledby': 'canaries-h', 'data-testid': 'canaries' },
      h('h3', { id: 'canaries-h' }, `Canaries (${canaries.length})`),
      canaries.length === 0 ? h('p', { class: 'muted' }, 'No Canary rule is in force.') : canaries.map((c) => canaryCard(c, state, actions)),
      !actions && canaries.length ? h('p', { class: 'muted', 'data-testid': 'actions-off' }, 'Read-only: start meshpilot with --dashboard-actions to promote, pause, resume or abort from here (or use meshpilot canary …).') : null),
    h('section', { 'aria-labelledby': 'experiments-h', 'data-testid': 'experiments' },
      h('h3', { id: 'experiments-h' }, `Fault experiments (${experiments.length})`),
      experiments.length === 0 ? h('p', { class: 'muted' }, 'No FaultExperiment rule is in force.') : experimentTable(experiments, state))));
}

// Called for every state, shown or not, so the timeline holds what happened while another tab was open.
function remember(c) {
  const list = history.get(c.key) ?? [];
  const prev = list[list.length - 1];
  const now = { at: Date.now(), phase: c.phase, step: c.step, weight: c.weight, reason: c.reason };
  if (!prev || prev.phase !== now.phase || prev.step !== now.step || prev.weight !== now.weight || prev.reason !== now.reason) {
    list.push(now);
    if (list.length > 50) list.shift();
    history.set(c.key, list);
  }
}

export function stateChanged(state) {
  for (const c of arr(state?.canaries)) if (c && typeof c.key === 'string') remember(c);
}

function subsetLoad(state, host, subset) {
  const svc = arr(obj(state.load).services).find((x) => x?.host === host);
  return arr(svc?.subsets).find((x) => x?.subset === subset);
}

function canaryCard(c, state, actions) {
  const [, ns, name] = c.key.split('/');
  const steps = arr(c.steps).filter((n) => typeof n === 'number');
  const stepIndex = typeof c.step === 'number' ? c.step : -1;
  const host = str(c.host);
  const stable = subsetLoad(state, host, c.stable);
  const canary = subsetLoad(state, host, c.canary);
  const windowS = obj(state.load).windowSeconds;
  return h('article', { class: 'canary', 'data-focus-scope': c.key, 'data-testid': 'canary', 'data-canary': c.key, 'data-phase': str(c.phase), 'aria-labelledby': `canary-h-${c.key}` },
    h('header', {},
      h('h4', { id: `canary-h-${c.key}` }, ruleLink(c.key)),
      badge(c.phase, { 'data-testid': 'canary-phase' }),
      c.leader === false ? h('span', { class: 'muted' }, ' (this replica is not the leader: it shows the leader\'s last saved state)') : null),
    h('p', {}, `route ${str(c.route)} of ${shortHost(host)}: ${str(c.stable)} → ${str(c.canary)}, `,
      h('strong', { 'data-testid': 'canary-weight' }, `${c.weight ?? '?'}%`), ` to ${str(c.canary)}`,
      c.handedBack ? ' (handed back: the VirtualService\'s own weights apply)' : '',
      steps.length ? ` · step ${stepIndex + 1} of ${steps.length}` : ''),
    timeline(c, steps, stepIndex),
    h('table', { class: 'rates', 'data-testid': 'canary-rates' },
      h('caption', {}, `The success rates behind the decision (reported load${typeof windowS === 'number' ? `, last ${windowS} s` : ''})`),
      h('thead', {}, h('tr', {}, ['Subset', '', 'Success', 'Rate', 'Completed', 'Failed'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, [['stable', c.stable, stable], ['canary', c.canary, canary]].map(([role, subset, l]) => h('tr', { 'data-subset': str(subset) },
        h('td', {}, str(subset)), h('td', { class: 'muted' }, role),
        h('td', { 'data-testid': `rate-${role}` }, percent(l?.successRate)), h('td', {}, rate(l?.requestsPerSecond)), h('td', {}, str(l?.completed, '–')), h('td', {}, str(l?.failed, '–')))))),
    h('dl', { class: 'facts' },
      fact('Since', time(c.since)),
      fact('Next check', time(c.nextCheckAt)),
      fact('Failed checks', str(c.failedChecks, '0')),
      c.reason ? fact('Last decision', h('span', { 'data-testid': 'canary-reason' }, str(c.reason))) : null),
    observed(c.key),
    actions ? actionButtons(c, ns, name) : null);
}

function fact(term, value) {
  return [h('dt', {}, term), h('dd', {}, value)];
}

/** 0% → each step; done, current (with the phase), still to come; a rollback shows at the end. */
function timeline(c, steps, current) {
  const rolledBack = c.phase === 'RolledBack';
  const promoted = c.phase === 'Promoted';
  return h('ol', { class: 'timeline', 'data-testid': 'canary-timeline', 'aria-label': 'Steps' },
    steps.map((w, i) => {
      const status = promoted || i < current ? 'done' : i === current && !rolledBack ? 'current' : 'todo';
      return h('li', { class: `step ${status}`, 'data-testid': 'canary-step', 'data-status': status, 'aria-current': status === 'current' ? 'step' : null },
        h('span', { class: 'dot', 'aria-hidden': 'true' }), `${w}%`, status === 'current' && c.phase === 'Paused' ? ' (paused)' : '');
    }),
    rolledBack ? h('li', { class: 'step rolled-back', 'data-testid': 'canary-step', 'data-status': 'rolled-back' }, h('span', { class: 'dot', 'aria-hidden': 'true' }), 'rolled back to 0%') : null);
}

function observed(key) {
  const list = history.get(key) ?? [];
  if (list.length < 2) return null;
  return h('details', { class: 'observed', 'data-testid': 'canary-history' },
    h('summary', {}, `Changes seen while this page is open (${list.length - 1})`),
    h('ol', {}, list.slice(1).map((x) => h('li', {}, `${time(x.at)}: ${str(x.phase)}, ${x.weight ?? '?'}%${x.reason ? ` - ${x.reason}` : ''}`))));
}

function actionButtons(c, ns, name) {
  return h('div', { class: 'actions', role: 'group', 'aria-label': `Commands for ${c.key}` },
    COMMANDS.map(({ cmd, label, when }) => h('button', {
      type: 'button', 'data-testid': `canary-${cmd}`, disabled: busy || !when.includes(c.phase),
      onclick: () => command(ns, name, cmd),
    }, label)));
}

async function command(ns, name, cmd) {
  const status = document.getElementById('canary-action-status');
  busy = true;
  if (lastState) render(lastState);
  status.textContent = `${cmd} ${ns}/${name}…`;
  try {
    const res = await fetch(`debug/canaries/${encodeURIComponent(ns)}/${encodeURIComponent(name)}/${cmd}`, { method: 'POST' });
    const body = await res.json().catch(() => ({}));
    status.textContent = res.ok ? `${cmd} ${ns}/${name}: now ${str(body.canary?.phase, '?')} at ${body.canary?.weight ?? '?'}%` : `${cmd} ${ns}/${name} refused: ${str(body.error, `HTTP ${res.status}`)}`;
  } catch (err) {
    status.textContent = `${cmd} ${ns}/${name} failed: ${err.message}`;
  } finally {
    busy = false;
    if (lastState) render(lastState);
  }
}

function experimentTable(experiments, state) {
  return h('table', { 'data-testid': 'experiments-table' },
    h('thead', {}, h('tr', {}, ['Experiment', 'Host', 'Routes', 'Phase', 'Injecting', 'Service success', 'Since', 'Expires', 'Reason'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, experiments.map((x) => {
      // What its guard reads: its clusters (an ingress host's are other services'), else its host's.
      const wanted = new Set(arr(x.clusters));
      const subsets = wanted.size
        ? arr(obj(state.load).services).flatMap((s) => arr(s?.subsets)).filter((s) => wanted.has(s?.cluster))
        : arr(arr(obj(state.load).services).find((s) => s?.host === x.host)?.subsets);
      const completed = subsets.reduce((n, s) => n + (s?.completed ?? 0), 0);
      const failed = subsets.reduce((n, s) => n + (s?.failed ?? 0), 0);
      return h('tr', { 'data-testid': 'experiment', 'data-experiment': x.key, 'data-phase': str(x.phase) },
        h('td', {}, ruleLink(x.key)), h('td', {}, shortHost(x.host)), h('td', {}, arr(x.routes).join(', ') || 'all'),
        h('td', {}, badge(x.phase)), h('td', {}, x.active ? 'yes' : 'no'),
        h('td', {}, completed ? percent(((completed - failed) / completed) * 100) : '–'),
        h('td', {}, time(x.since)), h('td', {}, time(x.expiresAt)), h('td', {}, str(x.reason, '')));
    })));
}
