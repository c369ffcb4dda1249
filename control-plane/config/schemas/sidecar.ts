// networking.istio.io Sidecar: what one workload's proxy sees (egress hosts), takes (ingress ports)
// and does with traffic to unknown destinations (outboundTrafficPolicy). Checked as Istio checks it.
import { z } from 'zod';
import { checkHost, intRange, isDnsLabel, isIpLiteral, isRecord, istioEnum, labels, withRule } from './common.ts';
import { ConnectionPoolSettings } from './destination-rule.ts';
import { protocolName } from './service-entry.ts';
import { Destination } from './virtual-service.ts';

const UNIX = 'unix://';

/** Istio's SidecarPort; number 0 only for a Unix-socket egress listener (checked below). */
const SidecarPort = z.strictObject({
  number: intRange(0, 65535, 'a port number'),
  protocol: protocolName.optional(),
  name: z.string().optional(),
  targetPort: intRange(0, 65535, 'a port number').optional(),
});

const captureMode = istioEnum(['DEFAULT', 'IPTABLES', 'NONE']);

/** Istio's ServerTLSSettings, as an ingress listener may carry it (checked for shape only). */
const ServerTLSSettings = z.strictObject({
  mode: istioEnum(['PASSTHROUGH', 'SIMPLE', 'MUTUAL', 'AUTO_PASSTHROUGH', 'ISTIO_MUTUAL', 'OPTIONAL_MUTUAL']).optional(),
  httpsRedirect: z.boolean().optional(),
  serverCertificate: z.string().optional(),
  privateKey: z.string().optional(),
  caCertificates: z.string().optional(),
  caCrl: z.string().optional(),
  credentialName: z.string().optional(),
  credentialNames: z.array(z.string()).optional(),
  subjectAltNames: z.array(z.string()).optional(),
  verifyCertificateSpki: z.array(z.string()).optional(),
  verifyCertificateHash: z.array(z.string()).optional(),
  minProtocolVersion: istioEnum(['TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3']).optional(),
  maxProtocolVersion: istioEnum(['TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3']).optional(),
  cipherSuites: z.array(z.string()).optional(),
});

export const IstioIngressListener = z.strictObject({
  port: SidecarPort,
  bind: z.string().optional(),
  captureMode: captureMode.optional(),
  defaultEndpoint: z.string().optional(),
  tls: ServerTLSSettings.optional(),
  connectionPool: ConnectionPoolSettings.optional(),
});

export const IstioEgressListener = z.strictObject({
  port: SidecarPort.optional(),
  bind: z.string().optional(),
  captureMode: captureMode.optional(),
  hosts: z.array(z.string()).min(1, { error: 'must list at least one host (namespace/dnsName)' }),
});

export const OutboundTrafficPolicy = z.strictObject({
  mode: istioEnum(['REGISTRY_ONLY', 'ALLOW_ANY']).optional(),
  egressProxy: Destination.optional(),
});

/** `ns/dnsName` as Istio writes Sidecar egress hosts: ns is `*`, `.`, `~` or a namespace. */
export function egressHostProblem(h: string): string | undefined {
  const slash = h.indexOf('/');
  if (slash < 0 || h.indexOf('/', slash + 1) >= 0) return `${JSON.stringify(h)} must be of the form namespace/dnsName (e.g. ./*, istio-system/*, */reviews.default.svc.cluster.local)`;
  const ns = h.slice(0, slash);
  const name = h.slice(slash + 1);
  if (ns !== '*' && ns !== '.' && ns !== '~' && !isDnsLabel(ns)) return `namespace ${JSON.stringify(ns)} of ${JSON.stringify(h)} must be "*", ".", "~" or a namespace name`;
  const problem = checkHost(name, { wildcard: true, star: true });
  return problem ? `${JSON.stringify(h)}: ${problem}` : undefined;
}

/** `127.0.0.1:PORT`, `0.0.0.0:PORT` or `unix://path`, as Istio accepts defaultEndpoint. */
export function defaultEndpointProblem(e: string): string | undefined {
  if (e.startsWith(UNIX)) return e.length > UNIX.length ? undefined : 'unix:// needs a socket path';
  const m = /^(127\.0\.0\.1|0\.0\.0\.0):(\d+)$/.exec(e);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) return `${JSON.stringify(e)} must be 127.0.0.1:PORT, 0.0.0.0:PORT or unix:///path`;
  return undefined;
}

function checkListeners(list: unknown, side: 'ingress' | 'egress', report: (path: (string | number)[], message: string) => void): void {
  if (!Array.isArray(list)) return;
  const seen = new Map<string, number>();
  list.forEach((l, i) => {
    if (!isRecord(l)) return;
    const port = isRecord(l['port']) ? l['port'] : undefined;
    const bind = typeof l['bind'] === 'string' ? l['bind'] : undefined;
    const unix = bind?.startsWith(UNIX) ?? false;
    if (bind !== undefined && !unix && !isIpLiteral(bind)) report([side, i, 'bind'], `${JSON.stringify(bind)} must be an IP address${side === 'egress' ? ' or unix:///path' : ''}`);
    if (side === 'ingress' && unix) report([side, i, 'bind'], 'an ingress listener binds to an IP address');
    if (port && port['number'] === 0 && !unix) report([side, i, 'port', 'number'], 'port 0 is only for a Unix-socket bind (unix://)');
    if (port && typeof port['number'] === 'number') {
      const k = unix ? `${bind}` : `${bind ?? ''}:${port['number']}`;
      const first = seen.get(k);
      if (first !== undefined) report([side, i, 'port'], `${unix ? 'Unix socket' : 'port'} ${unix ? bind : port['number']} is already used by ${side}[${first}] (ports on one bind address must be unique)`);
      else seen.set(k, i);
    }
    if (side === 'egress') {
      if (!port && i !== list.length - 1) report([side, i], 'the egress listener without a port (the catch-all) must be the last one');
      const hosts = Array.isArray(l['hosts']) ? l['hosts'] : [];
      hosts.forEach((h, j) => {
        const problem = typeof h === 'string' ? egressHostProblem(h) : undefined;
        if (problem) report([side, i, 'hosts', j], problem);
      });
    } else {
      const ep = l['defaultEndpoint'];
      if (typeof ep === 'string' && ep !== '') {
        const problem = defaultEndpointProblem(ep);
        if (problem) report([side, i, 'defaultEndpoint'], problem);
      }
      const tls = isRecord(l['tls']) ? l['tls'] : undefined;
      if (tls?.['mode'] === 'ISTIO_MUTUAL') report([side, i, 'tls', 'mode'], 'ISTIO_MUTUAL is not allowed on a Sidecar ingress listener (the mesh mTLS is PeerAuthentication\'s)');
    }
  });
}

// Unlike a ServiceEntry's, a Sidecar's selector must name labels (Istio refuses an empty one).
const SidecarWorkloadSelector = z.strictObject({
  labels: labels.refine((l) => Object.keys(l).length > 0, { error: 'must have at least one label' }),
});

export const SidecarSpec = withRule(
  z.strictObject({
    workloadSelector: SidecarWorkloadSelector.optional(),
    ingress: z.array(IstioIngressListener).optional(),
    egress: z.array(IstioEgressListener).optional(),
    outboundTrafficPolicy: OutboundTrafficPolicy.optional(),
    inboundConnectionPool: ConnectionPoolSettings.optional(),
  }),
  (v, report) => {
    const any = ['ingress', 'egress', 'outboundTrafficPolicy', 'inboundConnectionPool'].some((k) => v[k] !== undefined && !(Array.isArray(v[k]) && v[k].length === 0));
    if (!any) report([], 'empty Sidecar: set egress, ingress, outboundTrafficPolicy or inboundConnectionPool');
    checkListeners(v['ingress'], 'ingress', report);
    checkListeners(v['egress'], 'egress', report);
    const otp = isRecord(v['outboundTrafficPolicy']) ? v['outboundTrafficPolicy'] : undefined;
    if (otp && otp['egressProxy'] !== undefined) {
      if (otp['mode'] !== 'ALLOW_ANY') report(['outboundTrafficPolicy', 'egressProxy'], 'egressProxy can only be set with mode ALLOW_ANY');
      const dest = isRecord(otp['egressProxy']) ? otp['egressProxy'] : {};
      if (typeof dest['host'] === 'string' && dest['host'].includes('*')) report(['outboundTrafficPolicy', 'egressProxy', 'host'], 'egressProxy host must be a fully qualified name, not a wildcard');
      if (dest['port'] === undefined) report(['outboundTrafficPolicy', 'egressProxy', 'port'], 'egressProxy needs a port');
    }
  },
);

export type SidecarSpec = z.infer<typeof SidecarSpec>;
