// Workload identities: the SPIFFE ID a workload's certificate carries, from its service account.
// The trust domain and the root namespace (where mesh-wide PeerAuthentication lives) are inputs
// of the model, with Istio's defaults so Istio's rules mean the same here.
import type { ExtensionProvider } from './extension-providers.ts';

export interface MeshSettings {
  /** SPIFFE trust domain of the mesh's certificates. */
  trustDomain: string;
  /** Namespace whose selector-less PeerAuthentication is mesh-wide (Istio's `rootNamespace`). */
  rootNamespace: string;
  /**
   * Whether workloads hold mesh certificates (a control plane runs the mesh CA only with
   * --xds-tls). Without them, nothing is TLS unless a rule asks for it: no PeerAuthentication means
   * DISABLE instead of Istio's PERMISSIVE, and there is no automatic mTLS, since either would hand
   * sidecars TLS config they have no certificate for. Default true (Istio's meaning).
   */
  certificates?: boolean;
  /** MeshConfig `extensionProviders` (config/mesh-config.ts): the external authorizers CUSTOM policies name. */
  extensionProviders?: ExtensionProvider[];
  /** MeshConfig `outboundTrafficPolicy`: whether calls to hosts the mesh does not know pass through. */
  outboundTrafficPolicy?: { mode: 'ALLOW_ANY' | 'REGISTRY_ONLY' };
}

export const DEFAULT_MESH: MeshSettings = { trustDomain: 'cluster.local', rootNamespace: 'istio-system' };

/** `spiffe://<trust-domain>/ns/<ns>/sa/<sa>` */
export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}
