// A listener that cannot bind is a user's problem (a port in use, a privileged port, an address the
// machine does not have), not a bug: it is reported as one line naming the address, e.g.
// `cannot listen on 127.0.0.1:15010: address already in use`, and the CLI exits 1 with it.
import type { Server } from 'node:net';

const REASONS: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EACCES: 'permission denied',
  EADDRNOTAVAIL: 'address not available on this machine',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host not found',
};

export class ListenError extends Error {
  constructor(
    readonly address: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot listen on ${address}: ${reason}`, options);
    this.name = 'ListenError';
  }
}

/**
 * The error a failed bind on `address` becomes. Node's errors carry a `code`; grpc-js's bindAsync
 * only names it in the message ("No address added ... [listen EADDRINUSE: ...]").
 */
export function listenError(address: string, err: unknown): ListenError {
  if (err instanceof ListenError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  const known = typeof code === 'string' && REASONS[code] ? code : Object.keys(REASONS).find((c) => message.includes(c));
  return new ListenError(address, known ? REASONS[known]! : message, { cause: err });
}

/** `server.listen(port, host)` as a promise that rejects with a ListenError. */
export function listenOn(server: Server, port: number, host: string, address = formatHostPort(host, port)): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (e: unknown) => reject(listenError(address, e));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** host:port, with an IPv6 host in brackets. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
