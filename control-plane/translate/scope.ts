// What one proxy sees of the mesh: the services exported to its namespace (exportTo) and, for an
// Envoy sidecar, only those its Sidecar's egress hosts name (`ns/host`, `./host`, `*/host`,
// `ns/*`, `~/...`), on the egress listener's port when it has one; VirtualService routes only when
// exported to it and, under a Sidecar, from a namespace its egress names for the host. Also which
// outbound traffic policy it has. Proxyless gRPC clients ask for names and get no Sidecar scoping
// (Istio's proxyless gRPC does not apply Sidecar either); exportTo still decides what they get.
import { exportedTo } from '../model/export-to.ts';
import { endpointsOnlySince } from '../model/endpoint-update.ts';
import { type OutboundMode, sidecarFor, type EgressHost, type SidecarScope } from '../model/sidecars.ts';
import type { HttpRoute, Model, RouteTable, Service } from '../model/types.ts';
import type { Proxy } from './proxy.ts';

export interface ProxyScope {
  /** The Sidecar in force for an Envoy sidecar (none for gRPC clients). */
  sidecar?: SidecarScope;
  mode: OutboundMode;
  /** What decided `mode`: the Sidecar's key, `mesh` (MeshSettings.outboundTrafficPolicy) or `default`. */
  modeFrom: string;
  /** Hosts seen, with the ports routed (undefined: every port of the service). Absent host: not seen. */
  hosts: ReadonlyMap<string, ReadonlySet<number> | undefined>;
  /** Whether nothing is hidden (no Sidecar egress, nothing exported away): lets callers skip filtering. */
  all: boolean;
}

function hostMatches(pattern: string, host: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1));
  return pattern === host;
}

/** Whether an egress host entry takes config from `namespace` for `host` (`.` is the proxy's own). */
function egressMatches(e: EgressHost, proxyNamespace: string, namespace: string, host: string): boolean {
  if (e.namespace === '~') return false;
  if (e.namespace !== '*' && (e.namespace === '.' ? proxyNamespace : e.namespace) !== namespace) return false;
  return hostMatches(e.host, host);
}

const scopes = new WeakMap<Model, Map<string, ProxyScope>>();

export function proxyScope(model: Model, proxy: Proxy): ProxyScope {
  const sidecar = proxy.kind === 'envoy' ? sidecarFor(model.sidecars, model.mesh, proxy.namespace, proxy.labels) : undefined;
  const key = `${proxy.kind}|${proxy.namespace}|${sidecar?.key ?? ''}`;
  let perModel = scopes.get(model);
  // An endpoint update changes nothing a scope reads: the scopes of the model it came from hold.
  if (!perModel) scopes.set(model, (perModel = scopesOf(endpointsOnlySince(model)) ?? new Map()));
  let s = perModel.get(key);
  if (!s) perModel.set(key, (s = computeScope(model, proxy, sidecar)));
  return s;
}

const scopesOf = (m: Model | undefined) => (m ? scopes.get(m) : undefined);

function computeScope(model: Model, proxy: Proxy, sidecar: SidecarScope | undefined): ProxyScope {
  const hosts = new Map<string, ReadonlySet<number> | undefined>();
  let all = true;
  for (const svc of model.services) {
    if (!exportedTo(svc.exportTo, proxy.namespace)) {
      all = false;
      continue;
    }
    const ports = seenPorts(sidecar, proxy.namespace, svc);
    if (ports === null) all = false;
    else hosts.set(svc.host, ports);
    if (ports) all = false;
  }
  if (model.routeTables.some((t) => t.routes.some((r) => r.exportTo !== undefined)) || sidecar?.egress) all = false;
  const mode = sidecar?.outboundTrafficPolicy ?? model.mesh.outboundTrafficPolicy?.mode ?? 'ALLOW_ANY';
  const modeFrom = sidecar?.outboundTrafficPolicy ? sidecar.key : model.mesh.outboundTrafficPolicy ? 'mesh' : 'default';
  return { ...(sidecar ? { sidecar } : {}), mode, modeFrom, hosts, all };
}

/** null: the service is not seen; undefined: every port; otherwise the egress listeners' ports. */
function seenPorts(sidecar: SidecarScope | undefined, proxyNamespace: string, svc: Service): ReadonlySet<number> | undefined | null {
  if (!sidecar?.egress) return undefined;
  const ports = new Set<number>();
  for (const l of sidecar.egress) {
    if (!l.hosts.some((e) => egressMatches(e, proxyNamespace, svc.namespace, svc.host))) continue;
    if (l.port === undefined) return undefined;
    if (svc.ports.some((p) => p.number === l.port)) ports.add(l.port);
  }
  return ports.size ? ports : null;
}

export function seesHost(scope: ProxyScope, host: string): boolean {
  return scope.hosts.has(host);
}

export function seesPort(scope: ProxyScope, host: string, port: number): boolean {
  if (!scope.hosts.has(host)) return false;
  const ports = scope.hosts.get(host);
  return ports === undefined || ports.has(port);
}

/** Whether a route applies to the proxy: a VirtualService's route must be exported to its namespace
 * and, under a Sidecar with egress, come from a namespace the egress names for the host. */
export function seesRoute(scope: ProxyScope, proxy: Proxy, r: HttpRoute, host: string): boolean {
  if (!r.origin.key.startsWith('VirtualService/')) return true;
  if (!exportedTo(r.exportTo, proxy.namespace)) return false;
  const egress = scope.sidecar?.egress;
  if (!egress) return true;
  const vsNamespace = r.origin.key.split('/')[1]!;
  return egress.some((l) => l.hosts.some((e) => egressMatches(e, proxy.namespace, vsNamespace, host)));
}

/** The routes of a table this proxy gets before source conditions: the visible ones, or the
 * service's default route when it sees none of the table's VirtualService routes. */
export function visibleRoutes(scope: ProxyScope, proxy: Proxy, t: RouteTable): readonly HttpRoute[] {
  if (scope.all) return t.routes;
  const routes = t.routes.filter((r) => seesRoute(scope, proxy, r, t.host));
  if (routes.length === t.routes.length) return t.routes;
  return routes.length || !t.fallback ? routes : [t.fallback];
}

/** The route tables this proxy sees (a host it sees, on a port it routes). */
export function visibleTables(model: Model, scope: ProxyScope): readonly RouteTable[] {
  return scope.all ? model.routeTables : model.routeTables.filter((t) => seesPort(scope, t.host, t.port));
}
