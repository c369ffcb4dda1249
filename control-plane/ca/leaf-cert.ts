// Workload certificates, built directly as DER and signed with node:crypto. They all have one
// shape (RFC 5280): v3, empty subject, the CSR's public key, critical basicConstraints CA:false,
// critical keyUsage digitalSignature+keyEncipherment, EKU serverAuth+clientAuth, one critical URI
// SAN, the issuer's key identifier. @peculiar/x509 built the same certificate in about 2.5 ms
// (generic ASN.1 schemas, async WebCrypto); this takes tens of microseconds, which is what lets the
// CA meet its throughput target (bench/ca.ts). Tests read every field back with node:crypto's parser.
import { sign, type KeyObject } from 'node:crypto';
import { children, seq, time, tlv, top } from './der.ts';

// Fixed extensions (DER of each Extension).
const BASIC_CONSTRAINTS_CA_FALSE = Buffer.from('300c0603551d130101ff04023000', 'hex');
const KEY_USAGE_SIG_ENC = Buffer.from('300e0603551d0f0101ff0404030205a0', 'hex');
const EKU_SERVER_CLIENT = Buffer.from('301d0603551d250416301406082b0601050507030106082b06010505070302', 'hex');
const SAN_OID = Buffer.from('0603551d11', 'hex');
const CRITICAL = Buffer.from('0101ff', 'hex');
const VERSION_3 = Buffer.from('a003020102', 'hex');

export interface LeafSigner {
  key: KeyObject;
  /** node:crypto digest name for `sign`. */
  hash: 'sha256' | 'sha384';
  /** DER AlgorithmIdentifier of the signature. */
  algorithm: Buffer;
  /** DER Name of the signing certificate's subject (the leaf's issuer), byte for byte. */
  issuer: Buffer;
  /** DER of the authorityKeyIdentifier Extension. */
  aki: Buffer;
}

/** The DER subject Name of a certificate (tbsCertificate field 6, after version/serial/alg/issuer/validity). */
export function subjectOf(certDer: Buffer): Buffer {
  const tbs = children(top(certDer).body)[0]!;
  const fields = children(tbs.body);
  const offset = fields[0]!.tag === 0xa0 ? 1 : 0;
  return fields[offset + 4]!.full;
}

export function buildLeaf(s: LeafSigner, p: { serialHex: string; spki: Buffer; uri: string; notBefore: Date; notAfter: Date }): Buffer {
  const uri = tlv(0x86, Buffer.from(p.uri, 'latin1'));
  const san = seq(SAN_OID, CRITICAL, tlv(0x04, seq(uri)));
  const tbs = seq(
    VERSION_3,
    tlv(0x02, Buffer.from(p.serialHex, 'hex')),
    s.algorithm,
    s.issuer,
    seq(time(p.notBefore), time(p.notAfter)),
    seq(), // empty subject: the identity is the SAN
    p.spki,
    tlv(0xa3, seq(BASIC_CONSTRAINTS_CA_FALSE, KEY_USAGE_SIG_ENC, EKU_SERVER_CLIENT, san, s.aki)),
  );
  const signature = sign(s.hash, tbs, s.key); // ECDSA: DER-encoded (r, s), as X.509 wants
  return seq(tbs, s.algorithm, tlv(0x03, Buffer.from([0]), signature));
}
