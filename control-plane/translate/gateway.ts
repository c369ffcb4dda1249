// A gateway proxy's listeners and route configs (node type `router`). It has no inbound side and
// no iptables capture: one listener per server port of the Gateways that select it, bound on
// 0.0.0.0 (or the server's `bind`). Plain HTTP servers of a port share one connection manager and
// route config `http.<port>` (Istio's name); each TLS-terminating server gets a filter chain chosen
// by SNI with its certificate, and route config `https.<port>.<portName>.<gateway>.<namespace>`.
// Virtual hosts are the Gateway's hosts intersected with the hosts of the VirtualServices bound to
// it; routes are those rules' routes for that gateway (a match's `gateways` narrowing the rule's).
import { labelsMatch } from '../model/services.ts';
import { serverKind } from '../model/gateways.ts';
import { intersectHost, l4ServerChains, type Placed, serverNames } from './gateway-l4.ts';
import type { Gateway, GatewayServer, GatewayVirtualService, HttpRoute, Model, UpstreamCluster } from '../model/types.ts';
import type { Json } from '../json.ts';
import { envoyRoutes } from './envoy-routes.ts';
import { gatewayDownstreamTls } from './gateway-tls.ts';
import { httpConnectionManager, httpFilters } from './hcm.ts';
import type { Proxy } from './proxy.ts';
import { routesForProxy } from './source-scope.ts';
import { TLS_INSPECTOR_FILTER } from './inbound-mtls.ts';
import { endpointPort } from '../model/services.ts';
import { LISTENER, ROUTE_CONFIG } from './type-urls.ts';

/** The Gateways whose selector the proxy's labels satisfy (in any namespace, Istio's default). */
export function gatewaysFor(model: Model, proxy: Proxy): Gateway[] {
  return proxy.router ? model.gateways.filter((g) => labelsMatch(g.selector, proxy.labels)) : [];
}

/** The servers that get a listener, by (bind address, port), in gateway then server order. */
function serversByListener(gateways: readonly Gateway[]): Map<string, Placed[]> {
  const out = new Map<string, Placed[]>();
  for (const gateway of gateways) {
    for (const server of gateway.servers) {
      const k = `${server.bind ?? '0.0.0.0'}_${server.port}`;
      out.set(k, [...(out.get(k) ?? []), { gateway, server }]);
    }
  }
  return out;
}

function isHttpsServer(s: GatewayServer): boolean {
  return serverKind(s) === 'https';
}

function isPlainHttpServer(s: GatewayServer): boolean {
  return serverKind(s) === 'http';
}

export function httpsRouteName(p: Placed): string {
  return `https.${p.server.port}.${p.server.portName}.${p.gateway.name}.${p.gateway.namespace}`;
}

/**
 * Where the pod listens for a server port: Istio's servers name the gateway Service's port, and
 * the pod listens on that port's target. When the proxy's IP is an endpoint of a service with
 * that port, its endpoint port is used; otherwise the server port itself.
 */
function listenPort(model: Model, proxy: Proxy, port: number): number {
  if (!proxy.ip) return port;
  for (const svc of model.services) {
    const sp = svc.ports.find((p) => p.number === port);
    if (!sp) continue;
    const ep = svc.endpoints.find((e) => e.address === proxy.ip);
    if (ep) return endpointPort(ep, sp);
  }
  return port;
}

export function gatewayListeners(model: Model, proxy: Proxy, gateways: readonly Gateway[]): Json[] {
  const out: Json[] = [];
  for (const [, placed] of serversByListener(gateways)) {
    const first = placed[0]!.server;
    const bind = first.bind ?? '0.0.0.0';
    const port = listenPort(model, proxy, first.port);
    const filters = (statPrefix: string, rds: string) => [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { ...httpConnectionManager(statPrefix, { rds }, httpFilters({ model, proxy, side: 'outbound', port: first.port })), use_remote_address: true } }];
    // Plain HTTP or not, as Istio: the first server decides; other kinds share a port by SNI.
    const plain = isPlainHttpServer(first);
    const chains: Json[] = [];
    if (plain) {
      chains.push({ name: `${bind}_${port}`, filters: filters(`outbound_${bind}_${port}`, `http.${first.port}`) });
    } else {
      // Envoy refuses two chains with the same match: the first server to claim a name keeps it.
      const seen = new Set<string>();
      for (const p of placed) {
        if (isPlainHttpServer(p.server)) continue;
        if (!isHttpsServer(p.server)) {
          chains.push(...l4ServerChains(model, p, seen));
          continue;
        }
        const names = serverNames(p.server);
        const left = names.length ? names.filter((n) => !seen.has(n)) : seen.has('') ? [] : [''];
        if (!left.length) continue;
        for (const n of left) seen.add(n);
        const sni = left.filter(Boolean);
        chains.push({
          name: httpsRouteName(p),
          ...(sni.length ? { filter_chain_match: { server_names: sni } } : {}),
          filters: filters(`outbound_${bind}_${port}`, httpsRouteName(p)),
          transport_socket: gatewayDownstreamTls(p.server.tls!, ['h2', 'http/1.1']),
        });
      }
    }
    // A server with no rule (a TCP server without tcp routes) gets no listener: Envoy takes none without chains.
    if (!chains.length) continue;
    // tls_inspector only where a chain needs the SNI or TLS: server-first protocols (MySQL) send nothing to inspect.
    const inspect = chains.some((c) => c.filter_chain_match !== undefined || c.transport_socket !== undefined);
    out.push({
      '@type': LISTENER,
      name: `${bind}_${port}`,
      address: { socket_address: { address: bind, port_value: port } },
      traffic_direction: 'OUTBOUND',
      ...(inspect ? { listener_filters: [TLS_INSPECTOR_FILTER] } : {}),
      filter_chains: chains,
    });
  }
  return out;
}

export { intersectHost };

/** A rule's routes for one gateway and server port: matches narrowed to those that apply there. */
function routesAt(vs: GatewayVirtualService, gateway: string, port: number): HttpRoute[] {
  const out: HttpRoute[] = [];
  for (const { route, scopes } of vs.routes) {
    if (route.matches.length === 0) {
      out.push(route);
      continue;
    }
    const matches = route.matches.filter((_, i) => {
      const s = scopes[i]!;
      return (s.gateways ?? vs.gateways).includes(gateway) && (s.port === undefined || s.port === port);
    });
    if (matches.length) out.push({ ...route, matches });
  }
  return out;
}

/** The virtual hosts of one route config: the servers' hosts against the rules bound to their gateways. */
function virtualHosts(model: Model, proxy: Proxy, clusters: Map<string, UpstreamCluster>, placed: readonly Placed[], port: number): Json[] {
  const byName = new Map<string, { routes: HttpRoute[]; requireTls: boolean }>();
  const order: string[] = [];
  const add = (name: string, routes: HttpRoute[], requireTls: boolean) => {
    let v = byName.get(name);
    if (!v) {
      byName.set(name, (v = { routes: [], requireTls }));
      order.push(name);
    }
    for (const r of routes) if (!v.routes.includes(r)) v.routes.push(r);
  };
  for (const { gateway, server } of placed) {
    const redirect = server.tls?.httpsRedirect === true && server.protocol !== 'HTTPS';
    let matched = false;
    for (const vs of model.gatewayVirtualServices) {
      if (!vs.gateways.includes(gateway.key)) continue;
      const routes = routesAt(vs, gateway.key, server.port);
      for (const sh of server.hosts) {
        if (sh.namespace !== '*' && sh.namespace !== vs.namespace) continue;
        for (const h of vs.hosts) {
          const name = intersectHost(sh.host, h);
          if (name === undefined) continue;
          matched = true;
          add(name, routes, redirect);
        }
      }
    }
    // A redirecting server answers with its redirect even when no rule is bound to it.
    if (!matched && redirect) for (const sh of server.hosts) add(sh.host, [], true);
  }
  return order.map((name) => {
    const v = byName.get(name)!;
    return {
      name: `${name}:${port}`,
      // Any port in the Host header; a wildcard name has its one `*` already (Envoy allows one).
      domains: name.includes('*') ? [name] : [name, `${name}:*`],
      routes: envoyRoutes(routesForProxy(v.routes, proxy), clusters, 'envoy'),
      ...(v.requireTls ? { require_tls: 'ALL' } : {}),
    };
  });
}

/** Istio's answer where no rule serves a host: 404. */
const BLACKHOLE = { name: 'blackhole:*', domains: ['*'], routes: [{ name: 'default', match: { prefix: '/' }, direct_response: { status: 404 } }] };

export function gatewayRouteConfigs(model: Model, proxy: Proxy, clusters: Map<string, UpstreamCluster>, gateways: readonly Gateway[]): Json[] {
  const out: Json[] = [];
  const config = (name: string, hosts: Json[]) => ({ '@type': ROUTE_CONFIG, name, virtual_hosts: hosts.some((h) => (h.domains as string[]).includes('*')) ? hosts : [...hosts, BLACKHOLE], validate_clusters: false });
  for (const [, placed] of serversByListener(gateways)) {
    const first = placed[0]!.server;
    if (isPlainHttpServer(first)) {
      out.push(config(`http.${first.port}`, virtualHosts(model, proxy, clusters, placed.filter((p) => isPlainHttpServer(p.server)), first.port)));
      continue;
    }
    for (const p of placed) if (isHttpsServer(p.server)) out.push(config(httpsRouteName(p), virtualHosts(model, proxy, clusters, [p], first.port)));
  }
  return out;
}
