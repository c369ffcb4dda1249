// The Kubernetes resources behind meshpilot's rule kinds: Istio's groups for Istio's kinds (so
// meshpilot is a drop-in control plane for them), traffic.meshpilot.io for RateLimit, Canary and FaultExperiment. Informers
// watch the storage version; the API server serves every version with the same schema.
import type { Kind } from '../config/types.ts';

export interface RuleResource {
  kind: Kind;
  group: string;
  /** The version informers watch (and the CRD stores). */
  version: string;
  /** Every version the CRD serves. */
  served: readonly string[];
  plural: string;
  singular: string;
  shortNames?: string[];
  categories: string[];
}

const NETWORKING = ['v1', 'v1beta1', 'v1alpha3'] as const;

export const RULE_RESOURCES: readonly RuleResource[] = [
  { kind: 'VirtualService', group: 'networking.istio.io', version: 'v1', served: NETWORKING, plural: 'virtualservices', singular: 'virtualservice', shortNames: ['vs'], categories: ['istio-io', 'networking-istio-io'] },
  { kind: 'DestinationRule', group: 'networking.istio.io', version: 'v1', served: NETWORKING, plural: 'destinationrules', singular: 'destinationrule', shortNames: ['dr'], categories: ['istio-io', 'networking-istio-io'] },
  { kind: 'ServiceEntry', group: 'networking.istio.io', version: 'v1', served: NETWORKING, plural: 'serviceentries', singular: 'serviceentry', shortNames: ['se'], categories: ['istio-io', 'networking-istio-io'] },
  { kind: 'WorkloadEntry', group: 'networking.istio.io', version: 'v1', served: NETWORKING, plural: 'workloadentries', singular: 'workloadentry', shortNames: ['we'], categories: ['istio-io', 'networking-istio-io'] },
  { kind: 'Sidecar', group: 'networking.istio.io', version: 'v1', served: NETWORKING, plural: 'sidecars', singular: 'sidecar', categories: ['istio-io', 'networking-istio-io'] },
  { kind: 'AuthorizationPolicy', group: 'security.istio.io', version: 'v1', served: ['v1', 'v1beta1'], plural: 'authorizationpolicies', singular: 'authorizationpolicy', shortNames: ['ap'], categories: ['istio-io', 'security-istio-io'] },
  { kind: 'PeerAuthentication', group: 'security.istio.io', version: 'v1', served: ['v1', 'v1beta1'], plural: 'peerauthentications', singular: 'peerauthentication', shortNames: ['pa'], categories: ['istio-io', 'security-istio-io'] },
  { kind: 'RequestAuthentication', group: 'security.istio.io', version: 'v1', served: ['v1', 'v1beta1'], plural: 'requestauthentications', singular: 'requestauthentication', shortNames: ['ra'], categories: ['istio-io', 'security-istio-io'] },
  { kind: 'Gateway', group: 'networking.istio.io', version: 'v1', served: NETWORKING, plural: 'gateways', singular: 'gateway', shortNames: ['gw'], categories: ['istio-io', 'networking-istio-io'] },
  { kind: 'RateLimit', group: 'traffic.meshpilot.io', version: 'v1alpha1', served: ['v1alpha1'], plural: 'ratelimits', singular: 'ratelimit', categories: ['meshpilot'] },
  { kind: 'Canary', group: 'traffic.meshpilot.io', version: 'v1alpha1', served: ['v1alpha1'], plural: 'canaries', singular: 'canary', categories: ['meshpilot'] },
  { kind: 'FaultExperiment', group: 'traffic.meshpilot.io', version: 'v1alpha1', served: ['v1alpha1'], plural: 'faultexperiments', singular: 'faultexperiment', categories: ['meshpilot'] },
];
