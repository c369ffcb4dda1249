// Workload certificates for tests: a test CA and, per service account, the files the node agent
// would write (cert-chain.pem, key.pem, root-cert.pem) with the SPIFFE ID as URI SAN, and the gRPC
// bootstrap `certificate_providers` entry (file_watcher) pointing at them.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { type CertificateAuthority, createCA } from '../../control-plane/tls/certs.ts';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export { createCA };

/** Writes a key and a certificate for `spiffeId` signed by `ca` under `dir`; returns the providers entry. */
export async function workloadIdentity(ca: CertificateAuthority, dir: string, spiffeId: string): Promise<Record<string, unknown>> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString('hex').replace(/^./, '1'),
    subject: 'CN=workload',
    issuer: ca.cert.subject,
    notBefore: new Date(now - 5 * 60 * 1000),
    notAfter: new Date(now + 24 * 60 * 60 * 1000),
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }], true),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
    ],
  });
  const der = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey as webcrypto.CryptoKey);
  await mkdir(dir, { recursive: true });
  const files = { certificate_file: path.join(dir, 'cert-chain.pem'), private_key_file: path.join(dir, 'key.pem'), ca_certificate_file: path.join(dir, 'root-cert.pem') };
  await writeFile(files.certificate_file, cert.toString('pem'));
  await writeFile(files.private_key_file, x509.PemConverter.encode(der, 'PRIVATE KEY'));
  await writeFile(files.ca_certificate_file, ca.certPem);
  return { default: { plugin_name: 'file_watcher', config: { ...files, refresh_interval: '600s' } } };
}
