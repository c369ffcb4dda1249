// DestinationRule `tls.credentialName` at a gateway (SIMPLE/MUTUAL origination): the client
// certificate and the CA come over the proxy's own ADS stream as SDS secrets, with Istio's names:
// `kubernetes://<name>` (certificate and key, MUTUAL only) and `kubernetes://<name>-cacert` (the
// CA that verifies the server). meshpilot serves them from the credential store (credentials/).
import type { Json } from '../json.ts';
import type { UpstreamTls } from '../model/types.ts';
import { CA_SUFFIX, SECRET_PREFIX } from '../credentials/secret-resources.ts';
import { typedSanMatchers } from './tls-context.ts';

/** An SDS secret fetched over ADS, as the gateway listeners' credentialName secrets are too. */
export function adsSecretConfig(name: string): Json {
  return { name, sds_config: { ads: {}, resource_api_version: 'V3' } };
}

/** The common_tls_context of an upstream TLS context whose certificates come from `t.credentialName`. */
export function credentialCommonTlsContext(t: UpstreamTls & { credentialName: string }, alpn: readonly string[]): Json {
  const secret = `${SECRET_PREFIX}${t.credentialName}`;
  const sans = t.subjectAltNames.length ? { match_typed_subject_alt_names: typedSanMatchers(t.subjectAltNames) } : {};
  return {
    ...(t.mode === 'MUTUAL' ? { tls_certificate_sds_secret_configs: [adsSecretConfig(secret)] } : {}),
    ...(t.insecureSkipVerify ? {} : { combined_validation_context: { default_validation_context: sans, validation_context_sds_secret_config: adsSecretConfig(`${secret}${CA_SUFFIX}`) } }),
    ...(alpn.length ? { alpn_protocols: [...alpn] } : {}),
  };
}
