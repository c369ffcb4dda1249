// networking.istio.io Gateway: the servers (port, hosts, TLS) a gateway proxy (an Envoy that is
// not a sidecar, node type `router`) listens with, and which gateway pods it applies to
// (`selector`). Checked as Istio checks it (its validateGateway / validateServer / TLS options).
import { isIP } from 'node:net';
import { z } from 'zod';
import { checkHost, isDnsLabel, isRecord, istioEnum, labels, portNumber, withRule, type Fields } from './common.ts';

/** Protocols a gateway server may name (case-insensitive, as Istio parses them). */
export const GATEWAY_PROTOCOLS = ['HTTP', 'HTTPS', 'HTTP2', 'GRPC', 'GRPC-WEB', 'TCP', 'TLS', 'MONGO', 'REDIS', 'MYSQL'] as const;
export const SERVER_TLS_MODES = ['PASSTHROUGH', 'SIMPLE', 'MUTUAL', 'AUTO_PASSTHROUGH', 'ISTIO_MUTUAL', 'OPTIONAL_MUTUAL'] as const;
export const TLS_PROTOCOL_VERSIONS = ['TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3'] as const;

export type GatewayProtocol = (typeof GATEWAY_PROTOCOLS)[number];

export function gatewayProtocol(p: string): GatewayProtocol | undefined {
  const up = p.toUpperCase();
  return (GATEWAY_PROTOCOLS as readonly string[]).includes(up) ? (up as GatewayProtocol) : undefined;
}

/** HTTP-family protocols: served by an HTTP connection manager in plaintext. */
export function isPlainHttp(p: GatewayProtocol | undefined): boolean {
  return p === 'HTTP' || p === 'HTTP2' || p === 'GRPC' || p === 'GRPC-WEB';
}

// A server host: `host`, `ns/host`, `*/host` or `./host`; the host part `*`, `*.suffix` or a DNS name.
export function gatewayHostProblem(s: string): string | undefined {
  const slash = s.indexOf('/');
  if (slash >= 0) {
    const ns = s.slice(0, slash);
    if (ns !== '*' && ns !== '.' && !isDnsLabel(ns)) return `invalid namespace ${JSON.stringify(ns)} in ${JSON.stringify(s)}: expected "*", "." or a namespace name`;
  }
  const host = slash >= 0 ? s.slice(slash + 1) : s;
  if (host === '') return `${JSON.stringify(s)} has no host after the "/"`;
  return checkHost(host, { wildcard: true, star: true });
}

const pathField = z.string().min(1, { error: 'must not be empty (leave the field out instead)' });

export const ServerTLSSettings = withRule(
  z.strictObject({
    httpsRedirect: z.boolean().optional(),
    mode: istioEnum(SERVER_TLS_MODES).optional(),
    serverCertificate: pathField.optional(),
    privateKey: pathField.optional(),
    caCertificates: pathField.optional(),
    credentialName: z.string().optional(),
    subjectAltNames: z.array(z.string().min(1, { error: 'must not be empty' })).optional(),
    minProtocolVersion: istioEnum(TLS_PROTOCOL_VERSIONS).optional(),
    maxProtocolVersion: istioEnum(TLS_PROTOCOL_VERSIONS).optional(),
    cipherSuites: z.array(z.string().min(1, { error: 'must not be empty' })).optional(),
  }),
  (v, report) => {
    const mode = v['mode'] ?? 'PASSTHROUGH';
    if (mode === 'ISTIO_MUTUAL') {
      // The mesh's own certificates are used: anything else would be ignored.
      for (const k of ['serverCertificate', 'privateKey', 'caCertificates', 'credentialName']) if (v[k]) report([k], `ISTIO_MUTUAL TLS cannot have an associated ${k} (the mesh certificates are used)`);
    }
    if ((mode === 'SIMPLE' || mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL') && !v['credentialName']) {
      // Without a credentialName the certificates come from files on the gateway.
      if (!v['serverCertificate']) report(['serverCertificate'], `${mode} TLS requires a server certificate (serverCertificate, or credentialName)`);
      if (!v['privateKey']) report(['privateKey'], `${mode} TLS requires a private key (privateKey, or credentialName)`);
      if (mode !== 'SIMPLE' && !v['caCertificates']) report(['caCertificates'], `${mode} TLS requires a client CA bundle (caCertificates, or credentialName)`);
    }
    const order = TLS_PROTOCOL_VERSIONS as readonly unknown[];
    const min = order.indexOf(v['minProtocolVersion']);
    const max = order.indexOf(v['maxProtocolVersion']);
    if (min > 0 && max > 0 && max < min) report(['maxProtocolVersion'], 'maxProtocolVersion must be greater than or equal to minProtocolVersion');
    const suites = v['cipherSuites'];
    if (Array.isArray(suites)) {
      const seen = new Set<unknown>();
      suites.forEach((c, i) => {
        if (seen.has(c)) report(['cipherSuites', i], `duplicate cipher suite ${JSON.stringify(c)}`);
        seen.add(c);
      });
    }
  },
);

export const GatewayPort = z.strictObject({
  number: portNumber,
  protocol: z.string().refine((p) => gatewayProtocol(p) !== undefined, { error: `invalid protocol; supported: ${GATEWAY_PROTOCOLS.join(', ')}` }),
  // Istio requires a name (unique in the gateway).
  name: z.string({ error: 'port name must be set' }).min(1, { error: 'port name must be set' }),
  targetPort: z.number().optional(),
});

export const Server = withRule(
  z.strictObject({
    port: GatewayPort,
    bind: z.string().optional(),
    hosts: z.array(z.string().superRefine((s, ctx) => {
      const problem = gatewayHostProblem(s);
      if (problem) ctx.addIssue({ code: 'custom', message: problem, input: s });
    })).min(1, { error: 'server config must contain at least one host' }),
    tls: ServerTLSSettings.optional(),
    name: z.string().optional(),
    defaultEndpoint: z.string().optional(),
  }),
  (v, report) => {
    const port = isRecord(v['port']) ? v['port'] : undefined;
    if (port && port['targetPort'] !== undefined) report(['port', 'targetPort'], 'targetPort is only valid for ServiceEntry');
    const bind = v['bind'];
    if (typeof bind === 'string' && bind !== '' && !bind.startsWith('unix://') && isIP(bind) === 0) report(['bind'], `${JSON.stringify(bind)} is not an IP address or unix:// path`);
    if (typeof bind === 'string' && bind.startsWith('unix://')) report(['bind'], 'unix domain socket binds are not supported by meshpilot');
    if (v['defaultEndpoint'] !== undefined) report(['defaultEndpoint'], 'defaultEndpoint applies to Sidecar ingress listeners, not to Gateway servers');
    const protocol = port && typeof port['protocol'] === 'string' ? gatewayProtocol(port['protocol']) : undefined;
    const tls = isRecord(v['tls']) ? (v['tls'] as Fields) : undefined;
    if (!protocol) return;
    if ((protocol === 'HTTPS' || protocol === 'TLS') && !tls) report(['tls'], `server must have TLS settings for ${protocol} ports`);
    if (!(protocol === 'HTTPS' || protocol === 'TLS') && tls) {
      // A plain HTTP server may only redirect to HTTPS; any other TLS setting is meaningless on it.
      const onlyRedirect = Object.keys(tls).every((k) => k === 'httpsRedirect' || (k === 'mode' && tls[k] === 'PASSTHROUGH'));
      if (!isPlainHttp(protocol)) report(['tls'], 'server cannot have TLS settings for non HTTPS/TLS ports');
      else if (!onlyRedirect) report(['tls'], 'server cannot have TLS settings for plain text HTTP ports (only httpsRedirect)');
    }
  },
);

export const GatewaySpec = withRule(
  z.strictObject({
    selector: labels.optional(),
    servers: z.array(Server).min(1, { error: 'gateway must have at least one server' }),
  }),
  (v, report) => {
    const servers = v['servers'];
    if (!Array.isArray(servers)) return;
    const portNames = new Map<unknown, number>();
    servers.forEach((s, i) => {
      if (!isRecord(s)) return;
      const port = isRecord(s['port']) ? s['port'] : undefined;
      const name = port?.['name'];
      if (typeof name === 'string' && name !== '') {
        if (portNames.has(name)) report(['servers', i, 'port', 'name'], `port names in servers must be unique: duplicate name ${JSON.stringify(name)} (also at servers[${portNames.get(name)}])`);
        else portNames.set(name, i);
      }
    });
  },
);

export type GatewaySpec = z.infer<typeof GatewaySpec>;
export type GatewayServer = z.infer<typeof Server>;
export type ServerTLSSettings = z.infer<typeof ServerTLSSettings>;
