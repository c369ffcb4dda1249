// Extension providers from the mesh config file (Istio's MeshConfig `extensionProviders`): the
// external authorizers (Envoy ext_authz, HTTP or gRPC) that CUSTOM AuthorizationPolicies name.
// A CUSTOM policy's provider is resolved here against the mesh's services, so the translator only
// maps fields; a provider that cannot be used is said once, and the policy fails closed.
import { clusterName } from './hosts.ts';
import type { Service } from './types.ts';

export interface ExtAuthzProvider {
  name: string;
  kind: 'http' | 'grpc';
  /** `[<namespace>/]<host>` as written. */
  service: string;
  port: number;
  timeoutMs?: number;
  /** HTTP only. */
  pathPrefix?: string;
  failOpen?: boolean;
  /** HTTP status sent when the authorizer cannot be reached (default 403). */
  statusOnError?: number;
  /** HTTP only: header names (Istio's value forms) sent to the authorizer, headers added to its check, headers it may set. */
  includeRequestHeadersInCheck?: string[];
  includeAdditionalHeadersInCheck?: Record<string, string>;
  headersToUpstreamOnAllow?: string[];
  headersToDownstreamOnDeny?: string[];
  includeRequestBodyInCheck?: { maxRequestBytes?: number; allowPartialMessage?: boolean; packAsBytes?: boolean };
}

/** A provider of another type (tracing, access logs...): known by name, not an authorizer. */
export interface OtherProvider { name: string; kind: 'other'; type: string }

export type ExtensionProvider = ExtAuthzProvider | OtherProvider;

/** A CUSTOM policy's provider, ready to translate: its cluster on the calling sidecar. */
export interface ResolvedExtAuthz extends ExtAuthzProvider {
  host: string;
  cluster: string;
}

/** The provider named `name`, resolved, or why it cannot be used. */
export function resolveExtAuthz(name: string, providers: readonly ExtensionProvider[] | undefined, services: readonly Service[]): ResolvedExtAuthz | { problem: string } {
  const p = providers?.find((x) => x.name === name);
  if (!p) {
    const known = (providers ?? []).map((x) => x.name);
    return { problem: `extension provider ${JSON.stringify(name)} is not in the mesh config (${known.length ? `known: ${known.join(', ')}` : 'no extensionProviders; give --mesh-config'})` };
  }
  if (p.kind === 'other') return { problem: `extension provider ${JSON.stringify(name)} is a ${p.type} provider, not envoyExtAuthzHttp or envoyExtAuthzGrpc` };
  const slash = p.service.indexOf('/');
  const ns = slash >= 0 ? p.service.slice(0, slash) : undefined;
  const host = slash >= 0 ? p.service.slice(slash + 1) : p.service;
  const svc = services.find((s) => s.host === host && (ns === undefined || s.namespace === ns));
  if (!svc) return { problem: `extension provider ${JSON.stringify(name)}: service ${p.service} is not in the mesh (no ServiceEntry or Kubernetes Service with that host)` };
  if (!svc.ports.some((sp) => sp.number === p.port)) return { problem: `extension provider ${JSON.stringify(name)}: service ${host} has no port ${p.port} (ports: ${svc.ports.map((sp) => sp.number).join(', ')})` };
  return { ...p, host, cluster: clusterName('outbound', p.port, undefined, host) };
}
