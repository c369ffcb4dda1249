// The credential sources a control plane runs (Kubernetes Secrets on the config cluster, a
// credentials directory, or both) feeding one CredentialStore, with their health.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../log.ts';
import type { ComponentHealth, HealthProvider } from '../observe/health.ts';
import { CredentialStore } from './credential-store.ts';
import { FileCredentials } from './file-credentials.ts';
import type { KubeCredentials } from './kube-credentials.ts';

export interface CredentialOptions {
  /** With `kubeReader`: Secrets of this cluster. */
  kubeConfig?: KubeConfig;
  /** The Secret reader (kube-credentials.ts), imported by the caller only when there is a cluster: it loads the Kubernetes client. */
  kubeReader?: typeof KubeCredentials;
  dir?: string;
  backoffMinMs?: number;
  backoffMaxMs?: number;
}

export class CredentialSources implements HealthProvider {
  readonly store: CredentialStore;
  private readonly kube: KubeCredentials | undefined;
  private readonly files: FileCredentials | undefined;

  constructor(opts: CredentialOptions, log: Logger) {
    this.store = new CredentialStore(log);
    const backoff = { ...(opts.backoffMinMs !== undefined ? { backoffMinMs: opts.backoffMinMs } : {}), ...(opts.backoffMaxMs !== undefined ? { backoffMaxMs: opts.backoffMaxMs } : {}) };
    if (opts.kubeConfig && !opts.kubeReader) throw new Error('a cluster for credentials needs its reader (kubeReader)');
    this.kube = opts.kubeConfig && opts.kubeReader ? new opts.kubeReader(opts.kubeConfig, this.store, backoff) : undefined;
    this.files = opts.dir ? new FileCredentials(opts.dir, this.store) : undefined;
    this.store.onChange((namespaces) => log.info({ namespaces: [...namespaces].sort(), secrets: this.store.size }, 'TLS credentials changed'));
  }

  start(): void {
    this.kube?.start();
    this.files?.start();
  }

  stop(): void {
    this.kube?.stop();
    this.files?.stop();
  }

  health(): ComponentHealth[] {
    return [...(this.kube ? [this.kube.health()] : []), ...(this.files ? [this.files.health()] : []), ...this.store.health()];
  }
}
