// RequestAuthentication -> Envoy's JWT filter (envoy.filters.http.jwt_authn) on the inbound side of
// the workloads it selects, before RBAC. One provider per jwtRule, with Istio's semantics: a request
// carrying a token that fails verification (signature, issuer, audience, expiry) is refused with
// 401; a request without a token passes with no request identity, and authorization decides. The
// verified payload goes to dynamic metadata under the issuer's name, where RBAC reads it
// (jwt-rbac.ts). Remote key sets are fetched by Envoy through a cluster of their own (below);
// inline ones go in as they are. Proxyless gRPC has no such filter (grpc: false; see jwt-rbac.ts
// for how authorization fails closed there).
import { jwtProvidersFor, type JwksSource, type JwtProvider } from '../model/request-authentication.ts';
import type { Model } from '../model/types.ts';
import type { Json } from '../json.ts';
import type { Feature, HcmContext } from './feature.ts';
import { JWT_AUTHN_FILTER } from './jwt-rbac.ts';
import { protoDuration } from './proto-values.ts';
import type { Proxy } from './proxy.ts';
import { transportSocket, UPSTREAM_TLS } from './tls-context.ts';
import { CLUSTER } from './type-urls.ts';
import { SYSTEM_CA_BUNDLE } from './upstream-tls.ts';

export const JWT_AUTHN = 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication';
/** How long Envoy keeps a fetched key set (Istio's default). */
const JWKS_CACHE = '300s';
const JWKS_CONNECT_TIMEOUT_MS = 5_000;

/** The cluster Envoy fetches a remote key set through: one per JWKS host and port. */
export function jwksClusterName(j: Extract<JwksSource, { kind: 'remote' }>): string {
  return `jwks|${j.host}|${j.port}`;
}

function providerJson(p: JwtProvider): Json {
  const jwks = p.jwks.kind === 'inline'
    ? { local_jwks: { inline_string: p.jwks.text } }
    : { remote_jwks: { http_uri: { uri: p.jwks.uri, cluster: jwksClusterName(p.jwks), timeout: protoDuration(p.jwks.timeoutMs) }, cache_duration: JWKS_CACHE } };
  return {
    issuer: p.issuer,
    ...(p.audiences.length ? { audiences: p.audiences } : {}),
    ...jwks,
    ...(p.fromHeaders.length ? { from_headers: p.fromHeaders.map((h) => ({ name: h.name, ...(h.prefix !== undefined ? { value_prefix: h.prefix } : {}) })) } : {}),
    ...(p.fromParams.length ? { from_params: p.fromParams } : {}),
    ...(p.fromCookies.length ? { from_cookies: p.fromCookies } : {}),
    // Istio's default: the token is removed before the request goes on.
    ...(p.forwardOriginalToken ? { forward: true } : {}),
    ...(p.outputPayloadToHeader ? { forward_payload_header: p.outputPayloadToHeader } : {}),
    payload_in_metadata: p.issuer,
    ...(p.outputClaimToHeaders.length ? { claim_to_headers: p.outputClaimToHeaders.map((c) => ({ header_name: c.header, claim_name: c.claim })) } : {}),
  };
}

/** Istio's provider names, `origins-<n>` in policy order. */
const providerName = (i: number) => `origins-${i}`;

function jwtFilter(ctx: HcmContext): Json | undefined {
  if (ctx.side !== 'inbound') return undefined;
  const providers = jwtProvidersFor(ctx.model.requestAuthentications, ctx.model.mesh, ctx.proxy.namespace, ctx.proxy.labels);
  if (providers.length === 0) return undefined;
  const names = providers.map((_, i) => providerName(i));
  return {
    name: JWT_AUTHN_FILTER,
    typed_config: {
      '@type': JWT_AUTHN,
      providers: Object.fromEntries(providers.map((p, i) => [names[i], providerJson(p)])),
      // Any one provider's token, or none at all; a token present but invalid fails the request.
      rules: [{ match: { prefix: '/' }, requires: { requires_any: { requirements: [...names.map((provider_name) => ({ provider_name })), { allow_missing: {} }] } } }],
      // A CORS preflight carries no credentials; CORS (later in the chain) answers it.
      bypass_cors_preflight: true,
    },
  };
}

export const jwtAuthn: Feature = { name: 'jwt-authn', grpc: false, httpFilter: jwtFilter };

/** The clusters this sidecar's JWT providers fetch remote key sets through. */
export function jwksClusters(model: Model, proxy: Proxy): Json[] {
  if (proxy.kind !== 'envoy') return [];
  const out = new Map<string, Json>();
  for (const p of jwtProvidersFor(model.requestAuthentications, model.mesh, proxy.namespace, proxy.labels)) {
    const j = p.jwks;
    if (j.kind !== 'remote') continue;
    const name = jwksClusterName(j);
    if (out.has(name)) continue;
    const ip = /^[\d.]+$/.test(j.host) || j.host.includes(':');
    out.set(name, {
      '@type': CLUSTER,
      name,
      type: ip ? 'STATIC' : 'STRICT_DNS',
      ...(ip ? {} : { dns_lookup_family: 'V4_ONLY' }),
      connect_timeout: protoDuration(JWKS_CONNECT_TIMEOUT_MS),
      load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: j.host, port_value: j.port } } } }] }] },
      // An https key set server must prove it is the host, with a certificate from the system's CAs.
      ...(j.tls ? { transport_socket: transportSocket({ '@type': UPSTREAM_TLS, ...(ip ? {} : { sni: j.host }), common_tls_context: { validation_context: { trusted_ca: { filename: SYSTEM_CA_BUNDLE }, match_typed_subject_alt_names: [{ san_type: ip ? 'IP_ADDRESS' : 'DNS', matcher: { exact: j.host } }] } } }) } : {}),
    });
  }
  return [...out.values()];
}
