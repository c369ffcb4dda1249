// Resolved Canary and FaultExperiment rules for rollout tests (what model/canaries.ts and
// model/experiments.ts produce), and a LoadQuery that answers from recorded figures.
import type { CanaryRule, ExperimentRule, LoadFigures, LoadQuery } from '../../control-plane/rollout/types.ts';

export function canaryRule(over: Omit<Partial<CanaryRule>, 'analysis'> & { analysis?: { [K in keyof CanaryRule['analysis']]?: CanaryRule['analysis'][K] | undefined } } = {}): CanaryRule {
  const { analysis, ...rest } = over;
  return {
    key: 'Canary/default/reviews',
    namespace: 'default',
    name: 'reviews',
    host: 'reviews.default.svc.cluster.local',
    route: 'reviews-canary',
    virtualService: 'VirtualService/default/reviews',
    stable: { subset: 'v1', clusters: ['outbound|9080|v1|reviews.default.svc.cluster.local'] },
    canary: { subset: 'v2', clusters: ['outbound|9080|v2|reviews.default.svc.cluster.local'] },
    steps: [5, 25, 50, 100],
    intervalMs: 60_000,
    finish: 'promote',
    revision: 'r1',
    origin: { key: 'Canary/default/reviews', at: 'canary.yaml:1' },
    ...rest,
    analysis: { minRequests: 20, minSuccessRate: 99, maxFailedChecks: 2, ...analysis },
  };
}

export function experimentRule(over: Partial<ExperimentRule> = {}): ExperimentRule {
  return {
    key: 'FaultExperiment/default/ratings-delay',
    namespace: 'default',
    name: 'ratings-delay',
    host: 'ratings.default.svc.cluster.local',
    routes: [],
    routeNames: [],
    fault: { abort: { httpStatus: 503, percent: 10 } },
    expiresAtMs: 600_000,
    guard: { minSuccessRate: 95, minRequests: 20, windowMs: 30_000 },
    clusters: ['outbound|9080||ratings.default.svc.cluster.local'],
    revision: 'e1',
    origin: { key: 'FaultExperiment/default/ratings-delay', at: 'experiment.yaml:1' },
    ...over,
  };
}

/** Figures from `ok` succeeded and `failed` failed requests. */
export function figures(ok: number, failed = 0): LoadFigures {
  return { completed: ok + failed, succeeded: ok, failed, issued: ok + failed, inFlight: 0, proxies: ok + failed > 0 ? 1 : 0 };
}

/**
 * A LoadQuery over recorded requests: `record(cluster, at, ok, failed)` adds requests completed at
 * `at`; `figures` sums those in [since, until) (the controller's spans follow one another).
 */
export class RecordedLoad implements LoadQuery {
  private events: Array<{ cluster: string; at: number; ok: number; failed: number }> = [];
  /** Every query asked, for "the span judged was [since, now]" checks. */
  readonly queries: Array<{ cluster: string; since: number; until: number }> = [];

  record(cluster: string, at: number, ok: number, failed = 0): void {
    this.events.push({ cluster, at, ok, failed });
  }

  figures(cluster: string, since: number, until: number): LoadFigures {
    this.queries.push({ cluster, since, until });
    let ok = 0;
    let failed = 0;
    for (const e of this.events) {
      if (e.cluster === cluster && e.at >= since && e.at < until) {
        ok += e.ok;
        failed += e.failed;
      }
    }
    return figures(ok, failed);
  }
}
