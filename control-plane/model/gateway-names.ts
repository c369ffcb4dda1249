// The names a VirtualService binds to gateways with, resolved as Istio resolves them.
import { MESH_GATEWAY } from '../config/schemas/virtual-service.ts';

/** No `gateways` means `mesh` only; a list applies to sidecars only when it names `mesh`. */
export function boundToMesh(gateways: readonly string[] | undefined): boolean {
  return !gateways?.length || gateways.includes(MESH_GATEWAY);
}

/**
 * `mesh` stays `mesh`; `ns/name` is kept; a bare `name` is in the rule's namespace; the legacy
 * `name.ns.svc.cluster.local` (any name with dots) is `ns/name`.
 */
export function resolveGatewayName(name: string, namespace: string): string {
  if (name === MESH_GATEWAY || name.includes('/')) return name;
  if (name.includes('.')) {
    const [gw, ns] = name.split('.');
    return `${ns}/${gw}`;
  }
  return `${namespace}/${name}`;
}
