// The webhook's serving certificate: mounted files (reloaded when they change, e.g. a rotated
// Kubernetes Secret, without a restart), or a CA and certificate meshpilot makes for itself.
import fs from 'node:fs';
import path from 'node:path';
import { createCA, issueServingCert } from '../tls/certs.ts';

export interface ServingCert {
  cert: string;
  key: string;
  /** The CA that signed `cert`, when meshpilot made it (its caBundle must then be published). */
  caPem?: string;
}

export function readCertFiles(certFile: string, keyFile: string): ServingCert {
  return { cert: fs.readFileSync(certFile, 'utf8'), key: fs.readFileSync(keyFile, 'utf8') };
}

/** A new CA and a serving cert for the webhook Service's DNS names (and 127.0.0.1 for local use). */
export async function selfSignedCert(service: string, namespace: string, clusterDomain = 'cluster.local'): Promise<ServingCert> {
  const ca = await createCA('meshpilot-webhook-ca');
  const served = await issueServingCert(ca, {
    dnsNames: [`${service}.${namespace}.svc`, `${service}.${namespace}.svc.${clusterDomain}`, 'localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  return { cert: served.certPem, key: served.keyPem, caPem: ca.certPem };
}

/**
 * Calls `onChange` with the new files' contents whenever they change. Kubernetes updates a mounted
 * Secret by swapping a symlink in the directory, so the directories are watched, and the contents
 * also polled every `pollMs` as a backstop. Returns a stop function.
 */
export function watchCertFiles(certFile: string, keyFile: string, onChange: (c: ServingCert) => void, pollMs = 10_000): () => void {
  let last = safeRead(certFile, keyFile);
  const check = () => {
    const now = safeRead(certFile, keyFile);
    if (!now || (last && now.cert === last.cert && now.key === last.key)) return;
    last = now;
    onChange(now);
  };
  const watchers = [...new Set([path.dirname(certFile), path.dirname(keyFile)])].map((d) => fs.watch(d, () => check()));
  const timer = setInterval(check, pollMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    for (const w of watchers) w.close();
  };
}

function safeRead(certFile: string, keyFile: string): ServingCert | undefined {
  try {
    return readCertFiles(certFile, keyFile);
  } catch {
    return undefined; // mid-update; the next event or poll reads it
  }
}
