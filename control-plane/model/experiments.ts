// FaultExperiment rules -> ExperimentRule: the host's routes it applies to (checked against the
// rules in force), its fault resolved like a VirtualService's, and the clusters its guard reads.
// Whether it injects now is runtime state (rollout/), applied by model/runtime-overlay.ts.
// A host that is no service but an ingress host of rules bound to gateways only (shop.example.com)
// names those rules' routes at the gateways; the guard then reads the clusters they send to.
import { type ConfigObject, ofKind } from '../config/types.ts';
import { contentHash } from '../xds/hash.ts';
import type { ExperimentRule } from '../rollout/types.ts';
import type { RolloutInputs } from './canaries.ts';
import { compareText } from './compare.ts';
import { durationMs } from './duration.ts';
import { resolveFault } from './fault.ts';
import { resolveHost } from './hosts.ts';
import { originOf } from './issues.ts';
import { ingressRoutes, namedRoutes, tablesByHost, unknownRouteMessage } from './rollout-routes.ts';

export const GUARD_DEFAULTS = { minRequests: 20, window: '30s' } as const;

export function buildExperiments(objects: readonly ConfigObject[], inputs: RolloutInputs): ExperimentRule[] {
  const rules = ofKind([...objects], 'FaultExperiment');
  if (!rules.length) return [];
  const vss = new Map(ofKind([...objects], 'VirtualService').map((v) => [v.key, v as ConfigObject]));
  const byHost = tablesByHost(inputs.routeTables);
  const out: ExperimentRule[] = [];
  for (const obj of rules.sort((a, b) => compareText(a.key, b.key))) {
    const spec = obj.spec;
    const { issues } = inputs;
    const host = resolveHost(spec.target.host, obj.namespace);
    const ingress = inputs.services.has(host) ? undefined : ingressRoutes(inputs.gatewayVirtualServices ?? [], host, vss);
    if (ingress && !ingress.all.length) {
      issues.error(obj, ['spec', 'target', 'host'], `host ${host} is not a known service (declare it with a ServiceEntry) nor a host of a VirtualService bound to a gateway`);
      continue;
    }
    const tables = byHost.get(host) ?? [];
    if (!ingress && !tables.length) {
      issues.error(obj, ['spec', 'target', 'host'], `${host} has no HTTP, HTTP2 or GRPC port: faults apply to HTTP routes`);
      continue;
    }
    const named: ReadonlyMap<string, Array<{ modelName: string }>> = ingress ? ingress.named : namedRoutes(tables, vss);
    const routeNames: string[] = [];
    let ok = true;
    (spec.target.routes ?? []).forEach((name, i) => {
      const found = named.get(name) ?? [];
      if (!found.length) {
        issues.error(obj, ['spec', 'target', 'routes', i], unknownRouteMessage(named, name, host));
        ok = false;
      }
      routeNames.push(...found.map((f) => f.modelName));
    });
    const fault = resolveFault(obj, spec.fault, ['spec', 'fault'], issues);
    if (!fault) issues.error(obj, ['spec', 'fault'], 'the fault injects nothing: set delay.fixedDelay or abort');
    if (!ok || !fault) continue;
    // At gateways "every route" is every route of the host's rules, named one by one (the
    // sidecars' tables are not the host's here), and the guard reads every cluster of the services
    // those routes send to (as it reads every cluster of a service: a canary may move the weights).
    if (ingress && !spec.target.routes?.length) routeNames.push(...ingress.all.map((r) => r.name));
    const chosen = ingress ? ingress.all.filter((r) => routeNames.includes(r.name)) : [];
    const guarded = ingress ? new Set(chosen.flatMap((r) => (r.action.kind === 'route' ? r.action.destinations.map((d) => d.host) : []))) : new Set([host]);
    const clusters = [...inputs.clusters.values()].filter((c) => guarded.has(c.host)).map((c) => c.name).sort(compareText);
    const guard = spec.guard;
    const expiresAtMs = Date.parse(spec.expiresAt);
    out.push({
      key: obj.key,
      namespace: obj.namespace,
      name: obj.name,
      host,
      routes: [...(spec.target.routes ?? [])],
      routeNames: [...new Set(routeNames)].sort(compareText),
      fault,
      expiresAtMs,
      ...(guard
        ? { guard: { minSuccessRate: guard.minSuccessRate, minRequests: guard.minRequests ?? GUARD_DEFAULTS.minRequests, windowMs: durationMs(guard.window ?? GUARD_DEFAULTS.window) } }
        : {}),
      clusters,
      revision: contentHash(JSON.stringify([host, [...(spec.target.routes ?? [])], fault, expiresAtMs])),
      origin: originOf(obj),
    });
  }
  return out;
}
