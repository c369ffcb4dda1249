// The agent against a real CA over TLS: first certificate, the three files, renewals that a live
// gRPC TLS server picks up from those files, and an unreachable CA.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent, type RunningAgent } from '../control-plane/agent/agent.ts';
import { certFilePaths } from '../control-plane/agent/cert-files.ts';
import { splitPem } from '../control-plane/agent/chain.ts';
import { certMatchesKey } from '../control-plane/agent/keys.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { startTestCa, type TestCa } from './helpers/test-ca.ts';
import { waitFor } from './helpers/wait.ts';
import { loadEcho } from './helpers/backends.ts';

const SPIFFE = 'spiffe://cluster.local/ns/shop/sa/reviews';
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-agent-'));
  cleanups.push(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

async function setup(maxTtlSeconds: number) {
  const dir = tempDir();
  const tokenFile = path.join(dir, 'token');
  fs.writeFileSync(tokenFile, 'token-1\n');
  const ca = await startTestCa({ tokens: new Map([['token-1', 'shop/reviews']]), maxTtlSeconds });
  cleanups.push(() => ca.stop());
  const logs = captureLogs('debug');
  const outDir = path.join(dir, 'certs');
  const agent = await startAgent({
    identity: { trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'reviews' },
    ca: { address: ca.address, caRootPem: ca.rootPem, tokenFile },
    outDir,
    validitySeconds: 24 * 3600,
    logger: logs.logger,
    backoff: { initialMs: 100, maxMs: 400 },
  });
  cleanups.push(() => agent.stop());
  return { dir, tokenFile, ca, logs, outDir, agent, files: certFilePaths(outDir) };
}

const serialOf = (file: string) => new X509Certificate(fs.readFileSync(file)).serialNumber;

describe('agent certificates', () => {
  it('gets a certificate for its SPIFFE ID and writes chain, key and trust bundle', async () => {
    const { ca, agent, files } = await setup(3600);
    const cur = await agent.certs.ready();
    const chain = fs.readFileSync(files.certificateFile, 'utf8');
    const key = fs.readFileSync(files.privateKeyFile, 'utf8');
    expect(key).toMatch(/^-----BEGIN PRIVATE KEY-----/); // PKCS#8
    expect(createPrivateKey(key).asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(fs.statSync(files.privateKeyFile).mode & 0o007).toBe(0); // never world-readable
    const leaf = new X509Certificate(splitPem(chain)[0]!);
    expect(leaf.subjectAltName).toBe(`URI:${SPIFFE}`);
    expect(leaf.checkPrivateKey(createPrivateKey(key))).toBe(true);
    expect(leaf.verify(new X509Certificate(ca.rootPem).publicKey)).toBe(true);
    expect(splitPem(chain)).toHaveLength(1); // the root is not part of the presented chain
    expect(fs.readFileSync(files.caCertificateFile, 'utf8').trim()).toBe(ca.rootPem.trim());
    expect(cur.cert.serial).toBe(leaf.serialNumber);
    expect(ca.requests).toEqual([{ spiffeId: SPIFFE, token: 'token-1', clientCertUris: undefined, outcome: 'issued' }]);
    // Nothing but the three files (no temp files left behind).
    expect(fs.readdirSync(path.dirname(files.certificateFile)).sort()).toEqual(['cert-chain.pem', 'key.pem', 'root-cert.pem']);
  });

  it('renews several times while a gRPC TLS server on the files keeps accepting, and a reader never sees a mismatched pair', async () => {
    const { ca, agent, files, tokenFile, logs } = await setup(4);
    await agent.certs.ready();

    // A real grpc-js server whose identity is the agent's files (re-read every 100 ms), as gRPC's
    // file_watcher certificate provider reads them.
    const provider = new grpc.experimental.FileWatcherCertificateProvider({ ...files, refreshIntervalMs: 100 });
    const server = new grpc.Server();
    server.addService(loadEcho().service, { Call: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { service: 'reviews', version: 'v1', instance: 'a', request_headers: {} }) });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false), (e, p) => (e ? reject(e) : resolve(p))));
    cleanups.push(() => server.forceShutdown());

    // Poll the files as fast as the event loop allows: every read must parse and pair up.
    let reads = 0;
    let bad = '';
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const chain = await fs.promises.readFile(files.certificateFile, 'utf8').catch(() => '');
        const key = await fs.promises.readFile(files.privateKeyFile, 'utf8').catch(() => '');
        reads++;
        if (!certMatchesKey(chain, key)) bad ||= `read ${reads}: chain ${chain.length} bytes, key ${key.length} bytes do not pair`;
      }
    })();
    cleanups.push(async () => {
      polling = false;
      await poller;
    });

    // The token rotates on disk; the agent must send the new one.
    fs.writeFileSync(tokenFile, 'token-2');
    ca.tokens.set('token-2', 'shop/reviews');

    // Every connection is new (a fresh TLS handshake) and checks the server against the bundle.
    const seen = new Set<string>();
    const rootPem = fs.readFileSync(files.caCertificateFile);
    const Client = grpc.makeGenericClientConstructor(loadEcho().service, 'Echo') as unknown as new (...a: ConstructorParameters<typeof grpc.Client>) => grpc.Client & EchoCall;
    // Mesh peers are named by their SPIFFE ID, not by host: check that instead of 127.0.0.1.
    const spiffeOnly = { checkServerIdentity: (_h: string, cert: { subjectaltname?: string }) => (cert.subjectaltname === `URI:${SPIFFE}` ? undefined : new Error(`peer is ${cert.subjectaltname}`)) };
    let calls = 0;
    await waitFor(async () => {
      seen.add(await peerSerial(port, rootPem));
      const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createSsl(rootPem, null, null, spiffeOnly), { 'grpc.use_local_subchannel_pool': 1 });
      try {
        const reply = await new Promise<{ service: string }>((resolve, reject) => client.Call({}, { deadline: Date.now() + 5000 }, (e, r) => (e ? reject(e) : resolve(r!))));
        expect(reply.service).toBe('reviews');
      } finally {
        client.close();
      }
      calls++;
      return seen.size >= 4;
    }, { timeoutMs: 30_000, intervalMs: 100, description: 'the server presents 4 different agent certificates' });

    expect(bad).toBe('');
    expect(reads).toBeGreaterThan(10);
    expect(calls).toBeGreaterThan(seen.size);
    const renewals = logs.lines.filter((l) => l.msg === 'agent: certificate renewed');
    expect(renewals.length).toBeGreaterThanOrEqual(3);
    // Renewals present the current certificate and the rotated token.
    const later = ca.requests.slice(1);
    expect(later.every((r) => r.outcome === 'issued' && r.clientCertUris?.[0] === SPIFFE)).toBe(true);
    expect(later.at(-1)!.token).toBe('token-2');
  });

  it('keeps the current certificate while the CA is down, retries, and renews once it is back', async () => {
    const { ca, agent, files, logs } = await setup(4);
    const first = await agent.certs.ready();
    await ca.stop();
    await waitFor(() => logs.lines.filter((l) => l.msg === 'agent: certificate request failed; retrying').length >= 3, { timeoutMs: 20_000, description: 'failed attempts' });
    expect(agent.certs.current()!.cert.serial).toBe(first.cert.serial);
    expect(serialOf(files.certificateFile)).toBe(first.cert.serial);
    await ca.restart();
    await waitFor(() => serialOf(files.certificateFile) !== first.cert.serial, { timeoutMs: 20_000, description: 'renewed after the CA came back' });
    expect(certMatchesKey(fs.readFileSync(files.certificateFile, 'utf8'), fs.readFileSync(files.privateKeyFile, 'utf8'))).toBe(true);
    expect(agent.certs.current()!.cert.serial).toBe(serialOf(files.certificateFile));
  });
});

type EchoCall = { Call(req: object, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: { service: string }) => void): void };

/** The serial of the certificate the server at `port` presents, by a plain TLS handshake. */
function peerSerial(port: number, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca, ALPNProtocols: ['h2'], servername: undefined, checkServerIdentity: () => undefined }, () => {
      const serial = s.getPeerCertificate().serialNumber;
      s.destroy();
      resolve(serial);
    });
    s.on('error', reject);
  });
}
