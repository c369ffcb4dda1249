// TLS contexts for the two data planes. They need different forms for the same intent:
// - Envoy reads its certificates over SDS from the node agent (`sds-grpc` bootstrap cluster):
//   secret `default` (the workload's key and chain) and `ROOTCA` (the mesh's trust anchors).
// - grpc-js-xds NACKs SDS secret configs and inline certificates; it takes certificate provider
//   instances from its bootstrap (`certificate_providers.default`, file_watcher), for both the
//   identity and the CA, and checks SANs with `match_subject_alt_names`.
import type { Json } from '../json.ts';
import type { ClientKind } from './proxy.ts';

const T = 'type.googleapis.com/';
export const DOWNSTREAM_TLS = `${T}envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext`;
export const UPSTREAM_TLS = `${T}envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext`;
export const TLS_INSPECTOR = `${T}envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector`;

export const SDS_CLUSTER = 'sds-grpc';
export const IDENTITY_SECRET = 'default';
export const ROOT_SECRET = 'ROOTCA';
export const PROVIDER_INSTANCE = 'default';

function sdsSecret(name: string): Json {
  return {
    name,
    sds_config: {
      api_config_source: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: SDS_CLUSTER } }] },
      resource_api_version: 'V3',
    },
  };
}

/** A SAN written as a URI (a SPIFFE ID) is matched as one, anything else as a DNS name. */
export function typedSanMatchers(sans: readonly string[]): Json[] {
  return sans.map((exact) => ({ san_type: /^[a-z][a-z0-9+.-]*:\/\//i.test(exact) ? 'URI' : 'DNS', matcher: { exact } }));
}

/** Exact URI SAN matchers (SPIFFE IDs), in each client's field. */
function sanMatchers(kind: ClientKind, sans: readonly string[]): Json {
  if (sans.length === 0) return {};
  // gRPC reads match_subject_alt_names (against URI, DNS and IP SANs alike); Envoy's typed form
  // says which SAN type, so a DNS name equal to a SPIFFE ID string cannot pass.
  if (kind === 'grpc') return { match_subject_alt_names: sans.map((exact) => ({ exact })) };
  return { match_typed_subject_alt_names: typedSanMatchers(sans) };
}

/** The mesh identity and trust anchors: SDS for Envoy, provider instance `default` for gRPC. */
export function meshCommonTlsContext(kind: ClientKind, sans: readonly string[], alpn: readonly string[] = []): Json {
  const alpnField = alpn.length ? { alpn_protocols: [...alpn] } : {};
  if (kind === 'grpc') {
    return {
      tls_certificate_provider_instance: { instance_name: PROVIDER_INSTANCE },
      validation_context: { ca_certificate_provider_instance: { instance_name: PROVIDER_INSTANCE }, ...sanMatchers(kind, sans) },
      ...alpnField,
    };
  }
  return {
    tls_certificate_sds_secret_configs: [sdsSecret(IDENTITY_SECRET)],
    combined_validation_context: { default_validation_context: sanMatchers(kind, sans), validation_context_sds_secret_config: sdsSecret(ROOT_SECRET) },
    ...alpnField,
  };
}

export function transportSocket(typedConfig: Json): Json {
  return { name: 'envoy.transport_sockets.tls', typed_config: typedConfig };
}

/** The server side of mesh mTLS: the peer must present a certificate the mesh's CA signed. */
export function meshDownstreamTls(kind: ClientKind, alpn: readonly string[] = []): Json {
  return transportSocket({ '@type': DOWNSTREAM_TLS, common_tls_context: meshCommonTlsContext(kind, [], alpn), require_client_certificate: true });
}
