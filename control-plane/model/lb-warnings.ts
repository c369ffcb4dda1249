// Load balancer settings that are valid but do nothing where they are: Envoy's slow start exists
// only for ROUND_ROBIN and LEAST_REQUEST (the default), so Istio applies warmup to those only.
import type { ConfigObject } from '../config/types.ts';
import type { PolicyIn, TrafficPolicyIn } from './input.ts';
import type { FieldPath, IssueSink } from './issues.ts';

function warnPolicy(obj: ConfigObject, p: PolicyIn | undefined, path: FieldPath, issues: IssueSink): void {
  const lb = p?.loadBalancer;
  if (!lb || !(lb.warmup || lb.warmupDurationSecs)) return;
  const other = lb.consistentHash ? 'consistentHash' : lb.simple === 'RANDOM' || lb.simple === 'PASSTHROUGH' ? lb.simple : undefined;
  if (other) issues.warn(obj, [...path, 'loadBalancer', lb.warmup ? 'warmup' : 'warmupDurationSecs'], `warmup works only with ROUND_ROBIN or LEAST_REQUEST: not applied with ${other}`);
}

export function warnLoadBalancer(obj: ConfigObject<'DestinationRule'>, issues: IssueSink): void {
  const each = (tp: TrafficPolicyIn | undefined, path: FieldPath) => {
    warnPolicy(obj, tp, path, issues);
    tp?.portLevelSettings?.forEach((s, i) => warnPolicy(obj, s, [...path, 'portLevelSettings', i], issues));
  };
  each(obj.spec.trafficPolicy, ['spec', 'trafficPolicy']);
  obj.spec.subsets?.forEach((s, i) => each(s.trafficPolicy, ['spec', 'subsets', i, 'trafficPolicy']));
}
