// GET /dashboard/events: the dashboard's snapshot as Server-Sent Events. Each client gets the
// snapshot at once, then again whenever its JSON text differs from the last one it got (checked
// every 500 ms, one snapshot per check for all clients), and a comment line every 15 s so proxies
// and browsers keep an idle stream open. Timers run only while a client is connected, never keep
// the process alive, and close() (the control plane's stop) ends every stream.
import type { Request, Response } from 'express';

export interface DashboardEventsOptions {
  /** How often the snapshot is compared with the last one sent (default 500 ms). */
  pollMs?: number;
  /** How often an idle stream gets a comment line (default 15 s). */
  heartbeatMs?: number;
}

interface Client {
  res: Response;
  snapshot: () => string;
  /** The text last sent. */
  last: string;
}

export class DashboardEvents {
  private readonly pollMs: number;
  private readonly heartbeatMs: number;
  private readonly clients = new Set<Client>();
  private poll: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(opts: DashboardEventsOptions = {}) {
    this.pollMs = opts.pollMs ?? 500;
    this.heartbeatMs = opts.heartbeatMs ?? 15_000;
  }

  /** Connected clients (the timers run while there is one). */
  get clientCount(): number {
    return this.clients.size;
  }

  /** Whether the check and heartbeat timers are running. */
  get running(): boolean {
    return this.poll !== undefined || this.heartbeat !== undefined;
  }

  /**
   * Serves one stream whose first event is `first` (the caller computed it, so a failure is an
   * ordinary error answer); later events come from `snapshot`.
   */
  open(req: Request, res: Response, first: string, snapshot: () => string): void {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache',
      Connection: 'keep-alive',
      // Buffering reverse proxies (nginx) would hold the events back.
      'X-Accel-Buffering': 'no',
    });
    if (this.closed) {
      res.end();
      return;
    }
    const client: Client = { res, snapshot, last: first };
    res.write(event(first));
    this.clients.add(client);
    req.on('close', () => this.drop(client));
    res.on('close', () => this.drop(client));
    this.start();
  }

  /** Ends every stream and stops the timers; later streams end at once. */
  close(): void {
    this.closed = true;
    for (const c of [...this.clients]) {
      this.drop(c);
      c.res.end();
    }
  }

  private drop(client: Client): void {
    this.clients.delete(client);
    if (this.clients.size === 0) this.stop();
  }

  private start(): void {
    if (this.running) return;
    this.poll = setInterval(() => this.check(), this.pollMs).unref();
    this.heartbeat = setInterval(() => {
      for (const c of this.clients) c.res.write(': heartbeat\n\n');
    }, this.heartbeatMs).unref();
  }

  private stop(): void {
    clearInterval(this.poll);
    clearInterval(this.heartbeat);
    this.poll = this.heartbeat = undefined;
  }

  private check(): void {
    // One snapshot per source per check, whatever the number of clients.
    const texts = new Map<() => string, string | undefined>();
    for (const c of this.clients) {
      // A client that has not read what it got yet waits for the next check (and then the newest text).
      if (c.res.writableNeedDrain) continue;
      if (!texts.has(c.snapshot)) {
        try {
          texts.set(c.snapshot, c.snapshot());
        } catch {
          // Nothing to send this time (the error is the state endpoint's to report); try again next check.
          texts.set(c.snapshot, undefined);
        }
      }
      const text = texts.get(c.snapshot);
      if (text === undefined || text === c.last) continue;
      c.last = text;
      c.res.write(event(text));
    }
  }
}

/** One `state` event; JSON.stringify's text has no line breaks, so it is one data line. */
function event(text: string): string {
  return `event: state\ndata: ${text}\n\n`;
}
