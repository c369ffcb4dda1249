// Cluster registrations from the command line: the config cluster from `--kubeconfig` or the
// pod's own service account (`--in-cluster`), remote clusters from
// `--cluster name=east,kubeconfig=/path,network=net1,gateway=10.0.0.1:15443` (repeatable) or a
// clusters file (`--clusters-file`) listing the same fields. Parsing only: the registrations, which
// load the Kubernetes client, are made by cluster-registration.ts.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { parseClusterFlag, type ClusterFlag } from './cluster-spec.ts';

export { parseClusterFlag, type ClusterFlag } from './cluster-spec.ts';

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
