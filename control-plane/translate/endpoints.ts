// ClusterLoadAssignment for each cluster: endpoints grouped by locality. Locality weights are
// always set (gRPC silently drops localities without one). A caller with a locality or a network
// gets its own view (translate/locality-priority.ts): priorities, distribute weights, remote
// networks through their gateways; a caller with neither gets every endpoint at priority 0.
import type { Endpoint, Locality, UpstreamCluster } from '../model/types.ts';
import { assignLocalities, callerKey, dependsOnCaller, type Caller, type LbTarget } from './locality-priority.ts';
import { deepFreeze, type Json } from '../json.ts';
import { ENDPOINTS } from './type-urls.ts';
import type { TranslateMemo } from './memo.ts';
import type { ClientKind } from './proxy.ts';

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
    endpoint: { address: endpointAddress(e) },
    ...(e.weight ? { load_balancing_weight: e.weight } : {}),
  };
  // Targets made for one view (through a gateway, weights summed as they are built) are not kept.
  if (Object.isFrozen(e)) lbEndpoints.set(e, deepFreeze(json));
  return json;
}

const UNIX = 'unix://';

/** A unix domain socket (`unix:///path`, `unix://@abstract`) is an Envoy pipe; anything else an IP and port. */
function endpointAddress(e: LbTarget): Json {
  if (e.address.startsWith(UNIX)) return { pipe: { path: e.address.slice(UNIX.length) } };
  return { socket_address: { address: e.address, port_value: e.port } };
}

/** An endpoint without an address (a WorkloadEntry known only by its network) is reached through its network's gateway, never directly. */
export function reachableDirectly(e: { address: string }): boolean {
  return e.address !== '';
}

// grpc-js-xds takes only IP addresses in EDS: its clients get each cluster without the unix socket
// endpoints (the model warns). One view per cluster object, so the memo below keeps working.
const withoutSockets = new WeakMap<UpstreamCluster, UpstreamCluster>();
function grpcView(c: UpstreamCluster): UpstreamCluster {
  if (!c.endpoints.some((e) => e.address.startsWith(UNIX))) return c;
  let v = withoutSockets.get(c);
  if (!v) withoutSockets.set(c, (v = { ...c, endpoints: c.endpoints.filter((e) => !e.address.startsWith(UNIX)) }));
  return v;
}

export function localityGroups(endpoints: ReadonlyArray<Endpoint & { port: number }>): Json[] {
  const groups = new Map<string, Array<Endpoint & { port: number }>>();
  for (const e of endpoints) {
    if (!reachableDirectly(e)) continue;
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
export function clusterLoadAssignment(cluster: UpstreamCluster, caller: (Caller & { kind?: ClientKind }) | undefined, memo: TranslateMemo): Json {
  const c = caller?.kind === 'grpc' ? grpcView(cluster) : cluster;
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
