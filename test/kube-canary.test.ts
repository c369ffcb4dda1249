// Canaries through Kubernetes: the Canary CRD from a fake API server (real list/watch, real
// client) drives its route, the leader keeps the rollout in the Canary's status (beside its
// Accepted condition), and a new control plane resumes from that status, not from step one.
import { afterEach, describe, expect, it } from 'vitest';
import { startControlPlane, type ControlPlane } from '../control-plane/server.ts';
import { FakeApiServer } from './helpers/fake-apiserver.ts';
import { istio, registration, serviceObject } from './helpers/kube-objects.ts';
import { hostOf } from './helpers/mesh-files.ts';
import { Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';

const teardown = new Teardown();
afterEach(() => teardown.run());

const REVIEWS = hostOf('reviews');
const KEY = 'Canary/default/reviews';
const CANARY = istio('Canary', 'reviews', { target: { host: 'reviews', route: 'main' }, stable: 'v1', canary: 'v2', steps: [10, 50, 100], interval: '10m', analysis: { minRequests: 20 } }, 'traffic.meshpilot.io/v1alpha1');

const start = async (api: FakeApiServer): Promise<ControlPlane> => {
  const cp = await startControlPlane({ xdsListen: '127.0.0.1:0', adminListen: null, debounceMs: 20, logLevel: 'silent', kube: { configCluster: registration(api) }, rollouts: { tickMs: 50, refreshMs: 200 } });
  teardown.add(() => cp.stop());
  return cp;
};

const weights = (cp: ControlPlane) => {
  const route = cp.state().model.routeTables.find((t) => t.host === REVIEWS)?.routes[0];
  return route?.action.kind === 'route' ? route.action.destinations.map((d) => [d.subset, d.weight]) : undefined;
};

describe('a Canary from Kubernetes', () => {
  it('keeps its rollout in the status, and a restarted control plane resumes from it', async () => {
    const api = await FakeApiServer.start('east');
    teardown.add(() => api.close());
    api.apply(serviceObject('reviews'));
    api.apply(istio('DestinationRule', 'reviews', { host: REVIEWS, subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] }));
    api.apply(istio('VirtualService', 'reviews', { hosts: [REVIEWS], http: [{ name: 'main', route: [{ destination: { host: REVIEWS, subset: 'v1' } }] }] }));
    api.apply(CANARY);
    const status = () => api.get('traffic.meshpilot.io/v1alpha1', 'Canary', 'default', 'reviews')?.['status'] as { rollout?: Record<string, unknown>; conditions?: Array<{ type: string; status: string }> } | undefined;

    const cp = await start(api);
    await waitFor(() => status()?.rollout?.['weight'] === 10, { description: 'the rollout written to the Canary status' });
    expect(weights(cp)).toEqual([['v1', 90], ['v2', 10]]);
    const paused = await cp.rollouts.command(KEY, 'pause');
    expect(paused.ok).toBe(true);
    await waitFor(() => status()?.rollout?.['phase'] === 'Paused', { description: 'Paused in the status' });
    await waitFor(() => status()?.conditions?.some((c) => c.type === 'Accepted' && c.status === 'True') === true, { description: 'the Accepted condition kept beside it' });
    await cp.stop();

    // Someone moves it on by hand in the status (as a previous leader would have): the new one serves that.
    const rollout = { ...status()!.rollout!, phase: 'Paused', step: 1, weight: 50 };
    api.apply({ ...api.get('traffic.meshpilot.io/v1alpha1', 'Canary', 'default', 'reviews')!, status: { ...status(), rollout } });
    const next = await start(api);
    // Its first model with the Canary in it already has the status's weights (state is read before any model).
    await waitFor(() => weights(next) !== undefined, { description: 'the rules compiled' });
    expect(weights(next)).toEqual([['v1', 50], ['v2', 50]]);
    expect(next.rollouts.canaries()).toEqual([expect.objectContaining({ key: KEY, phase: 'Paused', weight: 50 })]);
  });
});
