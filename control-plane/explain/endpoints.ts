// Where a cluster's traffic goes: its ClusterLoadAssignment (EDS, or inline for DNS clusters),
// grouped by priority and locality. While all endpoints are healthy the lowest priority with
// endpoints takes everything. Within it, gRPC (weighted_target) and Envoy clusters with
// locality_weighted_lb_config share traffic by locality weight; other Envoy clusters balance over
// all hosts of the priority by endpoint weight.
import type { Locality } from '../model/types.ts';
import type { Json } from '../json.ts';
import type { EndpointGroup } from './types.ts';

const localityText = (l: Json | undefined) => [l?.region, l?.zone, l?.sub_zone].filter((x) => x).join('/') || '(none)';

export function callerLocalityText(l: Locality): string {
  return [l.region, l.zone, l.subzone].filter((x) => x).join('/') || '(none)';
}

export function endpointGroups(cla: Json | undefined, caller: Locality, byLocalityWeight = true): EndpointGroup[] {
  const groups = ((cla?.endpoints as Json[] | undefined) ?? []).map((g) => ({
    priority: Number(g.priority ?? 0),
    locality: localityText(g.locality as Json | undefined),
    localityWeight: Number(g.load_balancing_weight ?? 1),
    sameLocalityAsCaller: localityText(g.locality as Json | undefined) === callerLocalityText(caller) && callerLocalityText(caller) !== '(none)',
    endpoints: ((g.lb_endpoints as Json[] | undefined) ?? []).map((e) => {
      const sa = ((e.endpoint as Json)?.address as Json)?.socket_address as Json;
      return { address: String(sa?.address), port: Number(sa?.port_value), ...(e.load_balancing_weight ? { weight: Number(e.load_balancing_weight) } : {}) };
    }),
  }));
  const withWeights = groups.map((g) => ({ ...g, weight: byLocalityWeight ? g.localityWeight : g.endpoints.reduce((sum, e) => sum + (e.weight ?? 1), 0) }));
  const live = withWeights.filter((g) => g.endpoints.length > 0);
  const top = live.length ? Math.min(...live.map((g) => g.priority)) : 0;
  const total = live.filter((g) => g.priority === top).reduce((s, g) => s + g.weight, 0);
  return withWeights
    .map(({ weight, localityWeight: _l, ...g }) => ({ ...g, share: g.priority === top && g.endpoints.length && total ? weight / total : 0 }))
    .sort((a, b) => a.priority - b.priority || a.locality.localeCompare(b.locality));
}
