// Request mirroring (shadowing): RouteAction.request_mirror_policies, one per target, each with
// its share of requests as runtime_fraction.default_value. Responses to mirrored requests are
// discarded by Envoy. Sidecars only: gRPC does not mirror, and the model reports that as a warning
// on the rule; nothing is sent that a gRPC client could reject. A target at 0% is left out (as
// Istio does).
import { fractionalPercent } from './proto-values.ts';
import type { Feature } from './feature.ts';

export const mirror: Feature = {
  name: 'mirror',
  grpc: false,
  route(route) {
    if (route.action.kind !== 'route') return undefined;
    const policies = (route.mirrors ?? [])
      .filter((m) => m.percent > 0)
      .map((m) => ({ cluster: m.cluster, runtime_fraction: { default_value: fractionalPercent(m.percent) } }));
    return policies.length ? { action: { request_mirror_policies: policies } } : undefined;
  },
};
