// VirtualService `directResponse` -> Envoy DirectResponseAction (sidecars only: gRPC clients reject
// direct responses, so they never get these routes, and the model warns).
import type { RouteAction } from '../model/types.ts';
import type { Json } from '../json.ts';

export function directResponse(a: Extract<RouteAction, { kind: 'direct' }>): Json {
  const body = a.body === undefined ? undefined : 'string' in a.body ? { inline_string: a.body.string } : { inline_bytes: a.body.bytes };
  return { status: a.status, ...(body ? { body } : {}) };
}
