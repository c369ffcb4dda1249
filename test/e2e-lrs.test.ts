// End to end: load reporting from real proxyless gRPC clients (@grpc/grpc-js-xds). The clusters of
// reviews are marked `loadReport` (as the runtime overlay marks a canary's), so meshpilot sends
// them with `lrs_server: {self: {}}`; the clients then open an LRS stream to meshpilot and report
// what their calls to real backends did: reviews v1 answers, reviews v2 fails every call. The
// window must hold exactly the calls made, per subset, per outcome, with in-flight calls while
// they last; details, not marked, must not be reported at all.
//
// Until the Canary kinds and the runtime overlay land, the mark is set by handing the control
// plane's snapshot cache the compiled model with those clusters flagged (test-only; the served
// model is otherwise exactly the compiled one).
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Model } from '../control-plane/model/types.ts';
import { getJson } from './helpers/admin-http.ts';
import { DELAY_HEADER, startBackends, type BackendSet } from './helpers/backends.ts';
import { REVIEWS, vsFor } from './helpers/bookinfo-rules.ts';
import { hostOf, targetOf } from './helpers/mesh-files.ts';
import { startTestMesh, Teardown, type TestMesh } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';
import type { XdsClient } from './helpers/xds-client.ts';
import { header, httpRoute, to } from './helpers/yaml-builders.ts';

const V1 = `outbound|9080|v1|${REVIEWS}`;
const V2 = `outbound|9080|v2|${REVIEWS}`;
const DETAILS = hostOf('details');
const REVIEWS_TARGET = targetOf('reviews');
const DETAILS_TARGET = targetOf('details');

const RULES = [
  vsFor(REVIEWS, httpRoute([to(REVIEWS, 'v2')], { match: [header('x-to', 'exact', 'v2')] }), httpRoute([to(REVIEWS, 'v1')])),
  vsFor(DETAILS, httpRoute([to(DETAILS, 'v1')])),
].join('---\n');

let backends: BackendSet;
let mesh: TestMesh;
let admin: string;
const teardown = new Teardown();

beforeAll(async () => {
  backends = await startBackends([
    { service: 'reviews', version: 'v1' },
    { service: 'reviews', version: 'v2', failWith: grpc.status.INTERNAL },
    { service: 'details', version: 'v1' },
  ]);
  mesh = await startTestMesh(teardown, {
    backends: backends.backends,
    files: { 'rules.yaml': RULES },
    prefix: 'e2e-lrs',
    controlPlane: { adminListen: '127.0.0.1:0', loadReporting: { intervalMs: 200 } },
  });
  expect(mesh.cp.state().errors.map((e) => e.message), 'the rules must be accepted').toEqual([]);
  admin = `http://${mesh.cp.adminAddress}`;
  // The test-only mark (see the top): every cluster of reviews reports load.
  const model = mesh.cp.state().model;
  const flagged: Model = { ...model, clusters: model.clusters.map((c) => (c.host === REVIEWS ? Object.freeze({ ...c, loadReport: true as const }) : c)) };
  mesh.cp.cache.setModel(flagged);
}, 30_000);

afterAll(async () => {
  await teardown.run();
  await backends?.stop();
});

/** `n` calls; how many succeeded, by version, and how many failed. */
async function calls(client: XdsClient, target: string, n: number, metadata: Record<string, string> = {}): Promise<{ ok: number; failed: number }> {
  const out = { ok: 0, failed: 0 };
  await Promise.all(
    Array.from({ length: n }, () =>
      client.call(target, metadata).then(
        () => out.ok++,
        () => out.failed++,
      ),
    ),
  );
  return out;
}

const figures = (cluster: string) => mesh.cp.load.recent(cluster);

describe('load reporting from proxyless gRPC clients', () => {
  it('reports every call to the marked clusters, by subset and outcome, from each client, and nothing for the others', async () => {
    const a = mesh.client();
    const b = mesh.client();
    // Resolution done: one call that reaches v1 (counted below).
    await waitFor(async () => (await a.call(REVIEWS_TARGET)).version === 'v1', { timeoutMs: 20_000, intervalMs: 100, description: 'client a reaches reviews v1' });
    await waitFor(async () => (await b.call(REVIEWS_TARGET)).version === 'v1', { timeoutMs: 20_000, intervalMs: 100, description: 'client b reaches reviews v1' });
    const warm = await waitUntilStable(V1);

    const [a1, a2, b1, b2, d] = await Promise.all([
      calls(a, REVIEWS_TARGET, 60),
      calls(a, REVIEWS_TARGET, 30, { 'x-to': 'v2' }),
      calls(b, REVIEWS_TARGET, 20),
      calls(b, REVIEWS_TARGET, 10, { 'x-to': 'v2' }),
      calls(a, DETAILS_TARGET, 25),
    ]);
    // What the clients saw: v1 answers, v2 fails, details answers.
    expect([a1, a2, b1, b2, d]).toEqual([{ ok: 60, failed: 0 }, { ok: 0, failed: 30 }, { ok: 20, failed: 0 }, { ok: 0, failed: 10 }, { ok: 25, failed: 0 }]);

    const wantV1 = warm.succeeded + 80;
    await waitFor(() => figures(V1).succeeded >= wantV1 && figures(V2).failed >= 40, { timeoutMs: 10_000, description: `reports of ${wantV1} successes on v1 and 40 failures on v2 (now ${JSON.stringify([figures(V1), figures(V2)])})` });
    expect(figures(V1)).toEqual({ completed: warm.completed + 80, succeeded: wantV1, failed: warm.failed, issued: warm.issued + 80, inFlight: 0, proxies: 2 });
    expect(figures(V2)).toEqual({ completed: 40, succeeded: 0, failed: 40, issued: 40, inFlight: 0, proxies: 2 });
    // details is not marked: its clients never report it.
    expect(mesh.cp.load.clusters().filter((c) => c.includes(DETAILS))).toEqual([]);

    const { body } = await getJson(`${admin}/debug/load`);
    const reviews = body.services.find((s: { host: string }) => s.host === REVIEWS);
    expect(reviews.subsets.find((s: { subset: string }) => s.subset === 'v2')).toMatchObject({ cluster: V2, successRate: 0, completed: 40, failed: 40, proxies: 2 });
    expect(reviews.subsets.find((s: { subset: string }) => s.subset === 'v1')).toMatchObject({ cluster: V1, completed: warm.completed + 80, proxies: 2 });
    expect(body.unknownClusters).toEqual([]);
  });

  it('shows calls in flight while they last', async () => {
    const c = mesh.client();
    await waitFor(async () => (await c.call(REVIEWS_TARGET)).version === 'v1', { timeoutMs: 20_000, intervalMs: 100, description: 'client c reaches reviews v1' });
    const slow = calls(c, REVIEWS_TARGET, 5, { [DELAY_HEADER]: '2500' });
    await waitFor(() => figures(V1).inFlight === 5, { timeoutMs: 5000, description: `5 calls in flight (now ${figures(V1).inFlight})` });
    expect(await slow).toEqual({ ok: 5, failed: 0 });
    await waitFor(() => figures(V1).inFlight === 0, { timeoutMs: 5000, description: 'none in flight once they finished' });
  });
});

/** The v1 figures once they stop changing (the warm-up calls reported). */
async function waitUntilStable(cluster: string) {
  let last = -1;
  let same = 0;
  await waitFor(
    () => {
      const n = figures(cluster).completed;
      same = n === last && n > 0 ? same + 1 : 0;
      last = n;
      return same >= 3;
    },
    { timeoutMs: 10_000, intervalMs: 250, description: 'the warm-up calls reported' },
  );
  return figures(cluster);
}
