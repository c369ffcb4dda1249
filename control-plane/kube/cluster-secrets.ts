// A cluster registered by a Secret (label `meshpilot.io/cluster: <name>`, data `kubeconfig` and
// optionally `network` and `gateway`), as Istio's remote secrets do; and gateway addresses.
import { KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { parseGateway } from './network-gateways.ts';
import type { ClusterRegistration } from './cluster.ts';

function decode(v: string | undefined): string | undefined {
  return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8');
}

/** A Secret's registration: data `kubeconfig` (required), `network` and `gateway` (host:port). */
export function registrationFromSecret(name: string, secret: V1Secret): ClusterRegistration {
  const data = secret.data ?? {};
  const text = decode(data['kubeconfig']);
  if (!text) throw new Error('data.kubeconfig is required (a kubeconfig for the cluster)');
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(text);
  if (!kubeConfig.getCurrentCluster()) throw new Error('data.kubeconfig has no current cluster');
  const network = decode(data['network'])?.trim();
  const gateway = decode(data['gateway'])?.trim();
  return {
    name,
    kubeConfig,
    origin: `Secret ${secret.metadata?.namespace}/${secret.metadata?.name}`,
    ...(network ? { network } : {}),
    ...(gateway ? { gateway: parseGateway(gateway) } : {}),
  };
}

