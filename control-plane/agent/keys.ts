// The workload key (ECDSA P-256, PKCS#8 PEM) and the CSR that asks for its certificate. The key is
// made here and never sent anywhere: only the CSR (public key + requested SPIFFE ID) leaves.
import 'reflect-metadata';
import { createPrivateKey, createPublicKey, webcrypto, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { privateKeyPem } from '../ca/keys.ts';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface WorkloadKey {
  keys: CryptoKeyPair;
  /** PKCS#8 PEM. */
  keyPem: string;
}

export async function generateKey(): Promise<WorkloadKey> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  return { keys, keyPem: await privateKeyPem(keys.privateKey) };
}

/** A key read back from key.pem; throws unless it is a P-256 EC key. */
export async function importKey(keyPem: string): Promise<WorkloadKey> {
  const priv = createPrivateKey(keyPem);
  if (priv.asymmetricKeyType !== 'ec' || priv.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new Error('key.pem is not an ECDSA P-256 key');
  const pkcs8 = priv.export({ type: 'pkcs8', format: 'der' });
  const spki = createPublicKey(priv).export({ type: 'spki', format: 'der' });
  const privateKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, ALG, true, ['sign']);
  const publicKey = await webcrypto.subtle.importKey('spki', spki, ALG, true, ['verify']);
  return { keys: { privateKey, publicKey } as unknown as CryptoKeyPair, keyPem: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY') };
}

/** PKCS#10 request, PEM, naming the identity only as a URI SAN (the CA reads it from there). */
export async function createCsr(key: WorkloadKey, spiffeId: string): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys: key.keys,
    signingAlgorithm: ALG,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }])],
  });
  return csr.toString('pem');
}

/** Whether this certificate (PEM) is for this key. */
export function certMatchesKey(certPem: string, keyPem: string): boolean {
  try {
    return new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}
