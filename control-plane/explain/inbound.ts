// The callee's side: the config the control plane gives the workload behind an endpoint (found in
// the model by address and port), its inbound connection manager for that port, and what its HTTP
// filters (RBAC deny, RBAC allow, local rate limit) do with the request.
import { endpointPort } from '../model/services.ts';
import { grpcServerListenerName } from '../translate/listeners-grpc-server.ts';
import type { ClientKind, Proxy } from '../translate/proxy.ts';
import { translate, type Resources } from '../translate/translate.ts';
import { LISTENER } from '../translate/type-urls.ts';
import { effectiveConfig, LOCAL_RATE_LIMIT, rateLimitFor } from './filters.ts';
import type { MeshView, RuleIndex } from './origins.ts';
import { evaluateRbacFilter, type RbacContext } from './rbac.ts';
import { evaluateJwtFilter, JWT_AUTHN_FILTER } from './jwt.ts';
import type { HttpRequest } from './request.ts';
import type { Json } from '../json.ts';
import type { AuthzStep, InboundResult, RateLimitInfo } from './types.ts';
import { calleeMode, type CallerTls, tlsHop } from './tls.ts';
import { spiffeId } from '../model/mesh-identity.ts';
import { effectiveMtls } from '../model/peer-authentication.ts';
import { jwtProvidersFor } from '../model/request-authentication.ts';

const HCM_NAME = 'envoy.filters.network.http_connection_manager';

function calleeProxy(view: MeshView, address: string, port: number, kind: ClientKind): { proxy: Proxy; workload: string; identity?: string } | undefined {
  for (const svc of view.model.services) {
    for (const ep of svc.endpoints) {
      if (ep.address !== address || !svc.ports.some((sp) => endpointPort(ep, sp) === port)) continue;
      const app = ep.labels.app ?? svc.host.split('.')[0];
      return {
        proxy: { id: `sidecar~${address}~${app}-explain.${svc.namespace}~${svc.namespace}.svc.cluster.local`, kind, namespace: svc.namespace, labels: { ...ep.labels }, ip: address, locality: ep.locality },
        workload: `${svc.namespace}/${app} (${Object.entries(ep.labels).map(([k, v]) => `${k}=${v}`).join(',') || 'no labels'})`,
        ...(ep.serviceAccount ? { identity: spiffeId(view.model.mesh.trustDomain, svc.namespace, ep.serviceAccount) } : {}),
      };
    }
  }
  return undefined;
}

/** The callee's inbound filter chains for a port (PERMISSIVE: a TLS and a plaintext one). */
function inboundChains(res: Resources, kind: ClientKind, address: string, port: number): Json[] {
  const listeners = res[LISTENER] as Json[];
  if (kind === 'grpc') return ((listeners.find((l) => l.name === grpcServerListenerName(address, port))?.filter_chains as Json[] | undefined) ?? []).slice(0, 1);
  const vi = listeners.find((l) => l.name === 'virtualInbound');
  return ((vi?.filter_chains as Json[] | undefined) ?? []).filter((c) => (c.filter_chain_match as Json | undefined)?.destination_port === port);
}

const hcmOf = (chain: Json | undefined) => (((chain?.filters as Json[] | undefined) ?? []).find((x) => x.name === HCM_NAME)?.typed_config as Json | undefined);

export function inboundConnectionManager(res: Resources, kind: ClientKind, address: string, port: number): Json | undefined {
  return hcmOf(inboundChains(res, kind, address, port)[0]);
}

export function evaluateInbound(
  view: MeshView,
  index: RuleIndex,
  endpoint: { address: string; port: number },
  kind: ClientKind,
  req: HttpRequest,
  sourceIp: string | undefined,
  cache: Map<string, Resources>,
  /** What the caller's cluster sends and who the caller is; absent: not known (TLS not evaluated). */
  caller?: { tls: CallerTls; identity?: string },
): InboundResult {
  const at = `${endpoint.address}:${endpoint.port}`;
  const callee = calleeProxy(view, endpoint.address, endpoint.port, kind);
  if (!callee) return { endpoint: at, workload: '(unknown)', decision: 'not a mesh workload', reason: 'no service endpoint of the mesh is at this address and port, so no inbound policy of this control plane applies', authz: [], rateLimits: [] };
  const key = JSON.stringify([kind, callee.proxy.namespace, callee.proxy.labels, endpoint.address]);
  let res = cache.get(key);
  if (!res) {
    res = translate(view.model, callee.proxy, view.memo);
    cache.set(key, res);
  }
  const chains = inboundChains(res, kind, endpoint.address, endpoint.port);
  const decidedBy = effectiveMtls(view.model.peerAuthentications, view.model.mesh, callee.proxy.namespace, callee.proxy.labels, endpoint.port).origin;
  const hop = caller && chains.length ? tlsHop(caller.tls, caller.identity, calleeMode(chains), callee.identity) : undefined;
  const tls = hop && decidedBy ? { ...hop, calleeRule: { key: decidedBy.key, at: decidedBy.at } } : hop;
  // The chain the connection lands on: TLS or plaintext (their filters are the same).
  const chain = chains.find((c) => !!c.transport_socket === (tls?.result === 'mTLS')) ?? chains[0];
  const hcm = hcmOf(chain);
  const base = { endpoint: at, workload: callee.workload, ...(tls ? { tls } : {}) };
  if (tls?.result === 'fails') return { ...base, decision: 'deny', reason: `${tls.reason} (${kind === 'grpc' ? 'UNAVAILABLE' : '503 upstream connect error'})`, authz: [], rateLimits: [] };
  if (!hcm) return { ...base, decision: 'allow', reason: 'the workload has no inbound HTTP connection manager for this port (plain TCP): no HTTP policy applies', authz: [], rateLimits: [] };
  const authz: AuthzStep[] = [];
  const rateLimits: RateLimitInfo[] = [];
  const filters = (hcm.http_filters as Json[] | undefined) ?? [];
  const peerIdentity = tls ? (tls.result === 'mTLS' ? tls.identity : null) : undefined;
  const ctx: RbacContext = { request: req, ...(sourceIp ? { sourceIp } : {}), destinationPort: endpoint.port, destinationIp: endpoint.address, ...(peerIdentity !== undefined ? { peerIdentity } : {}) };
  let jwt: InboundResult['jwt'];
  // Proxyless gRPC has no JWT filter (translate/jwt-rbac.ts): say so where a token would matter.
  if (kind === 'grpc' && jwtProvidersFor(view.model.requestAuthentications, view.model.mesh, callee.proxy.namespace, callee.proxy.labels).length > 0) {
    jwt = { outcome: 'no token', reason: 'proxyless gRPC has no JWT filter: a token is not checked and the call has no request identity (rules on one fail closed: ALLOW needing one matches nothing, DENY needing one applies)' };
  }
  for (const f of filters) {
    const name = String(f.name);
    if (name === JWT_AUTHN_FILTER) {
      const r = evaluateJwtFilter(f, req);
      jwt = { outcome: r.outcome, reason: r.reason };
      ctx.jwtPayloads = r.payloads;
      if (r.outcome === 'deny') return { ...base, jwt, decision: 'deny', reason: r.reason, authz, rateLimits };
    } else if (name.startsWith('envoy.filters.http.rbac')) {
      const steps = evaluateRbacFilter(f, ctx, index, filters);
      authz.push(...steps);
      const deny = steps.find((s) => s.outcome === 'deny');
      if (deny) return { ...base, ...(jwt ? { jwt } : {}), decision: 'deny', reason: `${deny.reason}: ${kind === 'grpc' ? 'PERMISSION_DENIED' : '403 RBAC: access denied'}`, authz, rateLimits };
    } else if (name === LOCAL_RATE_LIMIT) {
      const rl = rateLimitFor(effectiveConfig(filters, LOCAL_RATE_LIMIT), 'inbound');
      if (rl) {
        const rule = index.rateLimit(rl.statPrefix);
        rateLimits.push({ ...rl, endpoint: at, ...(rule ? { rule } : {}) });
      }
    }
  }
  const unknown = authz.find((s) => s.outcome === 'unknown');
  if (unknown) return { ...base, ...(jwt ? { jwt } : {}), decision: 'unknown', reason: unknown.reason, authz, rateLimits };
  const allowed = authz.find((s) => s.outcome === 'allow');
  return { ...base, ...(jwt ? { jwt } : {}), decision: 'allow', reason: allowed ? allowed.reason : authz.length ? 'no enforced policy refuses it' : 'no authorization policy selects this workload', authz, rateLimits };
}
