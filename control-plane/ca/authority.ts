// The mesh CA: signs workload certificates for authenticated identities, keeps the trust bundle.
// Two ways to get a signing key: file mode (our own root, made once and kept in a directory) or
// the plug-in layout (an operator's intermediate, see plugin-ca.ts). Who the caller is is decided
// before this (ca-service.ts); here the request may only ask for that identity.
import 'reflect-metadata';
import { join, resolve } from 'node:path';
import * as x509 from '@peculiar/x509';
import { parseCsr, CsrError } from './csr.ts';
import { buildLeaf, subjectOf, type LeafSigner } from './leaf-cert.ts';
import { pem } from './der.ts';
import { formatSpiffeId, type Identity } from './identity.ts';
import { newKeyPair, privateKeyPem, randomSerial, type SigningKey } from './keys.ts';
import { isPluginLayout, loadPluginCa, PLUGIN_FILES } from './plugin-ca.ts';
import { BUNDLE, loadRoots, newRoot, saveRoots, type StagedRoot, type StoredRoot } from './root-store.ts';
import type { KubeConfig } from '@kubernetes/client-node';
import { loadCaFromSecrets, type SecretRootStore } from './secret-store.ts';

export const DEFAULT_WORKLOAD_CERT_TTL_MS = 24 * 3600 * 1000;
/** Certificates start a little in the past: a workload whose clock is behind can still use them. */
const BACKDATE_MS = 60 * 1000;

export class CaError extends Error {
  constructor(
    readonly kind: 'invalid' | 'denied',
    message: string,
    /** For a denial: the identity the request asked for. */
    readonly requested?: string,
  ) {
    super(message);
  }
}

export interface AuthorityOptions {
  trustDomain: string;
  /** Longest lifetime of a workload certificate (default 24 h); shorter requests are honoured. */
  maxWorkloadTtlMs?: number;
  /** Clock, for tests of expiry. */
  now?: () => number;
}

export interface IssuedCert {
  identity: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** Serial of the root the chain ends in. */
  root: string;
}

export interface RootInfo {
  subject: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  signing: boolean;
  keepUntil?: Date;
  /** A staged root: in the bundle now, signs from then on. */
  activateAt?: Date;
}

interface Signer {
  cert: x509.X509Certificate;
  key: SigningKey;
  /** PEM after the leaf in every chain: intermediates (if any), then the root. */
  chainPems: string[];
  root: x509.X509Certificate;
  aki: x509.Extension;
  leaf: LeafSigner;
}

export interface SignResult {
  /** Leaf, intermediates, root (PEM each). */
  chain: string[];
  /** Every root the mesh trusts now (PEM blocks, newline-joined): what a workload should trust. */
  bundle: string;
  serial: string;
  notAfter: Date;
}

export class Authority {
  readonly trustDomain: string;
  readonly maxWorkloadTtlMs: number;
  private readonly now: () => number;
  private signer!: Signer;
  private retired: StoredRoot[] = [];
  /** First phase of a rotation: trusted, not signing yet. */
  private next: StagedRoot | undefined;
  private activateTimer: NodeJS.Timeout | undefined;
  private activating: Promise<void> | undefined;
  /** bundlePem()'s text; cleared by changed(), which every change of the roots goes through. */
  private bundleText: string | undefined;
  /** Most recent certificate per identity (for /debug/certs). */
  private readonly latest = new Map<string, IssuedCert>();
  /** Per root serial: the latest notAfter of a certificate it signed in this process. */
  private readonly lastExpiry = new Map<string, number>();
  private readonly listeners = new Set<() => void>();
  /** Cluster mode: the Secret meshpilot's root is kept in (undefined: a directory, or plug-in). */
  private secretStore: SecretRootStore | undefined;
  /** Cluster mode: where the trust bundle is (a description, not a file). */
  private secretBundle: string | undefined;
  /** Cluster mode: whether this instance made the root (and created the Secret). */
  createdRoot = false;

  private constructor(
    readonly mode: 'self-signed' | 'plug-in',
    /** Where the state lives (file mode: ours; plug-in: the operator's; cluster mode: `Secret ns/name`). */
    readonly dir: string,
    opts: AuthorityOptions,
  ) {
    this.trustDomain = opts.trustDomain;
    this.maxWorkloadTtlMs = opts.maxWorkloadTtlMs ?? DEFAULT_WORKLOAD_CERT_TTL_MS;
    this.now = opts.now ?? Date.now;
  }

  /**
   * The CA for a directory: the plug-in layout when ca-cert.pem and ca-key.pem are there, else
   * file mode (the root kept there is reloaded; the first start makes one).
   */
  static async open(dir: string, opts: AuthorityOptions): Promise<Authority> {
    const abs = resolve(dir);
    if (isPluginLayout(abs)) {
      const a = new Authority('plug-in', abs, opts);
      const p = await loadPluginCa(abs);
      a.retired = p.roots.slice(1).map((cert) => ({ cert }));
      a.signer = await makeSigner(p.cert, p.key, [p.cert, ...p.intermediates, p.roots[0]!].map((c) => c.toString('pem')), p.roots[0]!);
      return a;
    }
    const a = new Authority('self-signed', abs, opts);
    const stored = await loadRoots(abs);
    if (stored) {
      a.retired = stored.retired;
      a.next = stored.next;
      a.signer = await makeSigner(stored.active.cert, stored.active.key, [stored.active.cert.toString('pem')], stored.active.cert);
      saveRoots(abs, { cert: stored.active.cert }, stored.retired, stored.next); // refresh trust-bundle.pem
      await a.settle();
      a.scheduleActivation();
    } else {
      const r = await newRoot(a.trustDomain, a.now());
      saveRoots(abs, { cert: r.cert, keyPem: r.keyPem }, []);
      a.signer = await makeSigner(r.cert, r.key, [r.cert.toString('pem')], r.cert);
    }
    return a;
  }

  /**
   * Cluster mode: the state from the config cluster's Secrets (see secret-store.ts): the plug-in
   * CA from Secret `cacerts`, else meshpilot's root from Secret `meshpilot-ca`, made when absent.
   */
  static async openSecrets(kubeConfig: KubeConfig, namespace: string, opts: AuthorityOptions): Promise<Authority> {
    const s = await loadCaFromSecrets(kubeConfig, namespace, opts.trustDomain, (opts.now ?? Date.now)());
    if (s.mode === 'plug-in') {
      const a = new Authority('plug-in', s.location, opts);
      const p = s.plugin;
      a.retired = p.roots.slice(1).map((cert) => ({ cert }));
      a.signer = await makeSigner(p.cert, p.key, [p.cert, ...p.intermediates, p.roots[0]!].map((c) => c.toString('pem')), p.roots[0]!);
      a.secretBundle = `${s.location} (${PLUGIN_FILES.root})`;
      return a;
    }
    const a = new Authority('self-signed', s.location, opts);
    a.retired = s.roots.retired;
    a.next = s.roots.next;
    a.signer = await makeSigner(s.roots.active.cert, s.roots.active.key, [s.roots.active.cert.toString('pem')], s.roots.active.cert);
    a.secretStore = s.store;
    a.secretBundle = `${s.location} (${BUNDLE})`;
    a.createdRoot = s.created;
    await a.settle(); // a staged root whose time came while no replica ran
    a.scheduleActivation();
    a.pruneRoots(); // what expired while no replica ran
    return a;
  }

  /** The file agents should trust: every root of the bundle (cluster mode: the Secret and key holding it). */
  get trustBundlePath(): string {
    if (this.secretBundle) return this.secretBundle;
    return this.mode === 'plug-in' ? join(this.dir, PLUGIN_FILES.root) : join(this.dir, BUNDLE);
  }

  /** Every trusted root: the signing one, the staged one, the retired ones. */
  roots(): x509.X509Certificate[] {
    return [this.signer.root, ...(this.next ? [this.next.cert] : []), ...this.retired.map((r) => r.cert)];
  }

  bundlePem(): string {
    // Every CA answer carries it: encoded once per change of the roots, not per signature.
    return (this.bundleText ??= this.roots().map((c) => c.toString('pem')).join('\n') + '\n');
  }

  rootInfo(): RootInfo[] {
    return [
      { ...info(this.signer.root), signing: this.signer.cert === this.signer.root },
      ...(this.next ? [{ ...info(this.next.cert), signing: false, activateAt: this.next.activateAt }] : []),
      ...this.retired.map((r) => ({ ...info(r.cert), signing: false, ...(r.keepUntil ? { keepUntil: r.keepUntil } : {}) })),
    ];
  }

  /** The certificate the CA signs with (the root in file mode, the intermediate in plug-in mode). */
  get signingCert(): x509.X509Certificate {
    return this.signer.cert;
  }

  /** Earliest of the signing certificate's and its root's expiry: after it the CA cannot sign. */
  get signingExpiry(): Date {
    return new Date(Math.min(this.signer.cert.notAfter.getTime(), this.signer.root.notAfter.getTime()));
  }

  issued(): IssuedCert[] {
    return [...this.latest.values()].sort((a, b) => a.identity.localeCompare(b.identity));
  }

  /** Called after the trust bundle or the signing key changed (TLS credentials follow it). */
  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Signs `csrPem` for `identity`, the caller's authenticated identity. The request must name
   * exactly that identity as its one URI SAN; the certificate carries nothing else of it.
   */
  async sign(csrPem: string, identity: Identity, requestedSeconds?: number): Promise<SignResult> {
    if (this.next && this.now() >= this.next.activateAt.getTime()) await this.settle();
    const id = formatSpiffeId(identity);
    if (identity.trustDomain !== this.trustDomain) throw new CaError('denied', `identity ${id} is not in trust domain ${this.trustDomain}`, id);
    let csr;
    try {
      csr = await parseCsr(csrPem);
    } catch (e) {
      if (e instanceof CsrError) throw new CaError('invalid', e.message);
      throw e;
    }
    if (csr.uris.length === 0) throw new CaError('invalid', 'csr names no identity (no URI SAN)');
    const other = csr.uris.find((u) => u !== id);
    if (other !== undefined) throw new CaError('denied', `csr asks for ${other} but the caller is ${id}`, other);
    if (csr.uris.length > 1) throw new CaError('invalid', 'csr must carry exactly one URI SAN');
    const ttl = requestedSeconds && requestedSeconds > 0 ? Math.min(requestedSeconds * 1000, this.maxWorkloadTtlMs) : this.maxWorkloadTtlMs;
    const now = this.now();
    const s = this.signer;
    // Whole seconds (what the certificate can say), never after the signing certificate.
    const notAfter = new Date(Math.floor(Math.min(now + ttl, this.signingExpiry.getTime()) / 1000) * 1000);
    const notBefore = new Date(Math.floor((now - BACKDATE_MS) / 1000) * 1000);
    const serial = randomSerial();
    const der = buildLeaf(s.leaf, { serialHex: serial, spki: csr.spki, uri: id, notBefore, notAfter });
    this.remember(id, { serial, notBefore, notAfter }, s.root.serialNumber);
    return { chain: [pem(der), ...s.chainPems], bundle: this.bundlePem(), serial, notAfter };
  }

  /**
   * A serving key and certificate for meshpilot itself (the xDS port), signed like workload
   * certificates. Returns the chain without the root (what a TLS server sends) and the key.
   */
  async issueServing(dnsNames: string[], ipAddresses: string[], ttlMs: number): Promise<{ certChainPem: string; keyPem: string; notAfter: Date }> {
    const keys = await newKeyPair();
    const names = [...dnsNames.map((value) => ({ type: 'dns' as const, value })), ...ipAddresses.map((value) => ({ type: 'ip' as const, value }))];
    const cert = await this.issueServerCert(keys.publicKey, names, ttlMs);
    const chain = [cert.toString('pem'), ...this.signer.chainPems.slice(0, -1)];
    return { certChainPem: chain.join('\n') + '\n', keyPem: await privateKeyPem(keys.privateKey), notAfter: cert.notAfter };
  }

  /**
   * First phase of a root rotation (file and cluster mode): a new root joins the trust bundle
   * now and signs from `activateAt` on (default: one longest workload lifetime from now, by
   * which time every workload has renewed at least once and so trusts it). Until then the old
   * root keeps signing, so nobody is handed a certificate its peers cannot verify yet.
   */
  async stageRoot(activateAt?: Date): Promise<RootInfo> {
    if (this.mode !== 'self-signed') throw new Error('plug-in CA: rotate by replacing the files in the CA directory (or the Secret cacerts)');
    if (this.next) throw new Error(`a root is already staged (serial ${this.next.cert.serialNumber}, signs from ${this.next.activateAt.toISOString()}): activate it first`);
    const now = this.now();
    const r = await newRoot(this.trustDomain, now);
    const next: StagedRoot = { cert: r.cert, key: r.key, keyPem: r.keyPem, activateAt: activateAt ?? new Date(now + this.maxWorkloadTtlMs) };
    // Persisted before anyone is told of it: a restart must come back trusting it.
    await this.persist({ cert: this.signer.root }, this.retired, next);
    this.next = next;
    this.scheduleActivation();
    this.changed();
    return this.rootInfo().find((i) => i.serial === next.cert.serialNumber)!;
  }

  /** Second phase now, not at its time: the staged root signs from this moment. */
  async activateRoot(): Promise<void> {
    if (!this.next) throw new Error('no root is staged: stage one first');
    await this.activate(new Date(this.now()));
  }

  /**
   * Both phases at once: the new root signs at once. Workloads that have not renewed since do
   * not trust the new certificates until they do; for a compromised root, not routine use.
   */
  async rotateRoot(): Promise<void> {
    if (!this.next) await this.stageRoot(new Date(this.now()));
    await this.activateRoot();
  }

  /** Activates the staged root if its time has come (timer, sign, load). */
  private async settle(): Promise<void> {
    if (this.activating) return this.activating;
    const next = this.next;
    if (!next || this.now() < next.activateAt.getTime()) return;
    return this.activate(next.activateAt);
  }

  private activate(at: Date): Promise<void> {
    this.activating ??= (async () => {
      const next = this.next!;
      const old = this.signer.root;
      // Everything the old root signed was signed before `at` and so expires within the longest
      // lifetime after it (also what an earlier process signed), and never after the root itself.
      // The same answer on every replica and after every restart.
      const keepUntil = new Date(Math.min(at.getTime() + this.maxWorkloadTtlMs, old.notAfter.getTime()));
      const retired = [{ cert: old, keepUntil }, ...this.retired];
      try {
        await this.persist({ cert: next.cert, keyPem: next.keyPem }, retired, undefined);
      } catch (e) {
        // Cluster mode with several replicas: another one activated first; the stored state says
        // the same as ours once its activation time has passed, so sign with the new root anyway.
        if (!this.secretStore) throw e;
      }
      this.signer = await makeSigner(next.cert, next.key, [next.cert.toString('pem')], next.cert);
      this.retired = retired;
      this.next = undefined;
      clearTimeout(this.activateTimer);
      this.changed();
    })().finally(() => (this.activating = undefined));
    return this.activating;
  }

  private scheduleActivation(): void {
    clearTimeout(this.activateTimer);
    if (!this.next) return;
    // setTimeout holds at most about 24.8 days; a later time is reached in steps.
    const wait = Math.min(Math.max(0, this.next.activateAt.getTime() - this.now()), 2 ** 31 - 1);
    this.activateTimer = setTimeout(() => {
      if (this.next && this.now() < this.next.activateAt.getTime()) this.scheduleActivation();
      // A failed write (disk full?) is tried again a minute later; sign() tries too.
      else void this.settle().catch(() => (this.activateTimer = setTimeout(() => this.scheduleActivation(), 60_000).unref()));
    }, wait);
    this.activateTimer.unref();
  }

  /** Stops the activation timer. */
  close(): void {
    clearTimeout(this.activateTimer);
  }

  private async persist(active: { cert: x509.X509Certificate; keyPem?: string }, retired: StoredRoot[], next: StagedRoot | undefined): Promise<void> {
    if (this.secretStore) await this.secretStore.save(active, retired, next);
    else saveRoots(this.dir, active, retired, next);
  }

  /**
   * Cluster mode: takes up what another replica wrote to the Secret (a rotation staged or
   * activated through its admin API). Returns whether anything changed here.
   */
  async reloadFromSecret(): Promise<boolean> {
    if (!this.secretStore || this.activating) return false;
    const stored = await this.secretStore.readIfChanged();
    if (!stored) return false;
    const same = (a: x509.X509Certificate | undefined, b: x509.X509Certificate | undefined) => a?.serialNumber === b?.serialNumber;
    const changed =
      !same(stored.active.cert, this.signer.root) ||
      !same(stored.next?.cert, this.next?.cert) ||
      stored.next?.activateAt.getTime() !== this.next?.activateAt.getTime() ||
      stored.retired.map((r) => r.cert.serialNumber).join() !== this.retired.map((r) => r.cert.serialNumber).join();
    if (!changed) return false;
    if (!same(stored.active.cert, this.signer.root)) {
      this.signer = await makeSigner(stored.active.cert, stored.active.key, [stored.active.cert.toString('pem')], stored.active.cert);
    }
    this.retired = stored.retired;
    this.next = stored.next;
    this.scheduleActivation();
    await this.settle();
    this.changed();
    return true;
  }

  /** Drops retired roots whose last certificate has expired; returns their serials. */
  pruneRoots(): string[] {
    const now = this.now();
    const gone = this.retired.filter((r) => r.keepUntil && r.keepUntil.getTime() <= now);
    if (gone.length) this.setRetired(this.retired.filter((r) => !gone.includes(r)));
    return gone.map((r) => r.cert.serialNumber);
  }

  /** Drops one retired root now (the operator knows nothing it signed is in use). */
  dropRoot(serial: string): boolean {
    const next = this.retired.filter((r) => r.cert.serialNumber !== serial);
    if (next.length === this.retired.length) return false;
    this.setRetired(next);
    return true;
  }

  private setRetired(next: StoredRoot[]): void {
    this.retired = next;
    // Cluster mode: dropped here; the Secret still lists them until the next rotation, and every
    // start filters them again (they are past keepUntil).
    if (this.mode === 'self-signed' && !this.secretStore) saveRoots(this.dir, { cert: this.signer.root }, next, this.next);
    this.changed();
  }

  private changed(): void {
    this.bundleText = undefined;
    for (const fn of this.listeners) fn();
  }

  /** meshpilot's own serving certificate: rare, so the general library (workload ones: leaf-cert.ts). */
  private async issueServerCert(publicKey: CryptoKey, names: x509.JsonGeneralNames, ttlMs: number): Promise<x509.X509Certificate> {
    const now = this.now();
    // A certificate never outlives the one that signed it.
    const notAfter = Math.min(now + ttlMs, this.signingExpiry.getTime());
    const s = this.signer;
    const usages = x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment;
    return x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: `CN=${names[0]?.value ?? 'meshpilot'}`,
      issuer: s.cert.subjectName,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter: new Date(notAfter),
      publicKey,
      signingKey: s.key.key,
      signingAlgorithm: s.key.algorithm,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(usages, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension(names),
        s.aki,
      ],
    });
  }

  private remember(identity: string, cert: { serial: string; notBefore: Date; notAfter: Date }, root: string): void {
    this.latest.set(identity, { identity, ...cert, root });
    this.lastExpiry.set(root, Math.max(this.lastExpiry.get(root) ?? 0, cert.notAfter.getTime()));
  }
}

async function makeSigner(cert: x509.X509Certificate, key: SigningKey, chainPems: string[], root: x509.X509Certificate): Promise<Signer> {
  // Computed once per signing certificate, not per certificate signed.
  const aki = await x509.AuthorityKeyIdentifierExtension.create(cert);
  const leaf: LeafSigner = { key: key.keyObject, hash: key.hash, algorithm: key.algorithmDer, issuer: subjectOf(Buffer.from(cert.rawData)), aki: Buffer.from(aki.rawData) };
  return { cert, key, chainPems, root, aki, leaf };
}

function info(c: x509.X509Certificate): Omit<RootInfo, 'signing'> {
  return { subject: c.subject, serial: c.serialNumber, notBefore: c.notBefore, notAfter: c.notAfter };
}

