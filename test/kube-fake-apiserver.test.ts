// The fake API server speaks the real list/watch protocol: the unmodified client-node informer
// (ListWatch, inside meshpilot's ResourceWatcher) and typed API clients run against it.
import { CoreV1Api, CustomObjectsApi, KubeConfig, makeInformer, type V1Service } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { ResourceWatcher, type WatcherHealth } from '../control-plane/kube/watcher.ts';
import { FakeApiServer } from './helpers/fake-apiserver.ts';
import { waitFor } from './helpers/wait.ts';

const servers: FakeApiServer[] = [];
const watchers: ResourceWatcher<V1Service>[] = [];

afterEach(async () => {
  for (const w of watchers.splice(0)) w.stop();
  for (const s of servers.splice(0)) await s.close();
});

function service(name: string, port: number, labels: Record<string, string> = {}) {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default', labels }, spec: { ports: [{ name: 'grpc', port }] } };
}

async function setup(opts: { bookmarkIntervalMs?: number; idleTimeoutMs?: number } = {}) {
  const api = await FakeApiServer.start('east', opts);
  servers.push(api);
  const kc = new KubeConfig();
  kc.loadFromString(api.kubeconfig());
  const core = kc.makeApiClient(CoreV1Api);
  const health: WatcherHealth[] = [];
  let changes = 0;
  const w = new ResourceWatcher<V1Service>({
    kubeConfig: kc,
    path: '/api/v1/services',
    list: () => core.listServiceForAllNamespaces(),
    onChange: () => changes++,
    onHealth: (h) => health.push(h),
    backoffMinMs: 20,
    backoffMaxMs: 100,
    ...(opts.idleTimeoutMs ? { idleTimeoutMs: opts.idleTimeoutMs } : {}),
  });
  watchers.push(w);
  const names = () => w.list().map((s) => `${s.metadata!.name}:${s.spec!.ports![0]!.port}`).sort();
  return { api, kc, w, health, names, changes: () => changes };
}

describe('fake API server with client-node informers', () => {
  it('lists, then streams adds, updates and deletes', async () => {
    const { api, w, names } = await setup();
    api.apply(service('a', 80));
    w.start();
    await waitFor(() => w.status().synced, { description: 'initial list' });
    expect(names()).toEqual(['a:80']);
    api.apply(service('b', 81));
    api.apply(service('a', 8080));
    await waitFor(() => names().join() === 'a:8080,b:81', { description: 'add + update via watch' });
    api.remove('v1', 'Service', 'default', 'a');
    await waitFor(() => names().join() === 'b:81', { description: 'delete via watch' });
    expect(w.status().healthy).toBe(true);
    // One list only: everything else came over the watch.
    expect(api.requests.filter((r) => r.path === '/api/v1/services' && !r.query.includes('watch')).length).toBe(1);
  });

  it('a watch the server ends is resumed from its resourceVersion, without a relist', async () => {
    const { api, w, names } = await setup();
    w.start();
    await waitFor(() => api.openWatches === 1, { description: 'watch open' });
    const watchesBefore = api.requests.filter((r) => r.query.includes('watch=true')).length;
    api.endWatches();
    api.apply(service('late', 90));
    await waitFor(() => names().join() === 'late:90', { description: 'event after the watch ended' });
    expect(api.requests.filter((r) => r.query.includes('watch=true')).length).toBeGreaterThan(watchesBefore);
    expect(api.requests.filter((r) => !r.query.includes('watch')).length).toBe(1);
  });

  it('410 Gone on a resumed watch leads to a relist that reports only real changes', async () => {
    const { api, w, names } = await setup();
    api.apply(service('keep', 1));
    api.apply(service('drop', 2));
    w.start();
    await waitFor(() => names().length === 2);
    await api.stop();
    api.remove('v1', 'Service', 'default', 'drop');
    api.apply(service('new', 3));
    api.compact(); // the history the informer would resume from is gone
    await waitFor(() => !w.status().healthy, { description: 'unhealthy while down' });
    expect(names()).toEqual(['drop:2', 'keep:1']); // last known state kept
    await api.restart();
    await waitFor(() => names().join() === 'keep:1,new:3', { description: 'relist after 410' });
    expect(api.requests.filter((r) => !r.query.includes('watch')).length).toBe(2);
    await waitFor(() => w.status().healthy);
    expect(w.status().restarts).toBeGreaterThan(0);
  });

  it('a stopped server is retried with backoff; changes made while it was down replay on the resumed watch', async () => {
    const { api, w, names, health } = await setup();
    api.apply(service('a', 1));
    w.start();
    await waitFor(() => w.status().healthy && w.status().synced);
    await api.stop();
    api.apply(service('a', 2));
    await waitFor(() => health.some((h) => !h.healthy && /ECONNREFUSED|connect/i.test(h.reason ?? '')), { description: 'connection refused reported' });
    await api.restart();
    await waitFor(() => names().join() === 'a:2');
    await waitFor(() => w.status().healthy);
    expect(api.requests.filter((r) => !r.query.includes('watch')).length).toBe(1); // no relist needed
  });

  it('a watch that goes silent (half-open connection) is cut and restarted, and reported meanwhile', async () => {
    const { api, w, names, health } = await setup({ idleTimeoutMs: 300 });
    w.start();
    await waitFor(() => api.openWatches === 1 && w.status().healthy);
    api.freezeWatches();
    api.apply(service('during', 1)); // lost on the frozen stream
    await waitFor(() => health.some((h) => !h.healthy && /delivered nothing/.test(h.reason ?? '')), { description: 'silence reported' });
    await waitFor(() => names().join() === 'during:1', { description: 'the restarted watch replays what was missed' });
    await waitFor(() => w.status().healthy);
  });

  it('sends bookmarks to watches that ask for them', async () => {
    const { api, w } = await setup();
    api.apply(service('a', 1));
    w.start();
    await waitFor(() => api.openWatches === 1);
    expect(api.requests.some((r) => r.query.includes('allowWatchBookmarks=true'))).toBe(true);
    // Objects of another kind move the resourceVersion; a bookmark carries it to the informer.
    api.apply({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' } } as never);
    api.sendBookmarks();
    const rv = String(api.resourceVersion);
    await waitFor(() => (w as unknown as { informer: { latestResourceVersion(): string } }).informer.latestResourceVersion() === rv, { description: 'bookmark rv' });
  });

  it('status subresource: JSON patch and merge patch change status only; generation follows spec', async () => {
    const { api, kc } = await setup();
    const vs = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'r', namespace: 'default' }, spec: { hosts: ['r'] } };
    expect(api.apply(vs).metadata.generation).toBe(1);
    const custom = kc.makeApiClient(CustomObjectsApi);
    await custom.patchNamespacedCustomObjectStatus({
      group: 'networking.istio.io', version: 'v1', namespace: 'default', plural: 'virtualservices', name: 'r',
      body: [{ op: 'add', path: '/status', value: { conditions: [{ type: 'Accepted', status: 'True' }] }, }, { op: 'add', path: '/spec/hosts/0', value: 'ignored' }],
    });
    const got = api.get('networking.istio.io/v1', 'VirtualService', 'default', 'r')!;
    expect(got['status']).toEqual({ conditions: [{ type: 'Accepted', status: 'True' }] });
    expect(got['spec']).toEqual({ hosts: ['r'] });
    expect(got.metadata.generation).toBe(1);
    expect(api.apply({ ...vs, spec: { hosts: ['s'] } }).metadata.generation).toBe(2);
    // served under the other Istio versions too
    const listed = (await custom.listNamespacedCustomObject({ group: 'networking.istio.io', version: 'v1beta1', namespace: 'default', plural: 'virtualservices' })) as { items: Array<{ apiVersion: string; status: unknown }> };
    expect(listed.items[0]!.apiVersion).toBe('networking.istio.io/v1beta1');
    expect(listed.items[0]!.status).toEqual({ conditions: [{ type: 'Accepted', status: 'True' }] });

    // PUT replaces the status, with optimistic concurrency on resourceVersion.
    const current = api.get('networking.istio.io/v1', 'VirtualService', 'default', 'r')!;
    const put = (rv: string) => custom.replaceNamespacedCustomObjectStatus({
      group: 'networking.istio.io', version: 'v1', namespace: 'default', plural: 'virtualservices', name: 'r',
      body: { ...current, metadata: { ...current.metadata, resourceVersion: rv }, status: { conditions: [] } },
    });
    await expect(put('1')).rejects.toMatchObject({ code: 409 });
    await put(current.metadata.resourceVersion!);
    expect(api.get('networking.istio.io/v1', 'VirtualService', 'default', 'r')!['status']).toEqual({ conditions: [] });
  });
});

describe('fake API server with makeInformer', () => {
  it('a namespaced, label-selected informer sees only matching objects', async () => {
    const api = await FakeApiServer.start('west');
    servers.push(api);
    const kc = new KubeConfig();
    kc.loadFromString(api.kubeconfig());
    const core = kc.makeApiClient(CoreV1Api);
    const secret = (ns: string, name: string, labels: Record<string, string>) => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: ns, labels }, data: {} });
    api.apply(secret('ops', 'a', { 'meshpilot.io/cluster': 'a' }));
    api.apply(secret('ops', 'b', {}));
    api.apply(secret('other', 'c', { 'meshpilot.io/cluster': 'c' }));
    const informer = makeInformer(kc, '/api/v1/namespaces/ops/secrets', () => core.listNamespacedSecret({ namespace: 'ops', labelSelector: 'meshpilot.io/cluster' }), 'meshpilot.io/cluster');
    const seen: string[] = [];
    informer.on('add', (s) => seen.push(`add ${s.metadata!.name}`));
    informer.on('delete', (s) => seen.push(`delete ${s.metadata!.name}`));
    await informer.start();
    try {
      await waitFor(() => seen.includes('add a'));
      api.apply(secret('ops', 'd', { 'meshpilot.io/cluster': 'd' }));
      api.apply(secret('other', 'e', { 'meshpilot.io/cluster': 'e' }));
      api.apply(secret('ops', 'f', {}));
      api.remove('v1', 'Secret', 'ops', 'a');
      await waitFor(() => seen.includes('delete a'));
      expect(seen).toEqual(['add a', 'add d', 'delete a']);
    } finally {
      await informer.stop();
    }
  });
});
