// Workload identities: the SPIFFE ID a workload's certificate carries, from its service account.
// The trust domain and the root namespace (where mesh-wide PeerAuthentication lives) are inputs
// of the model, with Istio's defaults so Istio's rules mean the same here.
import type { ExtensionProvider } from './extension-providers.ts';
import type { LocalityLbSettingIn } from './input.ts';

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
  /** Where a sidecar sends traffic for destinations it has no service for, unless its Sidecar
   * says otherwise (Istio's meshConfig.outboundTrafficPolicy): ALLOW_ANY (the default) passes it
   * through, REGISTRY_ONLY drops it (BlackHoleCluster). */
  outboundTrafficPolicy?: { mode: 'ALLOW_ANY' | 'REGISTRY_ONLY' };
  /** MeshConfig `localityLbSetting`: every destination's, unless its DestinationRule sets its own
   * (model/policy.ts); `enabled: false` turns locality load balancing off where a rule does not
   * turn it on. */
  localityLbSetting?: LocalityLbSettingIn;
}

export const DEFAULT_MESH: MeshSettings = { trustDomain: 'cluster.local', rootNamespace: 'istio-system' };

/** `spiffe://<trust-domain>/ns/<ns>/sa/<sa>` */
export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}
