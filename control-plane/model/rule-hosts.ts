// Which DestinationRule applies to a service, as Istio chooses: a rule's host may be a wildcard
// (`*.local`, `*.example.com`, `*`) and applies to every service it matches; of the rules that
// match, Istio looks in the service's namespace first, then in the root namespace, and takes the
// most specific host there (the exact host, then the longest wildcard).
//
// Istio looks in the caller's own namespace before both. meshpilot builds one set of clusters for
// every caller, so a rule in a third namespace comes after those two for every caller (Istio would
// put it first for callers in that namespace only).

/** Whether a rule for `ruleHost` applies to the service `serviceHost` (which may be a wildcard itself). */
export function ruleHostMatches(ruleHost: string, serviceHost: string): boolean {
  const r = ruleHost.toLowerCase();
  const s = serviceHost.toLowerCase();
  if (r === s || r === '*') return true;
  return r.startsWith('*') && s.endsWith(r.slice(1));
}

/** Higher is more specific: an exact host above every wildcard, then longer wildcards. */
export function hostSpecificity(ruleHost: string): number {
  return ruleHost.startsWith('*') ? ruleHost.length : Number.MAX_SAFE_INTEGER;
}

/** 0: the service's namespace, 1: the root namespace, 2: any other namespace. */
export function namespaceRank(ruleNamespace: string, serviceNamespace: string, rootNamespace: string): number {
  if (ruleNamespace === serviceNamespace) return 0;
  return ruleNamespace === rootNamespace ? 1 : 2;
}
