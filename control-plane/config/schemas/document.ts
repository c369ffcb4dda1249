// The envelope around every spec: apiVersion, kind and Kubernetes-style metadata.
import { z } from 'zod';
import { KINDS, type Kind } from '../types.ts';
import { annotations, dnsLabel, dnsSubdomain, labels } from './common.ts';
import { DestinationRuleSpec } from './destination-rule.ts';
import { ServiceEntrySpec } from './service-entry.ts';
import { VirtualServiceSpec } from './virtual-service.ts';
import { WorkloadEntrySpec } from './workload-entry.ts';
import { AuthorizationPolicySpec } from './authorization-policy.ts';
import { RateLimitSpec } from './rate-limit.ts';
import { CanarySpec } from './canary.ts';
import { FaultExperimentSpec } from './fault-experiment.ts';
import { PeerAuthenticationSpec } from './peer-authentication.ts';
import { RequestAuthenticationSpec } from './request-authentication.ts';
import { SidecarSpec } from './sidecar.ts';
import { GatewaySpec } from './gateway.ts';

const NETWORKING = ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'] as const;
const SECURITY = ['security.istio.io/v1', 'security.istio.io/v1beta1'] as const;
/** Our own API group, for kinds Istio has no equivalent of. */
const MESHPILOT = ['traffic.meshpilot.io/v1alpha1'] as const;

/** The apiVersions each kind may be written with: Istio's groups for Istio kinds, ours for ours. */
export const KIND_API_VERSIONS = {
  VirtualService: NETWORKING,
  DestinationRule: NETWORKING,
  ServiceEntry: NETWORKING,
  WorkloadEntry: NETWORKING,
  AuthorizationPolicy: SECURITY,
  PeerAuthentication: SECURITY,
  RequestAuthentication: SECURITY,
  RateLimit: MESHPILOT,
  Canary: MESHPILOT,
  FaultExperiment: MESHPILOT,
  Sidecar: NETWORKING,
  Gateway: NETWORKING,
} as const satisfies Record<Kind, readonly string[]>;

export const API_VERSIONS = [...NETWORKING, ...SECURITY, ...MESHPILOT] as const;
export { KINDS };

export const Metadata = z.strictObject({
  name: dnsSubdomain,
  namespace: dnsLabel.optional(),
  labels: labels.optional(),
  annotations: annotations.optional(),
});
export type Metadata = z.infer<typeof Metadata>;

export const specSchemas = {
  VirtualService: VirtualServiceSpec,
  DestinationRule: DestinationRuleSpec,
  ServiceEntry: ServiceEntrySpec,
  WorkloadEntry: WorkloadEntrySpec,
  AuthorizationPolicy: AuthorizationPolicySpec,
  PeerAuthentication: PeerAuthenticationSpec,
  RequestAuthentication: RequestAuthenticationSpec,
  RateLimit: RateLimitSpec,
  Canary: CanarySpec,
  FaultExperiment: FaultExperimentSpec,
  Sidecar: SidecarSpec,
  Gateway: GatewaySpec,
} as const satisfies Record<Kind, z.ZodType>;

function documentSchema<K extends Kind>(kind: K) {
  return z.strictObject({
    apiVersion: z.enum(KIND_API_VERSIONS[kind]),
    kind: z.literal(kind),
    metadata: Metadata,
    spec: specSchemas[kind],
  });
}

/** Schemas of whole documents, one per kind; issue paths start at the document's top-level keys. */
export const documentSchemas = {
  VirtualService: documentSchema('VirtualService'),
  DestinationRule: documentSchema('DestinationRule'),
  ServiceEntry: documentSchema('ServiceEntry'),
  WorkloadEntry: documentSchema('WorkloadEntry'),
  AuthorizationPolicy: documentSchema('AuthorizationPolicy'),
  PeerAuthentication: documentSchema('PeerAuthentication'),
  RequestAuthentication: documentSchema('RequestAuthentication'),
  RateLimit: documentSchema('RateLimit'),
  Canary: documentSchema('Canary'),
  FaultExperiment: documentSchema('FaultExperiment'),
  Sidecar: documentSchema('Sidecar'),
  Gateway: documentSchema('Gateway'),
};
