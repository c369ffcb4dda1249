// How a cluster finds its upstream addresses, by ServiceEntry resolution:
//   STATIC          EDS (endpoints sent separately, per caller view)
//   DNS             STRICT_DNS: Envoy resolves every endpoint name and balances over all addresses
//                   (gRPC resolves one name: LOGICAL_DNS)
//   DNS_ROUND_ROBIN LOGICAL_DNS: one name, a connection goes to one of its current addresses
//   NONE            ORIGINAL_DST: the connection goes to the address the caller connected to (the
//                   listener's original destination); proxyless gRPC has none, so it gets no cluster
import type { UpstreamCluster } from '../model/types.ts';
import type { Json } from '../json.ts';
import { localityGroups } from './endpoints.ts';
import type { ClientKind } from './proxy.ts';

export const ADS_SOURCE = { ads: {}, resource_api_version: 'V3' };

/** Whether a client of this kind gets this cluster: gRPC cannot use an original destination, and
 * its LOGICAL_DNS needs exactly one address (a DNS subset selecting none has no cluster: calls
 * routed to it fail, and the model warns that it has no endpoints). */
export function hasCluster(c: UpstreamCluster, kind: ClientKind): boolean {
  if (kind === 'envoy') return true;
  if (c.resolution === 'NONE') return false;
  return c.resolution === 'STATIC' || c.endpoints.length > 0;
}

/** The cluster's discovery fields; for NONE also its load balancing policy (only
 * CLUSTER_PROVIDED is valid for ORIGINAL_DST), which then replaces the DestinationRule's. */
export function discovery(c: UpstreamCluster, kind: ClientKind): Json {
  if (c.resolution === 'STATIC') return { type: 'EDS', eds_cluster_config: { eds_config: ADS_SOURCE, service_name: c.name } };
  if (c.resolution === 'NONE') return { type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED' };
  const logical = kind === 'grpc' || c.resolution === 'DNS_ROUND_ROBIN';
  const eps = logical ? c.endpoints.slice(0, 1) : c.endpoints;
  return {
    type: logical ? 'LOGICAL_DNS' : 'STRICT_DNS',
    dns_lookup_family: 'V4_ONLY',
    load_assignment: { cluster_name: c.name, endpoints: localityGroups(eps) },
  };
}
