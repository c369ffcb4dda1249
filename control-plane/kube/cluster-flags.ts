// Cluster registrations from the command line: the config cluster from `--kubeconfig` or the
// pod's own service account (`--in-cluster`), remote clusters from
// `--cluster name=east,kubeconfig=/path,network=net1,gateway=10.0.0.1:15443` (repeatable) or a
// clusters file (`--clusters-file`) listing the same fields. Parsing only: the registrations, which
// load the Kubernetes client, are made by cluster-registration.ts.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
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

/**
 * A clusters file: `clusters: [{ name, kubeconfig, network?, gateway? }]`; kubeconfig paths are
 * relative to the file. Errors name the entry.
 */
export function parseClustersFile(file: string, text = readFileSync(file, 'utf8')): ClusterFlag[] {
  const doc = parse(text) as { clusters?: unknown } | null;
  if (!doc || !Array.isArray(doc.clusters)) throw new Error(`${file}: expected a list under "clusters"`);
  return doc.clusters.map((entry, i) => {
    if (!entry || typeof entry !== 'object' || Array.isArray(entry)) throw new Error(`${file}: clusters[${i}]: expected a map with name, kubeconfig, network, gateway`);
    const fields = Object.entries(entry as Record<string, unknown>).map(([k, v]) => {
      if (typeof v !== 'string') throw new Error(`${file}: clusters[${i}].${k}: expected a string`);
      if (v.includes(',')) throw new Error(`${file}: clusters[${i}].${k}: must not contain ","`);
      return `${k}=${k === 'kubeconfig' ? resolve(dirname(file), v) : v}`;
    });
    try {
      return parseClusterFlag(fields.join(','));
    } catch (e) {
      throw new Error(`${file}: clusters[${i}]: ${e instanceof Error ? e.message : String(e)}`);
    }
  });
}
