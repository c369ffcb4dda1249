// Leader election with a coordination.k8s.io/v1 Lease, through the real @kubernetes/client-node
// against the wire-level fake API server: electors with short timings (2 s lease, 1.2 s renew
// deadline, 200 ms retry), each with its own API user so the server can tell their requests
// apart. Every leadership change is checked the moment it happens (never two leaders), and the
// count is also sampled every few milliseconds.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { LeaderElector } from '../control-plane/kube/leader-election.ts';
import { FakeApiServer } from './helpers/fake-apiserver.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { waitFor } from './helpers/wait.ts';

const NS = 'meshpilot-system';
setFlagsFromString('--expose-gc');
/** Collects garbage now: a request's deadline must survive it (it once did not, see deadline-signal.ts). */
const gc = runInNewContext('gc') as () => void;
const FAST = { leaseDurationMs: 2000, renewDeadlineMs: 1200, retryPeriodMs: 200 };

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function apiServer(): Promise<FakeApiServer> {
  const api = await FakeApiServer.start('election', { crds: false });
  cleanups.push(() => api.close());
  return api;
}

function kubeConfig(api: FakeApiServer, user: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(api.kubeconfig(user));
  return kc;
}

function elector(api: FakeApiServer, id: string, timings = FAST): LeaderElector {
  const e = new LeaderElector({ kubeConfig: kubeConfig(api, id), namespace: NS, identity: id, log: captureLogs().logger, ...timings });
  cleanups.push(() => e.stop());
  return e;
}

/**
 * Watches a set of electors: every change is checked when it happens, and the count sampled (with
 * the Lease's renewTime per holder: the send time of each holder's latest renewal).
 */
function watchLeaders(api: FakeApiServer, electors: LeaderElector[]) {
  const events: Array<{ id: string; leading: boolean; at: number }> = [];
  const renewedAt = new Map<string, number>();
  let most = 0;
  let samples = 0;
  const count = () => electors.filter((e) => e.isLeader()).length;
  for (const e of electors) {
    e.onChange((leading) => {
      events.push({ id: e.identity, leading, at: Date.now() });
      most = Math.max(most, count());
    });
  }
  const timer = setInterval(() => {
    samples++;
    most = Math.max(most, count());
    const spec = lease(api)?.spec;
    if (spec?.holderIdentity && spec.renewTime) renewedAt.set(spec.holderIdentity, Math.max(renewedAt.get(spec.holderIdentity) ?? 0, Date.parse(spec.renewTime)));
  }, 5);
  cleanups.push(() => clearInterval(timer));
  return {
    events,
    leaders: () => electors.filter((e) => e.isLeader()),
    /** The most leaders there ever were at once (events and samples). */
    most: () => most,
    samples: () => samples,
    lastRenewal: (id: string) => renewedAt.get(id)!,
    startedAt: (id: string, after = 0) => events.find((e) => e.id === id && e.leading && e.at >= after)?.at,
    stoppedAt: (id: string, after = 0) => events.find((e) => e.id === id && !e.leading && e.at >= after)?.at,
  };
}

function lease(api: FakeApiServer) {
  return api.get('coordination.k8s.io/v1', 'Lease', NS, 'meshpilot-leader') as { spec?: { holderIdentity?: string; renewTime?: string; leaseDurationSeconds?: number; leaseTransitions?: number } } | undefined;
}

const leaseWrites = (api: FakeApiServer, user: string) => api.requests.filter((r) => r.user === user && r.path.includes('/leases') && (r.method === 'PUT' || r.method === 'POST') && r.status < 300).length;

async function twoElectors() {
  const api = await apiServer();
  const a = elector(api, 'replica-a');
  const b = elector(api, 'replica-b');
  const w = watchLeaders(api, [a, b]);
  a.start();
  b.start();
  await waitFor(() => w.leaders().length === 1, { description: 'one leader' });
  const leader = w.leaders()[0]!;
  const other = leader === a ? b : a;
  // A few renewals go by: the follower keeps following.
  const renewals = leaseWrites(api, leader.identity);
  await waitFor(() => leaseWrites(api, leader.identity) >= renewals + 5, { description: 'the leader renews' });
  expect(other.isLeader()).toBe(false);
  expect(lease(api)?.spec?.holderIdentity).toBe(leader.identity);
  expect(leaseWrites(api, other.identity)).toBe(0);
  return { api, a, b, w, leader, other };
}

describe('leader election', () => {
  it('two electors: one leads, the other follows; a clean stop releases the Lease and the other leads within about one retry period', async () => {
    const { api, w, leader, other } = await twoElectors();
    expect(leader.health()[0]).toMatchObject({ leading: true, holder: leader.identity });
    expect(other.health()[0]).toMatchObject({ leading: false, holder: leader.identity, ready: true });

    const stopping = Date.now();
    await leader.stop();
    const released = Date.now();
    // Released: no holder, a one-second duration.
    expect(lease(api)?.spec?.holderIdentity ?? '').toBe('');
    await waitFor(() => other.isLeader(), { description: 'the other leads', timeoutMs: FAST.leaseDurationMs * 3 });
    const took = w.startedAt(other.identity)! - released;
    // Far sooner than the lease duration a crashed leader would cost: the release was used.
    expect(took).toBeLessThan(FAST.leaseDurationMs - FAST.retryPeriodMs);
    expect(w.stoppedAt(leader.identity)!).toBeLessThanOrEqual(w.startedAt(other.identity)!);
    expect(lease(api)?.spec?.holderIdentity).toBe(other.identity);
    expect(lease(api)?.spec?.leaseTransitions).toBe(0); // taken from nobody (released), not from the old leader
    expect(w.most()).toBe(1);
    console.log(`clean stop: the other led ${took} ms after the release (${released - stopping} ms to stop and release); ${w.samples()} samples, most leaders at once ${w.most()}`);
  });

  it('a leader cut off from the API server stops leading at its renew deadline, before the Lease expires; the other takes over only after it expired', async () => {
    const { api, w, leader, other } = await twoElectors();
    const cutAt = Date.now();
    // A partition: the leader's requests for the Lease are never answered (its other requests would be).
    api.failWhen = (r) => (r.user === leader.identity && r.path.includes('/leases') ? 'hang' : undefined);
    // Collections while the leader's requests hang: each must still be cut at its deadline.
    const collecting = setInterval(gc, 150);
    cleanups.push(() => clearInterval(collecting));
    await waitFor(() => other.isLeader(), { description: 'the other takes over', timeoutMs: FAST.leaseDurationMs * 4 });
    expect(lease(api)?.spec?.holderIdentity).toBe(other.identity);
    const lastRenewal = w.lastRenewal(leader.identity);
    const stopped = w.stoppedAt(leader.identity, cutAt)!;
    const started = w.startedAt(other.identity, cutAt)!;
    expect(stopped).toBeDefined();
    // The old leader stopped at its renew deadline after its last successful renewal (timer slack
    // allowed), so before the new one started ...
    expect(stopped).toBeLessThan(started);
    expect(stopped - lastRenewal).toBeGreaterThanOrEqual(FAST.renewDeadlineMs);
    expect(stopped - lastRenewal).toBeLessThan(FAST.leaseDurationMs);
    // ... which waited for the Lease to go unrenewed for its whole duration.
    expect(started - lastRenewal).toBeGreaterThanOrEqual(FAST.leaseDurationMs);
    expect(w.most()).toBe(1);
    // The partition heals: the old leader sees the new holder and stays a follower.
    api.failWhen = undefined;
    const followed = () => leader.health()[0]!['holder'] === other.identity && leader.health()[0]!['healthy'] === true;
    await waitFor(followed, { description: 'the old leader follows the new one', timeoutMs: 5000 });
    expect(leader.isLeader()).toBe(false);
    expect(w.most()).toBe(1);
    console.log(`partition: after the old leader's last renewal it stopped at +${stopped - lastRenewal} ms, the new leader started at +${started - lastRenewal} ms (cut at +${cutAt - lastRenewal} ms; lease ${FAST.leaseDurationMs} ms, renew deadline ${FAST.renewDeadlineMs} ms); most leaders at once ${w.most()} over ${w.samples()} samples`);
  });

  it('a leader that dies without releasing: the other takes over only once the Lease has gone unrenewed for its duration', async () => {
    const { api, w, leader, other } = await twoElectors();
    await leader.stop({ release: false });
    const diedAt = Date.now();
    expect(lease(api)?.spec?.holderIdentity).toBe(leader.identity);
    await waitFor(() => other.isLeader(), { description: 'the other takes over', timeoutMs: FAST.leaseDurationMs * 4 });
    const started = w.startedAt(other.identity)!;
    // (A renewal in flight when it died may have landed: the sampled Lease has the last one.)
    const lastRenew = w.lastRenewal(leader.identity);
    expect(started - lastRenew).toBeGreaterThanOrEqual(FAST.leaseDurationMs);
    expect(lease(api)?.spec?.leaseTransitions).toBe(1);
    expect(w.most()).toBe(1);
    console.log(`no release: taken over ${started - lastRenew} ms after the last renewal (${started - diedAt} ms after the stop)`);
  });

  it('racing replicas: of five creating the Lease at once one wins (the others get 409), and of four taking a released Lease on one version one wins; never two leaders', async () => {
    const api = await apiServer();
    let open!: () => void;
    api.createGate = new Promise<void>((r) => (open = r));
    // Slower timings: each request may take up to a second before it is cut, so the gated ones are not.
    const timings = { leaseDurationMs: 4000, renewDeadlineMs: 3000, retryPeriodMs: 500 };
    const electors = ['a', 'b', 'c', 'd', 'e'].map((id) => elector(api, `replica-${id}`, timings));
    const w = watchLeaders(api, electors);
    for (const e of electors) e.start();
    await waitFor(() => api.gated === 5, { description: 'five creates waiting' });
    api.createGate = undefined;
    open();
    await waitFor(() => w.leaders().length === 1, { description: 'one leader' });
    const creates = api.requests.filter((r) => r.method === 'POST' && r.path.includes('/leases'));
    expect(creates.map((r) => r.status).sort()).toEqual([201, 409, 409, 409, 409]);
    const first = w.leaders()[0]!;

    // Every follower's next take-over write waits at the gate, all decided on the released version.
    let open2!: () => void;
    await first.stop();
    api.replaceGate = new Promise<void>((r) => (open2 = r));
    await waitFor(() => api.gated === 4 || w.leaders().length > 0, { description: 'four take-over writes waiting' });
    expect(api.gated).toBe(4);
    const before = api.requests.length;
    api.replaceGate = undefined;
    open2();
    await waitFor(() => w.leaders().length === 1, { description: 'one new leader' });
    await waitFor(() => api.requests.slice(before).filter((r) => r.method === 'PUT').length >= 4);
    const puts = api.requests.slice(before).filter((r) => r.method === 'PUT' && r.path.includes('/leases')).slice(0, 4);
    expect(puts.map((r) => r.status).sort()).toEqual([200, 409, 409, 409]);
    expect(w.leaders()[0]!.identity).toBe(puts.find((r) => r.status === 200)!.user);
    expect(lease(api)?.spec?.holderIdentity).toBe(w.leaders()[0]!.identity);
    // A while later: still the same single leader.
    const holder = w.leaders()[0]!;
    const renewals = leaseWrites(api, holder.identity);
    await waitFor(() => leaseWrites(api, holder.identity) >= renewals + 5);
    expect(w.leaders()).toEqual([holder]);
    expect(w.most()).toBe(1);
  });

  it('a Lease deleted under the leader: it stops at its next renewal (404), and it is created again only a lease duration later; never two leaders', async () => {
    const { api, w, leader } = await twoElectors();
    const deletedAt = Date.now();
    expect(api.remove('coordination.k8s.io/v1', 'Lease', NS, 'meshpilot-leader')).toBe(true);
    await waitFor(() => w.stoppedAt(leader.identity, deletedAt) !== undefined, { description: 'the leader steps down' });
    await waitFor(() => w.leaders().length === 1 && lease(api)?.spec?.holderIdentity === w.leaders()[0]!.identity, { description: 'a leader again', timeoutMs: FAST.leaseDurationMs * 4 });
    const next = w.leaders()[0]!;
    expect(w.startedAt(next.identity, deletedAt)! - deletedAt).toBeGreaterThanOrEqual(FAST.leaseDurationMs);
    expect(w.most()).toBe(1);
  });

  it('renews on the version it wrote; a Lease changed under it (someone else took it) ends its leadership at the next renewal', async () => {
    const { api, w, leader, other } = await twoElectors();
    const rv = Number(api.get('coordination.k8s.io/v1', 'Lease', NS, 'meshpilot-leader')!.metadata.resourceVersion);
    // An operator (or a replica of another version) hands the Lease to someone else.
    const l = api.get('coordination.k8s.io/v1', 'Lease', NS, 'meshpilot-leader')!;
    api.apply({ ...l, spec: { ...(l['spec'] as object), holderIdentity: 'someone-else', renewTime: new Date().toISOString() } });
    await waitFor(() => !leader.isLeader(), { description: 'the leader steps down' });
    expect(rv).toBeGreaterThan(0);
    expect(other.isLeader()).toBe(false);
    expect(leader.health()[0]).toMatchObject({ holder: 'someone-else', leading: false });
    expect(w.most()).toBe(1);
  });
});
