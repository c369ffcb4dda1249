// ServiceEntry (networking.istio.io): services that are not Kubernetes Services.
import { z } from 'zod';
import { isIP } from 'node:net';
import { dnsLabel, host, isIpLiteral, isRecord, istioEnum, labels, portNumber, uniqueBy, withRule } from './common.ts';
import { WorkloadEntrySpec } from './workload-entry.ts';
import { exportTo } from './export-to.ts';

/** Protocols as Istio reads them: case-insensitively (`http`, `Http`, `HTTP`). MONGO, MYSQL and
 * REDIS are carried as TCP (Istio's own default: their protocol filters are off). */
export const SERVICE_PROTOCOLS = ['HTTP', 'HTTP2', 'GRPC', 'TCP', 'HTTPS', 'TLS', 'MONGO', 'MYSQL', 'REDIS'] as const;
// A string on input (so the CRD takes `http` as well), one of the names in capitals once read.
export const protocolName = z
  .string()
  .transform((s) => s.toUpperCase() || 'TCP') // "" is unset to Istio, as an absent protocol
  .pipe(istioEnum(SERVICE_PROTOCOLS, ['UDP', 'GRPC-WEB', 'HBONE']));

/** An address of the service (`addresses`): an IP or a CIDR block. */
export function isIpOrCidr(s: string): boolean {
  const [ip, bits, ...rest] = s.split('/');
  if (rest.length > 0 || !ip) return false;
  const family = isIP(ip);
  if (family === 0) return false;
  if (bits === undefined) return true;
  if (!/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}
// An IPv6 address ending in "::" inside a flow list (`[1.2.3.4, 2001:db8::]`) reads as a one-key
// map {"2001:db8:": null} to a YAML 1.2 parser (": " before "]"); Kubernetes' YAML 1.1 reader, and
// so Istio, sees the address. Read it back as the text it was.
const serviceAddress = z.preprocess(
  (v) => (isRecord(v) && Object.keys(v).length === 1 && Object.values(v)[0] === null ? `${Object.keys(v)[0]}:` : v),
  z.string().refine(isIpOrCidr, { error: 'must be an IP address or a CIDR block (e.g. 10.0.0.0/16)' }),
);

export const ServicePort = z.strictObject({
  number: portNumber,
  /** Absent: TCP (Istio sniffs the protocol; meshpilot does not). */
  protocol: protocolName.optional(),
  name: dnsLabel,
  targetPort: portNumber.optional(),
});

/** Without labels (`{}`, which Istio takes) it selects every workload of the namespace. */
export const WorkloadSelector = z.strictObject({
  labels: labels.optional(),
});

export const ServiceEntrySpec = withRule(
  z.strictObject({
    hosts: z.array(host({ wildcard: true, partial: true })).min(1, { error: 'must list at least one host' }),
    /** Istio takes a ServiceEntry without ports (it then carries no traffic: a warning). */
    ports: z.array(ServicePort).optional(),
    /** Virtual IPs (or CIDR blocks) of the service: also matched as the request's authority. */
    addresses: z.array(serviceAddress).optional(),
    location: istioEnum(['MESH_EXTERNAL', 'MESH_INTERNAL']).optional(),
    /** Absent: NONE, Istio's default (connections go to the address the caller asked for). */
    resolution: istioEnum(['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN', 'DYNAMIC_DNS']).optional(),
    endpoints: z.array(WorkloadEntrySpec).optional(),
    workloadSelector: WorkloadSelector.optional(),
    /** Identities the workloads behind the hosts present (SPIFFE IDs); checked by ISTIO_MUTUAL callers. */
    subjectAltNames: z.array(z.string().min(1, { error: 'must not be empty' })).optional(),
    /** Namespaces that see the service (export-to.ts). */
    exportTo: exportTo.optional(),
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
    const resolution = v['resolution'] ?? 'NONE';
    const dns = resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN';
    if (resolution === 'STATIC' && !endpoints && v['workloadSelector'] === undefined) {
      report(['resolution'], 'STATIC resolution needs endpoints or a workloadSelector');
    }
    if ((resolution === 'NONE' || resolution === 'DYNAMIC_DNS') && endpoints?.length) {
      report(['endpoints'], `no endpoints may be given with resolution ${resolution}${v['resolution'] === undefined ? ' (the default)' : ''}: connections go to the address the caller asked for`);
    }
    if (dns && !endpoints?.length) {
      hosts.forEach((h, i) => {
        if (typeof h === 'string' && h.startsWith('*')) report(['hosts', i], `a wildcard host cannot be resolved with ${resolution} unless endpoints are given`);
      });
    }
    if (resolution === 'DNS_ROUND_ROBIN' && endpoints && endpoints.length > 1) {
      report(['endpoints'], 'DNS_ROUND_ROBIN takes at most one endpoint (Envoy resolves one name and balances over its addresses)');
    }
    if (dns && Array.isArray(v['addresses'])) {
      v['addresses'].forEach((a, i) => {
        if (typeof a === 'string' && a.includes('/') && isIpOrCidr(a)) report(['addresses', i], `CIDR blocks are allowed only with resolution NONE or STATIC (got ${JSON.stringify(a)} with ${resolution})`);
      });
    }
    if (resolution === 'DYNAMIC_DNS') {
      if (!Array.isArray(v['ports']) || v['ports'].length === 0) report(['resolution'], 'DYNAMIC_DNS needs an HTTP, HTTP2 or GRPC port (the host comes from the request); no ports are listed');
      (Array.isArray(v['ports']) ? v['ports'] : []).forEach((p, i) => {
        const proto = isRecord(p) && typeof p['protocol'] === 'string' ? p['protocol'].toUpperCase() : undefined;
        if (proto !== 'HTTP' && proto !== 'HTTP2' && proto !== 'GRPC') report(['ports', i, 'protocol'], 'DYNAMIC_DNS needs an HTTP, HTTP2 or GRPC port (the host comes from the request)');
      });
    }

    const unix = (endpoints ?? []).findIndex((ep) => isRecord(ep) && typeof ep['address'] === 'string' && ep['address'].startsWith('unix://'));
    if (unix >= 0) {
      if (Array.isArray(v['ports']) && v['ports'].length > 1) report(['ports'], 'a ServiceEntry with unix domain socket endpoints takes one port (a socket has no ports to tell them apart)');
      if (resolution !== 'STATIC') report(['endpoints', unix, 'address'], `unix domain socket endpoints need resolution STATIC (got ${resolution})`);
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
