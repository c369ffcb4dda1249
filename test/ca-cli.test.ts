// `meshpilot serve --xds-tls` as an operator runs it: the CA flags reach the CA (trust domain,
// certificate lifetime, token file, CA directory), the startup log names the trust bundle, and a
// second process on the same --ca-dir signs with the same root.
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { caClient, createCertificate } from './helpers/ca-client.ts';
import { chainVerifies, workloadCsr } from './helpers/ca-certs.ts';
import { spawnServe } from './helpers/serve-process.ts';
import { Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';

const teardown = new Teardown();
afterEach(() => teardown.run());

async function serve(args: string[]): Promise<{ lines: Array<Record<string, any>>; xds: string; stop: () => Promise<void> }> {
  const { lines, stop } = spawnServe(teardown, args);
  await waitFor(() => lines.some((l) => l.msg === 'xDS (ADS) server listening'), { description: 'xDS up', timeoutMs: 20_000 });
  return { lines, xds: String(lines.find((l) => l.msg === 'xDS (ADS) server listening')!.address), stop };
}

describe('meshpilot serve --xds-tls', () => {
  it('issues certificates as its flags say, and keeps its root across restarts', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'meshpilot-ca-cli-'));
    teardown.add(() => rmSync(dir, { recursive: true, force: true }));
    mkdirSync(path.join(dir, 'rules'));
    writeFileSync(path.join(dir, 'tokens'), 'cli-token shop cart\n', { mode: 0o600 });
    const caDir = path.join(dir, 'ca');
    const args = ['--config-dir', path.join(dir, 'rules'), '--xds-tls', '--ca-dir', caDir, '--trust-domain', 'example.org', '--workload-cert-ttl', '1h', '--ca-tokens', path.join(dir, 'tokens')];
    const first = await serve(args);
    const ready = first.lines.find((l) => String(l.msg).startsWith('mesh CA ready'))!;
    expect(ready).toMatchObject({ trustBundle: path.join(caDir, 'trust-bundle.pem'), trustDomain: 'example.org', maxWorkloadCertTtlSeconds: 3600 });
    const bundle = readFileSync(path.join(caDir, 'trust-bundle.pem'), 'utf8');

    const id = 'spiffe://example.org/ns/shop/sa/cart';
    const get = async (xds: string) => {
      const c = caClient(xds, { rootPem: bundle });
      try {
        return await createCertificate(c, (await workloadCsr([id])).csrPem, { token: 'cli-token', validitySeconds: 86400 });
      } finally {
        c.close();
      }
    };
    const before = Date.now();
    const chain = await get(first.xds);
    const leaf = new X509Certificate(chain[0]!);
    expect(leaf.subjectAltName).toBe(`URI:${id}`);
    expect(Date.parse(leaf.validTo)).toBeLessThanOrEqual(before + 3600_000 + 1000);
    await first.stop();

    // Same directory, new process: the same root signs, so the old bundle still verifies.
    const second = await serve(args);
    expect(chainVerifies(await get(second.xds), [bundle])).toBe(true);
    expect(second.lines.some((l) => l.level === 40 && /plaintext/.test(String(l.msg)))).toBe(false);
  });

  it('meshpilot ca rotate / status / activate: a staged root is published in the bundle at once and signs only when activated', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'meshpilot-ca-rotate-'));
    teardown.add(() => rmSync(dir, { recursive: true, force: true }));
    mkdirSync(path.join(dir, 'rules'));
    writeFileSync(path.join(dir, 'tokens'), 'cli-token shop cart\n', { mode: 0o600 });
    const caDir = path.join(dir, 'ca');
    const s = await serve(['--config-dir', path.join(dir, 'rules'), '--xds-tls', '--ca-dir', caDir, '--ca-tokens', path.join(dir, 'tokens')]);
    // The admin line comes after the xDS one that serve() waited for.
    await waitFor(() => s.lines.some((l) => l.msg === 'admin API listening'), { description: 'admin up', timeoutMs: 20_000 });
    const admin = `http://${String(s.lines.find((l) => l.msg === 'admin API listening')!.address)}`;
    const blocks = () => readFileSync(path.join(caDir, 'trust-bundle.pem'), 'utf8').match(/BEGIN CERTIFICATE/g)!.length;
    const oldBundle = readFileSync(path.join(caDir, 'trust-bundle.pem'), 'utf8');
    expect(blocks()).toBe(1);

    const rotate = await cli(['ca', 'rotate', '--admin', admin, '--activate-in', '2h']);
    expect(rotate.code, rotate.stderr).toBe(0);
    const staged = /new root (\w+) staged: in the trust bundle now, signing from (\S+)/.exec(rotate.stdout)!;
    expect(staged).not.toBeNull();
    expect(Date.parse(staged[2]!) - Date.now()).toBeGreaterThan(2 * 3600_000 - 60_000);
    expect(blocks()).toBe(2);
    // A certificate issued now still chains to the old root, and its answer carries both roots.
    const id = 'spiffe://cluster.local/ns/shop/sa/cart';
    const get = async () => {
      const c = caClient(s.xds, { rootPem: readFileSync(path.join(caDir, 'trust-bundle.pem'), 'utf8') });
      try {
        return await createCertificate(c, (await workloadCsr([id])).csrPem, { token: 'cli-token', validitySeconds: 3600 });
      } finally {
        c.close();
      }
    };
    const during = await get();
    expect(chainVerifies(during, [oldBundle])).toBe(true);
    expect(during.at(-1)!.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);

    const status = await cli(['ca', 'status', '--admin', admin]);
    expect(status.stdout).toMatch(new RegExp(`${staged[1]}  staged, signs from`));
    expect(status.stdout).toMatch(/  signing  /);
    // One rotation at a time.
    const again = await cli(['ca', 'rotate', '--admin', admin]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/409 a root is already staged/);

    const activate = await cli(['ca', 'activate', '--admin', admin]);
    expect(activate.code, activate.stderr).toBe(0);
    expect(activate.stdout).toMatch(new RegExp(`${staged[1]}  signing`));
    const after = await get();
    expect(chainVerifies(after, [oldBundle])).toBe(false);
    expect(chainVerifies(after, [readFileSync(path.join(caDir, 'trust-bundle.pem'), 'utf8')])).toBe(true);
    expect(chainVerifies(during, [readFileSync(path.join(caDir, 'trust-bundle.pem'), 'utf8')])).toBe(true);
    expect(s.lines.some((l) => l.msg === 'CA: root rotation started')).toBe(true);
  });
});

async function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [path.resolve('bin/meshpilot.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, stdout, stderr };
}
