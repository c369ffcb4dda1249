// Rate limit for log lines clients can cause at will (per stream: requests for unknown types,
// NACKs; per server: refused streams): the first few of each kind are logged, then at most one summary line per interval with
// how many were left out. No timers: a summary is written when the next event comes due, or when
// the stream closes.
import type { Logger } from '../log.ts';

interface Kind {
  logged: number;
  suppressed: number;
  lastSummary: number;
}

export class LogLimiter {
  private readonly kinds = new Map<string, Kind>();

  constructor(
    private readonly log: Logger,
    private readonly perKind: number,
    private readonly summaryMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Logs `msg` at warn level unless this stream has logged `kind` too often lately. */
  warn(kind: string, fields: Record<string, unknown>, msg: string): void {
    let k = this.kinds.get(kind);
    if (!k) this.kinds.set(kind, (k = { logged: 0, suppressed: 0, lastSummary: this.now() }));
    if (k.logged < this.perKind) {
      k.logged++;
      this.log.warn(fields, msg);
      return;
    }
    k.suppressed++;
    if (this.now() - k.lastSummary >= this.summaryMs) this.summarize(kind, k, fields);
  }

  /** Writes what is still untold (when the stream ends). */
  flush(fields: Record<string, unknown>): void {
    for (const [kind, k] of this.kinds) if (k.suppressed > 0) this.summarize(kind, k, fields);
  }

  private summarize(kind: string, k: Kind, fields: Record<string, unknown>): void {
    // Only who it was: the left-out events' own fields are what made them costly.
    this.log.warn({ proxy: fields.proxy, event: kind, suppressed: k.suppressed }, 'repeated stream events not logged');
    k.suppressed = 0;
    k.lastSummary = this.now();
  }
}
