// traffic.meshpilot.io Canary: "move this route's traffic from the stable subset to the canary
// subset in steps, judging each step on the load the proxies report". Cross-object checks (the
// route exists for the host and sends to exactly these two subsets) are the model's
// (model/canaries.ts); the rollout itself is rollout/.
import { z } from 'zod';
import { INT32_MAX, UINT32_MAX, dnsLabel, duration, host, intRange, istioEnum, parseDuration, withRule } from './common.ts';

/** The controller judges a step at most this often: shorter intervals hold too few requests. */
export const MIN_CANARY_INTERVAL_MS = 100;

const PERCENT_ERROR = 'must be a percentage from 0 to 100 (decimals allowed, e.g. 99.5)';
const percentage = z.number({ error: PERCENT_ERROR }).min(0, { error: PERCENT_ERROR }).max(100, { error: PERCENT_ERROR });

export const CanaryAnalysis = z.strictObject({
  /** Canary requests completed in an interval below which the step is held, not judged (default 20). */
  minRequests: intRange(1, UINT32_MAX, 'a whole number of requests').optional(),
  /** Percent the canary's success rate must reach. */
  minSuccessRate: percentage.optional(),
  /** Percentage points the canary's success rate may fall below the stable subset's. */
  maxDropFromStable: percentage.optional(),
  /** Failed checks that roll the canary back (default 2). */
  maxFailedChecks: intRange(1, INT32_MAX, 'a whole number of checks').optional(),
});

export const CanarySpec = withRule(
  z.strictObject({
    target: z.strictObject({
      /** The VirtualService host; a short name resolves in the Canary's namespace. */
      host: host({ wildcard: false }),
      /** The `http[].name` of the VirtualService route whose weights the Canary sets. */
      route: z.string({ error: 'must be the name of an http route of the VirtualService (http[].name)' }).min(1, { error: 'must not be empty' }),
    }),
    /** DestinationRule subset names of the host. */
    stable: dnsLabel,
    canary: dnsLabel,
    /** Canary weights in percent, strictly increasing, the last 100. */
    steps: z.array(intRange(1, 100, 'a whole percentage')).min(1, { error: 'must list at least one step, the last one 100' }),
    interval: duration().superRefine((s, ctx) => {
      const r = parseDuration(s);
      if ('ms' in r && r.ms > 0 && r.ms < MIN_CANARY_INTERVAL_MS) ctx.addIssue({ code: 'custom', message: `must be at least ${MIN_CANARY_INTERVAL_MS}ms`, input: s });
    }),
    analysis: CanaryAnalysis.optional(),
    finish: istioEnum(['promote', 'handBack'] as const).optional(),
  }),
  (v, report) => {
    if (typeof v['stable'] === 'string' && v['stable'] === v['canary']) report(['canary'], 'must differ from stable: a canary moves traffic between two subsets');
    const steps = v['steps'];
    // Each step's own range is the item schema's to report.
    if (!Array.isArray(steps) || steps.length === 0 || !steps.every((s) => Number.isInteger(s) && s >= 1 && s <= 100)) return;
    steps.forEach((s: number, i) => {
      if (i > 0 && s <= (steps[i - 1] as number)) report(['steps', i], `must be more than the step before (${steps[i - 1] as number}): steps only increase`);
    });
    if (steps[steps.length - 1] !== 100) report(['steps', steps.length - 1], 'the last step must be 100 (all traffic to the canary)');
  },
);

export type CanarySpec = z.infer<typeof CanarySpec>;
