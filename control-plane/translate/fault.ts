// Fault injection through Envoy's fault filter (envoy.filters.http.fault). The filter goes on an
// outbound connection manager with an empty config, and only when a route it serves has a fault;
// each such route carries its own HTTPFault in typed_per_filter_config under the filter's name,
// so a fault scoped by a match touches only the requests that match. The per-route value is the
// HTTPFault message itself (not wrapped in envoy.config.route.v3.FilterConfig, which gRPC NACKs).
// Proxyless gRPC applies the same config (delay, abort with grpc_status, or http_status mapped).
import type { FaultPolicy, HttpRoute, RouteTable } from '../model/types.ts';
import { fractionalPercent, protoDuration } from './proto-values.ts';
import type { Feature, HcmContext } from './feature.ts';
import { tableRoutesForProxy } from './source-scope.ts';
import type { Json } from '../json.ts';

export const FAULT_FILTER_NAME = 'envoy.filters.http.fault';
export const HTTP_FAULT = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';

export function httpFault(f: FaultPolicy): Json {
  const out: Json = { '@type': HTTP_FAULT };
  if (f.delay) out.delay = { fixed_delay: protoDuration(f.delay.fixedDelayMs), percentage: fractionalPercent(f.delay.percent) };
  if (f.abort) {
    const status = 'grpcStatus' in f.abort ? { grpc_status: f.abort.grpcStatus } : { http_status: f.abort.httpStatus };
    out.abort = { ...status, percentage: fractionalPercent(f.abort.percent) };
  }
  return out;
}

// Route tables that have any fault at all, per model: most have none, and looking through every
// table for every listener would cost listeners x tables.
const tablesWithFaults = new WeakMap<object, RouteTable[]>();

function faultyTables(model: HcmContext['model']): RouteTable[] {
  let t = tablesWithFaults.get(model);
  if (!t) {
    t = model.routeTables.filter((x) => x.routes.some((r) => r.fault));
    tablesWithFaults.set(model, t);
  }
  return t;
}

/** Routes with a fault that this connection manager serves and this proxy gets. */
function servedRoutes(ctx: HcmContext): HttpRoute[] {
  return faultyTables(ctx.model)
    .filter((t) => t.port === ctx.port && (ctx.host === undefined || t.host === ctx.host))
    .flatMap((t) => tableRoutesForProxy(ctx.model, t, ctx.proxy))
    // gRPC clients never get redirect routes.
    .filter((r) => ctx.proxy.kind === 'envoy' || r.action.kind === 'route');
}

export const fault: Feature = {
  name: 'fault',
  grpc: true,
  httpFilter(ctx) {
    if (ctx.side !== 'outbound' || !servedRoutes(ctx).some((r) => r.fault)) return undefined;
    return { name: FAULT_FILTER_NAME, typed_config: { '@type': HTTP_FAULT } };
  },
  route: (route) =>
    route.fault ? { route: { typed_per_filter_config: { [FAULT_FILTER_NAME]: httpFault(route.fault) } } } : undefined,
};
