// traffic.meshpilot.io RateLimit: "at most N requests per interval to this service port", with
// optional per-source overrides, a shadow (dry-run) mode and x-ratelimit-* response headers.
// Cross-object checks (the host exists, the port is an HTTP port) are done by the model builder.
import { z } from 'zod';
import { UINT32_MAX, dnsLabel, duration, host, intRange, labels, parseDuration, portNumber, withRule } from './common.ts';

/** Envoy refills a local rate limit token bucket at most every 50 ms. */
export const MIN_RATE_LIMIT_INTERVAL_MS = 50;

const per = duration().superRefine((s, ctx) => {
  const r = parseDuration(s);
  if ('ms' in r && r.ms > 0 && r.ms < MIN_RATE_LIMIT_INTERVAL_MS) {
    ctx.addIssue({ code: 'custom', message: `must be at least ${MIN_RATE_LIMIT_INTERVAL_MS}ms (Envoy refills rate limit token buckets at most every 50ms)`, input: s });
  }
});

/** N requests per interval. */
export const RateLimitAmount = z.strictObject({
  requests: intRange(1, UINT32_MAX, 'a whole number of requests'),
  per,
});

/** Who an override is for: workloads with these labels, in this namespace (both when both are set). */
export const RateLimitSource = withRule(
  z.strictObject({
    labels: labels.optional(),
    namespace: dnsLabel.optional(),
  }),
  (v, report) => {
    const l = v['labels'];
    const hasLabels = typeof l === 'object' && l !== null && Object.keys(l).length > 0;
    if (l !== undefined && !hasLabels) report(['labels'], 'must name at least one label (leave it out to select by namespace only)');
    else if (!hasLabels && v['namespace'] === undefined) report([], 'set labels, namespace or both');
  },
);

export const RateLimitOverride = z.strictObject({
  source: RateLimitSource,
  limit: RateLimitAmount,
});

export const RateLimitSpec = withRule(
  z.strictObject({
    destination: z.strictObject({
      /** A service host; short names resolve in the rule's namespace. */
      host: host({ wildcard: false }),
      /** Required when the service has several HTTP ports. */
      port: portNumber.optional(),
    }),
    /** Shared by every caller without a matching override. */
    limit: RateLimitAmount.optional(),
    /** The first override whose source matches a caller applies to it. */
    overrides: z.array(RateLimitOverride).min(1, { error: 'must list at least one override (or leave the field out)' }).optional(),
    /** Count and report, never reject. */
    shadow: z.boolean().optional(),
    /** Send x-ratelimit-limit, -remaining and -reset on responses. */
    responseHeaders: z.boolean().optional(),
  }),
  (v, report) => {
    if (v['limit'] === undefined && v['overrides'] === undefined) report([], 'set limit, overrides or both');
  },
);

export type RateLimitSpec = z.infer<typeof RateLimitSpec>;
