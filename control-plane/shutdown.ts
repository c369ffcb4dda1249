// A long-running command (serve, webhook) on SIGTERM/SIGINT: one line saying it is stopping and
// why, the stop itself, one line when it is done, exit 0. A second signal while stopping exits at
// once (1), so a stuck stop can still be interrupted.
import type { Logger } from './log.ts';

export function stopOnSignals(log: Logger, stop: () => Promise<void>, name = 'meshpilot'): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn(`${name}: ${signal} again while stopping, exiting now`);
      process.exit(1);
    }
    stopping = true;
    log.info(`${name}: stopping (${signal})`);
    stop().then(
      () => {
        log.info(`${name}: stopped`);
        process.exit(0);
      },
      (e: unknown) => {
        log.error({ err: e }, `${name}: stop failed`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
