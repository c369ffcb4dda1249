// PeerAuthentication objects -> the mutual TLS mode each workload port accepts, with Istio's
// precedence: a workload policy (selector) over the namespace's policy over the mesh-wide one
// (selector-less, in the root namespace); at each level a port-level mode over the policy's own;
// UNSET (or no mode) inherits from the next level; with nothing set, PERMISSIVE.
// Istio breaks ties between policies of one level by age; meshpilot has no creation times, so the
// first by name wins and the others are reported.
import { compareText } from './compare.ts';
import { type ConfigObject, isKind } from '../config/types.ts';
import { type IssueList, originOf } from './issues.ts';
import type { MeshSettings } from './mesh-identity.ts';
import { endpointPort, labelsMatch } from './services.ts';
import type { Origin, Service } from './types.ts';

export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

export interface PeerAuthPolicy {
  name: string;
  namespace: string;
  /** Absent: the whole namespace (the mesh in the root namespace). */
  selector?: Record<string, string>;
  /** Absent: UNSET, inherits. */
  mode?: MtlsMode;
  /** Workload port -> mode; UNSET ports are left out (they inherit). */
  ports: Record<number, MtlsMode>;
  origin: Origin;
}

/** The mode in force on one port of one workload, and which policy decided it (none: the default). */
export interface EffectiveMtls { mode: MtlsMode; origin?: Origin; scope: 'port' | 'workload' | 'namespace' | 'mesh' | 'default' }

const known = (m: string | undefined): MtlsMode | undefined => (m === 'STRICT' || m === 'PERMISSIVE' || m === 'DISABLE' ? m : undefined);

export function buildPeerAuthentications(objects: readonly ConfigObject[], services: readonly Service[], mesh: MeshSettings, issues: IssueList): PeerAuthPolicy[] {
  const out: PeerAuthPolicy[] = [];
  const wide = new Map<string, ConfigObject>(); // namespace -> its selector-less policy in force
  for (const obj of objects) {
    if (!isKind(obj, 'PeerAuthentication')) continue;
    const spec = obj.spec;
    const selector = spec.selector?.matchLabels;
    const hasSelector = selector !== undefined && Object.keys(selector).length > 0;
    if (!hasSelector) {
      const first = wide.get(obj.namespace);
      if (first) {
        const what = obj.namespace === mesh.rootNamespace ? 'mesh-wide' : `namespace-wide (${obj.namespace})`;
        issues.warn(obj, ['spec'], `ignored: ${first.key} is already the ${what} PeerAuthentication (Istio keeps the oldest; meshpilot the first by name)`);
        continue;
      }
      wide.set(obj.namespace, obj);
    }
    const ports: Record<number, MtlsMode> = {};
    for (const [port, m] of Object.entries(spec.portLevelMtls ?? {})) {
      const mode = known(m.mode);
      if (mode) ports[Number(port)] = mode;
    }
    if (hasSelector) warnSelection(obj, selector, services, issues);
    out.push({
      name: obj.name,
      namespace: obj.namespace,
      ...(hasSelector ? { selector: { ...selector } } : {}),
      ...(known(spec.mtls?.mode) ? { mode: known(spec.mtls?.mode) } : {}),
      ports,
      origin: originOf(obj),
    });
  }
  out.sort((a, b) => compareText(a.origin.key, b.origin.key));
  warnPermissiveGrpc(out, objects, services, mesh, issues);
  return out;
}

/** A selector that matches none of the namespace's known workloads is probably a typo. */
function warnSelection(obj: ConfigObject, selector: Record<string, string>, services: readonly Service[], issues: IssueList): void {
  const hit = services.some((s) => s.namespace === obj.namespace && s.endpoints.some((e) => labelsMatch(selector, e.labels)));
  if (!hit) issues.warn(obj, ['spec', 'selector'], `selects no known workload in namespace ${obj.namespace} (it applies once one with these labels exists)`);
}

/** The mTLS mode a workload (namespace + labels) accepts on `port`. `policies` sorted by key. */
export function effectiveMtls(policies: readonly PeerAuthPolicy[], mesh: MeshSettings, namespace: string, labels: Record<string, string>, port: number): EffectiveMtls {
  const workload = policies.find((p) => p.namespace === namespace && p.selector && labelsMatch(p.selector, labels));
  if (workload?.ports[port]) return { mode: workload.ports[port], origin: workload.origin, scope: 'port' };
  if (workload?.mode) return { mode: workload.mode, origin: workload.origin, scope: 'workload' };
  const ns = policies.find((p) => p.namespace === namespace && !p.selector);
  if (ns?.mode) return { mode: ns.mode, origin: ns.origin, scope: namespace === mesh.rootNamespace ? 'mesh' : 'namespace' };
  const meshWide = policies.find((p) => p.namespace === mesh.rootNamespace && !p.selector);
  if (meshWide?.mode) return { mode: meshWide.mode, origin: meshWide.origin, scope: 'mesh' };
  return { mode: mesh.certificates === false ? 'DISABLE' : 'PERMISSIVE', scope: 'default' };
}

/**
 * Proxyless gRPC servers cannot take TLS and plaintext on one port (see translate/inbound-mtls.ts):
 * under PERMISSIVE they take plaintext only. Said on the policy that makes a GRPC port PERMISSIVE.
 */
function warnPermissiveGrpc(policies: readonly PeerAuthPolicy[], objects: readonly ConfigObject[], services: readonly Service[], mesh: MeshSettings, issues: IssueList): void {
  const hits = new Map<string, Set<string>>(); // policy key -> host:port
  for (const svc of services) {
    for (const sp of svc.ports) {
      if (sp.protocol !== 'GRPC') continue;
      for (const ep of svc.endpoints) {
        const eff = effectiveMtls(policies, mesh, svc.namespace, ep.labels, endpointPort(ep, sp));
        if (eff.mode !== 'PERMISSIVE' || !eff.origin) continue;
        const set = hits.get(eff.origin.key) ?? new Set<string>();
        hits.set(eff.origin.key, set.add(`${svc.host}:${sp.number}`));
      }
    }
  }
  for (const obj of objects) {
    const hit = hits.get(obj.key);
    if (hit) issues.warn(obj, ['spec'], `PERMISSIVE on GRPC ports (${[...hit].sort().join(', ')}): Envoy sidecars take mTLS and plaintext, but a proxyless gRPC server takes plaintext only (grpc-js-xds cannot tell TLS from plaintext on one port); use STRICT for mTLS there`);
  }
}
