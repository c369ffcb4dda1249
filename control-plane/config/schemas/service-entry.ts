// ServiceEntry (networking.istio.io): services that are not Kubernetes Services.
import { z } from 'zod';
import { dnsLabel, host, isIpLiteral, isRecord, istioEnum, labels, portNumber, uniqueBy, withRule } from './common.ts';
import { WorkloadEntrySpec } from './workload-entry.ts';

export const ServicePort = z.strictObject({
  number: portNumber,
  protocol: istioEnum(['HTTP', 'HTTP2', 'GRPC', 'TCP', 'HTTPS', 'TLS'], ['MONGO', 'MYSQL', 'REDIS', 'UDP', 'GRPC-WEB', 'HBONE']),
  name: dnsLabel,
  targetPort: portNumber.optional(),
});

export const WorkloadSelector = z.strictObject({
  labels: labels.refine((l) => Object.keys(l).length > 0, { error: 'must have at least one label' }),
});

export const ServiceEntrySpec = withRule(
  z.strictObject({
    hosts: z.array(host({ wildcard: true })).min(1, { error: 'must list at least one host' }),
    ports: z.array(ServicePort).min(1, { error: 'must list at least one port' }),
    location: istioEnum(['MESH_EXTERNAL', 'MESH_INTERNAL']).optional(),
    /** Required here: Istio's default, NONE, is not supported by meshpilot. */
    resolution: istioEnum(['STATIC', 'DNS'], ['NONE', 'DNS_ROUND_ROBIN']).optional(),
    endpoints: z.array(WorkloadEntrySpec).optional(),
    workloadSelector: WorkloadSelector.optional(),
    /** Identities the workloads behind the hosts present (SPIFFE IDs); checked by ISTIO_MUTUAL callers. */
    subjectAltNames: z.array(z.string().min(1, { error: 'must not be empty' })).optional(),
  }),
  (v, report) => {
    uniqueBy(v['ports'], 'number', 'port number', report, ['ports']);
    uniqueBy(v['ports'], 'name', 'port name', report, ['ports']);
    const hosts = Array.isArray(v['hosts']) ? v['hosts'] : [];
    hosts.forEach((h, i) => {
      if (hosts.indexOf(h) !== i) report(['hosts', i], `duplicate host ${JSON.stringify(h)}`);
    });

    const endpoints = Array.isArray(v['endpoints']) ? v['endpoints'] : undefined;
    if (endpoints && v['workloadSelector'] !== undefined) report(['workloadSelector'], 'endpoints and workloadSelector cannot both be set');
    const resolution = v['resolution'];
    if (resolution === undefined) report(['resolution'], 'required: STATIC or DNS (Istio\'s default, NONE, is not supported by meshpilot)');
    if (resolution === 'STATIC' && !endpoints && v['workloadSelector'] === undefined) {
      report(['resolution'], 'STATIC resolution needs endpoints or a workloadSelector');
    }
    if (resolution === 'DNS' && !endpoints) {
      hosts.forEach((h, i) => {
        if (typeof h === 'string' && h.startsWith('*')) report(['hosts', i], 'a wildcard host cannot be resolved with DNS unless endpoints are given');
      });
    }

    const portNames = new Set((Array.isArray(v['ports']) ? v['ports'] : []).map((p) => (isRecord(p) ? p['name'] : undefined)));
    endpoints?.forEach((ep, i) => {
      if (!isRecord(ep)) return;
      const address = ep['address'];
      if (resolution === 'STATIC' && typeof address === 'string' && !address.startsWith('unix://') && !isIpLiteral(address)) {
        report(['endpoints', i, 'address'], `with STATIC resolution an endpoint address must be an IP address (got ${JSON.stringify(address)})`);
      }
      const ports = ep['ports'];
      if (isRecord(ports)) {
        for (const name of Object.keys(ports)) {
          if (!portNames.has(name)) report(['endpoints', i, 'ports', name], `port name ${JSON.stringify(name)} is not one of this ServiceEntry's ports`);
        }
      }
    });
  },
);

export type ServiceEntrySpec = z.infer<typeof ServiceEntrySpec>;
export type ServicePort = z.infer<typeof ServicePort>;
export type WorkloadSelector = z.infer<typeof WorkloadSelector>;
