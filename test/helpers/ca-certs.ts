// Test-side certificate tools: a workload's key and CSR, chain verification with node:crypto (an
// implementation independent of the CA's @peculiar/x509), and an operator's plug-in CA directory.
import 'reflect-metadata';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { createCA } from '../../control-plane/tls/certs.ts';
import { newKeyPair, privateKeyPem, randomSerial } from '../../control-plane/ca/keys.ts';

export interface WorkloadKey {
  keys: CryptoKeyPair;
  keyPem: string;
  csrPem: string;
}

/** A P-256 key and a CSR asking for these URI SANs (and these DNS names, if any). */
export async function workloadCsr(uris: string[], dnsNames: string[] = []): Promise<WorkloadKey> {
  const keys = await newKeyPair();
  const names = [...uris.map((value) => ({ type: 'url' as const, value })), ...dnsNames.map((value) => ({ type: 'dns' as const, value }))];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
    extensions: names.length ? [new x509.SubjectAlternativeNameExtension(names)] : [],
  });
  return { keys, keyPem: await privateKeyPem(keys.privateKey), csrPem: csr.toString('pem') };
}

/** Every certificate of a PEM bundle (node:crypto reads only the first). */
export function pemCerts(bundle: string): X509Certificate[] {
  return (bundle.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []).map((p) => new X509Certificate(p));
}

/** True when each certificate is signed by the next and the last by one of `roots` (PEM bundles). */
export function chainVerifies(chain: string[], roots: string[]): boolean {
  const certs = chain.map((p) => new X509Certificate(p));
  for (let i = 0; i + 1 < certs.length; i++) if (!certs[i]!.verify(certs[i + 1]!.publicKey)) return false;
  const last = certs[certs.length - 1]!;
  const anchors = roots.flatMap(pemCerts);
  return anchors.some((r) => r.raw.equals(last.raw) ? r.verify(r.publicKey) : last.verify(r.publicKey));
}

/** Writes Istio's plug-in layout (an intermediate signed by a fresh root) into `dir`. */
export async function writePluginCa(dir: string): Promise<{ rootPem: string; intermediatePem: string }> {
  const root = await createCA('operator root');
  const keys = await newKeyPair();
  const inter = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: 'O=operator, CN=operator intermediate',
    issuer: root.cert.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 30 * 24 * 3600 * 1000),
    publicKey: keys.publicKey,
    signingKey: root.keys.privateKey,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(root.cert),
    ],
  });
  mkdirSync(dir, { recursive: true });
  const intermediatePem = inter.toString('pem');
  writeFileSync(join(dir, 'ca-cert.pem'), intermediatePem);
  writeFileSync(join(dir, 'ca-key.pem'), await privateKeyPem(keys.privateKey));
  writeFileSync(join(dir, 'root-cert.pem'), root.certPem);
  writeFileSync(join(dir, 'cert-chain.pem'), `${intermediatePem}\n${root.certPem}`);
  return { rootPem: root.certPem, intermediatePem };
}
