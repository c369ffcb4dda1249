// Canary rules -> CanaryRule: the route they drive, checked against the rules in force. A Canary
// sets the weights of one VirtualService http route between two subsets of the route's host; the
// route must already send to those subsets only, so that handing it back to the VirtualService
// (no weight from the rollout) is still a route between the same two versions.
// A route of a rule bound to gateways only (an ingress host such as shop.example.com) is found by
// that host instead; its two subsets are then those of the one service the route sends to.
import { type ConfigObject, ofKind } from '../config/types.ts';
import { contentHash } from '../xds/hash.ts';
import type { CanaryRule } from '../rollout/types.ts';
import { compareText } from './compare.ts';
import { durationMs } from './duration.ts';
import { clusterName, resolveHost } from './hosts.ts';
import { type IssueSink, originOf } from './issues.ts';
import { ingressRoutes, namedRoutes, tablesByHost, unknownRouteMessage } from './rollout-routes.ts';
import type { GatewayVirtualService, HttpRoute, RouteTable, Service, UpstreamCluster } from './types.ts';

export const CANARY_DEFAULTS = { minRequests: 20, maxFailedChecks: 2, finish: 'promote' } as const;

export interface RolloutInputs {
  services: ReadonlyMap<string, Service>;
  routeTables: readonly RouteTable[];
  clusters: ReadonlyMap<string, UpstreamCluster>;
  /** VirtualServices bound to gateways (in force): where a Canary may find an ingress route. */
  gatewayVirtualServices?: readonly GatewayVirtualService[];
  issues: IssueSink;
}

interface Target {
  /** The service whose subsets the route sends to. */
  host: string;
  modelName: string;
  virtualService: string;
  /** The route as written (its first table's copy for the mesh). */
  route: HttpRoute;
  ports: number[];
  /** The ingress host, for a route found at gateways. */
  gatewayHost?: string;
}

/** The subsets the model has clusters for, per host. */
function subsetsOf(clusters: ReadonlyMap<string, UpstreamCluster>, host: string): string[] {
  const out = new Set<string>();
  for (const c of clusters.values()) if (c.host === host && c.subset !== undefined) out.add(c.subset);
  return [...out].sort(compareText);
}

export function buildCanaries(objects: readonly ConfigObject[], inputs: RolloutInputs): CanaryRule[] {
  const rules = ofKind([...objects], 'Canary');
  if (!rules.length) return [];
  const vss = new Map(ofKind([...objects], 'VirtualService').map((v) => [v.key, v as ConfigObject]));
  const byHost = tablesByHost(inputs.routeTables);
  const taken = new Map<string, string>(); // model route name -> Canary key
  const out: CanaryRule[] = [];
  for (const obj of rules.sort((a, b) => compareText(a.key, b.key))) {
    const spec = obj.spec;
    const { issues } = inputs;
    const written = resolveHost(spec.target.host, obj.namespace);
    const hostRoutes = namedRoutes(byHost.get(written) ?? [], vss);
    const named = inputs.services.has(written) ? hostRoutes.get(spec.target.route) ?? [] : [];
    const atGateways = named.length ? [] : ingressRoutes(inputs.gatewayVirtualServices ?? [], written, vss).named.get(spec.target.route) ?? [];
    if (named.length === 0 && atGateways.length === 0) {
      if (!inputs.services.has(written)) issues.error(obj, ['spec', 'target', 'host'], `host ${written} is not a known service (declare it with a ServiceEntry) nor a host of a VirtualService bound to a gateway with an http route named ${JSON.stringify(spec.target.route)}`);
      else issues.error(obj, ['spec', 'target', 'route'], unknownRouteMessage(hostRoutes, spec.target.route, written));
      continue;
    }
    const found = named.length ? named.map((n) => n.virtualService) : atGateways.map((g) => g.virtualService);
    if (found.length > 1) {
      issues.error(obj, ['spec', 'target', 'route'], `several VirtualServices have an http route named ${JSON.stringify(spec.target.route)} for ${written} (${found.join(', ')}): name the route uniquely`);
      continue;
    }
    let target: Target;
    if (named.length) {
      const n = named[0]!;
      target = { host: written, modelName: n.modelName, virtualService: n.virtualService, route: n.inTables[0]!.route, ports: [...new Set(n.inTables.map((t) => t.table.port))].sort((a, b) => a - b) };
    } else {
      // An ingress route: the service is the one its destinations name.
      const g = atGateways[0]!;
      const dests = g.route.action.kind === 'route' ? g.route.action.destinations : [];
      const hosts = [...new Set(dests.map((d) => d.host))];
      if (hosts.length !== 1) {
        issues.error(obj, ['spec', 'target', 'route'], `route ${g.route.name} ${hosts.length ? `sends to several services (${hosts.join(', ')})` : 'sends to no service'}: a canary route may send only to two subsets of one service`);
        continue;
      }
      target = { host: hosts[0]!, modelName: g.route.name, virtualService: g.virtualService, route: g.route, ports: [...new Set(dests.map((d) => d.port))].sort((a, b) => a - b), gatewayHost: written };
    }
    const host = target.host;
    const subsets = subsetsOf(inputs.clusters, host);
    let ok = true;
    for (const field of ['stable', 'canary'] as const) {
      if (!subsets.includes(spec[field])) {
        issues.error(obj, ['spec', field], `subset ${spec[field]} is not defined for ${host} (${subsets.length ? `its DestinationRule has ${subsets.join(', ')}` : 'no DestinationRule defines subsets for it'})`);
        ok = false;
      }
    }
    if (!ok) continue;
    const first = target.route;
    const wrong = first.action.kind !== 'route'
      ? [`a ${first.action.kind === 'redirect' ? 'redirect' : 'direct response'}`]
      : first.action.destinations.filter((d) => d.host !== host || (d.subset !== spec.stable && d.subset !== spec.canary)).map((d) => (d.subset ? `subset ${d.subset} of ${d.host}` : d.host));
    if (wrong.length) {
      issues.error(obj, ['spec', 'target', 'route'], `route ${target.modelName} sends to ${wrong.join(', ')}: a canary route may send only to subsets ${spec.stable} and ${spec.canary} of ${host}`);
      continue;
    }
    const other = taken.get(target.modelName);
    if (other) {
      issues.error(obj, ['spec', 'target', 'route'], `route ${target.modelName} already has a Canary (${other}): one Canary per route`);
      continue;
    }
    taken.set(target.modelName, obj.key);
    const clustersOf = (subset: string) => target.ports.map((p) => clusterName('outbound', p, subset, host));
    const steps = [...spec.steps];
    const a = spec.analysis ?? {};
    out.push({
      key: obj.key,
      namespace: obj.namespace,
      name: obj.name,
      host,
      route: spec.target.route,
      ...(target.gatewayHost ? { gatewayHost: target.gatewayHost } : {}),
      virtualService: target.virtualService,
      stable: { subset: spec.stable, clusters: clustersOf(spec.stable) },
      canary: { subset: spec.canary, clusters: clustersOf(spec.canary) },
      steps,
      intervalMs: durationMs(spec.interval),
      analysis: {
        minRequests: a.minRequests ?? CANARY_DEFAULTS.minRequests,
        ...(a.minSuccessRate !== undefined ? { minSuccessRate: a.minSuccessRate } : {}),
        ...(a.maxDropFromStable !== undefined ? { maxDropFromStable: a.maxDropFromStable } : {}),
        maxFailedChecks: a.maxFailedChecks ?? CANARY_DEFAULTS.maxFailedChecks,
      },
      finish: spec.finish ?? CANARY_DEFAULTS.finish,
      revision: contentHash(JSON.stringify([host, target.modelName, spec.stable, spec.canary, steps])),
      origin: originOf(obj),
    });
  }
  return out;
}

/** The model route name (`ns/vs/http-name`) a Canary drives. */
export function canaryRouteName(c: Pick<CanaryRule, 'virtualService' | 'route'>): string {
  return `${c.virtualService.slice('VirtualService/'.length)}/${c.route}`;
}
