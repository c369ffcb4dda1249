// End to end with real proxyless gRPC clients: the HTTP features gRPC cannot act on (corsPolicy,
// directResponse, per-destination headers, :authority) must leave a gRPC client's routing as the
// rest of the rule says, never make it reject the config; weights that do not add up to 100 split
// calls by their relative shares.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startBookinfoBackends, type BackendSet } from './helpers/backends.ts';
import { REVIEWS, vsFor } from './helpers/bookinfo-rules.ts';
import { targetOf } from './helpers/mesh-files.ts';
import { startTestMesh, Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';
import { header, httpRoute, to } from './helpers/yaml-builders.ts';
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

async function ready(client: XdsClient): Promise<void> {
  await waitFor(async () => (await client.call(REVIEWS_TARGET)).version !== '', { timeoutMs: 20_000, intervalMs: 100, description: 'a first call to reviews' });
}

describe('HTTP features with proxyless gRPC clients', () => {
  it('splits by relative weights (3:1 is 75/25)', async () => {
    const mesh = await startTestMesh(teardown, { backends: bookinfo.backends, prefix: 'e2e-http', files: { 'rules.yaml': vsFor(REVIEWS, httpRoute([to(REVIEWS, 'v1', 3), to(REVIEWS, 'v2', 1)])) } });
    const client = mesh.client();
    await ready(client);
    const counts = await client.split(REVIEWS_TARGET, 1000);
    expect(Object.keys(counts).filter((k) => k.startsWith('error:')), JSON.stringify(counts)).toEqual([]);
    expect((counts.v1 ?? 0) / 1000, JSON.stringify(counts)).toBeGreaterThan(0.7);
    expect((counts.v1 ?? 0) / 1000, JSON.stringify(counts)).toBeLessThan(0.8);
  });

  it('skips a directResponse route and ignores corsPolicy, route headers and :authority', async () => {
    const rules = vsFor(
      REVIEWS,
      // For gRPC clients this route does not exist: jason's calls go on to the next route.
      { match: [header('end-user', 'exact', 'jason')], directResponse: { status: 503, body: { string: 'down' } } },
      httpRoute([{ ...to(REVIEWS, 'v2'), headers: { request: { set: { 'x-a': '1' } }, response: { remove: ['x-b'] } } }], {
        match: [header('end-user', 'prefix', 'ja')],
        headers: { request: { set: { ':authority': 'elsewhere' } } },
        corsPolicy: { allowOrigins: [{ exact: 'https://a.example' }], allowMethods: ['POST'] },
      }),
      httpRoute([to(REVIEWS, 'v1')]),
    );
    const mesh = await startTestMesh(teardown, { backends: bookinfo.backends, prefix: 'e2e-http', files: { 'rules.yaml': rules } });
    const client = mesh.client();
    await ready(client);
    expect(await client.split(REVIEWS_TARGET, 50, { 'end-user': 'jason' })).toEqual({ v2: 50 });
    expect(await client.split(REVIEWS_TARGET, 50, { 'end-user': 'jane' })).toEqual({ v2: 50 });
    expect(await client.split(REVIEWS_TARGET, 50)).toEqual({ v1: 50 });
  });
});
