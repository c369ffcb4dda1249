// VirtualService `tcp` and `tls` routes become one ordered L4 table per non-HTTP service port
// (TCP, TLS, HTTPS), merged like http routes (VirtualServices in namespace/name order, routes in
// file order). tls routes apply to TLS/HTTPS ports, tcp routes to every non-HTTP port, after the
// tls ones (as in Istio). Every table ends with the service's own route: without a rule a
// connection to a service port goes to that port's cluster, not out through PassthroughCluster.
import { type ConfigObject, ofKind } from '../config/types.ts';
import { compareText } from './compare.ts';
import { clusterName, resolveHost } from './hosts.ts';
import type { RouteDestinationIn, TcpRouteIn, TlsRouteIn } from './input.ts';
import { type FieldPath, originOf } from './issues.ts';
import { isHttpProtocol } from './services.ts';
import { ANY_PORT, resolveDestination } from './destination.ts';
import type { RouteContext, RouteInputs } from './routes.ts';
import type { L4Match, L4Route, L4Table, Origin, Protocol, Service, WeightedDestination } from './types.ts';

type L4RouteIn = TcpRouteIn | TlsRouteIn;
type MatchIn = NonNullable<L4RouteIn['match']>[number];

const isTlsProtocol = (p: Protocol) => p === 'TLS' || p === 'HTTPS';

/** A VirtualService's L4 routes, per table key (`host:port`), before rejections are known. */
export interface L4Resolved {
  obj: ConfigObject;
  pending: Array<[string, L4Route]>;
}

/** `vsGateways`: the VirtualService's own `gateways`, which a match without its own list takes (Istio). */
function l4Match(m: MatchIn, vsGateways: readonly string[] | undefined): L4Match {
  const sni = 'sniHosts' in m ? m.sniHosts : undefined;
  const gateways = m.gateways ?? vsGateways;
  return {
    destinationSubnets: [...(m.destinationSubnets ?? [])],
    ...(sni ? { sniHosts: [...sni] } : {}),
    ...(m.sourceLabels ? { sourceLabels: { ...m.sourceLabels } } : {}),
    ...(m.sourceNamespace ? { sourceNamespace: m.sourceNamespace } : {}),
    ...(gateways ? { gateways: [...gateways] } : {}),
  };
}

// A route's origin needs its position, which costs a parse of the file: kept per rule object
// (an unchanged file keeps its objects), so a rebuild does not parse again.
const origins = new WeakMap<ConfigObject, Map<string, Origin>>();
export function routeOrigin(obj: ConfigObject, path: FieldPath): Origin {
  let m = origins.get(obj);
  if (!m) origins.set(obj, (m = new Map()));
  const key = path.join('.');
  let o = m.get(key);
  if (!o) m.set(key, (o = originOf(obj, path)));
  return o;
}

function percent(n: number): string {
  return `${Number(n.toFixed(2))}%`;
}

/** The destinations of one route for a table port, or undefined when one does not resolve. */
export function destinations(obj: ConfigObject, routes: RouteDestinationIn[], base: FieldPath, tablePort: number, ctx: RouteContext, clusters?: RouteInputs['clusters']): WeightedDestination[] | undefined {
  const out: WeightedDestination[] = [];
  for (const [j, rd] of routes.entries()) {
    const d = resolveDestination(obj, rd.destination, [...base, 'route', j, 'destination'], tablePort, ctx, 'destination', 'destination.port.number');
    if (!d) return undefined;
    // A single destination takes every connection, whatever weight it names (as for http).
    out.push({ cluster: d.cluster, host: d.host, port: d.port, ...(d.subset !== undefined ? { subset: d.subset } : {}), weight: routes.length === 1 ? 100 : (rd.weight ?? 0) });
  }
  const total = out.reduce((n, d) => n + d.weight, 0);
  if (out.length > 1 && total !== 100 && total > 0) {
    const shares = out.map((d) => `${d.subset ?? d.host} ${percent((d.weight * 100) / total)}`).join(', ');
    ctx.issues.warn(obj, [...base, 'route'], `the weights add up to ${total}, not 100: they are taken as relative shares (${shares})`);
  }
  // As for http (routes.ts): a destination without endpoints is a warning, never a rejection.
  out.forEach((d, j) => {
    const c = clusters?.get(d.cluster);
    if (!c || c.endpoints.length > 0 || c.resolution === 'NONE' || d.weight === 0) return;
    const what = d.subset !== undefined ? `subset ${d.subset} of ${d.host}` : d.host;
    ctx.issues.warn(obj, [...base, 'route', j, 'destination', d.subset !== undefined ? 'subset' : 'host'], `${what} has no endpoints now: its ${percent((d.weight * 100) / total)} share of this route's connections fails (Envoy closes them)`);
  });
  return out.filter((d) => d.weight > 0);
}

function appliesToPort(r: L4RouteIn, port: number): boolean {
  const ports = (r.match ?? []).map((m) => m.port);
  return ports.length === 0 || ports.some((p) => p === undefined || p === port);
}

/** Resolves the tcp/tls routes of every VirtualService; errors reject the rule (as for http). */
export function resolveL4Routes(objects: ConfigObject[], inputs: RouteInputs): L4Resolved[] {
  const out: L4Resolved[] = [];
  const ctx: RouteContext = {
    service: (h) => inputs.services.get(h),
    hasSubset: (h, subset) => inputs.rules.get(h)?.spec.subsets?.some((s) => s.name === subset) ?? false,
    target: () => {},
    issues: inputs.issues,
  };
  for (const obj of ofKind(objects, 'VirtualService').sort((a, b) => compareText(a.key, b.key))) {
    const spec = obj.spec;
    if (!spec.tcp?.length && !spec.tls?.length) continue;
    // The VirtualService-level `gateways` (absent: mesh only), read loosely: the field belongs to
    // the Gateway support, which may not be in this schema.
    const vsGateways = (spec as { gateways?: string[] }).gateways;
    const r: L4Resolved = { obj, pending: [] };
    const used = { tcp: new Set<number>(), tls: new Set<number>() };
    const placed = new Set<string>();
    for (const h of spec.hosts ?? []) {
      // An unknown host is reported by the http side (routes.ts), once for the whole rule.
      const svc = ctx.service(resolveHost(h, obj.namespace));
      if (!svc) continue;
      for (const port of svc.ports) {
        if (isHttpProtocol(port.protocol)) continue;
        const kinds = isTlsProtocol(port.protocol) ? (['tls', 'tcp'] as const) : (['tcp'] as const);
        for (const kind of kinds) {
          (spec[kind] ?? []).forEach((route, i) => {
            if (!appliesToPort(route, port.number)) return;
            used[kind].add(i);
            const key = `${svc.host}:${port.number}`;
            if (placed.has(`${key}#${kind}${i}`)) return;
            placed.add(`${key}#${kind}${i}`);
            const base: FieldPath = ['spec', kind, i];
            const dests = destinations(obj, route.route ?? [], base, port.number, ctx, inputs.clusters);
            if (!dests) return;
            // Only the matches for this port stay; the port is the table's.
            const matches = (route.match ?? []).filter((m) => m.port === undefined || m.port === port.number).map((m) => l4Match(m, vsGateways));
            // A route without matches still belongs only to the VirtualService's gateways.
            if (!matches.length && vsGateways) matches.push({ destinationSubnets: [], gateways: [...vsGateways] });
            r.pending.push([key, { name: `${obj.namespace}/${obj.name}/${kind}/${i}`, kind, matches, destinations: dests, origin: routeOrigin(obj, base) }]);
          });
        }
      }
    }
    // A route no port of its hosts takes is never used: its references are still checked.
    const anyKnown = (spec.hosts ?? []).some((h) => ctx.service(resolveHost(h, obj.namespace)) !== undefined);
    for (const kind of ['tcp', 'tls'] as const) {
      (spec[kind] ?? []).forEach((route, i) => {
        if (used[kind].has(i) || !anyKnown) return;
        destinations(obj, route.route ?? [], ['spec', kind, i], ANY_PORT, ctx);
        const ports = kind === 'tls' ? 'TLS or HTTPS port' : 'TCP, TLS or HTTPS port';
        inputs.issues.warn(obj, ['spec', kind, i], `this ${kind} route applies to no ${ports} of its hosts, so it is never used`);
      });
    }
    out.push(r);
  }
  return out;
}

/** A match that claims a table's connections only by the service's own (absent) VIP. */
const byVipOnly = (route: L4Route) => route.matches.length === 0 || route.matches.some((m) => !m.destinationSubnets.length && !m.sniHosts?.length);

/**
 * Services without a VIP on a TCP port (a TLS one is told apart by SNI) that share the port with
 * another such service or with HTTP: nothing tells their connections apart, so none of them takes
 * the port's unmatched connections (they go on to their original destination, as before a rule).
 */
function markShared(tables: L4Table[], services: Iterable<Service>): void {
  const httpPorts = new Set<number>();
  for (const svc of services) for (const p of svc.ports) if (isHttpProtocol(p.protocol)) httpPorts.add(p.number);
  const blind = new Map<number, L4Table[]>();
  for (const t of tables) if (!t.addresses.length && !isTlsProtocol(t.protocol)) blind.set(t.port, [...(blind.get(t.port) ?? []), t]);
  for (const [port, list] of blind) {
    if (list.length < 2 && !httpPorts.has(port)) continue;
    for (const t of list) t.sharedWith = [...list.filter((x) => x !== t).map((x) => x.host), ...(httpPorts.has(port) ? ['HTTP services'] : [])];
  }
}

/** The L4 tables, from the resolved routes of the rules still in force and every non-HTTP port. */
export function buildL4Tables(resolved: readonly L4Resolved[], rejected: ReadonlySet<string>, inputs: Pick<RouteInputs, 'services' | 'issues'>): L4Table[] {
  const routes = new Map<string, L4Route[]>();
  for (const r of resolved) {
    if (rejected.has(r.obj.key)) continue;
    for (const [key, route] of r.pending) {
      const list = routes.get(key);
      if (list) list.push(route);
      else routes.set(key, [route]);
    }
  }
  const tables: L4Table[] = [];
  for (const svc of inputs.services.values()) {
    for (const port of svc.ports) {
      if (isHttpProtocol(port.protocol)) continue;
      const own: L4Route = {
        name: 'default',
        kind: 'tcp',
        matches: [],
        destinations: [{ cluster: clusterName('outbound', port.number, undefined, svc.host), host: svc.host, port: port.number, weight: 100 }],
        origin: svc.origin,
      };
      // tls routes before tcp routes, each in rule order.
      const list = routes.get(`${svc.host}:${port.number}`) ?? [];
      const ordered = [...list.filter((x) => x.kind === 'tls'), ...list.filter((x) => x.kind === 'tcp')];
      tables.push({ host: svc.host, port: port.number, protocol: port.protocol, addresses: [...(svc.addresses ?? [])], routes: [...ordered, own] });
    }
  }
  markShared(tables, inputs.services.values());
  for (const r of resolved) {
    if (rejected.has(r.obj.key)) continue;
    for (const [key, route] of r.pending) {
      const t = tables.find((x) => `${x.host}:${x.port}` === key);
      if (!t?.sharedWith || !byVipOnly(route)) continue;
      const [, kind, i] = route.name.split('/').slice(-3);
      inputs.issues.warn(r.obj, ['spec', kind!, Number(i)], `${t.host} has no VIP (addresses) and port ${t.port} is shared with ${t.sharedWith.join(', ')}: its connections cannot be told apart by address, so this route applies only through destinationSubnets (the others go on to the address the caller connected to)`);
    }
  }
  return tables.sort((a, b) => compareText(a.host, b.host) || a.port - b.port);
}
