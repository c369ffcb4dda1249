// End to end through Kubernetes: fake API servers (real list/watch protocol) -> meshpilot's
// informers -> model -> ADS -> real proxyless gRPC clients (@grpc/grpc-js-xds) -> real backends.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { startControlPlane, type ControlPlane } from '../control-plane/server.ts';
import { startBackends, type BackendSet } from './helpers/backends.ts';
import { FakeApiServer } from './helpers/fake-apiserver.ts';
import { applyBackend, istio, nodeObject, registration, removeBackend, serviceObject } from './helpers/kube-objects.ts';
import { hostOf, serviceEntriesYaml, targetOf } from './helpers/mesh-files.ts';
import { RawAdsClient } from './helpers/raw-ads.ts';
import { Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';
import { createXdsClient, type XdsClient } from './helpers/xds-client.ts';

const REVIEWS = hostOf('reviews');
const TARGET = targetOf('reviews');
const teardown = new Teardown();
afterEach(() => teardown.run());

async function fakeCluster(name: string): Promise<FakeApiServer> {
  const api = await FakeApiServer.start(name);
  teardown.add(() => api.close());
  return api;
}

async function backends(specs: Array<{ service: string; version: string }>): Promise<BackendSet> {
  const set = await startBackends(specs);
  teardown.add(() => set.stop());
  return set;
}

async function controlPlane(opts: Parameters<typeof startControlPlane>[0]): Promise<ControlPlane> {
  const cp = await startControlPlane({ xdsListen: '127.0.0.1:0', adminListen: null, debounceMs: 20, logLevel: process.env.MESHPILOT_TEST_LOG_LEVEL ?? 'silent', ...opts });
  teardown.add(() => cp.stop());
  return cp;
}

function client(cp: ControlPlane): XdsClient {
  const c = createXdsClient({ xdsAddress: cp.xdsAddress });
  teardown.add(() => c.close());
  return c;
}

function versions(counts: Record<string, number>): string {
  return Object.keys(counts).sort().join(',');
}

const DR = istio('DestinationRule', 'reviews', { host: REVIEWS, subsets: ['v1', 'v2', 'v3'].map((v) => ({ name: v, labels: { version: v } })) });

function routeAll(subset: string, weight: number | string = 100) {
  return istio('VirtualService', 'reviews', { hosts: [REVIEWS], http: [{ route: [{ destination: { host: REVIEWS, subset }, weight }] }] });
}

function accepted(api: FakeApiServer, kind: string, name: string): { status: string; message: string; observedGeneration?: number } | undefined {
  const o = api.get('networking.istio.io/v1', kind, 'default', name);
  const conditions = (o?.['status'] as { conditions?: Array<{ type: string; status: string; message: string; observedGeneration?: number }> } | undefined)?.conditions;
  return conditions?.find((c) => c.type === 'Accepted');
}

describe('Kubernetes sources, end to end', () => {
  it('Services and EndpointSlices become mesh services; VirtualServices applied through the API route live; an invalid one gets Accepted=False and changes nothing', async () => {
    const set = await backends([{ service: 'reviews', version: 'v1' }, { service: 'reviews', version: 'v2' }, { service: 'ratings', version: 'v1' }]);
    const api = await fakeCluster('east');
    api.apply(nodeObject('node-a', 'us-east', 'us-east-1a'));
    api.apply(serviceObject('reviews'));
    applyBackend(api, set.get('reviews', 'v1'), 'node-a');
    applyBackend(api, set.get('reviews', 'v2'), 'node-a');
    api.apply(DR);
    // Files at the same time: ratings is declared in a file.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'meshpilot-kube-'));
    teardown.add(() => rm(dir, { recursive: true, force: true }));
    await writeFile(path.join(dir, 'ratings.yaml'), serviceEntriesYaml([set.get('ratings', 'v1')]));
    const cp = await controlPlane({ configDir: dir, kube: { configCluster: registration(api) } });
    const c = client(cp);

    await waitFor(async () => versions(await c.split(TARGET, 40)) === 'v1,v2', { description: 'both Kubernetes endpoints reached' });
    expect((await c.call(targetOf('ratings'))).service).toBe('ratings');
    const svc = cp.state().model.services.find((s) => s.host === REVIEWS)!;
    expect(svc.endpoints.map((e) => [e.labels['version'], e.serviceAccount, `${e.locality.region}/${e.locality.zone}`]).sort()).toEqual([
      ['v1', 'reviews', 'us-east/us-east-1a'],
      ['v2', 'reviews', 'us-east/us-east-1a'],
    ]);

    api.apply(routeAll('v2'));
    await waitFor(async () => versions(await c.split(TARGET, 30)) === 'v2', { description: 'VirtualService from the API server routes to v2' });
    await waitFor(() => accepted(api, 'VirtualService', 'reviews')?.status === 'True', { description: 'Accepted=True written' });
    expect(accepted(api, 'VirtualService', 'reviews')!.observedGeneration).toBe(1);

    api.apply(routeAll('v1', -5));
    await waitFor(() => accepted(api, 'VirtualService', 'reviews')?.status === 'False', { description: 'Accepted=False written' });
    const cond = accepted(api, 'VirtualService', 'reviews')!;
    expect(cond.message).toContain('spec.http[0].route[0].weight');
    expect(cond.observedGeneration).toBe(2);
    expect(versions(await c.split(TARGET, 30))).toBe('v2'); // the previous version stays in force

    // A header route: jason goes to v1, everyone else to v2.
    api.apply(istio('VirtualService', 'reviews', {
      hosts: [REVIEWS],
      http: [
        { match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ destination: { host: REVIEWS, subset: 'v1' } }] },
        { route: [{ destination: { host: REVIEWS, subset: 'v2' } }] },
      ],
    }));
    await waitFor(async () => versions(await c.split(TARGET, 20, { 'end-user': 'jason' })) === 'v1', { description: 'header route' });
    expect(versions(await c.split(TARGET, 20))).toBe('v2');
    await waitFor(() => accepted(api, 'VirtualService', 'reviews')?.status === 'True');

    // A cross-object error (unknown subset) is reported with its path as well.
    api.apply(routeAll('v9'));
    await waitFor(() => accepted(api, 'VirtualService', 'reviews')?.status === 'False');
    expect(accepted(api, 'VirtualService', 'reviews')!.message).toMatch(/spec\.http\[0\]\.route\[0\]\.destination\.subset.*v9/);
    expect(versions(await c.split(TARGET, 20, { 'end-user': 'jason' }))).toBe('v1');

    // Status is written only when it changes: an unrelated recompile writes nothing.
    const statusWrites = () => api.requests.filter((r) => r.method === 'PATCH' && r.path.endsWith('/virtualservices/reviews/status')).length;
    const writes = statusWrites();
    expect(writes).toBe(4); // True, False (weight), True (header route), False (subset)
    api.apply(serviceObject('details'));
    await waitFor(() => cp.state().model.services.some((s) => s.host === hostOf('details')), { description: 'unrelated change compiled' });
    expect(statusWrites()).toBe(writes);

    // Deleting the rule through the API goes back to the whole service.
    api.remove('networking.istio.io/v1', 'VirtualService', 'default', 'reviews');
    await waitFor(async () => versions(await c.split(TARGET, 40)) === 'v1,v2', { description: 'VirtualService deleted' });
  });

  it('no config before the initial sync: ADS answers UNAVAILABLE and /readyz is 503 until the cluster has synced', async () => {
    const set = await backends([{ service: 'reviews', version: 'v1' }]);
    const api = await fakeCluster('east');
    api.apply(serviceObject('reviews'));
    applyBackend(api, set.get('reviews', 'v1'), 'node-a');
    await api.stop();
    const cp = await controlPlane({ adminListen: '127.0.0.1:0', kube: { configCluster: registration(api), syncTimeoutMs: 60_000, backoffMinMs: 20, backoffMaxMs: 200 } });

    const raw = new RawAdsClient(cp.xdsAddress);
    teardown.add(() => raw.close());
    raw.send({ node: { id: 'sidecar~127.0.0.1~x.default~default.svc.cluster.local' }, type_url: 'type.googleapis.com/envoy.config.cluster.v3.Cluster' });
    await expect(raw.next(5000)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    const ready = await fetch(`http://${cp.adminAddress}/readyz`);
    expect(ready.status).toBe(503);
    const body = (await ready.json()) as { failing: string[]; components: Array<{ name: string; ok: boolean; degraded?: boolean }> };
    expect(body.failing).toContain('cluster/east');
    expect(body.components.find((c) => c.name === 'cluster/east')).toMatchObject({ ok: false, degraded: true });

    await api.restart();
    await waitFor(async () => (await fetch(`http://${cp.adminAddress}/readyz`)).status === 200, { description: 'ready after sync' });
    const c = client(cp);
    await waitFor(async () => versions(await c.split(TARGET, 10)) === 'v1', { description: 'served after sync' });
    const health = (await (await fetch(`http://${cp.adminAddress}/healthz`)).json()) as { status: string };
    expect(health.status).toBe('ok');
  });

  it('two clusters, one service; a remote API server that dies keeps its endpoints and is reported; back with changed endpoints it converges without a gap; its Secret registers and unregisters it', async () => {
    const set = await backends([{ service: 'reviews', version: 'v1' }, { service: 'reviews', version: 'v2' }, { service: 'reviews', version: 'v3' }]);
    const east = await fakeCluster('east');
    const west = await fakeCluster('west');
    east.apply(nodeObject('e1', 'us-east', 'us-east-1a'));
    east.apply(serviceObject('reviews'));
    applyBackend(east, set.get('reviews', 'v1'), 'e1');
    west.apply(nodeObject('w1', 'us-west', 'us-west-2a'));
    west.apply(serviceObject('reviews'));
    applyBackend(west, set.get('reviews', 'v2'), 'w1');
    // west is registered live by a Secret in the config cluster.
    const secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'cluster-west', namespace: 'meshpilot-system', labels: { 'meshpilot.io/cluster': 'west' } },
      data: { kubeconfig: Buffer.from(west.kubeconfig()).toString('base64') },
    };
    east.apply(secret);
    const cp = await controlPlane({ kube: { configCluster: registration(east), secretsNamespace: 'meshpilot-system', backoffMinMs: 20, backoffMaxMs: 200 } });
    const seen: number[] = [];
    cp.cache.onChange(() => seen.push(cp.state().model.services.find((s) => s.host === REVIEWS)?.endpoints.length ?? 0));
    const c = client(cp);
    const westHealth = () => cp.kube!.health().find((h) => h.name === 'cluster/west');

    await waitFor(async () => versions(await c.split(TARGET, 40)) === 'v1,v2', { description: 'endpoints of both clusters' });
    expect(seen[0]).toBe(2); // nothing was served before both clusters had synced
    expect(westHealth()).toMatchObject({ ready: true, healthy: true, origin: 'Secret meshpilot-system/cluster-west' });

    // west's API server goes away: its endpoint stays in force, the cluster is reported unhealthy.
    await west.stop();
    await waitFor(() => westHealth()?.healthy === false, { description: 'west reported unhealthy' });
    expect(String(westHealth()!.detail)).toMatch(/unreachable, serving its last known state/);
    expect(versions(await c.split(TARGET, 40))).toBe('v1,v2');

    // While it is down its endpoints change (v2 replaced by v3) and its event history is compacted,
    // so the informers must relist when it is back.
    removeBackend(west, set.get('reviews', 'v2'));
    applyBackend(west, set.get('reviews', 'v3'), 'w1');
    west.compact();
    await west.restart();
    await waitFor(async () => versions(await c.split(TARGET, 40)) === 'v1,v3', { description: 'converged on the new west endpoints' });
    await waitFor(() => westHealth()?.healthy === true, { description: 'west healthy again' });
    expect(seen.length).toBeGreaterThan(1);
    // The 410 made west's informers relist (a second list of Services), and still no gap.
    expect(west.requests.filter((r) => r.path === '/api/v1/services' && !r.query.includes('watch')).length).toBe(2);
    expect(seen.filter((n) => n < 2), `endpoint counts pushed: ${seen.join(',')}`).toEqual([]);

    // Deleting the Secret unregisters west: its endpoints go.
    east.remove('v1', 'Secret', 'meshpilot-system', 'cluster-west');
    await waitFor(async () => versions(await c.split(TARGET, 20)) === 'v1', { description: 'west unregistered' });
    expect(westHealth()).toBeUndefined();
  });
});
