// Virtual host selection as Envoy (and gRPC, gRFC A28) does it: the authority, lower-cased and with
// its port, is compared with every domain. An exact domain wins; then the longest suffix wildcard
// (`*.foo.com`, `*-bar.foo.com`); then the longest prefix wildcard (`foo.*`); then `*`. A wildcard
// never matches the empty string.
import type { Json } from '../json.ts';

export type DomainMatch = 'exact' | 'suffix wildcard' | 'prefix wildcard' | 'any host (*)';
const RANK: Record<DomainMatch, number> = { exact: 0, 'suffix wildcard': 1, 'prefix wildcard': 2, 'any host (*)': 3 };

function matchType(pattern: string): DomainMatch {
  if (pattern === '*') return 'any host (*)';
  if (pattern.startsWith('*')) return 'suffix wildcard';
  if (pattern.endsWith('*')) return 'prefix wildcard';
  return 'exact';
}

export function domainMatches(pattern: string, authority: string): boolean {
  const p = pattern.toLowerCase();
  const a = authority.toLowerCase();
  switch (matchType(p)) {
    case 'any host (*)':
      return true;
    case 'suffix wildcard':
      return a.length > p.length - 1 && a.endsWith(p.slice(1));
    case 'prefix wildcard':
      return a.length > p.length - 1 && a.startsWith(p.slice(0, -1));
    case 'exact':
      return a === p;
  }
}

export interface VirtualHostChoice {
  vhost: Json;
  domain: string;
  how: DomainMatch;
}

export function selectVirtualHost(vhosts: readonly Json[], authority: string): VirtualHostChoice | undefined {
  let best: VirtualHostChoice | undefined;
  for (const vhost of vhosts) {
    for (const domain of (vhost.domains as string[] | undefined) ?? []) {
      const how = matchType(domain);
      if (best && (RANK[how] > RANK[best.how] || (how === best.how && domain.length <= best.domain.length))) continue;
      if (domainMatches(domain, authority)) best = { vhost, domain, how };
    }
  }
  return best;
}
