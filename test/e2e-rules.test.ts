// End to end, part two: what the rest of a VirtualService does to real proxyless gRPC calls.
// meshpilot serves real @grpc/grpc-js-xds clients, which call real gRPC backends on 127.0.0.1.
// Timeouts, retries, rejected rules, short names, merged VirtualServices and redirects are judged
// only by where calls land and how they end, never by reading generated xDS.
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ControlPlane } from '../control-plane/server.ts';
import { DELAY_HEADER, startBackends, type BackendInfo, type BackendSet } from './helpers/backends.ts';
import { hostOf, replaceFile, targetOf, type MeshFileOptions } from './helpers/mesh-files.ts';
import { startTestMesh, Teardown, type TestMesh } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';
import type { XdsClient } from './helpers/xds-client.ts';

const REVIEWS = hostOf('reviews');
const RATINGS = hostOf('ratings');
const REVIEWS_TARGET = targetOf('reviews');
const RATINGS_TARGET = targetOf('ratings');
const REVIEWS_KEY = 'VirtualService/default/reviews';

// ---------------------------------------------------------------------------
// Rules.

function virtualService(name: string, host: string, http: string): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${name}, namespace: default }
spec:
  hosts: [${host}]
  http:
${http}`;
}

function reviewsRule(http: string): string {
  return virtualService('reviews', REVIEWS, http);
}

function toSubset(subset: string, host = REVIEWS): string {
  return `  - route:
    - destination: { host: ${host}, subset: ${subset} }
`;
}

function weighted(v1: string, v2: string): string {
  return `  - route:
    - destination: { host: ${REVIEWS}, subset: v1 }
      ${v1}
    - destination: { host: ${REVIEWS}, subset: v2 }
      ${v2}
`;
}

/** A second rule file whose effect a client can see: once it has, files written before it were read. */
function ratingsMarker(subset: string): string {
  return virtualService('ratings', RATINGS, toSubset(subset, RATINGS));
}

/** 1-based number of the only line of `text` containing `needle`. */
function lineOf(text: string, needle: string): number {
  const lines = text.split('\n');
  const hits = lines.flatMap((l, i) => (l.includes(needle) ? [i + 1] : []));
  if (hits.length !== 1) throw new Error(`expected one line with ${JSON.stringify(needle)}, found ${hits.length}`);
  return hits[0]!;
}

// ---------------------------------------------------------------------------
// Calling and counting.

/** A finished call: the version that answered, or the status it failed with. */
interface Outcome {
  key: string;
  code?: grpc.status;
  details?: string;
  elapsedMs: number;
}

async function attempt(client: XdsClient, target: string, metadata: Record<string, string> = {}, deadlineMs = 3000): Promise<Outcome> {
  const start = performance.now();
  try {
    const reply = await client.call(target, metadata, deadlineMs);
    return { key: reply.version, elapsedMs: performance.now() - start };
  } catch (err) {
    const e = err as grpc.ServiceError;
    const code = typeof e.code === 'number' ? e.code : grpc.status.UNKNOWN;
    return { key: `error:${grpc.status[code]}`, code, details: e.details ?? e.message, elapsedMs: performance.now() - start };
  }
}

interface Tally {
  counts: Record<string, number>;
  /** A few distinct failure messages, for assertion messages. */
  failures: string[];
}

/**
 * Sends n calls, `concurrency` at a time (1 = one after the other), each with its own deadline,
 * and counts outcomes by version or `error:<STATUS>`.
 */
async function tally(
  client: XdsClient,
  target: string,
  n: number,
  opts: { metadata?: Record<string, string>; concurrency?: number; deadlineMs?: number } = {},
): Promise<Tally> {
  const counts: Record<string, number> = {};
  const failures = new Set<string>();
  let started = 0;
  const worker = async () => {
    while (started < n) {
      started += 1;
      const o = await attempt(client, target, opts.metadata, opts.deadlineMs);
      counts[o.key] = (counts[o.key] ?? 0) + 1;
      if (o.code !== undefined && failures.size < 5) failures.add(`${o.key}: ${o.details}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 25, n) }, worker));
  return { counts, failures: [...failures] };
}

function failedCalls(counts: Record<string, number>): number {
  return Object.entries(counts).reduce((sum, [k, v]) => (k.startsWith('error:') ? sum + v : sum), 0);
}

function expectShare(t: Tally, version: string, lo: number, hi: number): void {
  const n = Object.values(t.counts).reduce((a, b) => a + b, 0);
  const what = `${version} share of ${JSON.stringify(t.counts)} ${t.failures.join('; ')}`;
  expect(failedCalls(t.counts), what).toBe(0);
  const share = (t.counts[version] ?? 0) / n;
  expect(share, what).toBeGreaterThanOrEqual(lo);
  expect(share, what).toBeLessThanOrEqual(hi);
}

// ---------------------------------------------------------------------------
// One mesh per test; everything it starts is stopped in afterEach, newest first.

let bookinfo: BackendSet;
const cleanups = new Teardown();

beforeAll(async () => {
  // Bookinfo plus ratings v2, so that a ratings rule can serve as a visible marker.
  bookinfo = await startBackends([
    { service: 'productpage', version: 'v1' },
    { service: 'ratings', version: 'v1' },
    { service: 'ratings', version: 'v2' },
    { service: 'reviews', version: 'v1' },
    { service: 'reviews', version: 'v2' },
    { service: 'reviews', version: 'v3' },
  ]);
});

afterAll(async () => {
  await bookinfo?.stop();
});

afterEach(() => cleanups.run());

function startMesh(
  files: Record<string, string>,
  opts: { backends?: readonly BackendInfo[]; meshFiles?: MeshFileOptions } = {},
): Promise<TestMesh> {
  return startTestMesh(cleanups, { backends: opts.backends ?? bookinfo.backends, files, prefix: 'e2e-rules', logLevel: 'silent', meshFiles: opts.meshFiles });
}

/** NACKs the control plane's streams hold now (a NACK is cleared by the next ACK of that type). */
function openNacks(cp: ControlPlane): string[] {
  return [...cp.ads.streams].flatMap((stream) =>
    Object.entries(stream.status()).flatMap(([type, status]) =>
      status.nack ? [`${stream.proxy?.id ?? '?'} ${type.slice(type.lastIndexOf('.') + 1)}: ${status.nack.message}`] : [],
    ),
  );
}

/** No client rejected what it was sent. */
function expectNoNacks(mesh: TestMesh): void {
  expect(openNacks(mesh.cp), 'NACKs from clients').toEqual([]);
}

/** Waits until xDS resolution is done for `target` and a call to it answers. */
async function ready(mesh: TestMesh, client: XdsClient, target: string): Promise<void> {
  try {
    await waitFor(async () => (await client.call(target, {}, 3000)).version !== '', {
      timeoutMs: 20_000,
      intervalMs: 100,
      description: `a call to ${target} from ${client.nodeId}`,
    });
  } catch (err) {
    // Calls that hang in name resolution are often a NACK: say so.
    const nacks = openNacks(mesh.cp);
    throw nacks.length ? new Error(`${(err as Error).message}; NACKs: ${nacks.join(' | ')}`) : err;
  }
}

/** Rewrites the ratings marker and waits until the client's calls follow it. */
async function moveMarker(mesh: TestMesh, client: XdsClient, subset: string): Promise<void> {
  await replaceFile(mesh.dir, 'marker.yaml', ratingsMarker(subset));
  await waitFor(async () => (await client.call(RATINGS_TARGET, {}, 2000)).version === subset, {
    timeoutMs: 15_000,
    intervalMs: 50,
    description: `ratings -> ${subset} (the marker) to reach the client`,
  });
}

function formatErrors(cp: ControlPlane): string {
  return JSON.stringify(cp.state().errors, null, 1);
}

// ---------------------------------------------------------------------------

describe('VirtualService rules through meshpilot with proxyless gRPC clients', () => {
  it('turns timeout: 0.5s into a deadline on the call', async () => {
    const mesh = await startMesh({
      'rules.yaml': reviewsRule(`  - match:
    - headers:
        x-route: { exact: untimed }
    route:
    - destination: { host: ${REVIEWS}, subset: v1 }
  - route:
    - destination: { host: ${REVIEWS}, subset: v1 }
    timeout: 0.5s
`),
    });
    const client = mesh.client();
    await ready(mesh, client, REVIEWS_TARGET);

    // The client itself would wait 10 s; only the rule can end the call at 0.5 s.
    const slow = await attempt(client, REVIEWS_TARGET, { [DELAY_HEADER]: '2000' }, 10_000);
    expect(slow.key, JSON.stringify(slow)).toBe('error:DEADLINE_EXCEEDED');
    expect(slow.elapsedMs, JSON.stringify(slow)).toBeLessThan(1800);
    expect(slow.elapsedMs, JSON.stringify(slow)).toBeGreaterThanOrEqual(400);

    const fast = await attempt(client, REVIEWS_TARGET, {}, 10_000);
    expect(fast.key, JSON.stringify(fast)).toBe('v1');

    // Control: the route without a timeout lets a 1 s call finish.
    const untimed = await attempt(client, REVIEWS_TARGET, { 'x-route': 'untimed', [DELAY_HEADER]: '1000' }, 10_000);
    expect(untimed.key, JSON.stringify(untimed)).toBe('v1');
    expectNoNacks(mesh);
  });

  it('retries UNAVAILABLE answers on another endpoint of the subset when the route says so', async () => {
    // reviews v2 gets a second endpoint that answers every call with UNAVAILABLE.
    const broken = await startBackends([{ service: 'reviews', version: 'v2', failWith: grpc.status.UNAVAILABLE }]);
    cleanups.add(() => broken.stop());
    const mesh = await startMesh(
      {
        'rules.yaml': reviewsRule(`  - match:
    - headers:
        x-retry: { exact: "on" }
    route:
    - destination: { host: ${REVIEWS}, subset: v2 }
    retries: { attempts: 3, retryOn: unavailable }
  - route:
    - destination: { host: ${REVIEWS}, subset: v2 }
`),
      },
      { backends: [...bookinfo.backends, ...broken.backends] },
    );
    const client = mesh.client();
    const RETRY = { 'x-retry': 'on' };

    // Both endpoints in rotation: calls without retries see answers and the broken endpoint's failures.
    await waitFor(
      async () => {
        const t = await tally(client, REVIEWS_TARGET, 20, { concurrency: 1 });
        return (t.counts.v2 ?? 0) > 0 && (t.counts['error:UNAVAILABLE'] ?? 0) > 0;
      },
      { timeoutMs: 20_000, intervalMs: 100, description: 'both reviews v2 endpoints to be picked' },
    );

    // One call at a time: round robin then sends each retry to the next endpoint, so with 3
    // retries over two endpoints no call can fail (concurrent calls would reorder the picks).
    const withRetries = await tally(client, REVIEWS_TARGET, 200, { metadata: RETRY, concurrency: 1 });
    expect(withRetries.counts, withRetries.failures.join('; ')).toEqual({ v2: 200 });

    const without = await tally(client, REVIEWS_TARGET, 200, { concurrency: 1 });
    const failed = without.counts['error:UNAVAILABLE'] ?? 0;
    expect(Object.keys(without.counts).sort(), JSON.stringify(without)).toEqual(['error:UNAVAILABLE', 'v2']);
    // Round robin over one good and one broken endpoint: about half fail.
    expect(failed, JSON.stringify(without)).toBeGreaterThanOrEqual(50);
    expect(failed, JSON.stringify(without)).toBeLessThanOrEqual(150);
    expect(without.failures.every((f) => f.includes('configured to fail')), without.failures.join('; ')).toBe(true);
    expectNoNacks(mesh);
  });

  it('rejects routes to an unknown host and keeps the previous route serving', async () => {
    // Subset v4 is declared by the DestinationRule but no backend has version v4.
    const mesh = await startMesh(
      { 'rules.yaml': reviewsRule(toSubset('v2')), 'marker.yaml': ratingsMarker('v1') },
      { meshFiles: { subsets: ['v1', 'v2', 'v3', 'v4'] } },
    );
    const client = mesh.client();
    await ready(mesh, client, REVIEWS_TARGET);
    await ready(mesh, client, RATINGS_TARGET);
    expect((await tally(client, REVIEWS_TARGET, 50)).counts).toEqual({ v2: 50 });
    expect(mesh.cp.state().errors).toEqual([]);

    const cases = [
      {
        what: 'unknown host',
        text: reviewsRule(toSubset('v3', 'nosuch.default.svc.cluster.local')),
        needle: 'nosuch',
        path: 'spec.http[0].route[0].destination.host',
        message: 'nosuch.default.svc.cluster.local',
        marker: 'v2',
      },
    ];
    for (const c of cases) {
      await replaceFile(mesh.dir, 'rules.yaml', c.text);
      const line = lineOf(c.text, c.needle);
      await waitFor(
        () =>
          mesh.cp.state().errors.some(
            (e) => e.file === mesh.file('rules.yaml') && e.line === line && e.path === c.path && e.message.includes(c.message),
          ),
        { timeoutMs: 10_000, description: `an error for the ${c.what} at rules.yaml:${line} ${c.path}; errors: ${formatErrors(mesh.cp)}` },
      );
      expect(mesh.cp.state().rejected, c.what).toContain(REVIEWS_KEY);
      // Only this file's current problem is reported.
      expect(mesh.cp.state().errors, formatErrors(mesh.cp)).toHaveLength(1);

      // A later change reaches the client, so it has had every push since the bad edit...
      await moveMarker(mesh, client, c.marker);
      // ...and reviews still follows the previous rule, with every call answered in time.
      const t = await tally(client, REVIEWS_TARGET, 200, { deadlineMs: 2000 });
      expect(t.counts, `${c.what}: ${t.failures.join('; ')}`).toEqual({ v2: 200 });
    }
    expectNoNacks(mesh);
  });

  it('keeps the previous version of a VirtualService while an edit is invalid, and applies the fix', async () => {
    const mesh = await startMesh({
      'rules.yaml': reviewsRule(weighted('weight: 80', 'weight: 20')),
      'marker.yaml': ratingsMarker('v1'),
    });
    const client = mesh.client();
    await ready(mesh, client, REVIEWS_TARGET);
    await ready(mesh, client, RATINGS_TARGET);
    expectShare(await tally(client, REVIEWS_TARGET, 1000), 'v1', 0.75, 0.85);

    const invalid = [
      { what: 'a negative weight', text: reviewsRule(weighted('weight: -5', 'weight: 105')), needle: 'weight: -5', path: 'spec.http[0].route[0].weight', marker: 'v2' },
      { what: 'an unknown field', text: reviewsRule(weighted('wieght: 50', 'weight: 50')), needle: 'wieght', path: 'spec.http[0].route[0].wieght', marker: 'v1' },
    ];
    for (const c of invalid) {
      await replaceFile(mesh.dir, 'rules.yaml', c.text);
      const line = lineOf(c.text, c.needle);
      await waitFor(
        () => mesh.cp.state().errors.some((e) => e.file === mesh.file('rules.yaml') && e.line === line && e.path === c.path),
        { timeoutMs: 10_000, description: `an error for ${c.what} at rules.yaml:${line} ${c.path}; errors: ${formatErrors(mesh.cp)}` },
      );
      await moveMarker(mesh, client, c.marker);
      const t = await tally(client, REVIEWS_TARGET, 1000);
      expectShare(t, 'v1', 0.75, 0.85);
    }

    await replaceFile(mesh.dir, 'rules.yaml', reviewsRule(weighted('weight: 50', 'weight: 50')));
    await waitFor(() => mesh.cp.state().errors.length === 0, {
      timeoutMs: 10_000,
      description: `the fixed file to be accepted; errors: ${formatErrors(mesh.cp)}`,
    });
    // 200 calls at 80/20 give a v1 share under 0.68 with odds below 1e-4; at 50/50 it is likely.
    await waitFor(async () => ((await tally(client, REVIEWS_TARGET, 200)).counts.v1 ?? 0) / 200 < 0.68, {
      timeoutMs: 15_000,
      intervalMs: 0,
      description: 'the split to move off 80/20',
    });
    expectShare(await tally(client, REVIEWS_TARGET, 1000), 'v1', 0.43, 0.57);
    expectNoNacks(mesh);
  });

  it('answers the short names a client may dial from its namespace', async () => {
    const mesh = await startMesh({ 'rules.yaml': reviewsRule(toSubset('v3')) });
    const local = mesh.client({ namespace: 'default' });
    for (const target of ['xds:///reviews:9080', 'xds:///reviews.default:9080', 'xds:///reviews.default.svc:9080', REVIEWS_TARGET]) {
      await ready(mesh, local, target);
      const t = await tally(local, target, 20);
      expect(t.counts, `${target}: ${t.failures.join('; ')}`).toEqual({ v3: 20 });
    }
    // From another namespace the namespace-qualified name works too.
    const remote = mesh.client({ namespace: 'other' });
    await ready(mesh, remote, 'xds:///reviews.default:9080');
    expect((await tally(remote, 'xds:///reviews.default:9080', 20)).counts).toEqual({ v3: 20 });
    expectNoNacks(mesh);
  });

  it('merges two VirtualServices for one host in namespace/name order, not file order', async () => {
    // The catch-all rule (b-rules) sits in the file read first; a-rules still goes first.
    const mesh = await startMesh({
      '1-catch-all.yaml': virtualService('b-rules', REVIEWS, toSubset('v2')),
      '2-header.yaml': virtualService(
        'a-rules',
        REVIEWS,
        `  - match:
    - headers:
        end-user: { exact: jason }
    route:
    - destination: { host: ${REVIEWS}, subset: v3 }
`,
      ),
    });
    const client = mesh.client();
    await ready(mesh, client, REVIEWS_TARGET);
    expect(mesh.cp.state().errors, formatErrors(mesh.cp)).toEqual([]);

    expect((await tally(client, REVIEWS_TARGET, 100, { metadata: { 'end-user': 'jason' } })).counts).toEqual({ v3: 100 });
    expect((await tally(client, REVIEWS_TARGET, 100, { metadata: { 'end-user': 'bob' } })).counts).toEqual({ v2: 100 });
    expect((await tally(client, REVIEWS_TARGET, 100)).counts).toEqual({ v2: 100 });
    expectNoNacks(mesh);
  });

  it('leaves redirect routes out for gRPC clients, which follow the remaining routes', async () => {
    const mesh = await startMesh({
      'rules.yaml': reviewsRule(`  - match:
    - headers:
        x-legacy: { exact: "1" }
    redirect: { uri: /legacy, authority: old.example.com }
  - match:
    - headers:
        end-user: { exact: jason }
    route:
    - destination: { host: ${REVIEWS}, subset: v1 }
  - route:
    - destination: { host: ${REVIEWS}, subset: v3 }
`),
    });
    const client = mesh.client();
    await ready(mesh, client, REVIEWS_TARGET);
    const state = mesh.cp.state();
    expect(state.errors, formatErrors(mesh.cp)).toEqual([]);
    expect(state.rejected).toEqual([]);

    // A call the redirect would have matched falls through to the next route that matches.
    expect((await tally(client, REVIEWS_TARGET, 50, { metadata: { 'x-legacy': '1' } })).counts).toEqual({ v3: 50 });
    expect((await tally(client, REVIEWS_TARGET, 50, { metadata: { 'x-legacy': '1', 'end-user': 'jason' } })).counts).toEqual({ v1: 50 });
    expect((await tally(client, REVIEWS_TARGET, 50, { metadata: { 'end-user': 'jason' } })).counts).toEqual({ v1: 50 });
    expect((await tally(client, REVIEWS_TARGET, 50)).counts).toEqual({ v3: 50 });
    expectNoNacks(mesh);
  });
});
