// deadlineSignal must abort on time even when a garbage collection runs before the deadline: the
// combination it replaces (AbortSignal.any with AbortSignal.timeout) loses the timeout on Node 20
// and left the leader elector waiting forever on a request that never answered.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { deadlineSignal } from '../control-plane/deadline-signal.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('deadlineSignal', () => {
  it('aborts at its deadline after a garbage collection, with a TimeoutError', async () => {
    const parent = new AbortController();
    let heard: unknown;
    // Only the listener is kept, as fetch keeps it: nothing else holds the signal.
    deadlineSignal(80, parent.signal).addEventListener('abort', (e) => (heard = (e.target as AbortSignal).reason));
    await sleep(10);
    gc();
    await sleep(250);
    expect(heard).toBeInstanceOf(DOMException);
    expect((heard as DOMException).name).toBe('TimeoutError');
  });

  it('aborts with the parent, at once when the parent already has, and not twice', async () => {
    const parent = new AbortController();
    const s = deadlineSignal(10_000, parent.signal);
    let count = 0;
    s.addEventListener('abort', () => count++);
    parent.abort('stopping');
    expect(s.aborted).toBe(true);
    expect(s.reason).toBe('stopping');
    expect(deadlineSignal(10_000, parent.signal).reason).toBe('stopping');
    await sleep(20);
    expect(count).toBe(1);
  });

  it('needs no parent', async () => {
    const s = deadlineSignal(20);
    expect(s.aborted).toBe(false);
    await sleep(120);
    expect(s.aborted).toBe(true);
  });
});
