// Keeps the workload certificate fresh: the first one as soon as the CA answers, then a renewal at
// about half the remaining lifetime (with jitter, so pods started together do not renew together).
// While the CA cannot be reached it retries with exponential backoff; the current certificate keeps
// serving meanwhile (and past its expiry, as there is nothing better to serve).
import { EventEmitter } from 'node:events';
import type { Logger } from '../log.ts';
import { requestCertificate, type CaClientOptions } from './ca-client.ts';
import { bundleText, normalize, parseIssued, splitPem, type IssuedCert } from './chain.ts';
import { readExisting, writeCert, writeKey } from './cert-files.ts';
import { formatSpiffeId, type Identity } from '../ca/identity.ts';
import { certMatchesKey, createCsr, generateKey, importKey, type WorkloadKey } from './keys.ts';

export interface CertAgentOptions {
  identity: Identity;
  ca: CaClientOptions;
  outDir: string;
  /** Requested lifetime; the CA may shorten it. */
  validitySeconds: number;
  logger: Logger;
  /** First retry delay and its cap (doubling in between). */
  backoff?: { initialMs: number; maxMs: number };
  /** [0, 1): jitter source, replaceable for tests. */
  random?: () => number;
}

export interface CurrentCert {
  cert: IssuedCert;
  keyPem: string;
}

export interface CertAgentEvents {
  /** A new certificate is in the files (and in `current()`). */
  cert: [CurrentCert];
}

export class CertAgent extends EventEmitter<CertAgentEvents> {
  readonly spiffeId: string;
  private key: WorkloadKey | undefined;
  private cur: CurrentCert | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private stopped = false;
  private running: Promise<void> | undefined;
  private readonly random: () => number;
  private readonly backoff: { initialMs: number; maxMs: number };

  constructor(private readonly o: CertAgentOptions) {
    super();
    this.spiffeId = formatSpiffeId(o.identity);
    this.random = o.random ?? Math.random;
    this.backoff = o.backoff ?? { initialMs: 1000, maxMs: 30_000 };
  }

  current(): CurrentCert | undefined {
    return this.cur;
  }

  /** Picks up what an earlier run left when it is still good, then schedules the next request. */
  async start(): Promise<void> {
    const existing = readExisting(this.o.outDir);
    if (existing) {
      try {
        this.key = await importKey(existing.keyPem);
      } catch (e) {
        this.o.logger.warn({ err: (e as Error).message }, 'agent: key.pem unusable, making a new key');
      }
    }
    if (!this.key) {
      this.key = await generateKey();
      writeKey(this.o.outDir, this.key.keyPem);
    }
    if (this.key && existing?.cert && existing.cert.uris.includes(this.spiffeId)) {
      this.cur = { cert: existing.cert, keyPem: this.key.keyPem };
      this.o.logger.info({ serial: existing.cert.serial, notAfter: existing.cert.notAfter.toISOString() }, 'agent: serving the certificate already on disk');
      this.emit('cert', this.cur);
      this.schedule(this.renewDelay(existing.cert, Date.now()));
    } else {
      this.schedule(0);
    }
  }

  /** Resolves with the first certificate (at once if there is one). */
  ready(): Promise<CurrentCert> {
    if (this.cur) return Promise.resolve(this.cur);
    return new Promise((resolve) => this.once('cert', resolve));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.running = this.attempt().finally(() => (this.running = undefined));
    }, ms);
  }

  // Half of what is left, +-10 %: what is left (not notAfter - notBefore) because CAs backdate
  // notBefore for clock skew.
  private renewDelay(cert: IssuedCert, now: number): number {
    const left = cert.notAfter.getTime() - now;
    return Math.max(0, left * (0.4 + 0.2 * this.random()));
  }

  /**
   * Roots to check the CA's serving certificate with: the configured ones (re-read: a mounted
   * ConfigMap changes under us) and the bundle of the last answer. After a root rotation the CA
   * serves with the new root, which an agent knows from its renewal during the staging phase
   * even when its configured file still lists only the old root.
   */
  private caTrust(): string {
    const configured = typeof this.o.ca.caRootPem === 'function' ? this.o.ca.caRootPem() : this.o.ca.caRootPem;
    return bundleText([...new Set([...splitPem(configured), ...(this.cur?.cert.roots ?? [])].map(normalize))]);
  }

  private async attempt(): Promise<void> {
    const key = this.key!;
    const now = Date.now();
    const valid = this.cur && this.cur.cert.notAfter.getTime() > now ? this.cur : undefined;
    try {
      const csr = await createCsr(key, this.spiffeId);
      const chain = await requestCertificate({ ...this.o.ca, caRootPem: this.caTrust() }, csr, this.o.validitySeconds, valid ? { chainPem: valid.cert.chainPem, keyPem: valid.keyPem } : undefined);
      const cert = parseIssued(chain);
      // Never install a certificate for another key or identity: readers would pair it with ours.
      if (!certMatchesKey(cert.chainPem, key.keyPem)) throw new Error('the CA returned a certificate for another key');
      if (!cert.uris.includes(this.spiffeId)) throw new Error(`the CA returned a certificate for ${cert.uris.join(', ') || 'no URI'}, not ${this.spiffeId}`);
      if (this.stopped) return;
      writeCert(this.o.outDir, cert);
      const renewal = this.cur !== undefined;
      this.cur = { cert, keyPem: key.keyPem };
      this.failures = 0;
      const delay = this.renewDelay(cert, Date.now());
      this.o.logger.info(
        { spiffeId: this.spiffeId, serial: cert.serial, notAfter: cert.notAfter.toISOString(), nextRenewalInMs: Math.round(delay) },
        renewal ? 'agent: certificate renewed' : 'agent: certificate issued',
      );
      this.emit('cert', this.cur);
      this.schedule(delay);
    } catch (e) {
      if (this.stopped) return;
      const delay = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** this.failures) * (0.5 + 0.5 * this.random());
      this.failures++;
      const expired = this.cur !== undefined && !valid;
      this.o.logger[expired || !this.cur ? 'error' : 'warn'](
        { err: (e as Error).message, failures: this.failures, retryInMs: Math.round(delay), serving: this.cur?.cert.serial, expired },
        'agent: certificate request failed; retrying',
      );
      this.schedule(delay);
    }
  }
}
