// DestinationRule loadBalancer warmup -> Envoy slow start: a new endpoint's share of calls grows
// over the window. Envoy has it only for ROUND_ROBIN and LEAST_REQUEST (the default), as Istio
// applies it; the model warns when the rule's algorithm is another. gRPC has no slow start.
import type { ClusterPolicy } from '../model/types.ts';
import type { Json } from '../json.ts';
import { protoDuration } from './proto-values.ts';
import type { ClientKind } from './proxy.ts';

/** Runtime key Envoy requires beside a RuntimeDouble's default; nothing sets it, so the default holds. */
const AGGRESSION_RUNTIME_KEY = 'meshpilot.slow_start.aggression';

export function slowStartFields(policy: ClusterPolicy, kind: ClientKind): Json {
  const s = policy.slowStart;
  const lb = policy.loadBalancer;
  if (!s || kind !== 'envoy') return {};
  const config = {
    slow_start_window: protoDuration(s.windowMs),
    ...(s.aggression !== undefined ? { aggression: { default_value: s.aggression, runtime_key: AGGRESSION_RUNTIME_KEY } } : {}),
    ...(s.minimumPercent !== undefined ? { min_weight_percent: { value: s.minimumPercent } } : {}),
  };
  if (!lb || (lb.kind === 'simple' && lb.simple === 'LEAST_REQUEST')) return { least_request_lb_config: { slow_start_config: config } };
  if (lb.kind === 'simple' && lb.simple === 'ROUND_ROBIN') return { round_robin_lb_config: { slow_start_config: config } };
  return {};
}
