// The envelope around every spec: apiVersion, kind and Kubernetes-style metadata.
import { z } from 'zod';
import { KINDS, type Kind } from '../types.ts';
import { annotations, dnsLabel, dnsSubdomain, labels } from './common.ts';
import { DestinationRuleSpec } from './destination-rule.ts';
import { ServiceEntrySpec } from './service-entry.ts';
import { VirtualServiceSpec } from './virtual-service.ts';
import { WorkloadEntrySpec } from './workload-entry.ts';

export const API_VERSIONS = ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'] as const;
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
} as const satisfies Record<Kind, z.ZodType>;

function documentSchema<K extends Kind>(kind: K) {
  return z.strictObject({
    apiVersion: z.enum(API_VERSIONS),
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
};
