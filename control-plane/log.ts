// Structured logs (pino): one line per meaningful event. JSON lines for machines; on a terminal
// (or with --log-format pretty) the same lines formatted for reading (observe/pretty-log.ts).
import { pino, type Logger } from 'pino';
import { prettyDestination } from './observe/pretty-log.ts';

export type { Logger };

import { LOG_FORMATS, type LogFormat } from './log-format-option.ts';

export { LOG_FORMATS, type LogFormat };

/** `auto`: pretty when stdout is a terminal, JSON otherwise. */
export function usePretty(format: LogFormat, isTTY = Boolean(process.stdout.isTTY)): boolean {
  return format === 'pretty' || (format === 'auto' && isTTY);
}

export function createLogger(
  level = process.env.MESHPILOT_LOG_LEVEL ?? 'info',
  format: LogFormat = (process.env.MESHPILOT_LOG_FORMAT as LogFormat | undefined) ?? 'auto',
): Logger {
  const base = { level, base: { app: 'meshpilot' } };
  // Synchronous writes: pino's default stdout writer is asynchronous, and a line still in flight at
  // process.exit could land after one flushed at exit (the stop lines came out swapped).
  const out = pino.destination({ dest: 1, sync: true });
  if (!usePretty(format)) return pino(base, out);
  const color = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
  return pino(base, prettyDestination(out, { color }));
}

export const silentLogger: Logger = pino({ level: 'silent' });
