// Cluster mode: the CA's state in Secrets of the config cluster, through @kubernetes/client-node
// against the wire-level fake API server: meshpilot's root made once and shared by restarts and
// replicas (Secret meshpilot-ca), Istio's plug-in CA from Secret cacerts.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { Authority } from '../control-plane/ca/authority.ts';
import { startControlPlane } from '../control-plane/server.ts';
import { FakeApiServer } from './helpers/fake-apiserver.ts';
import { caClient, createCertificate } from './helpers/ca-client.ts';
import { chainVerifies, workloadCsr, writePluginCa } from './helpers/ca-certs.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { waitFor } from './helpers/wait.ts';

const NS = 'meshpilot-system';
const CART = { trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'cart' };
const CART_ID = 'spiffe://cluster.local/ns/shop/sa/cart';
const OPTS = { trustDomain: 'cluster.local' };

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function apiServer(): Promise<{ api: FakeApiServer; kc: () => KubeConfig }> {
  const api = await FakeApiServer.start('ca-secret');
  cleanups.push(() => api.close());
  // A fresh KubeConfig per CA: as separate processes (replicas, restarts) would have.
  return { api, kc: () => { const k = new KubeConfig(); k.loadFromString(api.kubeconfig()); return k; } };
}

function secretText(api: FakeApiServer, name: string, key: string): string | undefined {
  const s = api.get('v1', 'Secret', NS, name) as { data?: Record<string, string> } | undefined;
  const v = s?.data?.[key];
  return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8');
}

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'meshpilot-ca-secret-'));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

describe('mesh CA state in Kubernetes Secrets', () => {
  it('the first start makes the root and creates Secret meshpilot-ca; a restart signs with the same root', async () => {
    const { api, kc } = await apiServer();
    const first = await Authority.openSecrets(kc(), NS, OPTS);
    expect(first.mode).toBe('self-signed');
    expect(first.createdRoot).toBe(true);
    const creates = api.requests.filter((r) => r.method === 'POST' && r.path === `/api/v1/namespaces/${NS}/secrets`);
    expect(creates.map((r) => r.status)).toEqual([201]);
    const rootPem = secretText(api, 'meshpilot-ca', 'root-cert.pem')!;
    expect(new X509Certificate(rootPem).raw.equals(Buffer.from(first.roots()[0]!.rawData))).toBe(true);
    expect(secretText(api, 'meshpilot-ca', 'root-key.pem')).toMatch(/PRIVATE KEY/);
    expect(first.trustBundlePath).toBe(`Secret ${NS}/meshpilot-ca (trust-bundle.pem)`);

    // A new instance (a restart): no new root, no create; what it signs chains to the first root.
    const again = await Authority.openSecrets(kc(), NS, OPTS);
    expect(again.createdRoot).toBe(false);
    expect(again.roots()[0]!.serialNumber).toBe(first.roots()[0]!.serialNumber);
    expect(api.requests.filter((r) => r.method === 'POST').length).toBe(1);
    const r = await again.sign((await workloadCsr([CART_ID])).csrPem, CART);
    expect(chainVerifies(r.chain, [rootPem])).toBe(true);

    // A rotation is written back to the Secret (the old root kept as retired), and a restart loads it.
    await again.rotateRoot();
    const rotated = await Authority.openSecrets(kc(), NS, OPTS);
    expect(rotated.roots().map((c) => c.serialNumber)).toEqual([again.roots()[0]!.serialNumber, first.roots()[0]!.serialNumber]);
    expect(JSON.parse(secretText(api, 'meshpilot-ca', 'retired-roots.json')!)).toHaveLength(1);
    // The first instance read the Secret before the rotation: it must not overwrite it.
    await expect(first.rotateRoot()).rejects.toThrow(/changed by someone else/);
    expect((await Authority.openSecrets(kc(), NS, OPTS)).roots()[0]!.serialNumber).toBe(again.roots()[0]!.serialNumber);

    // Two-phase: a staged root is in the Secret (key and time) and in its bundle; a replica
    // opened after its time signs with it even though nobody wrote the switch yet.
    let now = Date.now();
    const watcher = await Authority.openSecrets(kc(), NS, { ...OPTS, now: () => now });
    const stager = await Authority.openSecrets(kc(), NS, { ...OPTS, now: () => now });
    const staged = await stager.stageRoot(new Date(now + 60_000));
    stager.close();
    // A replica opened before the staging sees it only after re-reading the Secret.
    expect(watcher.rootInfo().some((r) => r.serial === staged.serial)).toBe(false);
    let told = 0;
    watcher.onChange(() => told++);
    expect(await watcher.reloadFromSecret()).toBe(true);
    expect(told).toBe(1);
    expect(watcher.rootInfo().find((r) => r.serial === staged.serial)).toMatchObject({ signing: false, activateAt: staged.activateAt });
    expect(watcher.bundlePem().match(/BEGIN CERTIFICATE/g)).toHaveLength(3);
    expect(await watcher.reloadFromSecret()).toBe(false);
    watcher.close();
    expect(JSON.parse(secretText(api, 'meshpilot-ca', 'next-root.json')!).activateAt).toBe(staged.activateAt!.toISOString());
    expect(secretText(api, 'meshpilot-ca', 'trust-bundle.pem')!.match(/BEGIN CERTIFICATE/g)).toHaveLength(3);
    // A replica that was running meanwhile takes it up when it re-reads the Secret.
    const otherReplica = await Authority.openSecrets(kc(), NS, { ...OPTS, now: () => now });
    expect(await otherReplica.reloadFromSecret()).toBe(false); // nothing new since it read it
    const stagedAgain = otherReplica.rootInfo().find((r) => r.serial === staged.serial);
    expect(stagedAgain).toMatchObject({ signing: false });
    const early = await Authority.openSecrets(kc(), NS, { ...OPTS, now: () => now });
    expect(early.rootInfo().find((r) => r.serial === staged.serial)).toMatchObject({ signing: false });
    early.close();
    now += 61_000;
    const late = await Authority.openSecrets(kc(), NS, { ...OPTS, now: () => now });
    expect(late.rootInfo()[0]).toMatchObject({ serial: staged.serial, signing: true });
    late.close();
  });

  it('a cacerts Secret makes it a plug-in CA: it signs as the operator\'s intermediate (chain of 3) and creates nothing', async () => {
    const { api, kc } = await apiServer();
    const dir = tempDir();
    const plugin = await writePluginCa(dir);
    const data = Object.fromEntries(['ca-cert.pem', 'ca-key.pem', 'root-cert.pem', 'cert-chain.pem'].map((k) => [k, Buffer.from(readFileSync(join(dir, k))).toString('base64')]));
    api.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'cacerts', namespace: NS }, data });

    const ca = await Authority.openSecrets(kc(), NS, OPTS);
    expect(ca.mode).toBe('plug-in');
    expect(ca.dir).toBe(`Secret ${NS}/cacerts`);
    const r = await ca.sign((await workloadCsr([CART_ID])).csrPem, CART);
    expect(r.chain).toHaveLength(3);
    expect(new X509Certificate(r.chain[1]!).raw.equals(new X509Certificate(plugin.intermediatePem).raw)).toBe(true);
    expect(new X509Certificate(r.chain[2]!).raw.equals(new X509Certificate(plugin.rootPem).raw)).toBe(true);
    expect(chainVerifies(r.chain, [plugin.rootPem])).toBe(true);
    expect(new X509Certificate(r.chain[0]!).issuer).toContain('operator intermediate');
    expect(api.get('v1', 'Secret', NS, 'meshpilot-ca')).toBeUndefined();
    expect(api.requests.some((q) => q.method === 'POST')).toBe(false);
    await expect(ca.rotateRoot()).rejects.toThrow(/plug-in/);

    // A cacerts Secret whose key is not the certificate's is refused, not half used.
    const other = tempDir();
    await writePluginCa(other);
    api.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'cacerts', namespace: NS }, data: { ...data, 'ca-key.pem': Buffer.from(readFileSync(join(other, 'ca-key.pem'))).toString('base64') } });
    await expect(Authority.openSecrets(kc(), NS, OPTS)).rejects.toThrow(/cacerts: ca-key.pem is not the key of ca-cert.pem/);
  });

  it('two CAs starting at once end with one root: the loser of the create (409) takes the winner\'s', async () => {
    const { api, kc } = await apiServer();
    // Both must have found no Secret before either creates it: hold every create until then.
    let release!: () => void;
    api.createGate = new Promise<void>((r) => (release = r));
    const starting = [Authority.openSecrets(kc(), NS, OPTS), Authority.openSecrets(kc(), NS, OPTS)];
    await waitFor(() => api.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/secrets/meshpilot-ca') && r.status === 404).length === 2, { description: 'both CAs found no Secret' });
    release();
    const [a, b] = await Promise.all(starting);
    const creates = api.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/secrets'));
    expect(creates.map((r) => r.status).sort()).toEqual([201, 409]);
    expect([a!.createdRoot, b!.createdRoot].sort()).toEqual([false, true]);
    expect(a!.roots().map((c) => c.serialNumber)).toEqual(b!.roots().map((c) => c.serialNumber));
    const stored = new X509Certificate(secretText(api, 'meshpilot-ca', 'root-cert.pem')!);
    expect(stored.serialNumber.toLowerCase()).toBe(a!.roots()[0]!.serialNumber.toLowerCase());
    // What either signs, a workload trusting the Secret's root accepts.
    for (const ca of [a!, b!]) expect(chainVerifies((await ca.sign((await workloadCsr([CART_ID])).csrPem, CART)).chain, [stored.toString()])).toBe(true);
  });

  it('serve with a config cluster: the CA on the xDS port uses the Secret, not the directory', async () => {
    const { api, kc } = await apiServer();
    const dir = tempDir();
    const logs = captureLogs();
    const cp = await startControlPlane({ configDir: dir, xdsListen: '127.0.0.1:0', adminListen: '127.0.0.1:0', logger: logs.logger, xdsTls: { dir: join(dir, 'ca'), kubeConfig: kc(), secrets: { kubeConfig: kc(), namespace: NS } } });
    cleanups.push(() => cp.stop());
    const rootPem = secretText(api, 'meshpilot-ca', 'root-cert.pem')!;
    expect(rootPem).toBeDefined();
    const c = caClient(cp.xdsAddress, { rootPem });
    cleanups.push(() => c.close());
    const token = api.serviceAccountToken('shop', 'cart', ['meshpilot-ca']);
    const chain = await createCertificate(c, (await workloadCsr([CART_ID])).csrPem, { token });
    expect(chainVerifies(chain, [rootPem])).toBe(true);
    expect(() => readFileSync(join(dir, 'ca', 'root-key.pem'))).toThrow();
    expect(logs.lines.find((l) => l.msg?.startsWith('mesh CA ready'))?.trustBundle).toBe(`Secret ${NS}/meshpilot-ca (trust-bundle.pem)`);
  });
});
