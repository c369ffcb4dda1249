// Structured logs (pino): one line per meaningful event.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level = process.env.MESHPILOT_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { app: 'meshpilot' } });
}

export const silentLogger: Logger = pino({ level: 'silent' });
