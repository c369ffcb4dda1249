// Route metadata naming the rule that decides a route's weights or fault at run time (a Canary, a
// FaultExperiment), so a config dump, `meshpilot translate` and explain say where they come from:
// the VirtualService alone no longer explains them. Envoy keeps route metadata and ignores a
// namespace no filter reads; gRPC ignores it.
import type { Json } from '../json.ts';
import type { HttpRoute } from '../model/types.ts';

export const ROUTE_METADATA_NAMESPACE = 'meshpilot.io';

export function routeOriginMetadata(r: HttpRoute): Json {
  if (!r.weightsFrom && !r.faultFrom) return {};
  const fields: Json = {
    ...(r.weightsFrom ? { weights_from: r.weightsFrom.key } : {}),
    ...(r.faultFrom ? { fault_from: r.faultFrom.key } : {}),
  };
  return { metadata: { filter_metadata: { [ROUTE_METADATA_NAMESPACE]: fields } } };
}
