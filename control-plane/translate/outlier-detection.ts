// outlierDetection -> Envoy outlier_detection. Only the detectors the rule names are enforced;
// success-rate ejection (on by default in Envoy) is switched off, as Istio does.
import { protoDuration } from './proto-values.ts';
import type { OutlierDetection } from '../model/types.ts';
import type { Json } from '../json.ts';

export function outlierDetection(od: OutlierDetection | undefined): Json {
  if (!od) return {};
  const enforce = (n: number | undefined) => (n !== undefined && n > 0 ? 100 : 0);
  return {
    outlier_detection: {
      ...(od.consecutive5xxErrors !== undefined ? { consecutive_5xx: od.consecutive5xxErrors } : {}),
      enforcing_consecutive_5xx: enforce(od.consecutive5xxErrors),
      ...(od.consecutiveGatewayErrors !== undefined ? { consecutive_gateway_failure: od.consecutiveGatewayErrors } : {}),
      enforcing_consecutive_gateway_failure: enforce(od.consecutiveGatewayErrors),
      ...(od.consecutiveLocalOriginFailures !== undefined ? { consecutive_local_origin_failure: od.consecutiveLocalOriginFailures } : {}),
      enforcing_consecutive_local_origin_failure: enforce(od.consecutiveLocalOriginFailures),
      ...(od.splitExternalLocalOriginErrors ? { split_external_local_origin_errors: true } : {}),
      ...(od.intervalMs ? { interval: protoDuration(od.intervalMs) } : {}),
      ...(od.baseEjectionTimeMs ? { base_ejection_time: protoDuration(od.baseEjectionTimeMs) } : {}),
      ...(od.maxEjectionPercent !== undefined ? { max_ejection_percent: od.maxEjectionPercent } : {}),
      enforcing_success_rate: 0,
    },
    ...(od.minHealthPercent !== undefined ? { common_lb_config: { healthy_panic_threshold: { value: od.minHealthPercent } } } : {}),
  };
}
