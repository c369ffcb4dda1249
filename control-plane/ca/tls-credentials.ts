// TLS for the xDS port: meshpilot's serving certificate from its own CA, and client certificates
// requested and verified against the trust bundle but not required (a workload without one uses a
// bearer token to get its first). grpc-js's certificate-provider credentials are the only ones
// that set `rejectUnauthorized: false` with `requestCert: true`; `ServerCredentials.createSsl(...,
// true)` would refuse every client without a certificate. The provider also lets the bundle and
// the serving certificate change (root rotation, renewal) without a restart.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../log.ts';
import type { Authority } from './authority.ts';

type Provider = grpc.experimental.CertificateProvider;
type CaListener = grpc.experimental.CaCertificateUpdateListener;
type IdListener = grpc.experimental.IdentityCertificateUpdateListener;

// The injected agent dials meshpilot's Service by its fully qualified name
// (sidecar-config/injection.yaml xds.address) and checks that name in this certificate.
export const XDS_SERVER_NAMES = { dnsNames: ['meshpilot.meshpilot-system.svc', 'meshpilot.meshpilot-system.svc.cluster.local', 'localhost'], ipAddresses: ['127.0.0.1'] };
const SERVING_TTL_MS = 24 * 3600 * 1000;

export class XdsTlsCredentials implements Provider {
  readonly credentials: grpc.ServerCredentials;
  private ca: { caCertificate: Buffer } | undefined;
  private identity: { certificate: Buffer; privateKey: Buffer } | undefined;
  private readonly caListeners = new Set<CaListener>();
  private readonly idListeners = new Set<IdListener>();
  private renewTimer: NodeJS.Timeout | undefined;
  private unsubscribe: () => void;
  /** When the current serving certificate expires. */
  servingNotAfter = new Date(0);

  private constructor(
    private readonly authority: Authority,
    private readonly log: Logger,
    private readonly names = XDS_SERVER_NAMES,
  ) {
    // One object is both providers: the factory's parameter names and its constructor's disagree
    // in 1.14 (server-credentials.js), so giving the same provider twice is the order-proof way.
    this.credentials = grpc.experimental.createCertificateProviderServerCredentials(this, this, false);
    this.unsubscribe = authority.onChange(() => void this.refresh().catch((e) => this.log.error({ err: e }, 'xDS TLS certificate renewal failed')));
  }

  static async create(authority: Authority, log: Logger, names = XDS_SERVER_NAMES): Promise<XdsTlsCredentials> {
    const c = new XdsTlsCredentials(authority, log, names);
    await c.refresh();
    return c;
  }

  /** New trust bundle and a new serving certificate (from the current signing key). */
  async refresh(): Promise<void> {
    const s = await this.authority.issueServing(this.names.dnsNames, this.names.ipAddresses, SERVING_TTL_MS);
    this.ca = { caCertificate: Buffer.from(this.authority.bundlePem()) };
    this.identity = { certificate: Buffer.from(s.certChainPem), privateKey: Buffer.from(s.keyPem) };
    this.servingNotAfter = s.notAfter;
    for (const l of this.caListeners) l(this.ca);
    for (const l of this.idListeners) l(this.identity);
    // Renew at half its life; the timer must not keep the process alive.
    clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(() => void this.refresh().catch((e) => this.log.error({ err: e }, 'xDS TLS certificate renewal failed')), Math.max(1000, (s.notAfter.getTime() - Date.now()) / 2));
    this.renewTimer.unref();
  }

  close(): void {
    clearTimeout(this.renewTimer);
    this.unsubscribe();
  }

  // The current value goes to a new listener in a microtask, not at once: grpc-js adds its
  // listeners before the server's own watcher (server-credentials.js _addWatcher), so an update
  // delivered synchronously would never reach the server and it would drop every connection.
  addCaCertificateListener(l: CaListener): void {
    this.caListeners.add(l);
    queueMicrotask(() => this.caListeners.has(l) && this.ca && l(this.ca));
  }
  removeCaCertificateListener(l: CaListener): void {
    this.caListeners.delete(l);
  }
  addIdentityCertificateListener(l: IdListener): void {
    this.idListeners.add(l);
    queueMicrotask(() => this.idListeners.has(l) && this.identity && l(this.identity));
  }
  removeIdentityCertificateListener(l: IdListener): void {
    this.idListeners.delete(l);
  }
}
