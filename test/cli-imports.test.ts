// What each command line loads: `--help` and the offline commands must not load the server's
// packages (the Kubernetes client alone is about 800 modules), because every CLI call, every probe
// and every container start would pay for them. Checked by module, not by time (tests never assert
// wall-clock times; `npm run bench -- --only startup` measures those).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const BIN = path.resolve('bin/meshpilot.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-imports-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

// A module load hook (run with --import) that appends every module URL loaded through `import` to
// the file in MESHPILOT_LOADED_LOG. Packages are imported from our ESM code, so each package's
// entry shows up even where the package itself is CommonJS.
const hook = path.join(tmp, 'record-loads.mjs');
fs.writeFileSync(hook, `import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(\`
import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  appendFileSync(process.env.MESHPILOT_LOADED_LOG, url + '\\\\n');
  return next(url, context);
}\`));
`);

/** The packages (node_modules/<name>) a command line loads (`failing`: it is expected to exit non-zero). */
async function packagesLoaded(name: string, ...args: string[]): Promise<Set<string>> {
  return loadedBy(name, false, args);
}

async function loadedBy(name: string, failing: boolean, args: string[]): Promise<Set<string>> {
  const log = path.join(tmp, `${name}.txt`);
  const done = run(process.execPath, ['--import', hook, BIN, ...args], { timeout: 30_000, env: { ...process.env, MESHPILOT_LOADED_LOG: log } });
  if (failing) await expect(done).rejects.toThrow();
  else await done;
  const urls = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean);
  expect(urls.some((u) => u.endsWith('/dist/cli.js'))).toBe(true); // the hook saw the CLI itself
  return new Set(urls.flatMap((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1] ?? []));
}

const SERVER_PACKAGES = ['@kubernetes/client-node', '@grpc/grpc-js', '@grpc/proto-loader', 'express', 'prom-client', '@peculiar/x509', 'pino'];

describe('what the command line loads', () => {
  it('--help loads commander and nothing of the pipeline or the server', async () => {
    const pkgs = await packagesLoaded('help', '--help');
    expect(pkgs.has('commander')).toBe(true);
    for (const p of [...SERVER_PACKAGES, 'protobufjs', 'zod', 'yaml']) expect([...pkgs]).not.toContain(p);
  });

  it('validate loads the pipeline and Envoy\'s protos, not the server', async () => {
    const pkgs = await packagesLoaded('validate', 'validate', '--config-dir', 'examples/bookinfo');
    expect(pkgs.has('protobufjs')).toBe(true);
    expect(pkgs.has('zod')).toBe(true);
    for (const p of SERVER_PACKAGES) expect([...pkgs]).not.toContain(p);
  });

  it('serve on files loads neither the Kubernetes client nor the CA\'s X.509 code', async () => {
    // serve stops after loading everything: its xDS port is taken (one line, exit 1).
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const pkgs = await loadedBy('serve-files', true, ['serve', '--config-dir', 'examples/bookinfo', '--xds-listen', `127.0.0.1:${port}`, '--admin-listen', '127.0.0.1:0']);
      expect(pkgs.has('@grpc/grpc-js')).toBe(true);
      expect([...pkgs]).not.toContain('@kubernetes/client-node');
      expect([...pkgs]).not.toContain('@peculiar/x509');
    } finally {
      taken.close();
    }
  });

  it('a command\'s --help loads no more than the top-level --help', async () => {
    for (const cmd of ['serve', 'agent', 'webhook', 'explain']) {
      const pkgs = await packagesLoaded(`${cmd}-help`, cmd, '--help');
      for (const p of [...SERVER_PACKAGES, 'protobufjs', 'zod']) expect([...pkgs], cmd).not.toContain(p);
    }
  });
});
