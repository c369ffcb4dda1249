// A pino logger whose JSON lines are kept, parsed, for a test to read (`lines` fills as it logs).
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

export interface CapturedLogs {
  logger: Logger;
  lines: Array<Record<string, any>>;
}

export function captureLogs(level = 'info'): CapturedLogs {
  const lines: Array<Record<string, any>> = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line.trim()) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level }, sink), lines };
}
