// The TLS a caller uses towards one cluster: what the DestinationRule says (tls at the rule, port,
// subset and subset-port level, the last one set wins), or else auto mTLS: ISTIO_MUTUAL when every
// endpoint is in the mesh (it has a service account, so a mesh identity, and no
// `security.istio.io/tlsMode: disabled` label) and accepts mTLS there (its effective
// PeerAuthentication mode is not DISABLE). Otherwise plaintext. Istio decides per endpoint
// (transport_socket_matches); meshpilot decides per cluster, so a cluster mixing in-mesh and other
// endpoints gets plaintext, which works against PERMISSIVE and DISABLE, not STRICT.
// On GRPC ports auto mTLS needs STRICT: the server may be a proxyless gRPC server, which under
// PERMISSIVE takes plaintext only (translate/inbound-mtls.ts), while plaintext reaches a PERMISSIVE
// sidecar too. (Istio tells them apart by a pod label its injectors set; meshpilot cannot.)
import { effectiveMtls, type PeerAuthPolicy } from './peer-authentication.ts';
import { type MeshSettings, spiffeId } from './mesh-identity.ts';
import type { ClientTls, Endpoint, Service, UpstreamCluster, UpstreamTls } from './types.ts';
import type { ConfigObject } from '../config/types.ts';
import type { IssueSink } from './issues.ts';

export interface MtlsContext { policies: readonly PeerAuthPolicy[]; mesh: MeshSettings }

export const TLS_MODE_LABEL = 'security.istio.io/tlsMode';

const inMesh = (e: Endpoint) => e.serviceAccount !== undefined && e.labels[TLS_MODE_LABEL] !== 'disabled';

/** The SPIFFE IDs of these endpoints' service accounts, and the service's own subjectAltNames. */
export function destinationIdentities(svc: Service, endpoints: readonly Endpoint[], mesh: MeshSettings): string[] {
  const ids = new Set<string>(svc.subjectAltNames ?? []);
  for (const e of endpoints) if (e.serviceAccount) ids.add(spiffeId(mesh.trustDomain, svc.namespace, e.serviceAccount));
  return [...ids].sort();
}

/** Istio's SNI for mesh mTLS: `outbound_.9080_.v1_.reviews.default.svc.cluster.local`. */
export function istioSni(host: string, port: number, subset: string | undefined): string {
  return `outbound_.${port}_.${subset ?? ''}_.${host}`;
}

export function upstreamTls(
  svc: Service,
  port: number,
  subset: string | undefined,
  rule: ClientTls | undefined,
  endpoints: ReadonlyArray<Endpoint & { port: number }>,
  ctx: MtlsContext,
): UpstreamTls | undefined {
  if (rule) {
    if (rule.mode === 'DISABLE') return undefined;
    const { mode, ...rest } = rule;
    const sans = rule.subjectAltNames ?? (mode === 'ISTIO_MUTUAL' ? destinationIdentities(svc, endpoints, ctx.mesh) : []);
    const sni = rule.sni ?? (mode === 'ISTIO_MUTUAL' ? istioSni(svc.host, port, subset) : undefined);
    return { ...rest, mode, source: 'rule', ...(sni ? { sni } : {}), subjectAltNames: sans };
  }
  if (ctx.mesh.certificates === false) return undefined; // no certificates: no automatic mTLS
  if (svc.location !== 'MESH_INTERNAL' || endpoints.length === 0 || !endpoints.every(inMesh)) return undefined;
  const grpc = svc.ports.find((p) => p.number === port)?.protocol === 'GRPC';
  const accepts = endpoints.every((e) => {
    const mode = effectiveMtls(ctx.policies, ctx.mesh, svc.namespace, e.labels, e.port).mode;
    return grpc ? mode === 'STRICT' : mode !== 'DISABLE';
  });
  if (!accepts) return undefined;
  return { mode: 'ISTIO_MUTUAL', source: 'auto', sni: istioSni(svc.host, port, subset), subjectAltNames: destinationIdentities(svc, endpoints, ctx.mesh) };
}

/**
 * A DestinationRule's ISTIO_MUTUAL towards a GRPC port whose workloads are PERMISSIVE: a proxyless
 * gRPC server there takes plaintext only, so mTLS calls to it fail (a sidecar takes them).
 */
export function warnMutualToPermissiveGrpc(clusters: readonly UpstreamCluster[], services: ReadonlyMap<string, Service>, ruleOf: (host: string) => ConfigObject | undefined, ctx: MtlsContext, issues: IssueSink): void {
  const hits = new Map<ConfigObject, Set<string>>();
  for (const c of clusters) {
    if (c.tls?.mode !== 'ISTIO_MUTUAL' || c.tls.source !== 'rule' || c.port.protocol !== 'GRPC') continue;
    const svc = services.get(c.host);
    const rule = ruleOf(c.host);
    if (!svc || !rule) continue;
    if (!c.endpoints.some((e) => effectiveMtls(ctx.policies, ctx.mesh, svc.namespace, e.labels, e.port).mode === 'PERMISSIVE')) continue;
    hits.set(rule, (hits.get(rule) ?? new Set<string>()).add(`${c.host}:${c.port.number}`));
  }
  for (const [rule, ports] of hits) {
    issues.warn(rule, ['spec'], `ISTIO_MUTUAL to PERMISSIVE workloads on GRPC ports (${[...ports].sort().join(', ')}): a proxyless gRPC server there takes plaintext only, so mTLS calls to it fail; make those workloads STRICT`);
  }
}
