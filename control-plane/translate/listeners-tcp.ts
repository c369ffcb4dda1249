// The L4 side of a sidecar's outbound listener for one port: a filter chain per tcp/tls route
// match, told apart by destination address (the service's VIPs or the match's
// destinationSubnets) and SNI (tls_inspector), each a tcp_proxy to the route's cluster(s). Envoy
// picks the most specific chain (address, then SNI), not the first: where two routes claim the
// same address and SNI, the earlier one keeps it (as Istio), so no two chains ever overlap.
import { isIP } from 'node:net';
import { keepApplying, sourceApplies } from './source-scope.ts';
import { type ProxyScope, seesPort } from './scope.ts';
import { clusterName } from '../model/hosts.ts';
import type { L4Match, L4Route, L4Table, Model } from '../model/types.ts';
import type { Json } from '../json.ts';
import type { Proxy } from './proxy.ts';
import { TCP_PROXY } from './type-urls.ts';

export const PASSTHROUGH_CHAIN = 'PassthroughFilterChain';

export function tcpProxyFilter(statPrefix: string, target: { cluster: string } | { weighted: Array<{ name: string; weight: number }> }): Json {
  const route = 'cluster' in target ? { cluster: target.cluster } : { weighted_clusters: { clusters: target.weighted } };
  return { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY, stat_prefix: statPrefix, ...route } };
}

/** The routes this sidecar takes, each with only the matches that apply to it (none: matches all):
 * source conditions, and `gateways` naming `mesh` (or absent). */
export function l4RoutesForProxy(routes: readonly L4Route[], proxy: Proxy): L4Route[] {
  return keepApplying<L4Match, L4Route>(routes, (m) => (!m.gateways || m.gateways.includes('mesh')) && sourceApplies(m, proxy));
}

/** `10.1.2.3/16` -> Envoy's CidrRange, on the network address (what Envoy itself compares). */
export function cidrRange(text: string): { address_prefix: string; prefix_len: number } {
  const [addr = '', len] = text.split('/');
  const v4 = isIP(addr) === 4;
  const bits = len === undefined ? (v4 ? 32 : 128) : Number(len);
  if (!v4) return { address_prefix: addr, prefix_len: bits };
  const n = addr.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  const net = bits === 0 ? 0 : n - (n % 2 ** (32 - bits));
  return { address_prefix: [24, 16, 8, 0].map((s) => Math.floor(net / 2 ** s) % 256).join('.'), prefix_len: bits };
}

/** One chain's match, before overlap is taken out: addresses (empty: any) and SNIs (empty: any). */
interface Claim { prefixes: string[]; snis: string[] }

function claimOf(table: L4Table, route: L4Route, m: L4Match | undefined): Claim {
  const subnets = m?.destinationSubnets.length ? m.destinationSubnets : table.addresses;
  const prefixes = [...new Set(subnets.map(cidrRange).map((c) => `${c.address_prefix}/${c.prefix_len}`))];
  // `*` matches any SNI: no server_names (Envoy has no bare "*" server name).
  let snis = m?.sniHosts && !m.sniHosts.includes('*') ? m.sniHosts.map((s) => s.toLowerCase()) : [];
  // A TLS service reached without a VIP is told apart by its own name in the SNI (as Istio).
  if (route.name === 'default' && !snis.length && !prefixes.length && (table.protocol === 'TLS' || table.protocol === 'HTTPS')) snis = [table.host.toLowerCase()];
  return { prefixes, snis: [...new Set(snis)] };
}

function chainMatch(prefixes: string[], snis: string[]): Json | undefined {
  const fcm: Json = {};
  if (prefixes.length) fcm.prefix_ranges = prefixes.map((p) => { const [a, l] = p.split('/'); return { address_prefix: a!, prefix_len: Number(l) }; });
  if (snis.length) fcm.server_names = [...snis].sort();
  return Object.keys(fcm).length ? fcm : undefined;
}

function routeFilter(table: L4Table, route: L4Route): Json {
  const d = route.destinations;
  if (d.length === 1) return tcpProxyFilter(d[0]!.cluster, { cluster: d[0]!.cluster });
  return tcpProxyFilter(clusterName('outbound', table.port, undefined, table.host), { weighted: d.map((x) => ({ name: x.cluster, weight: x.weight })) });
}

/**
 * The L4 chains of port `port` for this sidecar, in table and route order. `taken`: the
 * address/SNI pairs already served (`|` for the unmatched default, e.g. by an HTTP chain).
 */
export function l4FilterChains(model: Model, proxy: Proxy, port: number, taken: Set<string>, scope: ProxyScope): Json[] {
  const chains: Json[] = [];
  for (const table of tablesByPort(model).get(port) ?? []) {
    if (!seesPort(scope, table.host, table.port)) continue;
    for (const route of l4RoutesForProxy(table.routes, proxy)) {
      if (!route.destinations.length) continue;
      const matches = route.matches.length ? route.matches : [undefined];
      matches.forEach((m, mi) => {
        const claim = claimOf(table, route, m);
        // A service without VIP on a shared port claims nothing by address alone (model/l4-routes.ts).
        if (table.sharedWith && !claim.prefixes.length && !claim.snis.length) return;
        // Split by address so that only the pairs nobody took before are claimed.
        const byPrefix = (claim.prefixes.length ? claim.prefixes : ['']).map((p) => [p, (claim.snis.length ? claim.snis : ['']).filter((s) => !taken.has(`${p}|${s}`))] as const);
        const whole = byPrefix.every(([, s]) => s.length === (claim.snis.length || 1));
        const parts = whole ? [{ prefixes: claim.prefixes, snis: claim.snis }] : byPrefix.filter(([, s]) => s.length).map(([p, s]) => ({ prefixes: p ? [p] : [], snis: s.filter(Boolean) }));
        parts.forEach((part, pi) => {
          for (const p of part.prefixes.length ? part.prefixes : ['']) for (const s of part.snis.length ? part.snis : ['']) taken.add(`${p}|${s}`);
          const base = route.name === 'default' ? clusterName('outbound', table.port, undefined, table.host) : `${table.host}:${table.port}/${route.name}`;
          const name = `${base}${matches.length > 1 ? `#${mi}` : ''}${parts.length > 1 ? `.${pi}` : ''}`;
          const fcm = chainMatch(part.prefixes, part.snis);
          chains.push({ name, ...(fcm ? { filter_chain_match: fcm } : {}), filters: [routeFilter(table, route)] });
        });
      });
    }
  }
  return chains;
}

/** Under REGISTRY_ONLY, the chain for connections no other chain takes: to no host of the registry. */
export function blackHoleFilterChain(): Json {
  return { name: 'BlackHoleFilterChain', filters: [tcpProxyFilter('BlackHoleCluster', { cluster: 'BlackHoleCluster' })] };
}

/** The chain for connections no other chain takes: out as they came (Istio's PassthroughFilterChain). */
export function passthroughFilterChain(): Json {
  return { name: PASSTHROUGH_CHAIN, filters: [tcpProxyFilter('PassthroughCluster', { cluster: 'PassthroughCluster' })] };
}

// The model's L4 tables by port, once per model (every group's listeners look them up by port).
const byPort = new WeakMap<Model, Map<number, L4Table[]>>();
function tablesByPort(model: Model): Map<number, L4Table[]> {
  let m = byPort.get(model);
  if (!m) {
    byPort.set(model, (m = new Map()));
    for (const t of model.l4Tables) m.set(t.port, [...(m.get(t.port) ?? []), t]);
  }
  return m;
}

/** The ports that have an L4 table of a service the proxy sees. */
export function l4Ports(model: Model, scope: ProxyScope): Set<number> {
  return new Set(model.l4Tables.filter((t) => seesPort(scope, t.host, t.port)).map((t) => t.port));
}
