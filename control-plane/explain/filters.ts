// HTTP filters other than RBAC, as they act on one request: the fault filter and the local rate
// limit filter. A filter acts only if the connection manager has it; its config for a request is
// the most specific one: the route's typed_per_filter_config, else the virtual host's, else the
// filter's own (Envoy's and gRPC's rule).
import type { Json } from '../json.ts';
import { headerMatches } from './string-matcher.ts';
import { fraction } from './route-match.ts';
import { routingHeaders, type HttpRequest } from './request.ts';
import type { FaultInfo, RateLimitInfo } from './types.ts';

// The filter names the translator gives them.
export { FAULT_FILTER_NAME as FAULT } from '../translate/fault.ts';
export { LOCAL_RATE_LIMIT_FILTER as LOCAL_RATE_LIMIT } from '../translate/local-rate-limit.ts';

export function effectiveConfig(filters: readonly Json[], name: string, route?: Json, vhost?: Json): Json | undefined {
  const filter = filters.find((f) => f.name === name);
  if (!filter) return undefined;
  const per = (x?: Json) => (x?.typed_per_filter_config as Record<string, Json> | undefined)?.[name];
  return per(route) ?? per(vhost) ?? (filter.typed_config as Json);
}

const GRPC_CODES = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];
export const grpcCodeName = (n: number) => GRPC_CODES[n] ?? String(n);

/** The status a gRPC caller sees for an HTTP status (gRPC's http-grpc-status-mapping). */
export function grpcCodeForHttp(status: number): string {
  const map: Record<number, string> = { 400: 'INTERNAL', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'UNIMPLEMENTED', 429: 'UNAVAILABLE', 502: 'UNAVAILABLE', 503: 'UNAVAILABLE', 504: 'UNAVAILABLE' };
  return map[status] ?? 'UNKNOWN';
}

/** The faults one request may get: delay first, then abort, each with its share of requests. */
export function faultsFor(cfg: Json | undefined, req: HttpRequest, cluster: string | undefined): FaultInfo[] {
  if (!cfg) return [];
  const out: FaultInfo[] = [];
  let notApplied: string | undefined;
  for (const h of (cfg.headers as Json[] | undefined) ?? []) {
    const c = headerMatches(h, routingHeaders(req), req.plane);
    if (!c.ok) {
      notApplied = `the fault applies only to requests with ${c.detail}`;
      break;
    }
  }
  if (!notApplied && cfg.upstream_cluster && cfg.upstream_cluster !== cluster) notApplied = `the fault applies only to requests for cluster ${String(cfg.upstream_cluster)}`;
  const nodes = cfg.downstream_nodes as string[] | undefined;
  if (!notApplied && nodes?.length && !nodes.includes(req.headers['x-envoy-downstream-service-node'] ?? '')) notApplied = `the fault applies only to downstream nodes ${nodes.join(', ')}`;
  const delay = cfg.delay as Json | undefined;
  if (delay) {
    out.push({
      kind: 'delay',
      share: fraction(delay.percentage as Json | undefined),
      ...(delay.fixed_delay ? { delay: String(delay.fixed_delay) } : {}),
      ...(delay.header_delay ? { fromHeader: true } : {}),
      ...(notApplied ? { notApplied } : {}),
    });
  }
  const abort = cfg.abort as Json | undefined;
  if (abort) {
    out.push({
      kind: 'abort',
      share: fraction(abort.percentage as Json | undefined),
      ...(abort.http_status !== undefined ? { httpStatus: Number(abort.http_status) } : {}),
      ...(abort.grpc_status !== undefined ? { grpcStatus: Number(abort.grpc_status) } : {}),
      ...(abort.header_abort ? { fromHeader: true } : {}),
      ...(notApplied ? { notApplied } : {}),
    });
  }
  return out;
}

/** The local rate limit bucket that counts this request, or undefined when the filter is off for it. */
export function rateLimitFor(cfg: Json | undefined, side: 'outbound' | 'inbound'): Omit<RateLimitInfo, 'rule'> | undefined {
  if (!cfg) return undefined;
  const bucket = cfg.token_bucket as Json | undefined;
  // No bucket, or enabled for 0% (Envoy's default when filter_enabled is unset): the filter is off.
  const enabled = fraction((cfg.filter_enabled as Json | undefined)?.default_value as Json | undefined);
  if (!bucket || enabled === 0) return undefined;
  return {
    side,
    tokens: Number(bucket.max_tokens),
    fillInterval: String(bucket.fill_interval),
    enabledShare: enabled,
    enforcedShare: fraction((cfg.filter_enforced as Json | undefined)?.default_value as Json | undefined),
    statPrefix: String(cfg.stat_prefix ?? ''),
  };
}
