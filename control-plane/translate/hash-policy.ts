// consistentHash load balancing needs a hash key on the route; the key comes from the
// DestinationRule of the route's destination.
import { protoDuration } from './proto-values.ts';
import type { LbPolicy } from '../model/types.ts';
import type { Json } from '../json.ts';

export function hashPolicy(lb: LbPolicy | undefined, kind: 'envoy' | 'grpc'): Json[] | undefined {
  if (!lb || lb.kind !== 'hash') return undefined;
  const k = lb.key;
  if ('header' in k) return [{ header: { header_name: k.header } }];
  // gRPC hashes only on headers (or its channel id); other keys would be ignored by it.
  if (kind === 'grpc') return undefined;
  if ('cookie' in k) {
    return [{ cookie: { name: k.cookie.name, ...(k.cookie.ttlSeconds !== undefined ? { ttl: protoDuration(k.cookie.ttlSeconds * 1000) } : {}), ...(k.cookie.path ? { path: k.cookie.path } : {}), ...(k.cookie.attributes?.length ? { attributes: k.cookie.attributes } : {}) } }];
  }
  if ('queryParameter' in k) return [{ query_parameter: { name: k.queryParameter } }];
  return [{ connection_properties: { source_ip: true } }];
}
