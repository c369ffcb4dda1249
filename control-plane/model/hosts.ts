// Host name rules, as Istio users know them: a name without dots is a short name in the rule's
// own namespace (`reviews` in `default` is `reviews.default.svc.cluster.local`).
export const CLUSTER_DOMAIN = 'cluster.local';

export function resolveHost(host: string, namespace: string): string {
  return host.includes('.') || host === '*' ? host : `${host}.${namespace}.svc.${CLUSTER_DOMAIN}`;
}

/** For `name.ns.svc.cluster.local` returns { name, namespace }; otherwise undefined. */
export function splitKubernetesHost(host: string): { name: string; namespace: string } | undefined {
  const suffix = `.svc.${CLUSTER_DOMAIN}`;
  if (!host.endsWith(suffix)) return undefined;
  const parts = host.slice(0, -suffix.length).split('.');
  return parts.length === 2 ? { name: parts[0], namespace: parts[1] } : undefined;
}

/**
 * Every name a caller in `callerNamespace` may use for a host: the FQDN, and for Kubernetes-style
 * hosts `name.ns`, `name.ns.svc` and, from the same namespace, the bare `name`.
 */
export function hostAliases(host: string, callerNamespace: string): string[] {
  const k = splitKubernetesHost(host);
  if (!k) return [host];
  const names = [host, `${k.name}.${k.namespace}.svc`, `${k.name}.${k.namespace}`];
  if (k.namespace === callerNamespace) names.push(k.name);
  return names;
}

export function clusterName(direction: 'outbound' | 'inbound', port: number, subset: string | undefined, host: string): string {
  return `${direction}|${port}|${subset ?? ''}|${host}`;
}
