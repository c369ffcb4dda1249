// A small certificate authority: a self-signed CA and serving certificates it signs. Used by the
// admission webhook (its own serving cert when none is mounted) and by tests that need HTTPS.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

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

async function keyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key as webcrypto.CryptoKey);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

function serial(): string {
  // Positive 16-byte serial: the top bit clear keeps it a positive INTEGER.
  const b = webcrypto.getRandomValues(new Uint8Array(16));
  b[0] &= 0x7f;
  return Buffer.from(b).toString('hex');
}

export async function createCA(commonName: string, validDays = 3650): Promise<CertificateAuthority> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
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
  return { keys, cert, certPem: cert.toString('pem'), keyPem: await keyPem(keys.privateKey) };
}

export interface ServingCertOptions {
  dnsNames?: string[];
  ipAddresses?: string[];
  validDays?: number;
}

/** A TLS server certificate signed by `ca`, for the given DNS names and IP addresses. */
export async function issueServingCert(ca: CertificateAuthority, opts: ServingCertOptions): Promise<KeyAndCert> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const now = Date.now();
  const names = [
    ...(opts.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(opts.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
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
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await keyPem(keys.privateKey) };
}
