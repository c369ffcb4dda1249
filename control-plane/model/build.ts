// Builds the model from validated rule objects. Cross-object problems (a route to an unknown host
// or subset, a subset without endpoints) reject the rule that has them; everything else is kept.
import type { ConfigObject } from '../config/types.ts';
import { compareText } from './compare.ts';
import { buildClusters, ClusterMemo, indexDestinationRules } from './clusters.ts';
import { warnDestinationRule, warnRateLimit, warnVirtualService } from './grpc-warnings.ts';
import { IssueList } from './issues.ts';
import { warnLocality, warnUnreachableNetworks } from './locality-warnings.ts';
import { buildRateLimits } from './rate-limit.ts';
import { buildAuthorizationPolicies } from './authorization.ts';
import { buildRouteTables, RouteMemo } from './routes.ts';
import { buildServices, ServiceMemo } from './services.ts';
import type { Model, ModelIssue } from './types.ts';

export interface BuildResult {
  model: Model;
  errors: ModelIssue[];
  /** Keys of the rules left out because of errors. */
  rejected: Set<string>;
}

/**
 * What builds keep for the next one, so a change costs in proportion to what it touches: parts
 * are kept per input object (by identity) and reused only when everything they were built from
 * is the same, and an unchanged part is then the very same object as in the previous model.
 */
export class ModelMemo {
  readonly services = new ServiceMemo();
  readonly clusters = new ClusterMemo();
  readonly routes = new RouteMemo();
}

// Shared by every build that names no memo of its own. Kept parts are keyed by the objects they
// were built from and checked before reuse, so builds of unrelated meshes cannot mix them up.
const sharedMemo = new ModelMemo();

export function buildModel(objects: ConfigObject[], networkGateways: Model['networkGateways'] = {}, memo: ModelMemo = sharedMemo): BuildResult {
  const issues = new IssueList();
  const sorted = [...objects].sort((a, b) => compareText(a.key, b.key));
  const services = buildServices(sorted, issues, memo.services);
  const serviceMap = new Map(services.map((s) => [s.host, s]));
  const rules = indexDestinationRules(sorted, serviceMap, issues);
  const clusters = buildClusters(services, rules, networkGateways, memo.clusters);
  const routeTables = buildRouteTables(sorted, {
    services: serviceMap,
    clusters: new Map(clusters.map((c) => [c.name, c])),
    subsets: new Map([...rules].map(([host, r]) => [host, new Set((r.spec.subsets ?? []).map((s) => s.name))])),
    issues,
  }, memo.routes);
  const rateLimits = buildRateLimits(sorted, serviceMap, issues);
  const authorizationPolicies = buildAuthorizationPolicies(sorted, services, issues);
  for (const obj of sorted) {
    if (issues.rejected.has(obj.key)) continue;
    if (obj.kind === 'VirtualService') warnVirtualService(obj, serviceMap, issues);
    if (obj.kind === 'DestinationRule') {
      warnDestinationRule(obj, serviceMap, issues);
      warnLocality(obj, serviceMap, issues);
    }
    if (obj.kind === 'RateLimit') warnRateLimit(obj, serviceMap, issues);
  }
  warnUnreachableNetworks(sorted, serviceMap, networkGateways, issues);
  const gateways = Object.fromEntries(Object.keys(networkGateways).sort().map((n) => [n, networkGateways[n].map((g) => ({ address: g.address, port: g.port }))]));
  const model: Model = { services, clusters, routeTables, rateLimits, authorizationPolicies, networkGateways: gateways, warnings: issues.warnings };
  return { model: deepFreeze(model), errors: issues.errors, rejected: issues.rejected };
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
