// A DestinationRule with a wildcard host, end to end with real proxyless gRPC clients: its subsets
// and its load balancing apply to every service it matches, unless a closer rule (the service's
// own host) exists. Nothing here reads generated xDS: calls land where the rules say, or not.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startBookinfoBackends, type BackendSet } from './helpers/backends.ts';
import { REVIEWS, serviceTo } from './helpers/bookinfo-rules.ts';
import { hostOf, targetOf } from './helpers/mesh-files.ts';
import { startTestMesh, Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';
import { destinationRule, yamlDocs } from './helpers/yaml-builders.ts';
import type { XdsClient } from './helpers/xds-client.ts';

const REVIEWS_TARGET = targetOf('reviews');

let bookinfo: BackendSet;
const teardown = new Teardown();
beforeAll(async () => {
  bookinfo = await startBookinfoBackends();
});
afterAll(async () => {
  await bookinfo?.stop();
});
afterEach(() => teardown.run());

/** The mesh's DestinationRules replaced by `rules` (the test mesh writes one exact rule per service otherwise). */
function startMesh(destinationRules: string, rules: string) {
  return startTestMesh(teardown, { backends: bookinfo.backends, files: { 'destination-rules.yaml': destinationRules, 'rules.yaml': rules }, prefix: 'e2e-drwild' });
}

async function until(client: XdsClient, target: string, version: string): Promise<void> {
  await waitFor(async () => (await client.call(target).catch(() => ({ version: '' }))).version === version, { timeoutMs: 20_000, intervalMs: 100, description: `calls to ${target} answered by ${version}` });
}

describe('a wildcard DestinationRule with proxyless gRPC clients', () => {
  it('gives its subsets to every service it matches; an exact host rule comes first', async () => {
    const wildcard = destinationRule({ name: 'namespace-wide', host: '*.default.svc.cluster.local', subsets: ['v1', 'v2', 'v3'] });
    // reviews' own rule names its subsets differently: only it applies to reviews.
    const exact = destinationRule({ name: 'reviews', host: REVIEWS, subsets: [{ name: 'newest', labels: { version: 'v3' } }] });
    const RATINGS = hostOf('ratings');
    const mesh = await startMesh(yamlDocs(wildcard, exact), yamlDocs(serviceTo(REVIEWS, 'newest'), serviceTo(RATINGS, 'v1')));
    const client = mesh.client();
    await until(client, REVIEWS_TARGET, 'v3');
    expect(await client.split(REVIEWS_TARGET, 60)).toEqual({ v3: 60 });
    expect(await client.split(targetOf('ratings'), 20)).toEqual({ v1: 20 });
    expect(mesh.cp.state().errors).toEqual([]);
    const ruleOf = (name: string) => mesh.cp.state().model.clusters.find((c) => c.name === name)?.origin?.key;
    expect(ruleOf(`outbound|9080|newest|${REVIEWS}`)).toBe('DestinationRule/default/reviews');
    expect(ruleOf(`outbound|9080|v1|${RATINGS}`)).toBe('DestinationRule/default/namespace-wide');
    expect(ruleOf(`outbound|9080|v1|${REVIEWS}`)).toBeUndefined();
  });

  it('applies its load balancing: a consistent hash on a header keeps each user on one version', async () => {
    const rule = (trafficPolicy?: Record<string, unknown>) => destinationRule({ name: 'mesh-wide', namespace: 'istio-system', host: '*.local', ...(trafficPolicy ? { trafficPolicy } : {}) });
    const hashed = rule({ loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } } });
    const mesh = await startMesh(yamlDocs(hashed), '');
    const client = mesh.client();
    await waitFor(async () => (await client.call(REVIEWS_TARGET).catch(() => ({ version: '' }))).version !== '', { timeoutMs: 20_000, intervalMs: 100 });
    // Each user lands on one version for all its calls; users as a whole reach more than one.
    const seen = new Set<string>();
    for (const user of ['ann', 'bob', 'cy', 'dee', 'ed', 'flo', 'gus', 'hal', 'ivy', 'jo', 'kim', 'lu']) {
      const counts = await client.split(REVIEWS_TARGET, 30, { 'x-user': user });
      expect(Object.keys(counts), `${user}: ${JSON.stringify(counts)}`).toHaveLength(1);
      seen.add(Object.keys(counts)[0]!);
    }
    expect([...seen].every((v) => v.startsWith('v'))).toBe(true);
    expect(seen.size).toBeGreaterThan(1);
  });
});
