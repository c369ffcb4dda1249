// Outbound clusters (EDS, DNS or original destination: resolution.ts), and for sidecars the fixed clusters that
// Istio users know: PassthroughCluster, BlackHoleCluster, InboundPassthroughClusterIpv4.
import { protoDuration } from './proto-values.ts';
import type { UpstreamCluster } from '../model/types.ts';
import { circuitBreakers } from './circuit-breakers.ts';
import { discovery } from './resolution.ts';
import { lbFields } from './load-balancer.ts';
import { slowStartFields } from './slow-start.ts';
import { localityWeightedLb } from './locality-weighted.ts';
import { outlierDetection } from './outlier-detection.ts';
import { upstreamProtocolOptions } from './protocol-options.ts';
import { upstreamTransportSocket } from './upstream-tls.ts';
import type { ClientKind, Proxy } from './proxy.ts';
import type { Json } from '../json.ts';
import { CLUSTER } from './type-urls.ts';
import type { TranslateMemo } from './memo.ts';

export { ADS_SOURCE } from './resolution.ts';
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

// Memoized per model object: unchanged clusters keep their object across model generations
// (model/reuse.ts), so they are neither translated nor encoded again.
export function outboundCluster(c: UpstreamCluster, kind: ClientKind, memo: TranslateMemo): Json {
  let out = memo.clusters[kind].get(c);
  if (!out) {
    out = buildOutboundCluster(c, kind);
    memo.clusters[kind].set(c, out);
  }
  return out;
}

/** A proxy's form of a cluster: a gateway's differs where the DestinationRule names a credentialName. */
export function outboundClusterFor(c: UpstreamCluster, proxy: Proxy, memo: TranslateMemo): Json {
  if (!c.tls?.credentialName || !proxy.router) return outboundCluster(c, proxy.kind, memo);
  let out = memo.routerClusters.get(c);
  if (!out) memo.routerClusters.set(c, (out = buildOutboundCluster(c, 'envoy', true)));
  return out;
}

function buildOutboundCluster(c: UpstreamCluster, kind: ClientKind, router = false): Json {
  const cp = c.policy.connectionPool;
  const od = outlierDetection(c.policy.outlierDetection);
  // An original destination cluster has one host per connection: no balancing, no locality weights.
  const originalDst = c.resolution === 'NONE';
  const weighted = kind === 'envoy' && !originalDst ? localityWeightedLb(c) : {};
  // Both may add to common_lb_config (panic threshold, locality weights): merge, never overwrite.
  const commonLb = { ...(weighted.common_lb_config as Json | undefined), ...(od.common_lb_config as Json | undefined) };
  return {
    '@type': CLUSTER,
    name: c.name,
    ...discovery(c, kind),
    connect_timeout: protoDuration(cp?.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS),
    ...(originalDst ? {} : { ...lbFields(c.policy.loadBalancer, kind), ...slowStartFields(c.policy, kind) }),
    ...circuitBreakers(cp),
    ...od,
    ...(Object.keys(commonLb).length ? { common_lb_config: commonLb } : {}),
    ...(kind === 'envoy' ? upstreamProtocolOptions(c.port.protocol, cp) : {}),
    ...upstreamTransportSocket(c.tls, kind, c.port.protocol, router),
    // Load reporting (a canary's or an experiment's cluster): a gRPC client reports this cluster to
    // the server it has its config from. Envoy reports what the LRS response asks for, through its
    // bootstrap's load_stats_config, so its clusters stay as they are.
    ...(c.loadReport && kind === 'grpc' ? { lrs_server: { self: {} } } : {}),
  };
}

export function passthroughClusters(): Json[] {
  const connect_timeout = protoDuration(DEFAULT_CONNECT_TIMEOUT_MS);
  return [
    { '@type': CLUSTER, name: 'BlackHoleCluster', type: 'STATIC', connect_timeout },
    {
      '@type': CLUSTER,
      name: 'InboundPassthroughClusterIpv4',
      type: 'ORIGINAL_DST',
      lb_policy: 'CLUSTER_PROVIDED',
      connect_timeout,
      // Traffic Envoy forwards to its own workload leaves from 127.0.0.6, so iptables does not
      // capture it a second time.
      upstream_bind_config: { source_address: { address: '127.0.0.6', port_value: 0 } },
    },
    { '@type': CLUSTER, name: 'PassthroughCluster', type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED', connect_timeout },
  ];
}
