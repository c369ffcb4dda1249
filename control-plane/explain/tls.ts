// One hop's TLS, read from the generated config: what the caller's cluster sends (an
// UpstreamTlsContext with the mesh identity, and the SANs it accepts), what the callee's inbound
// chain for the port takes (STRICT: TLS only; PERMISSIVE: tls and raw_buffer chains; plaintext
// only), and so whether the connection is mTLS, plaintext, or fails; with the identity the caller
// presents (its service account's SPIFFE ID) for the callee's RBAC.
import { spiffeId } from '../model/mesh-identity.ts';
import type { Model } from '../model/types.ts';
import type { Proxy } from '../translate/proxy.ts';
import type { Json } from '../json.ts';
import type { TlsHop } from './types.ts';

/** What the caller's cluster resource says about TLS. */
export interface CallerTls { mtls: boolean; tls: boolean; accepts: string[] }

export function callerTls(cluster: Json | undefined): CallerTls {
  const ctx = ((cluster?.transport_socket as Json | undefined)?.typed_config as Json | undefined)?.common_tls_context as Json | undefined;
  if (!ctx) return { mtls: false, tls: false, accepts: [] };
  const mtls = ctx.tls_certificate_sds_secret_configs !== undefined || ctx.tls_certificate_provider_instance !== undefined;
  const vc = ((ctx.combined_validation_context as Json | undefined)?.default_validation_context as Json | undefined) ?? (ctx.validation_context as Json | undefined) ?? {};
  const typed = ((vc.match_typed_subject_alt_names as Json[] | undefined) ?? []).map((m) => String((m.matcher as Json).exact));
  const plain = ((vc.match_subject_alt_names as Json[] | undefined) ?? []).map((m) => String(m.exact));
  return { mtls, tls: true, accepts: [...typed, ...plain] };
}

/** The caller's service account: node metadata, else the mesh endpoint at its IP (or with its labels). */
export function callerIdentity(model: Model, proxy: Proxy): string | undefined {
  if (proxy.serviceAccount) return spiffeId(model.mesh.trustDomain, proxy.namespace, proxy.serviceAccount);
  for (const svc of model.services) {
    if (svc.namespace !== proxy.namespace) continue;
    for (const ep of svc.endpoints) {
      if (!ep.serviceAccount) continue;
      if (proxy.ip ? ep.address === proxy.ip : Object.entries(proxy.labels).every(([k, v]) => ep.labels[k] === v) && Object.keys(proxy.labels).length > 0) {
        return spiffeId(model.mesh.trustDomain, svc.namespace, ep.serviceAccount);
      }
    }
  }
  return undefined;
}

/** The callee's inbound side for a port: which TLS its chains take. */
export function calleeMode(chains: Json[]): TlsHop['callee'] {
  const tls = chains.filter((c) => c.transport_socket);
  if (tls.length === 0) return 'plaintext only';
  return chains.some((c) => !c.transport_socket) ? 'mTLS or plaintext' : 'mTLS only';
}

export function tlsHop(caller: CallerTls, identity: string | undefined, callee: TlsHop['callee'], calleeIdentity: string | undefined): TlsHop {
  const base = { caller: caller.mtls ? ('mTLS' as const) : caller.tls ? ('TLS' as const) : ('plaintext' as const), callee, accepts: caller.accepts, ...(calleeIdentity ? { calleeIdentity } : {}) };
  if (!caller.tls) {
    if (callee === 'mTLS only') return { ...base, result: 'fails', reason: 'the caller sends plaintext and the callee takes mTLS only (STRICT): the connection is refused' };
    return { ...base, result: 'plaintext', reason: 'plaintext: the callee sees no caller identity' };
  }
  if (callee === 'plaintext only') return { ...base, result: 'fails', reason: 'the caller starts TLS and the callee takes plaintext only (DISABLE, or PERMISSIVE on a proxyless gRPC server): the connection fails' };
  if (caller.accepts.length && (!calleeIdentity || !caller.accepts.includes(calleeIdentity))) {
    return { ...base, result: 'fails', reason: `the callee's certificate (${calleeIdentity ?? 'no known service account'}) is not one the caller accepts: the handshake fails` };
  }
  if (!caller.mtls) return { ...base, result: 'fails', reason: 'the caller presents no client certificate and the callee requires one' };
  return { ...base, result: 'mTLS', ...(identity ? { identity } : {}), reason: identity ? `mTLS; the caller presents ${identity}` : 'mTLS; the caller presents its certificate (its service account is not known here)' };
}
