// Cluster mode: the mesh CA's trust bundle published as ConfigMap meshpilot-ca-root in every
// namespace (what injected agents mount), through the real @kubernetes/client-node against the
// wire-level fake API server: created where missing, put back when edited or deleted, rewritten on
// a bundle change, never rewritten when nothing changed, and a namespace that refuses the write
// does not hold up the others.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { RootPublisher } from '../control-plane/ca/root-publisher.ts';
import { startControlPlane } from '../control-plane/server.ts';
import { createCA } from '../control-plane/tls/certs.ts';
import { FakeApiServer, type KubeObject } from './helpers/fake-apiserver.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { waitFor } from './helpers/wait.ts';

const NAME = 'meshpilot-ca-root';
const MANAGED = { 'app.kubernetes.io/managed-by': 'meshpilot' };

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function namespace(name: string, extra: Partial<KubeObject> = {}): KubeObject {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name }, status: { phase: 'Active' }, ...extra };
}

async function apiServer(namespaces: string[]): Promise<{ api: FakeApiServer; kc: () => KubeConfig }> {
  const api = await FakeApiServer.start('root-publisher', { crds: false });
  cleanups.push(() => api.close());
  for (const n of namespaces) api.apply(namespace(n));
  return { api, kc: () => { const k = new KubeConfig(); k.loadFromString(api.kubeconfig()); return k; } };
}

async function rootPem(name: string): Promise<string> {
  return (await createCA(name)).certPem;
}

/** A publisher on a bundle the test controls; `change(next)` is what Authority.onChange reports. */
async function publisher(kc: KubeConfig, logLevel = 'info') {
  let bundle = await rootPem('root A');
  const listeners = new Set<() => void>();
  const logs = captureLogs(logLevel);
  const pub = new RootPublisher({
    kubeConfig: kc,
    bundle: () => bundle,
    onBundleChange: (fn) => {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    log: logs.logger,
    backoffMinMs: 20,
    backoffMaxMs: 200,
    watchBackoffMinMs: 20,
    watchBackoffMaxMs: 200,
  });
  cleanups.push(() => pub.stop());
  return {
    pub,
    logs,
    listeners,
    bundle: () => bundle,
    change(next: string) {
      bundle = next;
      for (const fn of listeners) fn();
    },
  };
}

function configMap(api: FakeApiServer, ns: string) {
  return api.get('v1', 'ConfigMap', ns, NAME) as (KubeObject & { data?: Record<string, string>; binaryData?: Record<string, string> }) | undefined;
}

/** The ConfigMap holds exactly the bundle, with our label. */
function published(api: FakeApiServer, ns: string, bundle: string): boolean {
  const cm = configMap(api, ns);
  return !!cm && JSON.stringify(cm.data) === JSON.stringify({ 'root-cert.pem': bundle }) && !cm.binaryData && cm.metadata.labels?.['app.kubernetes.io/managed-by'] === 'meshpilot';
}

/** Writes (create or replace) of the ConfigMap the API server received, per namespace. */
function writes(api: FakeApiServer): Array<{ method: string; ns: string; status: number }> {
  return api.requests
    .filter((r) => (r.method === 'POST' || r.method === 'PUT') && /^\/api\/v1\/namespaces\/[^/]+\/configmaps/.test(r.path))
    .map((r) => ({ method: r.method, ns: r.path.split('/')[4]!, status: r.status }));
}

/** Runs `trigger`, then waits for the comparison pass it causes: what was decided is then visible. */
async function afterPass(pub: RootPublisher, trigger: () => unknown, description: string): Promise<void> {
  const before = pub.stats().passes;
  await trigger();
  await waitFor(() => pub.stats().passes > before, { description });
}

describe('CA trust bundle ConfigMap in every namespace', () => {
  it('is created in every namespace, then in a namespace made later; a terminating namespace is left alone', async () => {
    const { api, kc } = await apiServer(['default', 'kube-system', 'shop']);
    api.apply(namespace('leaving', { metadata: { name: 'leaving', deletionTimestamp: '2024-01-01T00:00:00Z' }, status: { phase: 'Terminating' } }));
    const p = await publisher(kc());
    p.pub.start();
    for (const ns of ['default', 'kube-system', 'shop']) await waitFor(() => published(api, ns, p.bundle()), { description: `ConfigMap in ${ns}` });
    expect(configMap(api, 'leaving')).toBeUndefined();
    expect(configMap(api, 'default')!.metadata.labels).toEqual(MANAGED);
    expect(writes(api).sort((a, b) => a.ns.localeCompare(b.ns))).toEqual(['default', 'kube-system', 'shop'].map((ns) => ({ method: 'POST', ns, status: 201 })));
    expect(p.logs.lines.find((l) => l.msg?.startsWith('publishing the CA trust bundle'))).toMatchObject({ namespaces: 3, toWrite: 3 });

    api.apply(namespace('payments'));
    await waitFor(() => published(api, 'payments', p.bundle()), { description: 'ConfigMap in the new namespace' });
    expect(writes(api).filter((w) => w.ns === 'payments')).toEqual([{ method: 'POST', ns: 'payments', status: 201 }]);
    expect(configMap(api, 'leaving')).toBeUndefined();
    expect(writes(api)).toHaveLength(4);
  });

  it('an edited or deleted ConfigMap is put back (other people\'s labels and annotations kept), once', async () => {
    const { api, kc } = await apiServer(['default', 'shop']);
    const p = await publisher(kc());
    p.pub.start();
    for (const ns of ['default', 'shop']) await waitFor(() => published(api, ns, p.bundle()), { description: `ConfigMap in ${ns}` });
    const base = writes(api).length;

    // Edited by hand: another root, an extra key, our label gone, someone's annotation added.
    const edited = configMap(api, 'shop')!;
    api.apply({ ...edited, metadata: { ...edited.metadata, labels: { team: 'shop' }, annotations: { note: 'hand edit' } }, data: { 'root-cert.pem': 'not a root', extra: 'x' } });
    expect(published(api, 'shop', p.bundle())).toBe(false);
    await waitFor(() => published(api, 'shop', p.bundle()), { description: 'edited ConfigMap restored' });
    const restored = configMap(api, 'shop')!;
    expect(restored.metadata.labels).toEqual({ team: 'shop', ...MANAGED });
    expect(restored.metadata.annotations).toEqual({ note: 'hand edit' });
    expect(writes(api).slice(base)).toEqual([{ method: 'PUT', ns: 'shop', status: 200 }]);

    // Only the label removed: that is put back too.
    api.apply({ ...restored, metadata: { ...restored.metadata, labels: { team: 'shop' } } });
    await waitFor(() => configMap(api, 'shop')!.metadata.labels?.['app.kubernetes.io/managed-by'] === 'meshpilot', { description: 'label restored' });

    // Deleted: created again.
    api.remove('v1', 'ConfigMap', 'default', NAME);
    await waitFor(() => published(api, 'default', p.bundle()), { description: 'deleted ConfigMap recreated' });
    expect(writes(api).slice(base)).toEqual([
      { method: 'PUT', ns: 'shop', status: 200 },
      { method: 'PUT', ns: 'shop', status: 200 },
      { method: 'POST', ns: 'default', status: 201 },
    ]);
  });

  it('a bundle change (two roots during a rotation) rewrites every namespace\'s ConfigMap exactly once', async () => {
    const namespaces = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l'];
    const { api, kc } = await apiServer(namespaces);
    const p = await publisher(kc());
    p.pub.start();
    for (const ns of namespaces) await waitFor(() => published(api, ns, p.bundle()), { description: `ConfigMap in ${ns}` });
    const base = writes(api).length;
    expect(base).toBe(namespaces.length);

    const rotated = `${await rootPem('root B')}\n${p.bundle()}`;
    expect(rotated.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    p.change(rotated);
    for (const ns of namespaces) await waitFor(() => published(api, ns, rotated), { description: `new bundle in ${ns}` });
    const after = writes(api).slice(base);
    expect(after.map((w) => w.ns).sort()).toEqual(namespaces);
    expect(after.every((w) => w.method === 'PUT' && w.status === 200)).toBe(true);
    expect(p.logs.lines.some((l) => l.msg?.startsWith('CA trust bundle changed'))).toBe(true);
  });

  it('writes nothing when nothing changed: same bundle reported, namespace relabelled, watches relisted', async () => {
    const { api, kc } = await apiServer(['default', 'shop', 'payments']);
    const p = await publisher(kc());
    p.pub.start();
    for (const ns of ['default', 'shop', 'payments']) await waitFor(() => published(api, ns, p.bundle()), { description: `ConfigMap in ${ns}` });
    // Every ConfigMap's own watch event has come back (the publisher then trusts its cache again).
    await afterPass(p.pub, () => api.apply(namespace('default', { metadata: { name: 'default', labels: { settle: '1' } } })), 'a pass after the creates');
    const versions = () => ['default', 'shop', 'payments'].map((ns) => configMap(api, ns)!.metadata.resourceVersion);
    const rvs = versions();
    const sent = p.pub.stats().writes;
    const received = writes(api).length;
    expect(sent).toBe(3);

    await afterPass(p.pub, () => p.change(p.bundle()), 'a pass after an unchanged bundle');
    await afterPass(p.pub, () => api.apply(namespace('shop', { metadata: { name: 'shop', labels: { 'istio-injection': 'enabled' } } })), 'a pass after a namespace edit');
    // Both watches resume from a resourceVersion the server no longer has: 410, relist, compare.
    const lists = () => api.requests.filter((r) => r.method === 'GET' && !r.query.includes('watch=') && (r.path === '/api/v1/configmaps' || r.path === '/api/v1/namespaces')).length;
    const listsBefore = lists();
    // (An object neither informer watches moves the server past both informers' resourceVersions.)
    api.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'unrelated', namespace: 'default' } });
    api.compact();
    api.endWatches();
    await waitFor(() => lists() >= listsBefore + 2, { description: 'both informers relisted' });
    await afterPass(p.pub, () => api.apply(namespace('payments', { metadata: { name: 'payments', labels: { x: 'y' } } })), 'a pass after the relists');

    expect(p.pub.stats().writes).toBe(sent);
    expect(writes(api)).toHaveLength(received);
    expect(versions()).toEqual(rvs);
  });

  it('a namespace whose write is refused (403) is logged and retried with backoff; the others get theirs meanwhile', async () => {
    const { api, kc } = await apiServer(['default', 'locked', 'shop', 'flaky']);
    let flaky = 1;
    api.failWhen = ({ method, path }) => {
      if (method === 'GET') return undefined;
      if (path.startsWith('/api/v1/namespaces/locked/')) return 403;
      if (path.startsWith('/api/v1/namespaces/flaky/') && flaky-- > 0) return 503;
      return undefined;
    };
    const p = await publisher(kc());
    p.pub.start();
    for (const ns of ['default', 'shop', 'flaky']) await waitFor(() => published(api, ns, p.bundle()), { description: `ConfigMap in ${ns}` });
    // Retried (more than one refused attempt), logged once per namespace and error.
    await waitFor(() => writes(api).filter((w) => w.ns === 'locked' && w.status === 403).length >= 3, { description: 'locked retried' });
    const warned = p.logs.lines.filter((l) => l.msg?.startsWith('cannot write the CA trust bundle ConfigMap'));
    expect(warned.filter((l) => l.namespace === 'locked')).toHaveLength(1);
    expect(warned.find((l) => l.namespace === 'locked')!.error).toMatch(/^403 Forbidden: forbidden: POST \/api\/v1\/namespaces\/locked\/configmaps/);
    expect(warned.find((l) => l.namespace === 'flaky')!.error).toMatch(/^503 ServiceUnavailable/);
    expect(configMap(api, 'locked')).toBeUndefined();

    // Permission granted: the next retry writes it.
    api.failWhen = undefined;
    await waitFor(() => published(api, 'locked', p.bundle()), { description: 'locked written once allowed' });
    await waitFor(() => p.logs.lines.some((l) => l.namespace === 'locked' && l.msg?.includes('after earlier failures')), { description: 'recovery logged' });
    expect(writes(api).filter((w) => w.ns === 'locked' && w.status !== 403)).toEqual([{ method: 'POST', ns: 'locked', status: 201 }]);
  });

  it('stop() ends the watches and writes nothing more', async () => {
    const { api, kc } = await apiServer(['default']);
    const p = await publisher(kc());
    p.pub.start();
    await waitFor(() => published(api, 'default', p.bundle()), { description: 'ConfigMap in default' });
    await waitFor(() => api.openWatches === 2, { description: 'two watches open' });
    p.pub.stop();
    await waitFor(() => api.openWatches === 0, { description: 'watches closed' });
    expect(p.listeners.size).toBe(0);
    const received = writes(api).length;
    api.apply(namespace('later'));
    api.remove('v1', 'ConfigMap', 'default', NAME);
    // Nothing is listening any more: a new watch would be the only way to hear of these.
    expect(api.openWatches).toBe(0);
    expect(p.pub.stats().writes).toBe(1);
    expect(writes(api)).toHaveLength(received);
  });
});

describe('serve with a config cluster publishes the CA\'s own bundle', () => {
  function tempDir(): string {
    const d = mkdtempSync(join(tmpdir(), 'meshpilot-root-publisher-'));
    cleanups.push(() => rmSync(d, { recursive: true, force: true }));
    return d;
  }

  function secretText(api: FakeApiServer, key: string): string | undefined {
    const v = (api.get('v1', 'Secret', 'meshpilot-system', 'meshpilot-ca') as { data?: Record<string, string> } | undefined)?.data?.[key];
    return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8');
  }

  it('the bundle of Secret meshpilot-ca in every namespace, and both roots after a rotation', async () => {
    const { api, kc } = await apiServer(['default', 'meshpilot-system', 'shop']);
    const dir = tempDir();
    const cp = await startControlPlane({ configDir: dir, xdsListen: '127.0.0.1:0', logger: captureLogs().logger, xdsTls: { dir: join(dir, 'ca'), kubeConfig: kc(), secrets: { kubeConfig: kc(), namespace: 'meshpilot-system' } } });
    cleanups.push(() => cp.stop());
    const bundle = secretText(api, 'trust-bundle.pem')!;
    expect(bundle).toMatch(/BEGIN CERTIFICATE/);
    expect(cp.ca!.bundlePem()).toBe(bundle);
    for (const ns of ['default', 'meshpilot-system', 'shop']) await waitFor(() => published(api, ns, bundle), { description: `CA bundle in ${ns}` });

    await cp.ca!.rotateRoot();
    const rotated = cp.ca!.bundlePem();
    expect(rotated.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    for (const ns of ['default', 'meshpilot-system', 'shop']) await waitFor(() => published(api, ns, rotated), { description: `rotated bundle in ${ns}` });
    // The old root is still there: workloads with certificates from it keep being trusted.
    expect(rotated).toContain(bundle.trim());
  });

  it('publishRoot: false leaves ConfigMaps alone', async () => {
    const { api, kc } = await apiServer(['default']);
    const dir = tempDir();
    const cp = await startControlPlane({ configDir: dir, xdsListen: '127.0.0.1:0', logger: captureLogs().logger, xdsTls: { dir: join(dir, 'ca'), secrets: { kubeConfig: kc(), namespace: 'meshpilot-system' }, publishRoot: false } });
    cleanups.push(() => cp.stop());
    expect(cp.ca).toBeDefined();
    expect(api.requests.some((r) => r.path.includes('configmaps') || r.path === '/api/v1/namespaces')).toBe(false);
    expect(configMap(api, 'default')).toBeUndefined();
  });
});
