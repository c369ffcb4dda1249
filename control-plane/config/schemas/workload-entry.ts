// WorkloadEntry (networking.istio.io): one non-Kubernetes workload. Also the shape of a
// ServiceEntry endpoint.
import { z } from 'zod';
import { UINT32_MAX, dnsLabel, dnsSubdomain, endpointAddress, intRange, labels, portNumber, withRule } from './common.ts';

/** Why a locality string is malformed, or undefined: "region", "region/zone" or "region/zone/subzone". */
export function localityProblem(s: string): string | undefined {
  const parts = s.split('/');
  if (parts.length > 3) return 'locality has at most three parts: region/zone/subzone';
  if (parts.some((p) => p === '' || /\s/.test(p))) return 'locality parts must be non-empty and contain no spaces (region, region/zone or region/zone/subzone)';
  return undefined;
}

export const WorkloadEntrySpec = withRule(z.strictObject({
  /** Absent only with a network: the workload is reached through that network's gateway. */
  address: endpointAddress.optional(),
  /** Port name (of the service) -> port number on this workload. */
  ports: z.record(dnsLabel, portNumber).optional(),
  labels: labels.optional(),
  locality: z
    .string()
    .superRefine((s, ctx) => {
      const problem = localityProblem(s);
      if (problem) ctx.addIssue({ code: 'custom', message: problem, input: s });
    })
    .optional(),
  /** The network the workload is in; callers in another network reach it through that network's gateway. */
  network: z.string().regex(/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/, { error: 'must be a network name (letters, digits, "-", "_", ".")' }).optional(),
  /** Load-balancing weight; 0 (like leaving it out) means the default weight of 1. */
  weight: intRange(0, UINT32_MAX).optional(),
  serviceAccount: dnsSubdomain.optional(),
}), (v, report) => {
  if (v['address'] === undefined && v['network'] === undefined) report(['address'], 'required field is missing (it may be left out only when network is set)');
  if (typeof v['address'] === 'string' && v['address'].startsWith('unix://') && v['ports'] !== undefined) report(['ports'], 'a unix domain socket endpoint has no ports');
});

export type WorkloadEntrySpec = z.infer<typeof WorkloadEntrySpec>;
