// What a model change alters in a proxy's config, without translating the rest.
// A typical change touches one service: a rule edit replaces its route table, an endpoint edit its
// clusters. Everything else kept its objects (model/reuse.ts), so translate() would give the same
// resources for it; walking the thousands of them only to find that out was most of a change's
// cost. Changes that are not local (a service or route table added or removed, rate limits,
// authorization, gateways) return undefined, and the caller translates in full.
import { endpointsOnlySince, onlyEndpointsDiffer } from '../model/endpoint-update.ts';
import type { Model, RouteTable, Service, UpstreamCluster } from '../model/types.ts';
import { outboundClusterFor } from './clusters.ts';
import { hasCluster } from './resolution.ts';
import { proxyScope, seesHost, seesPort } from './scope.ts';
import { clusterLoadAssignment } from './endpoints.ts';
import { grpcListeners } from './listeners-grpc.ts';
import { GRPC_SERVER_LISTENER_PREFIX, grpcServerListeners } from './listeners-grpc-server.ts';
import { inboundCluster, sidecarInboundPorts } from './inbound.ts';
import { outboundListeners, virtualInbound } from './listeners-sidecar.ts';
import type { TranslateMemo } from './memo.ts';
import type { Proxy } from './proxy.ts';
import { grpcRouteConfigs, sidecarRouteConfigs } from './route-configs.ts';
import { clustersByName, type Resource, type Resources } from './translate.ts';
import { CLUSTER, ENDPOINTS, LISTENER, ROUTE_CONFIG, type ResourceType } from './type-urls.ts';

export interface ResourceChanges {
  /** New or changed resources; every other resource is as `translate(prev, proxy)` gave it. */
  set: Resources;
  /** Names no longer given. */
  removed: Record<ResourceType, string[]>;
  /**
   * Per type, the names given in full in `set` (an inbound side, recomputed whole): any such name
   * the previous config has and `set` does not is gone.
   */
  whole: Partial<Record<ResourceType, (name: string) => boolean>>;
}

// What every resource may depend on; any change translates afresh (l4Tables: the tcp/tls chains
// sit in the ports' listeners).
const globalsText = new WeakMap<Model, string>();
function globals(m: Model): string {
  let t = globalsText.get(m);
  // An endpoint update leaves every global part as it was.
  const base = t === undefined ? endpointsOnlySince(m) : undefined;
  if (base && globalsText.has(base)) globalsText.set(m, (t = globalsText.get(base)!));
  // What each proxy sees (scope.ts) depends on the Sidecars and on every service's exportTo: a change
  // of either is not local.
  if (t === undefined) globalsText.set(m, (t = JSON.stringify([m.rateLimits, m.authorizationPolicies, m.peerAuthentications, m.requestAuthentications, m.mesh, m.networkGateways, m.l4Tables, m.sidecars, m.services.flatMap((s) => (s.exportTo ? [s.host, s.exportTo] : []))])));
  return t;
}

/**
 * The services that are not the same objects in both models, as [before, after] (undefined when the
 * lists differ in length: then every service counts as changed).
 */
function changedServices(prev: Model, model: Model): Array<[Service, Service]> | undefined {
  if (prev.services.length !== model.services.length) return undefined;
  const out: Array<[Service, Service]> = [];
  for (let i = 0; i < model.services.length; i++) if (prev.services[i] !== model.services[i]) out.push([prev.services[i]!, model.services[i]!]);
  return out;
}

const vipsOf = (s: Service) => (s.addresses ?? []).join(',');

export function translateChanges(prev: Model, model: Model, proxy: Proxy, memo: TranslateMemo): ResourceChanges | undefined {
  if (prev.clusters.length !== model.clusters.length || prev.routeTables.length !== model.routeTables.length) return undefined;
  if (globals(prev) !== globals(model)) return undefined;
  // A gateway's config is built from Gateways and the rules bound to them: translated whole.
  if (proxy.router) return undefined;
  const kind = proxy.kind;
  const scope = proxyScope(model, proxy);
  const changed = new Set<string>();
  const set: Resources = { [CLUSTER]: [], [ENDPOINTS]: [], [LISTENER]: [], [ROUTE_CONFIG]: [] };
  const removed: Record<ResourceType, string[]> = { [CLUSTER]: [], [ENDPOINTS]: [], [LISTENER]: [], [ROUTE_CONFIG]: [] };
  for (let i = 0; i < model.clusters.length; i++) {
    const c = model.clusters[i]!;
    const was = prev.clusters[i]!;
    if (c === was) continue;
    if (c.name !== was.name) return undefined;
    // Routes and an EDS cluster's own resource read its policy, never its endpoints: an endpoint
    // change is its ClusterLoadAssignment alone.
    const endpointsOnly = onlyEndpointsDiffer(c, was);
    if (!endpointsOnly) changed.add(c.name);
    // As translate(): only the clusters the proxy sees (scope.ts) and can use (resolution.ts); only STATIC ones have EDS.
    if (!seesHost(scope, c.host)) continue;
    if (endpointsOnly) {
      set[ENDPOINTS].push(clusterLoadAssignment(c, proxy, memo) as Resource);
      continue;
    }
    if (hasCluster(c, kind)) set[CLUSTER].push(outboundClusterFor(c, proxy, memo) as Resource);
    else removed[CLUSTER].push(c.name);
    if (c.resolution === 'STATIC') set[ENDPOINTS].push(clusterLoadAssignment(c, proxy, memo) as Resource);
    else removed[ENDPOINTS].push(c.name);
  }
  const services = changedServices(prev, model);
  // A table's virtual host also lists its service's VIPs (route-configs.ts): a ServiceEntry whose
  // `addresses` changed changes the route config without touching the table.
  const vipsChanged = new Set(services?.flatMap(([a, b]) => (vipsOf(a) !== vipsOf(b) ? [b.host] : [])));
  const tables: RouteTable[] = [];
  for (let i = 0; i < model.routeTables.length; i++) {
    const t = model.routeTables[i]!;
    const was = prev.routeTables[i]!;
    if (t.host !== was.host || t.port !== was.port) return undefined;
    // A route's action reads its destination cluster (load-balancer policy), see table-memo.ts.
    const touched = t !== was || !services || vipsChanged.has(t.host) || (changed.size > 0 && t.routes.some((r) => r.action.kind === 'route' && r.action.destinations.some((d) => changed.has(d.cluster))));
    if (touched && seesPort(scope, t.host, t.port)) tables.push(t);
  }
  // The side a proxy serves (its inbound listeners) depends on the services its IP is an endpoint of.
  const atProxy = (s: Service) => s.endpoints.some((e) => e.address === proxy.ip);
  const inboundTouched = proxy.ip !== undefined && (!services || services.some(([a, b]) => atProxy(a) || atProxy(b)));
  const clusters = tables.length ? clustersByName(model, memo) : new Map<string, UpstreamCluster>();
  if (kind === 'grpc') {
    if (tables.length) {
      set[LISTENER].push(...(grpcListeners(model, proxy, clusters, memo, tables) as Resource[]));
      set[ROUTE_CONFIG].push(...(grpcRouteConfigs(model, proxy, clusters, memo, tables) as Resource[]));
    }
    // A server's listeners come from the services its IP is an endpoint of: given whole.
    if (!inboundTouched) return { set, removed, whole: {} };
    set[LISTENER].push(...(grpcServerListeners(model, proxy) as Resource[]));
    return { set, removed, whole: { [LISTENER]: (n) => n.startsWith(GRPC_SERVER_LISTENER_PREFIX) } };
  }
  // A sidecar has one route config and one listener per port, each over every table on the port.
  const ports = new Set(tables.map((t) => t.port));
  if (ports.size) {
    set[LISTENER].push(...(outboundListeners(model, proxy, ports) as Resource[]));
    set[ROUTE_CONFIG].push(...(sidecarRouteConfigs(model, proxy, clusters, memo, ports) as Resource[]));
  }
  if (!inboundTouched) return { set, removed, whole: {} };
  // Its inbound side is given whole.
  const inbound = sidecarInboundPorts(model, proxy);
  set[CLUSTER].push(...(inbound.map(inboundCluster) as Resource[]));
  set[LISTENER].push(virtualInbound(model, proxy, inbound) as Resource);
  return { set, removed, whole: { [CLUSTER]: (n) => n.startsWith('inbound|') } };
}
