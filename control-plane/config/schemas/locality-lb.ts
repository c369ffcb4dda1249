// DestinationRule trafficPolicy.loadBalancer.localityLbSetting (Istio's LocalityLoadBalancerSetting):
// which localities a caller prefers (failover, failoverPriority) or how it spreads its calls
// over them (distribute). Istio's rules: distribute and failover exclude each other, distribute
// weights add up to 100, failover names regions only.
import { z } from 'zod';
import { isLabelKey, isLabelValue, isRecord, withRule } from './common.ts';

/** Why a locality pattern is malformed: "region", "region/zone", "region/zone/subzone", with `*`
 * allowed only as the whole last part ("*", "r1/*", "r1/a/*"). */
export function localityPatternProblem(s: string): string | undefined {
  const parts = s.split('/');
  if (parts.length > 3) return 'a locality has at most three parts: region/zone/subzone';
  if (parts.some((p) => p === '' || /\s/.test(p))) return 'locality parts must be non-empty and contain no spaces';
  const star = parts.findIndex((p) => p.includes('*'));
  if (star >= 0 && (star !== parts.length - 1 || parts[star] !== '*')) return 'a wildcard is only allowed as the whole last part, e.g. "region/*" or "region/zone/*"';
  return undefined;
}

const localityPattern = z.string().superRefine((s, ctx) => {
  const problem = localityPatternProblem(s);
  if (problem) ctx.addIssue({ code: 'custom', message: problem, input: s });
});

const region = z.string().superRefine((s, ctx) => {
  if (s === '' || /[\s/*]/.test(s)) ctx.addIssue({ code: 'custom', message: 'failover names a region only (no "/", "*" or spaces)', input: s });
});

const WEIGHT_ERROR = 'must be an integer from 1 to 100 (the weights add up to 100; leave out a locality that should get no calls)';

export const Distribute = withRule(
  z.strictObject({
    /** The callers this entry is for. */
    from: localityPattern,
    /** Locality pattern -> weight (1 to 100: as in Istio, a locality that should get nothing is left out). */
    to: z.record(localityPattern, z.number({ error: WEIGHT_ERROR }).int({ error: WEIGHT_ERROR }).min(1, { error: WEIGHT_ERROR }).max(100, { error: WEIGHT_ERROR })),
  }),
  (v, report) => {
    const to = v['to'];
    if (!isRecord(to)) return;
    const weights = Object.values(to).filter((w): w is number => typeof w === 'number');
    if (weights.length === 0) report(['to'], 'must name at least one locality');
    else if (weights.length === Object.keys(to).length) {
      const total = weights.reduce((a, b) => a + b, 0);
      if (total !== 100) report(['to'], `the weights add up to ${total}; they must add up to 100`);
    }
  },
);

export const Failover = withRule(
  z.strictObject({ from: region, to: region }),
  (v, report) => {
    if (typeof v['from'] === 'string' && v['from'] === v['to']) report(['to'], 'failover must name two different regions');
  },
);

export const LocalityLbSetting = withRule(
  z.strictObject({
    distribute: z.array(Distribute).optional(),
    failover: z.array(Failover).optional(),
    /** Label keys, most important first: endpoints matching the caller on more of them come first.
     * `key=value` compares endpoints with that value instead of the caller's. */
    failoverPriority: z
      .array(
        z.string().refine(
          (s) => {
            const i = s.indexOf('=');
            return i < 0 ? isLabelKey(s) : isLabelKey(s.slice(0, i)) && isLabelValue(s.slice(i + 1));
          },
          { error: 'must be a label key, or key=value (e.g. topology.istio.io/network or topology.istio.io/network=network1)' },
        ),
      )
      .optional(),
    /** false turns locality load balancing off for this destination. */
    enabled: z.boolean().optional(),
  }),
  (v, report) => {
    const has = (k: string) => Array.isArray(v[k]) && (v[k] as unknown[]).length > 0;
    if (has('distribute') && has('failover')) report(['failover'], 'distribute and failover cannot both be set (Istio forbids it): choose weights or an order');
    if (has('distribute') && has('failoverPriority')) report(['failoverPriority'], 'distribute and failoverPriority cannot both be set: choose weights or an order');
    const seen = (list: unknown, key: (x: Record<string, unknown>) => unknown, what: string, at: string) => {
      if (!Array.isArray(list)) return;
      const first = new Map<string, number>();
      list.forEach((x, i) => {
        const k = typeof x === 'string' ? x : isRecord(x) ? key(x) : undefined;
        if (typeof k !== 'string') return;
        if (first.has(k)) report([at, i], `duplicate ${what} ${JSON.stringify(k)} (also at index ${first.get(k)})`);
        else first.set(k, i);
      });
    };
    seen(v['distribute'], (d) => d['from'], 'distribute.from', 'distribute');
    seen(v['failover'], (f) => f['from'], 'failover.from (one next region per region)', 'failover');
    seen(Array.isArray(v['failoverPriority']) ? v['failoverPriority'].map((x) => (typeof x === 'string' ? x.split('=')[0] : x)) : undefined, () => undefined, 'label', 'failoverPriority');
    if (v['enabled'] === false && (has('distribute') || has('failover') || has('failoverPriority'))) {
      report(['enabled'], 'locality load balancing is disabled here, so distribute, failover and failoverPriority would never apply');
    }
  },
);

export type LocalityLbSetting = z.infer<typeof LocalityLbSetting>;
