// FaultExperiment rules -> ExperimentRule: the host's routes it applies to (checked against the
// rules in force), its fault resolved like a VirtualService's, and the clusters its guard reads.
// Whether it injects now is runtime state (rollout/), applied by model/runtime-overlay.ts.
import { type ConfigObject, ofKind } from '../config/types.ts';
import { contentHash } from '../xds/hash.ts';
import type { ExperimentRule } from '../rollout/types.ts';
import type { RolloutInputs } from './canaries.ts';
import { compareText } from './compare.ts';
import { durationMs } from './duration.ts';
import { resolveFault } from './fault.ts';
import { resolveHost } from './hosts.ts';
import { originOf } from './issues.ts';
import { namedRoutes, tablesByHost, unknownRouteMessage } from './rollout-routes.ts';

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
    if (!inputs.services.has(host)) {
      issues.error(obj, ['spec', 'target', 'host'], `host ${host} is not a known service (declare it with a ServiceEntry)`);
      continue;
    }
    const tables = byHost.get(host) ?? [];
    if (!tables.length) {
      issues.error(obj, ['spec', 'target', 'host'], `${host} has no HTTP, HTTP2 or GRPC port: faults apply to HTTP routes`);
      continue;
    }
    const named = namedRoutes(tables, vss);
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
      clusters: [...inputs.clusters.values()].filter((c) => c.host === host).map((c) => c.name).sort(compareText),
      revision: contentHash(JSON.stringify([host, [...(spec.target.routes ?? [])], fault, expiresAtMs])),
      origin: originOf(obj),
    });
  }
  return out;
}
