// Base model + runtime state -> the model proxies are served: each Canary's route gets the weights
// its rollout is at, each running fault experiment's routes get its fault, and the clusters either
// kind judges get `loadReport` (proxies then report their load to meshpilot). Pure.
// A route is one VirtualService http route wherever it applies: in the sidecars' tables and, for a
// rule bound to gateways, at those gateways too (by its model name), so a canary shifts ingress
// traffic with the mesh's and never leaves the two disagreeing.
//
// The translator memoizes per object (translate/table-memo.ts, snapshot-cache.ts) and the change
// walk (translate/changes.ts) compares by identity: a table or cluster the overlay leaves as it was
// is the base's own object, and one it changes is the same object for as long as its base and its
// override are the same, so a push re-translates only what a step changed.
import { deepFreeze } from '../json.ts';
import type { CanaryRule, ExperimentRule, RuntimeState } from '../rollout/types.ts';
import { canaryRouteName } from './canaries.ts';
import { endpointsOnlySince, markEndpointsOnly } from './endpoint-update.ts';
import { clusterName } from './hosts.ts';
import type { FaultPolicy, GatewayVirtualService, HttpRoute, Model, Origin, RouteTable, UpstreamCluster, WeightedDestination } from './types.ts';

/** What the overlay does to one route: the canary weight, and the experiment's fault. */
interface RouteOverride {
  canary?: { rule: CanaryRule; weight: number };
  experiment?: { fault: FaultPolicy; origin: Origin };
}

/** Per base table: its overlaid versions by override text (a few at most: the last steps). */
const tables = new WeakMap<RouteTable, Map<string, RouteTable>>();
const KEPT_PER_TABLE = 4;
/** The same for gateway-bound VirtualServices. */
const gatewayRules = new WeakMap<GatewayVirtualService, Map<string, GatewayVirtualService>>();
/** Per base cluster: the same with loadReport. */
const reporting = new WeakMap<UpstreamCluster, UpstreamCluster>();
/** Per base model: the last runtime text and what it gave. */
const models = new WeakMap<Model, { key: string; out: Model }>();

export function applyRuntime(model: Model, runtime: RuntimeState): Model {
  if (!model.canaries.length && !model.experiments.length) return model;
  const weights = model.canaries.flatMap((c) => {
    const w = runtime.canaryWeights.get(c.key);
    return w === undefined ? [] : [[c, clampWeight(w)] as const];
  });
  const active = model.experiments.filter((e) => runtime.activeExperiments.has(e.key));
  const key = JSON.stringify([weights.map(([c, w]) => [c.key, w]), active.map((e) => e.key)]);
  const kept = models.get(model);
  if (kept?.key === key) return kept.out;

  const overrides = routeOverrides(weights, active);
  const routeTables = model.routeTables.map((t) => overlayTable(t, overrides.get(t.host)));
  const byName = gatewayOverrides(weights, active);
  const gatewayVirtualServices = byName.size ? model.gatewayVirtualServices.map((v) => overlayGatewayRule(v, byName)) : model.gatewayVirtualServices;
  const flagged = new Set([...model.canaries.flatMap((c) => [...c.stable.clusters, ...c.canary.clusters]), ...model.experiments.flatMap((e) => e.clusters)]);
  const clusters = model.clusters.map((c) => (flagged.has(c.name) ? withLoadReport(c) : c));
  const out = Object.freeze({ ...model, routeTables: Object.freeze(routeTables), clusters: Object.freeze(clusters), gatewayVirtualServices: Object.freeze(gatewayVirtualServices) }) as Model;
  models.set(model, { key, out });
  // The overlay of an endpoint update of a base, with the same runtime, is an endpoint update of
  // that base's overlay: what depends on neither (scopes, global texts, label keys) carries over.
  const base = endpointsOnlySince(model);
  const before = base && models.get(base);
  if (before?.key === key) markEndpointsOnly(out, before.out);
  return out;
}

function clampWeight(w: number): number {
  return Number.isFinite(w) ? Math.min(100, Math.max(0, Math.round(w))) : 0;
}

/** Host -> route name -> override. The first experiment (by key) on a route wins. */
function routeOverrides(weights: ReadonlyArray<readonly [CanaryRule, number]>, active: readonly ExperimentRule[]): Map<string, { byName: Map<string, RouteOverride>; all?: RouteOverride['experiment'] }> {
  const out = new Map<string, { byName: Map<string, RouteOverride>; all?: RouteOverride['experiment'] }>();
  const forHost = (host: string) => {
    let h = out.get(host);
    if (!h) out.set(host, (h = { byName: new Map() }));
    return h;
  };
  const at = (host: string, name: string) => {
    const h = forHost(host);
    let o = h.byName.get(name);
    if (!o) h.byName.set(name, (o = {}));
    return o;
  };
  for (const [rule, weight] of weights) at(rule.host, canaryRouteName(rule)).canary = { rule, weight };
  for (const e of active) {
    const experiment = { fault: e.fault, origin: e.origin };
    if (e.routeNames.length === 0) {
      const h = forHost(e.host);
      h.all ??= experiment;
    } else for (const name of e.routeNames) at(e.host, name).experiment ??= experiment;
  }
  return out;
}

/**
 * Model route name -> override, for routes at gateways: a Canary's route, and the routes an
 * experiment names. (An experiment on every route of a service acts on the sidecars' tables only:
 * at a gateway "the service's routes" would be every route that sends there. One on an ingress
 * host has its routes named by the model.)
 */
function gatewayOverrides(weights: ReadonlyArray<readonly [CanaryRule, number]>, active: readonly ExperimentRule[]): Map<string, RouteOverride> {
  const out = new Map<string, RouteOverride>();
  const at = (name: string) => {
    let o = out.get(name);
    if (!o) out.set(name, (o = {}));
    return o;
  };
  for (const [rule, weight] of weights) at(canaryRouteName(rule)).canary = { rule, weight };
  for (const e of active) for (const name of e.routeNames) at(name).experiment ??= { fault: e.fault, origin: e.origin };
  return out;
}

function overlayGatewayRule(vs: GatewayVirtualService, byName: ReadonlyMap<string, RouteOverride>): GatewayVirtualService {
  const perRoute = vs.routes.map((r) => byName.get(r.route.name));
  if (perRoute.every((o) => o === undefined)) return vs;
  return remembered(gatewayRules, vs, perRoute, () => {
    const routes = vs.routes.map((r, i) => ({ ...r, route: overlayRoute(r.route, perRoute[i], r.route.action.kind === 'route' ? r.route.action.destinations[0]?.port : undefined) }));
    return deepFreeze({ ...vs, routes });
  });
}

/**
 * The overlaid version of `base` for these per-route overrides: the same object for as long as the
 * base and the overrides' content are the same (the last few kept per base), else `make()`.
 */
function remembered<T extends object>(store: WeakMap<T, Map<string, T>>, base: T, perRoute: ReadonlyArray<RouteOverride | undefined>, make: () => T): T {
  const text = JSON.stringify(perRoute.map((o) => (o ? [o.canary?.rule.origin, o.canary?.weight, o.canary?.rule.revision, o.experiment?.origin, o.experiment?.fault] : 0)));
  let versions = store.get(base);
  const kept = versions?.get(text);
  if (kept) return kept;
  const out = make();
  if (!versions) store.set(base, (versions = new Map()));
  if (versions.size >= KEPT_PER_TABLE) versions.delete(versions.keys().next().value!);
  versions.set(text, out);
  return out;
}

function overlayTable(table: RouteTable, host: { byName: Map<string, RouteOverride>; all?: RouteOverride['experiment'] } | undefined): RouteTable {
  if (!host) return table;
  const perRoute = table.routes.map((r) => {
    const o = host.byName.get(r.name);
    const experiment = o?.experiment ?? host.all;
    return o?.canary || experiment ? { canary: o?.canary, experiment } : undefined;
  });
  if (perRoute.every((o) => o === undefined)) return table;
  return remembered(tables, table, perRoute, () => deepFreeze({ ...table, routes: table.routes.map((r, i) => overlayRoute(r, perRoute[i], table.port)) }));
}

/** `port`: the destination port when the route's own destinations name none (a table's port). */
function overlayRoute(route: HttpRoute, o: RouteOverride | undefined, port: number | undefined): HttpRoute {
  if (!o) return route;
  let out: HttpRoute = route;
  if (o.canary && route.action.kind === 'route' && port !== undefined) {
    out = { ...out, action: { ...route.action, destinations: canaryDestinations(route.action.destinations, o.canary.rule, o.canary.weight, port) }, weightsFrom: o.canary.rule.origin };
  }
  if (o.experiment) out = { ...out, fault: o.experiment.fault, faultFrom: o.experiment.origin };
  return out;
}

/**
 * Stable gets 100 - w, canary w. A destination with weight 0 is left out, as the model leaves out
 * a VirtualService's 0 weights (Envoy and gRPC refuse a weighted list whose total is 0, and one
 * entry at 0 is noise): at 0 or 100 the route has one destination.
 */
function canaryDestinations(base: readonly WeightedDestination[], rule: CanaryRule, weight: number, fallbackPort: number): WeightedDestination[] {
  const port = base[0]?.port ?? fallbackPort;
  const dest = (subset: string, w: number): WeightedDestination => {
    const own = base.find((d) => d.subset === subset);
    return own ? { ...own, weight: w } : { cluster: clusterName('outbound', port, subset, rule.host), host: rule.host, port, subset, weight: w };
  };
  return [dest(rule.stable.subset, 100 - weight), dest(rule.canary.subset, weight)].filter((d) => d.weight > 0);
}

function withLoadReport(c: UpstreamCluster): UpstreamCluster {
  if (c.loadReport) return c;
  let out = reporting.get(c);
  if (!out) reporting.set(c, (out = Object.freeze({ ...c, loadReport: true as const })));
  return out;
}
