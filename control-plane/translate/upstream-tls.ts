// A cluster's TLS towards its endpoints (model/upstream-tls.ts decided which): an
// UpstreamTlsContext transport socket. Envoy gets the mesh identity over SDS and file paths for
// SIMPLE/MUTUAL; proxyless gRPC gets provider instance `default` and only for a DestinationRule's
// ISTIO_MUTUAL: auto mTLS is not sent to it (as in Istio's gRPC generator), since a client whose
// bootstrap has no certificate provider NACKs every such cluster, and a proxyless server under
// PERMISSIVE takes plaintext only. SIMPLE/MUTUAL cannot be said to gRPC (a model warning says so).
import type { Protocol, UpstreamTls } from '../model/types.ts';
import type { Json } from '../json.ts';
import type { ClientKind } from './proxy.ts';
import { meshCommonTlsContext, transportSocket, typedSanMatchers, UPSTREAM_TLS } from './tls-context.ts';
import { credentialCommonTlsContext } from './credential-tls.ts';

/** What Istio's proxies trust for SIMPLE/MUTUAL without caCertificates: the system's roots. */
export const SYSTEM_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

// ALPN as the upstream protocol needs it: a gRPC or HTTP/2 server (grpc-js among them) refuses a
// TLS connection that did not negotiate h2.
function alpnFor(protocol: Protocol): string[] {
  if (protocol === 'GRPC' || protocol === 'HTTP2') return ['h2'];
  return protocol === 'HTTP' ? ['http/1.1'] : [];
}

function fileContext(t: UpstreamTls, alpn: string[]): Json {
  const validation: Json = {
    trusted_ca: { filename: t.caCertificates ?? SYSTEM_CA_BUNDLE },
    ...(t.subjectAltNames.length ? { match_typed_subject_alt_names: typedSanMatchers(t.subjectAltNames) } : {}),
  };
  return {
    // MUTUAL by credentialName at a sidecar: no file paths (they cannot be set with it), no client certificate.
    ...(t.mode === 'MUTUAL' && t.clientCertificate && t.privateKey ? { tls_certificates: [{ certificate_chain: { filename: t.clientCertificate }, private_key: { filename: t.privateKey } }] } : {}),
    ...(t.insecureSkipVerify ? {} : { validation_context: validation }),
    ...(alpn.length ? { alpn_protocols: alpn } : {}),
  };
}

/** `router`: the caller is a gateway, the only proxy that reads `credentialName` (credentials/access.ts). */
export function upstreamTransportSocket(t: UpstreamTls | undefined, kind: ClientKind, protocol: Protocol, router = false): Json {
  if (!t) return {};
  if (kind === 'grpc') {
    if (t.mode !== 'ISTIO_MUTUAL' || t.source !== 'rule') return {};
    return { transport_socket: transportSocket({ '@type': UPSTREAM_TLS, common_tls_context: meshCommonTlsContext('grpc', t.subjectAltNames) }) };
  }
  const alpn = alpnFor(protocol);
  const credential = router && t.mode !== 'ISTIO_MUTUAL' && t.credentialName ? { ...t, credentialName: t.credentialName } : undefined;
  const common = t.mode === 'ISTIO_MUTUAL' ? meshCommonTlsContext('envoy', t.insecureSkipVerify ? [] : t.subjectAltNames, alpn) : credential ? credentialCommonTlsContext(credential, alpn) : fileContext(t, alpn);
  return { transport_socket: transportSocket({ '@type': UPSTREAM_TLS, common_tls_context: common, ...(t.sni ? { sni: t.sni } : {}) }) };
}
