// `meshpilot serve` as a child process, as an operator runs it (the built CLI, bin/meshpilot.js):
// its JSON log lines collected as they come, and a SIGTERM in teardown.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Teardown } from './test-mesh.ts';

export interface ServeProcess {
  child: ChildProcess;
  /** Every stdout line that is JSON (a log line), parsed, in order. */
  lines: Array<Record<string, any>>;
  /** SIGTERM, then wait for the exit (nothing when it has exited already). */
  stop: () => Promise<void>;
}

/** `serve` on 127.0.0.1:0 for xDS and the admin API, plus `args`. */
export function spawnServe(teardown: Teardown, args: string[]): ServeProcess {
  const child = spawn(process.execPath, [path.resolve('bin/meshpilot.js'), 'serve', '--xds-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Array<Record<string, any>> = [];
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      try {
        lines.push(JSON.parse(buf.slice(0, i)));
      } catch {
        /* not a log line */
      }
      buf = buf.slice(i + 1);
    }
  });
  const stop = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  };
  teardown.add(stop);
  return { child, lines, stop };
}
