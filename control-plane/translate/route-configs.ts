// Route configurations. Sidecars get one per outbound port (named by the port, as in Istio) with a
// virtual host per service on that port, reachable by every name a caller in its namespace may use.
// gRPC clients get one per `host:port`, with the `name:port` forms they dial as domains.
import { uniqueAliases } from '../model/hosts.ts';
import type { Model, RouteTable, UpstreamCluster } from '../model/types.ts';
import { envoyRoutes } from './envoy-routes.ts';
import { mergeFields } from './feature.ts';
import { featuresFor } from './features.ts';
import type { Proxy } from './proxy.ts';
import { tableRoutesForProxy } from './source-scope.ts';
import type { Json } from '../json.ts';
import { ROUTE_CONFIG } from './type-urls.ts';
import type { TranslateMemo } from './memo.ts';
import type { OutboundMode } from '../model/sidecars.ts';
import { proxyScope, visibleTables } from './scope.ts';
import { callerText, tableDeps } from './table-memo.ts';

function virtualHost(t: RouteTable, proxy: Proxy, clusters: Map<string, UpstreamCluster>, domains: string[], model: Model): Json {
  const out: Json = {
    name: `${t.host}:${t.port}`,
    domains,
    routes: envoyRoutes(tableRoutesForProxy(model, t, proxy), clusters, proxy.kind),
  };
  for (const f of featuresFor(proxy.kind)) mergeFields(out, f.virtualHost?.({ model, proxy, host: t.host, port: t.port }));
  return out;
}

/**
 * ServiceEntry `addresses` as domains of the service's virtual host, as Istio adds them: a caller
 * that dialled the virtual IP sends it as the authority (`10.1.2.3`, `10.1.2.3:80`; IPv6 in
 * brackets). CIDR blocks name no single authority and are left out; an address two services on
 * one port both claim goes to the first (Envoy refuses a domain twice in a route config).
 */
function vipDomains(tables: readonly RouteTable[], vipsByHost: ReadonlyMap<string, readonly string[]>, port: number): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const taken = new Set<string>();
  for (const t of tables) {
    const domains: string[] = [];
    for (const a of vipsByHost.get(t.host) ?? []) {
      if (a.includes('/') || taken.has(a)) continue;
      taken.add(a);
      const ip = a.includes(':') ? `[${a}]` : a;
      domains.push(ip, `${ip}:${port}`);
    }
    if (domains.length) out.set(t.host, domains);
  }
  return out;
}

/** Any other authority on a port: leaves as it came (ALLOW_ANY) or is refused with a 502 (REGISTRY_ONLY), as Istio's. */
function catchAll(mode: OutboundMode): Json {
  if (mode === 'REGISTRY_ONLY') return { name: 'block_all', domains: ['*'], routes: [{ name: 'block_all', match: { prefix: '/' }, direct_response: { status: 502 } }] };
  return { name: 'allow_any', domains: ['*'], routes: [{ name: 'allow_any', match: { prefix: '/' }, route: { cluster: 'PassthroughCluster', timeout: '0s' } }] };
}

/** A sidecar's route configs, one per port (only those in `ports` when given). */
export function sidecarRouteConfigs(model: Model, proxy: Proxy, clusters: Map<string, UpstreamCluster>, memo: TranslateMemo, ports?: ReadonlySet<number>): Json[] {
  const caller = callerText(proxy);
  const byPort = new Map<number, RouteTable[]>();
  const vipsByHost = new Map(model.services.flatMap((svc) => (svc.addresses ? [[svc.host, svc.addresses] as const] : [])));
  const scope = proxyScope(model, proxy);
  for (const t of visibleTables(model, scope)) if (!ports || ports.has(t.port)) byPort.set(t.port, [...(byPort.get(t.port) ?? []), t]);
  return [...byPort.keys()].sort((a, b) => a - b).map((port) => {
    const tables = byPort.get(port)!;
    const aliases = uniqueAliases(tables.map((t) => t.host), proxy.namespace);
    const vips = vipDomains(tables, vipsByHost, port);
    return {
    '@type': ROUTE_CONFIG,
    name: String(port),
    virtual_hosts: [
      ...tables.map((t) => {
        const names = aliases.get(t.host)!;
        const addresses = vips.get(t.host) ?? [];
        // The Sidecar decides which VirtualServices' routes the proxy sees (scope.ts).
        return memo.sidecarHosts.get(t, `${caller}|${names.join(',')}|${addresses.join(',')}`, [...tableDeps(model, t, clusters), scope.sidecar], () =>
          virtualHost(t, proxy, clusters, [...names, ...names.map((n) => `${n}:${port}`), ...addresses], model),
        );
      }),
      catchAll(scope.mode),
    ],
    validate_clusters: false,
    };
  });
}

/** For each route table, the `name:port` forms a gRPC client may dial it by (unique per port). */
export function grpcNames(model: Model, proxy: Proxy, memo: TranslateMemo): Map<RouteTable, string[]> {
  // Asked for by listeners and routes of every group: once per model and namespace.
  let perNamespace = memo.grpcNames.get(model.routeTables);
  if (!perNamespace) memo.grpcNames.set(model.routeTables, (perNamespace = new Map()));
  let out = perNamespace.get(proxy.namespace);
  if (!out) {
    const byKey = namesByKey(model.routeTables, proxy.namespace, memo.recentGrpcNames);
    out = new Map(model.routeTables.map((t) => [t, byKey.get(`${t.host}:${t.port}`)!]));
    perNamespace.set(proxy.namespace, out);
  }
  return out;
}

// The names depend only on which hosts and ports have tables, which most changes leave alone:
// the last few answers are kept by that list (a new model has new table objects, not new hosts).
function namesByKey(tables: readonly RouteTable[], namespace: string, recentNames: Map<string, Map<string, string[]>>): Map<string, string[]> {
  const key = `${namespace}\n${tables.map((t) => `${t.host}:${t.port}`).join('\n')}`;
  let out = recentNames.get(key);
  if (!out) {
    out = new Map();
    const ports = [...new Set(tables.map((t) => t.port))];
    for (const port of ports) {
      const here = tables.filter((t) => t.port === port);
      const aliases = uniqueAliases(here.map((t) => t.host), namespace);
      for (const t of here) out.set(`${t.host}:${port}`, aliases.get(t.host)!.map((n) => `${n}:${port}`));
    }
    if (recentNames.size >= 8) recentNames.delete(recentNames.keys().next().value!);
    recentNames.set(key, out);
  }
  return out;
}

/** The route configs of `tables` (all of the model's by default). */
export function grpcRouteConfigs(model: Model, proxy: Proxy, clusters: Map<string, UpstreamCluster>, memo: TranslateMemo, tables: readonly RouteTable[] = model.routeTables): Json[] {
  const names = grpcNames(model, proxy, memo);
  const caller = callerText(proxy);
  return tables.map((t) =>
    memo.grpcRoutes.get(t, `${caller}|${names.get(t)!.join(',')}`, tableDeps(model, t, clusters), () => ({
      '@type': ROUTE_CONFIG,
      name: `${t.host}:${t.port}`,
      virtual_hosts: [virtualHost(t, proxy, clusters, names.get(t)!, model)],
    })),
  );
}
