// The namespace labels selection needs. An AdmissionReview names the pod's namespace but not its
// labels, so they are read from the API server (the reader is injected: Kubernetes in a cluster, a
// fake in tests) and kept for a short time, so a burst of pod creations costs one read per
// namespace. A relabelled namespace takes effect within `ttlMs`. Failed reads are not cached.
import type { KubeConfig } from '@kubernetes/client-node';

export type Labels = Record<string, string>;
export type NamespaceReader = (name: string) => Promise<Labels>;

export interface NamespaceLabelCache {
  (name: string): Promise<Labels>;
}

export function cachedNamespaceLabels(read: NamespaceReader, ttlMs = 30_000, now: () => number = Date.now): NamespaceLabelCache {
  const entries = new Map<string, { at: number; labels: Promise<Labels> }>();
  return (name: string) => {
    const hit = entries.get(name);
    if (hit && now() - hit.at < ttlMs) return hit.labels;
    // Concurrent callers share one read; a failure removes the entry so the next call retries.
    const labels = read(name).catch((e: unknown) => {
      if (entries.get(name)?.labels === labels) entries.delete(name);
      throw e;
    });
    entries.set(name, { at: now(), labels });
    return labels;
  };
}

/** Reads a namespace's labels with @kubernetes/client-node (default: in-cluster or ~/.kube/config). */
export async function kubernetesNamespaceReader(kubeConfig?: KubeConfig): Promise<NamespaceReader> {
  const k8s = await import('@kubernetes/client-node');
  const kc = kubeConfig ?? defaultKubeConfig(new k8s.KubeConfig());
  const api = kc.makeApiClient(k8s.CoreV1Api);
  return async (name) => (await api.readNamespace({ name })).metadata?.labels ?? {};
}

export function defaultKubeConfig(kc: KubeConfig): KubeConfig {
  kc.loadFromDefault();
  return kc;
}
