// With a self-generated CA, the API server must be told to trust it: the caBundle of every webhook
// in our MutatingWebhookConfiguration is set to it. The client is injected (Kubernetes in a cluster,
// a fake in tests); the change is one JSON Patch, guarded by `test` ops so a configuration edited
// meanwhile is not overwritten blindly.
import type { KubeConfig } from '@kubernetes/client-node';
import { defaultKubeConfig } from './namespace-labels.ts';

export interface WebhookConfiguration {
  webhooks?: { name: string; clientConfig: { caBundle?: string } }[];
}

export type PatchOp = { op: 'test' | 'add' | 'replace'; path: string; value: unknown };

export interface WebhookConfigClient {
  read(name: string): Promise<WebhookConfiguration>;
  patch(name: string, ops: PatchOp[]): Promise<void>;
}

/** Returns how many webhooks were updated (0: already trusted the CA). */
export async function ensureCaBundle(client: WebhookConfigClient, configName: string, caPem: string): Promise<number> {
  const bundle = Buffer.from(caPem).toString('base64');
  const current = await client.read(configName);
  const webhooks = current.webhooks ?? [];
  if (webhooks.length === 0) throw new Error(`MutatingWebhookConfiguration ${configName} has no webhooks`);
  const ops: PatchOp[] = [];
  webhooks.forEach((w, i) => {
    if (w.clientConfig.caBundle === bundle) return;
    ops.push({ op: 'test', path: `/webhooks/${i}/name`, value: w.name });
    ops.push({ op: w.clientConfig.caBundle === undefined ? 'add' : 'replace', path: `/webhooks/${i}/clientConfig/caBundle`, value: bundle });
  });
  if (ops.length > 0) await client.patch(configName, ops);
  return ops.length / 2;
}

export async function kubernetesWebhookConfigClient(kubeConfig?: KubeConfig): Promise<WebhookConfigClient> {
  const k8s = await import('@kubernetes/client-node');
  const kc = kubeConfig ?? defaultKubeConfig(new k8s.KubeConfig());
  const api = kc.makeApiClient(k8s.AdmissionregistrationV1Api);
  return {
    read: async (name) => (await api.readMutatingWebhookConfiguration({ name })) as WebhookConfiguration,
    patch: async (name, ops) => {
      await api.patchMutatingWebhookConfiguration({ name, body: ops }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch));
    },
  };
}
