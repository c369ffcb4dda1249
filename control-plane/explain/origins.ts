// From Envoy names back to the rules a person wrote: route names (`ns/vs/http-name`) in a virtual
// host (`host:port`), cluster names, RBAC policy names (`ns[..]-policy[..]-rule[i]`) and rate limit
// stat prefixes all lead to an object of the model, and through it to a file:line.
import type { AuthorizationPolicy } from '../model/authorization.ts';
import { exportedTo } from '../model/export-to.ts';
import { proxyScope, seesRoute } from '../translate/scope.ts';
import type { Proxy } from '../translate/proxy.ts';
import { type ConfigObject, isKind } from '../config/types.ts';
import { formatPath } from '../config/paths.ts';
import type { HttpRouteIn } from '../model/input.ts';
import type { HttpRoute, Model, RouteTable } from '../model/types.ts';
import { labelsMatch } from '../model/services.ts';
import { envoyRouteMatch } from '../translate/route-match.ts';
import type { Json } from '../json.ts';
import type { TranslateMemo } from '../translate/memo.ts';
import { ROUTE_METADATA_NAMESPACE } from '../translate/route-origin.ts';

/** A rule, and where in it: `VirtualService default/reviews` at `rules.yaml:12` (`spec.http[0].match[0]`). */
export interface RuleRef {
  key: string;
  at: string;
  path?: string;
  /** A route a delegate VirtualService brought: the root's http entry that names the delegate. */
  via?: RuleRef;
}

export function formatRef(r: RuleRef): string {
  const [kind, ns, name] = r.key.split('/');
  return `${kind} ${ns}/${name}${r.path ? ` ${r.path}` : ''} (${r.at})${r.via ? `, delegated by ${formatRef(r.via)}` : ''}`;
}

export interface MeshView {
  model: Model;
  /** The rule objects in force (MeshState.accepted). */
  accepted: readonly ConfigObject[];
  /** The translator's memory for this explanation (explain() makes one when none is given). */
  memo?: TranslateMemo;
}

/** `[istio-ext-authz-]ns[<ns>]-policy[<name>]-rule[<i>][-deny-due-to-bad-CUSTOM-action]` (translate/rbac*.ts). */
const RBAC_POLICY_NAME = /^(?:istio-ext-authz-)?ns\[(.+)\]-policy\[(.+)\]-rule\[(\d+)\](?:-deny-due-to-bad-CUSTOM-action)?$/;

export class RuleIndex {
  private objects: Map<string, ConfigObject>;
  constructor(private view: MeshView) {
    this.objects = new Map(view.accepted.map((o) => [o.key, o]));
  }

  /** The http entries of the VirtualService with this key (none for another kind). */
  private httpOf(key: string): HttpRouteIn[] {
    const obj = this.objects.get(key);
    return obj && isKind(obj, 'VirtualService') ? (obj.spec.http ?? []) : [];
  }

  private ref(key: string, path: Array<string | number>, fallbackAt: string): RuleRef {
    const obj = this.objects.get(key);
    if (!obj) return { key, at: fallbackAt };
    const pos = obj.locate(path);
    return { key, at: `${pos.file}:${pos.line}`, ...(path.length ? { path: formatPath(path) } : {}) };
  }

  private table(vhostName: string): RouteTable | undefined {
    return this.view.model.routeTables.find((t) => `${t.host}:${t.port}` === vhostName);
  }

  modelRoute(vhostName: string, routeName: string): HttpRoute | undefined {
    return this.table(vhostName)?.routes.find((r) => r.name === routeName);
  }

  /** Index of the http entry an Envoy route came from, in its VirtualService. */
  private httpIndex(route: HttpRoute): number | undefined {
    if (route.delegation) return route.delegation.rootIndex;
    const obj = this.objects.get(route.origin.key);
    if (!obj || !isKind(obj, 'VirtualService')) return undefined;
    const http = obj.spec.http ?? [];
    const i = http.findIndex((h, idx) => `${obj.namespace}/${obj.name}/${h.name ?? idx}` === route.name);
    return i < 0 ? undefined : i;
  }

  /** The rule behind an Envoy route, down to the `match[j]` it was generated from when it can be told. */
  route(vhostName: string, envoyRoute: Json): RuleRef | undefined {
    const table = this.table(vhostName);
    const route = table?.routes.find((r) => r.name === envoyRoute.name);
    if (!table || !route) return undefined;
    const i = this.httpIndex(route);
    if (i === undefined) return { key: route.origin.key, at: route.origin.at };
    if (route.delegation) return this.delegatedRoute(route, route.delegation);
    const spec = this.httpOf(route.origin.key)[i]!;
    // Model matches are the spec's matches for this port, in order; find the one that was translated
    // into this Envoy match (gRPC routes leave the method out).
    const specIdx = (spec.match ?? []).flatMap((m, mi) => (m.port === undefined || m.port === table.port ? [mi] : []));
    const want = JSON.stringify(envoyRoute.match);
    const k = route.matches.findIndex((m) => JSON.stringify(envoyRouteMatch(m)) === want || JSON.stringify(envoyRouteMatch({ ...m, method: undefined })) === want);
    const path: Array<string | number> = k >= 0 && specIdx[k] !== undefined ? ['spec', 'http', i, 'match', specIdx[k]!] : ['spec', 'http', i];
    return this.ref(route.origin.key, path, route.origin.at);
  }

  /** The delegate's http entry behind a route, with the root's entry that delegates to it. */
  private delegatedRoute(route: HttpRoute, d: NonNullable<HttpRoute['delegation']>): RuleRef {
    return { ...this.ref(d.key, ['spec', 'http', d.index], d.at), via: this.ref(route.origin.key, ['spec', 'http', d.rootIndex, 'delegate'], route.origin.at) };
  }

  /** A field of the http entry behind an Envoy route (fault, mirror, retries, timeout), when written
   * there; for a delegated route, the delegate's entry, else the root's it inherits from. */
  routeField(vhostName: string, routeName: string, field: string): RuleRef | undefined {
    const route = this.modelRoute(vhostName, routeName);
    if (!route) return undefined;
    const d = route.delegation;
    if (d && (this.httpOf(d.key)[d.index] as Json | undefined)?.[field] !== undefined) return { ...this.ref(d.key, ['spec', 'http', d.index, field], d.at), via: this.ref(route.origin.key, ['spec', 'http', d.rootIndex, 'delegate'], route.origin.at) };
    const i = this.httpIndex(route);
    if (i === undefined) return undefined;
    const spec: Json = this.httpOf(route.origin.key)[i]!;
    if (spec[field] === undefined) return undefined;
    return this.ref(route.origin.key, ['spec', 'http', i, field], route.origin.at);
  }

  /**
   * Routes of the rules for this virtual host that the caller's config does not have, each with
   * why, so a rule a user expected to see is not silently absent from the trace.
   */
  routesLeftOut(vhostName: string, present: ReadonlySet<string>, proxy: Proxy): Array<{ name: string; why: string; rule: RuleRef }> {
    const out: Array<{ name: string; why: string; rule: RuleRef }> = [];
    const table = this.table(vhostName);
    const scope = proxyScope(this.view.model, proxy);
    for (const r of table?.routes ?? []) {
      if (present.has(r.name)) continue;
      let why: string;
      if (r.exportTo && !exportedTo(r.exportTo, proxy.namespace)) why = `its VirtualService's exportTo (${r.exportTo.join(', ') || 'none'}) does not include namespace ${proxy.namespace}`;
      else if (table && !seesRoute(scope, proxy, r, table.host)) why = `${scope.sidecar?.key ?? 'the Sidecar'} takes no VirtualService from namespace ${r.origin.key.split('/')[1]} for ${table.host} (its egress hosts)`;
      else if (proxy.kind === 'grpc' && r.action.kind === 'redirect') why = 'gRPC clients get no redirect routes';
      else if (proxy.kind === 'grpc' && r.action.kind === 'direct') why = 'gRPC clients get no direct response routes';
      else if (r.matches.length && r.matches.every((m) => (m.sourceNamespace !== undefined && m.sourceNamespace !== proxy.namespace) || (m.sourceLabels && !labelsMatch(m.sourceLabels, proxy.labels)))) why = 'its sourceLabels/sourceNamespace do not select this caller';
      else if (proxy.kind === 'grpc') why = 'its matches test query parameters or a method other than POST, which never hold for gRPC';
      else why = 'not generated for this caller';
      out.push({ name: r.name, why, rule: { key: r.origin.key, at: r.origin.at } });
    }
    return out;
  }

  /** Destination rule and service behind a cluster name. */
  cluster(name: string): RuleRef[] {
    const out: RuleRef[] = [];
    const c = this.view.model.clusters.find((x) => x.name === name);
    if (!c) return out;
    const svc = this.view.model.services.find((s) => s.host === c.host);
    if (svc) out.push({ key: svc.origin.key, at: svc.origin.at });
    if (c.origin) out.push({ key: c.origin.key, at: c.origin.at });
    return out;
  }

  /** `ns[default]-policy[deny-v3]-rule[0]` -> AuthorizationPolicy default/deny-v3 spec.rules[0]. */
  rbacPolicy(policyName: string): RuleRef | undefined {
    const m = RBAC_POLICY_NAME.exec(policyName);
    const p = this.authorizationPolicy(policyName);
    if (!m || !p) return undefined;
    return this.ref(p.origin.key, ['spec', 'rules', Number(m[3])], p.origin.at);
  }

  /** The AuthorizationPolicy an RBAC policy name was made from (CUSTOM ones carry a prefix). */
  authorizationPolicy(policyName: string): AuthorizationPolicy | undefined {
    const m = RBAC_POLICY_NAME.exec(policyName);
    return m ? this.view.model.authorizationPolicies.find((x) => x.namespace === m[1] && x.name === m[2]) : undefined;
  }

  /**
   * The Canary (`weights_from`) or FaultExperiment (`fault_from`) a generated route names in its
   * metadata (translate/route-origin.ts): the rule that decides its weights or fault at run time.
   */
  runtimeOrigin(envoyRoute: Json, field: 'weights_from' | 'fault_from'): RuleRef | undefined {
    const fields = ((envoyRoute.metadata as Json | undefined)?.filter_metadata as Json | undefined)?.[ROUTE_METADATA_NAMESPACE] as Json | undefined;
    const key = fields?.[field];
    if (typeof key !== 'string') return undefined;
    const rule = field === 'weights_from' ? this.view.model.canaries.find((c) => c.key === key) : this.view.model.experiments.find((e) => e.key === key);
    return this.ref(key, field === 'weights_from' ? ['spec', 'steps'] : ['spec', 'fault'], rule?.origin.at ?? '');
  }

  /** `rate_limit.<ns>.<name>[.override_<i>]` -> RateLimit ns/name (spec.limit or spec.overrides[i]). */
  rateLimit(statPrefix: string): RuleRef | undefined {
    const m = /^rate_limit\.([^.]+)\.(.+?)(?:\.override_(\d+))?$/.exec(statPrefix);
    if (!m) return undefined;
    const p = this.view.model.rateLimits.find((x) => x.name === `${m[1]}/${m[2]}`);
    if (!p) return undefined;
    return this.ref(p.origin.key, m[3] !== undefined ? ['spec', 'overrides', Number(m[3])] : ['spec', 'limit'], p.origin.at);
  }
}
