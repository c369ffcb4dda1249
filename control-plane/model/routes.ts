// VirtualServices become one ordered route table per service port. Several VirtualServices for
// the same host are merged in the order of their namespace and name (then the routes of each in
// file order), so the result never depends on file or event order.
import { type ConfigObject, ofKind } from '../config/types.ts';
import { isAuthorityHeader } from '../config/schemas/common.ts';
import { MESH_GATEWAY } from '../config/schemas/virtual-service.ts';
import { boundToMesh } from './gateway-names.ts';
import { compareText, sameItems, SortedOrder } from './compare.ts';
import { durationMs } from './duration.ts';
import { clusterName, resolveHost } from './hosts.ts';
import type { CorsIn, DestinationRuleIn, HeaderOpsIn, HttpRouteIn, MatchIn, StringMatchIn } from './input.ts';
import { mergeDelegated } from './delegate-merge.ts';
import { FieldPath, formatPath, IssueList, IssueSink, originOf, type RecordedIssue, recordingSink, replayIssues } from './issues.ts';
import { isHttpProtocol } from './services.ts';
import { ANY_PORT, resolveDestination } from './destination.ts';
import { exportField } from './export-to.ts';
import { resolveFault } from './fault.ts';
import { resolveMirrors } from './mirror.ts';
import type { CorsPolicy, HeaderOps, HttpRoute, RouteMatch, RouteTable, Service, StringMatch, UpstreamCluster } from './types.ts';

function stringMatch(m: StringMatchIn | undefined): StringMatch | undefined {
  if (!m) return undefined;
  if (m.exact !== undefined) return { kind: 'exact', value: m.exact };
  // An empty prefix matches any value: it is a presence test (Envoy has no empty prefix).
  if (m.prefix !== undefined) return m.prefix === '' ? undefined : { kind: 'prefix', value: m.prefix };
  if (m.regex !== undefined) return { kind: 'regex', value: m.regex };
  return undefined;
}

function sortedEntries<T>(o: Record<string, T> | undefined): Array<[string, T]> {
  return Object.entries(o ?? {}).sort(([a], [b]) => compareText(a, b));
}

function routeMatch(m: MatchIn): RouteMatch {
  return {
    ...(m.uri ? { uri: stringMatch(m.uri) } : {}),
    ignoreUriCase: m.ignoreUriCase ?? false,
    ...(m.method ? { method: stringMatch(m.method) } : {}),
    headers: [
      ...sortedEntries(m.headers).map(([name, sm]) => ({ name: name.toLowerCase(), match: stringMatch(sm), invert: false })),
      ...sortedEntries(m.withoutHeaders).map(([name, sm]) => ({ name: name.toLowerCase(), match: stringMatch(sm), invert: true })),
    ],
    queryParams: sortedEntries(m.queryParams).map(([name, sm]) => ({ name, match: stringMatch(sm) })),
    ...(m.sourceLabels ? { sourceLabels: { ...m.sourceLabels } } : {}),
    ...(m.sourceNamespace ? { sourceNamespace: m.sourceNamespace } : {}),
  };
}

/** Header changes, without the authority (`:authority` / `Host` in `set`: see authorityOf). */
function headerOps(h: HeaderOpsIn | undefined): HeaderOps | undefined {
  if (!h) return undefined;
  const ops = { set: sortedEntries(h.set).filter(([k]) => !isAuthorityHeader(k)), add: sortedEntries(h.add), remove: [...(h.remove ?? [])] };
  return ops.set.length || ops.add.length || ops.remove.length ? ops : undefined;
}

/** `headers.request.set[":authority"]` (or Host): the authority to send, as Istio rewrites it. */
function authorityOf(h: HeaderOpsIn | undefined): string | undefined {
  const found = sortedEntries(h?.set).filter(([k]) => isAuthorityHeader(k));
  return found.length ? found[found.length - 1]![1] : undefined;
}

function corsPolicy(c: CorsIn | undefined): CorsPolicy | undefined {
  if (!c) return undefined;
  const origins = c.allowOrigins ? c.allowOrigins.map(stringMatch).filter((m) => m !== undefined) : (c.allowOrigin ?? []).map((value): StringMatch => ({ kind: 'exact', value }));
  return {
    origins,
    methods: [...(c.allowMethods ?? [])],
    headers: [...(c.allowHeaders ?? [])],
    exposeHeaders: [...(c.exposeHeaders ?? [])],
    ...(c.maxAge !== undefined ? { maxAgeSeconds: durationMs(c.maxAge) / 1000 } : {}),
    ...(c.allowCredentials !== undefined ? { allowCredentials: c.allowCredentials } : {}),
    forwardUnmatchedPreflights: c.unmatchedPreflights !== 'IGNORE',
  };
}

/** What the model built so far gives route resolution. */
export interface RouteInputs {
  services: Map<string, Service>;
  clusters: Map<string, UpstreamCluster>;
  /** DestinationRules by host, for their subsets. */
  rules: Map<string, { spec: DestinationRuleIn }>;
  issues: IssueList;
}

/**
 * What resolving one VirtualService may look up; every lookup goes through here so it can be
 * recorded. Endpoints are deliberately out of reach: a rule must mean the same whatever pods are
 * running, so pod churn never changes what a rule does or whether it is accepted.
 */
export interface Context {
  service(host: string): Service | undefined;
  hasSubset(host: string, subset: string): boolean;
  /** Notes a cluster the rule sends calls to, for the checks that look at its endpoints. */
  target(t: Target): void;
  issues: IssueSink;
}

/** A cluster a rule sends calls (or mirrored copies) to, and where the rule names it. */
export interface Target {
  path: FieldPath;
  cluster: string;
  /** `subset v2 of reviews.default.svc.cluster.local`, or the host. */
  what: string;
  /** Percent of the route's calls, or 'mirror'. */
  share: number | 'mirror';
}

/** Resolves one http route for the route table of `table` (host, port); errors go to `issues`. */
export function resolveRoute(obj: ConfigObject, http: HttpRouteIn, i: number, tablePort: number, ctx: Context): HttpRoute | undefined {
  const base: FieldPath = ['spec', 'http', i];
  // Delegation is expanded before this (expandDelegates), for the mesh's tables and gateways alike.
  if (http.delegate) return undefined;
  const origin = originOf(obj, base);
  const name = `${obj.namespace}/${obj.name}/${http.name ?? i}`;
  const common = {
    name,
    matches: (http.match ?? []).map(routeMatch),
    origin,
    ...(headerOps(http.headers?.request) ? { requestHeaders: headerOps(http.headers?.request) } : {}),
    ...(headerOps(http.headers?.response) ? { responseHeaders: headerOps(http.headers?.response) } : {}),
    ...(http.corsPolicy ? { cors: corsPolicy(http.corsPolicy) } : {}),
    ...(http.websocketUpgrade === true ? { websocketUpgrade: true as const } : {}),
    ...exportField(obj.spec as { exportTo?: string[] }, obj.namespace),
  };
  const setAuthority = authorityOf(http.headers?.request);
  if (setAuthority !== undefined && !http.route) {
    ctx.issues.warn(obj, [...base, 'headers', 'request', 'set'], `:authority has no effect on a ${http.redirect ? 'redirect' : 'direct response'} route (use redirect.authority to redirect to another host)`);
  }
  if (http.redirect) {
    const r = http.redirect;
    return {
      ...common,
      action: {
        kind: 'redirect',
        ...(r.uri !== undefined ? { uri: r.uri } : {}),
        ...(r.authority !== undefined ? { authority: r.authority } : {}),
        ...(r.port !== undefined ? { port: r.port } : {}),
        ...(r.scheme !== undefined ? { scheme: r.scheme } : {}),
        code: (r.redirectCode ?? 301) as 301,
      },
    };
  }
  if (http.directResponse) {
    const d = http.directResponse;
    const body = d.body?.string !== undefined ? { string: d.body.string } : d.body?.bytes !== undefined ? { bytes: d.body.bytes } : undefined;
    return { ...common, action: { kind: 'direct', status: d.status, ...(body ? { body } : {}) } };
  }
  const destinations = [];
  const routes = http.route ?? [];
  for (const [j, rd] of routes.entries()) {
    const path: FieldPath = [...base, 'route', j, 'destination'];
    const d = resolveDestination(obj, rd.destination, path, tablePort, ctx, 'destination', 'destination.port.number');
    if (!d) continue;
    const { cluster, host, port, subset } = d;
    // A single destination takes all traffic, whatever weight it names.
    const weight = routes.length === 1 ? 100 : (rd.weight ?? 0);
    const total = routes.length === 1 ? 100 : routes.reduce((n, r) => n + (r.weight ?? 0), 0);
    if (weight > 0) ctx.target({ path: [...path, subset !== undefined ? 'subset' : 'host'], cluster, what: subset !== undefined ? `subset ${subset} of ${host}` : host, share: (weight * 100) / total });
    const request = headerOps(rd.headers?.request);
    const response = headerOps(rd.headers?.response);
    const authority = authorityOf(rd.headers?.request);
    destinations.push({
      cluster,
      host,
      port,
      ...(subset !== undefined ? { subset } : {}),
      weight,
      ...(request ? { requestHeaders: request } : {}),
      ...(response ? { responseHeaders: response } : {}),
      ...(authority !== undefined ? { authority } : {}),
    });
  }
  const fault = resolveFault(obj, http.fault, [...base, 'fault'], ctx.issues);
  const mirrors = resolveMirrors(obj, http, base, tablePort, ctx);
  if (destinations.length !== routes.length || !mirrors) return undefined;
  if (destinations.length > 1 && destinations.every((d) => d.weight === 0)) {
    ctx.issues.error(obj, [...base, 'route'], 'the destination weights add up to 0');
    return undefined;
  }
  if (setAuthority !== undefined && http.rewrite?.authority !== undefined) {
    ctx.issues.warn(obj, [...base, 'rewrite', 'authority'], 'headers.request.set[":authority"] is set too and wins (as in Istio): this rewrite.authority has no effect');
  }
  const total = destinations.reduce((n, d) => n + d.weight, 0);
  if (destinations.length > 1 && total !== 100) {
    const shares = destinations.map((d) => `${d.subset ?? d.host} ${percent((d.weight * 100) / total)}`).join(', ');
    ctx.issues.warn(obj, [...base, 'route'], `the weights add up to ${total}, not 100: they are taken as relative shares (${shares})`);
  }
  return {
    ...common,
    ...(fault ? { fault } : {}),
    ...(mirrors.length ? { mirrors } : {}),
    action: {
      kind: 'route',
      // Destinations with weight 0 are kept out: Envoy rejects a weighted cluster list whose entries
      // are all 0, and a single 0 entry would only add noise.
      destinations: destinations.filter((d) => d.weight > 0),
      ...(http.timeout ? { timeoutMs: durationMs(http.timeout) } : {}),
      ...(http.retries
        ? {
            retries: {
              attempts: http.retries.attempts ?? 2,
              ...(http.retries.perTryTimeout ? { perTryTimeoutMs: durationMs(http.retries.perTryTimeout) } : {}),
              ...(http.retries.retryOn ? { retryOn: http.retries.retryOn.split(',').map((s) => s.trim()).filter(Boolean) } : {}),
            },
          }
        : {}),
      ...(http.rewrite || setAuthority !== undefined
        ? {
            rewrite: {
              ...(http.rewrite?.uri !== undefined ? { uri: http.rewrite.uri } : {}),
              // headers.request.set[":authority"] wins over rewrite.authority, as in Istio.
              ...((setAuthority ?? http.rewrite?.authority) !== undefined ? { authority: setAuthority ?? http.rewrite?.authority } : {}),
              ...(http.rewrite?.uriRegexRewrite ? { uriRegex: { ...http.rewrite.uriRegexRewrite } } : {}),
            },
          }
        : {}),
    },
  };
}

/** Does this http route apply to the given service port (through `match[].port`), for sidecars? */
function appliesToPort(http: HttpRouteIn, port: number): boolean {
  const ports = (http.match ?? []).filter(matchForMesh).map((m) => m.port);
  return ports.length === 0 || ports.some((p) => p === undefined || p === port);
}

/** A match naming gateways applies to sidecars only when `mesh` is one of them. */
function matchForMesh(m: MatchIn): boolean {
  return !m.gateways?.length || m.gateways.includes(MESH_GATEWAY);
}

/** Whether a route applies to sidecars at all: no matches, or some match for `mesh`. */
function routeForMesh(http: HttpRouteIn): boolean {
  return !http.match?.length || http.match.some(matchForMesh);
}

/** One lookup made while resolving a VirtualService, and what it gave. */
type Lookup = ['service', string, string | undefined] | ['subset', string, string, boolean] | ['delegate', string, ConfigObject | undefined, boolean];

/** A VirtualService resolved: the routes for each table, and what the result depends on. */
interface Resolved {
  lookups: Lookup[];
  /** The errors and warnings it raised, in order, to be raised again when the result is reused. */
  issues: RecordedIssue[];
  /** The routes for the tables, in order: [table key, host, port, route]. */
  pending: Array<[string, string, number, HttpRoute]>;
  /** The clusters its routes and mirrors send to. */
  targets: Target[];
}

/** What buildRouteTables keeps between builds. */
export class RouteMemo {
  // A VirtualService's routes depend on its own object and on what it looks up (services,
  // clusters, subsets). The result is kept per object with those lookups, and reused only while
  // every lookup still gives the very same answer, so an edit elsewhere leaves it untouched.
  readonly resolved = new WeakMap<ConfigObject, Resolved>();
  /** The default tables of a service object (one per HTTP port), with their table keys. */
  readonly defaults = new WeakMap<Service, Array<[string, RouteTable]>>();
  /** Tables by their first route, to keep a table object while its routes are all the same objects. */
  readonly tables = new WeakMap<HttpRoute, RouteTable>();
  /** Default routes by host:port and origin, as tables' fallbacks (see fallbackRoute). */
  readonly fallbacks = new Map<string, HttpRoute>();
  readonly order = new SortedOrder<RouteTable>((t) => `${t.host}:${t.port}`, (a, b) => compareText(a.host, b.host) || a.port - b.port);
}

function hasSubset(inputs: RouteInputs, host: string, subset: string): boolean {
  return inputs.rules.get(host)?.spec.subsets?.some((s) => s.name === subset) ?? false;
}

// What route resolution reads of a service: that it exists and its ports. Its endpoints are not
// part of it, so an endpoint change keeps every VirtualService's resolved routes.
const shapes = new WeakMap<Service, string>();
function shapeOf(svc: Service | undefined): string | undefined {
  if (!svc) return undefined;
  let s = shapes.get(svc);
  if (s === undefined) shapes.set(svc, (s = svc.ports.map((p) => `${p.number}/${p.protocol}`).join(',')));
  return s;
}

/** VirtualServices by key, for delegate lookups. */
type VirtualServices = ReadonlyMap<string, ConfigObject<'VirtualService'>>;

function stillValid(r: Resolved, inputs: RouteInputs, vss: VirtualServices): boolean {
  return r.lookups.every((l) => {
    if (l[0] === 'service') return shapeOf(inputs.services.get(l[1])) === l[2];
    // A delegate is part of its roots' result: any edit of it (or its acceptance) redoes them.
    if (l[0] === 'delegate') return vss.get(l[1]) === l[2] && inputs.issues.rejected.has(l[1]) === l[3];
    return (hasSubset(inputs, l[1], l[2])) === l[3];
  });
}

/** One http entry to resolve: the root's own, or a delegate's merged under the root's http[rootIndex]. */
export interface Entry {
  src: ConfigObject<'VirtualService'>;
  http: HttpRouteIn;
  index: number;
  rootIndex: number;
}

/** The root's http entries with each `delegate` entry replaced by the delegate's entries (Istio). */
export function expandDelegates(obj: ConfigObject<'VirtualService'>, ctx: Context, delegate: (key: string) => { obj?: ConfigObject<'VirtualService'>; rejected: boolean }): Entry[] {
  const out: Entry[] = [];
  (obj.spec.http ?? []).forEach((http, i) => {
    if (!http.delegate) {
      out.push({ src: obj, http, index: i, rootIndex: i });
      return;
    }
    const ns = http.delegate.namespace ?? obj.namespace;
    const key = `VirtualService/${ns}/${http.delegate.name}`;
    const path: FieldPath = ['spec', 'http', i, 'delegate'];
    const d = delegate(key);
    const absent = 'the routes it would bring are absent (as in Istio, the rest of this VirtualService applies)';
    if (!d.obj) return ctx.issues.warn(obj, path, `VirtualService ${ns}/${http.delegate.name} does not exist (yet): ${absent}`);
    if (d.obj.spec.hosts) return ctx.issues.warn(obj, path, `VirtualService ${ns}/${http.delegate.name} has hosts, so it is not a delegate: ${absent}`);
    if (d.rejected) return ctx.issues.warn(obj, path, `VirtualService ${ns}/${http.delegate.name} has errors (reported on it): ${absent}`);
    (d.obj.spec.http ?? []).forEach((dh, j) => {
      const m = mergeDelegated(http, dh);
      if ('conflict' in m) ctx.issues.warn(obj, path, `VirtualService ${ns}/${http.delegate!.name} spec.http[${j}] is left out: ${m.conflict} (as in Istio)`);
      else out.push({ src: d.obj!, http: m.http, index: j, rootIndex: i });
    });
  });
  return out;
}

/** What resolving a delegate's entry under a root reports: on the root's delegate field, since the
 * routes are the root's (the delegate's own check reports its problems on the delegate). */
export function delegatedContext(obj: ConfigObject, e: Entry, ctx: Context): Context {
  const at: FieldPath = ['spec', 'http', e.rootIndex, 'delegate'];
  const where = (p: FieldPath) => `VirtualService ${e.src.namespace}/${e.src.name} ${formatPath(p)}`;
  return {
    ...ctx,
    target: (t) => ctx.target({ ...t, path: at, what: `${t.what} (through ${where(t.path)})` }),
    issues: {
      error: (_o, p, message) => ctx.issues.warn(obj, at, `${where(p)}: ${message}; that delegated route is left out`),
      warn: () => {},
    },
  };
}

/** A delegated route as the root's: the root's name, origin and exportTo, and where it came from. */
export function asRootRoute(obj: ConfigObject<'VirtualService'>, e: Entry, route: HttpRoute): HttpRoute {
  if (e.src === obj) return route;
  const rootHttp = obj.spec.http![e.rootIndex]!;
  const { exportTo: _own, ...rest } = route;
  return {
    ...rest,
    name: `${obj.namespace}/${obj.name}/${rootHttp.name ?? e.rootIndex}>${e.src.namespace}/${e.src.name}/${e.src.spec.http![e.index]!.name ?? e.index}`,
    origin: originOf(obj, ['spec', 'http', e.rootIndex]),
    ...exportField(obj.spec as { exportTo?: string[] }, obj.namespace),
    delegation: { rootIndex: e.rootIndex, key: e.src.key, at: originOf(e.src, ['spec', 'http', e.index]).at, index: e.index },
  };
}

function resolveVirtualService(obj: ConfigObject<'VirtualService'>, inputs: RouteInputs, vss: VirtualServices = new Map()): Resolved {
  const out: Resolved = { lookups: [], issues: [], pending: [], targets: [] };
  const ctx: Context = {
    service: (host) => {
      const v = inputs.services.get(host);
      out.lookups.push(['service', host, shapeOf(v)]);
      return v;
    },
    hasSubset: (host, subset) => {
      const v = hasSubset(inputs, host, subset);
      out.lookups.push(['subset', host, subset, v]);
      return v;
    },
    target: (t) => out.targets.push(t),
    issues: recordingSink(inputs.issues, out.issues),
  };
  const key = (host: string, port: number) => `${host}:${port}`;
  const spec = obj.spec;
  const hosts = spec.hosts;
  if (!hosts) {
    // Istio's delegate VirtualService: it routes nothing by itself, only through the roots naming
    // it in http[].delegate. Its references are checked here, once, in its own namespace.
    (spec.http ?? []).forEach((http, i) => resolveRoute(obj, http, i, ANY_PORT, ctx));
    return out;
  }
  const entries = expandDelegates(obj, ctx, (k) => {
    const d = vss.get(k);
    const rejected = inputs.issues.rejected.has(k);
    out.lookups.push(['delegate', k, d, rejected]);
    return d ? { obj: d, rejected } : { rejected };
  });
  // Bound only to gateways: sidecars and gRPC clients never see it (model/gateways.ts has it).
  if (!boundToMesh(spec.gateways)) return out;
  const alsoGateways = (spec.gateways ?? []).some((g) => g !== MESH_GATEWAY);
  const resolved = new Set<number>();
  const placed = new Set<string>();
  hosts.forEach((h, hi) => {
    const host = resolveHost(h, obj.namespace);
    const svc = ctx.service(host);
    if (!svc) {
      // A host the gateways serve need not be a mesh service: sidecars just never route it.
      if (alsoGateways) ctx.issues.warn(obj, ['spec', 'hosts', hi], `host ${host} is not a known service: only the gateways serve it (sidecars do not route it)`);
      else ctx.issues.error(obj, ['spec', 'hosts', hi], `host ${host} is not a known service (declare it with a ServiceEntry)`);
      return;
    }
    for (const port of svc.ports) {
      if (!isHttpProtocol(port.protocol)) continue;
      entries.forEach((e, i) => {
        const http = e.http;
        if (!routeForMesh(http) || !appliesToPort(http, port.number)) return;
        const route = resolveRoute(e.src, http, e.index, port.number, e.src === obj ? ctx : delegatedContext(obj, e, ctx));
        resolved.add(i);
        if (route) {
          // Only the matches for this port stay; the port condition is the table itself.
          const matches = (http.match ?? []).flatMap((m, mi) => (matchForMesh(m) && (m.port === undefined || m.port === port.number) ? [route.matches[mi]] : []));
          const k = key(host, port.number);
          // The same http entry reaches a table twice when two of the hosts name the same service.
          if (placed.has(`${k}#${i}`)) return;
          placed.add(`${k}#${i}`);
          out.pending.push([k, host, port.number, { ...asRootRoute(obj, e, route), matches }]);
        }
      });
    }
  });
  // A route that applies to no HTTP port of its hosts is never used; its references are still
  // checked, and it is reported, so a typo in `match.port` does not hide.
  entries.forEach(({ src, http, index, rootIndex }, i) => {
    if (resolved.has(i) || !routeForMesh(http)) return;
    if (!hosts.some((h) => ctx.service(resolveHost(h, obj.namespace)) !== undefined)) return;
    if (src !== obj) return ctx.issues.warn(obj, ['spec', 'http', rootIndex, 'delegate'], `VirtualService ${src.namespace}/${src.name} spec.http[${index}] applies to no HTTP port of the hosts, so it is never used`);
    resolveRoute(obj, http, index, ANY_PORT, ctx);
    ctx.issues.warn(obj, ['spec', 'http', index, 'match'], 'this route applies to no HTTP port of its hosts, so it is never used');
  });
  return out;
}

function percent(n: number): string {
  return `${Number(n.toFixed(2))}%`;
}

/**
 * A destination without endpoints is a warning, never a rejection: the rule stays in force and
 * only that destination's share of the calls fails (Envoy: 503 no healthy upstream; gRPC:
 * UNAVAILABLE), as in Istio. Rejecting the rule would send every call somewhere no rule says.
 * Checked on every build from the current endpoints, outside the memoized resolution.
 */
function warnEmptyTargets(obj: ConfigObject, targets: readonly Target[], inputs: RouteInputs): void {
  for (const t of targets) {
    const c = inputs.clusters.get(t.cluster);
    // An original destination cluster (resolution NONE) has no endpoints of its own.
    if (!c || c.endpoints.length > 0 || c.resolution === 'NONE') continue;
    const effect = t.share === 'mirror' ? 'mirrored calls fail until it has some (callers are not affected)' : `its ${percent(t.share)} share of this route's calls fails (Envoy: 503 no healthy upstream; gRPC: UNAVAILABLE)`;
    inputs.issues.warn(obj, t.path, `${t.what} has no endpoints now: ${effect}`);
  }
}

export function buildRouteTables(objects: ConfigObject[], inputs: RouteInputs, memo = new RouteMemo()): RouteTable[] {
  const tables = new Map<string, RouteTable>();
  // Delegates (no hosts) first: a root reads whether its delegate was accepted.
  const virtualServices = ofKind(objects, 'VirtualService').sort((a, b) => Number(!!a.spec.hosts) - Number(!!b.spec.hosts) || compareText(a.key, b.key));
  const vss: VirtualServices = new Map(virtualServices.map((v) => [v.key, v]));
  // Every delegate some root names, bound to the mesh or only to gateways.
  const delegated = new Set(virtualServices.flatMap((v) => (v.spec.http ?? []).flatMap((h) => (h.delegate ? [`VirtualService/${h.delegate.namespace ?? v.namespace}/${h.delegate.name}`] : []))));
  for (const obj of virtualServices) {
    let r = memo.resolved.get(obj);
    if (r && stillValid(r, inputs, vss)) {
      replayIssues(obj, r.issues, inputs.issues);
    } else {
      r = resolveVirtualService(obj, inputs, vss);
      memo.resolved.set(obj, r);
    }
    if (inputs.issues.rejected.has(obj.key)) continue;
    warnEmptyTargets(obj, r.targets, inputs);
    for (const [k, host, port, route] of r.pending) {
      let table = tables.get(k);
      if (!table) tables.set(k, (table = { host, port, routes: [] }));
      table.routes.push(route);
    }
  }
  for (const obj of virtualServices) {
    if (!obj.spec.hosts && !delegated.has(obj.key) && !inputs.issues.rejected.has(obj.key)) inputs.issues.warn(obj, ['spec'], 'no hosts: this is a delegate VirtualService, and no root VirtualService names it in http[].delegate, so its routes are not used');
  }
  // A table whose routes are the same objects as an earlier table's is that table. (A route object
  // is made for one table, so its first route finds the candidate.)
  for (const [k, table] of tables) {
    // What a caller that sees none of these routes (exportTo, Sidecar egress) gets: the default.
    const fallback = fallbackRoute(inputs.services.get(table.host), table.port, memo);
    if (fallback) table.fallback = fallback;
    const kept = memo.tables.get(table.routes[0]!);
    const same = kept && kept.host === table.host && kept.port === table.port && kept.fallback === table.fallback && sameItems(kept.routes, table.routes);
    if (same) tables.set(k, kept);
    else memo.tables.set(table.routes[0]!, table);
  }
  // Every HTTP port without a VirtualService gets the default route: all of the service.
  for (const svc of inputs.services.values()) {
    for (const [k, table] of defaultTables(svc, memo)) if (!tables.has(k)) tables.set(k, table);
  }
  return memo.order.sort([...tables.values()]);
}

/** The default route of a service port, the same object for as long as its text would be the same
 * (the service object changes with every endpoint change; this route does not). */
function fallbackRoute(svc: Service | undefined, port: number, memo: RouteMemo): HttpRoute | undefined {
  const made = defaultTables(svc, memo).find(([, t]) => t.port === port)?.[1].routes[0];
  if (!made) return undefined;
  const k = `${svc!.host}:${port}|${made.origin.key}|${made.origin.at}`;
  const kept = memo.fallbacks.get(k);
  if (kept) return kept;
  if (memo.fallbacks.size > 10_000) memo.fallbacks.clear();
  memo.fallbacks.set(k, made);
  return made;
}


/** The default tables of a service (one per HTTP port: all of the service), by table key. */
function defaultTables(svc: Service | undefined, memo: RouteMemo): Array<[string, RouteTable]> {
  if (!svc) return [];
  let defaults = memo.defaults.get(svc);
  if (!defaults) {
    defaults = svc.ports.filter((port) => isHttpProtocol(port.protocol)).map((port): [string, RouteTable] => {
      const cluster = clusterName('outbound', port.number, undefined, svc.host);
      const routes: HttpRoute[] = [{ name: 'default', matches: [], action: { kind: 'route', destinations: [{ cluster, host: svc.host, port: port.number, weight: 100 }] }, origin: svc.origin }];
      return [`${svc.host}:${port.number}`, { host: svc.host, port: port.number, routes }];
    });
    memo.defaults.set(svc, defaults);
  }
  return defaults;
}

export type { Context as RouteContext };
