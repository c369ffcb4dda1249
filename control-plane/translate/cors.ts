// CORS through Envoy's CORS filter (envoy.filters.http.cors). The filter goes on an outbound
// connection manager with an empty config, only when a route it serves has a corsPolicy; each such
// route carries its own CorsPolicy in typed_per_filter_config under the filter's name, so the
// policy holds for exactly the requests the route matches (preflights included: an OPTIONS request
// the route matches is answered by the filter). Sidecars only: proxyless gRPC has no CORS filter
// (browsers do not call gRPC services directly), and the model warns on rules for gRPC services.
import type { CorsPolicy, HttpRoute, RouteTable } from '../model/types.ts';
import type { Feature, HcmContext } from './feature.ts';
import { wholePercent } from './proto-values.ts';
import { tableRoutesForProxy } from './source-scope.ts';
import { stringMatcher } from './string-match.ts';
import type { Json } from '../json.ts';

export const CORS_FILTER_NAME = 'envoy.filters.http.cors';
export const CORS = 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors';
export const CORS_POLICY = 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy';

/** The per-route CorsPolicy, in the form Istio sends (so config dumps read the same). */
export function corsPolicy(c: CorsPolicy): Json {
  return {
    '@type': CORS_POLICY,
    ...(c.origins.length ? { allow_origin_string_match: c.origins.map((m) => stringMatcher(m)) } : {}),
    ...(c.methods.length ? { allow_methods: c.methods.join(',') } : {}),
    ...(c.headers.length ? { allow_headers: c.headers.join(',') } : {}),
    ...(c.exposeHeaders.length ? { expose_headers: c.exposeHeaders.join(',') } : {}),
    ...(c.maxAgeSeconds !== undefined ? { max_age: String(c.maxAgeSeconds) } : {}),
    ...(c.allowCredentials !== undefined ? { allow_credentials: c.allowCredentials } : {}),
    filter_enabled: { default_value: wholePercent(100) },
    forward_not_matching_preflights: c.forwardUnmatchedPreflights,
  };
}

// Route tables with any CORS policy, per model (most have none).
const tablesWithCors = new WeakMap<object, RouteTable[]>();

function corsTables(model: HcmContext['model']): RouteTable[] {
  let t = tablesWithCors.get(model);
  if (!t) {
    t = model.routeTables.filter((x) => x.routes.some((r) => r.cors));
    tablesWithCors.set(model, t);
  }
  return t;
}

/** Routes with a CORS policy that this (sidecar's outbound) connection manager serves. */
function servedRoutes(ctx: HcmContext): HttpRoute[] {
  return corsTables(ctx.model)
    .filter((t) => t.port === ctx.port && (ctx.host === undefined || t.host === ctx.host))
    .flatMap((t) => tableRoutesForProxy(ctx.model, t, ctx.proxy));
}

export const cors: Feature = {
  name: 'cors',
  grpc: false,
  httpFilter(ctx) {
    if (ctx.side !== 'outbound' || !servedRoutes(ctx).some((r) => r.cors)) return undefined;
    return { name: CORS_FILTER_NAME, typed_config: { '@type': CORS } };
  },
  route: (route) => (route.cors ? { route: { typed_per_filter_config: { [CORS_FILTER_NAME]: corsPolicy(route.cors) } } } : undefined),
};
