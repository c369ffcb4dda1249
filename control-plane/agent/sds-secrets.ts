// The two secrets Envoy asks the agent for, as checked Envoy resources: `default` (the workload's
// chain and key) and `ROOTCA` (the trust bundle). Translated TLS contexts name them via SDS.
import { checkAndEncode, type ResourceJson } from '../envoy/check.ts';
import { bundleText } from './chain.ts';
import type { CurrentCert } from './cert-agent.ts';

export const SECRET_TYPE_URL = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';
export const CERT_SECRET = 'default';
export const ROOT_SECRET = 'ROOTCA';

export function secretJson(name: string, cur: CurrentCert): ResourceJson | undefined {
  if (name === CERT_SECRET) {
    return {
      '@type': SECRET_TYPE_URL,
      name,
      tls_certificate: { certificate_chain: { inline_string: cur.cert.chainPem }, private_key: { inline_string: cur.keyPem } },
    };
  }
  if (name === ROOT_SECRET) {
    return { '@type': SECRET_TYPE_URL, name, validation_context: { trusted_ca: { inline_string: bundleText(cur.cert.roots) } } };
  }
  return undefined;
}

export interface EncodedSecret {
  name: string;
  any: { type_url: string; value: Buffer };
}

/** The secrets for one certificate, each checked against Envoy's protos before it can be sent. */
export function encodeSecrets(cur: CurrentCert): Map<string, EncodedSecret> {
  const out = new Map<string, EncodedSecret>();
  for (const name of [CERT_SECRET, ROOT_SECRET]) {
    const r = checkAndEncode(secretJson(name, cur)!);
    if ('violations' in r) throw new Error(`secret ${name} rejected: ${r.violations.map((v) => `${v.path}: ${v.message}`).join('; ')}`);
    out.set(name, { name, any: r.any });
  }
  return out;
}
