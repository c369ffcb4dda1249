// Envoy's external authorization filter (envoy.filters.http.ext_authz) for CUSTOM
// AuthorizationPolicies: the workload asks the mesh config's provider (HTTP or gRPC ext_authz
// service, through its outbound cluster) about each request the CUSTOM rules matched, which the
// shadow RBAC filter before it records (rbac-audit-custom.ts). Envoy only: proxyless gRPC cannot.
import type { ResolvedExtAuthz } from '../model/extension-providers.ts';
import { customPlan, EXT_AUTHZ_POLICY_PREFIX, EXT_AUTHZ_STAT_PREFIX } from './rbac-audit-custom.ts';
import type { Feature, HcmContext } from './feature.ts';
import { protoDuration } from './proto-values.ts';
import type { Json } from '../json.ts';

export const EXT_AUTHZ = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz';
export const EXT_AUTHZ_FILTER = 'envoy.filters.http.ext_authz';
/** Istio's default wait for the authorizer. */
const DEFAULT_TIMEOUT_MS = 600_000;
const DEFAULT_BODY_BYTES = 4096;

/** Istio's header name forms (`x-a`, `x-prefix-*`, `*-suffix`) as Envoy's list matcher. */
function headerPatterns(names: readonly string[]): Json {
  return {
    patterns: names.map((n) => (n.endsWith('*') ? { prefix: n.slice(0, -1) } : n.startsWith('*') ? { suffix: n.slice(1) } : { exact: n })),
  };
}

function service(p: ResolvedExtAuthz): Json {
  const timeout = protoDuration(p.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  if (p.kind === 'grpc') return { grpc_service: { envoy_grpc: { cluster_name: p.cluster, authority: p.host }, timeout } };
  const request: Json = {};
  if (p.includeAdditionalHeadersInCheck) request.headers_to_add = Object.entries(p.includeAdditionalHeadersInCheck).sort(([a], [b]) => (a < b ? -1 : 1)).map(([key, value]) => ({ key, value }));
  const response: Json = {};
  if (p.headersToUpstreamOnAllow?.length) response.allowed_upstream_headers = headerPatterns(p.headersToUpstreamOnAllow);
  if (p.headersToDownstreamOnDeny?.length) response.allowed_client_headers = headerPatterns(p.headersToDownstreamOnDeny);
  return {
    http_service: {
      server_uri: { uri: `http://${p.host}`, cluster: p.cluster, timeout },
      ...(p.pathPrefix ? { path_prefix: p.pathPrefix } : {}),
      ...(Object.keys(request).length ? { authorization_request: request } : {}),
      ...(Object.keys(response).length ? { authorization_response: response } : {}),
    },
  };
}

function extAuthzFilter(ctx: HcmContext): Json | undefined {
  const p = customPlan(ctx)?.extAuthz;
  if (!p) return undefined;
  const body = p.includeRequestBodyInCheck;
  return {
    name: EXT_AUTHZ_FILTER,
    typed_config: {
      '@type': EXT_AUTHZ,
      ...service(p),
      transport_api_version: 'V3',
      ...(p.failOpen ? { failure_mode_allow: true } : {}),
      status_on_error: { code: p.statusOnError ?? 403 },
      ...(p.kind === 'http' && p.includeRequestHeadersInCheck?.length ? { allowed_headers: headerPatterns(p.includeRequestHeadersInCheck) } : {}),
      ...(body ? { with_request_body: { max_request_bytes: body.maxRequestBytes ?? DEFAULT_BODY_BYTES, ...(body.allowPartialMessage ? { allow_partial_message: true } : {}), ...(body.packAsBytes ? { pack_as_bytes: true } : {}) } } : {}),
      // Only requests a CUSTOM rule matched (the shadow RBAC filter's record) are checked.
      filter_enabled_metadata: {
        filter: 'envoy.filters.http.rbac',
        path: [{ key: `${EXT_AUTHZ_STAT_PREFIX}shadow_effective_policy_id` }],
        value: { string_match: { prefix: EXT_AUTHZ_POLICY_PREFIX.slice(0, -1) } },
      },
    },
  };
}

export const extAuthz: Feature = { name: 'ext-authz', grpc: false, httpFilter: extAuthzFilter };
