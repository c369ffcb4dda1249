// PeerAuthentication on the inbound side: the filter chains of one workload port.
// Envoy (virtualInbound):
//   STRICT     one chain with a DownstreamTlsContext requiring a client certificate. It matches
//              the port alone, not `transport_protocol: tls`, so a plaintext connection fails the
//              handshake here instead of falling through to the passthrough chain.
//   PERMISSIVE two chains told apart by the tls_inspector: `tls` (mTLS, as STRICT) and
//              `raw_buffer` (plaintext). A caller's own, non-mesh TLS lands on the mTLS chain and
//              fails (no ALPN-based split as Istio's).
//   DISABLE    the plaintext chain only.
// proxyless gRPC (XdsServer): grpc-js-xds 1.14.1 drops every filter chain whose
// `transport_protocol` is not `raw_buffer` (server.js normalizeFilterChainMatch) and does no TLS
// sniffing, so one port cannot take both. STRICT gets the mTLS chain; PERMISSIVE and DISABLE get
// plaintext (the model warns when PERMISSIVE applies to a GRPC port).
import { effectiveMtls, type MtlsMode } from '../model/peer-authentication.ts';
import type { Model } from '../model/types.ts';
import type { Json } from '../json.ts';
import type { Proxy } from './proxy.ts';
import { meshDownstreamTls, TLS_INSPECTOR } from './tls-context.ts';

export const TLS_INSPECTOR_FILTER = { name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': TLS_INSPECTOR } };

export function inboundMode(model: Model, proxy: Proxy, port: number): MtlsMode {
  return effectiveMtls(model.peerAuthentications, model.mesh, proxy.namespace, proxy.labels, port).mode;
}

/** Envoy's chains for one inbound port: `base` (name, match, filters) with TLS added per mode. */
export function sidecarInboundChains(mode: MtlsMode, base: { name: string; port: number; filters: Json[]; alpn: readonly string[] }): Json[] {
  const chain = (suffix: string, transport?: 'tls' | 'raw_buffer', tls = false): Json => ({
    name: `${base.name}${suffix}`,
    filter_chain_match: { destination_port: base.port, ...(transport ? { transport_protocol: transport } : {}) },
    ...(tls ? { transport_socket: meshDownstreamTls('envoy', base.alpn) } : {}),
    filters: base.filters,
  });
  if (mode === 'STRICT') return [chain('', undefined, true)];
  if (mode === 'PERMISSIVE') return [chain('', 'tls', true), chain('-plaintext', 'raw_buffer')];
  return [chain('')];
}

/**
 * The passthrough chain (ports no service names): under the workload's own mode STRICT (port level
 * does not apply) it takes mTLS only, so STRICT is not bypassed on an unnamed port. Otherwise it
 * stays plaintext passthrough, bytes as they come (an app's own TLS included), as before mTLS.
 */
export function passthroughChain(mode: MtlsMode, base: { name: string; filters: Json[] }): Json {
  return { name: base.name, ...(mode === 'STRICT' ? { transport_socket: meshDownstreamTls('envoy') } : {}), filters: base.filters };
}

/** A gRPC server listener's transport socket, or nothing (plaintext). */
export function grpcServerTransportSocket(mode: MtlsMode): Json | undefined {
  return mode === 'STRICT' ? meshDownstreamTls('grpc') : undefined;
}
