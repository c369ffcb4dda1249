// A TLS credential (a Kubernetes Secret or a credentials directory entry) as Envoy SDS Secret
// resources, named as Istio names them: `kubernetes://<name>` holds the certificate chain and key,
// `kubernetes://<name>-cacert` the CA that verifies peers (from the same Secret's `ca.crt`/`cacert`,
// or from a Secret of its own called `<name>-cacert`). The PEMs are checked here (parsable, key
// matches the certificate) so that a broken Secret is left out with a message naming it, instead
// of reaching Envoy, which would reject the listener or cluster using it.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { Resource } from '../translate/translate.ts';
import { SECRET } from '../translate/type-urls.ts';

export const SECRET_PREFIX = 'kubernetes://';
export const CA_SUFFIX = '-cacert';

/** What a credential source read: a namespace, a name and the data keys that matter (text). */
export interface CredentialInput {
  namespace: string;
  name: string;
  /** Data keys, decoded: `tls.crt`/`tls.key`/`ca.crt` (kubernetes.io/tls) or `cert`/`key`/`cacert` (generic). */
  data: Readonly<Record<string, string>>;
}

/** The resources one credential gives, or why it gives none. */
export type CredentialResult = { resources: Resource[] } | { error: string };

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function pick(data: Readonly<Record<string, string>>, ...keys: string[]): string | undefined {
  for (const k of keys) if (data[k] !== undefined && data[k].trim() !== '') return data[k];
  return undefined;
}

/** Every certificate in a PEM bundle, parsed; throws naming the field if there is none or one is broken. */
function certificates(pem: string, field: string): X509Certificate[] {
  const blocks = pem.match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw new Error(`${field} holds no PEM certificate`);
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch (e) {
      throw new Error(`${field}: certificate ${i + 1} cannot be parsed (${(e as Error).message})`);
    }
  });
}

const bytes = (text: string) => Buffer.from(text, 'utf8').toString('base64');

/** The Secret resources of one credential; errors name the data key, never its content. */
export function credentialResources(c: CredentialInput): CredentialResult {
  const cert = pick(c.data, 'tls.crt', 'cert');
  const key = pick(c.data, 'tls.key', 'key');
  const ca = pick(c.data, 'ca.crt', 'cacert');
  const resources: Resource[] = [];
  try {
    if (cert !== undefined || key !== undefined) {
      if (cert === undefined) return { error: 'has a private key (tls.key or key) but no certificate (tls.crt or cert)' };
      if (key === undefined) return { error: 'has a certificate (tls.crt or cert) but no private key (tls.key or key)' };
      const leaf = certificates(cert, 'tls.crt')[0]!;
      let privateKey;
      try {
        privateKey = createPrivateKey(key);
      } catch {
        throw new Error('tls.key cannot be parsed as a PEM private key');
      }
      if (!leaf.checkPrivateKey(privateKey)) throw new Error('tls.key does not match the certificate in tls.crt');
      resources.push({
        '@type': SECRET,
        name: `${SECRET_PREFIX}${c.name}`,
        tls_certificate: { certificate_chain: { inline_bytes: bytes(cert) }, private_key: { inline_bytes: bytes(key) } },
      });
    }
    if (ca !== undefined) {
      certificates(ca, 'ca.crt');
      // A CA-only Secret called `<name>-cacert` is itself the CA resource of `<name>`.
      const name = cert === undefined && c.name.endsWith(CA_SUFFIX) ? c.name : `${c.name}${CA_SUFFIX}`;
      resources.push({ '@type': SECRET, name: `${SECRET_PREFIX}${name}`, validation_context: { trusted_ca: { inline_bytes: bytes(ca) } } });
    }
  } catch (e) {
    return { error: (e as Error).message };
  }
  return { resources };
}

/** Whether a Secret's data looks like a TLS credential at all (other Secrets are not ours to judge). */
export function isTlsCredential(data: Readonly<Record<string, string>>): boolean {
  return ['tls.crt', 'tls.key', 'cert', 'key', 'ca.crt', 'cacert'].some((k) => data[k] !== undefined);
}

/** A Secret resource as config dumps show it: the private key replaced, as Envoy's own dump does. */
export function redactSecret(json: unknown): unknown {
  if (!json || typeof json !== 'object') return json;
  const r = json as Record<string, unknown>;
  const tls = r['tls_certificate'] ?? r['tlsCertificate'];
  if (!tls || typeof tls !== 'object') return json;
  const field = 'private_key' in (tls as object) ? 'private_key' : 'privateKey';
  return { ...r, [r['tls_certificate'] ? 'tls_certificate' : 'tlsCertificate']: { ...(tls as object), [field]: { inline_string: '[redacted]' } } };
}
