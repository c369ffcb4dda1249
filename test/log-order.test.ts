// Log lines leave in the order they were logged, even when the process exits right after one while
// libuv's thread pool is busy (an asynchronous stdout writer let the line written at exit overtake
// one still queued in the pool: "stopped" came out before "stopping"). Runs the built logger.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const LOG = pathToFileURL(path.resolve('dist/log.js')).href;

const script = `
import crypto from 'node:crypto';
import { createLogger } from ${JSON.stringify(LOG)};
const log = createLogger('info', process.argv[1]);
for (let i = 0; i < 4; i++) crypto.pbkdf2('x', 'y', 20000, 32, 'sha256', () => {});
log.info('first');
Promise.resolve().then(() => { log.info('second'); process.exit(0); });
`;

describe('log lines at exit', () => {
  for (const format of ['json', 'pretty']) {
    it(`keep their order with the thread pool busy (${format})`, async () => {
      for (let i = 0; i < 3; i++) {
        const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script, format], { timeout: 30_000 });
        const lines = stdout.trimEnd().split('\n');
        expect(lines.map((l) => /first|second/.exec(l)?.[0])).toEqual(['first', 'second']);
      }
    });
  }
});
