// End to end: fault injection and mirroring through meshpilot, with real proxyless gRPC clients
// (@grpc/grpc-js-xds) and real gRPC backends. The faults are applied by the clients' own fault
// filter, from the config meshpilot sends; nothing here inspects generated xDS. Statistical
// bounds: 1000 calls at p = 0.5 have a standard deviation of 0.0158, so 0.43-0.57 is +-4.4 sd.
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startBackends, type BackendSet } from './helpers/backends.ts';
import { REVIEWS, vsFor } from './helpers/bookinfo-rules.ts';
import { hostOf, replaceFile, targetOf } from './helpers/mesh-files.ts';
import { startTestMesh, streamsSynced, Teardown, type TestMesh } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';
import type { XdsClient } from './helpers/xds-client.ts';
import { abort, delay, header, httpRoute, to } from './helpers/yaml-builders.ts';

const RATINGS = hostOf('ratings');
const DETAILS = hostOf('details');
const RATINGS_TARGET = targetOf('ratings');
const DETAILS_TARGET = targetOf('details');
const REVIEWS_TARGET = targetOf('reviews');

// ---------------------------------------------------------------------------
// Rules, built with test/helpers/yaml-builders.ts.

/** details -> v1, with `fault` if given. */
const detailsRule = (fault?: Record<string, unknown>) => vsFor(DETAILS, httpRoute([to(DETAILS, 'v1')], fault ? { fault } : {}));

const HALF_UNAVAILABLE = abort('UNAVAILABLE', 50);

const JASON_DELAYED = vsFor(
  RATINGS,
  httpRoute([to(RATINGS, 'v1')], { match: [header('end-user', 'exact', 'jason')], fault: delay('7s', 100) }),
  httpRoute([to(RATINGS, 'v1')]),
);

const FORBIDDEN_BY_HEADER = vsFor(
  DETAILS,
  httpRoute([to(DETAILS, 'v1')], { match: [header('x-test', 'exact', 'forbidden')], fault: abort(403, 100) }),
  httpRoute([to(DETAILS, 'v1')]),
);

const REVIEWS_MIRRORED = vsFor(
  REVIEWS,
  httpRoute([to(REVIEWS, 'v1')], {
    match: [header('x-shadow', 'exact', 'several')],
    mirrors: [{ ...to(REVIEWS, 'v2'), percentage: { value: 50 } }, to(REVIEWS, 'v3')],
  }),
  httpRoute([to(REVIEWS, 'v1')], { mirror: { host: REVIEWS, subset: 'v3' }, mirrorPercentage: { value: 100 } }),
);

// ---------------------------------------------------------------------------
// One mesh per test: a fresh config dir, a control plane, clients; all torn down.

let backends: BackendSet;
const teardown = new Teardown();

beforeAll(async () => {
  backends = await startBackends([
    { service: 'ratings', version: 'v1' },
    { service: 'details', version: 'v1' },
    { service: 'reviews', version: 'v1' },
    { service: 'reviews', version: 'v2' },
    { service: 'reviews', version: 'v3' },
  ]);
});

afterAll(async () => {
  await backends?.stop();
});

afterEach(() => teardown.run());

async function startMesh(files: Record<string, string>): Promise<TestMesh> {
  const mesh = await startTestMesh(teardown, { backends: backends.backends, files, prefix: 'e2e-fault' });
  expect(mesh.cp.state().errors.map((e) => e.message), 'the rules must be accepted').toEqual([]);
  return mesh;
}

/** Waits until the client's xDS resolution is done and a call to target succeeds. */
async function ready(client: XdsClient, target: string, metadata?: Record<string, string>): Promise<void> {
  await waitFor(async () => (await client.call(target, metadata)).version !== '', {
    timeoutMs: 20_000,
    intervalMs: 100,
    description: `a call to ${target} from ${client.nodeId}`,
  });
}

function statusName(err: unknown): string {
  const code = (err as grpc.ServiceError).code;
  return typeof code === 'number' ? grpc.status[code] : `not a gRPC error: ${String(err)}`;
}

/** One call, timed: the version that answered or the status it failed with, and how long it took. */
async function timedCall(client: XdsClient, target: string, metadata: Record<string, string>, deadlineMs: number): Promise<{ outcome: string; ms: number }> {
  const start = performance.now();
  let outcome: string;
  try {
    outcome = (await client.call(target, metadata, deadlineMs)).version;
  } catch (err) {
    outcome = `error:${statusName(err)}`;
  }
  return { outcome, ms: performance.now() - start };
}

// ---------------------------------------------------------------------------

describe('fault injection through meshpilot with proxyless gRPC clients', () => {
  it('aborts about half of the calls with UNAVAILABLE for grpcStatus UNAVAILABLE at 50%', async () => {
    const mesh = await startMesh({ 'rules.yaml': detailsRule(HALF_UNAVAILABLE) });
    const client = mesh.client();
    await ready(client, DETAILS_TARGET);

    const counts = await client.split(DETAILS_TARGET, 1000);
    // Every call either reached details v1 or was aborted with UNAVAILABLE; nothing else.
    expect(Object.keys(counts).sort(), JSON.stringify(counts)).toEqual(['error:UNAVAILABLE', 'v1']);
    expect(counts.v1! + counts['error:UNAVAILABLE']!).toBe(1000);
    const aborted = counts['error:UNAVAILABLE']! / 1000;
    expect(aborted, JSON.stringify(counts)).toBeGreaterThanOrEqual(0.43);
    expect(aborted, JSON.stringify(counts)).toBeLessThanOrEqual(0.57);

    // The failures are the client's injected fault, not the backend failing.
    let failure: grpc.ServiceError | undefined;
    for (let i = 0; i < 100 && !failure; i++) {
      await client.call(DETAILS_TARGET).catch((err: grpc.ServiceError) => {
        failure = err;
      });
    }
    expect(failure?.code).toBe(grpc.status.UNAVAILABLE);
    expect(failure?.details).toMatch(/fault injected/i);
  });

  it('delays end-user: jason by 7 s and leaves every other call undelayed', async () => {
    const mesh = await startMesh({ 'rules.yaml': JASON_DELAYED });
    const client = mesh.client();
    await ready(client, RATINGS_TARGET);

    // jason's call runs while the others are sent, so the test takes about 7 s, not 7 s more.
    const jason = timedCall(client, RATINGS_TARGET, { 'end-user': 'jason' }, 20_000);
    const others: Array<{ outcome: string; ms: number }> = [];
    const notJason: Array<Record<string, string>> = [{}, { 'end-user': 'bob' }, { 'end-user': 'jasonx' }, { 'x-user': 'jason' }];
    for (const metadata of notJason) {
      for (let i = 0; i < 25; i++) others.push(await timedCall(client, RATINGS_TARGET, metadata, 5000));
    }
    const slowest = Math.max(...others.map((o) => o.ms));
    expect(others.filter((o) => o.outcome !== 'v1'), 'calls that did not reach ratings v1').toEqual([]);
    expect(slowest, 'slowest call without end-user: jason (ms)').toBeLessThan(2000);

    const j = await jason;
    expect(j.outcome).toBe('v1');
    expect(j.ms, "jason's call (ms)").toBeGreaterThanOrEqual(6500);
  });

  it('scopes an abort by a header match, and maps httpStatus 403 to PERMISSION_DENIED', async () => {
    const mesh = await startMesh({ 'rules.yaml': FORBIDDEN_BY_HEADER });
    const client = mesh.client();
    await ready(client, DETAILS_TARGET);

    expect(await client.split(DETAILS_TARGET, 100, { 'x-test': 'forbidden' })).toEqual({ 'error:PERMISSION_DENIED': 100 });
    expect(await client.split(DETAILS_TARGET, 100, { 'x-test': 'allowed' })).toEqual({ v1: 100 });
    expect(await client.split(DETAILS_TARGET, 100)).toEqual({ v1: 100 });
  });

  it('ends the experiment live when the fault is removed from the rule file', async () => {
    const mesh = await startMesh({ 'rules.yaml': detailsRule(HALF_UNAVAILABLE) });
    const client = mesh.client();
    await ready(client, DETAILS_TARGET);
    // At 50%, 200 calls without a single abort has odds of 2^-200.
    const before = await client.split(DETAILS_TARGET, 200);
    expect(before['error:UNAVAILABLE'] ?? 0, JSON.stringify(before)).toBeGreaterThan(0);

    await replaceFile(mesh.dir, 'rules.yaml', detailsRule());
    await waitFor(async () => (await client.split(DETAILS_TARGET, 200)).v1 === 200, {
      timeoutMs: 15_000,
      intervalMs: 0,
      description: '200 calls in a row to succeed after the fault was removed',
    });
    expect(await client.split(DETAILS_TARGET, 500)).toEqual({ v1: 500 });
  });
});

describe('mirroring with proxyless gRPC clients', () => {
  it('leaves mirroring out for gRPC (a warning, never a NACK) and routes as before', async () => {
    const mesh = await startMesh({ 'rules.yaml': REVIEWS_MIRRORED });
    const warnings = mesh.cp.state().warnings.map((w) => `${w.path}: ${w.message}`);
    expect(warnings).toContain('spec.http[0].mirrors: gRPC does not mirror requests: mirroring is left out for proxyless gRPC clients');
    expect(warnings).toContain('spec.http[1].mirror: gRPC does not mirror requests: mirroring is left out for proxyless gRPC clients');

    const client = mesh.client();
    await ready(client, REVIEWS_TARGET);
    expect(await client.split(REVIEWS_TARGET, 100, { 'x-shadow': 'several' })).toEqual({ v1: 100 });
    expect(await client.split(REVIEWS_TARGET, 100)).toEqual({ v1: 100 });

    // Every type the client was sent has been ACKed, none NACKed.
    await streamsSynced(mesh.cp, 5000);
    const streams = () => [...mesh.cp.ads.streams].map((s) => s.status());
    for (const st of streams()) for (const t of Object.values(st)) expect(t.nack).toBeUndefined();
  });
});
