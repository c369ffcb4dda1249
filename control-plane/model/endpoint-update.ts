// Endpoint changes without a compile. A ServiceEntry's (or a Kubernetes Service's EndpointSlices')
// endpoints changing is the most frequent change a mesh sees, and it cannot change which rules are
// accepted or any route: route resolution never reads endpoints (an empty destination is only a
// warning). So when every object that changed since the last compile is a ServiceEntry in force
// whose new version differs only in `spec.endpoints`, the new model is the previous one with those
// services and their clusters replaced. Anything else returns undefined and the caller compiles.
// Warnings that depend on endpoints ("no endpoints", unreachable networks) are left as they were
// until the next compile; the caller schedules one.
import { type ConfigObject, isKind, type LoadResult } from '../config/types.ts';
import { deepFreeze } from '../json.ts';
import type { ModelMemo } from './build.ts';
import { serviceClusters } from './clusters.ts';
import type { MeshState } from './compile.ts';
import { MAX_ENDPOINT_WEIGHT, serviceEntryServices } from './services.ts';
import type { Model, UpstreamCluster } from './types.ts';

export interface EndpointUpdate {
  state: MeshState;
  /** Keys of the ServiceEntries whose endpoints changed (none: nothing changed at all). */
  changed: string[];
}

const text = (x: unknown) => JSON.stringify(x) ?? '';

/** Whether two versions of a rule differ in nothing but `spec.endpoints` (`endpoints: false`: in nothing at all), at the same place. */
function sameRule(a: ConfigObject, b: ConfigObject, endpoints: boolean): boolean {
  if (a.apiVersion !== b.apiVersion || a.source.file !== b.source.file || a.source.line !== b.source.line) return false;
  if (text(a.labels) !== text(b.labels) || text(a.annotations) !== text(b.annotations)) return false;
  const spec = (o: ConfigObject) => (endpoints ? { ...(o.spec as object), endpoints: undefined } : o.spec);
  return text(spec(a)) === text(spec(b));
}

/**
 * Whether two versions of an EDS cluster differ in nothing but their endpoint list (so no route,
 * listener or cluster resource changes, only its ClusterLoadAssignment). Fields derived from the
 * endpoints (TLS names from their service accounts, their networks' gateways) must be the same.
 */
export function onlyEndpointsDiffer(a: UpstreamCluster, b: UpstreamCluster): boolean {
  if (a.resolution !== 'STATIC' || b.resolution !== 'STATIC') return false;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    if (k === 'endpoints') continue;
    const x = (a as unknown as Record<string, unknown>)[k];
    const y = (b as unknown as Record<string, unknown>)[k];
    if (x !== y && text(x) !== text(y)) return false;
  }
  return true;
}

/** A model made by an endpoint update -> the model it was made from (differing in endpoints only). */
const madeFrom = new WeakMap<Model, Model>();

/**
 * The model `m` was made from by an endpoint update, if it was: everything but services' and
 * clusters' endpoints (and what derives from them) is the same, so what depends on nothing else
 * (a proxy's scope, the text of the global parts) can be carried over instead of recomputed.
 */
export function endpointsOnlySince(m: Model): Model | undefined {
  return madeFrom.get(m);
}

/**
 * Records that `next` differs from `from` only as an endpoint update's result differs from its
 * base: for a model derived from such a pair alike (the runtime overlay of each, model/runtime-overlay.ts).
 */
export function markEndpointsOnly(next: Model, from: Model): void {
  madeFrom.set(next, from);
  madeFrom.delete(from);
}

/** Per model: where each service and cluster is, and a host's cluster names (unchanged by updates). */
interface Index {
  service: Map<string, number>;
  cluster: Map<string, number>;
  clustersOf: Map<string, string[]>;
}
const indexes = new WeakMap<Model, Index>();
function indexOf(m: Model): Index {
  let ix = indexes.get(m);
  if (!ix) {
    const clustersOf = new Map<string, string[]>();
    for (const c of m.clusters) clustersOf.set(c.host, [...(clustersOf.get(c.host) ?? []), c.name]);
    ix = { service: new Map(m.services.map((s, i) => [s.host, i])), cluster: new Map(m.clusters.map((c, i) => [c.name, i])), clustersOf };
    indexes.set(m, ix);
  }
  return ix;
}

function sameErrors(a: LoadResult, b: LoadResult): boolean {
  if (a.errors.length !== b.errors.length) return false;
  if (a.errors.some((e, i) => e !== b.errors[i] && text(e) !== text(b.errors[i]))) return false;
  return a.networkGateways === b.networkGateways || text(a.networkGateways ?? {}) === text(b.networkGateways ?? {});
}

/** `applied`: the load `state` was compiled (or updated) from; `memo`: the one that compile used. */
export function endpointUpdate(applied: LoadResult, load: LoadResult, state: MeshState, memo: ModelMemo): EndpointUpdate | undefined {
  const inputs = memo.last;
  if (!inputs || load.objects.length !== applied.objects.length || !sameErrors(applied, load)) return undefined;
  const changed: Array<[ConfigObject<'ServiceEntry'>, ConfigObject<'ServiceEntry'>]> = [];
  // Objects read again from a changed file without any change of their own (same text, same line).
  const restated: Array<[ConfigObject, ConfigObject]> = [];
  let inForce: Map<string, ConfigObject> | undefined;
  for (let i = 0; i < load.objects.length; i++) {
    const was = applied.objects[i]!;
    const now = load.objects[i]!;
    if (was === now) continue;
    if (was.key !== now.key) return undefined;
    if (sameRule(was, now, false)) {
      restated.push([was, now]);
      continue;
    }
    if (!isKind(was, 'ServiceEntry') || !isKind(now, 'ServiceEntry')) return undefined;
    inForce ??= new Map(state.accepted.map((o) => [o.key, o]));
    if (inForce.get(was.key) !== was) return undefined;
    // A workloadSelector entry's endpoints are WorkloadEntries, not its own list.
    if (was.spec.workloadSelector || now.spec.workloadSelector || !sameRule(was, now, true)) return undefined;
    changed.push([was, now]);
  }
  const replaced = new Map<ConfigObject, ConfigObject>([...changed, ...restated]);
  const accepted = replaced.size ? state.accepted.map((o) => replaced.get(o) ?? o) : state.accepted;
  if (changed.length === 0) return { state: { ...state, accepted }, changed: [] };

  const model = state.model;
  const ix = indexOf(model);
  const services = [...model.services];
  const clusters = [...model.clusters];
  for (const [, obj] of changed) {
    const converted = serviceEntryServices(obj, memo.services);
    // Too heavy a locality is an error that rejects the entry: the compile says so.
    if (converted.totalWeight > MAX_ENDPOINT_WEIGHT) return undefined;
    for (const svc of converted.services) {
      const at = ix.service.get(svc.host);
      // A host another entry holds (a duplicate, rejected here) is left to the compile.
      if (at === undefined || services[at]!.origin.key !== obj.key) return undefined;
      services[at] = deepFreeze(svc);
      const built = serviceClusters(svc, inputs.rules.get(svc.host), inputs.networkGateways, memo.clusters, inputs.mtls);
      const names = ix.clustersOf.get(svc.host) ?? [];
      if (built.clusters.length !== names.length) return undefined;
      built.clusters = built.clusters.map((c) => {
        const where = ix.cluster.get(c.name);
        if (where === undefined) return c;
        const old = clusters[where]!;
        // Unchanged parts stay the previous objects, so translation memos keyed by them still hold.
        const next = onlyEndpointsDiffer(old, c) ? Object.freeze({ ...old, endpoints: deepFreeze(c.endpoints) }) : deepFreeze(c);
        clusters[where] = next;
        return next;
      });
      if (built.clusters.some((c) => !ix.cluster.has(c.name))) return undefined;
    }
  }
  const next = Object.freeze({ ...model, services: Object.freeze(services), clusters: Object.freeze(clusters) }) as Model;
  indexes.set(next, ix);
  madeFrom.set(next, model);
  // One step back only: otherwise each model would keep every model before it alive.
  madeFrom.delete(model);
  return { state: { ...state, model: next, accepted }, changed: changed.map(([, o]) => o.key) };
}
