// The CLI's grpc-js logger (apart from listen-error.ts, which the light command-line code imports).
import * as grpc from '@grpc/grpc-js';

/**
 * grpc-js writes "E No address added out of total 1 resolved" to stderr before its bind fails; the
 * failure itself becomes a ListenError, so for the CLI that line is noise above the real one.
 * Everything else grpc-js logs is written as it would be.
 */
export function quietGrpcBindLog(): void {
  const write = (prefix: string) => (message?: unknown, ...rest: unknown[]) => {
    if (typeof message === 'string' && message.startsWith('No address added out of total')) return;
    console.error(`${prefix} ${String(message)}`, ...rest);
  };
  grpc.setLogger({ error: write('E'), info: write('I'), debug: write('D') });
}
