// Wait on a condition with a deadline, instead of sleeping a fixed time.

export interface WaitOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /** Pause between attempts (default 50 ms). */
  intervalMs?: number;
  /** Names the condition in the timeout error. */
  description?: string;
}

/**
 * Polls `cond` until it returns true. A throwing or rejecting attempt counts as
 * "not yet"; the last such error is quoted in the timeout error, so a test that
 * gives up says why the condition never held (e.g. the gRPC call error).
 */
export async function waitFor(
  cond: () => Promise<boolean> | boolean,
  opts: WaitOptions = {},
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  let attempts = 0;
  let lastError: unknown;
  for (;;) {
    attempts += 1;
    try {
      if (await cond()) return;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, Math.max(0, deadline - Date.now()))));
  }
  const what = opts.description ? ` (${opts.description})` : '';
  const why = lastError === undefined ? 'condition stayed false' : `last error: ${describe(lastError)}`;
  throw new Error(`waitFor timed out after ${timeoutMs} ms and ${attempts} attempts${what}; ${why}`);
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
