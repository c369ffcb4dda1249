// The Bookinfo rules several end-to-end suites share (e2e-routing, e2e-fault, e2e-authz and
// explain-agrees, which must run the very same rules as the e2e tests it is compared with).
import { hostOf } from './mesh-files.ts';
import { authorizationPolicy, header, httpRoute, to, virtualService, whenHeader, workloadEntry } from './yaml-builders.ts';

export const REVIEWS = hostOf('reviews');

/** A VirtualService for `host` with these http routes. */
export const vsFor = (host: string, ...http: Array<Record<string, unknown>>) => virtualService({ hosts: [host], http });

/** Every call to the service goes to one subset. */
export const serviceTo = (host: string, subset: string) => vsFor(host, httpRoute([to(host, subset)]));

/** reviews v1/v2 by weight. */
export const reviewsWeightedRoute = (v1: number, v2: number) => httpRoute([to(REVIEWS, 'v1', v1), to(REVIEWS, 'v2', v2)]);

/** end-user: jason -> reviews v2. */
export const JASON_TO_V2 = httpRoute([to(REVIEWS, 'v2')], { match: [header('end-user', 'exact', 'jason')] });

/** A cookie with user=jason -> reviews v3, the rest to v1. */
export const COOKIE_JASON_TO_V3 = [
  httpRoute([to(REVIEWS, 'v3')], { match: [header('cookie', 'regex', '^(.*?;)?(user=jason)(;.*)?$')] }),
  httpRoute([to(REVIEWS, 'v1')]),
];

/** Callers labelled app: productpage -> reviews v2, the rest to v1. */
export const PRODUCTPAGE_TO_V2 = [httpRoute([to(REVIEWS, 'v2')], { match: [{ sourceLabels: { app: 'productpage' } }] }), httpRoute([to(REVIEWS, 'v1')])];

/** DENY on ratings for calls whose x-caller header is one of `callers`. */
export function denyCallers(name: string, callers: string[], annotations?: Record<string, string>): string {
  return authorizationPolicy({ name, annotations, selector: { app: 'ratings' }, action: 'DENY', rules: [{ when: [whenHeader('x-caller', callers)] }] });
}

/** "Only reviews v1 and v2 may call ratings; v3 may not" (the old Mixer whitelist). */
export const ONLY_V1_V2 = authorizationPolicy({
  name: 'ratings-callers',
  selector: { app: 'ratings' },
  action: 'ALLOW',
  rules: [{ to: [{ operation: { paths: ['/meshpilot.demo.v1.Echo/*'], methods: ['POST'] } }], when: [whenHeader('x-caller', ['reviews-v1', 'reviews-v2'])] }],
});

/** Deny callers that are workloads labelled app: batch (meshpilot's workloadSelector source, resolved to their IPs). */
export const DENY_BATCH_WORKLOADS = authorizationPolicy({
  name: 'no-batch',
  selector: { app: 'ratings' },
  action: 'DENY',
  rules: [{ from: [{ source: { workloadSelector: { matchLabels: { app: 'batch' } } } }] }],
});

/** The workload batch-1 (app: batch) at `address`. */
export const batchWorkload = (address: string) => workloadEntry({ name: 'batch-1', address, labels: { app: 'batch' } });
