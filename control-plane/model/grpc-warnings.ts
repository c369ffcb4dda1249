// Proxyless gRPC clients take only part of what a rule can say. What they would not apply is left
// out of their config (never sent to be rejected), and said here as a warning on the rule, for
// services that have a gRPC port.
import type { ConfigObject } from '../config/types.ts';
import { grpcStatusForHttp } from '../config/schemas/grpc-status.ts';
import { resolveHost } from './hosts.ts';
import { boundToMesh } from './gateway-names.ts';
import type { PolicyIn, TrafficPolicyIn } from './input.ts';
import type { FieldPath, IssueSink } from './issues.ts';
import type { ServiceLookup } from './types.ts';

/** The retry conditions gRPC acts on (the translator keeps only these for gRPC clients). */
export const GRPC_RETRY_ON: ReadonlySet<string> = new Set(['cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable']);
const FOR_GRPC = 'for proxyless gRPC clients';

function hasGrpcPort(host: string, services: ServiceLookup): boolean {
  return services.get(host)?.ports.some((p) => p.protocol === 'GRPC') ?? false;
}

export function warnVirtualService(obj: ConfigObject<'VirtualService'>, services: ServiceLookup, issues: IssueSink): void {
  const spec = obj.spec;
  if (!(spec.hosts ?? []).some((h) => hasGrpcPort(resolveHost(h, obj.namespace), services))) return;
  // gRPC clients get only what is bound to `mesh` (routes.ts): gateway-only routes are not theirs.
  if (!boundToMesh(spec.gateways)) return;
  // grpc-js-xds reads only HTTP route configurations: a connection has no L4 routing there.
  for (const kind of ['tcp', 'tls'] as const) {
    if (spec[kind]?.length) issues.warn(obj, ['spec', kind], `proxyless gRPC clients do no ${kind === 'tcp' ? 'TCP' : 'TLS (SNI)'} routing: these routes apply to Envoy sidecars only and are left out ${FOR_GRPC}`);
  }
  (spec.http ?? []).forEach((http, i) => {
    if (http.match?.length && http.match.every((m) => !boundToMesh(m.gateways))) return;
    const at = (...p: FieldPath): FieldPath => ['spec', 'http', i, ...p];
    if (http.redirect) issues.warn(obj, at('redirect'), `gRPC has no redirects: this route is left out ${FOR_GRPC}`);
    if (http.directResponse) issues.warn(obj, at('directResponse'), `gRPC clients take no direct responses: this route is left out ${FOR_GRPC}, so their calls it matches go on to the next routes`);
    if (http.rewrite) issues.warn(obj, at('rewrite'), `rewrites are not applied ${FOR_GRPC}`);
    if (http.headers) issues.warn(obj, at('headers'), `header changes are not applied ${FOR_GRPC}`);
    (http.route ?? []).forEach((d, j) => {
      if (d.headers) issues.warn(obj, at('route', j, 'headers'), `header changes are not applied ${FOR_GRPC}`);
    });
    if (http.websocketUpgrade) issues.warn(obj, at('websocketUpgrade'), `gRPC calls are not WebSockets: not applied ${FOR_GRPC}`);
    if (http.corsPolicy) issues.warn(obj, at('corsPolicy'), `gRPC has no CORS filter: the policy is left out ${FOR_GRPC}`);
    if (http.mirror || http.mirrors) issues.warn(obj, at(http.mirror ? 'mirror' : 'mirrors'), `gRPC does not mirror requests: mirroring is left out ${FOR_GRPC}`);
    const abortHttp = http.fault?.abort?.httpStatus;
    if (abortHttp !== undefined) issues.warn(obj, at('fault', 'abort', 'httpStatus'), `proxyless gRPC clients see HTTP ${abortHttp} as status ${grpcStatusForHttp(abortHttp)}; use grpcStatus to choose the gRPC status`);
    (http.match ?? []).forEach((m, j) => {
      if (m.queryParams) issues.warn(obj, at('match', j, 'queryParams'), `gRPC calls have no query parameters: this match never holds ${FOR_GRPC}`);
      if (m.method && !(m.method.exact === 'POST' || m.method.prefix !== undefined)) {
        issues.warn(obj, at('match', j, 'method'), `gRPC calls are always POST: this match is decided as such ${FOR_GRPC}`);
      }
    });
    const retryOn = http.retries?.retryOn?.split(',').map((t) => t.trim());
    if (retryOn && http.retries?.attempts !== 0 && !retryOn.some((t) => GRPC_RETRY_ON.has(t))) {
      issues.warn(obj, at('retries', 'retryOn'), `none of these conditions applies to gRPC (it retries on cancelled, deadline-exceeded, internal, resource-exhausted, unavailable): no retries ${FOR_GRPC}`);
    }
  });
}

function warnPolicy(obj: ConfigObject, p: PolicyIn | undefined, path: FieldPath, issues: IssueSink): void {
  if (!p) return;
  const lb = p.loadBalancer;
  if (lb?.simple === 'LEAST_REQUEST' || lb?.simple === 'LEAST_CONN' || lb?.simple === 'RANDOM') {
    issues.warn(obj, [...path, 'loadBalancer', 'simple'], `${lb.simple} is not available to gRPC: ROUND_ROBIN is used ${FOR_GRPC}`);
  }
  if (lb?.simple === 'PASSTHROUGH') {
    issues.warn(obj, [...path, 'loadBalancer', 'simple'], `PASSTHROUGH needs the caller's original destination, which gRPC does not have: no cluster ${FOR_GRPC}, so their calls to it fail`);
  }
  const ch = lb?.consistentHash;
  if (ch && !ch.httpHeaderName) issues.warn(obj, [...path, 'loadBalancer', 'consistentHash'], `gRPC hashes only on a header (httpHeaderName): no hash key ${FOR_GRPC}`);
  if (lb?.warmup || lb?.warmupDurationSecs) issues.warn(obj, [...path, 'loadBalancer', lb.warmup ? 'warmup' : 'warmupDurationSecs'], `gRPC has no slow start: not applied ${FOR_GRPC}`);
  if (p.connectionPool?.http?.http2KeepAlive) issues.warn(obj, [...path, 'connectionPool', 'http', 'http2KeepAlive'], `gRPC takes keepalive settings from its channel options, not from xDS: not applied ${FOR_GRPC}`);
  const od = p.outlierDetection;
  if (od && (od.consecutive5xxErrors !== undefined || od.consecutiveGatewayErrors !== undefined || od.consecutiveLocalOriginFailures !== undefined)) {
    issues.warn(obj, [...path, 'outlierDetection'], `gRPC ejects hosts only by success rate or failure percentage, not by consecutive errors: not applied ${FOR_GRPC}`);
  }
  // grpc-js-xds takes certificates only from its bootstrap's certificate providers (the mesh's).
  const tls = p.tls;
  if (tls?.mode === 'SIMPLE' || tls?.mode === 'MUTUAL') {
    issues.warn(obj, [...path, 'tls', 'mode'], `${tls.mode} needs certificate files, which gRPC cannot take over xDS (only bootstrap certificate providers): no TLS ${FOR_GRPC}, so their calls to a TLS server fail`);
  }
  if (tls?.mode === 'ISTIO_MUTUAL' && tls.insecureSkipVerify) issues.warn(obj, [...path, 'tls', 'insecureSkipVerify'], `not applied ${FOR_GRPC}: they always verify the mesh CA`);
}

/** `hosts`: the services the rule is in force for (a wildcard host may match several). */
export function warnDestinationRule(obj: ConfigObject<'DestinationRule'>, hosts: readonly string[], services: ServiceLookup, issues: IssueSink): void {
  const spec = obj.spec;
  if (!hosts.some((h) => hasGrpcPort(h, services))) return;
  const each = (tp: TrafficPolicyIn | undefined, path: FieldPath) => {
    warnPolicy(obj, tp, path, issues);
    tp?.portLevelSettings?.forEach((s, i) => warnPolicy(obj, s, [...path, 'portLevelSettings', i], issues));
  };
  each(spec.trafficPolicy, ['spec', 'trafficPolicy']);
  spec.subsets?.forEach((s, i) => each(s.trafficPolicy, ['spec', 'subsets', i, 'trafficPolicy']));
}

/** gRPC has no rate limit filter; callee replicas that run an Envoy sidecar still enforce the limit. */
export function warnRateLimit(obj: ConfigObject<'RateLimit'>, services: ServiceLookup, issues: IssueSink): void {
  const spec = obj.spec;
  if (!hasGrpcPort(resolveHost(spec.destination.host, obj.namespace), services)) return;
  issues.warn(obj, ['spec', 'destination'], `gRPC has no rate limit filter: this rule is left out ${FOR_GRPC}, so a proxyless gRPC server does not enforce the limit and overrides do not hold for proxyless gRPC callers (replicas with an Envoy sidecar still enforce the service-wide limit)`);
}

/**
 * What a ServiceEntry asks that meshpilot or gRPC carries only in part. Resolution NONE (the
 * default) is an Envoy ORIGINAL_DST cluster: the connection goes where the caller connected, which
 * a proxyless gRPC client cannot do (it has no original destination), so it gets no cluster.
 */
export function warnServiceEntry(obj: ConfigObject<'ServiceEntry'>, issues: IssueSink): void {
  const spec = obj.spec;
  const resolution = spec.resolution ?? 'NONE';
  if (resolution === 'DYNAMIC_DNS') {
    issues.warn(obj, ['spec', 'resolution'], 'DYNAMIC_DNS is carried as NONE by meshpilot: Envoy sends each connection to the address the caller resolved itself (an ORIGINAL_DST cluster), not to an address Envoy resolves per request');
  }
  if (!spec.ports?.length) issues.warn(obj, ['spec'], 'no ports: no cluster or route is made for these hosts, so calls to them are not routed through the mesh');
  const grpcPort = (spec.ports ?? []).findIndex((p) => p.protocol === 'GRPC');
  if (grpcPort >= 0) {
    spec.endpoints?.forEach((e, i) => {
      if (e.address?.startsWith('unix://')) issues.warn(obj, ['spec', 'endpoints', i, 'address'], `grpc-js takes only IP addresses from EDS: this unix domain socket endpoint is left out ${FOR_GRPC}`);
    });
  }
  if ((resolution === 'NONE' || resolution === 'DYNAMIC_DNS') && grpcPort >= 0) {
    const at: FieldPath = spec.resolution === undefined ? ['spec'] : ['spec', 'resolution'];
    issues.warn(obj, at, `resolution ${resolution}${spec.resolution === undefined ? ' (the default)' : ''} needs the caller's original destination, which gRPC does not have: no cluster ${FOR_GRPC}, so their calls to these hosts fail (use STATIC or DNS)`);
  }
}
