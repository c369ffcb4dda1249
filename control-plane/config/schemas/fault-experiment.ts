// traffic.meshpilot.io FaultExperiment: "inject this fault into these routes of a host until a
// given time, and stop early if the service's success rate falls below the guard". The fault has
// the VirtualService's http[].fault shape. Cross-object checks (the host and routes exist) are
// the model's (model/experiments.ts).
import { z } from 'zod';
import { UINT32_MAX, duration, host, intRange, withRule } from './common.ts';
import { HTTPFaultInjection } from './virtual-service.ts';

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const TIME_ERROR = 'must be an RFC 3339 time such as "2026-12-07T10:00:00Z" (quote it)';

/** An RFC 3339 date-time, as Kubernetes writes `date-time` strings. */
export const rfc3339 = z.string({ error: TIME_ERROR }).refine((s) => RFC3339.test(s) && !Number.isNaN(Date.parse(s)), { error: TIME_ERROR });

const PERCENT_ERROR = 'must be a percentage from 0 to 100 (decimals allowed, e.g. 99.5)';

export const FaultExperimentGuard = z.strictObject({
  /** Percent: the service's success rate must stay at or above this, or the experiment stops. */
  minSuccessRate: z.number({ error: PERCENT_ERROR }).min(0, { error: PERCENT_ERROR }).max(100, { error: PERCENT_ERROR }),
  /** Fewer completed requests in the window: no judgement (default 20). */
  minRequests: intRange(1, UINT32_MAX, 'a whole number of requests').optional(),
  /** The span the success rate is taken over (default 30s). */
  window: duration().optional(),
});

export const FaultExperimentSpec = z.strictObject({
  target: withRule(
    z.strictObject({
      /** A service host; a short name resolves in the experiment's namespace. */
      host: host({ wildcard: false }),
      /** http route names (`http[].name`) of the host's VirtualServices; left out: every route of the host. */
      routes: z
        .array(z.string().min(1, { error: 'must not be empty' }))
        .min(1, { error: 'must name at least one route (or leave the field out for every route of the host)' })
        .optional(),
    }),
    (v, report) => {
      const routes = v['routes'];
      if (!Array.isArray(routes)) return;
      routes.forEach((r, i) => {
        const first = routes.indexOf(r);
        if (first < i) report(['routes', i], `duplicate route ${JSON.stringify(r)} (also at index ${first})`);
      });
    },
  ),
  fault: HTTPFaultInjection,
  expiresAt: rfc3339,
  guard: FaultExperimentGuard.optional(),
});

export type FaultExperimentSpec = z.infer<typeof FaultExperimentSpec>;
