// Type URLs of the resources and extensions we generate.
const T = 'type.googleapis.com/';
export const LISTENER = `${T}envoy.config.listener.v3.Listener`;
export const ROUTE_CONFIG = `${T}envoy.config.route.v3.RouteConfiguration`;
export const CLUSTER = `${T}envoy.config.cluster.v3.Cluster`;
export const ENDPOINTS = `${T}envoy.config.endpoint.v3.ClusterLoadAssignment`;
export const HCM = `${T}envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`;
export const ROUTER = `${T}envoy.extensions.filters.http.router.v3.Router`;
export const TCP_PROXY = `${T}envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy`;
export const ORIGINAL_DST = `${T}envoy.extensions.filters.listener.original_dst.v3.OriginalDst`;
/** SDS secrets (credentialName): served on ADS beside TYPE_ORDER's types, not built by translate(). */
export const SECRET = `${T}envoy.extensions.transport_sockets.tls.v3.Secret`;
export const HTTP_PROTOCOL_OPTIONS = `${T}envoy.extensions.upstreams.http.v3.HttpProtocolOptions`;

/** Push order for ADS: clusters, endpoints, listeners, routes. */
export const TYPE_ORDER = [CLUSTER, ENDPOINTS, LISTENER, ROUTE_CONFIG] as const;
export type ResourceType = (typeof TYPE_ORDER)[number];
