// File mode: meshpilot's own self-signed root, kept in a directory the operator chooses so a
// restart signs with the same root (workloads keep trusting it). Layout:
//   root-cert.pem      the signing root
//   root-key.pem       its key (PKCS#8, mode 0600)
//   retired-roots.json roots still trusted after a rotation: [{certPem, keepUntil}]
//   next-root.json     a staged root (first phase of a rotation): {certPem, activateAt}
//   next-root-key.pem  its key
//   trust-bundle.pem   every trusted root, for agents and operators (written, never read)
// Each file is written to a temporary name and renamed, so a reader never sees half a file.
import 'reflect-metadata';
import { createPublicKey, X509Certificate as NodeCert } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { importPrivateKey, newKeyPair, privateKeyPem, randomSerial, type SigningKey } from './keys.ts';

const YEAR_MS = 365 * 24 * 3600 * 1000;

export interface StoredRoot {
  cert: x509.X509Certificate;
  /** Retired roots only: trusted until then (the last certificate it signed has expired). */
  keepUntil?: Date;
}

/** A root in the trust bundle that does not sign yet: it signs from `activateAt` on. */
export interface StagedRoot {
  cert: x509.X509Certificate;
  key: SigningKey;
  keyPem: string;
  activateAt: Date;
}

export interface RootFiles {
  active: { cert: x509.X509Certificate; key: SigningKey };
  retired: StoredRoot[];
  next?: StagedRoot;
}

export const ROOT_CERT = 'root-cert.pem';
export const ROOT_KEY = 'root-key.pem';
export const RETIRED = 'retired-roots.json';
export const BUNDLE = 'trust-bundle.pem';
export const NEXT = 'next-root.json';
export const NEXT_KEY = 'next-root-key.pem';

function writeAtomic(file: string, text: string, mode = 0o644): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode });
  renameSync(tmp, file);
}

export async function loadRoots(dir: string): Promise<RootFiles | undefined> {
  const certFile = join(dir, ROOT_CERT);
  const keyFile = join(dir, ROOT_KEY);
  if (!existsSync(certFile) && !existsSync(keyFile)) return undefined;
  if (!existsSync(certFile) || !existsSync(keyFile)) throw new Error(`${dir}: ${ROOT_CERT} and ${ROOT_KEY} must both be there (or neither, to make a new root)`);
  const opt = (name: string) => (existsSync(join(dir, name)) ? readFileSync(join(dir, name), 'utf8') : undefined);
  const retiredJson = opt(RETIRED);
  const nextJson = opt(NEXT);
  const nextKeyPem = opt(NEXT_KEY);
  return parseRoots(dir, {
    certPem: readFileSync(certFile, 'utf8'),
    keyPem: readFileSync(keyFile, 'utf8'),
    ...(retiredJson !== undefined ? { retiredJson } : {}),
    // The key is written before the json: a key alone is a staging that never finished.
    ...(nextJson !== undefined ? { nextJson, ...(nextKeyPem !== undefined ? { nextKeyPem } : {}) } : {}),
  });
}

/** The stored state from its texts (files or a Secret's keys); `source` names where they came from in errors. */
export async function parseRoots(source: string, t: { certPem: string; keyPem: string; retiredJson?: string; nextJson?: string; nextKeyPem?: string }): Promise<RootFiles> {
  const { certPem, keyPem } = t;
  // A crash between the two renames of a rotation would pair a key with the other root.
  checkPair(source, certPem, keyPem, ROOT_CERT, ROOT_KEY);
  const cert = new x509.X509Certificate(certPem);
  const retired: StoredRoot[] = t.retiredJson !== undefined ? parseRetired(t.retiredJson) : [];
  let next: StagedRoot | undefined;
  if (t.nextJson !== undefined) {
    if (t.nextKeyPem === undefined) throw new Error(`${source}: ${NEXT} names a staged root but ${NEXT_KEY} is missing`);
    const n = JSON.parse(t.nextJson) as { certPem: string; activateAt: string };
    checkPair(source, n.certPem, t.nextKeyPem, NEXT, NEXT_KEY);
    const nextCert = new x509.X509Certificate(n.certPem);
    // Already the signing root: the staging was completed and only the clean-up was lost.
    if (nextCert.serialNumber !== cert.serialNumber) next = { cert: nextCert, key: await importPrivateKey(t.nextKeyPem), keyPem: t.nextKeyPem, activateAt: new Date(n.activateAt) };
  }
  return {
    active: { cert, key: await importPrivateKey(keyPem) },
    retired: retired.filter((r) => r.cert.serialNumber !== cert.serialNumber && r.cert.serialNumber !== next?.cert.serialNumber),
    ...(next ? { next } : {}),
  };
}

function checkPair(source: string, certPem: string, keyPem: string, certName: string, keyName: string): void {
  const certKey = new NodeCert(certPem).publicKey.export({ type: 'spki', format: 'der' });
  const keyPub = createPublicKey(keyPem).export({ type: 'spki', format: 'der' });
  if (!certKey.equals(keyPub)) throw new Error(`${source}: ${keyName} is not the key of ${certName}`);
}

export function nextJson(next: StagedRoot): string {
  return `${JSON.stringify({ certPem: next.cert.toString('pem'), activateAt: next.activateAt.toISOString() }, null, 2)}\n`;
}

export function parseRetired(json: string): StoredRoot[] {
  return (JSON.parse(json) as Array<{ certPem: string; keepUntil: string }>).map((r) => ({ cert: new x509.X509Certificate(r.certPem), keepUntil: new Date(r.keepUntil) }));
}

export function retiredJson(retired: StoredRoot[]): string {
  return `${JSON.stringify(retired.map((r) => ({ certPem: r.cert.toString('pem'), keepUntil: (r.keepUntil ?? new Date(0)).toISOString() })), null, 2)}\n`;
}

/** Every trusted root: the signing one, the staged one, then the retired ones. */
export function bundleText(active: x509.X509Certificate, retired: StoredRoot[], next?: StagedRoot): string {
  return [active, ...(next ? [next.cert] : []), ...retired.map((r) => r.cert)].map((c) => c.toString('pem')).join('\n') + '\n';
}

/** A new self-signed root (ECDSA P-256); its name carries the date and serial so rotated roots differ. */
export async function newRoot(trustDomain: string, now: number, validYears = 10): Promise<{ cert: x509.X509Certificate; keyPem: string; key: SigningKey }> {
  const keys = await newKeyPair();
  const serialNumber = randomSerial();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber,
    name: `O=${trustDomain}, CN=meshpilot root ${new Date(now).toISOString().slice(0, 10)} ${serialNumber.slice(0, 8)}`,
    notBefore: new Date(now - 5 * 60 * 1000),
    notAfter: new Date(now + validYears * YEAR_MS),
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const keyPem = await privateKeyPem(keys.privateKey);
  return { cert, keyPem, key: await importPrivateKey(keyPem) };
}

/**
 * Writes the whole state; the retired list first, so a crash never loses a root still trusted,
 * and a staged root's key before the file naming it. The staged files go last when they go
 * (activation): loading a staged root that already signs is harmless.
 */
export function saveRoots(dir: string, active: { cert: x509.X509Certificate; keyPem?: string }, retired: StoredRoot[], next?: StagedRoot): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeAtomic(join(dir, RETIRED), retiredJson(retired));
  if (next) {
    writeAtomic(join(dir, NEXT_KEY), next.keyPem, 0o600);
    writeAtomic(join(dir, NEXT), nextJson(next));
  }
  if (active.keyPem) writeAtomic(join(dir, ROOT_KEY), active.keyPem, 0o600);
  writeAtomic(join(dir, ROOT_CERT), active.cert.toString('pem') + '\n');
  writeAtomic(join(dir, BUNDLE), bundleText(active.cert, retired, next));
  if (!next) for (const f of [NEXT, NEXT_KEY]) rmSync(join(dir, f), { force: true });
}
