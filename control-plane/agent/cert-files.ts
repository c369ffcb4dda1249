// The three files in --out-dir, each replaced atomically (temp file in the same directory, then
// rename), so a reader opens either the old or the new file, never half of one. The key stays the
// same across renewals within the agent's life, so a reader that reads the chain and the key at
// different moments still gets a matching pair (the file_watcher of gRPC does read them separately).
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { bundleText, parseChainFile, type IssuedCert } from './chain.ts';
import { certMatchesKey } from './keys.ts';

export const CERT_CHAIN_FILE = 'cert-chain.pem';
export const KEY_FILE = 'key.pem';
export const ROOT_CERT_FILE = 'root-cert.pem';
// Owner and group: a proxyless gRPC app reads the key too, through a shared group (fsGroup), never others.
export const KEY_MODE = 0o640;

export interface CertFilePaths {
  certificateFile: string;
  privateKeyFile: string;
  caCertificateFile: string;
}

export function certFilePaths(outDir: string): CertFilePaths {
  return {
    certificateFile: path.join(outDir, CERT_CHAIN_FILE),
    privateKeyFile: path.join(outDir, KEY_FILE),
    caCertificateFile: path.join(outDir, ROOT_CERT_FILE),
  };
}

/** Writes `text` to `file` by rename; `mode` applies from creation (the key is never world-readable). */
export function writeFileAtomic(file: string, text: string, mode = 0o644): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = fs.openSync(tmp, 'wx', mode);
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * Order matters for readers: the key first (it only changes when there is no chain for it yet, see
 * writeKey), then the bundle (a new root must be trusted before a chain under it is shown), then the chain.
 */
export function writeCert(outDir: string, cert: IssuedCert): void {
  const p = certFilePaths(outDir);
  writeFileAtomic(p.caCertificateFile, bundleText(cert.roots));
  writeFileAtomic(p.certificateFile, cert.chainPem);
}

/** A new key: the chain of the old one goes first, so no reader ever pairs the new key with it. */
export function writeKey(outDir: string, keyPem: string): void {
  const p = certFilePaths(outDir);
  fs.rmSync(p.certificateFile, { force: true });
  writeFileAtomic(p.privateKeyFile, keyPem, KEY_MODE);
}

export interface ExistingFiles {
  keyPem: string;
  cert?: IssuedCert;
}

/** What an earlier run of the agent left (the out-dir outlives a container restart), if usable. */
export function readExisting(outDir: string, now = Date.now()): ExistingFiles | undefined {
  const p = certFilePaths(outDir);
  let keyPem: string;
  try {
    keyPem = fs.readFileSync(p.privateKeyFile, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const chain = fs.readFileSync(p.certificateFile, 'utf8');
    const cert = parseChainFile(chain, fs.readFileSync(p.caCertificateFile, 'utf8'));
    if (cert.notAfter.getTime() > now && certMatchesKey(chain, keyPem)) return { keyPem, cert };
  } catch {
    /* no usable chain: keep the key only */
  }
  return { keyPem };
}
