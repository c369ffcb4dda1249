// explain(mesh, caller + request): what the caller's proxy does with one concrete request, found by
// evaluating the config the control plane generates for that proxy (translate()), the same bytes it
// would push, not the rules: listener for the port -> route configuration -> virtual host ->
// routes in order -> action -> clusters and endpoints -> HTTP filters on both sides.
import { chainFor, chainTlsNote, gatewayListener, gatewayRouteRule } from './gateway.ts';
import type { ClientKind, Proxy } from '../translate/proxy.ts';
import { translate } from '../translate/translate.ts';
import { LISTENER, ROUTE_CONFIG } from '../translate/type-urls.ts';
import { resolveCaller, type CallerSpec } from './caller.ts';
import { destinationsFor } from './destinations.ts';
import { callerLocalityText } from './endpoints.ts';
import { effectiveConfig, FAULT, faultsFor, LOCAL_RATE_LIMIT, rateLimitFor } from './filters.ts';
import { formatRef, RuleIndex, type MeshView } from './origins.ts';
import { parseRequest } from './request.ts';
import { describeMatch, evaluateRouteMatch, percentText } from './route-match.ts';
import { hashNote, routeExtras } from './route-extras.ts';
import { upstreamRequest } from './rewrite.ts';
import type { Json } from '../json.ts';
import type { Explanation, RouteStep } from './types.ts';
import { selectVirtualHost } from './virtual-host.ts';
import { isBlocked, outOfScopeNote, policyText } from './scope-notes.ts';
import { TranslateMemo } from '../translate/memo.ts';
import { explainL4, L4_SCHEMES } from './l4.ts';

export interface ExplainInput extends CallerSpec {
  /** `METHOD URL`, e.g. `GET http://reviews:9080/reviews/1`. */
  request: string;
  /** `name: value` lines; cookies as a `cookie: a=b; c=d` header. */
  headers?: string[];
  /** What serves the destination endpoints: Envoy sidecars or proxyless gRPC servers (default: as the caller). */
  calleeKind?: ClientKind;
}

const HCM_NAME = 'envoy.filters.network.http_connection_manager';
const REDIRECT_CODES: Record<string, number> = { MOVED_PERMANENTLY: 301, FOUND: 302, SEE_OTHER: 303, TEMPORARY_REDIRECT: 307, PERMANENT_REDIRECT: 308 };

function hcmOf(listener: Json, chain = (listener.filter_chains as Json[] | undefined)?.[0]): Json | undefined {
  if (listener.api_listener) return (listener.api_listener as Json).api_listener as Json;
  return ((chain?.filters as Json[] | undefined) ?? []).find((f) => f.name === HCM_NAME)?.typed_config as Json | undefined;
}

export function explain(given: MeshView, input: ExplainInput, connected: Iterable<Proxy> = []): Explanation {
  // The caller's config and each callee's inbound config come from one translator memory.
  const view = given.memo ? given : { ...given, memo: new TranslateMemo() };
  const index = new RuleIndex(view);
  const caller = resolveCaller(input, view, connected);
  const proxy = caller.proxy;
  const req = parseRequest(input.request, input.headers ?? [], proxy.kind);
  const res = translate(view.model, proxy, view.memo);
  const out: Explanation = {
    caller: { id: proxy.id, kind: proxy.kind, ...(proxy.router ? { router: true as const } : {}), namespace: proxy.namespace, labels: proxy.labels, ...(proxy.ip ? { ip: proxy.ip } : {}), locality: callerLocalityText(proxy.locality), how: caller.how },
    request: { method: req.method, authority: req.authority, path: req.path, headers: Object.fromEntries(Object.entries(req.headers).filter(([k]) => !k.startsWith(':'))) },
    routes: [],
    outcome: { kind: 'no listener', summary: '' },
    destinations: [],
    faults: [],
    mirrors: [],
    rateLimits: [],
    decision: 'none',
    notes: [],
  };
  const grpc = proxy.kind === 'grpc';
  // A TCP connection or TLS handshake: the listener's filter chains instead of HTTP routes.
  if (L4_SCHEMES.has(req.scheme)) return explainL4(view, index, res, proxy, req, out);

  // 1. Listener.
  const listeners = res[LISTENER] as Json[];
  let listener: Json | undefined;
  if (grpc) {
    listener = listeners.find((l) => l.name === req.authority);
    if (!listener) {
      const sameport = listeners.filter((l) => l.api_listener && String(l.name).endsWith(`:${req.port}`)).map((l) => String(l.name));
      out.outcome = { kind: 'no listener', summary: `no Listener named "${req.authority}" for this gRPC client: the channel fails (UNAVAILABLE). ${sameport.length ? `Names it can dial on port ${req.port}: ${sameport.slice(0, 8).join(', ')}${sameport.length > 8 ? ', ...' : ''}` : `No service has port ${req.port}.`}` };
      return out;
    }
  } else if (proxy.router) {
    listener = gatewayListener(listeners, req.port);
    if (!listener) {
      out.outcome = { kind: 'no listener', summary: `no Gateway selecting this gateway proxy has a server on port ${req.port} (that meshpilot serves): the connection is refused` };
      return out;
    }
  } else {
    listener = listeners.find((l) => l.name !== 'virtualOutbound' && l.traffic_direction === 'OUTBOUND' && ((l.address as Json)?.socket_address as Json)?.port_value === req.port);
    if (!listener) {
      const why = outOfScopeNote(view.model, proxy, req.host, req.port);
      if (why) out.notes.push(why);
      out.outcome = isBlocked(view.model, proxy)
        ? { kind: 'blocked', summary: `no HTTP listener for port ${req.port}: virtualOutbound drops the connection (BlackHoleCluster) by the ${policyText(view.model, proxy)}; no routing rule applies` }
        : { kind: 'passthrough', summary: `no HTTP listener for port ${req.port}: virtualOutbound passes the connection through as plain TCP (PassthroughCluster) to whatever address "${req.host}" resolves to, by the ${policyText(view.model, proxy)}; no routing rule applies` };
      return out;
    }
  }
  out.listener = String(listener.name);
  // A gateway's TLS servers share a port: Envoy picks the filter chain by the SNI name.
  const chain = proxy.router ? chainFor(listener, req.host) : undefined;
  if (proxy.router && !chain) {
    out.outcome = { kind: 'no listener', summary: `listener ${out.listener} has no filter chain for the TLS server name "${req.host}": the handshake fails` };
    return out;
  }
  const tlsNote = chain ? chainTlsNote(chain) : undefined;
  if (tlsNote) out.notes.push(tlsNote);
  const hcm = hcmOf(listener, chain);
  if (!hcm) {
    out.outcome = { kind: 'passthrough', summary: `listener ${out.listener} has no HTTP connection manager` };
    return out;
  }
  const filters = (hcm.http_filters as Json[] | undefined) ?? [];

  // 2. Route configuration.
  const rdsName = (hcm.rds as Json | undefined)?.route_config_name as string | undefined;
  const rc = rdsName !== undefined ? (res[ROUTE_CONFIG] as Json[]).find((r) => r.name === rdsName) : (hcm.route_config as Json | undefined);
  if (!rc) {
    out.outcome = { kind: 'no route config', summary: `listener ${out.listener} names route configuration "${rdsName}", which the control plane does not have: ${grpc ? 'the call fails (UNAVAILABLE)' : 'Envoy keeps the listener warming and the connection is refused'}` };
    return out;
  }
  out.routeConfig = String(rc.name);

  // 3. Virtual host.
  const vhosts = (rc.virtual_hosts as Json[] | undefined) ?? [];
  const choice = selectVirtualHost(vhosts, req.authority);
  if (!choice) {
    const domains = vhosts.flatMap((v) => v.domains as string[]);
    out.outcome = { kind: 'no virtual host', status: grpc ? undefined : 404, summary: `no virtual host of route configuration ${out.routeConfig} has a domain matching "${req.authority}" (${domains.length} domains, e.g. ${domains.slice(0, 6).join(', ')}): ${grpc ? 'the call fails (UNAVAILABLE)' : '404 Not Found'}` };
    return out;
  }
  const vhost = choice.vhost;
  out.virtualHost = { name: String(vhost.name), domain: choice.domain, how: choice.how };
  if (vhost.name === 'allow_any' || vhost.name === 'block_all') {
    const why = outOfScopeNote(view.model, proxy, req.host, req.port);
    if (why) out.notes.push(why);
    out.notes.push(vhost.name === 'allow_any'
      ? `"${req.authority}" is no service this proxy sees on this port: the catch-all virtual host sends it out as it came (PassthroughCluster), by the ${policyText(view.model, proxy)}`
      : `"${req.authority}" is no service this proxy sees on this port: the catch-all virtual host refuses it with 502 (block_all), by the ${policyText(view.model, proxy)}`);
  }

  // 4. Routes, in order.
  let chosen: { route: Json; step: RouteStep } | undefined;
  const routes = (vhost.routes as Json[] | undefined) ?? [];
  if (vhost.require_tls === 'ALL' && req.scheme !== 'https') {
    out.outcome = { kind: 'redirect', status: 301, summary: `virtual host ${String(vhost.name)} requires TLS (Gateway tls.httpsRedirect): 301 to https://${req.host}${req.path}` };
    return out;
  }
  // Gateway routes come from the rules bound to the gateway, not from the mesh's route tables.
  for (const left of proxy.router ? [] : index.routesLeftOut(String(vhost.name), new Set(routes.map((r) => String(r.name))), proxy)) {
    out.notes.push(`route ${left.name} (${formatRef(left.rule)}) is not in this caller's config: ${left.why}`);
  }
  for (const [i, route] of routes.entries()) {
    const r = evaluateRouteMatch(route.match as Json, req);
    const rule = proxy.router ? gatewayRouteRule(view.model, String(route.name)) : index.route(String(vhost.name), route);
    const step: RouteStep = { index: i, name: String(route.name ?? ''), match: describeMatch(route.match as Json), result: 'no match', ...(rule ? { rule } : {}) };
    if (!r.matched) step.reason = r.failed;
    else if (r.fraction < 1) {
      step.result = 'partial';
      step.reason = `takes ${percentText(r.fraction)} of these requests (runtime_fraction); the rest go on to the next routes`;
    } else step.result = 'matched';
    out.routes.push(step);
    if (step.result === 'matched') {
      chosen = { route, step };
      break;
    }
  }
  if (!chosen) {
    out.outcome = { kind: 'no route', status: grpc ? undefined : 404, summary: `no route of virtual host ${String(vhost.name)} matches: ${grpc ? 'the call fails (UNAVAILABLE: no matching route)' : '404 Not Found (Envoy: NR)'}` };
    return out;
  }
  out.route = chosen.step;
  const route = chosen.route;

  // 5. Action.
  if (route.redirect) {
    const r = route.redirect as Json;
    const status = REDIRECT_CODES[String(r.response_code ?? 'MOVED_PERMANENTLY')] ?? 301;
    const location = `${String(r.scheme_redirect ?? req.scheme)}://${String(r.host_redirect ?? req.host)}${r.port_redirect ? `:${String(r.port_redirect)}` : ''}${String(r.path_redirect ?? req.path)}`;
    out.outcome = { kind: 'redirect', status, summary: `redirect ${status} to ${location}` };
    return out;
  }
  if (route.direct_response) {
    const d = route.direct_response as Json;
    out.outcome = { kind: 'direct response', status: Number(d.status), summary: "the route answers directly; nothing is forwarded" };
    return out;
  }
  const action = (route.route as Json | undefined) ?? {};
  const targets: Array<{ name: string; weight: number }> = action.weighted_clusters
    ? (((action.weighted_clusters as Json).clusters as Json[]) ?? []).map((c) => ({ name: String(c.name), weight: Number(c.weight ?? 0) }))
    : action.cluster
      ? [{ name: String(action.cluster), weight: 1 }]
      : [];
  if (!targets.length) {
    out.outcome = { kind: 'forward', summary: 'the route names no cluster explain can follow (cluster_header or cluster_specifier_plugin)' };
    return out;
  }
  const upReq = upstreamRequest(req, route, action);
  if (upReq.path !== req.path || upReq.authority !== req.authority) out.rewrite = `the upstream sees ${upReq.authority}${upReq.path}`;
  const calleeKind = input.calleeKind ?? proxy.kind;
  const found = destinationsFor({ view, index, res, proxy, targets, upstream: upReq, calleeKind });
  out.destinations.push(...found.destinations);
  out.notes.push(...found.notes);
  const weightsFrom = index.runtimeOrigin(route, 'weights_from');
  if (weightsFrom) out.weightsFrom = weightsFrom;

  // 6. Outbound filters on this route: fault, local rate limit.
  const vhostName = String(vhost.name);
  const routeName = String(route.name ?? '');
  // A running FaultExperiment's fault replaces the route's own.
  const faultRule = index.runtimeOrigin(route, 'fault_from') ?? index.routeField(vhostName, routeName, 'fault');
  for (const f of faultsFor(effectiveConfig(filters, FAULT, route, vhost), req, out.destinations.length === 1 ? out.destinations[0]!.cluster : undefined)) {
    out.faults.push({ ...f, ...(faultRule ? { rule: faultRule } : {}) });
  }
  const rl = rateLimitFor(effectiveConfig(filters, LOCAL_RATE_LIMIT, route, vhost), 'outbound');
  if (rl) {
    const rule = index.rateLimit(rl.statPrefix);
    out.rateLimits.push({ ...rl, ...(rule ? { rule } : {}) });
  }
  for (const d of out.destinations) for (const i of d.inbound) out.rateLimits.push(...i.rateLimits);

  // 7. Mirrors, timeout, retries.
  Object.assign(out, routeExtras({ index, route, vhost, action, grpc }));
  out.notes.push(...hashNote(action));

  // 8. Outcome and the decision at the callee(s).
  const parts = out.destinations.map((d) => `${d.subset ? `${d.host} subset ${d.subset}` : (d.host ?? d.cluster)} ${percentText(d.share)}`);
  out.outcome = { kind: 'forward', summary: `forwarded to ${parts.join(', ')}` };
  const decisions = out.destinations.flatMap((d) => d.inbound.map((i) => i.decision)).filter((x) => x !== 'not a mesh workload');
  if (decisions.length) {
    const uniq = [...new Set(decisions)];
    out.decision = uniq.length === 1 ? (uniq[0] as 'allow' | 'deny' | 'unknown') : 'mixed';
  }
  return out;
}
