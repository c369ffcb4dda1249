// Two `serve` replicas on one cluster (the wire-level fake API server), each with its own API user
// so the server tells their requests apart, short leader-election timings (2 s lease, 1.2 s renew
// deadline, 200 ms retry). Both serve; only the leader writes to the cluster: rule status from the
// Kubernetes source, the CA's trust bundle ConfigMaps. A replica that starts leading writes what is
// missing; one that stops (shut down, or cut off from the Lease while still able to write
// anything else) writes nothing more.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startControlPlane, type ControlPlane, type ControlPlaneOptions } from '../control-plane/server.ts';
import { FakeApiServer, type KubeObject } from './helpers/fake-apiserver.ts';
import { istio, registration, serviceObject } from './helpers/kube-objects.ts';
import { hostOf } from './helpers/mesh-files.ts';
import { Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';
import { KubeConfig } from '@kubernetes/client-node';

const FAST = { leaseDurationMs: 2000, renewDeadlineMs: 1200, retryPeriodMs: 200 };
const REVIEWS = hostOf('reviews');
const teardown = new Teardown();
afterEach(() => teardown.run());

async function fakeCluster(): Promise<FakeApiServer> {
  const api = await FakeApiServer.start('primary');
  teardown.add(() => api.close());
  return api;
}

function kubeConfig(api: FakeApiServer, user: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(api.kubeconfig(user));
  return kc;
}

interface Replica { id: string; cp: ControlPlane; stopped: boolean; stop(): Promise<void> }

async function replica(id: string, opts: Partial<ControlPlaneOptions>): Promise<Replica> {
  const cp = await startControlPlane({ xdsListen: '127.0.0.1:0', adminListen: '127.0.0.1:0', debounceMs: 20, logLevel: process.env.MESHPILOT_TEST_LOG_LEVEL ?? 'silent', leaderElection: { ...FAST, identity: id }, ...opts });
  const r: Replica = {
    id,
    cp,
    stopped: false,
    async stop() {
      if (r.stopped) return;
      r.stopped = true;
      await cp.stop();
    },
  };
  teardown.add(() => r.stop());
  return r;
}

/** Checks on every leadership change that there is at most one leader, and samples the count. */
function neverTwo(replicas: Replica[]) {
  let most = 0;
  const count = () => replicas.filter((r) => !r.stopped && r.cp.leadership.isLeader()).length;
  for (const r of replicas) r.cp.leadership.onChange(() => (most = Math.max(most, count())));
  const timer = setInterval(() => (most = Math.max(most, count())), 5);
  teardown.add(() => clearInterval(timer));
  return { most: () => most, leader: () => replicas.find((r) => !r.stopped && r.cp.leadership.isLeader()) };
}

function accepted(api: FakeApiServer, name = 'reviews'): { status: string; message: string } | undefined {
  const o = api.get('networking.istio.io/v1', 'VirtualService', 'default', name);
  return (o?.['status'] as { conditions?: Array<{ type: string; status: string; message: string }> } | undefined)?.conditions?.find((c) => c.type === 'Accepted');
}

const statusWrites = (api: FakeApiServer, user: string, from = 0) =>
  api.requests.slice(from).filter((r) => r.user === user && r.path.endsWith('/status') && (r.method === 'PATCH' || r.method === 'PUT')).length;

const DR = istio('DestinationRule', 'reviews', { host: REVIEWS, subsets: ['v1', 'v2'].map((v) => ({ name: v, labels: { version: v } })) });
const routeAll = (subset: string, weight = 100) => istio('VirtualService', 'reviews', { hosts: [REVIEWS], http: [{ route: [{ destination: { host: REVIEWS, subset }, weight }] }] });

async function readyz(r: Replica): Promise<Record<string, unknown>> {
  const body = (await (await fetch(`http://${r.cp.adminAddress}/readyz`)).json()) as { components: Array<Record<string, unknown>> };
  return body.components.find((c) => c['name'] === 'leader-election')!;
}

async function leaderMetric(r: Replica): Promise<number> {
  const text = await (await fetch(`http://${r.cp.adminAddress}/metrics`)).text();
  return Number(/^meshpilot_leader (\d+)$/m.exec(text)?.[1]);
}

describe('high availability: two serve replicas, one leader', () => {
  it('only the leader writes rule status; a deposed leader writes nothing more; a new leader writes the state it finds; a clean stop hands over at once', async () => {
    const api = await fakeCluster();
    api.apply(serviceObject('reviews'));
    api.apply(DR);
    api.apply(routeAll('v1'));
    const start = (id: string) => replica(id, { kube: { configCluster: registration(api, { kubeConfig: kubeConfig(api, id) }), backoffMinMs: 50, backoffMaxMs: 200 } });
    const [a, b] = await Promise.all([start('replica-a'), start('replica-b')]);
    const ha = neverTwo([a, b]);
    await waitFor(() => ha.leader() !== undefined, { description: 'a leader' });
    const leader = ha.leader()!;
    const other = leader === a ? b : a;
    await waitFor(() => accepted(api)?.status === 'True', { description: 'Accepted=True written' });
    expect(statusWrites(api, leader.id)).toBeGreaterThan(0);
    expect(statusWrites(api, other.id)).toBe(0);
    // Both serve the same config; each says whether it leads.
    expect(other.cp.state().accepted.map((o) => o.key)).toEqual(leader.cp.state().accepted.map((o) => o.key));
    expect(await readyz(leader)).toMatchObject({ ok: true, leading: true, identity: leader.id, holder: leader.id });
    await waitFor(async () => (await readyz(other))['holder'] === leader.id, { description: 'the follower has seen the Lease' });
    expect(await readyz(other)).toMatchObject({ ok: true, leading: false, identity: other.id, holder: leader.id });
    expect([await leaderMetric(leader), await leaderMetric(other)]).toEqual([1, 0]);

    // An invalid change: the leader writes Accepted=False, the follower (which compiled it too) nothing.
    api.apply(routeAll('v1', -5));
    await waitFor(() => accepted(api)?.status === 'False', { description: 'Accepted=False written' });
    await waitFor(() => other.cp.state().rejected.length === 1, { description: 'the follower compiled it' });
    expect(statusWrites(api, other.id)).toBe(0);

    // The leader is cut off from the Lease only (it can still write status): it stops leading at its
    // renew deadline. A fix made while nobody leads is written by the new leader when it takes over.
    const cut = api.requests.length;
    api.failWhen = (r) => (r.user === leader.id && r.path.includes('/leases') ? 'hang' : undefined);
    await waitFor(() => !leader.cp.leadership.isLeader(), { description: 'the cut-off leader stops leading', timeoutMs: 5000 });
    expect(other.cp.leadership.isLeader()).toBe(false); // the Lease has not expired yet
    let statusWhenTakenOver: string | undefined;
    other.cp.leadership.onChange((leading) => {
      if (leading) statusWhenTakenOver = accepted(api)?.status;
    });
    api.apply(routeAll('v2'));
    await waitFor(() => leader.cp.state().rejected.length === 0 && other.cp.state().rejected.length === 0, { description: 'both compiled the fix' });
    await waitFor(() => other.cp.leadership.isLeader(), { description: 'the other takes over', timeoutMs: 5000 });
    expect(statusWhenTakenOver).toBe('False'); // nobody wrote while nobody led
    await waitFor(() => accepted(api)?.status === 'True', { description: 'the new leader writes Accepted=True' });
    expect(statusWrites(api, other.id, cut)).toBeGreaterThan(0);
    expect(statusWrites(api, leader.id, cut)).toBe(0);

    // The partition heals: the old leader follows; then the new leader stops cleanly and the old
    // one leads again within about one retry period and writes the next change.
    api.failWhen = undefined;
    await waitFor(async () => {
      const c = await readyz(leader);
      return c['holder'] === other.id && c['degraded'] === undefined;
    }, { description: 'the old leader follows, reaching the Lease again' });
    await other.stop();
    const stoppedAt = Date.now();
    await waitFor(() => leader.cp.leadership.isLeader(), { description: 'the first replica leads again', timeoutMs: 5000 });
    const handover = Date.now() - stoppedAt;
    expect(handover).toBeLessThan(FAST.leaseDurationMs);
    const before = api.requests.length;
    api.apply(routeAll('v9'));
    await waitFor(() => accepted(api)?.status === 'False', { description: 'Accepted=False by the leader' });
    expect(statusWrites(api, leader.id, before)).toBeGreaterThan(0);
    expect(statusWrites(api, other.id, before)).toBe(0);
    expect(ha.most()).toBe(1);
    console.log(`rule status: status writes per replica ${leader.id}=${statusWrites(api, leader.id)} ${other.id}=${statusWrites(api, other.id)}; clean handover in ${handover} ms; most leaders at once ${ha.most()}`);
  });

  it('only the leader publishes the CA trust bundle ConfigMaps (the follower does not even watch them); the next leader puts back one deleted meanwhile', async () => {
    const api = await FakeApiServer.start('ca', { crds: false });
    teardown.add(() => api.close());
    for (const ns of ['default', 'shop', 'meshpilot-system']) api.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns }, status: { phase: 'Active' } } as KubeObject);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'meshpilot-ha-'));
    teardown.add(() => rm(dir, { recursive: true, force: true }));
    // File mode for rules; the CA (and so the election) in the cluster.
    const start = (id: string) => replica(id, { configDir: dir, xdsTls: { dir: path.join(dir, 'ca'), secrets: { kubeConfig: kubeConfig(api, id), namespace: 'meshpilot-system' } } });
    const a = await start('replica-a');
    const b = await start('replica-b');
    const ha = neverTwo([a, b]);
    await waitFor(() => ha.leader() !== undefined, { description: 'a leader' });
    const leader = ha.leader()!;
    const other = leader === a ? b : a;
    // One root for both: the second replica read the Secret the first made.
    expect(other.cp.ca!.bundlePem()).toBe(leader.cp.ca!.bundlePem());
    const bundle = leader.cp.ca!.bundlePem();
    const has = (ns: string) => (api.get('v1', 'ConfigMap', ns, 'meshpilot-ca-root') as { data?: Record<string, string> } | undefined)?.data?.['root-cert.pem'] === bundle;
    await waitFor(() => ['default', 'shop', 'meshpilot-system'].every(has), { description: 'bundle published everywhere' });
    const configMapRequests = (user: string) => api.requests.filter((r) => r.user === user && (r.path.includes('/configmaps') || r.path === '/api/v1/namespaces')).length;
    // The follower has been polling the Lease for a while (a second or so), and never touched them.
    const leasePolls = (user: string) => api.requests.filter((r) => r.user === user && r.path.includes('/leases')).length;
    await waitFor(() => leasePolls(other.id) >= 6, { description: 'the follower polls the Lease' });
    expect(configMapRequests(other.id)).toBe(0);
    expect(configMapRequests(leader.id)).toBeGreaterThan(0);

    await leader.stop();
    await waitFor(() => other.cp.leadership.isLeader(), { description: 'the other leads', timeoutMs: 5000 });
    api.remove('v1', 'ConfigMap', 'shop', 'meshpilot-ca-root');
    await waitFor(() => has('shop'), { description: 'the new leader puts it back' });
    const creates = api.requests.filter((r) => r.method === 'POST' && r.path === '/api/v1/namespaces/shop/configmaps' && r.status === 201);
    expect(creates.map((r) => r.user)).toEqual([leader.id, other.id]);
    expect(ha.most()).toBe(1);
  });

  it('without a cluster there is no election: the one process leads', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'meshpilot-ha-'));
    teardown.add(() => rm(dir, { recursive: true, force: true }));
    const r = await replica('solo', { configDir: dir });
    expect(r.cp.elector).toBeUndefined();
    expect(r.cp.leadership.isLeader()).toBe(true);
    expect(await leaderMetric(r)).toBe(1);
  });
});
