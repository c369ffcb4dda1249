// Per-route additions from policy features (e.g. per-route filter config, mirroring), one
// feature per file, listed here. `route` fields go on the Envoy Route, `action` fields into its
// RouteAction; typed_per_filter_config maps from several features are merged.
import type { HttpRoute, UpstreamCluster } from '../model/types.ts';
import { faultRoute } from './fault.ts';
import { mirrorRoute } from './mirror.ts';
import { localRateLimitVirtualHost } from './local-rate-limit.ts';
import type { Model } from '../model/types.ts';
import type { Proxy } from './proxy.ts';
import type { ClientKind } from './proxy.ts';
import type { Json } from './string-match.ts';

export interface RouteFeatureContext { kind: ClientKind; clusters: Map<string, UpstreamCluster> }
export type RouteFeature = (route: HttpRoute, ctx: RouteFeatureContext) => { route?: Json; action?: Json } | undefined;

const ROUTE_FEATURES: RouteFeature[] = [
  faultRoute,
  mirrorRoute,
];

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

// Per-virtual-host additions, for config that must be shared by every route to one destination
// (a per-filter config on the virtual host is one object, so e.g. one rate limit bucket, however
// many routes and matches the host has). They see the proxy: what a caller gets may depend on who
// it is. Fields go on the VirtualHost; typed_per_filter_config maps are merged.
export interface VirtualHostFeatureContext { model: Model; proxy: Proxy; host: string; port: number }
export type VirtualHostFeature = (ctx: VirtualHostFeatureContext) => Json | undefined;

const VIRTUAL_HOST_FEATURES: VirtualHostFeature[] = [
  localRateLimitVirtualHost,
];

export function virtualHostExtras(ctx: VirtualHostFeatureContext): Json {
  const out: Json = {};
  for (const f of VIRTUAL_HOST_FEATURES) {
    for (const [k, v] of Object.entries(f(ctx) ?? {})) {
      if (k === 'typed_per_filter_config') out[k] = { ...((out[k] as Json) ?? {}), ...(v as Json) };
      else out[k] = v;
    }
  }
  return out;
}
