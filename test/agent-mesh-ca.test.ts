// The agent against meshpilot's own CA (serve --xds-tls): its first certificate comes with a
// bootstrap token, and renewals keep working with the token gone, on the certificate alone.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent } from '../control-plane/agent/agent.ts';
import { certFilePaths } from '../control-plane/agent/cert-files.ts';
import { startControlPlane } from '../control-plane/server.ts';
import { chainVerifies } from './helpers/ca-certs.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { waitFor } from './helpers/wait.ts';

const ID = 'spiffe://cluster.local/ns/default/sa/productpage';
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('meshpilot agent with the mesh CA', () => {
  it('gets its first certificate with a token and renews on its certificate alone', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-agent-ca-'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.mkdirSync(path.join(dir, 'rules'));
    const tokens = path.join(dir, 'tokens');
    fs.writeFileSync(tokens, 'token-pp default productpage\n', { mode: 0o600 });
    const tokenFile = path.join(dir, 'token');
    fs.writeFileSync(tokenFile, 'token-pp\n');
    // Workload certificates live 6 s: the agent renews every few seconds.
    const cp = await startControlPlane({ configDir: path.join(dir, 'rules'), xdsListen: '127.0.0.1:0', adminListen: null, logger: captureLogs().logger, xdsTls: { dir: path.join(dir, 'ca'), tokensFile: tokens, workloadCertTtlMs: 6000 } });
    cleanups.push(() => cp.stop());
    const bundle = fs.readFileSync(cp.ca!.trustBundlePath, 'utf8');
    const outDir = path.join(dir, 'certs');
    const agent = await startAgent({
      identity: { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'productpage' },
      ca: { address: cp.xdsAddress, caRootPem: bundle, tokenFile },
      outDir,
      validitySeconds: 3600,
      logger: captureLogs().logger,
      backoff: { initialMs: 100, maxMs: 400 },
    });
    cleanups.push(() => agent.stop());
    const first = await agent.certs.ready();
    const files = certFilePaths(outDir);
    const chain = fs.readFileSync(files.certificateFile, 'utf8');
    expect(chainVerifies([chain, bundle], [bundle])).toBe(true);
    expect(new X509Certificate(chain).subjectAltName).toBe(`URI:${ID}`);
    // The token goes away (a bootstrap token is for the first certificate only here).
    fs.writeFileSync(tokenFile, '');
    const serials = new Set([first.cert.serial]);
    await waitFor(() => {
      serials.add(new X509Certificate(fs.readFileSync(files.certificateFile)).serialNumber);
      return serials.size >= 3;
    }, { timeoutMs: 20_000, intervalMs: 100, description: 'two renewals without a token' });
  });
});
