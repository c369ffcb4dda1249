// What the CA answered, split into what each consumer needs: the chain a workload presents (leaf +
// intermediates) and the trust bundle (roots) it checks peers against.
import { X509Certificate } from 'node:crypto';

export interface IssuedCert {
  /** Leaf first, then intermediates, PEM, newline-joined. */
  chainPem: string;
  /** Trust bundle: a list so roots from elsewhere (a second trust domain, a CA rotation) can join. */
  roots: string[];
  notBefore: Date;
  notAfter: Date;
  serial: string;
  /** URI SANs of the leaf. */
  uris: string[];
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Splits PEM text that may hold several certificates. */
export function splitPem(text: string): string[] {
  return text.match(PEM_CERT) ?? [];
}

/** One PEM block as every file and bundle here holds it: trimmed, one trailing newline. */
export const normalize = (pem: string) => `${pem.trim()}\n`;

export function bundleText(roots: readonly string[]): string {
  return roots.map(normalize).join('');
}

/**
 * `certChain` as the signing API returns it: [leaf, ...intermediates, roots]. The last entry holds
 * every root the mesh trusts (several PEM blocks during a root rotation, as Istio's CA sends them);
 * earlier entries may also hold several blocks each.
 */
export function parseIssued(certChain: readonly string[]): IssuedCert {
  const roots = splitPem(certChain[certChain.length - 1] ?? '');
  const certs = certChain.slice(0, -1).flatMap(splitPem);
  if (certs.length < 1 || roots.length < 1) throw new Error(`the CA returned ${certChain.length} entr${certChain.length === 1 ? 'y' : 'ies'}; expected the leaf and, last, the root(s)`);
  const leafPem = certs[0]!;
  const leaf = new X509Certificate(leafPem);
  return {
    chainPem: certs.map(normalize).join(''),
    roots: roots.map(normalize),
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    serial: leaf.serialNumber,
    uris: urisOf(leaf),
  };
}

/** Reads a chain file back (an agent restarting over its own files). */
export function parseChainFile(chainPem: string, bundlePem: string): IssuedCert {
  const certs = splitPem(chainPem);
  const roots = splitPem(bundlePem).map(normalize);
  if (certs.length === 0 || roots.length === 0) throw new Error('no certificate in the chain or bundle file');
  const leaf = new X509Certificate(certs[0]!);
  return {
    chainPem: certs.map(normalize).join(''),
    roots,
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    serial: leaf.serialNumber,
    uris: urisOf(leaf),
  };
}

function urisOf(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '').split(', ').filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));
}
