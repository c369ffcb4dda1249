// The CA as the control plane runs it: the authority, the authenticators the flags ask for, the
// CA service and TLS on the xDS port, and the periodic clean-up of retired roots.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../log.ts';
import { SOLE_REPLICA, type Leadership } from '../kube/leadership.ts';
import type { AdsServer } from '../xds/ads-server.ts';
import { Authority } from './authority.ts';
import { BootstrapTokens, type TokenAuthenticator } from './bootstrap-tokens.ts';
import { caServiceDefinition, caServiceHandlers, type CaObserver } from './ca-service.ts';
import { DEFAULT_TRUST_DOMAIN } from './identity.ts';
import { RootPublisher } from './root-publisher.ts';
import { XdsTlsCredentials } from './tls-credentials.ts';
import { TokenReviewAuthenticator } from './token-review.ts';
import { DEFAULT_CA_DIR, DEFAULT_TOKEN_AUDIENCE } from './defaults.ts';

export { DEFAULT_CA_DIR };

export interface MeshCaOptions {
  /** File mode: where the root is kept; or an Istio plug-in layout (ca-cert.pem, ca-key.pem, ...). */
  dir?: string;
  trustDomain?: string;
  /** Longest workload certificate lifetime (default 24 h). */
  workloadCertTtlMs?: number;
  /** Bootstrap tokens file: `token namespace serviceAccount` per line. */
  tokensFile?: string;
  /**
   * Cluster mode: the CA's state in Secrets of this namespace of the config cluster (Secret
   * `cacerts`: plug-in CA; else Secret `meshpilot-ca`, made on first start) instead of `dir`.
   */
  secrets?: { kubeConfig: KubeConfig; namespace: string };
  /**
   * Cluster mode: keep the trust bundle in a ConfigMap of every namespace of the config cluster,
   * for injected agents (default true; false leaves ConfigMaps alone).
   */
  publishRoot?: boolean;
  /** That ConfigMap's name (default `meshpilot-ca-root`, as sidecar-config/injection.yaml's `agent.caRootConfigMap`). */
  rootConfigMap?: string;
  /** Kubernetes TokenReview against this cluster (the config cluster), for this audience. */
  kubeConfig?: KubeConfig;
  tokenAudience?: string;
  /** Cluster mode: how often Secret meshpilot-ca is re-read (default 30 s). */
  secretReloadMs?: number;
  /** Refuse xDS streams without a verified workload certificate (the CA service stays open to tokens). */
  requireIdentity?: boolean;
  /** With several replicas: the ConfigMaps are published only while this says so (default: always). */
  leadership?: Leadership;
}

export interface MeshCa {
  authority: Authority;
  tls: XdsTlsCredentials;
  close(): void;
}

const PRUNE_INTERVAL_MS = 3600 * 1000;
/** How often a replica re-reads Secret meshpilot-ca for what another replica wrote. */
const SECRET_RELOAD_MS = 30_000;

export async function startMeshCa(o: MeshCaOptions, ads: AdsServer, log: Logger, observer?: CaObserver): Promise<MeshCa> {
  const trustDomain = o.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  const authorityOpts = { trustDomain, ...(o.workloadCertTtlMs ? { maxWorkloadTtlMs: o.workloadCertTtlMs } : {}) };
  const authority = o.secrets
    ? await Authority.openSecrets(o.secrets.kubeConfig, o.secrets.namespace, authorityOpts)
    : await Authority.open(o.dir ?? DEFAULT_CA_DIR, authorityOpts);
  if (o.secrets && authority.createdRoot) log.info({ secret: authority.dir }, `CA: made a new root and kept it in ${authority.dir}`);
  const tokens: TokenAuthenticator[] = [];
  if (o.tokensFile) tokens.push(new BootstrapTokens(o.tokensFile, trustDomain, log));
  if (o.kubeConfig) tokens.push(new TokenReviewAuthenticator(o.kubeConfig, o.tokenAudience ?? DEFAULT_TOKEN_AUDIENCE, trustDomain));
  if (tokens.length === 0) log.warn('CA: no token authentication (--ca-tokens or a Kubernetes cluster): only renewals with a client certificate are possible');
  ads.addService(caServiceDefinition(), caServiceHandlers({ authority, tokens, log, ...(observer ? { observer } : {}) }));
  ads.setPeerTrustDomain(trustDomain, o.requireIdentity ?? false);
  const tls = await XdsTlsCredentials.create(authority, log);
  const prune = setInterval(() => {
    const gone = authority.pruneRoots();
    if (gone.length) log.info({ roots: gone }, 'CA: retired roots dropped (every certificate they signed has expired)');
  }, PRUNE_INTERVAL_MS);
  prune.unref();
  // Cluster mode: a rotation staged or activated through another replica reaches this one.
  const reload = o.secrets
    ? setInterval(() => {
        authority.reloadFromSecret().then(
          (changed) => changed && log.info({ roots: authority.rootInfo().map((r) => ({ serial: r.serial, signing: r.signing, ...(r.activateAt ? { activateAt: r.activateAt.toISOString() } : {}) })) }, `CA: roots changed in ${authority.dir} (another replica)`),
          (e) => log.warn({ err: (e as Error).message }, `CA: cannot re-read ${authority.dir}`),
        );
      }, o.secretReloadMs ?? SECRET_RELOAD_MS)
    : undefined;
  reload?.unref();
  // Only the leader publishes: a fresh publisher (its own watches, a full comparison) per term.
  let publisher: RootPublisher | undefined;
  const secrets = o.publishRoot !== false ? o.secrets : undefined;
  const leadership = o.leadership ?? SOLE_REPLICA;
  const publish = (leading: boolean) => {
    if (leading && !publisher && secrets) {
      publisher = new RootPublisher({ kubeConfig: secrets.kubeConfig, ...(o.rootConfigMap ? { configMapName: o.rootConfigMap } : {}), bundle: () => authority.bundlePem(), onBundleChange: (fn) => authority.onChange(fn), log });
      publisher.start();
    } else if (!leading && publisher) {
      publisher.stop();
      publisher = undefined;
    }
  };
  const unsubscribe = secrets ? leadership.onChange(publish) : () => {};
  publish(leadership.isLeader());
  const root = authority.roots()[0]!;
  log.info(
    { mode: authority.mode, dir: authority.dir, trustBundle: authority.trustBundlePath, trustDomain, root: root.subject, rootNotAfter: root.notAfter.toISOString(), maxWorkloadCertTtlSeconds: authority.maxWorkloadTtlMs / 1000, authenticators: tokens.map((t) => t.name) },
    `mesh CA ready; agents trust ${authority.trustBundlePath}`,
  );
  return {
    authority,
    tls,
    close() {
      clearInterval(prune);
      clearInterval(reload);
      unsubscribe();
      publisher?.stop();
      tls.close();
      authority.close();
    },
  };
}
