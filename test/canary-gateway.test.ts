// Canaries at gateways. A Canary's route is one VirtualService http route wherever it applies: a
// rule bound to mesh and a gateway gets the rollout's weights at both, and a rule bound to gateways
// only (an ingress host) can be driven too, by that host; its subsets are the destination service's.
// Checked in the model and the overlay, in the translated gateway route config (Envoy's protos), and
// end to end over raw ADS and LRS: a gateway reporting its load moves the ingress route step by
// step to promotion, or back to stable when the canary fails.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { checkResource } from '../control-plane/envoy/check.ts';
import { PROTO_INCLUDE_DIRS } from '../control-plane/envoy/protos.ts';
import { compile, formatIssue } from '../control-plane/model/compile.ts';
import { applyRuntime } from '../control-plane/model/runtime-overlay.ts';
import type { HttpRoute, Model } from '../control-plane/model/types.ts';
import { canaryTable } from '../control-plane/rollout/admin-views.ts';
import type { RuntimeState } from '../control-plane/rollout/types.ts';
import { startControlPlane, type ControlPlane } from '../control-plane/server.ts';
import { proxyFromNode } from '../control-plane/translate/proxy.ts';
import { translate } from '../control-plane/translate/translate.ts';
import { LISTENER, ROUTE_CONFIG } from '../control-plane/translate/type-urls.ts';
import { decoded, RawAdsClient, toStruct } from './helpers/raw-ads.ts';
import { Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';

const FILE = 'gateway-canary.yaml';
const PRODUCTPAGE = 'productpage.default.svc.cluster.local';
const REVIEWS = 'reviews.default.svc.cluster.local';
const cluster = (subset: string, host = PRODUCTPAGE) => `outbound|9080|${subset}|${host}`;

const service = (name: string) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: default }
spec:
  hosts: [${name}.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9080, name: http, protocol: HTTP }]
  endpoints:
  - { address: 10.0.1.${name.length}, labels: { app: ${name}, version: v1 } }
  - { address: 10.0.2.${name.length}, labels: { app: ${name}, version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${name}, namespace: default }
spec:
  host: ${name}
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
`;

const GATEWAY = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: public, namespace: default }
spec:
  selector: { istio: ingressgateway }
  servers:
  - port: { number: 80, name: http, protocol: HTTP }
    hosts: [shop.example.com, reviews.example.com]
`;

/** shop.example.com at the gateway only: its "main" route is the ingress canary's. */
const FRONTEND = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: frontend, namespace: default }
spec:
  hosts: [shop.example.com]
  gateways: [public]
  http:
  - name: static
    match: [{ uri: { prefix: /static } }]
    route: [{ destination: { host: productpage, subset: v1 } }]
  - name: main
    route:
    - destination: { host: productpage, subset: v1 }
      weight: 100
    - destination: { host: productpage, subset: v2 }
      weight: 0
`;

/** reviews for the mesh and at the gateway (reviews.example.com): one route, both places. */
const REVIEWS_VS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews, reviews.example.com]
  gateways: [mesh, public]
  http:
  - name: reviews-canary
    route: [{ destination: { host: reviews, subset: v1 } }]
`;

const canary = (name: string, host: string, route: string, extra = 'steps: [25, 50, 100]\ninterval: 1h') => `apiVersion: traffic.meshpilot.io/v1alpha1
kind: Canary
metadata: { name: ${name}, namespace: default }
spec:
  target: { host: ${host}, route: ${route} }
  stable: v1
  canary: v2
${extra.replace(/^/gm, '  ')}
`;

const MESH = [service('productpage'), service('reviews'), GATEWAY, FRONTEND, REVIEWS_VS, canary('shop', 'shop.example.com', 'main'), canary('reviews', 'reviews', 'reviews-canary')].join('---\n');

const build = (text = MESH) => compile(parseConfigText(FILE, text));
const runtime = (weights: Array<[string, number]>): RuntimeState => ({ canaryWeights: new Map(weights), activeExperiments: new Set() });
const gatewayRoute = (m: Model, vs: string, name: string): HttpRoute => m.gatewayVirtualServices.find((v) => v.key === `default/${vs}`)!.routes.find((r) => r.route.name === `default/${vs}/${name}`)!.route;
const meshRoute = (m: Model, host: string, name: string): HttpRoute => m.routeTables.find((t) => t.host === host)!.routes.find((r) => r.name === name)!;
const weights = (r: HttpRoute) => (r.action.kind === 'route' ? r.action.destinations.map((d) => [d.subset, d.weight, d.cluster]) : []);

const ROUTER_NODE = { id: 'router~10.9.0.9~ingress-1.default~default.svc.cluster.local', metadata: toStruct({ NAMESPACE: 'default', LABELS: { istio: 'ingressgateway' } }), user_agent_name: 'envoy' };
const ROUTER = proxyFromNode({ id: ROUTER_NODE.id, metadata: { NAMESPACE: 'default', LABELS: { istio: 'ingressgateway' } } });

/** The weighted clusters of a virtual host's last route in a gateway route config, as [cluster, weight]. */
function shopSplit(rc: any): Array<[string, number]> {
  const vh = rc.virtual_hosts.find((v: any) => v.domains.includes('shop.example.com'));
  const main = vh.routes.at(-1).route;
  return main.cluster ? [[main.cluster, 100]] : main.weighted_clusters.clusters.map((c: any) => [c.name, Number(c.weight?.value ?? c.weight)]);
}

describe('Canary on a gateway route (model and overlay)', () => {
  it('a gateway-only route is found by its ingress host; its subsets and clusters are the service it sends to', () => {
    const s = build();
    expect(s.errors.map(formatIssue)).toEqual([]);
    const shop = s.model.canaries.find((c) => c.key === 'Canary/default/shop')!;
    expect(shop).toMatchObject({
      host: PRODUCTPAGE,
      route: 'main',
      gatewayHost: 'shop.example.com',
      virtualService: 'VirtualService/default/frontend',
      stable: { subset: 'v1', clusters: [cluster('v1')] },
      canary: { subset: 'v2', clusters: [cluster('v2')] },
    });
    // What the canary judges reports its load: at the gateway, as everywhere.
    expect(applyRuntime(s.model, runtime([])).clusters.filter((c) => c.loadReport).map((c) => c.name).sort()).toEqual([cluster('v1'), cluster('v2'), cluster('v1', REVIEWS), cluster('v2', REVIEWS)].sort());
  });

  it('the overlay sets the weights at the gateway (and at the mesh for a rule bound to both), naming the Canary, and keeps what it does not touch', () => {
    const m = build().model;
    const origin = (key: string) => m.canaries.find((c) => c.key === key)!.origin;
    expect(weights(gatewayRoute(m, 'frontend', 'main'))).toEqual([['v1', 100, cluster('v1')]]);
    const out = applyRuntime(m, runtime([['Canary/default/shop', 25], ['Canary/default/reviews', 50]]));
    const main = gatewayRoute(out, 'frontend', 'main');
    expect(weights(main)).toEqual([['v1', 75, cluster('v1')], ['v2', 25, cluster('v2')]]);
    expect(main.weightsFrom).toEqual(origin('Canary/default/shop'));
    // The other route of the rule is the base's own object.
    expect(gatewayRoute(out, 'frontend', 'static')).toBe(gatewayRoute(m, 'frontend', 'static'));
    // reviews: the same weights for sidecars and at the gateway.
    const half = [['v1', 50, cluster('v1', REVIEWS)], ['v2', 50, cluster('v2', REVIEWS)]];
    expect(weights(meshRoute(out, REVIEWS, 'default/reviews/reviews-canary'))).toEqual(half);
    expect(weights(gatewayRoute(out, 'reviews', 'reviews-canary'))).toEqual(half);
    expect(gatewayRoute(out, 'reviews', 'reviews-canary').weightsFrom).toEqual(origin('Canary/default/reviews'));
    // Same base, same runtime: the same objects (the translator's memo keys by identity).
    const again = applyRuntime(m, runtime([['Canary/default/shop', 25], ['Canary/default/reviews', 50]]));
    expect(again.gatewayVirtualServices).toBe(out.gatewayVirtualServices);
    // Only the reviews rollout running: the frontend rule is the base's own object.
    const one = applyRuntime(m, runtime([['Canary/default/reviews', 50]]));
    expect(one.gatewayVirtualServices.find((v) => v.key === 'default/frontend')).toBe(m.gatewayVirtualServices.find((v) => v.key === 'default/frontend'));
    // No rollout state: the rules' own weights.
    expect(applyRuntime(m, runtime([])).gatewayVirtualServices).toEqual(m.gatewayVirtualServices);
  });

  it("a running experiment on a named route of a rule bound to mesh and a gateway injects at both; one on every route of the host, at the sidecars only", () => {
    const experiment = (name: string, routes: string) => `apiVersion: traffic.meshpilot.io/v1alpha1
kind: FaultExperiment
metadata: { name: ${name}, namespace: default }
spec:
  target: { host: reviews${routes} }
  fault:
    abort: { httpStatus: 503, percentage: { value: 10 } }
  expiresAt: "2030-12-31T23:00:00Z"
`;
    const s = build([MESH, experiment('named', ', routes: [reviews-canary]'), experiment('all', '')].join('---\n'));
    expect(s.errors.map(formatIssue)).toEqual([]);
    const run = (key: string) => ({ canaryWeights: new Map(), activeExperiments: new Set([key]) });
    const named = applyRuntime(s.model, run('FaultExperiment/default/named'));
    for (const r of [meshRoute(named, REVIEWS, 'default/reviews/reviews-canary'), gatewayRoute(named, 'reviews', 'reviews-canary')]) {
      expect(r.fault?.abort).toMatchObject({ httpStatus: 503 });
      expect(r.faultFrom?.key).toBe('FaultExperiment/default/named');
    }
    const all = applyRuntime(s.model, run('FaultExperiment/default/all'));
    expect(meshRoute(all, REVIEWS, 'default/reviews/reviews-canary').faultFrom?.key).toBe('FaultExperiment/default/all');
    expect(gatewayRoute(all, 'reviews', 'reviews-canary').fault).toBeUndefined();
  });

  it('a FaultExperiment on an ingress host: every route of its gateway-only rules, or those it names, at the gateway only; its guard reads what they send to', () => {
    const experiment = (name: string, target: string) => `apiVersion: traffic.meshpilot.io/v1alpha1
kind: FaultExperiment
metadata: { name: ${name}, namespace: default }
spec:
  target: ${target}
  fault:
    abort: { httpStatus: 503, percentage: { value: 10 } }
  expiresAt: "2030-12-31T23:00:00Z"
  guard: { minSuccessRate: 90 }
`;
    const s = build([MESH, experiment('every', '{ host: shop.example.com }'), experiment('main', '{ host: shop.example.com, routes: [main] }')].join('---\n'));
    expect(s.errors.map(formatIssue)).toEqual([]);
    const every = s.model.experiments.find((e) => e.key === 'FaultExperiment/default/every')!;
    expect(every).toMatchObject({ host: 'shop.example.com', routes: [], routeNames: ['default/frontend/main', 'default/frontend/static'], clusters: [cluster(''), cluster('v1'), cluster('v2')] });
    const main = s.model.experiments.find((e) => e.key === 'FaultExperiment/default/main')!;
    expect(main).toMatchObject({ routes: ['main'], routeNames: ['default/frontend/main'], clusters: [cluster(''), cluster('v1'), cluster('v2')] });
    const run = (key: string) => ({ canaryWeights: new Map(), activeExperiments: new Set([key]) });
    const out = applyRuntime(s.model, run('FaultExperiment/default/main'));
    expect(gatewayRoute(out, 'frontend', 'main').faultFrom?.key).toBe('FaultExperiment/default/main');
    expect(gatewayRoute(out, 'frontend', 'static')).toBe(gatewayRoute(s.model, 'frontend', 'static'));
    // No sidecar table changes: the rule is not bound to mesh.
    out.routeTables.forEach((t, i) => expect(t).toBe(applyRuntime(s.model, { canaryWeights: new Map(), activeExperiments: new Set() }).routeTables[i]));
    const all = applyRuntime(s.model, run('FaultExperiment/default/every'));
    for (const name of ['main', 'static']) expect(gatewayRoute(all, 'frontend', name).fault?.abort).toMatchObject({ httpStatus: 503 });
    // The gateway's route config carries the fault, through Envoy's protos.
    const rds = translate(all, ROUTER)[ROUTE_CONFIG] as any[];
    for (const r of rds) expect(checkResource(r)).toEqual([]);
    const vh = rds.find((r) => r.name === 'http.80').virtual_hosts.find((v: any) => v.domains.includes('shop.example.com'));
    for (const r of vh.routes) expect(JSON.stringify(r)).toContain('FaultExperiment/default/every');
    // Errors name the field: a route the rules do not have, a host that is neither.
    const errs = (target: string) => build([MESH, experiment('x', target)].join('---\n')).errors.map((e) => `${e.path}: ${e.message}`);
    expect(errs('{ host: shop.example.com, routes: [nope] }')).toEqual(['spec.target.routes[0]: no VirtualService in force has an http route named "nope" for shop.example.com (named routes: main, static)']);
    expect(errs('{ host: nowhere.example.com }')).toEqual(['spec.target.host: host nowhere.example.com is not a known service (declare it with a ServiceEntry) nor a host of a VirtualService bound to a gateway']);
  });

  it("the gateway's route config carries the weights and the Canary as their origin, and passes Envoy's protos", () => {
    const out = applyRuntime(build().model, runtime([['Canary/default/shop', 25]]));
    const rds = translate(out, ROUTER)[ROUTE_CONFIG] as any[];
    for (const r of rds) expect(checkResource(r)).toEqual([]);
    const rc = rds.find((r) => r.name === 'http.80');
    expect(shopSplit(rc)).toEqual([[cluster('v1'), 75], [cluster('v2'), 25]]);
    const vh = rc.virtual_hosts.find((v: any) => v.domains.includes('shop.example.com'));
    expect(JSON.stringify(vh.routes.at(-1).metadata)).toContain('Canary/default/shop');
  });

  it('refuses an ingress route it cannot drive, on the Canary, with its line and field', () => {
    const twoServices = FRONTEND.replace('destination: { host: productpage, subset: v2 }', 'destination: { host: reviews, subset: v2 }').replace('weight: 100', 'weight: 50').replace('weight: 0', 'weight: 50');
    const text = (frontend: string, c: string) => [service('productpage'), service('reviews'), GATEWAY, frontend, c].join('---\n');
    const errs = (frontend: string, c: string) => build(text(frontend, c)).errors.map((e) => `${e.path}: ${e.message}`);
    expect(errs(twoServices, canary('shop', 'shop.example.com', 'main'))).toEqual([
      `spec.target.route: route default/frontend/main sends to several services (${PRODUCTPAGE}, ${REVIEWS}): a canary route may send only to two subsets of one service`,
    ]);
    expect(errs(FRONTEND, canary('shop', 'shop.example.com', 'nope'))).toEqual([
      'spec.target.host: host shop.example.com is not a known service (declare it with a ServiceEntry) nor a host of a VirtualService bound to a gateway with an http route named "nope"',
    ]);
    // The route must send only to the two subsets, as in the mesh.
    const v3 = `${service('productpage').replace('{ name: v2, labels: { version: v2 } }]', '{ name: v2, labels: { version: v2 } }, { name: v3, labels: { version: v3 } }]')}`;
    const r = build([v3, service('reviews'), GATEWAY, FRONTEND.replace('subset: v1 } }]\n  - name: main', 'subset: v3 } }]\n  - name: main'), canary('shop', 'shop.example.com', 'static')].join('---\n'));
    expect(r.errors.map((e) => `${e.path}: ${e.message}`)).toEqual([
      `spec.target.route: route default/frontend/static sends to subset v3 of ${PRODUCTPAGE}: a canary route may send only to subsets v1 and v2 of ${PRODUCTPAGE}`,
    ]);
  });
});

interface LoadStatsResponse { clusters?: string[]; send_all_clusters?: boolean }
type Lrs = grpc.Client & { StreamLoadStats(): grpc.ClientDuplexStream<unknown, LoadStatsResponse> };

describe('Canary on a gateway route, driven by the gateway\'s load reports', () => {
  const teardown = new Teardown();
  afterEach(() => teardown.run());

  async function start(extra: string): Promise<{ cp: ControlPlane; dir: string }> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-gw-canary-'));
    teardown.add(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.writeFileSync(path.join(dir, 'mesh.yaml'), [service('productpage'), GATEWAY, FRONTEND, canary('shop', 'shop.example.com', 'main', extra)].join('---\n'));
    const cp = await startControlPlane({ configDir: dir, xdsListen: '127.0.0.1:0', adminListen: null, debounceMs: 20, logLevel: 'error', loadReporting: { intervalMs: 200 }, rollouts: { tickMs: 50, refreshMs: 500 } });
    teardown.add(() => cp.stop());
    return { cp, dir };
  }

  /** The gateway's route config http.80 as it is pushed, ACKing each. */
  async function watchGateway(cp: ControlPlane): Promise<{ splits: Array<Array<[string, number]>> }> {
    const ads = new RawAdsClient(cp.xdsAddress);
    teardown.add(() => ads.close());
    ads.send({ node: ROUTER_NODE, type_url: LISTENER, resource_names: [] });
    await ads.next();
    ads.send({ type_url: ROUTE_CONFIG, resource_names: ['http.80'] });
    const seen = { splits: [] as Array<Array<[string, number]>> };
    void (async () => {
      for (;;) {
        let res;
        try {
          res = await ads.next(60_000);
        } catch {
          return;
        }
        if (res.type_url !== ROUTE_CONFIG) continue;
        seen.splits.push(shopSplit(decoded(res)[0]));
        ads.send({ type_url: ROUTE_CONFIG, resource_names: ['http.80'], version_info: res.version_info, response_nonce: res.nonce });
      }
    })();
    return seen;
  }

  /** The gateway's LRS stream: it reports `perSecond` calls per subset every 200 ms, v2 failing `failV2` of them. */
  function reportAsGateway(cp: ControlPlane, failV2: number): { asked: () => string[] } {
    const def = protoLoader.loadSync('envoy/service/load_stats/v3/lrs.proto', { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true, includeDirs: [...PROTO_INCLUDE_DIRS] });
    const LrsClient = (grpc.loadPackageDefinition(def) as any).envoy.service.load_stats.v3.LoadReportingService as new (a: string, c: grpc.ChannelCredentials) => Lrs;
    const client = new LrsClient(cp.xdsAddress, grpc.credentials.createInsecure());
    const call = client.StreamLoadStats();
    let asked: string[] = [];
    call.on('data', (r: LoadStatsResponse) => (asked = r.clusters ?? []));
    call.on('error', () => {});
    call.write({ node: { id: ROUTER_NODE.id, user_agent_name: 'envoy' } });
    const stats = (name: string, ok: number, failed: number) => ({ cluster_name: name, upstream_locality_stats: [{ locality: {}, total_successful_requests: String(ok), total_error_requests: String(failed), total_issued_requests: String(ok + failed), total_requests_in_progress: '0' }] });
    const timer = setInterval(() => call.write({ cluster_stats: [stats(cluster('v1'), 10, 0), stats(cluster('v2'), 10 - failV2, failV2)] }), 200);
    teardown.add(() => {
      clearInterval(timer);
      call.cancel();
      client.close();
    });
    return { asked: () => asked };
  }

  const last = (seen: { splits: Array<Array<[string, number]>> }) => JSON.stringify(seen.splits.at(-1));

  it('a healthy canary: the ingress route goes through every step to promotion, and the gateway is asked for exactly its clusters', async () => {
    const { cp } = await start('steps: [50, 100]\ninterval: 1s\nanalysis: { minRequests: 10, minSuccessRate: 95 }');
    const seen = await watchGateway(cp);
    const lrs = reportAsGateway(cp, 0);
    await waitFor(() => lrs.asked().length === 2, { description: 'the gateway asked for the judged clusters', timeoutMs: 10_000 });
    expect([...lrs.asked()].sort()).toEqual([cluster('v1'), cluster('v2')]);
    await waitFor(() => last(seen) === JSON.stringify([[cluster('v2'), 100]]), { description: 'the ingress route at 100% canary', timeoutMs: 30_000 });
    await waitFor(() => cp.rollouts.canaries().find((c) => c.key === 'Canary/default/shop')?.phase === 'Promoted', { description: 'promoted', timeoutMs: 10_000 });
    const entry = cp.rollouts.canaries().find((c) => c.key === 'Canary/default/shop')!;
    expect(entry).toMatchObject({ host: PRODUCTPAGE, gatewayHost: 'shop.example.com', route: 'main', weight: 100 });
    // `meshpilot canary status` names the route by the host the Canary named.
    expect(canaryTable([entry], Date.now()).split('\n')[1]).toMatch(/^default\/shop\s+shop\.example\.com\/main\s+Promoted\s+100%/);
    // It went by the 50% step, and never anywhere the rule or a step does not say.
    const steps = seen.splits.map((s) => JSON.stringify(s));
    expect(steps).toContain(JSON.stringify([[cluster('v1'), 50], [cluster('v2'), 50]]));
    for (const s of steps) expect([JSON.stringify([[cluster('v1'), 100]]), JSON.stringify([[cluster('v1'), 50], [cluster('v2'), 50]]), JSON.stringify([[cluster('v2'), 100]])]).toContain(s);
  });

  it('a failing canary at the gateway is rolled back: the ingress route returns to stable', async () => {
    const { cp } = await start('steps: [50, 100]\ninterval: 1s\nanalysis: { minRequests: 10, minSuccessRate: 95, maxFailedChecks: 1 }');
    const seen = await watchGateway(cp);
    reportAsGateway(cp, 5);
    await waitFor(() => cp.rollouts.canaries().find((c) => c.key === 'Canary/default/shop')?.phase === 'RolledBack', { description: 'rolled back', timeoutMs: 30_000 });
    await waitFor(() => last(seen) === JSON.stringify([[cluster('v1'), 100]]), { description: 'the ingress route back on stable', timeoutMs: 10_000 });
    expect(seen.splits.map((s) => JSON.stringify(s))).toContain(JSON.stringify([[cluster('v1'), 50], [cluster('v2'), 50]]));
  });
});
