// Retries. Sidecars get Istio's default policy when a rule names none, so retries behave as
// Istio users expect; gRPC clients only act on gRPC status conditions and need at least 1 retry.
import { protoDuration } from './proto-values.ts';
import { GRPC_RETRY_ON } from '../model/grpc-warnings.ts';
import type { RetryPolicy } from '../model/types.ts';
import type { Json } from '../json.ts';

export const DEFAULT_RETRY_ON = ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes'];

function conditions(tokens: string[]): { retryOn: string[]; codes: number[] } {
  // Istio lets a bare HTTP status code stand in retryOn; Envoy wants it under retriable_status_codes.
  const codes = tokens.filter((t) => /^\d+$/.test(t)).map(Number);
  const retryOn = tokens.filter((t) => !/^\d+$/.test(t));
  if (codes.length && !retryOn.includes('retriable-status-codes')) retryOn.push('retriable-status-codes');
  return { retryOn, codes };
}

export function sidecarRetryPolicy(r: RetryPolicy | undefined): Json | undefined {
  if (r && r.attempts === 0) return undefined;
  const { retryOn, codes } = conditions(r?.retryOn ?? DEFAULT_RETRY_ON);
  return {
    retry_on: retryOn.join(','),
    num_retries: r?.attempts ?? 2,
    ...(r?.perTryTimeoutMs ? { per_try_timeout: protoDuration(r.perTryTimeoutMs) } : {}),
    ...(codes.length ? { retriable_status_codes: codes } : {}),
    retry_host_predicate: [{ name: 'envoy.retry_host_predicates.previous_hosts', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate' } }],
    host_selection_retry_max_attempts: '5',
  };
}

/** The part of a retry policy gRPC acts on, or undefined when nothing is left. */
export function grpcRetryPolicy(r: RetryPolicy | undefined): Json | undefined {
  if (!r || r.attempts < 1) return undefined;
  const retryOn = (r.retryOn ?? ['unavailable']).filter((t) => GRPC_RETRY_ON.has(t));
  if (!retryOn.length) return undefined;
  return { retry_on: retryOn.join(','), num_retries: r.attempts, ...(r.perTryTimeoutMs ? { per_try_timeout: protoDuration(r.perTryTimeoutMs) } : {}) };
}
