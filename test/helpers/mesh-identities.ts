// Workload certificates for tests: a test CA and, per service account, the files the node agent
// would write (cert-chain.pem, key.pem, root-cert.pem) with the SPIFFE ID as URI SAN, and the gRPC
// bootstrap `certificate_providers` entry (file_watcher) pointing at them.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type CertificateAuthority, createCA, issueServingCert } from '../../control-plane/tls/certs.ts';

export { createCA };

/** Writes a key and a certificate for `spiffeId` signed by `ca` under `dir`; returns the providers entry. */
export async function workloadIdentity(ca: CertificateAuthority, dir: string, spiffeId: string): Promise<Record<string, unknown>> {
  const issued = await issueServingCert(ca, { uris: [spiffeId], clientAuth: true, validDays: 1 });
  await mkdir(dir, { recursive: true });
  const files = { certificate_file: path.join(dir, 'cert-chain.pem'), private_key_file: path.join(dir, 'key.pem'), ca_certificate_file: path.join(dir, 'root-cert.pem') };
  await writeFile(files.certificate_file, issued.certPem);
  await writeFile(files.private_key_file, issued.keyPem);
  await writeFile(files.ca_certificate_file, ca.certPem);
  return { default: { plugin_name: 'file_watcher', config: { ...files, refresh_interval: '600s' } } };
}
