// A small certificate authority: a self-signed CA and serving certificates it signs. Used by the
// admission webhook (its own serving cert when none is mounted) and by tests that need HTTPS.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { privateKeyPem, randomSerial } from '../ca/keys.ts';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 24 * 60 * 60 * 1000;

export interface KeyAndCert {
  /** PEM, one certificate. */
  certPem: string;
  /** PEM, PKCS#8. */
  keyPem: string;
}

export interface CertificateAuthority extends KeyAndCert {
  keys: CryptoKeyPair;
  cert: x509.X509Certificate;
}

export async function createCA(commonName: string, validDays = 3650): Promise<CertificateAuthority> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${commonName}`,
    notBefore: new Date(now - 5 * 60 * 1000),
    notAfter: new Date(now + validDays * DAY),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { keys, cert, certPem: cert.toString('pem'), keyPem: await privateKeyPem(keys.privateKey) };
}

export interface ServingCertOptions {
  dnsNames?: string[];
  ipAddresses?: string[];
  /** URI SANs (a workload's SPIFFE ID). */
  uris?: string[];
  /** Also valid as a TLS client certificate (mTLS peers). */
  clientAuth?: boolean;
  validDays?: number;
}

/** A TLS server (with `clientAuth`, also client) certificate signed by `ca`, for the given names. */
export async function issueServingCert(ca: CertificateAuthority, opts: ServingCertOptions): Promise<KeyAndCert> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const now = Date.now();
  const names = [
    ...(opts.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(opts.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
    ...(opts.uris ?? []).map((value) => ({ type: 'url' as const, value })),
  ];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${opts.dnsNames?.[0] ?? opts.ipAddresses?.[0] ?? 'meshpilot'}`,
    issuer: ca.cert.subject,
    notBefore: new Date(now - 5 * 60 * 1000),
    notAfter: new Date(now + (opts.validDays ?? 365) * DAY),
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension(opts.clientAuth ? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth] : [x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await privateKeyPem(keys.privateKey) };
}
