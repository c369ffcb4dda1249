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
import { Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';

const teardown = new Teardown();
afterEach(() => teardown.run());

async function serve(args: string[]): Promise<{ lines: Array<Record<string, any>>; xds: string; stop: () => Promise<void> }> {
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
});
