// The server side of a Gateway server's TLS (DownstreamTlsContext). Certificates come, as in Istio:
// - credentialName: SDS over the ADS stream, secret `kubernetes://<name>` (key and chain) and, for
//   MUTUAL / OPTIONAL_MUTUAL, `kubernetes://<name>-cacert` (the client CA);
// - serverCertificate / privateKey / caCertificates: files on the gateway's disk;
// - ISTIO_MUTUAL: the mesh identity from the node agent (SDS `default` / `ROOTCA`), as a
//   sidecar's inbound mTLS.
import type { GatewayServerTls } from '../model/types.ts';
import type { Json } from '../json.ts';
import { ADS_SOURCE } from './resolution.ts';
import { DOWNSTREAM_TLS, meshCommonTlsContext, transportSocket, typedSanMatchers } from './tls-context.ts';

export const CREDENTIAL_PREFIX = 'kubernetes://';

/** The SDS name of a credential (`kubernetes://<name>`), and of its CA (`...-cacert`). */
export function credentialSecret(name: string, ca = false): string {
  return `${CREDENTIAL_PREFIX}${name}${ca ? '-cacert' : ''}`;
}

function adsSecret(name: string): Json {
  return { name, sds_config: ADS_SOURCE };
}

// Istio's enum names -> Envoy's.
const VERSIONS: Record<string, string> = { TLS_AUTO: 'TLS_AUTO', TLSV1_0: 'TLSv1_0', TLSV1_1: 'TLSv1_1', TLSV1_2: 'TLSv1_2', TLSV1_3: 'TLSv1_3' };

function tlsParams(tls: GatewayServerTls): Json {
  const p: Json = {
    ...(tls.minProtocolVersion ? { tls_minimum_protocol_version: VERSIONS[tls.minProtocolVersion] } : {}),
    ...(tls.maxProtocolVersion ? { tls_maximum_protocol_version: VERSIONS[tls.maxProtocolVersion] } : {}),
    ...(tls.cipherSuites.length ? { cipher_suites: [...tls.cipherSuites] } : {}),
  };
  return Object.keys(p).length ? { tls_params: p } : {};
}

/** The transport socket of a terminating server's filter chain. `alpn`: what the HCM speaks. */
export function gatewayDownstreamTls(tls: GatewayServerTls, alpn: readonly string[]): Json {
  const alpnField = alpn.length ? { alpn_protocols: [...alpn] } : {};
  if (tls.mode === 'ISTIO_MUTUAL') {
    return transportSocket({ '@type': DOWNSTREAM_TLS, common_tls_context: { ...meshCommonTlsContext('envoy', tls.subjectAltNames), ...alpnField, ...tlsParams(tls) }, require_client_certificate: true });
  }
  const mutual = tls.mode === 'MUTUAL' || tls.mode === 'OPTIONAL_MUTUAL';
  const sans = tls.subjectAltNames.length ? { match_typed_subject_alt_names: typedSanMatchers(tls.subjectAltNames) } : {};
  const common: Json = { ...alpnField, ...tlsParams(tls) };
  if (tls.credentialName) {
    common.tls_certificate_sds_secret_configs = [adsSecret(credentialSecret(tls.credentialName))];
    if (mutual) common.combined_validation_context = { default_validation_context: sans, validation_context_sds_secret_config: adsSecret(credentialSecret(tls.credentialName, true)) };
  } else {
    common.tls_certificates = [{ certificate_chain: { filename: tls.serverCertificate }, private_key: { filename: tls.privateKey } }];
    if (mutual) common.validation_context = { trusted_ca: { filename: tls.caCertificates }, ...sans };
  }
  return transportSocket({ '@type': DOWNSTREAM_TLS, common_tls_context: common, ...(tls.mode === 'MUTUAL' ? { require_client_certificate: true } : {}) });
}
