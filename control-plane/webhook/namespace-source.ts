// Where the webhook gets namespace labels (selection reads `meshpilot.io/inject` from them), decided
// once at startup and said in one log line:
// - given: `--namespace-labels FILE` (YAML or JSON: namespace -> labels) and/or
//   `--namespace-label ns=key=value` (repeatable; these win over the file);
// - else the cluster, when there is one: `--kubeconfig FILE`, `--in-cluster`, or running in a pod
//   (the service account token is mounted and KUBERNETES_SERVICE_HOST is set);
// - else none: every namespace has no labels, so only pods that opt in themselves are injected.
// The cluster, when there is one, is also what `--webhook-config` patches.
import fs from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { parse } from 'yaml';
import type { Labels } from './namespace-labels.ts';

export const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export interface ClusterAccess {
  kubeConfig: KubeConfig;
  /** For the startup line: "kubeconfig FILE" or "in-cluster config". */
  origin: string;
}

export type NamespaceLabelSource =
  | { kind: 'static'; labels: Record<string, Labels>; origin: string }
  | { kind: 'cluster'; cluster: ClusterAccess }
  | { kind: 'none' };

export interface NamespaceFlags {
  namespaceLabels?: string;
  namespaceLabel?: string[];
  kubeconfig?: string;
  inCluster?: boolean;
}

/** The kubeconfig to use, if any: an explicit flag, else a pod's own service account. */
export function clusterAccess(
  f: Pick<NamespaceFlags, 'kubeconfig' | 'inCluster'>,
  env: NodeJS.ProcessEnv = process.env,
  exists: (file: string) => boolean = fs.existsSync,
): ClusterAccess | undefined {
  if (f.kubeconfig && f.inCluster) throw new Error('give --kubeconfig or --in-cluster, not both');
  if (f.kubeconfig) {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(f.kubeconfig);
    return { kubeConfig, origin: `kubeconfig ${f.kubeconfig}` };
  }
  const inPod = Boolean(env['KUBERNETES_SERVICE_HOST']) && exists(SERVICE_ACCOUNT_TOKEN);
  if (f.inCluster || inPod) {
    if (!inPod) throw new Error(`--in-cluster: not running in a pod (no KUBERNETES_SERVICE_HOST or no ${SERVICE_ACCOUNT_TOKEN})`);
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromCluster();
    return { kubeConfig, origin: 'in-cluster config' };
  }
  return undefined;
}

export function namespaceLabelSource(f: NamespaceFlags, cluster: ClusterAccess | undefined): NamespaceLabelSource {
  const given = givenNamespaceLabels(f.namespaceLabels, f.namespaceLabel ?? []);
  if (given) return { kind: 'static', ...given };
  if (cluster) return { kind: 'cluster', cluster };
  return { kind: 'none' };
}

/** The startup line's text after "namespace labels: ". */
export function describeNamespaceLabelSource(s: NamespaceLabelSource): string {
  switch (s.kind) {
    case 'static':
      return `from ${s.origin} (${Object.keys(s.labels).length} namespaces; any other has no labels)`;
    case 'cluster':
      return `from the cluster (${s.cluster.origin})`;
    case 'none':
      return 'none given: every namespace has no labels, so only pods opting in by label/annotation are injected (give --namespace-labels FILE, --namespace-label ns=key=value, or --kubeconfig)';
  }
}

function givenNamespaceLabels(file: string | undefined, flags: string[]): { labels: Record<string, Labels>; origin: string } | undefined {
  if (file === undefined && flags.length === 0) return undefined;
  const labels: Record<string, Labels> = {};
  const origins: string[] = [];
  if (file !== undefined) {
    // An inline JSON object is accepted too (what the flag used to take).
    const inline = file.trimStart().startsWith('{') && !fs.existsSync(file);
    const from = inline ? '--namespace-labels JSON' : file;
    let text = file;
    if (!inline) {
      try {
        text = fs.readFileSync(file, 'utf8');
      } catch (e) {
        throw new Error(`--namespace-labels: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    }
    Object.assign(labels, parseNamespaceLabels(text, from));
    origins.push(from);
  }
  for (const flag of flags) {
    const [ns, key, value] = parseNamespaceLabelFlag(flag);
    labels[ns] = { ...labels[ns], [key]: value };
  }
  if (flags.length) origins.push('--namespace-label');
  return { labels, origin: origins.join(' and ') };
}

/** YAML or JSON: a map of namespace -> map of label -> string value. Errors name the file and entry. */
export function parseNamespaceLabels(text: string, from: string): Record<string, Labels> {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new Error(`${from}: not YAML or JSON: ${(e as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  const shape = 'expected a map of namespace to labels, e.g. shop: { meshpilot.io/inject: enabled }';
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`${from}: ${shape}`);
  const out: Record<string, Labels> = {};
  for (const [ns, labels] of Object.entries(doc)) {
    if (labels === null) {
      out[ns] = {};
      continue;
    }
    if (typeof labels !== 'object' || Array.isArray(labels)) throw new Error(`${from}: ${ns}: ${shape}`);
    out[ns] = {};
    for (const [key, value] of Object.entries(labels as Record<string, unknown>)) {
      if (typeof value !== 'string') throw new Error(`${from}: ${ns}.${key}: label values are strings, got ${JSON.stringify(value)} (quote it)`);
      out[ns][key] = value;
    }
  }
  return out;
}

/** `ns=key=value` (the value may be empty). */
export function parseNamespaceLabelFlag(text: string): [string, string, string] {
  const m = /^([^=]+)=([^=]+)=(.*)$/.exec(text);
  if (!m) throw new Error(`expected namespace=key=value, e.g. shop=meshpilot.io/inject=enabled, got "${text}"`);
  return [m[1]!.trim(), m[2]!.trim(), m[3]!.trim()];
}
