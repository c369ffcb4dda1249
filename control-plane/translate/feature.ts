// One policy feature, one object. A feature says what it adds to each place of the generated
// config: a filter to an HttpConnectionManager, fields to a Route and its RouteAction, fields to a
// VirtualHost. Every hook is optional and returns nothing when no rule needs it for this proxy.
// Features are listed, in order, in features.ts (the list imports the features, never the reverse).
//
// Cluster config (connection pool, circuit breakers, outlier detection, load balancer, protocol
// options) is not a feature: it is core cluster translation (clusters.ts), memoized per cluster
// object and kind, and its parts share fields (common_lb_config) that need one owner.
import type { HttpRoute, Model, UpstreamCluster } from '../model/types.ts';
import type { ClientKind, Proxy } from './proxy.ts';
import type { Json } from '../json.ts';

/** One HttpConnectionManager of one proxy. */
export interface HcmContext {
  model: Model;
  proxy: Proxy;
  /** outbound: the proxy calling a service (sidecar port listener, gRPC api_listener);
   *  inbound: the proxy receiving calls for its own workload (virtualInbound, gRPC server). */
  side: 'outbound' | 'inbound';
  /** The service port (outbound) or workload port (inbound) this connection manager serves. */
  port: number;
  /** Outbound gRPC api_listeners serve one host; sidecar port listeners serve every host on the port. */
  host?: string;
}

/** One route, as a client of this kind gets it. */
export interface RouteContext { kind: ClientKind; clusters: Map<string, UpstreamCluster> }

/** One destination host and port, as this proxy calls it. */
export interface VirtualHostContext { model: Model; proxy: Proxy; host: string; port: number }

/** `route` fields go on the Envoy Route, `action` fields into its RouteAction. */
export interface RouteParts { route?: Json; action?: Json }

export interface Feature {
  name: string;
  /** Whether proxyless gRPC acts on it. When false, no hook is called for a gRPC client or server. */
  grpc: boolean;
  /** This feature's HTTP filter for one connection manager (the router, always last, is hcm.ts's). */
  httpFilter?(ctx: HcmContext): Json | undefined;
  /** Per-route additions (per-filter config, RouteAction fields). */
  route?(route: HttpRoute, ctx: RouteContext): RouteParts | undefined;
  /** Per-virtual-host additions, for config shared by every route to one destination (a per-filter
   *  config on the virtual host is one object, so e.g. one rate limit bucket however many routes
   *  and matches the host has). It sees the proxy: what a caller gets may depend on who it is. */
  virtualHost?(ctx: VirtualHostContext): Json | undefined;
  /** What else of the model the hooks read for one route table (beyond the table, the clusters its
   *  routes send to and the caller), as one value compared by identity: the per-table memo
   *  (table-memo.ts) reuses a table's output only while it is the same. */
  tableDeps?(model: Model): unknown;
}

/** Adds `part`'s fields to `out`; typed_per_filter_config maps from several features are merged. */
export function mergeFields(out: Json, part: Json | undefined): void {
  for (const [k, v] of Object.entries(part ?? {})) {
    if (k === 'typed_per_filter_config') out[k] = { ...((out[k] as Json) ?? {}), ...(v as Json) };
    else out[k] = v;
  }
}
