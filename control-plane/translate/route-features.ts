// Per-route additions from policy features (e.g. per-route filter config, mirroring), one
// feature per file, listed here. `route` fields go on the Envoy Route, `action` fields into its
// RouteAction; typed_per_filter_config maps from several features are merged.
import type { HttpRoute, UpstreamCluster } from '../model/types.ts';
import type { ClientKind } from './proxy.ts';
import type { Json } from './string-match.ts';

export interface RouteFeatureContext { kind: ClientKind; clusters: Map<string, UpstreamCluster> }
export type RouteFeature = (route: HttpRoute, ctx: RouteFeatureContext) => { route?: Json; action?: Json } | undefined;

const ROUTE_FEATURES: RouteFeature[] = [];

export function routeExtras(route: HttpRoute, ctx: RouteFeatureContext): { route: Json; action: Json } {
  const out = { route: {} as Json, action: {} as Json };
  for (const f of ROUTE_FEATURES) {
    const part = f(route, ctx);
    if (!part) continue;
    for (const side of ['route', 'action'] as const) {
      for (const [k, v] of Object.entries(part[side] ?? {})) {
        if (k === 'typed_per_filter_config') out[side][k] = { ...((out[side][k] as Json) ?? {}), ...(v as Json) };
        else out[side][k] = v;
      }
    }
  }
  return out;
}
