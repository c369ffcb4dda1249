// explain on whole meshes (the golden inputs and examples/bookinfo): which route, why the earlier
// ones did not match, destinations with weights and endpoints, faults, rate limits and the callee's
// RBAC decision, each pointing back to the rule's file and line. Also the CLI (`meshpilot explain`,
// `meshpilot test` including a deliberately wrong expectation) and POST /debug/explain.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { explain, type ExplainInput } from '../control-plane/explain/explain.ts';
import { renderExplanation } from '../control-plane/explain/render.ts';
import { checkCase, loadRouteTests } from '../control-plane/explain/route-tests.ts';
import { compile } from '../control-plane/model/compile.ts';
import { startControlPlane } from '../control-plane/server.ts';
import { LISTENER } from '../control-plane/translate/type-urls.ts';
import { RawAdsClient, toStruct } from './helpers/raw-ads.ts';

function mesh(file: string) {
  const full = path.join('test/golden/in', file);
  const state = compile(parseConfigText(full, fs.readFileSync(full, 'utf8')));
  expect(state.errors).toEqual([]);
  return { state, file: full, lineOf: (text: string) => fs.readFileSync(full, 'utf8').split('\n').findIndex((l) => l.includes(text)) + 1 };
}

function meshFromText(text: string) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-explain-'));
  const file = path.join(dir, 'rules.yaml');
  fs.writeFileSync(file, text);
  const state = compile(parseConfigText(file, text));
  fs.rmSync(dir, { recursive: true, force: true });
  return state;
}

const run = (m: ReturnType<typeof mesh>, input: ExplainInput) => explain(m.state, input);

describe('explain: routes', () => {
  const m = mesh('match-conditions.yaml');

  it('names the matching route and, for each earlier route, the first condition that failed', () => {
    const e = run(m, { from: 'sidecar~10.0.0.50~web-1.default~default.svc.cluster.local', request: 'GET http://reviews:9080/admin/users' });
    expect(e.route?.name).toBe('default/reviews-matches/no-debug-header');
    expect(e.route?.rule).toEqual({ key: 'VirtualService/default/reviews-matches', at: `${m.file}:${m.lineOf('name: no-debug-header') + 1}`, path: 'spec.http[2].match[0]' });
    expect(e.routes.map((r) => [r.name.split('/')[2], r.result, r.reason])).toEqual([
      ['exact-path', 'no match', 'path equal to "/reviews.Reviews/Get" (any case) (query string ignored); the request has "/admin/users"'],
      ['regex-path', 'no match', 'path fully matching the regex "/reviews\\\\.Reviews/(List|Watch)" (query string ignored); the request has "/admin/users"'],
      ['no-debug-header', 'matched', undefined],
    ]);
    expect(e.destinations.map((d) => [d.subset, d.share])).toEqual([['v3', 1]]);
    expect(e.destinations[0]!.endpoints).toEqual([{ priority: 0, locality: 'us-west/zone-c', share: 1, sameLocalityAsCaller: false, endpoints: [{ address: '10.0.1.3', port: 9080 }] }]);
  });

  it('follows the header: x-debug present skips the inverted match; source-scoped routes depend on the caller', () => {
    const e = run(m, { from: 'sidecar~10.0.0.50~web-1.default~default.svc.cluster.local', request: 'GET http://reviews:9080/admin/users', headers: ['x-debug: 1'] });
    expect(e.routes[2]!.reason).toBe('NOT header x-debug present; the request has "1"');
    // The last http entry has no name: Envoy's route name carries its index.
    expect(e.route?.name).toBe('default/reviews-matches/7');
    expect(e.notes).toContain(`route default/reviews-matches/from-reviews-v2 (VirtualService default/reviews-matches (${m.file}:${m.lineOf('name: from-reviews-v2')})) is not in this caller's config: its sourceLabels/sourceNamespace do not select this caller`);
    const v2 = run(m, { from: 'sidecar~10.0.0.51~reviews-1.default~default.svc.cluster.local', labels: { app: 'reviews', version: 'v2' }, request: 'GET http://reviews:9080/admin/users', headers: ['x-debug: 1'] });
    expect(v2.route?.name).toBe('default/reviews-matches/from-reviews-v2');
  });

  it('a gRPC client matches the method path; its routes have no method or query matches', () => {
    const e = run(m, { kind: 'grpc', request: 'xds:///reviews.default.svc.cluster.local:9080/reviews.reviews/GET' });
    expect(e.listener).toBe('reviews.default.svc.cluster.local:9080');
    expect(e.route?.name).toBe('default/reviews-matches/exact-path');
    expect(e.notes.filter((n) => n.includes('query-and-method'))).toEqual([
      `route default/reviews-matches/query-and-method (VirtualService default/reviews-matches (${m.file}:${m.lineOf('name: query-and-method')})) is not in this caller's config: its matches test query parameters or a method other than POST, which never hold for gRPC`,
    ]);
  });

  it('says plainly when nothing matches (no listener, no route) and when a catch-all takes the request', () => {
    const noListener = run(m, { kind: 'grpc', request: 'xds:///nope:9080/x' });
    expect(noListener.outcome.kind).toBe('no listener');
    expect(noListener.outcome.summary).toContain('no Listener named "nope:9080"');
    const state = meshFromText(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: shop, namespace: default }
spec:
  hosts: [shop.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP }]
  endpoints: [{ address: 10.0.5.1 }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: shop, namespace: default }
spec:
  hosts: [shop]
  http:
  - name: api
    match: [{ uri: { prefix: /api } }]
    route: [{ destination: { host: shop } }]
  - name: old
    match: [{ uri: { exact: /old } }]
    redirect: { uri: /new, redirectCode: 302 }
`);
    const noRoute = explain(state, { request: 'GET http://shop/web' });
    expect(noRoute.virtualHost?.domain).toBe('shop');
    expect(noRoute.outcome).toMatchObject({ kind: 'no route', status: 404 });
    expect(noRoute.routes.map((r) => r.reason)).toEqual(['path starting with "/api"; the request has "/web"', 'path equal to "/old" (query string ignored); the request has "/web"']);
    expect(explain(state, { request: 'GET http://shop/old?x=1' }).outcome).toMatchObject({ kind: 'redirect', status: 302, summary: 'redirect 302 to http://shop/new' });
    // A host no service has on this port goes to the catch-all: passthrough, and said so.
    const other = explain(state, { request: 'GET http://example.com/' });
    expect(other.virtualHost).toMatchObject({ name: 'allow_any', how: 'any host (*)' });
    expect(other.destinations.map((d) => d.cluster)).toEqual(['PassthroughCluster']);
    // The port suffix decides too: shop:8080 is not a domain of route config 80 (no listener on 8080 anyway).
    expect(explain(state, { request: 'GET http://shop:8080/' }).outcome.kind).toBe('passthrough');
  });
});

describe('explain: faults, rate limits, authorization', () => {
  it('reports the fault that applies to the matched route, with its share and rule', () => {
    const m = mesh('fault-injection.yaml');
    const jason = run(m, { kind: 'grpc', request: 'xds:///ratings.default.svc.cluster.local:9080/a.B/C', headers: ['end-user: jason'] });
    expect(jason.faults).toEqual([{ kind: 'delay', share: 1, delay: '7s', rule: { key: 'VirtualService/default/ratings', at: `${m.file}:${m.lineOf('name: jason-delay') + 2}`, path: 'spec.http[0].fault' } }]);
    const other = run(m, { kind: 'grpc', request: 'xds:///ratings.default.svc.cluster.local:9080/a.B/C' });
    expect(other.faults.map((f) => [f.kind, f.share, f.grpcStatus])).toEqual([['abort', 0.5, 14]]);
    expect(renderExplanation(other)).toContain('fault:    abort with gRPC UNAVAILABLE for 50% of requests');
    const details = run(m, { request: 'GET http://details.default.svc.cluster.local:9080/' });
    expect(details.faults.map((f) => [f.kind, f.share, f.delay ?? f.httpStatus])).toEqual([['delay', 0.1, '1.500s'], ['abort', 0.05, 503]]);
  });

  it("reports the caller's override bucket and the callee's share of the service-wide limit", () => {
    const m = mesh('ratelimit-overrides.yaml');
    const e = run(m, { from: 'default/productpage', request: 'GET http://ratings:9080/' });
    expect(e.caller.ip).toBe('10.0.0.19');
    const out = e.rateLimits.find((r) => r.side === 'outbound')!;
    expect(out).toMatchObject({ tokens: 5, fillInterval: '1s', enforcedShare: 1 });
    expect(out.rule).toMatchObject({ key: 'RateLimit/default/ratings', path: 'spec.overrides[0]' });
    const inbound = e.rateLimits.filter((r) => r.side === 'inbound');
    expect(inbound.map((r) => [r.endpoint, r.tokens])).toEqual([['10.0.3.1:9080', 2500], ['10.0.3.2:9080', 2500]]);
    // Labels alone resolve to a workload with them (its IP decides the caller's share).
    const byLabels = run(m, { labels: { app: 'productpage' }, request: 'GET http://ratings:9080/' });
    expect(byLabels.caller).toMatchObject({ ip: '10.0.0.19', namespace: 'default' });
    expect(byLabels.rateLimits.find((r) => r.side === 'outbound')?.tokens).toBe(5);
    // gRPC clients get no rate limit filter at all.
    expect(run(m, { from: 'default/reviews', kind: 'grpc', request: 'xds:///ratings:9080/a.B/C' }).rateLimits).toEqual([]);
  });

  it("evaluates the callee's RBAC filters against the caller's IP, method and path", () => {
    const m = mesh('authz-allow-deny.yaml');
    const allowed = run(m, { from: 'default/productpage', request: 'GET http://reviews:9080/x' });
    expect(allowed.decision).toBe('allow');
    expect(allowed.destinations[0]!.inbound[0]!.reason).toBe('ALLOW policy ns[default]-policy[reviews-callers]-rule[0] matches');
    const stranger = run(m, { from: 'sidecar~10.7.7.7~batch-1.default~default.svc.cluster.local', request: 'GET http://reviews:9080/x' });
    expect(stranger.decision).toBe('deny');
    const admin = run(m, { from: 'sidecar~172.16.0.1~x-1.default~default.svc.cluster.local', request: 'POST http://productpage:9080/admin/users' });
    expect(admin.decision).toBe('deny');
    const step = admin.destinations[0]!.inbound[0]!.authz.find((s) => s.action === 'DENY')!;
    const ruleLine = fs.readFileSync(m.file, 'utf8').split('\n').findIndex((l, i) => i >= m.lineOf('name: deny-admin') && l.includes('- from:')) + 1;
    expect(step.matched[0]!.rule).toEqual({ key: 'AuthorizationPolicy/default/deny-admin', at: `${m.file}:${ruleLine}`, path: 'spec.rules[0]' });
    expect(run(m, { from: 'sidecar~10.1.1.1~x-1.default~default.svc.cluster.local', request: 'POST http://productpage:9080/admin/users' }).decision).toBe('allow');
    // Without the caller's IP the source condition cannot be decided, and explain says so.
    const anon = run(m, { request: 'POST http://productpage:9080/admin' });
    expect(anon.decision).toBe('unknown');
    expect(renderExplanation(anon)).toContain("it tests the caller's IP, which is not known");
  });
});

describe('route test expectations', () => {
  // Each expectation once right and once wrong: both must be decided correctly.
  function results(m: ReturnType<typeof mesh>, yaml: string) {
    const { cases, problems } = loadRouteTests('cases.yaml', yaml);
    expect(problems).toEqual([]);
    return cases.map((c) => checkCase(m.state, c).diffs.map((d) => `${d.field}: expected ${d.expected}, got ${d.got}`));
  }

  it('fault with percentages, and status', () => {
    const m = mesh('fault-injection.yaml');
    expect(results(m, `tests:
- name: right
  request: GET http://details.default.svc.cluster.local:9080/
  expect: { fault: { delay: { fixedDelay: 1.500s, percent: 10 }, abort: { httpStatus: 503, percent: 5 } } }
- name: wrong percent
  request: GET http://details.default.svc.cluster.local:9080/
  expect: { fault: { abort: { httpStatus: 503, percent: 50 }, delay: {} } }
- name: wrong gRPC status
  kind: grpc
  request: xds:///ratings.default.svc.cluster.local:9080/a.B/C
  expect: { fault: { abort: { grpcStatus: INTERNAL } } }
- name: right gRPC status
  kind: grpc
  request: xds:///ratings.default.svc.cluster.local:9080/a.B/C
  expect: { fault: { abort: { grpcStatus: UNAVAILABLE, percent: 50 } } }
- name: no fault expected
  request: GET http://details.default.svc.cluster.local:9080/
  expect: { fault: none, status: 404 }
`)).toEqual([
      [],
      ['fault: expected delay, abort 503 50%, got delay 1.500s 10%, abort 503 5%'],
      ['fault: expected abort INTERNAL, got abort UNAVAILABLE 50%'],
      [],
      ['status: expected 404, got none (forwarded to details.default.svc.cluster.local 100%)', 'fault: expected none, got delay 1.500s 10%, abort 503 5%'],
    ]);
  });

  it('decision, rateLimited and outcome', () => {
    const authz = mesh('authz-allow-deny.yaml');
    expect(results(authz, `tests:
- name: deny
  from: sidecar~10.7.7.7~batch-1.default~default.svc.cluster.local
  request: GET http://reviews:9080/x
  expect: { decision: deny, outcome: forward }
- name: not allowed
  from: sidecar~10.7.7.7~batch-1.default~default.svc.cluster.local
  request: GET http://reviews:9080/x
  expect: { decision: allow, outcome: no route }
`)).toEqual([[], ['outcome: expected no route, got forward (forwarded to reviews.default.svc.cluster.local 100%)', 'decision: expected allow, got deny']]);
    const rl = mesh('ratelimit-overrides.yaml');
    expect(results(rl, `tests:
- name: limited
  from: default/productpage
  request: GET http://ratings:9080/
  expect: { rateLimited: true }
- name: said not limited
  from: default/productpage
  request: GET http://ratings:9080/
  expect: { rateLimited: false }
`)).toEqual([[], ['rateLimited: expected false, got true (outbound 5 per 1s, inbound 2500 per 1s, inbound 2500 per 1s)']]);
  });
});

// ---------------------------------------------------------------------------------------------
// The command line and the admin API.

const exec = promisify(execFile);
const BIN = path.resolve('bin/meshpilot.js');
async function meshpilot(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [BIN, ...args], { timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-explain-cli-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('meshpilot explain and meshpilot test', () => {
  it('explain prints the route, the reason earlier routes failed, and file:line', async () => {
    const r = await meshpilot('explain', '--config-dir', 'examples/bookinfo', '--from', 'default/productpage', 'GET http://reviews:9080/reviews/1', '-H', 'end-user: bob');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('fails: header end-user equal to "jason"; the request has "bob"');
    expect(r.stdout).toMatch(/MATCH #1 default\/reviews\/v3-canary: prefix "\/"  <- VirtualService default\/reviews spec\.http\[1\] \(examples\/bookinfo\/reviews-canary\.yaml:\d+\)/);
    expect(r.stdout).toContain('forwarded to reviews.default.svc.cluster.local subset v1 90%, reviews.default.svc.cluster.local subset v3 10%');
    const j = await meshpilot('explain', '--config-dir', 'examples/bookinfo', '--json', '--kind', 'grpc', 'xds:///reviews:9080/a.B/C', '-H', 'end-user: jason');
    expect(JSON.parse(j.stdout).route.name).toBe('default/reviews/jason-to-v2');
    const bad = await meshpilot('explain', '--config-dir', 'examples/bookinfo', '--from', 'default/nobody', 'GET http://reviews:9080/');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('no workload default/nobody');
  });

  it('the example route tests pass against examples/bookinfo', async () => {
    const r = await meshpilot('test', '--config-dir', 'examples/bookinfo', 'examples/bookinfo-tests/reviews.test.yaml');
    expect(r.stdout).toMatch(/6 passed, 0 failed/);
    expect(r.code).toBe(0);
  });

  it('a deliberately wrong expectation fails with expected vs got and the explain trace', async () => {
    const file = path.join(tmp, 'wrong.yaml');
    fs.writeFileSync(file, `tests:
- name: right
  request: GET http://reviews:9080/
  headers: { end-user: jason }
  expect: { route: jason-to-v2 }
- name: jason sees v3
  from: default/productpage
  request: GET http://reviews:9080/reviews/1
  headers: { end-user: jason }
  expect:
    destination: { host: reviews.default.svc.cluster.local, subset: v3 }
    fault: none
`);
    const r = await meshpilot('test', '--config-dir', 'examples/bookinfo', file);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`ok   ${file}:2 right`);
    expect(r.stdout).toContain(`FAIL ${file}:6 jason sees v3`);
    expect(r.stdout).toContain('  destination  expected: reviews.default.svc.cluster.local subset v3\n                    got: reviews.default.svc.cluster.local:9080 subset v2 weight 100');
    expect(r.stdout).not.toContain('  fault ');
    expect(r.stdout).toContain('  explain trace:\n    caller:   Envoy sidecar');
    expect(r.stdout).toMatch(/1 passed, 1 failed/);
  });

  it('a malformed test file is reported with file:line and field path', async () => {
    const file = path.join(tmp, 'malformed.yaml');
    // Two tests, three errors: the summary counts tests (none ran) and the file's errors apart.
    fs.writeFileSync(file, 'tests:\n- name: x\n  request: GET http://reviews:9080/\n  expect:\n    rout: jason-to-v2\n    decision: maybe\n- name: y\n  kind: toaster\n  request: GET http://reviews:9080/\n  expect: {}\n');
    const r = await meshpilot('test', '--config-dir', 'examples/bookinfo', file);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`${file}:5:5 tests[0].expect.rout: unknown field`);
    expect(r.stdout).toMatch(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:6:15 tests\\[0\\]\\.expect\\.decision: `));
    expect(r.stdout).toContain(`${file}:8:9 tests[1].kind: `);
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe('0 passed, 0 failed, 1 file with errors (3 errors)');

    // With a good file and a missing one: the good file's tests run and count; still exit 1.
    const both = await meshpilot('test', '--config-dir', 'examples/bookinfo', 'examples/bookinfo-tests/reviews.test.yaml', file, path.join(tmp, 'missing.yaml'));
    expect(both.code).toBe(1);
    expect(both.stdout.trimEnd().split('\n').at(-1)).toBe('6 passed, 0 failed, 2 files with errors (4 errors)');
  });

  it('rejected rules fail the run and are counted apart from the tests', async () => {
    const dir = path.join(tmp, 'rules-with-error');
    fs.cpSync('examples/bookinfo', dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'broken.yaml'), 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: broken }\nspec:\n  hosts: [nowhere]\n  htp: []\n');
    const r = await meshpilot('test', '--config-dir', dir, 'examples/bookinfo-tests/reviews.test.yaml');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('broken.yaml');
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe('6 passed, 0 failed, 2 rule errors');
  });
});

describe('POST /debug/explain', () => {
  it("answers from the running control plane's rules, and 400 for a bad body", async () => {
    const cp = await startControlPlane({ configDir: 'examples/bookinfo', xdsListen: '127.0.0.1:0', adminListen: '127.0.0.1:0', logLevel: 'error' });
    try {
      const post = (body: unknown) => fetch(`http://${cp.adminAddress}/debug/explain`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const ok = await post({ from: 'default/productpage', request: 'GET http://reviews:9080/', headers: { 'end-user': 'jason' }, text: true });
      expect(ok.status).toBe(200);
      const e = await ok.json();
      expect(e.route.name).toBe('default/reviews/jason-to-v2');
      expect(e.destinations.map((d: { subset: string }) => d.subset)).toEqual(['v2']);
      expect(e.text).toContain('MATCH #0 default/reviews/jason-to-v2');
      const bad = await post({ request: 'GET http://reviews:9080/', kind: 'toaster' });
      expect(bad.status).toBe(400);
      expect((await bad.json()).errors[0]).toMatch(/^kind: /);
      const badLine = await post({ request: 'reviews' });
      expect(badLine.status).toBe(400);

      // `from` naming a connected proxy takes its identity from its xDS node: here a gRPC client
      // labelled app=tester in namespace default, with no IP.
      const id = 'tester~explain';
      const ads = new RawAdsClient(cp.xdsAddress!);
      try {
        ads.send({ node: { id, metadata: toStruct({ GENERATOR: 'grpc', NAMESPACE: 'default', LABELS: { app: 'tester' } }) as never }, type_url: LISTENER, resource_names: ['reviews:9080'] });
        await ads.next();
        const live = await (await post({ from: id, request: 'xds:///reviews:9080/a.B/C' })).json();
        expect(live.caller).toMatchObject({ id, kind: 'grpc', labels: { app: 'tester' } });
        expect(live.caller.how).toContain('connected proxy');
        expect(live.listener).toBe('reviews:9080');
      } finally {
        ads.close();
      }
    } finally {
      await cp.stop();
    }
  });
});
