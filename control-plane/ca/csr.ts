// What the CA reads from a PKCS#10 request: the public key (a key type we sign for), proof that
// the requester holds its private key (the request's signature, checked by node:crypto over the
// exact certificationRequestInfo bytes), and the URI SANs it asks for. Nothing else of the request
// reaches the certificate. The DER is walked with der.ts (bounds-checked; OpenSSL parses the key
// and checks the signature); @peculiar/x509 did the same in about 1 ms per request, this in tens
// of microseconds (bench/ca.ts).
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { children, top, type Tlv } from './der.ts';

export class CsrError extends Error {}

export interface ParsedCsr {
  /** DER SubjectPublicKeyInfo, byte for byte as requested. */
  spki: Buffer;
  publicKey: KeyObject;
  uris: string[];
}

// Signature algorithms a CSR may use (OID contents -> digest).
const SIG_ALGS: Record<string, string> = {
  '2a8648ce3d040302': 'sha256', // ecdsa-with-SHA256
  '2a8648ce3d040303': 'sha384',
  '2a8648ce3d040304': 'sha512',
  '2a864886f70d01010b': 'sha256', // sha256WithRSAEncryption
  '2a864886f70d01010c': 'sha384',
  '2a864886f70d01010d': 'sha512',
};
const EXTENSION_REQUEST = '2a864886f70d01090e';
const SAN = '551d11';
const OID = 0x06;

function expect(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t || t.tag !== tag) throw new CsrError(`csr: malformed ${what}`);
  return t;
}

function derOf(pem: string): Buffer {
  const m = /-----BEGIN (NEW )?CERTIFICATE REQUEST-----([\s\S]*?)-----END (NEW )?CERTIFICATE REQUEST-----/.exec(pem ?? '');
  if (!m) throw new CsrError('csr is not a PEM certificate request');
  return Buffer.from(m[2]!.replace(/\s/g, ''), 'base64');
}

/** The URIs among the SANs that the request's extensionRequest attribute asks for. */
function requestedUris(attributes: Tlv | undefined): string[] {
  const uris: string[] = [];
  for (const attr of attributes ? children(attributes.body) : []) {
    const [oid, values] = children(expect(attr, 0x30, 'attribute').body);
    if (expect(oid, OID, 'attribute type').body.toString('hex') !== EXTENSION_REQUEST) continue;
    for (const exts of children(expect(values, 0x31, 'attribute values').body)) {
      for (const ext of children(expect(exts, 0x30, 'extensions').body)) {
        const parts = children(expect(ext, 0x30, 'extension').body);
        if (expect(parts[0], OID, 'extension id').body.toString('hex') !== SAN) continue;
        const value = expect(parts[parts.length - 1], 0x04, 'extension value');
        for (const name of children(expect(top(value.body), 0x30, 'subjectAltName').body)) {
          if (name.tag === 0x86) uris.push(name.body.toString('latin1')); // [6] uniformResourceIdentifier
        }
      }
    }
  }
  return uris;
}

export async function parseCsr(pem: string): Promise<ParsedCsr> {
  try {
    const [info, alg, sig] = children(expect(top(derOf(pem)), 0x30, 'request').body);
    const [version, , spki, attributes] = children(expect(info, 0x30, 'certificationRequestInfo').body);
    if (expect(version, 0x02, 'version').body.toString('hex') !== '00') throw new CsrError('csr: unsupported version');
    expect(spki, 0x30, 'subjectPublicKeyInfo');
    if (attributes && attributes.tag !== 0xa0) throw new CsrError('csr: malformed attributes');
    const hash = SIG_ALGS[expect(children(expect(alg, 0x30, 'signature algorithm').body)[0], OID, 'signature algorithm').body.toString('hex')];
    if (!hash) throw new CsrError('csr: unsupported signature algorithm');
    const bits = expect(sig, 0x03, 'signature');
    if (bits.body[0] !== 0) throw new CsrError('csr: malformed signature');
    let publicKey: KeyObject;
    try {
      publicKey = createPublicKey({ key: spki!.full, format: 'der', type: 'spki' });
    } catch (e) {
      throw new CsrError(`csr public key cannot be read: ${(e as Error).message}`);
    }
    const d = publicKey.asymmetricKeyDetails ?? {};
    const okKey = publicKey.asymmetricKeyType === 'ec' ? d.namedCurve === 'prime256v1' || d.namedCurve === 'secp384r1' : publicKey.asymmetricKeyType === 'rsa' && (d.modulusLength ?? 0) >= 2048;
    if (!okKey) throw new CsrError(`csr key must be ECDSA P-256/P-384 or RSA >= 2048 bits (got ${publicKey.asymmetricKeyType} ${d.namedCurve ?? d.modulusLength ?? ''})`);
    // Proof of possession: the request is signed by the key it asks a certificate for.
    let ok = false;
    try {
      ok = verify(hash, info!.full, publicKey, bits.body.subarray(1));
    } catch {
      ok = false;
    }
    if (!ok) throw new CsrError('csr signature does not verify');
    return { spki: spki!.full, publicKey, uris: requestedUris(attributes) };
  } catch (e) {
    if (e instanceof CsrError) throw e;
    throw new CsrError(`csr cannot be parsed: ${(e as Error).message}`);
  }
}
