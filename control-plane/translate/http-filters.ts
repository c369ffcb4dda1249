// The HTTP filters of each HttpConnectionManager, one feature per file, in this explicit order
// (the router, always last, is added by hcm.ts). Each feature returns its filter, or nothing when
// no rule needs it for this proxy and side.
import type { Model } from '../model/types.ts';
import { faultFilter } from './fault.ts';
import { localRateLimitFilter } from './local-rate-limit.ts';
import type { Proxy } from './proxy.ts';
import { rbacAllowFilter, rbacDenyFilter } from './rbac.ts';
import type { Json } from './string-match.ts';

export interface FilterContext {
  model: Model;
  proxy: Proxy;
  /** outbound: the proxy calling a service (sidecar port listener, gRPC api_listener);
   *  inbound: the proxy receiving calls for its own workload (virtualInbound, gRPC server). */
  side: 'outbound' | 'inbound';
  /** The service port (outbound) or workload port (inbound) this connection manager serves. */
  port: number;
  /** Outbound gRPC api_listeners serve one host; sidecar port listeners serve every host on the port. */
  host?: string;
}

export type HttpFilterFeature = (ctx: FilterContext) => Json | undefined;

// Order matters: authorization (rbac) first, so a denied call is neither counted nor faulted;
// then rate limit; then fault injection, which acts on the calls that would go upstream.
const HTTP_FILTERS: HttpFilterFeature[] = [
  rbacDenyFilter,
  rbacAllowFilter,
  localRateLimitFilter,
  faultFilter,
];

export function httpFilters(ctx: FilterContext): Json[] {
  return HTTP_FILTERS.map((f) => f(ctx)).filter((f): f is Json => f !== undefined);
}
