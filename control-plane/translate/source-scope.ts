// `sourceLabels` / `sourceNamespace` are decided here, per proxy group: a match whose source
// conditions this proxy does not meet is dropped, and a route left with no match is dropped too.
import { labelsMatch } from '../model/services.ts';
import type { HttpRoute, Model, RouteMatch, RouteTable } from '../model/types.ts';
import { proxyScope, visibleRoutes } from './scope.ts';
import type { Proxy } from './proxy.ts';

/** Whether a match's source conditions (`sourceNamespace`, `sourceLabels`) hold for this proxy. */
export function sourceApplies(m: { sourceNamespace?: string; sourceLabels?: Record<string, string> }, proxy: Proxy): boolean {
  if (m.sourceNamespace !== undefined && m.sourceNamespace !== proxy.namespace) return false;
  if (m.sourceLabels && !labelsMatch(m.sourceLabels, proxy.labels)) return false;
  return true;
}

/** Routes with only the matches that apply (a route without matches matches all; one left with none is dropped). */
export function keepApplying<M, R extends { matches: readonly M[] }>(routes: readonly R[], applies: (m: M) => boolean): R[] {
  const out: R[] = [];
  for (const r of routes) {
    if (r.matches.length === 0) {
      out.push(r);
      continue;
    }
    const matches = r.matches.filter(applies);
    if (matches.length) out.push({ ...r, matches });
  }
  return out;
}

export function routesForProxy(routes: readonly HttpRoute[], proxy: Proxy): HttpRoute[] {
  return keepApplying<RouteMatch, HttpRoute>(routes, (m) => sourceApplies(m, proxy));
}

/** A table's routes as this proxy gets them: those it sees (scope.ts), then source conditions. */
export function tableRoutesForProxy(model: Model, t: RouteTable, proxy: Proxy): HttpRoute[] {
  return routesForProxy(visibleRoutes(proxyScope(model, proxy), proxy, t), proxy);
}
