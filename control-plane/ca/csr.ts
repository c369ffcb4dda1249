// What the CA reads from a PKCS#10 request: the public key (checked: a key type we sign for) and
// the URI SANs it asks for. Nothing else of the request reaches the certificate.
import 'reflect-metadata';
import { createPublicKey } from 'node:crypto';
import * as x509 from '@peculiar/x509';

export class CsrError extends Error {}

export interface ParsedCsr {
  publicKey: x509.PublicKey;
  uris: string[];
}

export async function parseCsr(pem: string): Promise<ParsedCsr> {
  if (!pem || !pem.includes('CERTIFICATE REQUEST')) throw new CsrError('csr is not a PEM certificate request');
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(pem);
  } catch (e) {
    throw new CsrError(`csr cannot be parsed: ${(e as Error).message}`);
  }
  // Proof of possession: the request is signed by the key it asks a certificate for.
  let ok = false;
  try {
    ok = await csr.verify();
  } catch (e) {
    throw new CsrError(`csr signature cannot be checked: ${(e as Error).message}`);
  }
  if (!ok) throw new CsrError('csr signature does not verify');
  const key = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
  const d = key.asymmetricKeyDetails ?? {};
  const okKey = key.asymmetricKeyType === 'ec' ? d.namedCurve === 'prime256v1' || d.namedCurve === 'secp384r1' : key.asymmetricKeyType === 'rsa' && (d.modulusLength ?? 0) >= 2048;
  if (!okKey) throw new CsrError(`csr key must be ECDSA P-256/P-384 or RSA >= 2048 bits (got ${key.asymmetricKeyType} ${d.namedCurve ?? d.modulusLength ?? ''})`);
  const uris: string[] = [];
  for (const ext of csr.extensions) {
    if (!(ext instanceof x509.SubjectAlternativeNameExtension)) continue;
    for (const n of ext.names.items) if (n.type === 'url') uris.push(n.value);
  }
  return { publicKey: csr.publicKey, uris };
}
