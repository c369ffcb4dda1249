// DestinationRule loadBalancer -> cluster lb_policy. Sidecars default to LEAST_REQUEST, as Istio
// does; gRPC only knows ROUND_ROBIN and RING_HASH, so other policies fall back to ROUND_ROBIN there.
import type { LbPolicy } from '../model/types.ts';
import type { ClientKind } from './proxy.ts';
import type { Json } from '../json.ts';

export function lbFields(lb: LbPolicy | undefined, kind: ClientKind): Json {
  if (!lb) return { lb_policy: kind === 'grpc' ? 'ROUND_ROBIN' : 'LEAST_REQUEST' };
  // Not reached: a PASSTHROUGH cluster is ORIGINAL_DST (resolution.ts), which sets its own policy.
  if (lb.kind === 'passthrough') return { lb_policy: 'CLUSTER_PROVIDED' };
  if (lb.kind === 'simple') return { lb_policy: kind === 'grpc' ? 'ROUND_ROBIN' : lb.simple };
  if (lb.algorithm === 'MAGLEV' && kind === 'envoy') {
    return { lb_policy: 'MAGLEV', ...(lb.maglevTableSize ? { maglev_lb_config: { table_size: lb.maglevTableSize } } : {}) };
  }
  return { lb_policy: 'RING_HASH', ...(lb.minimumRingSize ? { ring_hash_lb_config: { minimum_ring_size: String(lb.minimumRingSize) } } : {}) };
}
