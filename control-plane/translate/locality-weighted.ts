// Envoy honours EDS locality weights only when the cluster asks for locality-weighted balancing;
// `distribute` needs it. gRPC always honours locality weights (and does not read this field).
import type { UpstreamCluster } from '../model/types.ts';
import type { Json } from '../json.ts';

export function localityWeightedLb(c: UpstreamCluster): Json {
  const loc = c.policy.locality;
  // Envoy ignores locality weights for ring hash and Maglev, so there is nothing to ask for.
  if (!loc?.enabled || loc.distribute.length === 0 || c.policy.loadBalancer?.kind === 'hash') return {};
  return { common_lb_config: { locality_weighted_lb_config: {} } };
}
