// One `--cluster name=east,kubeconfig=/path,network=net1,gateway=10.0.0.1:15443` value, parsed.
// Apart from cluster-flags.ts (which reads clusters files with the YAML parser) so the command line
// can check the flag while it parses without loading YAML.
import { parseGateway } from './network-gateways.ts';

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
