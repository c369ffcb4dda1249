// The http routes a Canary or FaultExperiment names: `http[].name` of a VirtualService for the
// host, found in the model's route tables (so only routes in force count). A route of VirtualService
// ns/vs with http name `n` is the model route `ns/vs/n` (model/routes.ts); a delegated route is named
// after its root and its delegate, so neither kind can name one.
import { type ConfigObject, isKind } from '../config/types.ts';
import { compareText } from './compare.ts';
import type { GatewayVirtualService, HttpRoute, RouteTable } from './types.ts';

const VS = 'VirtualService/';

/** The `http[].name` a model route was made from, when it is a VirtualService's own named route. */
export function httpNameOf(route: HttpRoute, vss: ReadonlyMap<string, ConfigObject>): string | undefined {
  if (route.delegation || !route.origin.key.startsWith(VS)) return undefined;
  const prefix = `${route.origin.key.slice(VS.length)}/`;
  if (!route.name.startsWith(prefix)) return undefined;
  const name = route.name.slice(prefix.length);
  const vs = vss.get(route.origin.key);
  // An unnamed http entry is named by its index: only a name the rule wrote counts.
  return vs && isKind(vs, 'VirtualService') && (vs.spec.http ?? []).some((h) => h.name === name) ? name : undefined;
}

export interface NamedRoute {
  /** The model route name (`ns/vs/name`): the same in every table of the host. */
  modelName: string;
  /** `VirtualService/ns/vs`. */
  virtualService: string;
  /** The route in each table of the host it is in (one per HTTP port it applies to). */
  inTables: Array<{ table: RouteTable; route: HttpRoute }>;
}

/** The named http routes of a host's tables, by http name (several VirtualServices may use one name). */
export function namedRoutes(tables: readonly RouteTable[], vss: ReadonlyMap<string, ConfigObject>): Map<string, NamedRoute[]> {
  const out = new Map<string, NamedRoute[]>();
  for (const table of tables) {
    for (const route of table.routes) {
      const name = httpNameOf(route, vss);
      if (name === undefined) continue;
      const list = out.get(name) ?? [];
      let entry = list.find((e) => e.modelName === route.name);
      if (!entry) list.push((entry = { modelName: route.name, virtualService: route.origin.key, inTables: [] }));
      entry.inTables.push({ table, route });
      out.set(name, list);
    }
  }
  for (const list of out.values()) list.sort((a, b) => compareText(a.modelName, b.modelName));
  return out;
}

/** A route of a rule bound to gateways, found by an ingress host. */
export interface IngressRoute {
  /** The model route name (`ns/vs/name`). */
  modelName: string;
  /** `VirtualService/ns/vs`. */
  virtualService: string;
  route: HttpRoute;
}

/**
 * The routes of the gateway-bound rules (in force) for an ingress host such as shop.example.com:
 * every one, and the named ones by http name, as namedRoutes gives a service's.
 */
export function ingressRoutes(rules: readonly GatewayVirtualService[], host: string, vss: ReadonlyMap<string, ConfigObject>): { all: HttpRoute[]; named: Map<string, IngressRoute[]> } {
  const all: HttpRoute[] = [];
  const named = new Map<string, IngressRoute[]>();
  for (const vs of rules) {
    if (!vs.hosts.includes(host)) continue;
    for (const { route } of vs.routes) {
      all.push(route);
      const name = httpNameOf(route, vss);
      if (name === undefined) continue;
      const list = named.get(name) ?? [];
      if (!list.some((e) => e.modelName === route.name)) list.push({ modelName: route.name, virtualService: route.origin.key, route });
      named.set(name, list);
    }
  }
  return { all, named };
}

/** Why no route of `named` answers to `name`: the message a Canary and a FaultExperiment share. */
export function unknownRouteMessage(named: ReadonlyMap<string, unknown[]>, name: string, host: string): string {
  const known = [...named.keys()].sort(compareText);
  return `no VirtualService in force has an http route named ${JSON.stringify(name)} for ${host} (${known.length ? `named routes: ${known.join(', ')}` : 'it has no named http routes'})`;
}

/** The route tables of each host. */
export function tablesByHost(tables: readonly RouteTable[]): Map<string, RouteTable[]> {
  const out = new Map<string, RouteTable[]>();
  for (const t of tables) out.set(t.host, [...(out.get(t.host) ?? []), t]);
  return out;
}
