// Keys and certificates in PEM: import a private key whatever its PEM form (PKCS#8, SEC1, PKCS#1)
// into WebCrypto for @peculiar/x509, pick the signature algorithm that goes with it, split bundles.
import 'reflect-metadata';
import { createPrivateKey, webcrypto, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export const P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;

export interface SigningKey {
  key: CryptoKey;
  /** What certificates signed with this key use (x509 `signingAlgorithm`). */
  algorithm: Algorithm | EcdsaParams | RsaHashedImportParams;
  /** The same key for node:crypto (leaf-cert.ts), with its digest and DER AlgorithmIdentifier. */
  keyObject: KeyObject;
  hash: 'sha256' | 'sha384';
  algorithmDer: Buffer;
}

const CURVES: Record<string, { curve: string; hash: string; node: 'sha256' | 'sha384'; der: string }> = {
  prime256v1: { curve: 'P-256', hash: 'SHA-256', node: 'sha256', der: '300a06082a8648ce3d040302' },
  secp384r1: { curve: 'P-384', hash: 'SHA-384', node: 'sha384', der: '300a06082a8648ce3d040303' },
};
const RSA_SHA256_DER = '300d06092a864886f70d01010b0500';

/** A private key from PEM (an operator's plug-in CA key may be in any of the usual forms). */
export async function importPrivateKey(pem: string): Promise<SigningKey> {
  const ko = createPrivateKey(pem);
  const der = ko.export({ type: 'pkcs8', format: 'der' });
  if (ko.asymmetricKeyType === 'ec') {
    const c = CURVES[ko.asymmetricKeyDetails?.namedCurve ?? ''];
    if (!c) throw new Error(`unsupported EC curve ${ko.asymmetricKeyDetails?.namedCurve}`);
    const key = await webcrypto.subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve: c.curve }, false, ['sign']);
    return { key: key as unknown as CryptoKey, algorithm: { name: 'ECDSA', hash: c.hash } as EcdsaParams, keyObject: ko, hash: c.node, algorithmDer: Buffer.from(c.der, 'hex') };
  }
  if (ko.asymmetricKeyType === 'rsa') {
    const algorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    const key = await webcrypto.subtle.importKey('pkcs8', der, algorithm, false, ['sign']);
    return { key: key as unknown as CryptoKey, algorithm, keyObject: ko, hash: 'sha256', algorithmDer: Buffer.from(RSA_SHA256_DER, 'hex') };
  }
  throw new Error(`unsupported key type ${ko.asymmetricKeyType}`);
}

/** A fresh ECDSA P-256 key pair, exportable (so it can be written out). */
export async function newKeyPair(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(P256, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
}

export async function privateKeyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key as webcrypto.CryptoKey);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

/** Every certificate in a PEM bundle, in order. */
export function splitPem(pem: string): x509.X509Certificate[] {
  return x509.PemConverter.decode(pem).map((der) => new x509.X509Certificate(der));
}

export function sameCert(a: x509.X509Certificate, b: x509.X509Certificate): boolean {
  return Buffer.from(a.rawData).equals(Buffer.from(b.rawData));
}

/** A positive random 16-byte serial (top bit clear keeps the INTEGER positive). */
export function randomSerial(): string {
  const b = webcrypto.getRandomValues(new Uint8Array(16));
  b[0]! &= 0x7f;
  b[0]! |= 0x01; // never a leading zero byte, so the hex form is the serial as certificates print it
  return Buffer.from(b).toString('hex');
}
