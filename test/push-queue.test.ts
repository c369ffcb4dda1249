// The push queue: rounds in batches, one more round for a change mid-way, and a stream whose
// buffer is full gets one merged push when it drains (none if it goes away first).
import { describe, expect, it } from 'vitest';
import { PushQueue } from '../control-plane/xds/push-queue.ts';

describe('PushQueue', () => {
  it('pushes every live stream in batches, runs one more round for changes mid-way, and merges pushes to a busy stream', async () => {
    const streams = new Set(['a', 'b', 'c', 'd', 'e']);
    const pushed: string[] = [];
    let rounds = 0;
    const q = new PushQueue(streams, (s) => pushed.push(s), () => rounds++, 2);
    q.pushAll();
    expect(pushed).toEqual(['a', 'b']);
    q.pushAll(); // mid-round: one more round, not a second one at once
    q.pushAll();
    streams.delete('e'); // gone before its turn: skipped
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(pushed).toEqual(['a', 'b', 'c', 'd', 'a', 'b', 'c', 'd']);
    expect(rounds).toBe(1);

    pushed.length = 0;
    q.blocked('a');
    q.blocked('b');
    q.pushAll();
    q.pushAll();
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(pushed).toEqual(['c', 'd', 'c', 'd']);
    q.drained('a');
    expect(pushed).toEqual(['c', 'd', 'c', 'd', 'a']);
    q.forget('b');
    q.drained('b');
    expect(pushed).toEqual(['c', 'd', 'c', 'd', 'a']);
  });

  it('also ends a batch when its time is spent, so a turn of the event loop stays short when each push is costly', async () => {
    const streams = new Set(Array.from({ length: 10 }, (_, i) => `s${i}`));
    let t = 0;
    const turns: string[][] = [[]];
    // Each push costs 8 ms of the (fake) clock: at most 20 ms a batch means 3 pushes (the third crosses it).
    const q = new PushQueue(streams, (s) => {
      turns.at(-1)!.push(s);
      t += 8;
    }, () => {}, 200, 20, () => t);
    q.pushAll();
    for (let i = 0; i < 5; i++) {
      // The next batch runs in the next turn's check phase, before this await resumes.
      turns.push([]);
      await new Promise((r) => setImmediate(r));
    }
    expect(turns.filter((x) => x.length).map((x) => x.length)).toEqual([3, 3, 3, 1]);
    expect(turns.flat()).toEqual([...streams]);
  });
});
