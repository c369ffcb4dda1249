// Builds the model from validated rule objects. Cross-object problems (a route to an unknown host
// or subset) reject the rule that has them; everything else is kept. Endpoints never decide
// whether a rule is accepted: a destination without any is a warning.
import { type ConfigObject, isKind } from '../config/types.ts';
import { deepFreeze } from '../json.ts';
import { compareText } from './compare.ts';
import { buildClusters, ClusterMemo, indexDestinationRules, type ResolvedRule } from './clusters.ts';
import { warnDestinationRule, warnRateLimit, warnServiceEntry, warnVirtualService } from './grpc-warnings.ts';
import { warnCredentialName } from './credential-warnings.ts';
import { IssueList, type IssueSink, type RecordedIssue, recordingSink, replayIssues } from './issues.ts';
import { warnLocality, warnUnreachableNetworks } from './locality-warnings.ts';
import { warnLoadBalancer } from './lb-warnings.ts';
import { buildRateLimits } from './rate-limit.ts';
import { buildCanaries } from './canaries.ts';
import { buildExperiments } from './experiments.ts';
import { buildAuthorizationPolicies } from './authorization.ts';
import { DEFAULT_MESH, type MeshSettings } from './mesh-identity.ts';
import { type MtlsContext, warnMutualToPermissiveGrpc } from './upstream-tls.ts';
import { buildPeerAuthentications, effectiveMtls } from './peer-authentication.ts';
import { buildRequestAuthentications, warnRequestIdentityRules } from './request-authentication.ts';
import { buildRouteTables, RouteMemo } from './routes.ts';
import { buildL4Tables, resolveL4Routes } from './l4-routes.ts';
import { buildGateways, buildGatewayVirtualServices } from './gateways.ts';
import { buildServices, ServiceMemo } from './services.ts';
import { buildSidecars } from './sidecars.ts';
import { warnDestinationRuleExportTo } from './export-to.ts';
import type { Model, ModelIssue, NetworkGateway, Service, ServiceLookup } from './types.ts';

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
  readonly warnings = new WeakMap<ConfigObject, Warned>();
  /** What the last build resolved that clusters are made from, for endpoint updates (endpoint-update.ts). */
  last?: ClusterInputs;
}

export interface ClusterInputs {
  rules: Map<string, ResolvedRule>;
  networkGateways: Record<string, NetworkGateway[]>;
  mtls: MtlsContext;
}

/** What a rule's warning checks raised, with the services they were judged on (host, service or none). */
interface Warned {
  lookups: Array<[string, Service | undefined]>;
  issues: RecordedIssue[];
}

/**
 * Runs the warning checks of one rule, or raises again what they raised for the same rule object
 * when every service they looked at is the same object as then (checks look at nothing else).
 */
function warnOnce(obj: ConfigObject, services: Map<string, Service>, issues: IssueList, memo: WeakMap<ConfigObject, Warned>, check: (s: ServiceLookup, i: IssueSink) => void): void {
  const kept = memo.get(obj);
  if (kept && kept.lookups.every(([host, svc]) => services.get(host) === svc)) {
    replayIssues(obj, kept.issues, issues);
    return;
  }
  const w: Warned = { lookups: [], issues: [] };
  const lookup = (host: string) => {
    const svc = services.get(host);
    w.lookups.push([host, svc]);
    return svc;
  };
  check({ get: lookup, has: (host) => lookup(host) !== undefined }, recordingSink(issues, w.issues));
  memo.set(obj, w);
}

/** `memo`: what earlier builds kept, owned by the caller (the control plane keeps one); without one, from scratch. */
export function buildModel(objects: ConfigObject[], networkGateways: Model['networkGateways'] = {}, memo: ModelMemo = new ModelMemo(), mesh: MeshSettings = DEFAULT_MESH): BuildResult {
  const issues = new IssueList();
  const sorted = [...objects].sort((a, b) => compareText(a.key, b.key));
  const services = buildServices(sorted, issues, memo.services);
  const serviceMap = new Map(services.map((s) => [s.host, s]));
  const rules = indexDestinationRules(sorted, serviceMap, issues, mesh.rootNamespace);
  const peerAuthentications = buildPeerAuthentications(sorted, services, mesh, issues);
  const mtls = { policies: peerAuthentications, mesh };
  const clusters = buildClusters(services, rules, networkGateways, memo.clusters, mtls);
  memo.last = { rules, networkGateways, mtls };
  const routeInputs = { services: serviceMap, clusters: new Map(clusters.map((c) => [c.name, c])), rules, issues };
  // Before the mesh's tables: a rule a gateway route rejects is left out of those too.
  const gateways = buildGateways(sorted, issues);
  const gatewayVirtualServices = buildGatewayVirtualServices(sorted, routeInputs, gateways);
  // tcp/tls routes first: an error there leaves the whole rule out of the http tables too.
  const l4 = resolveL4Routes(sorted, routeInputs);
  const routeTables = buildRouteTables(sorted, routeInputs, memo.routes);
  const l4Tables = buildL4Tables(l4, issues.rejected, routeInputs);
  const rateLimits = buildRateLimits(sorted, serviceMap, issues);
  // Canaries and fault experiments name routes in force: after the tables.
  const gatewayRulesInForce = gatewayVirtualServices.filter((v) => !issues.rejected.has(`VirtualService/${v.key}`));
  const rolloutInputs = { services: serviceMap, routeTables, clusters: routeInputs.clusters, gatewayVirtualServices: gatewayRulesInForce, issues };
  const canaries = buildCanaries(sorted, rolloutInputs);
  const experiments = buildExperiments(sorted, rolloutInputs);
  const requestAuthentications = buildRequestAuthentications(sorted, services, issues);
  const sidecars = buildSidecars(sorted, issues);
  const authorizationPolicies = buildAuthorizationPolicies(sorted, services, issues, mesh, (ns, labels, port) => effectiveMtls(peerAuthentications, mesh, ns, labels, port).mode);
  warnRequestIdentityRules(sorted, requestAuthentications, services, mesh, issues);
  const appliedTo = new Map<ConfigObject, string[]>();
  for (const [host, r] of rules) appliedTo.set(r.obj, [...(appliedTo.get(r.obj) ?? []), host]);
  for (const obj of sorted) {
    if (issues.rejected.has(obj.key)) continue;
    if (isKind(obj, 'ServiceEntry')) warnServiceEntry(obj, issues);
    if (isKind(obj, 'VirtualService')) warnOnce(obj, serviceMap, issues, memo.warnings, (s, i) => warnVirtualService(obj, s, i));
    if (isKind(obj, 'DestinationRule')) {
      warnCredentialName(obj, issues);
      warnDestinationRuleExportTo(obj, issues);
      // Checked afresh on each build: which services a rule is in force for changes as services
      // and other rules come and go.
      const hosts = appliedTo.get(obj) ?? [];
      warnDestinationRule(obj, hosts, serviceMap, issues);
      warnLocality(obj, hosts, serviceMap, issues);
      warnLoadBalancer(obj, issues);
    }
    if (isKind(obj, 'RateLimit')) warnOnce(obj, serviceMap, issues, memo.warnings, (s, i) => warnRateLimit(obj, s, i));
  }
  warnUnreachableNetworks(sorted, serviceMap, networkGateways, issues);
  warnMutualToPermissiveGrpc(clusters, serviceMap, (host) => rules.get(host)?.obj, { policies: peerAuthentications, mesh }, issues);
  const meshGateways = gateways;
  const gatewayList = Object.fromEntries(Object.keys(networkGateways).sort().map((n) => [n, networkGateways[n].map((g) => ({ address: g.address, port: g.port }))]));
  const model: Model = { services, clusters, routeTables, l4Tables, rateLimits, authorizationPolicies, peerAuthentications, requestAuthentications, sidecars, mesh: { ...mesh }, networkGateways: gatewayList, warnings: issues.warnings, gateways: meshGateways, gatewayVirtualServices: gatewayRulesInForce, canaries, experiments };
  return { model: deepFreeze(model), errors: issues.errors, rejected: issues.rejected };
}
