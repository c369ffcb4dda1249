// The built CLI (bin/meshpilot.js) as a user runs it, for tests of commands that talk to an admin API.
import { execFile } from 'node:child_process';
import path from 'node:path';

const BIN = path.resolve('bin/meshpilot.js');

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `meshpilot ...args` with `env` added; MESHPILOT_ADMIN from the environment running the tests does not leak in. */
export function meshpilot(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const { MESHPILOT_ADMIN: _drop, ...base } = process.env;
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 30_000, env: { ...base, ...env } }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
