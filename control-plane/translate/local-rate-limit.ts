// RateLimit -> Envoy's local rate limit filter (envoy.filters.http.local_ratelimit).
//
// - Callee side (inbound HCM of a workload port): the replica's share of the service-wide limit,
//   as the connection manager's own filter config (one bucket per replica and port).
// - Caller side (outbound): the caller replica's share of the first override whose source matches
//   it, as typed_per_filter_config on the destination's virtual host, so every route and match to
//   that destination draws from one bucket. The connection manager carries the filter with no
//   bucket and nothing enabled, which Envoy treats as "off" wherever no per-host config applies.
// Proxyless gRPC has no rate limit filter: it never gets either (`grpc: false`; the model warns,
// see model/grpc-warnings.ts).
import { protoDuration, wholePercent } from './proto-values.ts';
import { sourceMatches, type RateLimitPolicy, type TokenShare } from '../model/rate-limit.ts';
import type { Model } from '../model/types.ts';
import type { Feature, HcmContext, VirtualHostContext } from './feature.ts';
import type { Proxy } from './proxy.ts';
import type { Json } from '../json.ts';

export const LOCAL_RATE_LIMIT_FILTER = 'envoy.filters.http.local_ratelimit';
export const LOCAL_RATE_LIMIT = 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';

const percent = (n: number): Json => ({ default_value: wholePercent(n) });

/** One bucket: `share.tokens` requests per `share.intervalMs`, 429 beyond (counted only in shadow mode). */
export function localRateLimitConfig(p: RateLimitPolicy, share: TokenShare, statPrefix: string): Json {
  return {
    '@type': LOCAL_RATE_LIMIT,
    stat_prefix: statPrefix,
    status: { code: 'TooManyRequests' },
    token_bucket: { max_tokens: share.tokens, tokens_per_fill: share.tokens, fill_interval: protoDuration(share.intervalMs) },
    filter_enabled: percent(100),
    // Shadow: every request is counted (stats <stat_prefix>.http_local_rate_limit.rate_limited)
    // but none is rejected.
    filter_enforced: percent(p.shadow ? 0 : 100),
    ...(p.responseHeaders ? { enable_x_ratelimit_headers: 'DRAFT_VERSION_03' } : {}),
    // gRPC callers then see RESOURCE_EXHAUSTED (a quota) rather than UNAVAILABLE, which they retry.
    ...(p.protocol === 'GRPC' ? { rate_limited_as_resource_exhausted: true } : {}),
  };
}

function statPrefix(p: RateLimitPolicy, suffix = ''): string {
  return `rate_limit.${p.name.replace('/', '.')}${suffix}`;
}

/** The caller's share of the first override of `p` that applies to it, if any. */
export function callerShare(p: RateLimitPolicy, proxy: Proxy): { index: number; share: TokenShare } | undefined {
  const index = p.overrides.findIndex((o) => sourceMatches(o.source, proxy.namespace, proxy.labels));
  if (index < 0) return undefined;
  const o = p.overrides[index]!;
  return { index, share: o.callers.find((c) => c.address === proxy.ip)?.share ?? o.otherCallers };
}

/** The filter itself, for the connection managers that need it. */
function localRateLimitFilter(ctx: HcmContext): Json | undefined {
  const { model, proxy } = ctx;
  if (ctx.side === 'inbound') {
    if (!proxy.ip) return undefined;
    for (const p of model.rateLimits) {
      const replica = p.limit?.replicas.find((r) => r.address === proxy.ip && r.workloadPort === ctx.port);
      if (replica) return { name: LOCAL_RATE_LIMIT_FILTER, typed_config: localRateLimitConfig(p, replica.share, statPrefix(p)) };
    }
    return undefined;
  }
  const needed = model.rateLimits.some((p) => p.port === ctx.port && (ctx.host === undefined || ctx.host === p.host) && callerShare(p, proxy));
  // Off unless a virtual host's per-filter config turns it on (no bucket, filter_enabled 0%).
  return needed ? { name: LOCAL_RATE_LIMIT_FILTER, typed_config: { '@type': LOCAL_RATE_LIMIT, stat_prefix: 'rate_limit' } } : undefined;
}

/** The caller's override bucket for calls to one destination host and port. */
function localRateLimitVirtualHost(ctx: VirtualHostContext): Json | undefined {
  const p = ctx.model.rateLimits.find((r) => r.host === ctx.host && r.port === ctx.port);
  const caller = p && callerShare(p, ctx.proxy);
  if (!p || !caller) return undefined;
  return { typed_per_filter_config: { [LOCAL_RATE_LIMIT_FILTER]: localRateLimitConfig(p, caller.share, statPrefix(p, `.override_${caller.index}`)) } };
}

// The rate limits, as text compared by identity: one string per model.
const rateLimitText = new WeakMap<Model, string>();

export const localRateLimit: Feature = {
  name: 'local-rate-limit',
  grpc: false,
  httpFilter: localRateLimitFilter,
  virtualHost: localRateLimitVirtualHost,
  // A caller's bucket on a virtual host comes from the model's rate limits, not from the table.
  tableDeps(model) {
    let text = rateLimitText.get(model);
    if (text === undefined) rateLimitText.set(model, (text = JSON.stringify(model.rateLimits)));
    return text;
  },
};
