// The canary decision: (rule, state, load since the step began, command) -> next state and the log
// line saying what happened. Pure: no clock (the caller passes `now`), no I/O.
//
// How a rollout goes (Flagger's model, judged from the proxies' load reports):
// - No state, or a state of another revision (the Canary's host, route, subsets or steps changed):
//   the rollout starts over at steps[0], failed checks 0.
// - Progressing: nothing happens until one interval after the step began (`since`). Then the
//   canary's load over [since, now] is judged:
//   - fewer than `minRequests` completed: the step holds. `since` stays, so the next judgement
//     (one interval later, `checkedAt`) sees the whole, longer span: a quiet service moves on once
//     enough requests have accumulated, never on a handful of calls.
//   - success rate below `minSuccessRate`, or more than `maxDropFromStable` points below the
//     stable's over the same span (only when the stable also completed `minRequests`: a drop from
//     noise is no drop): a failed check. Failed checks count over the whole rollout; at
//     `maxFailedChecks` it rolls back (weight 0), else the step's interval starts again.
//   - otherwise it passes: the next step; after the last step (100%, judged like any other, so a
//     canary that only fails under full load still rolls back) it is Promoted.
// - Promoted keeps 100% (finish `promote`) or hands the route back to the VirtualService (`handBack`).
// - Commands: promote (to the end, as if every step had passed), pause (weight kept, no judging),
//   resume (the step's interval starts again: paused time is not judged), abort (rolled back).
//   Promoted and RolledBack are final: only a new revision starts over.
import type { CanaryCommand, CanaryRule, CanaryState, LoadFigures } from './types.ts';

export interface CanaryInput {
  now: number;
  /** Stable's load over [state.since, now], every stable cluster summed. */
  stable: LoadFigures;
  /** Canary's load over [state.since, now], every canary cluster summed. */
  canary: LoadFigures;
  command?: CanaryCommand;
}

export interface CanaryDecision {
  /** The same object as the state given when nothing changed. */
  state: CanaryState;
  /** The log line, e.g. `canary default/reviews 25% -> 50%: success 99.8% over 1,240 requests`. */
  event?: string;
  /** Why a command cannot be carried out (nothing to save: the state as it stands, started if there was none). */
  error?: string;
}

export const NO_LOAD: LoadFigures = Object.freeze({ completed: 0, succeeded: 0, failed: 0, issued: 0, inFlight: 0, proxies: 0 });

/** Success rate in percent, or undefined without completed requests. */
export function successRate(f: LoadFigures): number | undefined {
  return f.completed > 0 ? (f.succeeded / f.completed) * 100 : undefined;
}

/** 99.8%; rounded down, so anything short of every request succeeding never reads 100%. */
export function formatRate(rate: number): string {
  if (rate >= 100) return '100%';
  return `${(Math.floor(rate * 10) / 10).toFixed(1)}%`;
}

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

function requests(n: number): string {
  return `${formatCount(n)} request${n === 1 ? '' : 's'}`;
}

/** When a progressing canary is judged next. */
export function nextCheckAt(rule: CanaryRule, state: CanaryState): number | undefined {
  if (state.phase !== 'Progressing') return undefined;
  return (state.checkedAt ?? state.since) + rule.intervalMs;
}

export function startState(rule: CanaryRule, now: number): CanaryState {
  return { revision: rule.revision, phase: 'Progressing', step: 0, weight: rule.steps[0]!, since: now, failedChecks: 0 };
}

export function decideCanary(rule: CanaryRule, previous: CanaryState | undefined, input: CanaryInput): CanaryDecision {
  const name = `canary ${rule.namespace}/${rule.name}`;
  const { now } = input;
  let started: string | undefined;
  let state = previous;
  if (!state || state.revision !== rule.revision) {
    state = startState(rule, now);
    started = `${name} ${previous ? 'restarted (new revision)' : 'started'} at ${state.weight}%`;
  }
  if (input.command) {
    const d = applyCommand(rule, state, input.command, now, name);
    return d.error ? { state, ...(started ? { event: started } : {}), error: d.error } : d;
  }
  if (started) return { state, event: started };
  if (state.phase !== 'Progressing') return { state };
  const due = nextCheckAt(rule, state)!;
  if (now < due) return { state };
  return judge(rule, state, input, name);
}

function judge(rule: CanaryRule, state: CanaryState, { now, stable, canary }: CanaryInput, name: string): CanaryDecision {
  const a = rule.analysis;
  const from = `${name} ${state.weight}%`;
  if (canary.completed < a.minRequests || canary.completed === 0) {
    const reason = `holding: only ${requests(canary.completed)} (need ${formatCount(a.minRequests)})`;
    return { state: { ...state, checkedAt: now, reason }, event: `${from} ${reason}` };
  }
  const rate = successRate(canary)!;
  const figures = `success ${formatRate(rate)} over ${requests(canary.completed)}`;
  const problems: string[] = [];
  if (a.minSuccessRate !== undefined && rate < a.minSuccessRate) problems.push(`below ${a.minSuccessRate}%`);
  const stableRate = stable.completed >= a.minRequests ? successRate(stable) : undefined;
  if (a.maxDropFromStable !== undefined && stableRate !== undefined && stableRate - rate > a.maxDropFromStable) {
    problems.push(`${(stableRate - rate).toFixed(1)} points below stable's ${formatRate(stableRate)} (max ${a.maxDropFromStable})`);
  }
  const { checkedAt: _, ...base } = state;
  if (problems.length > 0) {
    const failedChecks = state.failedChecks + 1;
    const reason = `${figures}, ${problems.join(' and ')} (failed check ${failedChecks} of ${a.maxFailedChecks})`;
    if (failedChecks >= a.maxFailedChecks) {
      return {
        state: { ...base, phase: 'RolledBack', weight: 0, since: now, failedChecks, reason: `rolled back: ${reason}` },
        event: `${from} -> 0%: rolled back: ${reason}`,
      };
    }
    return { state: { ...base, since: now, failedChecks, reason }, event: `${from} holding: ${reason}` };
  }
  const next = state.step + 1;
  if (next < rule.steps.length) {
    const weight = rule.steps[next]!;
    return { state: { ...base, step: next, weight, since: now, reason: figures }, event: `${from} -> ${weight}%: ${figures}` };
  }
  return promoted(rule, base, now, figures, from);
}

function promoted(rule: CanaryRule, state: CanaryState, now: number, why: string, from: string): CanaryDecision {
  const { checkedAt: _, ...base } = state;
  const handBack = rule.finish === 'handBack';
  const outcome = handBack ? `promoted, route handed back to ${rule.virtualService}` : 'promoted';
  return {
    state: { ...base, phase: 'Promoted', step: rule.steps.length - 1, weight: 100, since: now, reason: `${outcome}: ${why}`, ...(handBack ? { handedBack: true } : {}) },
    event: handBack ? `${from} -> VirtualService weights: ${outcome}: ${why}` : state.weight === 100 ? `${from} ${outcome}: ${why}` : `${from} -> 100%: ${outcome}: ${why}`,
  };
}

/** Why `command` cannot be carried out in `state`, or undefined when it can. */
export function canaryCommandError(state: CanaryState, command: CanaryCommand): string | undefined {
  if (state.phase === 'Promoted' || state.phase === 'RolledBack') {
    return `the canary is ${state.phase === 'Promoted' ? 'promoted' : 'rolled back'} already; change the Canary (a new revision) to start another rollout`;
  }
  if (command === 'pause' && state.phase === 'Paused') return 'the canary is paused already';
  if (command === 'resume' && state.phase !== 'Paused') return 'the canary is not paused';
  return undefined;
}

function applyCommand(rule: CanaryRule, state: CanaryState, command: CanaryCommand, now: number, name: string): CanaryDecision {
  const error = canaryCommandError(state, command);
  if (error) return { state, error };
  const from = `${name} ${state.weight}%`;
  const { checkedAt: _, ...base } = state;
  switch (command) {
    case 'promote':
      return promoted(rule, base, now, 'by command', from);
    case 'abort':
      return { state: { ...base, phase: 'RolledBack', weight: 0, since: now, reason: 'aborted' }, event: `${from} -> 0%: rolled back: aborted` };
    case 'pause':
      return { state: { ...base, phase: 'Paused', since: now, reason: 'paused by command' }, event: `${from} paused` };
    case 'resume':
      return { state: { ...base, phase: 'Progressing', since: now, reason: 'resumed by command' }, event: `${from} resumed` };
  }
}
