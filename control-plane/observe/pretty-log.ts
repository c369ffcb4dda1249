// Logs for a person at a terminal: pino still makes every JSON line, and this destination turns
// each into one readable line before it is written:
//   14:03:07.123 INFO  xDS (ADS) server listening address=127.0.0.1:15010 tls=false
// local time, the level, the message, then the other fields as key=value (strings bare unless they
// need quotes, anything else as JSON). An error's stack follows on indented lines.
import type { DestinationStream } from 'pino';

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const COLORS: Record<number, string> = { 10: '90', 20: '36', 30: '32', 40: '33', 50: '31', 60: '35' };
/** Fields every line carries that a reader does not need: the time and level are shown up front. */
const HIDDEN = new Set(['time', 'level', 'msg', 'pid', 'hostname', 'app']);

export interface PrettyOptions {
  /** ANSI colour for the level (a terminal that wants it). */
  color?: boolean;
}

/** One pino JSON line to its pretty form (no trailing newline). A line that is not JSON is kept as it is. */
export function formatLogLine(line: string, o: PrettyOptions = {}): string {
  let rec: Record<string, unknown>;
  try {
    const v: unknown = JSON.parse(line);
    if (!v || typeof v !== 'object' || Array.isArray(v)) return line.trimEnd();
    rec = v as Record<string, unknown>;
  } catch {
    return line.trimEnd();
  }
  const level = typeof rec['level'] === 'number' ? rec['level'] : 30;
  const label = (LEVELS[level] ?? `L${level}`).padEnd(5);
  const parts = [clock(rec['time']), o.color && COLORS[level] ? `\x1b[${COLORS[level]}m${label}\x1b[0m` : label];
  if (typeof rec['msg'] === 'string' && rec['msg'] !== '') parts.push(rec['msg']);
  let stack: string | undefined;
  for (const [key, value] of Object.entries(rec)) {
    if (HIDDEN.has(key) || value === undefined) continue;
    if (isSerializedError(value)) {
      parts.push(`${key}=${quote(value.message)}`);
      stack ??= value.stack;
      continue;
    }
    parts.push(`${key}=${typeof value === 'string' ? quote(value) : JSON.stringify(value)}`);
  }
  const head = parts.join(' ');
  // The stack's first line repeats the message: only the frames are added.
  const frames = stack?.split('\n').slice(1).map((l) => `    ${l.trim()}`);
  return frames?.length ? [head, ...frames].join('\n') : head;
}

/** HH:MM:SS.mmm in local time. */
function clock(time: unknown): string {
  const d = new Date(typeof time === 'number' || typeof time === 'string' ? time : Date.now());
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

function quote(s: string): string {
  return s !== '' && /^[^\s"'=\\]+$/.test(s) ? s : JSON.stringify(s);
}

function isSerializedError(v: unknown): v is { message: string; stack?: string } {
  return Boolean(v) && typeof v === 'object' && typeof (v as { message?: unknown }).message === 'string' && typeof (v as { type?: unknown }).type === 'string';
}

/** A pino destination writing pretty lines to `out` (a stream with write(string)). */
export function prettyDestination(out: { write(text: string): unknown }, o: PrettyOptions = {}): DestinationStream {
  return {
    write(chunk: string) {
      // pino writes one JSON line per call; split anyway in case it ever batches.
      let text = '';
      for (const line of chunk.split('\n')) if (line.trim()) text += `${formatLogLine(line, o)}\n`;
      if (text) out.write(text);
    },
  };
}
