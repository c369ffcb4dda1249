// The fault experiment decision: runs until it expires, its guard trips or it is stopped.
import { describe, expect, it } from 'vitest';
import { NO_LOAD } from '../control-plane/rollout/decide-canary.ts';
import { decideExperiment } from '../control-plane/rollout/decide-experiment.ts';
import type { ExperimentState } from '../control-plane/rollout/types.ts';
import { experimentRule, figures } from './helpers/rollout-rules.ts';

const rule = experimentRule({ expiresAtMs: Date.UTC(2026, 11, 7, 10, 0, 0) });
const T = rule.expiresAtMs - 600_000;
const running: ExperimentState = { revision: 'e1', phase: 'Running', since: T };

describe('fault experiment decisions', () => {
  it('starts running, saying until when', () => {
    const d = decideExperiment(rule, undefined, { now: T, load: NO_LOAD });
    expect(d.state).toEqual({ revision: 'e1', phase: 'Running', since: T });
    expect(d.event).toBe('experiment default/ratings-delay started: injecting until 2026-12-07T10:00:00.000Z');
  });

  it('does not start once expired', () => {
    const d = decideExperiment(rule, undefined, { now: rule.expiresAtMs, load: NO_LOAD });
    expect(d.state).toMatchObject({ phase: 'Expired', reason: 'expired at 2026-12-07T10:00:00.000Z before it started' });
  });

  it('keeps running (same state, no line) while healthy and before expiry', () => {
    const d = decideExperiment(rule, running, { now: rule.expiresAtMs - 1, load: figures(990, 10) });
    expect(d.state).toBe(running);
    expect(d.event).toBeUndefined();
  });

  it('expires on time', () => {
    const d = decideExperiment(rule, running, { now: rule.expiresAtMs, load: figures(1000) });
    expect(d.state).toEqual({ revision: 'e1', phase: 'Expired', since: rule.expiresAtMs, reason: 'expired at 2026-12-07T10:00:00.000Z' });
    expect(d.event).toBe('experiment default/ratings-delay stopped: expired at 2026-12-07T10:00:00.000Z');
  });

  it('trips its guard when the success rate over the window falls below the minimum', () => {
    const d = decideExperiment(rule, running, { now: T + 5000, load: figures(80, 20) });
    expect(d.state).toMatchObject({ phase: 'Tripped', since: T + 5000, reason: 'guard tripped: success 80.0% over 100 requests, below 95%' });
    expect(d.event).toBe('experiment default/ratings-delay stopped: guard tripped: success 80.0% over 100 requests, below 95%');
  });

  it('does not judge the guard on fewer than minRequests, nor at exactly the minimum rate', () => {
    expect(decideExperiment(rule, running, { now: T + 5000, load: figures(0, 19) }).state).toBe(running);
    expect(decideExperiment(rule, running, { now: T + 5000, load: figures(95, 5) }).state).toBe(running);
    expect(decideExperiment(experimentRule({ guard: undefined, expiresAtMs: rule.expiresAtMs }), running, { now: T + 5000, load: figures(0, 1000) }).state).toBe(running);
  });

  it('stops on command; final phases stay and refuse another stop', () => {
    const d = decideExperiment(rule, running, { now: T + 1, load: NO_LOAD, command: 'stop' });
    expect(d.state).toMatchObject({ phase: 'Stopped', reason: 'stopped by command' });
    expect(d.event).toBe('experiment default/ratings-delay stopped by command');
    for (const phase of ['Expired', 'Tripped', 'Stopped'] as const) {
      const s: ExperimentState = { revision: 'e1', phase, since: T };
      expect(decideExperiment(rule, s, { now: T + 1, load: figures(0, 1000) }).state).toBe(s);
      expect(decideExperiment(rule, s, { now: T + 1, load: NO_LOAD, command: 'stop' }).error).toBe(`the experiment is ${phase.toLowerCase()} already`);
    }
  });

  it('a new revision (e.g. a later expiresAt) runs it again', () => {
    const tripped: ExperimentState = { revision: 'e1', phase: 'Tripped', since: T, reason: 'x' };
    const d = decideExperiment(experimentRule({ revision: 'e2', expiresAtMs: rule.expiresAtMs + 60_000 }), tripped, { now: rule.expiresAtMs, load: NO_LOAD });
    expect(d.state).toEqual({ revision: 'e2', phase: 'Running', since: rule.expiresAtMs });
    expect(d.event).toMatch(/restarted \(new revision\): injecting until/);
  });
});
