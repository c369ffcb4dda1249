// ClusterLoadAssignment for each cluster: endpoints grouped by locality. Locality weights are
// always set (gRPC silently drops localities without one). A caller with a locality or a network
// gets its own view (translate/locality-priority.ts): priorities, distribute weights, remote
// networks through their gateways; a caller with neither gets every endpoint at priority 0.
import type { Endpoint, Locality, UpstreamCluster } from '../model/types.ts';
import { assignLocalities, callerKey, dependsOnCaller, type Caller, type LbTarget } from './locality-priority.ts';
import { deepFreeze, type Json } from '../json.ts';
import { ENDPOINTS } from './type-urls.ts';
import type { TranslateMemo } from './memo.ts';

/** Envoy's default, stated so the spill-over point is visible in the config: a priority keeps all
 * traffic while more than 100/140 (~71%) of its endpoints are healthy. gRPC does not use it: it
 * moves to the next priority when one fails to connect. */
export const OVERPROVISIONING_FACTOR = 140;

export function localityJson(l: Locality): Json {
  return { ...(l.region ? { region: l.region } : {}), ...(l.zone ? { zone: l.zone } : {}), ...(l.subzone ? { sub_zone: l.subzone } : {}) };
}

/** A model endpoint's LbEndpoint, one for every view that lists it (its object is frozen, so this never goes stale). */
const lbEndpoints = new WeakMap<LbTarget, Json>();

export function lbEndpoint(e: LbTarget): Json {
  const known = lbEndpoints.get(e);
  if (known) return known;
  const json = {
    endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } },
    ...(e.weight ? { load_balancing_weight: e.weight } : {}),
  };
  // Targets made for one view (through a gateway, weights summed as they are built) are not kept.
  if (Object.isFrozen(e)) lbEndpoints.set(e, deepFreeze(json));
  return json;
}

export function localityGroups(endpoints: ReadonlyArray<Endpoint & { port: number }>): Json[] {
  const groups = new Map<string, Array<Endpoint & { port: number }>>();
  for (const e of endpoints) {
    const k = `${e.locality.region}/${e.locality.zone}/${e.locality.subzone}`;
    groups.set(k, [...(groups.get(k) ?? []), e]);
  }
  return [...groups.keys()].sort().map((k) => {
    const eps = [...groups.get(k)!].sort((a, b) => a.address.localeCompare(b.address) || a.port - b.port);
    return {
      locality: localityJson(eps[0].locality),
      lb_endpoints: eps.map(lbEndpoint),
      load_balancing_weight: eps.reduce((sum, e) => sum + (e.weight || 1), 0),
    };
  });
}

/** Memoized per model object, like the clusters (see model/reuse.ts), and per caller view. */
export function clusterLoadAssignment(c: UpstreamCluster, caller: Caller | undefined, memo: TranslateMemo): Json {
  if (caller && dependsOnCaller(c)) {
    let views = memo.endpointsPerCaller.get(c);
    if (!views) memo.endpointsPerCaller.set(c, (views = new Map()));
    const key = callerKey(c, caller);
    let view = views.get(key);
    if (!view) {
      const groups = assignLocalities(c, caller);
      view = groups
        ? {
            '@type': ENDPOINTS,
            cluster_name: c.name,
            endpoints: groups.map((g) => ({
              locality: localityJson(g.locality),
              lb_endpoints: g.endpoints.map(lbEndpoint),
              load_balancing_weight: g.weight,
              ...(g.priority ? { priority: g.priority } : {}),
            })),
            policy: { overprovisioning_factor: OVERPROVISIONING_FACTOR },
          }
        : defaultAssignment(c, memo);
      views.set(key, view);
    }
    return view;
  }
  return defaultAssignment(c, memo);
}

function defaultAssignment(c: UpstreamCluster, memo: TranslateMemo): Json {
  let out = memo.endpoints.get(c);
  if (!out) {
    out = { '@type': ENDPOINTS, cluster_name: c.name, endpoints: localityGroups(c.endpoints) };
    memo.endpoints.set(c, out);
  }
  return out;
}
