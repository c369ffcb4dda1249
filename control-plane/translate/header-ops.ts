// VirtualService `headers` set/add/remove -> Envoy header mutations on a route.
import type { HeaderOps } from '../model/types.ts';
import type { Json } from '../json.ts';

function toAdd(ops: HeaderOps): Json[] {
  return [
    ...ops.set.map(([key, value]) => ({ header: { key, value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' })),
    ...ops.add.map(([key, value]) => ({ header: { key, value }, append_action: 'APPEND_IF_EXISTS_OR_ADD' })),
  ];
}

export function headerMutations(request: HeaderOps | undefined, response: HeaderOps | undefined): Json {
  const out: Json = {};
  if (request && toAdd(request).length) out.request_headers_to_add = toAdd(request);
  if (request?.remove.length) out.request_headers_to_remove = request.remove;
  if (response && toAdd(response).length) out.response_headers_to_add = toAdd(response);
  if (response?.remove.length) out.response_headers_to_remove = response.remove;
  return out;
}

/** Route-level changes followed by a single destination's own (applied after, so they win). */
export function concatOps(route: HeaderOps | undefined, dest: HeaderOps | undefined): HeaderOps | undefined {
  if (!dest) return route;
  if (!route) return dest;
  return { set: [...route.set, ...dest.set], add: [...route.add, ...dest.add], remove: [...route.remove, ...dest.remove] };
}
