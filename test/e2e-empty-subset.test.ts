// End to end: a subset that loses every endpoint (a canary scaled to zero, a rollout, a drain)
// must not change what the rules do. Real grpc-js-xds clients call real backends: with v2 gone,
// the 90/10 split keeps 90% on v1, v2's share fails with UNAVAILABLE, the dark v3 gets nothing,
// and calls matched to v2 by header fail rather than fall through. Endpoint changes reach the
// client as EDS alone: no rule event, no CDS, LDS or RDS push.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startBackends, type BackendSet } from './helpers/backends.ts';
import { hostOf, replaceFile, serviceEntriesYaml, targetOf } from './helpers/mesh-files.ts';
import { startTestMesh, Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';
import type { XdsClient } from './helpers/xds-client.ts';

const REVIEWS = hostOf('reviews');
const TARGET = targetOf('reviews');
const JASON = { 'end-user': 'jason' };

const RULE = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [${REVIEWS}]
  http:
  - name: testers
    match: [{ headers: { end-user: { exact: jason } } }]
    route: [{ destination: { host: ${REVIEWS}, subset: v2 } }]
  - name: split
    route:
    - { destination: { host: ${REVIEWS}, subset: v1 }, weight: 90 }
    - { destination: { host: ${REVIEWS}, subset: v2 }, weight: 10 }
`;

async function tally(client: XdsClient, n: number, metadata: Record<string, string> = {}): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  let started = 0;
  const worker = async () => {
    while (started < n) {
      started += 1;
      let key: string;
      try {
        key = (await client.call(TARGET, metadata, 3000)).version;
      } catch (e) {
        key = `error:${(e as { code?: number }).code === 14 ? 'UNAVAILABLE' : String((e as Error).message)}`;
      }
      counts[key] = (counts[key] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: 25 }, worker));
  return counts;
}

/** Pushes by type so far (the control plane's own counter). */
async function pushes(mesh: { cp: { metrics: { pushes: { get(): Promise<{ values: Array<{ labels: Record<string, unknown>; value: number }> }> } } } }): Promise<Record<string, number>> {
  const m = await mesh.cp.metrics.pushes.get();
  return Object.fromEntries(m.values.map((v) => [String(v.labels.type), v.value]));
}

describe('a subset without endpoints', () => {
  let backends: BackendSet;
  const teardown = new Teardown();
  beforeAll(async () => {
    backends = await startBackends(['v1', 'v2', 'v3'].map((version) => ({ service: 'reviews', version })));
  });
  afterAll(() => backends.stop());
  afterEach(() => teardown.run());

  it('keeps the rule in force: its share fails, nothing reaches the dark v3, and endpoints travel by EDS alone', async () => {
    const mesh = await startTestMesh(teardown, { backends: backends.backends, files: { 'rules.yaml': RULE }, prefix: 'empty-subset' });
    const client = mesh.client();
    await waitFor(async () => (await tally(client, 20, JASON)).v2 === 20, { timeoutMs: 15_000, description: 'the header route to reach the client' });
    const before = await tally(client, 1000);
    expect(before.v1! / 1000, JSON.stringify(before)).toBeGreaterThan(0.86);
    expect(before.v1! / 1000, JSON.stringify(before)).toBeLessThan(0.94);
    expect(before.v3 ?? 0).toBe(0);

    const rulesInForce = mesh.cp.state().accepted.filter((o) => o.kind === 'VirtualService');
    const pushedBefore = await pushes(mesh);

    // v2's last endpoint goes away.
    await replaceFile(mesh.dir, 'services.yaml', serviceEntriesYaml(backends.backends.filter((b) => b.version !== 'v2')));
    await waitFor(async () => (await tally(client, 10, JASON))['error:UNAVAILABLE'] === 10, { timeoutMs: 15_000, description: 'calls for v2 to fail' });
    expect(mesh.cp.state().rejected).toEqual([]);
    expect(mesh.cp.state().errors).toEqual([]);
    expect(mesh.cp.state().accepted.filter((o) => o.kind === 'VirtualService')).toEqual(rulesInForce);
    // Endpoints reach proxies without a compile; the compile that brings endpoint warnings up to
    // date follows within seconds.
    const warning = `subset v2 of ${REVIEWS} has no endpoints now: its 10% share of this route's calls fails (Envoy: 503 no healthy upstream; gRPC: UNAVAILABLE)`;
    await waitFor(() => mesh.cp.state().warnings.some((w) => w.message === warning), { timeoutMs: 15_000, description: 'the endpoint warning' });
    const without = await tally(client, 1000);
    expect(without.v3 ?? 0, JSON.stringify(without)).toBe(0);
    expect(without.v2 ?? 0, JSON.stringify(without)).toBe(0);
    expect(without.v1! / 1000, JSON.stringify(without)).toBeGreaterThan(0.86);
    expect(without.v1! / 1000, JSON.stringify(without)).toBeLessThan(0.94);
    expect(without.v1! + without['error:UNAVAILABLE']!, JSON.stringify(without)).toBe(1000);
    // The header route still holds: its calls fail, they do not fall through to the split.
    expect(await tally(client, 100, JASON)).toEqual({ 'error:UNAVAILABLE': 100 });

    // v2 comes back: 90/10 again.
    await replaceFile(mesh.dir, 'services.yaml', serviceEntriesYaml(backends.backends));
    await waitFor(async () => (await tally(client, 10, JASON)).v2 === 10, { timeoutMs: 15_000, description: 'v2 to answer again' });
    const after = await tally(client, 1000);
    expect(after.v1! / 1000, JSON.stringify(after)).toBeGreaterThan(0.86);
    expect(after.v1! / 1000, JSON.stringify(after)).toBeLessThan(0.94);
    expect(after.v1! + after.v2!, JSON.stringify(after)).toBe(1000);
    await waitFor(() => mesh.cp.state().warnings.length === 0, { timeoutMs: 15_000, description: 'the endpoint warnings to go' });

    // Through all of it only endpoints were pushed.
    const pushedAfter = await pushes(mesh);
    for (const type of ['cds', 'lds', 'rds']) expect(pushedAfter[type] ?? 0, type).toBe(pushedBefore[type] ?? 0);
    expect(pushedAfter.eds ?? 0).toBeGreaterThan(pushedBefore.eds ?? 0);
  });
});
