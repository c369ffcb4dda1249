// The canary decision against recorded load: each sequence lists what the stable and canary
// subsets completed in each interval, and the replay judges it the way the controller does (at each
// interval's end, over the span since the step began), recording the weight, phase and log line.
import { describe, expect, it } from 'vitest';
import { decideCanary, NO_LOAD } from '../control-plane/rollout/decide-canary.ts';
import { runtimeFrom } from '../control-plane/rollout/runtime.ts';
import type { CanaryCommand, CanaryRule, CanaryState } from '../control-plane/rollout/types.ts';
import { canaryRule, experimentRule, figures } from './helpers/rollout-rules.ts';

/** Per interval: canary [succeeded, failed], stable [succeeded, failed], and a command given at the interval's end instead of a check. */
interface Interval {
  canary: [number, number];
  stable?: [number, number];
  command?: CanaryCommand;
}

interface Step {
  at: number;
  weight: number;
  phase: string;
  event?: string;
}

function replay(rule: CanaryRule, intervals: Interval[], from?: CanaryState): { steps: Step[]; state: CanaryState } {
  const I = rule.intervalMs;
  let state = from ?? decideCanary(rule, undefined, { now: 0, stable: NO_LOAD, canary: NO_LOAD }).state;
  const steps: Step[] = [];
  intervals.forEach((iv, i) => {
    const now = (i + 1) * I;
    // Recorded intervals that lie inside [since, now].
    const span = intervals.slice(0, i + 1).filter((_, j) => j * I >= state.since);
    const total = (pick: (x: Interval) => [number, number] | undefined) =>
      figures(span.reduce((n, x) => n + (pick(x)?.[0] ?? 0), 0), span.reduce((n, x) => n + (pick(x)?.[1] ?? 0), 0));
    const d = decideCanary(rule, state, { now, canary: total((x) => x.canary), stable: total((x) => x.stable), ...(iv.command ? { command: iv.command } : {}) });
    expect(d.error).toBeUndefined();
    state = d.state;
    steps.push({ at: i + 1, weight: state.weight, phase: state.phase, ...(d.event ? { event: d.event } : {}) });
  });
  return { steps, state };
}

const healthy: Interval = { canary: [200, 0], stable: [2000, 0] };

describe('canary decisions on recorded load', () => {
  it('starts at the first step', () => {
    const d = decideCanary(canaryRule(), undefined, { now: 1000, stable: NO_LOAD, canary: NO_LOAD });
    expect(d.state).toEqual({ revision: 'r1', phase: 'Progressing', step: 0, weight: 5, since: 1000, failedChecks: 0 });
    expect(d.event).toBe('canary default/reviews started at 5%');
  });

  it('a healthy canary goes through every step and is promoted after the last one is judged: one interval per step', () => {
    const { steps, state } = replay(canaryRule(), [healthy, healthy, healthy, healthy, healthy]);
    expect(steps.map((s) => `${s.weight}:${s.phase}`)).toEqual(['25:Progressing', '50:Progressing', '100:Progressing', '100:Promoted', '100:Promoted']);
    expect(steps.map((s) => s.event)).toEqual([
      'canary default/reviews 5% -> 25%: success 100% over 200 requests',
      'canary default/reviews 25% -> 50%: success 100% over 200 requests',
      'canary default/reviews 50% -> 100%: success 100% over 200 requests',
      'canary default/reviews 100% promoted: success 100% over 200 requests',
      undefined,
    ]);
    expect(state.failedChecks).toBe(0);
  });

  it("logs the issue's line: success rate rounded down to a tenth, thousands separated", () => {
    const rule = canaryRule();
    const at25: CanaryState = { revision: 'r1', phase: 'Progressing', step: 1, weight: 25, since: 0, failedChecks: 0 };
    // 1238 of 1240: 99.84%.
    const d = decideCanary(rule, at25, { now: 60_000, stable: figures(5000), canary: figures(1238, 2) });
    expect(d.event).toBe('canary default/reviews 25% -> 50%: success 99.8% over 1,240 requests');
    // 99.96% is not 100%.
    const almost = decideCanary(canaryRule({ analysis: { minSuccessRate: 99.9 } }), at25, { now: 60_000, stable: NO_LOAD, canary: figures(2499, 1) });
    expect(almost.event).toContain('success 99.9% over 2,500 requests');
  });

  it('nothing happens before the interval is up (the same state, no line)', () => {
    const rule = canaryRule();
    const s: CanaryState = { revision: 'r1', phase: 'Progressing', step: 0, weight: 5, since: 0, failedChecks: 0 };
    const d = decideCanary(rule, s, { now: 59_999, stable: figures(100), canary: figures(100) });
    expect(d.state).toBe(s);
    expect(d.event).toBeUndefined();
  });

  it('30% errors: a failed check, then rolled back to 0% at the second interval (maxFailedChecks 2)', () => {
    const bad: Interval = { canary: [70, 30], stable: [2000, 0] };
    const { steps, state } = replay(canaryRule(), [bad, bad, healthy]);
    expect(steps.map((s) => `${s.weight}:${s.phase}`)).toEqual(['5:Progressing', '0:RolledBack', '0:RolledBack']);
    expect(steps[0]!.event).toBe('canary default/reviews 5% holding: success 70.0% over 100 requests, below 99% (failed check 1 of 2)');
    expect(steps[1]!.event).toBe('canary default/reviews 5% -> 0%: rolled back: success 70.0% over 100 requests, below 99% (failed check 2 of 2)');
    expect(state.reason).toBe('rolled back: success 70.0% over 100 requests, below 99% (failed check 2 of 2)');
    expect(state.since).toBe(120_000);
  });

  it('a failed check restarts the step interval: the next check judges only the later span', () => {
    // Bad interval, then good: the second check sees only the good interval, so it passes.
    const { steps, state } = replay(canaryRule({ analysis: { maxFailedChecks: 3 } }), [{ canary: [70, 30] }, healthy, { canary: [70, 30] }]);
    expect(steps.map((s) => `${s.weight}:${s.phase}`)).toEqual(['5:Progressing', '25:Progressing', '25:Progressing']);
    // Failed checks count over the whole rollout, not per step.
    expect(state.failedChecks).toBe(2);
    expect(steps[2]!.event).toContain('(failed check 2 of 3)');
  });

  it('too little traffic holds the step and judges the growing span, moving on once it has enough', () => {
    const trickle: Interval = { canary: [6, 0], stable: [60, 0] };
    const { steps } = replay(canaryRule(), [trickle, trickle, trickle, trickle]);
    expect(steps.map((s) => `${s.weight}:${s.phase}`)).toEqual(['5:Progressing', '5:Progressing', '5:Progressing', '25:Progressing']);
    expect(steps.map((s) => s.event)).toEqual([
      'canary default/reviews 5% holding: only 6 requests (need 20)',
      'canary default/reviews 5% holding: only 12 requests (need 20)',
      'canary default/reviews 5% holding: only 18 requests (need 20)',
      'canary default/reviews 5% -> 25%: success 100% over 24 requests',
    ]);
  });

  it('a held step is judged again one interval after the last judgement, not on every tick', () => {
    const rule = canaryRule();
    const s0: CanaryState = { revision: 'r1', phase: 'Progressing', step: 0, weight: 5, since: 0, failedChecks: 0 };
    const held = decideCanary(rule, s0, { now: 60_000, stable: NO_LOAD, canary: figures(3) }).state;
    expect(held).toMatchObject({ since: 0, checkedAt: 60_000 });
    expect(decideCanary(rule, held, { now: 119_999, stable: NO_LOAD, canary: figures(30) }).state).toBe(held);
    const moved = decideCanary(rule, held, { now: 120_000, stable: NO_LOAD, canary: figures(30) }).state;
    expect(moved).toMatchObject({ step: 1, since: 120_000 });
    expect(moved.checkedAt).toBeUndefined();
  });

  it('errors without enough traffic are not judged: a few failures hold, they do not fail a check', () => {
    const { steps } = replay(canaryRule(), [{ canary: [2, 3] }, { canary: [0, 0] }]);
    expect(steps.map((s) => s.phase)).toEqual(['Progressing', 'Progressing']);
    expect(steps[0]!.event).toBe('canary default/reviews 5% holding: only 5 requests (need 20)');
  });

  describe('relative to stable (maxDropFromStable)', () => {
    const rule = canaryRule({ analysis: { minSuccessRate: undefined, maxDropFromStable: 1 } });

    it('fails a canary more than the allowed points below the stable over the same span', () => {
      // Canary 97%, stable 99.5%: 2.5 points below.
      const { steps } = replay(rule, [{ canary: [970, 30], stable: [1990, 10] }]);
      expect(steps[0]!.event).toBe("canary default/reviews 5% holding: success 97.0% over 1,000 requests, 2.5 points below stable's 99.5% (max 1) (failed check 1 of 2)");
    });

    it('passes a canary as good as a degraded stable (the service, not the canary, is failing)', () => {
      const { steps } = replay(rule, [{ canary: [970, 30], stable: [1950, 50] }]);
      expect(steps[0]!.weight).toBe(25);
    });

    it('ignores a stable with fewer than minRequests (its rate is noise)', () => {
      const { steps } = replay(rule, [{ canary: [970, 30], stable: [19, 0] }]);
      expect(steps[0]!.weight).toBe(25);
    });

    it('with both checks, either one fails the step', () => {
      const both = canaryRule({ analysis: { minSuccessRate: 90, maxDropFromStable: 1 } });
      expect(replay(both, [{ canary: [950, 50], stable: [1000, 0] }]).steps[0]!.weight).toBe(5);
      expect(replay(both, [{ canary: [850, 150], stable: [850, 150] }]).steps[0]!.weight).toBe(5);
      expect(replay(both, [{ canary: [950, 50], stable: [950, 50] }]).steps[0]!.weight).toBe(25);
    });
  });

  describe('commands', () => {
    it('pause keeps the weight and judges nothing; resume starts the step interval again', () => {
      const rule = canaryRule();
      const { steps, state } = replay(rule, [healthy, { canary: [0, 100], command: 'pause' }, { canary: [0, 100] }, { canary: [0, 100] }, { canary: [0, 0], command: 'resume' }, healthy]);
      expect(steps.map((s) => `${s.weight}:${s.phase}`)).toEqual(['25:Progressing', '25:Paused', '25:Paused', '25:Paused', '25:Progressing', '50:Progressing']);
      expect(steps[1]!.event).toBe('canary default/reviews 25% paused');
      expect(steps[4]!.event).toBe('canary default/reviews 25% resumed');
      // The failures while paused were never judged: the check after resume saw only the healthy interval.
      expect(steps[5]!.event).toBe('canary default/reviews 25% -> 50%: success 100% over 200 requests');
      expect(state.failedChecks).toBe(0);
    });

    it('promote goes to 100% at once; abort rolls back with reason "aborted"', () => {
      const rule = canaryRule();
      const p = replay(rule, [{ canary: [0, 0], command: 'promote' }]);
      expect(p.state).toMatchObject({ phase: 'Promoted', weight: 100, step: 3, reason: 'promoted: by command' });
      expect(p.steps[0]!.event).toBe('canary default/reviews 5% -> 100%: promoted: by command');
      const a = replay(rule, [healthy, { canary: [0, 0], command: 'abort' }]);
      expect(a.state).toMatchObject({ phase: 'RolledBack', weight: 0, reason: 'aborted' });
      expect(a.steps[1]!.event).toBe('canary default/reviews 25% -> 0%: rolled back: aborted');
    });

    it('refuses commands that do not apply, leaving the state as it was', () => {
      const rule = canaryRule();
      const running: CanaryState = { revision: 'r1', phase: 'Progressing', step: 1, weight: 25, since: 0, failedChecks: 0 };
      const resume = decideCanary(rule, running, { now: 1, stable: NO_LOAD, canary: NO_LOAD, command: 'resume' });
      expect(resume.error).toBe('the canary is not paused');
      expect(resume.state).toBe(running);
      const paused = { ...running, phase: 'Paused' as const };
      expect(decideCanary(rule, paused, { now: 1, stable: NO_LOAD, canary: NO_LOAD, command: 'pause' }).error).toBe('the canary is paused already');
      for (const phase of ['Promoted', 'RolledBack'] as const) {
        for (const command of ['promote', 'pause', 'resume', 'abort'] as const) {
          const d = decideCanary(rule, { ...running, phase }, { now: 1, stable: NO_LOAD, canary: NO_LOAD, command });
          expect(d.error).toMatch(/already; change the Canary/);
        }
      }
    });

    it('paused, promoted and rolled-back canaries stay as they are on ticks', () => {
      const rule = canaryRule();
      for (const phase of ['Paused', 'Promoted', 'RolledBack'] as const) {
        const s: CanaryState = { revision: 'r1', phase, step: 1, weight: 25, since: 0, failedChecks: 0 };
        expect(decideCanary(rule, s, { now: 10 * 60_000, stable: figures(1000), canary: figures(0, 1000) }).state).toBe(s);
      }
    });
  });

  it('finish handBack: promoted and handed back, and the overlay then leaves the VirtualService weights alone', () => {
    const rule = canaryRule({ finish: 'handBack', steps: [50, 100] });
    const { steps, state } = replay(rule, [healthy, healthy]);
    expect(state).toMatchObject({ phase: 'Promoted', weight: 100, handedBack: true });
    expect(steps[1]!.event).toBe('canary default/reviews 100% -> VirtualService weights: promoted, route handed back to VirtualService/default/reviews: success 100% over 200 requests');
    const rt = runtimeFrom({ canaries: [rule], experiments: [] }, { [rule.key]: state }, {}, 0);
    expect(rt.canaryWeights.has(rule.key)).toBe(false);
  });

  it('a new revision starts over at the first step, from mid-rollout and from an outcome', () => {
    const r1 = canaryRule();
    const mid = replay(r1, [healthy, healthy]).state;
    expect(mid.weight).toBe(50);
    const r2 = canaryRule({ revision: 'r2' });
    const d = decideCanary(r2, mid, { now: 500_000, stable: figures(1000), canary: figures(1000) });
    expect(d.state).toEqual({ revision: 'r2', phase: 'Progressing', step: 0, weight: 5, since: 500_000, failedChecks: 0 });
    expect(d.event).toBe('canary default/reviews restarted (new revision) at 5%');
    const rolledBack: CanaryState = { revision: 'r1', phase: 'RolledBack', step: 0, weight: 0, since: 0, failedChecks: 2, reason: 'x' };
    expect(decideCanary(r2, rolledBack, { now: 1, stable: NO_LOAD, canary: NO_LOAD }).state.phase).toBe('Progressing');
  });
});

describe('runtime from rollout states', () => {
  const c = canaryRule();
  const e = experimentRule();
  const model = { canaries: [c], experiments: [e] };
  const at = (phase: CanaryState['phase'], weight: number, revision = 'r1'): CanaryState => ({ revision, phase, step: 1, weight, since: 0, failedChecks: 0 });

  it('no state (or an old revision): the first step, and experiments not yet expired inject', () => {
    expect([...runtimeFrom(model, {}, {}, 0).canaryWeights]).toEqual([[c.key, 5]]);
    expect([...runtimeFrom(model, { [c.key]: at('Progressing', 50, 'r0') }, {}, 0).canaryWeights]).toEqual([[c.key, 5]]);
    expect(runtimeFrom(model, {}, {}, e.expiresAtMs - 1).activeExperiments.has(e.key)).toBe(true);
    expect(runtimeFrom(model, {}, {}, e.expiresAtMs).activeExperiments.has(e.key)).toBe(false);
  });

  it('phases: progressing and paused keep their weight, rolled back 0, promoted 100', () => {
    const w = (s: CanaryState) => runtimeFrom(model, { [c.key]: s }, {}, 0).canaryWeights.get(c.key);
    expect(w(at('Progressing', 25))).toBe(25);
    expect(w(at('Paused', 50))).toBe(50);
    expect(w(at('RolledBack', 0))).toBe(0);
    expect(w(at('Promoted', 100))).toBe(100);
  });

  it('experiments inject only while Running (of their revision)', () => {
    const active = (phase: 'Running' | 'Expired' | 'Tripped' | 'Stopped', revision = 'e1') =>
      runtimeFrom(model, {}, { [e.key]: { revision, phase, since: 0 } }, 0).activeExperiments.has(e.key);
    expect(active('Running')).toBe(true);
    expect(active('Expired')).toBe(false);
    expect(active('Tripped')).toBe(false);
    expect(active('Stopped')).toBe(false);
    expect(active('Stopped', 'e0')).toBe(true);
  });
});
