// HttpConnectionManager: routes from RDS over the same ADS stream (or inline), the features' HTTP
// filters in FEATURES order, router last.
import { ADS_SOURCE } from './clusters.ts';
import type { HcmContext } from './feature.ts';
import { featuresFor } from './features.ts';
import type { Json } from '../json.ts';
import { HCM, ROUTER } from './type-urls.ts';

export const ROUTER_FILTER = { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } };

/** The features' filters for one connection manager, in FEATURES order. */
export function httpFilters(ctx: HcmContext): Json[] {
  const out: Json[] = [];
  for (const f of featuresFor(ctx.proxy.kind)) {
    const filter = f.httpFilter?.(ctx);
    if (filter) out.push(filter);
  }
  return out;
}

export function httpConnectionManager(statPrefix: string, routes: { rds: string } | { inline: Json }, filters: Json[] = []): Json {
  return {
    '@type': HCM,
    stat_prefix: statPrefix,
    ...('rds' in routes ? { rds: { config_source: ADS_SOURCE, route_config_name: routes.rds } } : { route_config: routes.inline }),
    http_filters: [...filters, ROUTER_FILTER],
  };
}
