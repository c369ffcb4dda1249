// Model routes -> Envoy Route entries, for each kind of client. gRPC gets only what it acts on:
// no redirects or direct responses (it rejects them), no header mutations or rewrites (it ignores them), and matches
// that can never hold for gRPC (query parameters, a method other than POST) are dropped rather than
// sent, because gRPC silently ignores query matchers and would match everything.
import type { HttpRoute, RouteMatch, UpstreamCluster } from '../model/types.ts';
import { mergeFields, type RouteContext } from './feature.ts';
import { featuresFor } from './features.ts';
import { concatOps, headerMutations } from './header-ops.ts';
import type { ClientKind } from './proxy.ts';
import { directResponse } from './direct-response.ts';
import { redirectAction } from './redirect.ts';
import { forwardAction } from './route-action.ts';
import { envoyRouteMatch } from './route-match.ts';
import { routeOriginMetadata } from './route-origin.ts';
import type { Json } from '../json.ts';
import { matchesValue } from './string-match.ts';

function grpcMatch(m: RouteMatch): RouteMatch | undefined {
  if (m.queryParams.length) return undefined;
  if (m.method && !matchesValue(m.method, 'POST')) return undefined;
  const { method: _dropped, ...rest } = m;
  return rest;
}

/** The features' additions to one route: `route` fields for the Route, `action` fields for its RouteAction. */
function routeExtras(route: HttpRoute, ctx: RouteContext): { route: Json; action: Json } {
  const out = { route: {} as Json, action: {} as Json };
  for (const f of featuresFor(ctx.kind)) {
    const part = f.route?.(route, ctx);
    mergeFields(out.route, part?.route);
    mergeFields(out.action, part?.action);
  }
  return out;
}

export function envoyRoutes(routes: readonly HttpRoute[], clusters: Map<string, UpstreamCluster>, kind: ClientKind): Json[] {
  const out: Json[] = [];
  for (const r of routes) {
    if (kind === 'grpc' && r.action.kind !== 'route') continue;
    let matches: Array<RouteMatch | undefined> = r.matches.length ? r.matches : [undefined];
    if (kind === 'grpc') {
      matches = matches.map((m) => (m ? grpcMatch(m) : m));
      if (r.matches.length && matches.every((m) => m === undefined)) continue;
      matches = r.matches.length ? matches.filter((m) => m !== undefined) : matches;
    }
    const extras = routeExtras(r, { kind, clusters });
    const action =
      r.action.kind === 'route'
        ? { route: { ...forwardAction(r.action, clusters, kind), ...extras.action } }
        : r.action.kind === 'redirect'
          ? { redirect: redirectAction(r.action) }
          : { direct_response: directResponse(r.action) };
    const single = r.action.kind === 'route' && r.action.destinations.length === 1 ? r.action.destinations[0] : undefined;
    const mutations = kind === 'envoy' ? headerMutations(concatOps(r.requestHeaders, single?.requestHeaders), concatOps(r.responseHeaders, single?.responseHeaders)) : {};
    const metadata = routeOriginMetadata(r);
    for (const m of matches) {
      out.push({ name: r.name, match: m ? envoyRouteMatch(m) : { prefix: '/' }, ...action, ...mutations, ...extras.route, ...metadata });
    }
  }
  return out;
}
