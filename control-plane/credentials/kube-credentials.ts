// TLS credentials from the config cluster's Secrets, in every namespace: kubernetes.io/tls
// (`tls.crt`, `tls.key`, optional `ca.crt`) and generic ones with `cert`/`key`/`cacert`, as Istio
// reads them for credentialName. One informer (kube/watcher.ts: restarts with backoff, health);
// service-account tokens and Helm releases are left out by the API server (field selector).
import { CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import type { ComponentHealth } from '../observe/health.ts';
import { ResourceWatcher } from '../kube/watcher.ts';
import type { CredentialStore } from './credential-store.ts';
import { isTlsCredential, type CredentialInput } from './secret-resources.ts';

/** Secrets that are never TLS credentials and can be many or large. */
export const CREDENTIAL_FIELD_SELECTOR = 'type!=kubernetes.io/service-account-token,type!=helm.sh/release.v1';

/** A Secret's TLS data, decoded; undefined for a Secret that holds none. */
export function credentialOfSecret(s: V1Secret): CredentialInput | undefined {
  const raw = s.data ?? {};
  const data: Record<string, string> = {};
  for (const k of ['tls.crt', 'tls.key', 'ca.crt', 'cert', 'key', 'cacert']) if (raw[k] !== undefined) data[k] = Buffer.from(raw[k], 'base64').toString('utf8');
  if (!isTlsCredential(data) || !s.metadata?.namespace || !s.metadata.name) return undefined;
  return { namespace: s.metadata.namespace, name: s.metadata.name, data };
}

export class KubeCredentials {
  private readonly watcher: ResourceWatcher<V1Secret>;
  private scheduled = false;
  private stopped = false;

  constructor(kubeConfig: KubeConfig, private readonly store: CredentialStore, opts: { backoffMinMs?: number; backoffMaxMs?: number } = {}) {
    const core = kubeConfig.makeApiClient(CoreV1Api);
    this.watcher = new ResourceWatcher<V1Secret>({
      kubeConfig,
      path: '/api/v1/secrets',
      list: () => core.listSecretForAllNamespaces({ fieldSelector: CREDENTIAL_FIELD_SELECTOR }),
      fieldSelector: CREDENTIAL_FIELD_SELECTOR,
      onChange: () => this.schedule(),
      watchTimeoutSeconds: 300,
      ...opts,
    });
  }

  start(): void {
    this.watcher.start();
  }

  stop(): void {
    this.stopped = true;
    this.watcher.stop();
  }

  /** Per Secret object (the informer keeps an unchanged Secret's object): decoded once. */
  private readonly decoded = new WeakMap<V1Secret, CredentialInput | null>();

  private credentialOf(s: V1Secret): CredentialInput | undefined {
    let c = this.decoded.get(s);
    if (c === undefined) this.decoded.set(s, (c = credentialOfSecret(s) ?? null));
    return c ?? undefined;
  }

  /** Events of one turn of the event loop are applied together. */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.stopped) return;
      this.store.set('kubernetes', this.watcher.list().flatMap((s) => this.credentialOf(s) ?? []));
    });
  }

  health(): ComponentHealth {
    const h = this.watcher.status();
    // Not a readiness gate: proxies wait for a Secret that is not there yet, and get it when it is.
    return { name: 'credentials/kubernetes', ready: true, healthy: h.healthy, detail: h.healthy ? (h.synced ? 'Secrets synced' : 'syncing Secrets') : `cannot watch Secrets: ${h.reason ?? 'not connected yet'}` };
  }
}
