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

/**
 * Aliases for several hosts that share a port, with no name given to two hosts: each host keeps
 * its own name first, then short forms go to the first host that claims them (names compare
 * case-insensitively, as Envoy matches domains).
 */
export function uniqueAliases(hosts: readonly string[], callerNamespace: string): Map<string, string[]> {
  const claimed = new Set(hosts.map((h) => h.toLowerCase()));
  const out = new Map<string, string[]>();
  for (const h of hosts) {
    const names = [h];
    for (const alias of hostAliases(h, callerNamespace).slice(1)) {
      if (claimed.has(alias.toLowerCase())) continue;
      claimed.add(alias.toLowerCase());
      names.push(alias);
    }
    out.set(h, names);
  }
  return out;
}
