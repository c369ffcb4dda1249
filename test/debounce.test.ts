import { afterEach, describe, expect, it, vi } from 'vitest';
import { Debouncer } from '../control-plane/debounce.ts';

describe('Debouncer', () => {
  afterEach(() => vi.useRealTimers());

  it('runs once after a quiet period, however many triggers came', () => {
    vi.useFakeTimers();
    const fn = vi.fn();
    const d = new Debouncer(100, 1000, fn);
    for (let i = 0; i < 5; i++) {
      d.trigger();
      vi.advanceTimersByTime(50);
    }
    expect(fn).not.toHaveBeenCalled();
    vi.advanceTimersByTime(100);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('never waits longer than the max delay while triggers keep coming', () => {
    vi.useFakeTimers();
    const fn = vi.fn();
    const d = new Debouncer(100, 1000, fn);
    for (let t = 0; t < 1500; t += 50) {
      d.trigger();
      vi.advanceTimersByTime(50);
      if (t < 950) expect(fn).not.toHaveBeenCalled();
    }
    expect(fn).toHaveBeenCalledTimes(1);
  });
});
