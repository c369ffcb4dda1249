// The CA over the wire: meshpilot serving xDS with --xds-tls, real grpc-js clients over TLS that
// trust only the CA's bundle, bootstrap tokens, renewal with the issued client certificate, the
// identity of an xDS stream from its certificate, /debug/certs and the CA metrics.
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { startControlPlane, type ControlPlane } from '../control-plane/server.ts';
import { adsStreamOverTls, caClient, createCertificate } from './helpers/ca-client.ts';
import { chainVerifies, workloadCsr } from './helpers/ca-certs.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { getJson, metricValue, scrape } from './helpers/admin-http.ts';
import { waitFor } from './helpers/wait.ts';

const ID = 'spiffe://cluster.local/ns/default/sa/productpage';
const TOKEN = 'bootstrap-token-productpage-0123456789';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function start(extra: { tokens?: string } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'meshpilot-ca-svc-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const configDir = join(dir, 'rules');
  const caDir = join(dir, 'ca');
  const tokensFile = join(dir, 'tokens');
  mkdirSync(configDir); // no rules: the CA needs none
  writeFileSync(tokensFile, extra.tokens ?? `# token namespace serviceAccount\n${TOKEN} default productpage\n`, { mode: 0o600 });
  const logs = captureLogs();
  const cp: ControlPlane = await startControlPlane({ configDir, xdsListen: '127.0.0.1:0', adminListen: '127.0.0.1:0', logger: logs.logger, xdsTls: { dir: caDir, tokensFile, workloadCertTtlMs: 3600_000 } });
  cleanups.push(() => cp.stop());
  const bundle = readFileSync(cp.ca!.trustBundlePath, 'utf8');
  return { cp, logs, bundle, tokensFile, admin: `http://${cp.adminAddress}` };
}

function client(address: string, tls: Parameters<typeof caClient>[1]) {
  const c = caClient(address, tls);
  cleanups.push(() => c.close());
  return c;
}

describe('CA service on the xDS port (TLS)', () => {
  it('issues a certificate for a bootstrap token, renews with it, refuses other identities and no credential', async () => {
    const { cp, logs, bundle, admin } = await start();
    const startup = logs.lines.find((l) => l.msg?.startsWith('mesh CA ready'));
    expect(startup?.trustBundle).toBe(cp.ca!.trustBundlePath);
    const c = client(cp.xdsAddress, { rootPem: bundle });

    const w = await workloadCsr([ID]);
    const before = Date.now();
    const chain = await createCertificate(c, w.csrPem, { token: TOKEN, validitySeconds: 30 * 24 * 3600 });
    expect(chain).toHaveLength(2);
    expect(chainVerifies(chain, [bundle])).toBe(true);
    const leaf = new X509Certificate(chain[0]!);
    expect(leaf.subjectAltName).toBe(`URI:${ID}`);
    expect(leaf.ca).toBe(false);
    expect(new Date(leaf.validTo).getTime()).toBeLessThanOrEqual(before + 3600_000 + 1000); // capped at --workload-cert-ttl

    // Another identity with productpage's token: refused, and the log names both identities.
    const reviews = await workloadCsr(['spiffe://cluster.local/ns/default/sa/reviews']);
    await expect(createCertificate(c, reviews.csrPem, { token: TOKEN })).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    const denial = logs.lines.find((l) => l.msg?.includes('denied'));
    expect(denial).toMatchObject({ authenticated: ID, requested: 'spiffe://cluster.local/ns/default/sa/reviews' });

    // No credential, or a token nobody issued.
    await expect(createCertificate(c, w.csrPem)).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    await expect(createCertificate(c, w.csrPem, { token: 'guessed' })).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });

    // Renewal: the issued certificate as the client certificate, no token.
    const renewer = client(cp.xdsAddress, { rootPem: bundle, certChainPem: chain[0]!, keyPem: w.keyPem });
    const w2 = await workloadCsr([ID]);
    const renewed = await createCertificate(renewer, w2.csrPem);
    expect(new X509Certificate(renewed[0]!).subjectAltName).toBe(`URI:${ID}`);
    expect(new X509Certificate(renewed[0]!).checkPrivateKey((await import('node:crypto')).createPrivateKey(w2.keyPem))).toBe(true);
    // ...and only for its own identity.
    await expect(createCertificate(renewer, reviews.csrPem)).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });

    const text = await scrape(admin);
    expect(metricValue(text, 'meshpilot_certs_issued_total', { outcome: 'issued' })).toBe(2);
    expect(metricValue(text, 'meshpilot_certs_issued_total', { outcome: 'denied' })).toBe(2);
    expect(metricValue(text, 'meshpilot_certs_issued_total', { outcome: 'unauthenticated' })).toBe(2);
    const expiry = metricValue(text, 'meshpilot_ca_root_expiry_seconds');
    expect(expiry).toBeGreaterThan(9 * 365 * 86400);

    const certs = await getJson(`${admin}/debug/certs`);
    expect(certs.status).toBe(200);
    expect(certs.body.roots).toHaveLength(1);
    expect(certs.body.roots[0]).toMatchObject({ signing: true, serial: cp.ca!.roots()[0]!.serialNumber });
    const renewedSerial = new X509Certificate(renewed[0]!).serialNumber.toLowerCase();
    expect(certs.body.issued).toEqual([expect.objectContaining({ identity: ID, serial: renewedSerial, notAfter: new Date(new X509Certificate(renewed[0]!).validTo).toISOString() })]);
  });

  it('a client certificate from another CA is not a credential (the TLS connection is accepted, the call refused)', async () => {
    const { cp, bundle } = await start();
    // A workload certificate for the same ID from a stranger CA (its own --ca-dir).
    const stranger = await startControlPlane({ configDir: mkdtempSync(join(tmpdir(), 'meshpilot-ca-rules-')), xdsListen: '127.0.0.1:0', adminListen: null, logger: captureLogs().logger, xdsTls: { dir: mkdtempSync(join(tmpdir(), 'meshpilot-ca-other-')), tokensFile: join(tmpdir(), `meshpilot-no-such-tokens-${process.pid}`) } });
    cleanups.push(() => stranger.stop());
    const w = await workloadCsr([ID]);
    const forged = await stranger.ca!.sign(w.csrPem, { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'productpage' });
    const c = client(cp.xdsAddress, { rootPem: bundle, certChainPem: forged.chain[0]!, keyPem: w.keyPem });
    await expect(createCertificate(c, (await workloadCsr([ID])).csrPem)).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
  });

  it('re-reads the token file when it changes: a new token works, a removed one stops working', async () => {
    const { cp, bundle, tokensFile } = await start();
    const c = client(cp.xdsAddress, { rootPem: bundle });
    const csr = (await workloadCsr(['spiffe://cluster.local/ns/shop/sa/cart'])).csrPem;
    await expect(createCertificate(c, csr, { token: 'cart-token' })).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    writeFileSync(tokensFile, 'cart-token shop cart\n');
    await waitFor(async () => (await createCertificate(c, csr, { token: 'cart-token' })).length === 2, { description: 'new token accepted' });
    await expect(createCertificate(c, (await workloadCsr([ID])).csrPem, { token: TOKEN })).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
  });

  it('an xDS stream over TLS carries the identity its client certificate proved', async () => {
    const { cp, bundle } = await start();
    const w = await workloadCsr([ID]);
    const chain = await createCertificate(client(cp.xdsAddress, { rootPem: bundle }), w.csrPem, { token: TOKEN });
    const withCert = adsStreamOverTls(cp.xdsAddress, { rootPem: bundle, certChainPem: chain[0]!, keyPem: w.keyPem }, 'sidecar~10.0.0.1~productpage-1.default~default.svc.cluster.local');
    const without = adsStreamOverTls(cp.xdsAddress, { rootPem: bundle }, 'sidecar~10.0.0.2~anon-1.default~default.svc.cluster.local');
    for (const s of [withCert, without]) cleanups.push(() => (s.call.cancel(), s.client.close()));
    const byNode = () => new Map([...cp.ads.streams].filter((s) => s.proxy).map((s) => [s.proxy!.id.split('~')[1], cp.ads.peerIdentity(s)]));
    await waitFor(() => byNode().size === 2, { description: 'both streams said who they are' });
    expect(byNode().get('10.0.0.1')).toBe(ID);
    expect(byNode().get('10.0.0.2')).toBeUndefined();
  });

  it('refuses an xDS stream whose node claims another namespace or service account than its certificate, and shows verified identities', async () => {
    const { cp, bundle, admin, logs } = await start();
    const w = await workloadCsr([ID]);
    const chain = await createCertificate(client(cp.xdsAddress, { rootPem: bundle }), w.csrPem, { token: TOKEN });
    const tls = { rootPem: bundle, certChainPem: chain[0]!, keyPem: w.keyPem };
    const ended = (s: ReturnType<typeof adsStreamOverTls>) =>
      new Promise<grpc.ServiceError>((resolve) => s.call.on('error', (e) => resolve(e as grpc.ServiceError)));
    // A node in another namespace, with the productpage certificate of namespace default.
    const other = adsStreamOverTls(cp.xdsAddress, tls, 'sidecar~10.0.0.3~reviews-1.prod~prod.svc.cluster.local');
    cleanups.push(() => (other.call.cancel(), other.client.close()));
    const err = await ended(other);
    expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(err.details).toBe(`node sidecar~10.0.0.3~reviews-1.prod~prod.svc.cluster.local claims namespace prod, but its certificate is ${ID}`);
    expect(logs.lines.some((l) => l.msg === 'xDS stream refused: node does not match its certificate')).toBe(true);
    // The right namespace is served, and /debug/proxies says who it proved to be.
    const own = adsStreamOverTls(cp.xdsAddress, tls, 'sidecar~10.0.0.1~productpage-1.default~default.svc.cluster.local');
    cleanups.push(() => (own.call.cancel(), own.client.close()));
    await waitFor(async () => (await getJson(`${admin}/debug/proxies`)).body.proxies.length === 1, { description: 'the matching stream to be served' });
    expect((await getJson(`${admin}/debug/proxies`)).body.proxies[0].identity).toBe(ID);
  });

  it('--xds-require-identity refuses a stream without a workload certificate; the CA stays open to tokens', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshpilot-ca-req-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    mkdirSync(join(dir, 'rules'));
    writeFileSync(join(dir, 'tokens'), `${TOKEN} default productpage\n`, { mode: 0o600 });
    const cp = await startControlPlane({ configDir: join(dir, 'rules'), xdsListen: '127.0.0.1:0', adminListen: null, logger: captureLogs().logger, xdsTls: { dir: join(dir, 'ca'), tokensFile: join(dir, 'tokens'), requireIdentity: true } });
    cleanups.push(() => cp.stop());
    const bundle = readFileSync(cp.ca!.trustBundlePath, 'utf8');
    const anon = adsStreamOverTls(cp.xdsAddress, { rootPem: bundle }, 'sidecar~10.0.0.2~anon-1.default~default.svc.cluster.local');
    cleanups.push(() => (anon.call.cancel(), anon.client.close()));
    const err = await new Promise<grpc.ServiceError>((resolve) => anon.call.on('error', (e) => resolve(e as grpc.ServiceError)));
    expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
    const w = await workloadCsr([ID]);
    const chain = await createCertificate(client(cp.xdsAddress, { rootPem: bundle }), w.csrPem, { token: TOKEN });
    const own = adsStreamOverTls(cp.xdsAddress, { rootPem: bundle, certChainPem: chain[0]!, keyPem: w.keyPem }, 'sidecar~10.0.0.1~productpage-1.default~default.svc.cluster.local');
    cleanups.push(() => (own.call.cancel(), own.client.close()));
    await waitFor(() => [...cp.ads.streams].some((s) => s.proxy && cp.ads.peerIdentity(s) === ID), { description: 'the stream with a certificate to be served' });
  });

  it('without --xds-tls: plaintext xDS, a warning, no CA service', async () => {
    const logs = captureLogs();
    const dir = mkdtempSync(join(tmpdir(), 'meshpilot-ca-plain-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const cp = await startControlPlane({ configDir: dir, xdsListen: '127.0.0.1:0', adminListen: '127.0.0.1:0', logger: logs.logger });
    cleanups.push(() => cp.stop());
    expect(logs.lines.filter((l) => l.level === 40 && /plaintext/.test(l.msg))).toHaveLength(1);
    const plain = client(cp.xdsAddress, 'plaintext');
    await expect(createCertificate(plain, (await workloadCsr([ID])).csrPem, { token: TOKEN })).rejects.toMatchObject({ code: grpc.status.UNIMPLEMENTED });
    expect((await getJson(`http://${cp.adminAddress}/debug/certs`)).status).toBe(404);
  });

  it('--xds-plaintext-listen: ADS in plaintext on a second address, a warning, the CA not reachable there (TLS port unchanged)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshpilot-ca-plainlisten-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    mkdirSync(join(dir, 'rules'));
    writeFileSync(join(dir, 'tokens'), `${TOKEN} default productpage\n`, { mode: 0o600 });
    const logs = captureLogs();
    const cp = await startControlPlane({ configDir: join(dir, 'rules'), xdsListen: '127.0.0.1:0', xdsPlaintextListen: '127.0.0.1:0', adminListen: null, logger: logs.logger, xdsTls: { dir: join(dir, 'ca'), tokensFile: join(dir, 'tokens') } });
    cleanups.push(() => cp.stop());
    expect(cp.xdsPlaintextAddress).toMatch(/^127\.0\.0\.1:[1-9]\d*$/);
    expect(cp.xdsPlaintextAddress).not.toBe(cp.xdsAddress);
    expect(logs.lines.filter((l) => l.level === 40 && /not authenticated/.test(l.msg))).toHaveLength(1);
    const bundle = readFileSync(cp.ca!.trustBundlePath, 'utf8');
    // ADS over plaintext is served, with no identity.
    const plainAds = adsStreamOverTls(cp.xdsPlaintextAddress!, 'plaintext', 'sidecar~10.0.0.9~grpc-1.default~default.svc.cluster.local');
    cleanups.push(() => (plainAds.call.cancel(), plainAds.client.close()));
    await waitFor(() => [...cp.ads.streams].some((s) => s.proxy?.id.includes('10.0.0.9')), { description: 'the plaintext stream to be served' });
    expect([...cp.ads.streams].filter((s) => s.proxy).map((s) => cp.ads.peerIdentity(s))).toEqual([undefined]);
    // The CA is not there (a valid token in the clear is refused before it is looked at).
    const csr = (await workloadCsr([ID])).csrPem;
    await expect(createCertificate(client(cp.xdsPlaintextAddress!, 'plaintext'), csr, { token: TOKEN })).rejects.toMatchObject({ code: grpc.status.UNIMPLEMENTED });
    expect(logs.lines.some((l) => l.msg === 'workload certificate issued')).toBe(false);
    // The TLS port is TLS only and still issues.
    await expect(createCertificate(client(cp.xdsAddress, 'plaintext'), csr, { token: TOKEN })).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    expect(await createCertificate(client(cp.xdsAddress, { rootPem: bundle }), csr, { token: TOKEN })).toHaveLength(2);
  });

  it('--xds-plaintext-listen is refused without --xds-tls and with --xds-require-identity', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshpilot-ca-plainbad-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const base = { configDir: dir, xdsListen: '127.0.0.1:0', xdsPlaintextListen: '127.0.0.1:0', adminListen: null, logger: captureLogs().logger };
    await expect(startControlPlane(base)).rejects.toThrow(/only meaningful with TLS/);
    await expect(startControlPlane({ ...base, xdsTls: { dir: join(dir, 'ca'), requireIdentity: true } })).rejects.toThrow(/require-identity/);
  });
});
