// The CA in-process: what it signs, what it refuses, its root across restarts and rotations, and
// the plug-in layout. The gRPC service and TLS are in ca-service.test.ts.
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { afterEach, describe, expect, it } from 'vitest';
import { Authority, CaError } from '../control-plane/ca/authority.ts';
import { formatSpiffeId, parseSpiffeId, identityFromServiceAccountUser } from '../control-plane/ca/identity.ts';
import { chainVerifies, workloadCsr, writePluginCa } from './helpers/ca-certs.ts';

const PRODUCTPAGE = { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'productpage' };
const ID = 'spiffe://cluster.local/ns/default/sa/productpage';
const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'meshpilot-ca-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('SPIFFE identities', () => {
  it('formats and parses exactly one spelling', () => {
    expect(formatSpiffeId(PRODUCTPAGE)).toBe(ID);
    expect(parseSpiffeId(ID)).toEqual(PRODUCTPAGE);
    for (const bad of ['spiffe://cluster.local/ns/default/sa/productpage/x', 'spiffe://cluster.local/ns/Default/sa/p', 'spiffe://cluster.local/ns/default/sa/p?x=1', 'https://cluster.local/ns/default/sa/p', 'spiffe://cluster.local/ns//sa/p', 'spiffe://cluster.local/ns/a%2fb/sa/p']) {
      expect(parseSpiffeId(bad), bad).toBeUndefined();
    }
    expect(() => formatSpiffeId({ ...PRODUCTPAGE, namespace: 'a/b' })).toThrow(/namespace/);
    expect(identityFromServiceAccountUser('system:serviceaccount:default:productpage', 'cluster.local')).toEqual(PRODUCTPAGE);
    expect(identityFromServiceAccountUser('system:node:worker-1', 'cluster.local')).toBeUndefined();
  });
});

describe('file-mode CA', () => {
  it('signs a CSR for the caller: one URI SAN, not a CA, both EKUs, lifetime capped, chain to the root', async () => {
    const dir = tempDir();
    const ca = await Authority.open(dir, { trustDomain: 'cluster.local', maxWorkloadTtlMs: 3600_000 });
    const w = await workloadCsr([ID]);
    const before = Date.now();
    const r = await ca.sign(w.csrPem, PRODUCTPAGE, 7 * 24 * 3600);
    expect(r.chain).toHaveLength(2);
    expect(chainVerifies(r.chain, [ca.bundlePem()])).toBe(true);
    const leaf = new X509Certificate(r.chain[0]!);
    expect(leaf.subjectAltName).toBe(`URI:${ID}`);
    expect(leaf.ca).toBe(false);
    expect(leaf.keyUsage).toEqual(expect.arrayContaining(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']));
    expect(leaf.checkPrivateKey((await import('node:crypto')).createPrivateKey(w.keyPem))).toBe(true);
    expect(new Date(leaf.validTo).getTime()).toBeLessThanOrEqual(before + 3600_000 + 1000);
    // A shorter request is honoured.
    const short = new X509Certificate((await ca.sign(w.csrPem, PRODUCTPAGE, 600)).chain[0]!);
    expect(new Date(short.validTo).getTime()).toBeLessThanOrEqual(Date.now() + 600_000 + 1000);
    expect(ca.issued()).toEqual([expect.objectContaining({ identity: ID, serial: short.serialNumber.toLowerCase() })]);
    // The root key is private to the operator.
    expect(statSync(join(dir, 'root-key.pem')).mode & 0o077).toBe(0);
  });

  it('builds the certificate RFC 5280 wants, as another parser (@peculiar/x509) reads it', async () => {
    const ca = await Authority.open(tempDir(), { trustDomain: 'cluster.local' });
    const r = await ca.sign((await workloadCsr([ID])).csrPem, PRODUCTPAGE);
    const leaf = new x509.X509Certificate(r.chain[0]!);
    const root = new x509.X509Certificate(r.chain[1]!);
    expect(leaf.subject).toBe('');
    expect(leaf.issuer).toBe(root.subject);
    expect(leaf.serialNumber).toBe(r.serial);
    const bc = leaf.getExtension(x509.BasicConstraintsExtension)!;
    expect([bc.ca, bc.critical]).toEqual([false, true]);
    const ku = leaf.getExtension(x509.KeyUsagesExtension)!;
    expect([ku.usages, ku.critical]).toEqual([x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true]);
    expect(leaf.getExtension(x509.ExtendedKeyUsageExtension)!.usages).toEqual([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]);
    const san = leaf.getExtension(x509.SubjectAlternativeNameExtension)!;
    expect([san.critical, san.names.toJSON()]).toEqual([true, [{ type: 'url', value: ID }]]);
    const aki = leaf.getExtension(x509.AuthorityKeyIdentifierExtension)!;
    expect(aki.keyId).toBe(root.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId);
    expect(await leaf.verify({ publicKey: root.publicKey, signatureOnly: true })).toBe(true);
  });

  it('refuses every truncation and byte flip of a CSR as invalid, never with another error', async () => {
    const ca = await Authority.open(tempDir(), { trustDomain: 'cluster.local' });
    const der = Buffer.from((await workloadCsr([ID])).csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const asPem = (b: Buffer) => `-----BEGIN CERTIFICATE REQUEST-----\n${b.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    const outcomes = new Set<string>();
    for (let n = 0; n < der.length; n++) {
      outcomes.add(await ca.sign(asPem(der.subarray(0, n)), PRODUCTPAGE).then(() => 'signed', (e) => (e instanceof CaError ? e.kind : `other: ${e}`)));
      const flipped = Buffer.from(der);
      flipped[n]! ^= 0x40;
      outcomes.add(await ca.sign(asPem(flipped), PRODUCTPAGE).then(() => 'signed', (e) => (e instanceof CaError ? e.kind : `other: ${e}`)));
    }
    // The signature covers the URI, so even a flip there is invalid (not another identity). Nothing is signed.
    expect([...outcomes]).toEqual(['invalid']);
  });

  it('refuses a CSR for another identity, with several URIs, without any, or with a bad signature', async () => {
    const ca = await Authority.open(tempDir(), { trustDomain: 'cluster.local' });
    const other = await workloadCsr(['spiffe://cluster.local/ns/default/sa/reviews']);
    await expect(ca.sign(other.csrPem, PRODUCTPAGE)).rejects.toMatchObject({ kind: 'denied', message: expect.stringContaining('sa/reviews') });
    const two = await workloadCsr([ID, 'spiffe://cluster.local/ns/default/sa/reviews']);
    await expect(ca.sign(two.csrPem, PRODUCTPAGE)).rejects.toBeInstanceOf(CaError);
    const none = await workloadCsr([], ['productpage.default.svc']);
    await expect(ca.sign(none.csrPem, PRODUCTPAGE)).rejects.toMatchObject({ kind: 'invalid' });
    // Flip a byte of the signature (the last bytes of the DER): proof of possession fails.
    const good = await workloadCsr([ID]);
    const der = Buffer.from(good.csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 3]! ^= 0x01;
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    await expect(ca.sign(tampered, PRODUCTPAGE)).rejects.toMatchObject({ kind: 'invalid' });
    await expect(ca.sign('not a csr', PRODUCTPAGE)).rejects.toMatchObject({ kind: 'invalid' });
    expect(ca.issued()).toEqual([]);
  });

  it('reloads its persisted root after a restart, and certificates keep verifying', async () => {
    const dir = tempDir();
    const first = await Authority.open(dir, { trustDomain: 'cluster.local' });
    const r1 = await first.sign((await workloadCsr([ID])).csrPem, PRODUCTPAGE);
    const again = await Authority.open(dir, { trustDomain: 'cluster.local' });
    expect(again.roots().map((c) => c.serialNumber)).toEqual(first.roots().map((c) => c.serialNumber));
    const r2 = await again.sign((await workloadCsr([ID])).csrPem, PRODUCTPAGE);
    expect(chainVerifies(r1.chain, [again.bundlePem()])).toBe(true);
    expect(chainVerifies(r2.chain, [first.bundlePem()])).toBe(true);
    expect(readFileSync(again.trustBundlePath, 'utf8')).toContain(first.roots()[0]!.toString('base64').slice(0, 40));
    // Another directory is another CA: its certificates do not verify against this bundle.
    const stranger = await Authority.open(tempDir(), { trustDomain: 'cluster.local' });
    expect(chainVerifies((await stranger.sign((await workloadCsr([ID])).csrPem, PRODUCTPAGE)).chain, [again.bundlePem()])).toBe(false);
  });

  it('rotates its root: old and new certificates verify against the bundle; the old root leaves once its certificates expired', async () => {
    const dir = tempDir();
    let now = Date.now();
    const ca = await Authority.open(dir, { trustDomain: 'cluster.local', maxWorkloadTtlMs: 3600_000, now: () => now });
    const oldRoot = ca.roots()[0]!.serialNumber;
    const oldCert = await ca.sign((await workloadCsr([ID])).csrPem, PRODUCTPAGE);
    let changes = 0;
    ca.onChange(() => changes++);
    await ca.rotateRoot();
    expect(changes).toBe(2); // staged (bundle grew), then activated (signer changed)
    expect(ca.roots()).toHaveLength(2);
    expect(ca.roots()[1]!.serialNumber).toBe(oldRoot);
    const newCert = await ca.sign((await workloadCsr([ID])).csrPem, PRODUCTPAGE);
    expect(newCert.chain[1]).not.toBe(oldCert.chain[1]);
    for (const c of [oldCert, newCert]) expect(chainVerifies(c.chain, [ca.bundlePem()])).toBe(true);
    // New certificates chain to the new root only.
    expect(chainVerifies(newCert.chain.slice(0, 1), [ca.roots()[1]!.toString('pem')])).toBe(false);
    // The rotation survives a restart.
    const reopened = await Authority.open(dir, { trustDomain: 'cluster.local' });
    expect(reopened.roots().map((c) => c.serialNumber)).toEqual(ca.roots().map((c) => c.serialNumber));
    // Not before the last certificate the old root signed has expired...
    expect(ca.pruneRoots()).toEqual([]);
    now += 3600_000 + 1;
    expect(ca.pruneRoots()).toEqual([oldRoot]);
    expect(ca.roots()).toHaveLength(1);
    expect(chainVerifies(oldCert.chain.slice(0, 1), [ca.bundlePem()])).toBe(false);
    expect((await Authority.open(dir, { trustDomain: 'cluster.local' })).roots()).toHaveLength(1);
  });
});

describe('two-phase root rotation', () => {
  it('a staged root is trusted at once and signs only from its time; restarts keep both phases', async () => {
    const dir = tempDir();
    let now = Date.now();
    const TTL = 3600_000;
    const ca = await Authority.open(dir, { trustDomain: 'cluster.local', maxWorkloadTtlMs: TTL, now: () => now });
    const oldRoot = ca.roots()[0]!;
    const before = await ca.sign((await workloadCsr([ID])).csrPem, PRODUCTPAGE);
    expect(before.bundle.match(/BEGIN CERTIFICATE/g)).toHaveLength(1);

    const staged = await ca.stageRoot();
    expect(staged.activateAt!.getTime()).toBe(now + TTL); // default: one longest lifetime
    await expect(ca.stageRoot()).rejects.toThrow(/already staged/);
    expect(ca.roots().map((c) => c.serialNumber)).toEqual([oldRoot.serialNumber, staged.serial]);
    expect(ca.rootInfo().map((r) => [r.signing, r.activateAt !== undefined])).toEqual([[true, false], [false, true]]);
    // Still signed by the old root, but the answer's bundle carries both roots.
    const during = await ca.sign((await workloadCsr([ID])).csrPem, PRODUCTPAGE);
    expect(chainVerifies(during.chain, [oldRoot.toString('pem')])).toBe(true);
    expect(during.bundle.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(readFileSync(join(dir, 'trust-bundle.pem'), 'utf8').match(/BEGIN CERTIFICATE/g)).toHaveLength(2);

    // A restart during staging comes back staged, with the same time.
    const reopened = await Authority.open(dir, { trustDomain: 'cluster.local', maxWorkloadTtlMs: TTL, now: () => now });
    expect(reopened.rootInfo().map((r) => [r.serial, r.signing, r.activateAt?.getTime()])).toEqual([
      [oldRoot.serialNumber, true, undefined],
      [staged.serial, false, now + TTL],
    ]);
    reopened.close();

    // Its time comes: the next signature is the new root's; the old one stays trusted for one
    // longest lifetime after the switch (what it signed until then expires by that time).
    const switchAt = now + TTL;
    now = switchAt + 1000;
    const after = await ca.sign((await workloadCsr([ID])).csrPem, PRODUCTPAGE);
    expect(chainVerifies(after.chain, [oldRoot.toString('pem')])).toBe(false);
    expect(chainVerifies(after.chain, [after.bundle])).toBe(true);
    expect(chainVerifies(during.chain, [after.bundle])).toBe(true); // old and new keep talking
    expect(ca.rootInfo().map((r) => [r.serial, r.signing, r.keepUntil?.getTime()])).toEqual([
      [staged.serial, true, undefined],
      [oldRoot.serialNumber, false, switchAt + TTL],
    ]);
    expect(existsSync(join(dir, 'next-root.json'))).toBe(false);
    // A process that was down at the switch does it on load, to the same result.
    const late = await Authority.open(dir, { trustDomain: 'cluster.local', maxWorkloadTtlMs: TTL, now: () => now });
    expect(late.roots().map((c) => c.serialNumber)).toEqual([staged.serial, oldRoot.serialNumber]);
    now = switchAt + TTL + 1;
    expect(ca.pruneRoots()).toEqual([oldRoot.serialNumber]);
    expect(chainVerifies(during.chain, [ca.bundlePem()])).toBe(false);
  });

  it('a process that was stopped over the switch activates the staged root when it opens', async () => {
    const dir = tempDir();
    let now = Date.now();
    const ca = await Authority.open(dir, { trustDomain: 'cluster.local', maxWorkloadTtlMs: 60_000, now: () => now });
    const staged = await ca.stageRoot(new Date(now + 5000));
    ca.close();
    now += 6000;
    const again = await Authority.open(dir, { trustDomain: 'cluster.local', maxWorkloadTtlMs: 60_000, now: () => now });
    expect(again.rootInfo()[0]).toMatchObject({ serial: staged.serial, signing: true });
    expect(again.rootInfo()[1]!.keepUntil!.getTime()).toBe(staged.activateAt!.getTime() + 60_000);
    again.close();
  });

  it('activates on its timer, and the operator can activate early', async () => {
    const dir = tempDir();
    const ca = await Authority.open(dir, { trustDomain: 'cluster.local', maxWorkloadTtlMs: 60_000 });
    const changed = new Promise<void>((resolve) => {
      let n = 0;
      ca.onChange(() => ++n === 2 && resolve());
    });
    const staged = await ca.stageRoot(new Date(Date.now() + 200));
    await changed; // the timer fired without any signature asking
    expect(ca.rootInfo()[0]).toMatchObject({ serial: staged.serial, signing: true });
    const second = await ca.stageRoot(new Date(Date.now() + 3600_000));
    await ca.activateRoot();
    expect(ca.rootInfo()[0]).toMatchObject({ serial: second.serial, signing: true });
    await expect(ca.activateRoot()).rejects.toThrow(/no root is staged/);
    ca.close();
  });
});

describe('plug-in CA layout', () => {
  it('signs as the operator intermediate: leaf, intermediate, root', async () => {
    const dir = tempDir();
    const op = await writePluginCa(dir);
    const ca = await Authority.open(dir, { trustDomain: 'cluster.local' });
    expect(ca.mode).toBe('plug-in');
    const r = await ca.sign((await workloadCsr([ID])).csrPem, PRODUCTPAGE);
    expect(r.chain).toHaveLength(3);
    expect(new X509Certificate(r.chain[1]!).raw.equals(new X509Certificate(op.intermediatePem).raw)).toBe(true);
    expect(new X509Certificate(r.chain[2]!).raw.equals(new X509Certificate(op.rootPem).raw)).toBe(true);
    expect(chainVerifies(r.chain, [op.rootPem])).toBe(true);
    // The leaf alone does not verify against the root: it really is signed by the intermediate.
    expect(chainVerifies([r.chain[0]!], [op.rootPem])).toBe(false);
    expect(ca.bundlePem()).toContain(op.rootPem.trim().split('\n')[1]);
    await expect(ca.rotateRoot()).rejects.toThrow(/plug-in/);
  });
});
