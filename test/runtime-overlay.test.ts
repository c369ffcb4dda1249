// The runtime overlay (model/runtime-overlay.ts): a Canary's weight and a running experiment's
// fault reach the served model, what they judge gets loadReport, and unchanged parts stay the very
// same objects (the translator's memo and the change walk key by identity). The translated output
// is checked against Envoy's protos, for a sidecar and a proxyless gRPC client.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { checkResource } from '../control-plane/envoy/check.ts';
import { compile } from '../control-plane/model/compile.ts';
import { ModelMemo } from '../control-plane/model/build.ts';
import { endpointsOnlySince, endpointUpdate } from '../control-plane/model/endpoint-update.ts';
import { reuseUnchanged } from '../control-plane/model/reuse.ts';
import { applyRuntime } from '../control-plane/model/runtime-overlay.ts';
import type { HttpRoute, Model, RouteTable } from '../control-plane/model/types.ts';
import { NO_RUNTIME, type RuntimeState } from '../control-plane/rollout/types.ts';
import { translateChanges } from '../control-plane/translate/changes.ts';
import { TranslateMemo } from '../control-plane/translate/memo.ts';
import { proxyFromNode } from '../control-plane/translate/proxy.ts';
import { translate } from '../control-plane/translate/translate.ts';
import { ROUTE_CONFIG, TYPE_ORDER } from '../control-plane/translate/type-urls.ts';
import type { Json } from '../control-plane/json.ts';
import { grpcRejects } from './helpers/grpc-decode.ts';

const FIXTURE = 'test/golden/in/canary.yaml';
const TEXT = fs.readFileSync(FIXTURE, 'utf8');
const REVIEWS = 'reviews.default.svc.cluster.local';
const RATINGS = 'ratings.default.svc.cluster.local';
const CANARY = 'Canary/default/reviews';
const EXPERIMENT = 'FaultExperiment/default/ratings-delay';
const cluster = (subset: string, host = REVIEWS) => `outbound|9080|${subset}|${host}`;

const SIDECAR = proxyFromNode({ id: 'sidecar~10.0.0.9~productpage-v1-1.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default', LABELS: { app: 'productpage' } } });
const GRPC = proxyFromNode({ id: 'sidecar~10.0.0.10~productpage-v1-2.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default', GENERATOR: 'grpc', LABELS: { app: 'productpage' } } });

const base = (text = TEXT, memo = new ModelMemo()): Model => compile(parseConfigText(FIXTURE, text), [], memo).model;
const runtime = (weights: Array<[string, number]>, active: string[] = []): RuntimeState => ({ canaryWeights: new Map(weights), activeExperiments: new Set(active) });
const table = (m: Model, host: string): RouteTable => m.routeTables.find((t) => t.host === host)!;
const route = (m: Model, host: string, name: string): HttpRoute => table(m, host).routes.find((r) => r.name === name)!;
const canaryRoute = (m: Model) => route(m, REVIEWS, 'default/reviews/reviews-canary');
const weights = (r: HttpRoute) => (r.action.kind === 'route' ? r.action.destinations.map((d) => [d.subset, d.weight, d.cluster]) : []);

describe('applyRuntime', () => {
  it('a model without canaries or experiments is served as it is', () => {
    const plain = base(TEXT.split(/^---$/m).filter((d) => !/kind: (Canary|FaultExperiment)/.test(d)).join('---'));
    expect(applyRuntime(plain, NO_RUNTIME)).toBe(plain);
    expect(applyRuntime(plain, runtime([[CANARY, 50]], [EXPERIMENT]))).toBe(plain);
  });

  it('without runtime state: the VirtualService routes, and loadReport on what the rules judge', () => {
    const m = base();
    const out = applyRuntime(m, NO_RUNTIME);
    expect(out.routeTables).toEqual(m.routeTables);
    out.routeTables.forEach((t, i) => expect(t).toBe(m.routeTables[i]));
    expect(out.clusters.filter((c) => c.loadReport).map((c) => c.name)).toEqual([cluster('', RATINGS), cluster('v1'), cluster('v2')]);
    // Every other cluster is the base's own object.
    out.clusters.forEach((c, i) => (c.loadReport ? expect(c).toEqual({ ...m.clusters[i], loadReport: true }) : expect(c).toBe(m.clusters[i])));
    expect(m.clusters.some((c) => c.loadReport)).toBe(false);
  });

  it("a Canary's weight: stable 100 - w, canary w, the Canary named as the weights' origin", () => {
    const m = base();
    const origin = m.canaries[0]!.origin;
    expect(weights(canaryRoute(m))).toEqual([['v1', 100, cluster('v1')]]);
    const at25 = canaryRoute(applyRuntime(m, runtime([[CANARY, 25]])));
    expect(weights(at25)).toEqual([['v1', 75, cluster('v1')], ['v2', 25, cluster('v2')]]);
    expect(at25.weightsFrom).toEqual(origin);
    // At 0 and 100 one destination: a weight 0 entry is left out, as the model leaves it out.
    expect(weights(canaryRoute(applyRuntime(m, runtime([[CANARY, 0]]))))).toEqual([['v1', 100, cluster('v1')]]);
    expect(weights(canaryRoute(applyRuntime(m, runtime([[CANARY, 100]]))))).toEqual([['v2', 100, cluster('v2')]]);
    expect(canaryRoute(applyRuntime(m, runtime([[CANARY, 0]]))).weightsFrom).toEqual(origin);
    // The other route of the table is untouched, and so is the other table.
    const out = applyRuntime(m, runtime([[CANARY, 25]]));
    expect(route(out, REVIEWS, 'default/reviews/jason-to-v3')).toBe(route(m, REVIEWS, 'default/reviews/jason-to-v3'));
    expect(table(out, RATINGS)).toBe(table(m, RATINGS));
    // A weight for a Canary the model does not have is ignored.
    expect(applyRuntime(m, runtime([['Canary/default/gone', 50]])).routeTables).toEqual(m.routeTables);
  });

  it("a running experiment's fault replaces the route's own, with the experiment as its origin", () => {
    const m = base();
    const out = applyRuntime(m, runtime([], [EXPERIMENT]));
    const r = route(out, RATINGS, 'default/ratings/ratings');
    expect([r.fault, r.faultFrom]).toEqual([{ delay: { fixedDelayMs: 2000, percent: 50 } }, m.experiments[0]!.origin]);
    expect(table(out, REVIEWS)).toBe(table(m, REVIEWS));
    // Not active: no fault.
    expect(route(applyRuntime(m, NO_RUNTIME), RATINGS, 'default/ratings/ratings').fault).toBeUndefined();
  });

  it('an experiment without routes faults every route of the host', () => {
    const text = TEXT.replace('target: { host: ratings, routes: [ratings] }', 'target: { host: reviews }');
    const m = base(text);
    const out = applyRuntime(m, runtime([[CANARY, 10]], [EXPERIMENT]));
    const t = table(out, REVIEWS);
    expect(t.routes.map((r) => [r.name, r.fault?.delay?.fixedDelayMs, r.faultFrom?.key])).toEqual([
      ['default/reviews/jason-to-v3', 2000, EXPERIMENT],
      ['default/reviews/reviews-canary', 2000, EXPERIMENT],
    ]);
    expect(weights(t.routes[1]!)).toEqual([['v1', 90, cluster('v1')], ['v2', 10, cluster('v2')]]);
  });

  it('keeps identities: the same state gives the same objects, a new step only a new table', () => {
    const memo = new ModelMemo();
    const m1 = base(TEXT, memo);
    const a = applyRuntime(m1, runtime([[CANARY, 25]], [EXPERIMENT]));
    // Same base, equal state in new objects: the same model.
    expect(applyRuntime(m1, runtime([[CANARY, 25]], [EXPERIMENT]))).toBe(a);
    // A recompiled base whose tables are kept (reuse.ts): the overlaid tables and clusters are the same objects.
    const m2 = reuseUnchanged(base(TEXT, memo), m1);
    expect(m2).not.toBe(m1);
    const b = applyRuntime(m2, runtime([[CANARY, 25]], [EXPERIMENT]));
    b.routeTables.forEach((t, i) => expect(t).toBe(a.routeTables[i]));
    b.clusters.forEach((c, i) => expect(c).toBe(a.clusters[i]));
    // The next step: only the canary's table is new; back to 25 gives the old table again.
    const c = applyRuntime(m2, runtime([[CANARY, 50]], [EXPERIMENT]));
    expect(table(c, REVIEWS)).not.toBe(table(a, REVIEWS));
    expect(table(c, RATINGS)).toBe(table(a, RATINGS));
    c.clusters.forEach((x, i) => expect(x).toBe(a.clusters[i]));
    expect(table(applyRuntime(m2, runtime([[CANARY, 25]], [EXPERIMENT])), REVIEWS)).toBe(table(a, REVIEWS));
  });

  it('the overlay of an endpoint update is an endpoint update of the overlay', () => {
    const memo = new ModelMemo();
    const load = parseConfigText(FIXTURE, TEXT);
    const state = compile(load, [], memo);
    const rt = runtime([[CANARY, 25]], [EXPERIMENT]);
    const a = applyRuntime(state.model, rt);
    const update = endpointUpdate(load, parseConfigText(FIXTURE, TEXT.replace('address: 10.0.1.2,', 'address: 10.0.1.7,')), state, memo)!;
    expect(update).toBeDefined();
    const b = applyRuntime(update.state.model, rt);
    expect(endpointsOnlySince(b)).toBe(a);
    expect(b.clusters.find((c) => c.name === cluster('v2'))).toMatchObject({ loadReport: true, endpoints: [expect.objectContaining({ address: '10.0.1.7' })] });
    b.routeTables.forEach((t, i) => expect(t).toBe(a.routeTables[i]));
    // Another runtime state is not an endpoint update of `a`.
    expect(endpointsOnlySince(applyRuntime(update.state.model, runtime([[CANARY, 50]], [EXPERIMENT])))).toBeUndefined();
  });

  it('a step re-translates only the route config and listener of the canary route (translate/changes.ts)', () => {
    const m = base();
    const memo = new TranslateMemo();
    const a = applyRuntime(m, runtime([[CANARY, 25]]));
    const b = applyRuntime(m, runtime([[CANARY, 50]]));
    translate(a, GRPC, memo);
    const changes = translateChanges(a, b, GRPC, memo)!;
    expect(changes).toBeDefined();
    const names = TYPE_ORDER.flatMap((t) => changes.set[t].map((r) => `${t.split('.').pop()}/${String(r.name)}`));
    expect(names.every((n) => n.includes(REVIEWS) || n.startsWith('Listener/reviews'))).toBe(true);
    expect(names).toContain(`RouteConfiguration/${REVIEWS}:9080`);
    expect(names.some((n) => n.startsWith('Cluster/'))).toBe(false);
  });
});

describe('translated overlay', () => {
  const routesOf = (res: ReturnType<typeof translate>, vhost: string): Json[] => (res[ROUTE_CONFIG] as Json[]).flatMap((rc) => ((rc.virtual_hosts as Json[]) ?? []).filter((v) => v.name === vhost).flatMap((v) => v.routes as Json[]));

  it.each([['sidecar', SIDECAR], ['grpc', GRPC]] as const)('%s: weighted clusters, fault and route metadata naming the rules; every resource passes the check', (_, proxy) => {
    const res = translate(applyRuntime(base(), runtime([[CANARY, 25]], [EXPERIMENT])), proxy);
    for (const t of TYPE_ORDER) for (const r of res[t]) expect(checkResource(r), String(r.name ?? r.cluster_name)).toEqual([]);
    const canary = routesOf(res, `${REVIEWS}:9080`).find((r) => r.name === 'default/reviews/reviews-canary')!;
    expect((canary.route as Json).weighted_clusters).toEqual({ clusters: [{ name: cluster('v1'), weight: 75 }, { name: cluster('v2'), weight: 25 }] });
    expect(canary.metadata).toEqual({ filter_metadata: { 'meshpilot.io': { weights_from: CANARY } } });
    const ratings = routesOf(res, `${RATINGS}:9080`)[0]!;
    expect(ratings.metadata).toEqual({ filter_metadata: { 'meshpilot.io': { fault_from: EXPERIMENT } } });
    expect(Object.keys(ratings.typed_per_filter_config as Json)).toEqual(['envoy.filters.http.fault']);
    // What the real grpc-js-xds client decodes (and would otherwise NACK) takes it.
    if (proxy === GRPC) for (const t of TYPE_ORDER) for (const r of res[t]) expect(grpcRejects(r), String(r.name)).toBeUndefined();
    // Without runtime state no route carries metadata.
    const plain = translate(applyRuntime(base(), NO_RUNTIME), proxy);
    expect(JSON.stringify(plain[ROUTE_CONFIG])).not.toContain('meshpilot.io');
  });
});
