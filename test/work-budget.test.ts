// WorkBudget (xds/work-budget.ts): requests run at once while a turn of the event loop has budget
// left, then wait for later turns in arrival order, so timers (grpc-js's idle timer, probes) and
// reads of other sockets get their turn during a burst. The clock is fake: each job "costs" what
// it adds to it, so the test never depends on how fast the machine is.
import { describe, expect, it } from 'vitest';
import { WorkBudget } from '../control-plane/xds/work-budget.ts';

const turn = () => new Promise((r) => setImmediate(r));

describe('WorkBudget', () => {
  it('runs a job at once, in the same call, when nothing waits', () => {
    const w = new WorkBudget(20, () => 0);
    let ran = false;
    w.run(() => (ran = true));
    expect(ran).toBe(true);
    expect(w.waiting).toBe(0);
  });

  it('a burst: the budget runs now, the rest in later turns in order, and a timer due meanwhile runs before the burst ends', async () => {
    let t = 0;
    const w = new WorkBudget(20, () => t);
    const log: string[] = [];
    setTimeout(() => log.push('timer'), 0);
    // 30 jobs of 6 ms: 4 fit in 20 ms (the 4th starts at 18 ms).
    for (let i = 0; i < 30; i++) {
      w.run(() => {
        log.push(`job${i}`);
        t += 6;
        // The first job really takes a few ms, so that the timer is due by the end of this turn
        // (the fake clock does not make real time pass).
        if (i === 0) for (const until = performance.now() + 5; performance.now() < until; );
      });
    }
    expect(log).toEqual(['job0', 'job1', 'job2', 'job3']);
    expect(w.waiting).toBe(26);
    while (w.waiting > 0) await turn();
    await turn();
    const jobs = log.filter((x) => x !== 'timer');
    expect(jobs).toEqual(Array.from({ length: 30 }, (_, i) => `job${i}`));
    // The timer ran between two turns' shares of the burst, not after all of it.
    const timerAt = log.indexOf('timer');
    expect(timerAt).toBeGreaterThan(0);
    expect(timerAt).toBeLessThan(log.length - 1);
  });

  it('a job arriving while others wait goes behind them (per-stream order holds), and the next quiet turn starts a new budget', async () => {
    let t = 0;
    const w = new WorkBudget(10, () => t);
    const log: number[] = [];
    for (let i = 0; i < 5; i++) {
      w.run(() => {
        log.push(i);
        t += 5;
      });
    }
    expect(log).toEqual([0, 1]);
    w.run(() => log.push(99));
    expect(log).toEqual([0, 1]);
    while (w.waiting > 0) await turn();
    expect(log).toEqual([0, 1, 2, 3, 4, 99]);
    await turn();
    // Idle again: the next job runs at once although the clock moved on.
    t += 1000;
    w.run(() => log.push(100));
    expect(log.at(-1)).toBe(100);
  });
});
