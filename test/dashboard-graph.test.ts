// The dashboard's graph (dashboard/graph.ts) from compiled example meshes: examples/bookinfo as it
// ships (reviews' edges and weights, subsets and their endpoints, rules with file:line), with
// policies added in a copy (a fault, a mirror, a rate limit, an authorization policy), with a fault
// experiment and a canary applied by the runtime overlay (the origins the page links to), and with
// load figures and callers.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDirectory } from '../control-plane/config/load.ts';
import { meshGraph, type Graph, type GraphService } from '../control-plane/dashboard/graph.ts';
import type { LoadReport } from '../control-plane/load/load-route.ts';
import { compile, type MeshState } from '../control-plane/model/compile.ts';
import { applyRuntime } from '../control-plane/model/runtime-overlay.ts';
import { NO_RUNTIME } from '../control-plane/rollout/types.ts';
import type { ProxyStatus } from '../control-plane/observe/proxy-status.ts';
import { abort, header, httpRoute, to, virtualService, yamlDocs } from './helpers/yaml-builders.ts';

const REVIEWS = 'reviews.default.svc.cluster.local';
const RATINGS = 'ratings.default.svc.cluster.local';
const DETAILS = 'details.default.svc.cluster.local';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A copy of `example` with more files in it, compiled. */
function compiled(example: string, files: Record<string, string> = {}): MeshState {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-dashboard-graph-'));
  dirs.push(dir);
  fs.cpSync(example, dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  const state = compile(loadDirectory(dir));
  expect(state.errors.map((e) => e.message), 'the rules must be accepted').toEqual([]);
  return state;
}

/** The line of the first line of `file` (in the state's accepted objects' folder) containing `text`. */
function lineOf(state: MeshState, file: string, text: string): string {
  const full = state.accepted.find((o) => path.basename(o.source.file) === file)!.source.file;
  const i = fs.readFileSync(full, 'utf8').split('\n').findIndex((l) => l.includes(text));
  expect(i, `${text} in ${file}`).toBeGreaterThanOrEqual(0);
  return `${full}:${i + 1}`;
}

/** Where the document of `file` whose metadata has `name: <name>` starts (its apiVersion line). */
function docAt(state: MeshState, file: string, name: string): string {
  const [full, line] = lineOf(state, file, `name: ${name}`).split(/:(?=\d+$)/);
  const lines = fs.readFileSync(full!, 'utf8').split('\n');
  let i = Number(line) - 1;
  while (i > 0 && !lines[i]!.startsWith('apiVersion')) i--;
  return `${full}:${i + 1}`;
}

const service = (g: Graph, host: string): GraphService => g.services.find((s) => s.host === host)!;
const edgesFrom = (g: Graph, host: string) => g.edges.filter((e) => e.from === host).map((e) => ({ route: e.route, to: e.to, subset: e.subset, weight: e.weight }));

describe('the dashboard graph of examples/bookinfo', () => {
  const state = compiled('examples/bookinfo');
  const graph = meshGraph({ model: state.model, accepted: state.accepted });

  it('lists every service, grouped by namespace', () => {
    expect(graph.namespaces).toEqual(['default']);
    expect(graph.services.map((s) => s.name)).toEqual(['details', 'productpage', 'ratings', 'reviews']);
    expect(service(graph, REVIEWS)).toMatchObject({ namespace: 'default', ports: [{ number: 9080, name: 'grpc', protocol: 'GRPC' }] });
  });

  it('has an edge per destination of each VirtualService route, weights in percent of the route, from the route in the file', () => {
    expect(edgesFrom(graph, REVIEWS)).toEqual([
      { route: 'default/reviews/jason-to-v2', to: REVIEWS, subset: 'v2', weight: 100 },
      { route: 'default/reviews/v3-canary', to: REVIEWS, subset: 'v1', weight: 90 },
      { route: 'default/reviews/v3-canary', to: REVIEWS, subset: 'v3', weight: 10 },
    ]);
    const canaryRoute = graph.edges.find((e) => e.subset === 'v3')!;
    expect(canaryRoute.origin).toEqual({ key: 'VirtualService/default/reviews', at: lineOf(state, 'reviews-canary.yaml', '- name: v3-canary') });
    expect(canaryRoute.weightsFrom).toBeUndefined();
    // Services without a VirtualService have only their default route: no edge.
    expect(graph.edges.every((e) => e.from === REVIEWS)).toBe(true);
    expect(new Set(graph.edges.map((e) => e.id)).size).toBe(graph.edges.length);
  });

  it('gives each subset its labels and endpoint count, and each endpoint its subset and locality', () => {
    const reviews = service(graph, REVIEWS);
    expect(reviews.subsets).toEqual([
      { name: 'v1', labels: { version: 'v1' }, endpoints: 1 },
      { name: 'v2', labels: { version: 'v2' }, endpoints: 1 },
      { name: 'v3', labels: { version: 'v3' }, endpoints: 1 },
    ]);
    expect(reviews.endpoints.find((e) => e.ports.grpc === 19084)).toEqual({ address: '127.0.0.1', ports: { grpc: 19084 }, locality: 'us-east/zone-b', labels: { app: 'reviews', version: 'v2' }, subset: 'v2' });
  });

  it('lists the rules naming a service where each object starts', () => {
    expect(service(graph, REVIEWS).rules).toEqual([
      { key: 'DestinationRule/default/reviews', at: docAt(state, 'destination-rules.yaml', 'reviews') },
      { key: 'ServiceEntry/default/reviews', at: docAt(state, 'services.yaml', 'reviews') },
      { key: 'VirtualService/default/reviews', at: docAt(state, 'reviews-canary.yaml', 'reviews') },
    ]);
  });

  it('is the same JSON text for the same model, whatever the order of the rules in force', () => {
    const again = meshGraph({ model: state.model, accepted: [...state.accepted].reverse() });
    expect(JSON.stringify(again)).toBe(JSON.stringify(graph));
  });
});

describe('policies and their origins', () => {
  const POLICIES = yamlDocs(
    virtualService({ hosts: [RATINGS], http: [
      httpRoute([to(RATINGS, 'v1')], { name: 'flaky', match: [header('x-flaky', 'exact', '1')], fault: abort('UNAVAILABLE', 30), mirror: { host: DETAILS, subset: 'v1' }, mirrorPercentage: { value: 5 } }),
      httpRoute([to(RATINGS, 'v1', 1), to(DETAILS, 'v1', 3)], { name: 'split' }),
    ] }),
    [
      'apiVersion: security.istio.io/v1',
      'kind: AuthorizationPolicy',
      'metadata: { name: ratings-callers, namespace: default }',
      'spec:',
      '  selector: { matchLabels: { app: ratings } }',
      '  action: ALLOW',
      '  rules: [{ to: [{ operation: { methods: [GET] } }] }]',
      '',
    ].join('\n'),
    'apiVersion: traffic.meshpilot.io/v1alpha1\nkind: RateLimit\nmetadata: { name: ratings, namespace: default }\nspec:\n  destination: { host: ratings }\n  limit: { requests: 10, per: 1s }\n',
  );

  it('shows a route\'s fault with the route that has it, and its mirror', () => {
    const state = compiled('examples/bookinfo', { 'ratings.yaml': POLICIES });
    const graph = meshGraph({ model: state.model, accepted: state.accepted });
    const ratings = service(graph, RATINGS);
    const route = lineOf(state, 'ratings.yaml', '- match:'); // the first http route's item
    expect(ratings.policies.faults).toEqual([{ route: 'default/ratings/flaky', at: route, origin: { key: 'VirtualService/default/ratings', at: route }, fault: { abort: { percent: 30, grpcStatus: 14 } } }]);
    expect(ratings.policies.mirrors).toEqual([{ route: 'default/ratings/flaky', to: DETAILS, subset: 'v1', percent: 5 }]);
    expect(ratings.policies.authorization).toEqual(['AuthorizationPolicy/default/ratings-callers']);
    expect(ratings.policies.rateLimits).toEqual(['RateLimit/default/ratings']);
    expect(ratings.rules.map((r) => r.key)).toEqual(['AuthorizationPolicy/default/ratings-callers', 'DestinationRule/default/ratings', 'RateLimit/default/ratings', 'ServiceEntry/default/ratings', 'VirtualService/default/ratings']);
    expect(service(graph, REVIEWS).policies.authorization).toEqual([]);
    // The mirror's VirtualService names details too.
    expect(service(graph, DETAILS).rules.map((r) => r.key)).toContain('VirtualService/default/ratings');
    // Weights are percent of their route, whatever the rule's total; a destination may be another service.
    expect(edgesFrom(graph, RATINGS)).toEqual([
      { route: 'default/ratings/flaky', to: RATINGS, subset: 'v1', weight: 100 },
      { route: 'default/ratings/split', to: RATINGS, subset: 'v1', weight: 25 },
      { route: 'default/ratings/split', to: DETAILS, subset: 'v1', weight: 75 },
    ]);
  });

  it('names a running fault experiment as the origin of the fault it injects', () => {
    const state = compiled('examples/bookinfo', { 'ratings-fault.yaml': fs.readFileSync('examples/canary-fault/ratings-fault.yaml', 'utf8') });
    const key = 'FaultExperiment/default/ratings-slow';
    const before = meshGraph({ model: state.model, accepted: state.accepted });
    expect(service(before, RATINGS).policies.faults).toEqual([]);
    const served = applyRuntime(state.model, { ...NO_RUNTIME, activeExperiments: new Set([key]) });
    const graph = meshGraph({ model: served, accepted: state.accepted });
    const [fault] = service(graph, RATINGS).policies.faults;
    const at = lineOf(state, 'ratings-fault.yaml', 'apiVersion');
    expect(fault).toMatchObject({ route: 'default', origin: { key, at } });
    expect(fault!.fault.delay).toEqual({ fixedDelayMs: 200, percent: 100 });
    expect(service(graph, RATINGS).rules).toContainEqual({ key, at });
  });

  it('names the Canary that decides a route\'s weights, with the weights it set', () => {
    const state = compiled('examples/canary');
    const served = applyRuntime(state.model, { ...NO_RUNTIME, canaryWeights: new Map([['Canary/default/reviews', 25]]) });
    const graph = meshGraph({ model: served, accepted: state.accepted });
    const canaryEdges = graph.edges.filter((e) => e.weightsFrom === 'Canary/default/reviews');
    expect(canaryEdges.map((e) => [e.subset, e.weight])).toEqual([['v1', 75], ['v2', 25]]);
    expect(service(graph, REVIEWS).rules.map((r) => r.key)).toContain('Canary/default/reviews');
  });
});

describe('load and callers', () => {
  const state = compiled('examples/bookinfo');
  const v1 = `outbound|9080|v1|${REVIEWS}`;
  const v3 = `outbound|9080|v3|${REVIEWS}`;
  const load: LoadReport = {
    windowSeconds: 60,
    services: [{
      host: REVIEWS,
      subsets: [
        { subset: 'v1', cluster: v1, requestsPerSecond: 1.5, successRate: 100, inFlight: 0, proxies: 1, completed: 90, failed: 0 },
        { subset: 'v3', cluster: v3, requestsPerSecond: 0.5, successRate: 80, inFlight: 0, proxies: 1, completed: 30, failed: 6 },
      ],
    }],
    unknownClusters: [],
  };
  const client = { id: 'sidecar~127.0.0.1~productpage-1a2b.default~default.svc.cluster.local', labels: { app: 'productpage' }, types: { lds: { typeUrl: 'x', state: 'SYNCED', subscribed: [`${RATINGS}:9080`, 'not-a-service:80'] } } } as unknown as ProxyStatus;
  const graph = meshGraph({ model: state.model, accepted: state.accepted, load, proxies: [client], reporters: new Map([[v1, ['sidecar~10.0.0.9~batch-7.jobs~jobs.svc.cluster.local']]]) });

  it('puts the reported load on the edges to each subset, and the total on the service', () => {
    expect(graph.edges.find((e) => e.subset === 'v1')!.load).toEqual({ requestsPerSecond: 1.5, successRate: 100 });
    expect(graph.edges.find((e) => e.subset === 'v3')!.load).toEqual({ requestsPerSecond: 0.5, successRate: 80 });
    expect(graph.edges.find((e) => e.subset === 'v2')!.load).toBeUndefined();
    // (90 + 24) of 120 calls succeeded.
    expect(service(graph, REVIEWS).load).toEqual({ requestsPerSecond: 2, successRate: 95 });
    expect(service(graph, RATINGS).load).toBeUndefined();
  });

  it('names callers by app label (gRPC listener subscriptions) or by pod (load reporters)', () => {
    expect(graph.callers).toEqual([
      { from: 'batch-7', to: REVIEWS },
      { from: 'productpage', to: RATINGS },
    ]);
  });
});
