// A subset that loses every endpoint, through the Kubernetes source: two simulated clusters (fake
// API servers speaking the real list/watch protocol), reviews v1 and the dark v3 in cluster 1, v2
// in cluster 2, subsets chosen by the pods' `version` label. The DestinationRule and the
// VirtualService (header route jason -> v2, 80/20 v1/v2 split) are CRD objects in the config
// cluster. Real grpc-js-xds clients call real backends.
// Cluster 2's EndpointSlice for reviews goes away: the VirtualService stays in force (Accepted
// stays True, nothing rejected, a warning names subset v2), 80% of calls still land on v1, v2's
// share and every jason call fail with UNAVAILABLE, nothing reaches v3. The slice comes back:
// 80/20 again. Through it all only EDS is pushed (the control plane's own push counter).
import { afterEach, describe, expect, it } from 'vitest';
import { startControlPlane, type ControlPlane } from '../control-plane/server.ts';
import { startBackends } from './helpers/backends.ts';
import { FakeApiServer } from './helpers/fake-apiserver.ts';
import { applyBackend, backendObjects, istio, nodeObject, registration, serviceObject } from './helpers/kube-objects.ts';
import { hostOf, targetOf } from './helpers/mesh-files.ts';
import { Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';
import { createXdsClient } from './helpers/xds-client.ts';

const REVIEWS = hostOf('reviews');
const TARGET = targetOf('reviews');
const JASON = { 'end-user': 'jason' };
const N = 1000;
// 1000 calls at p = 0.8: sd = sqrt(1000 * 0.8 * 0.2) ~ 12.6 calls, so 0.75-0.85 is about 4 sd.
const LOW = 0.75;
const HIGH = 0.85;

const teardown = new Teardown();
afterEach(() => teardown.run());

const DR = istio('DestinationRule', 'reviews', { host: REVIEWS, subsets: ['v1', 'v2', 'v3'].map((v) => ({ name: v, labels: { version: v } })) });
const VS = istio('VirtualService', 'reviews', {
  hosts: [REVIEWS],
  http: [
    { name: 'testers', match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ destination: { host: REVIEWS, subset: 'v2' } }] },
    {
      name: 'split',
      route: [
        { destination: { host: REVIEWS, subset: 'v1' }, weight: 80 },
        { destination: { host: REVIEWS, subset: 'v2' }, weight: 20 },
      ],
    },
  ],
});

async function fakeCluster(name: string): Promise<FakeApiServer> {
  const api = await FakeApiServer.start(name);
  teardown.add(() => api.close());
  return api;
}

/** Pushes by type so far (the control plane's own counter). */
async function pushes(cp: ControlPlane): Promise<Record<string, number>> {
  const m = await cp.metrics.pushes.get();
  return Object.fromEntries(m.values.map((v) => [String(v.labels.type), v.value]));
}

function acceptedCondition(api: FakeApiServer, kind: string, name: string): { status: string; message: string } | undefined {
  const o = api.get('networking.istio.io/v1', kind, 'default', name);
  const conditions = (o?.['status'] as { conditions?: Array<{ type: string; status: string; message: string }> } | undefined)?.conditions;
  return conditions?.find((c) => c.type === 'Accepted');
}

describe('Kubernetes: a subset whose cluster loses its endpoints', () => {
  it('keeps the VirtualService in force across two clusters: v2 share fails, jason fails, v3 stays dark, only EDS is pushed', async () => {
    const set = await startBackends(['v1', 'v2', 'v3'].map((version) => ({ service: 'reviews', version })));
    teardown.add(() => set.stop());
    const east = await fakeCluster('east');
    const west = await fakeCluster('west');
    east.apply(nodeObject('e1', 'us-east', 'us-east-1a'));
    east.apply(serviceObject('reviews'));
    applyBackend(east, set.get('reviews', 'v1'), 'e1');
    applyBackend(east, set.get('reviews', 'v3'), 'e1');
    west.apply(nodeObject('w1', 'us-west', 'us-west-2a'));
    west.apply(serviceObject('reviews'));
    applyBackend(west, set.get('reviews', 'v2'), 'w1');
    east.apply(DR);
    east.apply(VS);

    const cp = await startControlPlane({
      xdsListen: '127.0.0.1:0',
      adminListen: null,
      debounceMs: 20,
      logLevel: process.env.MESHPILOT_TEST_LOG_LEVEL ?? 'silent',
      kube: { configCluster: registration(east), remoteClusters: [registration(west)] },
    });
    teardown.add(() => cp.stop());
    const client = createXdsClient({ xdsAddress: cp.xdsAddress });
    teardown.add(() => client.close());

    // The whole service (no rule for it would send anywhere else) has v1, v2 and v3 from both clusters.
    await waitFor(async () => (await client.split(TARGET, 20, JASON)).v2 === 20, { timeoutMs: 15_000, description: 'the header route to reach the client' });
    await waitFor(() => acceptedCondition(east, 'VirtualService', 'reviews')?.status === 'True', { description: 'Accepted=True written' });
    const svc = cp.state().model.services.find((s) => s.host === REVIEWS)!;
    expect(svc.endpoints.map((e) => e.labels['version']).sort()).toEqual(['v1', 'v2', 'v3']);

    const before = await client.split(TARGET, N);
    const shown = (c: Record<string, number>) => JSON.stringify(c);
    expect((before.v1 ?? 0) / N, shown(before)).toBeGreaterThan(LOW);
    expect((before.v1 ?? 0) / N, shown(before)).toBeLessThan(HIGH);
    expect((before.v1 ?? 0) + (before.v2 ?? 0), shown(before)).toBe(N);

    const rulesInForce = cp.state().accepted.filter((o) => o.kind === 'VirtualService' || o.kind === 'DestinationRule');
    expect(rulesInForce.map((o) => o.key).sort()).toEqual(['DestinationRule/default/reviews', 'VirtualService/default/reviews']);
    const pushedBefore = await pushes(cp);

    // Cluster 2's EndpointSlice for reviews goes away (the pod stays): v2 has no endpoint left.
    const v2 = set.get('reviews', 'v2');
    expect(west.remove('discovery.k8s.io/v1', 'EndpointSlice', 'default', `reviews-${v2.port}`)).toBe(true);
    await waitFor(async () => (await client.split(TARGET, 10, JASON))['error:UNAVAILABLE'] === 10, { timeoutMs: 15_000, description: 'calls for v2 to fail' });

    // The endpoints travelled without a compile; the compile after them brings the endpoint warnings.
    await waitFor(() => cp.state().warnings.length === 2, { timeoutMs: 15_000, description: 'the endpoint warnings' });
    const state = cp.state();
    expect(state.rejected).toEqual([]);
    expect(state.errors).toEqual([]);
    expect(state.accepted.filter((o) => o.kind === 'VirtualService' || o.kind === 'DestinationRule')).toEqual(rulesInForce);
    const warnings = state.warnings.map((w) => w.message);
    expect(warnings, warnings.join('\n')).toContain(`subset v2 of ${REVIEWS} has no endpoints now: its 20% share of this route's calls fails (Envoy: 503 no healthy upstream; gRPC: UNAVAILABLE)`);
    expect(warnings, warnings.join('\n')).toContain(`subset v2 of ${REVIEWS} has no endpoints now: its 100% share of this route's calls fails (Envoy: 503 no healthy upstream; gRPC: UNAVAILABLE)`);
    expect(state.warnings.every((w) => w.key === 'VirtualService/default/reviews' && w.message.includes('subset v2 ')), warnings.join('\n')).toBe(true);
    expect(state.model.services.find((s) => s.host === REVIEWS)!.endpoints.map((e) => e.labels['version']).sort()).toEqual(['v1', 'v3']);

    // Measured once the client has settled on the new endpoints (on a heavily loaded machine the
    // first split right after the change saw v1 calls fail too, 414 of 1000): a regression that
    // keeps failing still fails here, after the timeout, with the last split shown.
    let without: Record<string, number> = {};
    await waitFor(
      async () => {
        without = await client.split(TARGET, N);
        const v1 = (without.v1 ?? 0) / N;
        return v1 > LOW && v1 < HIGH;
      },
      { timeoutMs: 15_000, intervalMs: 200, description: 'the 80/20 split with v2 failing to settle' },
    ).catch((e) => {
      throw new Error(`${(e as Error).message}; last split ${shown(without)}`);
    });
    expect(without.v3 ?? 0, shown(without)).toBe(0);
    expect(without.v2 ?? 0, shown(without)).toBe(0);
    expect((without.v1 ?? 0) / N, shown(without)).toBeGreaterThan(LOW);
    expect((without.v1 ?? 0) / N, shown(without)).toBeLessThan(HIGH);
    expect((without.v1 ?? 0) + (without['error:UNAVAILABLE'] ?? 0), shown(without)).toBe(N);
    // The header route holds: its calls fail, they do not fall through to the split or to v3.
    expect(await client.split(TARGET, 100, JASON)).toEqual({ 'error:UNAVAILABLE': 100 });
    // The rule is still reported in force on the API server.
    expect(acceptedCondition(east, 'VirtualService', 'reviews')).toMatchObject({ status: 'True', message: 'in force' });

    // The slice comes back: 80/20 again.
    west.apply(backendObjects(v2, 'w1').slice);
    await waitFor(async () => (await client.split(TARGET, 10, JASON)).v2 === 10, { timeoutMs: 15_000, description: 'v2 to answer again' });
    const after = await client.split(TARGET, N);
    expect((after.v1 ?? 0) / N, shown(after)).toBeGreaterThan(LOW);
    expect((after.v1 ?? 0) / N, shown(after)).toBeLessThan(HIGH);
    expect((after.v1 ?? 0) + (after.v2 ?? 0), shown(after)).toBe(N);
    await waitFor(() => cp.state().warnings.length === 0, { timeoutMs: 15_000, description: 'the endpoint warnings to go' });
    expect(cp.state().accepted.filter((o) => o.kind === 'VirtualService' || o.kind === 'DestinationRule')).toEqual(rulesInForce);

    // Through all of it only endpoints were pushed.
    const pushedAfter = await pushes(cp);
    for (const type of ['cds', 'lds', 'rds']) expect(pushedAfter[type] ?? 0, `${type} pushes`).toBe(pushedBefore[type] ?? 0);
    expect(pushedAfter.eds ?? 0).toBeGreaterThan(pushedBefore.eds ?? 0);
  });
});
