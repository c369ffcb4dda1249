// The non-HTTP servers of a gateway (Istio's semantics):
// - TCP (and MONGO, MYSQL, REDIS): the first VirtualService tcp route bound to the gateway for the
//   server's port -> one tcp_proxy chain;
// - TLS with tls.mode SIMPLE/MUTUAL/ISTIO_MUTUAL: the same, behind the server's certificate
//   (gateway-tls.ts), the chain chosen by the server's hosts as SNI;
// - PASSTHROUGH (TLS or HTTPS): a chain per tls route match, by its sniHosts (those within the
//   server's hosts), nothing terminated;
// - AUTO_PASSTHROUGH: no rule at all: the SNI `outbound_.<port>_.<subset>_.<host>` a mesh client
//   sets names the cluster, one chain per cluster of a host the server takes (east-west gateways).
//   Their clusters are copies of the mesh's without TLS origination: the client's own mTLS passes
//   through to the workload (Istio's SNI-DNAT clusters, named as the SNI).
// Chain names `<server port>/<vs namespace>/<vs name>/<tcp|tls>/<index>` lead explain to the rule.
import type { Gateway, GatewayL4Route, GatewayServer, GatewayVirtualService, Model, UpstreamCluster } from '../model/types.ts';
import { serverKind } from '../model/gateways.ts';
import type { Json } from '../json.ts';
import { gatewayDownstreamTls } from './gateway-tls.ts';
import { tcpProxyFilter } from './listeners-tcp.ts';

export interface Placed { gateway: Gateway; server: GatewayServer }

/** Does a Gateway server host admit this VirtualService host or SNI? The name both take, or undefined. */
export function intersectHost(server: string, vs: string): string | undefined {
  if (server === '*') return vs;
  if (vs === '*') return server;
  if (server === vs) return server;
  const covers = (wild: string, name: string) => wild.startsWith('*.') && name.endsWith(wild.slice(1));
  if (covers(server, vs)) return vs;
  if (covers(vs, server)) return server;
  return undefined;
}

/** The rules bound to the server's gateway whose hosts the server takes (namespace included). */
function rulesFor(model: Model, p: Placed): GatewayVirtualService[] {
  return model.gatewayVirtualServices.filter(
    (vs) => vs.gateways.includes(p.gateway.key) && p.server.hosts.some((sh) => (sh.namespace === '*' || sh.namespace === vs.namespace) && vs.hosts.some((h) => intersectHost(sh.host, h) !== undefined)),
  );
}

/** The matches of a route that apply at this gateway and port (undefined: the route has none, so all). */
function scopesAt(vs: GatewayVirtualService, r: GatewayL4Route, p: Placed): GatewayL4Route['scopes'] | undefined {
  if (!r.scopes.length) return undefined;
  return r.scopes.filter((s) => (s.gateways ?? vs.gateways).includes(p.gateway.key) && (s.port === undefined || s.port === p.server.port));
}

function routeFilter(name: string, r: GatewayL4Route): Json {
  const d = r.destinations;
  return d.length === 1 ? tcpProxyFilter(d[0]!.cluster, { cluster: d[0]!.cluster }) : tcpProxyFilter(name, { weighted: d.map((x) => ({ name: x.cluster, weight: x.weight })) });
}

/** The SNI names a server's hosts give (none for `*`: any name). */
export function serverNames(s: GatewayServer): string[] {
  const names = s.hosts.map((h) => h.host);
  return names.includes('*') ? [] : [...new Set(names)].sort();
}

/** The first tcp route for the server: Istio takes one (nothing else tells its connections apart). */
function firstTcpRoute(model: Model, p: Placed): { name: string; route: GatewayL4Route } | undefined {
  for (const vs of rulesFor(model, p)) {
    for (const r of vs.l4) {
      if (r.kind !== 'tcp' || !r.destinations.length) continue;
      const scopes = scopesAt(vs, r, p);
      if (scopes === undefined || scopes.length) return { name: `${p.server.port}/${vs.key}/tcp/${r.index}`, route: r };
    }
  }
  return undefined;
}

/** `taken`: SNI names already claimed on this listener (`''`: the chain without names). */
function claim(names: string[], taken: Set<string>): string[] | undefined {
  if (!names.length) {
    if (taken.has('')) return undefined;
    taken.add('');
    return [];
  }
  const left = names.filter((n) => !taken.has(n));
  for (const n of left) taken.add(n);
  return left.length ? left : undefined;
}

function chain(name: string, names: string[], filters: Json[], tls?: Json): Json {
  return { name, ...(names.length ? { filter_chain_match: { server_names: [...names].sort() } } : {}), filters, ...(tls ? { transport_socket: tls } : {}) };
}

/** Istio's SNI for a cluster, which AUTO_PASSTHROUGH routes by (and its copy of the cluster is named). */
export function sniDnatName(c: Pick<UpstreamCluster, 'port' | 'subset' | 'host'>): string {
  return `outbound_.${c.port.number}_.${c.subset ?? ''}_.${c.host}`;
}

function autoPassthroughClusters(model: Model, server: GatewayServer): UpstreamCluster[] {
  return model.clusters.filter((c) => server.hosts.some((h) => intersectHost(h.host, c.host) === c.host));
}

/** The chains of one server of a non-HTTP kind, in the order Envoy is given them. */
export function l4ServerChains(model: Model, p: Placed, taken: Set<string>): Json[] {
  const kind = serverKind(p.server);
  const out: Json[] = [];
  if (kind === 'tcp' || kind === 'tls-terminate') {
    const first = firstTcpRoute(model, p);
    if (!first) return out;
    const names = claim(kind === 'tcp' ? [] : serverNames(p.server), taken);
    if (names) out.push(chain(first.name, names, [routeFilter(first.name, first.route)], kind === 'tls-terminate' ? gatewayDownstreamTls(p.server.tls!, []) : undefined));
    return out;
  }
  if (kind === 'passthrough') {
    for (const vs of rulesFor(model, p)) {
      for (const r of vs.l4) {
        if (r.kind !== 'tls' || !r.destinations.length) continue;
        const scopes = scopesAt(vs, r, p);
        const list = scopes ?? [{}];
        list.forEach((s, mi) => {
          // The SNI names the server's hosts and the match's sniHosts both take.
          const wanted = 'sniHosts' in s && s.sniHosts ? s.sniHosts : vs.hosts;
          const names = [...new Set(p.server.hosts.flatMap((h) => wanted.map((w) => intersectHost(h.host, w)).filter((x): x is string => x !== undefined)))];
          if (!names.length) return;
          const got = claim(names.includes('*') ? [] : names, taken);
          const name = `${p.server.port}/${vs.key}/tls/${r.index}${list.length > 1 ? `#${mi}` : ''}`;
          if (got) out.push(chain(name, got, [routeFilter(name, r)]));
        });
      }
    }
    return out;
  }
  if (kind === 'auto-passthrough') {
    for (const c of autoPassthroughClusters(model, p.server)) {
      const sni = sniDnatName(c);
      if (claim([sni], taken)) out.push(chain(sni, [sni], [tcpProxyFilter(sni, { cluster: sni })]));
    }
  }
  return out;
}

/** The SNI-DNAT clusters of a router's AUTO_PASSTHROUGH servers: the mesh's clusters, renamed, without TLS origination. */
export function sniDnatClusters(model: Model, servers: readonly GatewayServer[], translated: ReadonlyMap<string, Json>): Json[] {
  const out = new Map<string, Json>();
  for (const s of servers) {
    if (serverKind(s) !== 'auto-passthrough') continue;
    for (const c of autoPassthroughClusters(model, s)) {
      const base = translated.get(c.name);
      const name = sniDnatName(c);
      if (!base || out.has(name)) continue;
      const { transport_socket: _t, transport_socket_matches: _m, ...rest } = base;
      out.set(name, { ...rest, name });
    }
  }
  return [...out.values()];
}
