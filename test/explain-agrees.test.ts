// Explain agrees with real traffic. For each end-to-end routing case (weights, header, cookie,
// source labels, fault abort, fault delay, RBAC deny and allow-list) the same mesh is started as in
// the e2e tests, explain is run on the control plane's current rules for the real client's identity
// and request, and the outcome distribution explain predicts (which backend versions, found through
// the endpoints it names; which gRPC status for aborts and denials; with what share) is compared
// with where the real grpc-js-xds client's calls land.

// First: RBAC on xDS servers must be on before grpc-js-xds is loaded (see the helper).
import './helpers/xds-rbac-env.ts';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { explain } from '../control-plane/explain/explain.ts';
import { grpcCodeForHttp, grpcCodeName } from '../control-plane/explain/filters.ts';
import { renderExplanation } from '../control-plane/explain/render.ts';
import type { Explanation } from '../control-plane/explain/types.ts';
import { loadEcho, startBackends, type BackendInfo, type BackendSet } from './helpers/backends.ts';
import { batchWorkload, COOKIE_JASON_TO_V3, DENY_BATCH_WORKLOADS, denyCallers, JASON_TO_V2, ONLY_V1_V2, PRODUCTPAGE_TO_V2, REVIEWS, reviewsWeightedRoute, vsFor } from './helpers/bookinfo-rules.ts';
import { targetOf } from './helpers/mesh-files.ts';
import { startTestMesh, Teardown, type TestMesh } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';
import type { XdsClient } from './helpers/xds-client.ts';
import { reserveLoopbackPort, startXdsEchoServer } from './helpers/xds-server.ts';
import { abort, delay, header, httpRoute, to, yamlDocs } from './helpers/yaml-builders.ts';

const METHOD = (loadEcho().service.Call as grpc.MethodDefinition<unknown, unknown>).path;

// ---------------------------------------------------------------------------------------------
// Rules (the shared ones are those of e2e-routing and e2e-authz: test/helpers/bookinfo-rules.ts).

type Route = Record<string, unknown>;

const JASON_THEN_WEIGHTED = [JASON_TO_V2, reviewsWeightedRoute(80, 20)];
// withoutHeaders with a value: gRPC matches it when the header is missing (see string-matcher.ts).
const WITHOUT_HEADER = [httpRoute([to(REVIEWS, 'v2')], { match: [{ withoutHeaders: { 'x-beta': { exact: '1' } } }] }), httpRoute([to(REVIEWS, 'v1')])];
// A match on a pseudo-header: gRPC clients match call metadata, which has none (see request.ts).
const AUTHORITY_HEADER = [httpRoute([to(REVIEWS, 'v2')], { match: [header(':authority', 'prefix', 'reviews')] }), httpRoute([to(REVIEWS, 'v1')])];
const FAULTS = [
  httpRoute([to(REVIEWS, 'v1')], { match: [header('x-test', 'exact', 'forbidden')], fault: abort(403, 100) }),
  httpRoute([to(REVIEWS, 'v1')], { match: [header('x-test', 'exact', 'slow')], fault: delay('30s', 100) }),
  httpRoute([to(REVIEWS, 'v3')], { fault: abort('UNAVAILABLE', 50) }),
];

/** Deny callers that are workloads labelled app: batch, with batch-1 at `address`. */
const denyBatchAt = (address: string) => yamlDocs(DENY_BATCH_WORKLOADS, batchWorkload(address));

// ---------------------------------------------------------------------------------------------
// Prediction from explain, and comparison with counted outcomes.

/** Outcome shares explain predicts: backend versions (through endpoint ports) and gRPC errors. */
function predicted(e: Explanation, backends: readonly BackendInfo[], deadlineMs: number): Record<string, number> {
  const out: Record<string, number> = {};
  const add = (k: string, p: number) => p > 0 && (out[k] = (out[k] ?? 0) + p);
  if (e.outcome.kind !== 'forward') return { [`error:UNAVAILABLE`]: 1 };
  const aborts = e.faults.filter((f) => f.kind === 'abort' && !f.notApplied);
  const delays = e.faults.filter((f) => f.kind === 'delay' && !f.notApplied);
  let rest = 1;
  // The fault filter delays first (a delay past the call's deadline ends it), then aborts.
  for (const d of delays) {
    const ms = Number.parseFloat(String(d.delay)) * 1000;
    if (ms >= deadlineMs) {
      add('error:DEADLINE_EXCEEDED', rest * d.share);
      rest *= 1 - d.share;
    }
  }
  for (const a of aborts) {
    add(`error:${a.grpcStatus !== undefined ? grpcCodeName(a.grpcStatus) : grpcCodeForHttp(a.httpStatus!)}`, rest * a.share);
    rest *= 1 - a.share;
  }
  for (const d of e.destinations) {
    for (const g of d.endpoints.filter((x) => x.share > 0)) {
      for (const ep of g.endpoints) {
        const i = d.inbound.find((x) => x.endpoint === `${ep.address}:${ep.port}`);
        const share = (rest * d.share * g.share) / g.endpoints.length;
        if (i?.decision === 'deny') add('error:PERMISSION_DENIED', share);
        else add(backends.find((b) => b.port === ep.port)?.version ?? `unknown endpoint ${ep.address}:${ep.port}`, share);
      }
    }
  }
  return out;
}

/** Counts must follow the predicted shares: exact for certainties, within 4.5 binomial sd otherwise. */
function expectAgreement(e: Explanation, want: Record<string, number>, counts: Record<string, number>): void {
  const n = Object.values(counts).reduce((a, b) => a + b, 0);
  const what = `explain predicted ${JSON.stringify(want)}, calls gave ${JSON.stringify(counts)}\n${renderExplanation(e)}`;
  expect(Object.keys(counts).sort(), what).toEqual(Object.keys(want).sort());
  for (const [k, p] of Object.entries(want)) {
    const share = (counts[k] ?? 0) / n;
    const tol = 4.5 * Math.sqrt((p * (1 - p)) / n);
    expect(Math.abs(share - p), `${k}: ${what}`).toBeLessThanOrEqual(tol + 1e-9);
  }
}

// ---------------------------------------------------------------------------------------------

let backends: BackendSet;
const teardown = new Teardown();
beforeAll(async () => {
  backends = await startBackends([
    { service: 'reviews', version: 'v1' },
    { service: 'reviews', version: 'v2' },
    { service: 'reviews', version: 'v3' },
  ]);
});
afterAll(async () => {
  await backends?.stop();
});
afterEach(() => teardown.run());

interface Caller { client: XdsClient; labels: Record<string, string> }

async function meshWith(http: Route[], labelSets: Array<Record<string, string>>): Promise<{ mesh: TestMesh; callers: Caller[] }> {
  const mesh = await startTestMesh(teardown, { backends: backends.backends, files: { 'rules.yaml': vsFor(REVIEWS, ...http) }, prefix: 'explain-agrees' });
  expect(mesh.cp.state().errors).toEqual([]);
  const callers = labelSets.map((labels) => ({ client: mesh.client({ labels }), labels }));
  return { mesh, callers };
}

async function ready(client: XdsClient, target: string, metadata: Record<string, string> = {}): Promise<void> {
  await waitFor(async () => (await client.call(target, metadata).catch(() => ({ version: '' }))).version !== '', { timeoutMs: 20_000, intervalMs: 100, description: `a call to ${target}` });
}

/** Explains the call for this client, sends `n` real calls, and compares. */
async function check(mesh: TestMesh, c: Caller, target: string, metadata: Record<string, string>, n: number, opts: { deadlineMs?: number; servers?: readonly BackendInfo[] } = {}): Promise<Explanation> {
  // The caller is named by its node id only: its identity (kind, namespace, labels, IP) is taken from
  // its live xDS connection, as POST /debug/explain does.
  const connected = [...mesh.cp.ads.streams].flatMap((s) => (s.proxy ? [s.proxy] : []));
  const e = explain(mesh.cp.state(), { from: c.client.nodeId, request: `${target}${METHOD}`, headers: Object.entries(metadata).map(([k, v]) => `${k}: ${v}`) }, connected);
  expect(e.caller).toMatchObject({ kind: 'grpc', labels: c.labels, ip: '127.0.0.1' });
  const deadlineMs = opts.deadlineMs ?? 5000;
  const want = predicted(e, opts.servers ?? backends.backends, deadlineMs);
  const counts: Record<string, number> = {};
  let sent = 0;
  // 25 calls in flight at a time, as the e2e helpers do.
  const worker = async () => {
    while (sent < n) {
      sent++;
      let key: string;
      try {
        key = (await c.client.call(target, metadata, deadlineMs)).version;
      } catch (err) {
        const code = (err as grpc.ServiceError).code;
        key = `error:${typeof code === 'number' ? grpc.status[code] : 'UNKNOWN'}`;
      }
      counts[key] = (counts[key] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: Math.min(25, n) }, worker));
  expectAgreement(e, want, counts);
  return e;
}

const TARGET = targetOf('reviews');

describe('explain names where the real calls go', () => {
  it('weights 80/20, and a header route before them', async () => {
    const { mesh, callers } = await meshWith(JASON_THEN_WEIGHTED, [{ app: 'client', version: 'v1' }]);
    const c = callers[0]!;
    await ready(c.client, TARGET);
    const weighted = await check(mesh, c, TARGET, {}, 1000);
    expect(weighted.destinations.map((d) => [d.subset, d.share])).toEqual([['v1', 0.8], ['v2', 0.2]]);
    const jason = await check(mesh, c, TARGET, { 'end-user': 'jason' }, 100);
    expect(jason.destinations.map((d) => d.subset)).toEqual(['v2']);
    await check(mesh, c, TARGET, { 'end-user': 'jasonx' }, 400);
  });

  it('a cookie regex route', async () => {
    const { mesh, callers } = await meshWith(COOKIE_JASON_TO_V3, [{ app: 'client', version: 'v1' }]);
    const c = callers[0]!;
    await ready(c.client, TARGET);
    for (const cookie of ['user=jason', 'theme=dark;user=jason;lang=en', 'user=bob', 'user=jasonx']) await check(mesh, c, TARGET, { cookie }, 40);
    expect((await check(mesh, c, TARGET, { cookie: 'a=1;user=jason' }, 20)).destinations[0]!.subset).toBe('v3');
  });

  it('a withoutHeaders route, with the header missing, different and equal', async () => {
    const { mesh, callers } = await meshWith(WITHOUT_HEADER, [{ app: 'client', version: 'v1' }]);
    const c = callers[0]!;
    await ready(c.client, TARGET);
    expect((await check(mesh, c, TARGET, {}, 30)).destinations[0]!.subset).toBe('v2');
    expect((await check(mesh, c, TARGET, { 'x-beta': '0' }, 30)).destinations[0]!.subset).toBe('v2');
    expect((await check(mesh, c, TARGET, { 'x-beta': '1' }, 30)).destinations[0]!.subset).toBe('v1');
  });

  it('a header match on :authority, which gRPC clients do not match on', async () => {
    const { mesh, callers } = await meshWith(AUTHORITY_HEADER, [{ app: 'client', version: 'v1' }]);
    const c = callers[0]!;
    await ready(c.client, TARGET);
    const e = await check(mesh, c, TARGET, {}, 30);
    expect(e.routes[0]!.reason).toBe('header :authority starting with "reviews"; the request has no such header');
  });

  it('a sourceLabels route applies to the caller with those labels only', async () => {
    const { mesh, callers } = await meshWith(PRODUCTPAGE_TO_V2, [{ app: 'productpage', version: 'v1' }, { app: 'ratings', version: 'v1' }]);
    for (const c of callers) await ready(c.client, TARGET);
    expect((await check(mesh, callers[0]!, TARGET, {}, 50)).destinations[0]!.subset).toBe('v2');
    expect((await check(mesh, callers[1]!, TARGET, {}, 50)).destinations[0]!.subset).toBe('v1');
  });

  it('fault aborts (gRPC status, HTTP status by header) and a delay past the deadline', async () => {
    const { mesh, callers } = await meshWith(FAULTS, [{ app: 'client', version: 'v1' }]);
    const c = callers[0]!;
    await waitFor(async () => (await c.client.call(TARGET).catch(() => ({ version: '' }))).version === 'v3', { timeoutMs: 20_000, intervalMs: 50, description: 'a first call through the fault' });
    const half = await check(mesh, c, TARGET, {}, 1000);
    expect(half.faults.map((f) => [f.kind, f.share, f.grpcStatus])).toEqual([['abort', 0.5, 14]]);
    const forbidden = await check(mesh, c, TARGET, { 'x-test': 'forbidden' }, 50);
    expect(forbidden.faults.map((f) => f.httpStatus)).toEqual([403]);
    const slow = await check(mesh, c, TARGET, { 'x-test': 'slow' }, 10, { deadlineMs: 300 });
    expect(slow.faults.map((f) => [f.kind, f.delay])).toEqual([['delay', '30s']]);
  });
});

describe('explain names the allow/deny decision the real xDS server makes', () => {
  async function rbacMesh(files: Record<string, string>) {
    const port = await reserveLoopbackPort();
    const servers = [{ service: 'ratings', version: 'v1', port, address: `127.0.0.1:${port}` }];
    const mesh = await startTestMesh(teardown, { backends: servers, files, prefix: 'explain-agrees-authz' });
    expect(mesh.cp.state().errors).toEqual([]);
    const server = await startXdsEchoServer({ xdsAddress: mesh.cp.xdsAddress, service: 'ratings', version: 'v1', port });
    teardown.add(() => server.stop());
    const labels = { app: 'reviews', version: 'v1' };
    const caller = { client: mesh.client({ labels }), labels };
    const target = targetOf('ratings');
    await waitFor(async () => {
      try {
        await caller.client.call(target, { 'x-caller': 'probe' });
        return true;
      } catch (err) {
        return (err as grpc.ServiceError).code === grpc.status.PERMISSION_DENIED;
      }
    }, { timeoutMs: 20_000, intervalMs: 100, description: 'a first answer from ratings' });
    return { mesh, caller, target, servers };
  }

  it('a DENY policy on a request header', async () => {
    const { mesh, caller, target, servers } = await rbacMesh({ 'authz.yaml': denyCallers('deny-some', ['reviews-v3']) });
    const denied = await check(mesh, caller, target, { 'x-caller': 'reviews-v3' }, 20, { servers });
    expect(denied.decision).toBe('deny');
    expect(denied.destinations[0]!.inbound[0]!.authz[0]!.matched[0]!.rule?.key).toBe('AuthorizationPolicy/default/deny-some');
    expect((await check(mesh, caller, target, { 'x-caller': 'reviews-v1' }, 20, { servers })).decision).toBe('allow');
  });

  it('an ALLOW list by header, method and path', async () => {
    const { mesh, caller, target, servers } = await rbacMesh({ 'authz.yaml': ONLY_V1_V2 });
    for (const who of ['reviews-v1', 'reviews-v2', 'reviews-v3']) await check(mesh, caller, target, { 'x-caller': who }, 10, { servers });
    expect((await check(mesh, caller, target, {}, 10, { servers })).decision).toBe('deny');
  });

  it("a source IP policy, decided with the caller's IP from its node id", async () => {
    // Every caller here connects from 127.0.0.1, as its node id says.
    const here = await rbacMesh({ 'authz.yaml': denyBatchAt('127.0.0.1') });
    expect((await check(here.mesh, here.caller, here.target, {}, 10, { servers: here.servers })).decision).toBe('deny');
    await teardown.run();
    const away = await rbacMesh({ 'authz.yaml': denyBatchAt('10.99.0.1') });
    expect((await check(away.mesh, away.caller, away.target, {}, 10, { servers: away.servers })).decision).toBe('allow');
  });
});
