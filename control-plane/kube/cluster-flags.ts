// Cluster registrations from the command line: the config cluster from `--kubeconfig` or the
// pod's own service account (`--in-cluster`), remote clusters from
// `--cluster name=east,kubeconfig=/path,network=net1,gateway=10.0.0.1:15443` (repeatable).
import { KubeConfig } from '@kubernetes/client-node';
import type { ClusterRegistration } from './cluster.ts';
import { parseGateway } from './cluster-secrets.ts';

export interface ClusterFlag { name: string; kubeconfig: string; network?: string; gateway?: string }

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export function parseClusterFlag(text: string): ClusterFlag {
  const fields: Record<string, string> = {};
  for (const part of text.split(',')) {
    const i = part.indexOf('=');
    if (i <= 0) throw new Error(`expected key=value, got ${JSON.stringify(part)} (keys: name, kubeconfig, network, gateway)`);
    const key = part.slice(0, i).trim();
    if (!['name', 'kubeconfig', 'network', 'gateway'].includes(key)) throw new Error(`unknown key ${JSON.stringify(key)} (keys: name, kubeconfig, network, gateway)`);
    fields[key] = part.slice(i + 1).trim();
  }
  if (!fields['name'] || !NAME.test(fields['name'])) throw new Error('name= is required: a lower-case DNS-style cluster name');
  if (!fields['kubeconfig']) throw new Error('kubeconfig= is required: the path of a kubeconfig file');
  if (fields['gateway']) parseGateway(fields['gateway']);
  return { name: fields['name'], kubeconfig: fields['kubeconfig'], ...(fields['network'] ? { network: fields['network'] } : {}), ...(fields['gateway'] ? { gateway: fields['gateway'] } : {}) };
}

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
