// The plug-in CA layout operators already keep for Istio: an intermediate signed by their own root.
//   ca-cert.pem     the certificate meshpilot signs with (an intermediate)
//   ca-key.pem      its key (any PEM form)
//   root-cert.pem   the root every workload trusts
//   cert-chain.pem  ca-cert and any intermediates up to the root (optional; ca-cert.pem alone if absent)
import 'reflect-metadata';
import { X509Certificate as NodeCert, createPublicKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as x509 from '@peculiar/x509';
import { importPrivateKey, sameCert, splitPem, type SigningKey } from './keys.ts';

export const PLUGIN_FILES = { cert: 'ca-cert.pem', key: 'ca-key.pem', root: 'root-cert.pem', chain: 'cert-chain.pem' } as const;

export interface PluginCa {
  cert: x509.X509Certificate;
  key: SigningKey;
  /** Between the signing certificate and the root (both excluded), in order. */
  intermediates: x509.X509Certificate[];
  roots: x509.X509Certificate[];
}

export function isPluginLayout(dir: string): boolean {
  return existsSync(join(dir, PLUGIN_FILES.cert)) && existsSync(join(dir, PLUGIN_FILES.key));
}

export async function loadPluginCa(dir: string): Promise<PluginCa> {
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  if (!existsSync(join(dir, PLUGIN_FILES.root))) throw new Error(`${dir}: plug-in CA needs ${PLUGIN_FILES.root} next to ${PLUGIN_FILES.cert}`);
  return parsePluginCa(dir, {
    cert: read(PLUGIN_FILES.cert),
    key: read(PLUGIN_FILES.key),
    root: read(PLUGIN_FILES.root),
    ...(existsSync(join(dir, PLUGIN_FILES.chain)) ? { chain: read(PLUGIN_FILES.chain) } : {}),
  });
}

/** The plug-in CA from its four texts (files or a Secret's keys); `source` names where they came from in errors. */
export async function parsePluginCa(source: string, t: { cert: string; key: string; root: string; chain?: string }): Promise<PluginCa> {
  const certPem = t.cert;
  const keyPem = t.key;
  const [cert] = splitPem(certPem);
  if (!cert) throw new Error(`${source}/${PLUGIN_FILES.cert} holds no certificate`);
  if (!new NodeCert(certPem).publicKey.export({ type: 'spki', format: 'der' }).equals(createPublicKey(keyPem).export({ type: 'spki', format: 'der' }))) {
    throw new Error(`${source}: ${PLUGIN_FILES.key} is not the key of ${PLUGIN_FILES.cert}`);
  }
  const roots = splitPem(t.root);
  if (roots.length === 0) throw new Error(`${source}/${PLUGIN_FILES.root} holds no certificate`);
  const chain = t.chain !== undefined ? splitPem(t.chain) : [cert];
  const intermediates = chain.filter((c) => !sameCert(c, cert) && !roots.some((r) => sameCert(r, c)));
  // Refuse a layout that does not chain up: every workload would get certificates nobody trusts.
  const path = [cert, ...intermediates];
  for (let i = 0; i < path.length; i++) {
    const child = new NodeCert(Buffer.from(path[i]!.rawData));
    const parents = i + 1 < path.length ? [path[i + 1]!] : roots;
    if (!parents.some((p) => child.verify(new NodeCert(Buffer.from(p.rawData)).publicKey))) {
      throw new Error(`${source}: ${path[i]!.subject} is not signed by ${i + 1 < path.length ? 'the next certificate in cert-chain.pem' : 'any certificate in root-cert.pem'}`);
    }
  }
  return { cert, key: await importPrivateKey(keyPem), intermediates, roots };
}
