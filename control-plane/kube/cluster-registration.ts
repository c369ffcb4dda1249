// Cluster registrations (a KubeConfig each) from the flags cluster-flags.ts parsed. Apart from the
// parsing, so the command line loads the Kubernetes client only when `serve` is given a cluster.
import { KubeConfig } from '@kubernetes/client-node';
import type { ClusterRegistration } from './cluster.ts';
import { parseGateway } from './network-gateways.ts';
import type { ClusterFlag } from './cluster-spec.ts';

export function registrationFromFlag(f: ClusterFlag): ClusterRegistration {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(f.kubeconfig);
  return {
    name: f.name,
    kubeConfig,
    origin: `--cluster ${f.name}`,
    ...(f.network ? { network: f.network } : {}),
    ...(f.gateway ? { gateway: parseGateway(f.gateway) } : {}),
  };
}

export interface ConfigClusterFlags { kubeconfig?: string; inCluster?: boolean; clusterName: string; network?: string; gateway?: string }

/** The config cluster, or undefined when neither --kubeconfig nor --in-cluster is given. */
export function configClusterFromFlags(f: ConfigClusterFlags): ClusterRegistration | undefined {
  if (!f.kubeconfig && !f.inCluster) return undefined;
  const kubeConfig = new KubeConfig();
  if (f.kubeconfig) kubeConfig.loadFromFile(f.kubeconfig);
  else kubeConfig.loadFromCluster();
  return {
    name: f.clusterName,
    kubeConfig,
    origin: f.kubeconfig ? `--kubeconfig ${f.kubeconfig}` : 'in-cluster',
    ...(f.network ? { network: f.network } : {}),
    ...(f.gateway ? { gateway: parseGateway(f.gateway) } : {}),
  };
}
