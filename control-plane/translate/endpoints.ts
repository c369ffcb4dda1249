// ClusterLoadAssignment for each cluster: endpoints grouped by locality. Locality weights are
// always set (gRPC silently drops localities without one). All localities are priority 0 here;
// locality-aware priorities per caller come with multi-cluster discovery.
import type { Endpoint, Locality, UpstreamCluster } from '../model/types.ts';
import type { Json } from './string-match.ts';
import { ENDPOINTS } from './type-urls.ts';

export function localityJson(l: Locality): Json {
  return { ...(l.region ? { region: l.region } : {}), ...(l.zone ? { zone: l.zone } : {}), ...(l.subzone ? { sub_zone: l.subzone } : {}) };
}

export function lbEndpoint(e: Endpoint & { port: number }): Json {
  return {
    endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } },
    ...(e.weight ? { load_balancing_weight: e.weight } : {}),
  };
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

const memo = new WeakMap<UpstreamCluster, Json>();

/** Memoized per model object, like the clusters (see model/reuse.ts). */
export function clusterLoadAssignment(c: UpstreamCluster): Json {
  let out = memo.get(c);
  if (!out) {
    out = { '@type': ENDPOINTS, cluster_name: c.name, endpoints: localityGroups(c.endpoints) };
    memo.set(c, out);
  }
  return out;
}
