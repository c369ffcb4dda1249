// The forwarding part of a route: where (one cluster or weighted clusters), how long, retries,
// rewrites and hash keys. Timeouts differ by client: Envoy uses `timeout` (Istio disables the
// 15 s default with 0s), gRPC only honours `max_stream_duration`.
import { protoDuration } from './proto-values.ts';
import type { RouteAction, UpstreamCluster } from '../model/types.ts';
import { hashPolicy } from './hash-policy.ts';
import { headerMutations } from './header-ops.ts';
import { grpcRetryPolicy, sidecarRetryPolicy } from './retry.ts';
import type { Json } from '../json.ts';

type Forward = Extract<RouteAction, { kind: 'route' }>;

/** Where calls go. Sidecars also get each destination's own header changes and authority on its
 * weighted cluster (with one destination they are merged into the route: envoy-routes.ts). */
function target(a: Forward, kind: 'envoy' | 'grpc'): Json {
  if (a.destinations.length === 1) return { cluster: a.destinations[0].cluster };
  const extra = (d: Forward['destinations'][number]): Json =>
    kind === 'envoy' ? { ...headerMutations(d.requestHeaders, d.responseHeaders), ...(d.authority !== undefined ? { host_rewrite_literal: d.authority } : {}) } : {};
  return { weighted_clusters: { clusters: a.destinations.map((d) => ({ name: d.cluster, weight: d.weight, ...extra(d) })) } };
}

export function forwardAction(a: Forward, clusters: Map<string, UpstreamCluster>, kind: 'envoy' | 'grpc'): Json {
  const lb = clusters.get(a.destinations[0].cluster)?.policy.loadBalancer;
  const hash = hashPolicy(lb, kind);
  if (kind === 'grpc') {
    const retry = grpcRetryPolicy(a.retries);
    return {
      ...target(a, kind),
      ...(a.timeoutMs ? { max_stream_duration: { max_stream_duration: protoDuration(a.timeoutMs) } } : {}),
      ...(retry ? { retry_policy: retry } : {}),
      ...(hash ? { hash_policy: hash } : {}),
    };
  }
  const retry = sidecarRetryPolicy(a.retries);
  const rw = a.rewrite;
  // With one destination, its own authority (route[].headers) is the route's, and wins.
  const authority = (a.destinations.length === 1 ? a.destinations[0].authority : undefined) ?? rw?.authority;
  return {
    ...target(a, kind),
    timeout: protoDuration(a.timeoutMs ?? 0),
    ...(retry ? { retry_policy: retry } : {}),
    ...(hash ? { hash_policy: hash } : {}),
    ...(rw?.uri !== undefined ? { prefix_rewrite: rw.uri } : {}),
    ...(rw?.uriRegex ? { regex_rewrite: { pattern: { regex: rw.uriRegex.match }, substitution: rw.uriRegex.rewrite } } : {}),
    ...(authority ? { host_rewrite_literal: authority } : {}),
  };
}
