// The fault experiment decision: (rule, state, the service's load over the guard window, command)
// -> next state and the log line. Pure, like decide-canary.ts.
// - No state, or a state of another revision (the experiment was edited): it runs, unless it has
//   expired already.
// - Running stops for good when it expires (now >= expiresAt), when its guard trips (at least
//   `minRequests` completed in the window and the success rate below `minSuccessRate`: the fault is
//   hurting more than the targeted requests), or on the stop command. Expired, Tripped and Stopped
//   are final: only a new revision (an edit, e.g. a later expiresAt) runs it again.
import { formatCount, formatRate, successRate } from './decide-canary.ts';
import type { ExperimentRule, ExperimentState, LoadFigures } from './types.ts';

export interface ExperimentInput {
  now: number;
  /** The service's load (every cluster of the host) over the guard window, at most since the experiment began. */
  load: LoadFigures;
  command?: 'stop';
}

export interface ExperimentDecision {
  state: ExperimentState;
  event?: string;
  error?: string;
}

export function decideExperiment(rule: ExperimentRule, previous: ExperimentState | undefined, input: ExperimentInput): ExperimentDecision {
  const name = `experiment ${rule.namespace}/${rule.name}`;
  const { now } = input;
  const expires = new Date(rule.expiresAtMs).toISOString();
  let state = previous;
  let started: string | undefined;
  if (!state || state.revision !== rule.revision) {
    if (now >= rule.expiresAtMs) {
      return { state: { revision: rule.revision, phase: 'Expired', since: now, reason: `expired at ${expires} before it started` }, event: `${name} not started: expired at ${expires}` };
    }
    state = { revision: rule.revision, phase: 'Running', since: now };
    started = `${name} ${previous ? 'restarted (new revision)' : 'started'}: injecting until ${expires}`;
  }
  if (input.command === 'stop') {
    if (state.phase !== 'Running') return { state, error: `the experiment is ${state.phase.toLowerCase()} already` };
    return { state: { ...state, phase: 'Stopped', since: now, reason: 'stopped by command' }, event: `${name} stopped by command` };
  }
  if (state.phase !== 'Running') return { state };
  if (now >= rule.expiresAtMs) {
    return { state: { ...state, phase: 'Expired', since: now, reason: `expired at ${expires}` }, event: `${name} stopped: expired at ${expires}` };
  }
  const g = rule.guard;
  const rate = successRate(input.load);
  if (g && input.load.completed >= g.minRequests && rate !== undefined && rate < g.minSuccessRate) {
    const reason = `guard tripped: success ${formatRate(rate)} over ${formatCount(input.load.completed)} requests, below ${g.minSuccessRate}%`;
    return { state: { ...state, phase: 'Tripped', since: now, reason }, event: `${name} stopped: ${reason}` };
  }
  return started ? { state, event: started } : { state };
}
