// Three clusters in two regions ("two cities, three data centres"), one service running in all of
// them, a proxyless gRPC client in zone us-east-1a. Calls stay in the caller's zone, fail over to
// the same region when the zone's endpoints are gone, then to the other region, and come back when
// the zone's endpoints return. Priorities come from the model's per-caller EDS (same zone first,
// then same region, then other regions; see translate/locality-priority.ts).
import { afterEach, describe, it } from 'vitest';
import { startControlPlane, type ControlPlane } from '../control-plane/server.ts';
import { startBackends } from './helpers/backends.ts';
import { FakeApiServer } from './helpers/fake-apiserver.ts';
import { applyBackend, istio, nodeObject, registration, removeBackend, serviceObject } from './helpers/kube-objects.ts';
import { hostOf, targetOf } from './helpers/mesh-files.ts';
import { Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';
import { createXdsClient } from './helpers/xds-client.ts';

const REVIEWS = hostOf('reviews');
const TARGET = targetOf('reviews');
const teardown = new Teardown();
afterEach(() => teardown.run());

const CLUSTERS = [
  { name: 'east-a', region: 'us-east', zone: 'us-east-1a', version: 'zone-a' },
  { name: 'east-b', region: 'us-east', zone: 'us-east-1b', version: 'zone-b' },
  { name: 'west', region: 'us-west', zone: 'us-west-2a', version: 'west' },
] as const;

describe('locality failover across three clusters', () => {
  it('a client in zone A stays in zone A, fails over to its region, then to the other region, and returns', async () => {
    const set = await startBackends(CLUSTERS.map((c) => ({ service: 'reviews', version: c.version })));
    teardown.add(() => set.stop());
    const apis = new Map<string, FakeApiServer>();
    for (const c of CLUSTERS) {
      const api = await FakeApiServer.start(c.name);
      teardown.add(() => api.close());
      api.apply(nodeObject(`${c.name}-node`, c.region, c.zone));
      api.apply(serviceObject('reviews'));
      applyBackend(api, set.get('reviews', c.version), `${c.name}-node`);
      apis.set(c.name, api);
    }
    const config = apis.get('east-a')!;
    // Locality failover needs outlier detection (as in Istio).
    config.apply(istio('DestinationRule', 'reviews', { host: REVIEWS, trafficPolicy: { outlierDetection: { consecutive5xxErrors: 1, interval: '1s', baseEjectionTime: '30s' } } }));
    const cp: ControlPlane = await startControlPlane({
      xdsListen: '127.0.0.1:0',
      adminListen: null,
      debounceMs: 20,
      logLevel: process.env.MESHPILOT_TEST_LOG_LEVEL ?? 'silent',
      kube: { configCluster: registration(config), remoteClusters: [registration(apis.get('east-b')!), registration(apis.get('west')!)] },
    });
    teardown.add(() => cp.stop());
    const client = createXdsClient({ xdsAddress: cp.xdsAddress, locality: { region: 'us-east', zone: 'us-east-1a' } });
    teardown.add(() => client.close());
    const only = async (version: string) => {
      const counts = await client.split(TARGET, 40);
      return Object.keys(counts).join() === version;
    };

    await waitFor(() => only('zone-a'), { description: 'all calls in the caller\'s zone', timeoutMs: 15_000 });
    removeBackend(config, set.get('reviews', 'zone-a'));
    await waitFor(() => only('zone-b'), { description: 'zone gone: same region' });
    removeBackend(apis.get('east-b')!, set.get('reviews', 'zone-b'));
    await waitFor(() => only('west'), { description: 'region gone: other region' });
    applyBackend(config, set.get('reviews', 'zone-a'), 'east-a-node');
    await waitFor(() => only('zone-a'), { description: 'zone back: traffic returns' });
  });
});
