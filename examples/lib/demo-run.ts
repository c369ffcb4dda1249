// What both demos (demo.ts, canary-demo.ts) need to run until done or Ctrl-C: sleeps that a Ctrl-C
// cuts short, everything started stopped in reverse order exactly once, and the share bars.
// A second Ctrl-C exits at once instead of waiting for a clean stop.

const cleanups: Array<() => Promise<void> | void> = [];
let stopping = false;
let interrupted = false;
let wakeUp: (() => void) | undefined;

process.on('SIGINT', () => {
  if (interrupted) process.exit(130);
  interrupted = true;
  console.log('\nstopping...');
  wakeUp?.();
});

/** Whether Ctrl-C was pressed. */
export function isInterrupted(): boolean {
  return interrupted;
}

/** Stopped by shutdown(), after what was registered later. */
export function onShutdown(cleanup: () => Promise<void> | void): void {
  cleanups.push(cleanup);
}

/** Sleeps until `ms` have passed or Ctrl-C; false if interrupted. */
export function pause(ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(!interrupted), ms);
    wakeUp = () => {
      clearTimeout(timer);
      resolve(false);
    };
  });
}

export async function shutdown(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (err) {
        console.error('cleanup failed:', err);
      }
    }
  }
  // grpc-js-xds keeps its ADS channel object alive after close(); exit explicitly.
  process.exit(code);
}

/** A share (0 to 1) as a bar of `width` cells. */
export function bar(share: number, width = 20): string {
  const filled = Math.round(share * width);
  return '█'.repeat(filled) + '·'.repeat(width - filled);
}

/** `--seconds` as a positive number, or exit 2 saying what was given. */
export function secondsArg(text: string | undefined): number {
  const seconds = Number(text);
  if (!Number.isFinite(seconds) || seconds <= 0) {
    console.error(`--seconds must be a positive number, got ${text}`);
    process.exit(2);
  }
  return seconds;
}
