// The forwarding part of a route: where (one cluster or weighted clusters), how long, retries,
// rewrites and hash keys. Timeouts differ by client: Envoy uses `timeout` (Istio disables the
// 15 s default with 0s), gRPC only honours `max_stream_duration`.
import { protoDuration } from './proto-values.ts';
import type { RouteAction, UpstreamCluster } from '../model/types.ts';
import { hashPolicy } from './hash-policy.ts';
import { grpcRetryPolicy, sidecarRetryPolicy } from './retry.ts';
import type { Json } from '../json.ts';

type Forward = Extract<RouteAction, { kind: 'route' }>;

function target(a: Forward): Json {
  if (a.destinations.length === 1) return { cluster: a.destinations[0].cluster };
  return { weighted_clusters: { clusters: a.destinations.map((d) => ({ name: d.cluster, weight: d.weight })) } };
}

export function forwardAction(a: Forward, clusters: Map<string, UpstreamCluster>, kind: 'envoy' | 'grpc'): Json {
  const lb = clusters.get(a.destinations[0].cluster)?.policy.loadBalancer;
  const hash = hashPolicy(lb, kind);
  if (kind === 'grpc') {
    const retry = grpcRetryPolicy(a.retries);
    return {
      ...target(a),
      ...(a.timeoutMs ? { max_stream_duration: { max_stream_duration: protoDuration(a.timeoutMs) } } : {}),
      ...(retry ? { retry_policy: retry } : {}),
      ...(hash ? { hash_policy: hash } : {}),
    };
  }
  const retry = sidecarRetryPolicy(a.retries);
  const rw = a.rewrite;
  return {
    ...target(a),
    timeout: protoDuration(a.timeoutMs ?? 0),
    ...(retry ? { retry_policy: retry } : {}),
    ...(hash ? { hash_policy: hash } : {}),
    ...(rw?.uri !== undefined ? { prefix_rewrite: rw.uri } : {}),
    ...(rw?.uriRegex ? { regex_rewrite: { pattern: { regex: rw.uriRegex.match }, substitution: rw.uriRegex.rewrite } } : {}),
    ...(rw?.authority ? { host_rewrite_literal: rw.authority } : {}),
  };
}
