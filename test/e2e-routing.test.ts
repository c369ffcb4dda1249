// End to end: meshpilot -> real proxyless gRPC clients (@grpc/grpc-js-xds) ->
// real gRPC backends. Each test writes Istio rules into a fresh config
// directory, starts the control plane on it, sends real calls and counts which
// version of reviews answered. Nothing here inspects generated xDS: if a rule
// is translated wrongly, calls land in the wrong place and the test fails.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startBackends, startBookinfoBackends, type BackendInfo, type BackendSet } from './helpers/backends.ts';
import { COOKIE_JASON_TO_V3, JASON_TO_V2, PRODUCTPAGE_TO_V2, REVIEWS, reviewsWeightedRoute, serviceTo, vsFor } from './helpers/bookinfo-rules.ts';
import { hostOf, replaceFile, targetOf } from './helpers/mesh-files.ts';
import { startTestMesh, Teardown, type TestMesh } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';
import type { XdsClient } from './helpers/xds-client.ts';

const RATINGS = hostOf('ratings');
const REVIEWS_TARGET = targetOf('reviews');
const RATINGS_TARGET = targetOf('ratings');

// ---------------------------------------------------------------------------
// Rules (test/helpers/bookinfo-rules.ts).

/** reviews: optional routes first, then v1/v2 by weight. */
const reviewsWeighted = (v1: number, v2: number, ...routesFirst: Array<Record<string, unknown>>) => vsFor(REVIEWS, ...routesFirst, reviewsWeightedRoute(v1, v2));
const ratingsTo = (subset: string) => serviceTo(RATINGS, subset);

// ---------------------------------------------------------------------------
// Counting.

function total(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

/** Share of all calls (failed ones included) answered by `version`. */
function share(counts: Record<string, number>, version: string): number {
  return (counts[version] ?? 0) / total(counts);
}

function failures(counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).filter(([key]) => key.startsWith('error:')));
}

function expectShare(counts: Record<string, number>, version: string, lo: number, hi: number): void {
  const what = `${version} share of ${JSON.stringify(counts)}`;
  expect(failures(counts), what).toEqual({});
  expect(share(counts, version), what).toBeGreaterThanOrEqual(lo);
  expect(share(counts, version), what).toBeLessThanOrEqual(hi);
}

// ---------------------------------------------------------------------------
// One mesh per test: a fresh config dir, a control plane, clients; all torn down.

let bookinfo: BackendSet;
const teardown = new Teardown();

beforeAll(async () => {
  bookinfo = await startBookinfoBackends();
});

afterAll(async () => {
  await bookinfo?.stop();
});

// Reverse order of start: clients, control plane, extra backends, config dir.
afterEach(() => teardown.run());

function startMesh(files: Record<string, string>, backends: readonly BackendInfo[] = bookinfo.backends): Promise<TestMesh> {
  return startTestMesh(teardown, { backends, files, prefix: 'e2e' });
}

/** Waits until the client's first xDS resolution is done and a call to target succeeds. */
async function ready(client: XdsClient, target: string): Promise<void> {
  await waitFor(async () => (await client.call(target)).version !== '', {
    timeoutMs: 20_000,
    intervalMs: 100,
    description: `a call to ${target} from ${client.nodeId}`,
  });
}

// ---------------------------------------------------------------------------

describe('routing through meshpilot with proxyless gRPC clients', () => {
  it('splits traffic 80/20 between v1 and v2 by weight', async () => {
    const mesh = await startMesh({ 'rules.yaml': reviewsWeighted(80, 20) });
    const client = mesh.client();
    await ready(client, REVIEWS_TARGET);

    const counts = await client.split(REVIEWS_TARGET, 1000);
    expectShare(counts, 'v1', 0.75, 0.85);
    expect((counts.v1 ?? 0) + (counts.v2 ?? 0), JSON.stringify(counts)).toBe(1000);
  });

  it('sends end-user: jason to v2 and everyone else by weight', async () => {
    const mesh = await startMesh({ 'rules.yaml': reviewsWeighted(80, 20, JASON_TO_V2) });
    const client = mesh.client();
    await ready(client, REVIEWS_TARGET);

    expect(await client.split(REVIEWS_TARGET, 200, { 'end-user': 'jason' })).toEqual({ v2: 200 });
    // Another value of the header is not a match.
    const others = await client.split(REVIEWS_TARGET, 1000, { 'end-user': 'jasonx' });
    expectShare(others, 'v1', 0.75, 0.85);
    const plain = await client.split(REVIEWS_TARGET, 1000);
    expectShare(plain, 'v1', 0.75, 0.85);
  });

  it('routes by a cookie regex match', async () => {
    const mesh = await startMesh({ 'rules.yaml': vsFor(REVIEWS, ...COOKIE_JASON_TO_V3) });
    const client = mesh.client();
    await ready(client, REVIEWS_TARGET);

    expect(await client.split(REVIEWS_TARGET, 50, { cookie: 'user=jason' })).toEqual({ v3: 50 });
    expect(await client.split(REVIEWS_TARGET, 50, { cookie: 'theme=dark;user=jason;lang=en' })).toEqual({ v3: 50 });
    // Not matches: another user, a longer name, no cookie at all.
    expect(await client.split(REVIEWS_TARGET, 50, { cookie: 'user=bob' })).toEqual({ v1: 50 });
    expect(await client.split(REVIEWS_TARGET, 50, { cookie: 'user=jasonx' })).toEqual({ v1: 50 });
    expect(await client.split(REVIEWS_TARGET, 50)).toEqual({ v1: 50 });
  });

  it('shifts a running client to 50/50 when the rule file is rewritten', async () => {
    const mesh = await startMesh({ 'rules.yaml': reviewsWeighted(80, 20) });
    const client = mesh.client();
    await ready(client, REVIEWS_TARGET);
    expectShare(await client.split(REVIEWS_TARGET, 1000), 'v1', 0.75, 0.85);

    await replaceFile(mesh.dir, 'rules.yaml', reviewsWeighted(50, 50));
    // 200 calls at 80/20 give a v1 share under 0.68 with odds below 1e-4, at 50/50 above it likewise.
    const during: Record<string, number> = {};
    await waitFor(
      async () => {
        const counts = await client.split(REVIEWS_TARGET, 200);
        for (const [key, n] of Object.entries(counts)) during[key] = (during[key] ?? 0) + n;
        return share(counts, 'v1') < 0.68;
      },
      { timeoutMs: 15_000, intervalMs: 0, description: 'the split to move off 80/20' },
    );
    expect(failures(during), 'calls failed while the new config was pushed').toEqual({});

    expectShare(await client.split(REVIEWS_TARGET, 1000), 'v1', 0.43, 0.57);
  });

  it('keeps routing unchanged when the rule file is overwritten with broken YAML', async () => {
    // ratings gets a second version so that a separate rule file can act as a
    // marker: once its change is visible, the broken file has been read too.
    const extra = await startBackends([{ service: 'ratings', version: 'v2' }]);
    teardown.add(() => extra.stop());
    const mesh = await startMesh(
      { 'rules.yaml': reviewsWeighted(80, 20), 'marker.yaml': ratingsTo('v1') },
      [...bookinfo.backends, ...extra.backends],
    );
    const client = mesh.client();
    await ready(client, REVIEWS_TARGET);
    await ready(client, RATINGS_TARGET);
    expect(await client.split(RATINGS_TARGET, 20)).toEqual({ v1: 20 });
    expectShare(await client.split(REVIEWS_TARGET, 1000), 'v1', 0.75, 0.85);

    await replaceFile(
      mesh.dir,
      'rules.yaml',
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default
spec:
  http: [ { route: [ { destination: { host: ${REVIEWS}, subset: v3 } ]
    - this is: not: yaml
`,
    );
    await replaceFile(mesh.dir, 'marker.yaml', ratingsTo('v2'));
    await waitFor(async () => (await client.call(RATINGS_TARGET)).version === 'v2', {
      timeoutMs: 15_000,
      intervalMs: 50,
      description: 'the marker change (ratings -> v2) to reach the client; a broken file must not block other files',
    });

    const counts = await client.split(REVIEWS_TARGET, 1000);
    expectShare(counts, 'v1', 0.75, 0.85);
    expect(counts.v3, `no call may follow the broken file: ${JSON.stringify(counts)}`).toBeUndefined();
  });

  it('applies a sourceLabels route only to clients with those labels', async () => {
    const mesh = await startMesh({ 'rules.yaml': vsFor(REVIEWS, ...PRODUCTPAGE_TO_V2) });
    const productpage = mesh.client({ labels: { app: 'productpage', version: 'v1' } });
    const ratings = mesh.client({ labels: { app: 'ratings', version: 'v1' } });
    await ready(productpage, REVIEWS_TARGET);
    await ready(ratings, REVIEWS_TARGET);

    expect(await productpage.split(REVIEWS_TARGET, 100)).toEqual({ v2: 100 });
    expect(await ratings.split(REVIEWS_TARGET, 100)).toEqual({ v1: 100 });
  });
});
