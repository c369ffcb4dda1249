// translate(model, proxy): every xDS resource one proxy should have. Pure: no clock, no I/O, no
// mutation of its inputs; the same inputs always give the same output, in a fixed order.
import { compareText } from '../model/compare.ts';
import type { Model, UpstreamCluster } from '../model/types.ts';
import { outboundCluster, outboundClusterFor, passthroughClusters } from './clusters.ts';
import { clusterLoadAssignment } from './endpoints.ts';
import { inboundCluster, sidecarInboundPorts } from './inbound.ts';
import { jwksClusters } from './jwt-authn.ts';
import { grpcListeners } from './listeners-grpc.ts';
import { grpcServerListeners } from './listeners-grpc-server.ts';
import { outboundListeners, virtualInbound, virtualOutbound } from './listeners-sidecar.ts';
import type { Proxy } from './proxy.ts';
import { TranslateMemo } from './memo.ts';
import { grpcRouteConfigs, sidecarRouteConfigs } from './route-configs.ts';
import { gatewayListeners, gatewayRouteConfigs, gatewaysFor } from './gateway.ts';
import { sniDnatClusters } from './gateway-l4.ts';
import type { Json } from '../json.ts';
import { hasCluster } from './resolution.ts';
import { proxyScope, seesHost, visibleTables } from './scope.ts';
import { CLUSTER, ENDPOINTS, LISTENER, ROUTE_CONFIG, type ResourceType } from './type-urls.ts';

export type Resource = Json & { '@type': string };
export type Resources = Record<ResourceType, Resource[]>;

export function resourceName(r: Json): string {
  return String(r['@type'] === ENDPOINTS ? r.cluster_name : r.name);
}

function byName(list: Json[]): Resource[] {
  const named = list.map((r) => [resourceName(r), r] as const);
  named.sort((a, b) => compareText(a[0], b[0]));
  return named.map(([, r]) => r) as Resource[];
}

/** The model's clusters by name, once per model (every group's translation looks them up). */
export function clustersByName(model: Model, memo: TranslateMemo): Map<string, UpstreamCluster> {
  let m = memo.clusterMaps.get(model);
  if (!m) memo.clusterMaps.set(model, (m = new Map(model.clusters.map((c) => [c.name, c]))));
  return m;
}

/** `memo`: what earlier calls kept (see memo.ts); without one, everything is translated afresh. */
export function translate(model: Model, proxy: Proxy, memo: TranslateMemo = new TranslateMemo()): Resources {
  const clusterMap = clustersByName(model, memo);
  // Only what the proxy sees (scope.ts: exportTo, and a sidecar's Sidecar egress hosts).
  const scope = proxyScope(model, proxy);
  const seen = scope.all ? model.clusters : model.clusters.filter((c) => seesHost(scope, c.host));
  const tables = visibleTables(model, scope);
  // EDS resources exist only for EDS clusters; DNS clusters carry their endpoints inline.
  const eds = seen.filter((c) => c.resolution === 'STATIC');
  if (proxy.kind === 'grpc') {
    return {
      // Only the clusters gRPC can use (resolution.ts hasCluster).
      [CLUSTER]: byName(seen.filter((c) => hasCluster(c, 'grpc')).map((c) => outboundCluster(c, 'grpc', memo))),
      [ENDPOINTS]: byName(eds.map((c) => clusterLoadAssignment(c, proxy, memo))),
      [LISTENER]: byName([...grpcListeners(model, proxy, clusterMap, memo, tables), ...grpcServerListeners(model, proxy)]),
      [ROUTE_CONFIG]: byName(grpcRouteConfigs(model, proxy, clusterMap, memo, tables)),
    };
  }
  if (proxy.router) {
    // A gateway: the servers of the Gateways that select it, and every cluster its routes may use.
    const gateways = gatewaysFor(model, proxy);
    const clusters = model.clusters.map((c) => outboundClusterFor(c, proxy, memo));
    const dnat = sniDnatClusters(model, gateways.flatMap((g) => g.servers), new Map(clusters.map((c) => [String(c.name), c])));
    return {
      [CLUSTER]: byName([...clusters, ...dnat]),
      [ENDPOINTS]: byName(eds.map((c) => clusterLoadAssignment(c, proxy, memo))),
      [LISTENER]: byName(gatewayListeners(model, proxy, gateways)),
      [ROUTE_CONFIG]: byName(gatewayRouteConfigs(model, proxy, clusterMap, gateways)),
    };
  }
  const inbound = sidecarInboundPorts(model, proxy);
  return {
    [CLUSTER]: byName([...seen.map((c) => outboundClusterFor(c, proxy, memo)), ...passthroughClusters(), ...inbound.map(inboundCluster), ...jwksClusters(model, proxy)]),
    [ENDPOINTS]: byName(eds.map((c) => clusterLoadAssignment(c, proxy, memo))),
    [LISTENER]: byName([virtualOutbound(scope.mode), virtualInbound(model, proxy, inbound), ...outboundListeners(model, proxy)]),
    [ROUTE_CONFIG]: byName(sidecarRouteConfigs(model, proxy, clusterMap, memo)),
  };
}
