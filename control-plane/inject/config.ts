// The injection settings in sidecar-config/injection.yaml: read once at startup and checked, so a
// typo stops the webhook from starting instead of producing broken pods later.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isNode, LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';

export const DEFAULT_CONFIG_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../sidecar-config/injection.yaml');

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warning', 'error', 'critical', 'off'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A Kubernetes resource quantity such as 100m, 0.5, 128Mi or 2. */
export const QUANTITY = /^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;
const quantity = z.string().regex(QUANTITY, 'expected a Kubernetes quantity such as 100m, 2, 128Mi or 1Gi');
const port = z.number().int().min(1).max(65535);
const dnsName = z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'expected a DNS name (lower case letters, digits, - and .)');
/** IPv4 only: the redirect programs iptables, not ip6tables. */
export function isIPv4Cidr(s: string): boolean {
  const [ip, bits, extra] = s.split('/');
  return extra === undefined && net.isIPv4(ip ?? '') && /^\d{1,2}$/.test(bits ?? '') && Number(bits) <= 32;
}
const cidr = z.string().refine(isIPv4Cidr, 'expected an IPv4 CIDR block such as 10.0.0.0/8');

const resources = z.strictObject({ cpu: quantity, memory: quantity });

export const InjectionConfigSchema = z.strictObject({
  proxy: z.strictObject({
    image: z.string().min(1),
    version: z.string().regex(/^[\w][\w.-]{0,127}$/, 'expected an image tag'),
    uid: z.number().int().min(1),
    logLevel: z.enum(LOG_LEVELS),
    concurrency: z.number().int().min(1),
    drainSeconds: z.number().int().min(0),
    resources: z.strictObject({ requests: resources, limits: resources }),
    readiness: z.strictObject({ periodSeconds: z.number().int().min(1), failureThreshold: z.number().int().min(1) }),
  }),
  agent: z.strictObject({
    image: z.string().min(1),
    version: z.string().regex(/^[\w][\w.-]{0,127}$/, 'expected an image tag'),
    trustDomain: dnsName,
    caRootConfigMap: dnsName,
    tokenAudience: z.string().min(1),
    // The kubelet refuses projected tokens valid for less than 10 minutes.
    tokenExpirationSeconds: z.number().int().min(600),
    resources: z.strictObject({ requests: resources, limits: resources }),
  }),
  // agentHealth has a default so settings files written before it existed still load.
  ports: z.strictObject({ outbound: port, inbound: port, admin: port, health: port, agentHealth: port.default(15020) }),
  xds: z.strictObject({
    address: dnsName,
    port,
    caPort: port,
    clusterDomain: dnsName,
    // Envoy's ADS over mutual TLS on caPort (true, the default) or in plaintext on port (false).
    tls: z.boolean({ error: 'expected true or false' }).default(true),
  }),
  redirect: z.strictObject({
    image: z.string().min(1),
    excludeInboundPorts: z.array(port),
    excludeOutboundPorts: z.array(port),
    excludeOutboundCIDRs: z.array(cidr),
  }),
  selection: z.strictObject({ neverNamespaces: z.array(z.string().min(1)) }),
});

export type InjectionConfig = z.infer<typeof InjectionConfigSchema>;

/** Parses injection settings; errors name the file, line and field path. */
export function parseInjectionConfig(file: string, text: string): InjectionConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const { line, col } = lineCounter.linePos(e.pos[0]);
    throw new Error(`${file}:${line}:${col}: ${e.message.split('\n')[0]}`);
  }
  // reportInput: zod 4 leaves `input` out of issues otherwise, and every bad value would read "missing".
  const result = InjectionConfigSchema.safeParse(doc.toJS(), { reportInput: true });
  if (result.success) {
    const ports = result.data.ports;
    const dup = Object.entries(ports).find(([k, v]) => Object.entries(ports).some(([k2, v2]) => k2 < k && v2 === v));
    if (dup) throw new Error(`${file}: ports.${dup[0]}: port ${dup[1]} is used twice`);
    return result.data;
  }
  // One line per problem; an unknown key is reported at the key, a missing field as missing.
  const problems = result.error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((k) => ({ path: [...issue.path.map(String), k], message: 'unknown field' }))
      : [{ path: issue.path.map(String), message: issue.input === undefined ? 'missing' : issue.message }]);
  const lines = problems.map((issue) => {
    const p = issue.path;
    // Point at the deepest node that exists (a missing field has none of its own).
    let node: unknown;
    for (let n = p.length; n >= 0 && !isNode(node); n--) node = doc.getIn(p.slice(0, n), true);
    const at = isNode(node) && node.range ? lineCounter.linePos(node.range[0]) : { line: 1, col: 1 };
    return `${file}:${at.line}:${at.col} ${p.join('.') || '(root)'}: ${issue.message}`;
  });
  throw new Error(`invalid injection settings:\n  ${lines.join('\n  ')}`);
}

export function loadInjectionConfig(file: string = DEFAULT_CONFIG_FILE): InjectionConfig {
  return parseInjectionConfig(file, fs.readFileSync(file, 'utf8'));
}
