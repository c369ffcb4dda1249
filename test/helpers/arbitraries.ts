// fast-check arbitraries for test/property.test.ts: random VALID rule sets (ServiceEntries,
// WorkloadEntries, DestinationRules, VirtualServices that refer to each other consistently), the
// proxies that ask for config, and mutations that make a valid rule set INVALID at a known path.
//
// The valid generator only produces what control-plane/config/schemas accepts and what the model
// builder accepts across objects (routes go to declared hosts and to subsets that have endpoints,
// a multi-port destination names its port, ...). If compile() reports an error for a generated
// rule set, either this generator or the control plane is wrong; the test says which by showing
// the YAML.
import { isIP } from 'node:net';
import fc from 'fast-check';
import YAML from 'yaml';
import { proxyFromNode, type Proxy } from '../../control-plane/translate/proxy.ts';

export type Json = Record<string, unknown>;
export type Path = Array<string | number>;

export interface Doc {
  apiVersion: string;
  kind: 'ServiceEntry' | 'WorkloadEntry' | 'DestinationRule' | 'VirtualService';
  metadata: Json & { name: string; namespace?: string };
  spec: Json;
}

// ---- drawing from a list of random numbers ---------------------------------------------------

/** How many random numbers one generated case may use (a large rule set takes about a thousand). */
export const DRAWS = 2000;
const RAW_MAX = 0xffff;

/**
 * Rule sets are drawn imperatively from a fixed-length list of random numbers that fast-check
 * generates and shrinks (towards 0, so towards the first choice, the minimum, and "left out").
 * Every value is a pure function of the list: replays and shrinks are exact. When the list runs
 * out, every further draw is 0.
 */
export class Draw {
  private at = 0;
  constructor(private readonly raw: readonly number[]) {}
  /** How many numbers were used. */
  get used(): number {
    return this.at;
  }
  private next(): number {
    return this.raw[this.at++] ?? 0;
  }
  int(min: number, max: number): number {
    const span = max - min + 1;
    let v = this.next();
    if (span > RAW_MAX + 1) v = v * (RAW_MAX + 1) + this.next();
    if (span > (RAW_MAX + 1) ** 2) v = v * (RAW_MAX + 1) + this.next();
    return min + (v % span);
  }
  /** True with probability `p`. Shrinks towards false (optional parts left out). */
  chance(p: number): boolean {
    return this.int(0, 999) >= 1000 - p * 1000;
  }
  one<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)]!;
  }
  /** Distinct items of `items`, in their original order. */
  some<T>(items: readonly T[], min: number, max: number): T[] {
    const hi = Math.min(max, items.length);
    const count = this.int(Math.min(min, hi), hi);
    const left = items.map((_, i) => i);
    const picked: number[] = [];
    for (let k = 0; k < count; k++) picked.push(left.splice(this.int(0, left.length - 1), 1)[0]!);
    return picked.sort((a, b) => a - b).map((i) => items[i]!);
  }
  /** All of `items`, in a random order. */
  shuffle<T>(items: readonly T[]): T[] {
    const left = [...items];
    const out: T[] = [];
    while (left.length) out.push(left.splice(this.int(0, left.length - 1), 1)[0]!);
    return out;
  }
  ipV4(): string {
    return [this.int(0, 255), this.int(0, 255), this.int(0, 255), this.int(0, 255)].join('.');
  }
  ipV6(): string {
    const groups = Array.from({ length: 8 }, () => this.int(0, 0xffff).toString(16));
    switch (this.int(0, 3)) {
      case 0:
        return groups.join(':');
      case 1:
        return `${groups[0]}::${groups[7]}`;
      case 2:
        return `::ffff:${this.ipV4()}`;
      default:
        return this.one(['::1', '::', 'fe80::1', '2001:db8::8a2e:370:7334']);
    }
  }
  /** 1 to 12 characters of Unicode text, some of them awkward for YAML or HTTP. */
  unicode(): string {
    const chars = ['a', 'Z', '0', ' ', '-', '_', '/', ':', '#', '{', '}', '[', ',', '&', '*', '!', '|', '>', "'", '"', '\\', '%', '@', '`', 'é', 'ß', '中', '文', 'ع', '\u0301', '\u200b', '\u00a0', '😀', '👍🏽', 'ǅ', 'İ'];
    return Array.from({ length: this.int(1, 12) }, () => this.one(chars)).join('');
  }
  /** True with probability `p`. Shrinks towards true (the common case). */
  usually(p: number): boolean {
    return !this.chance(1 - p);
  }
  /** Undefined with probability 1 - p, else make(). */
  maybe<T>(p: number, make: () => T): T | undefined {
    return this.chance(p) ? make() : undefined;
  }
}

/** Drops keys whose value is undefined (YAML would write them as null). */
export function compact<T extends Json>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

// ---- vocabularies ----------------------------------------------------------------------------

export const NAMESPACES = ['default', 'shop', 'infra'] as const;
const SERVICE_NAMES = ['reviews', 'ratings', 'details', 'payments', 'catalog', 'cart'];
const EXTERNAL_DOMAINS = ['example.com', 'api.example.org', 'svc.example.net'];
const VERSIONS = ['v1', 'v2', 'v3'];
const TIERS = ['web', 'db', 'edge'];
const TEAMS = ['alpha', 'beta'];
const REGIONS = ['us-east', 'us-west', 'eu-central'];
const ZONES = ['zone-a', 'zone-b', 'zone-c'];
const NETWORKS = ['net-1', 'net-2', 'net-3'];
/** Gateways the property tests give the model: net-3 has none (its endpoints are out of reach from elsewhere). */
export const NETWORK_GATEWAYS = { 'net-1': [{ address: '192.0.2.1', port: 15443 }], 'net-2': [{ address: '192.0.2.2', port: 15443 }, { address: '192.0.2.3', port: 15443 }] };
const PROTOCOLS = ['HTTP', 'HTTP2', 'GRPC', 'TCP'] as const;
const PORT_POOL = [80, 443, 8080, 9080, 9090, 5000, 3306];
const SUBSET_NAMES = ['v1', 'v2', 'v3', 'canary', 'stable'];
const HEADER_NAMES = ['x-user', 'X-Debug', 'end-user', 'x-canary', 'user-agent', ':authority'];
const MUTABLE_HEADER_NAMES = ['x-mesh', 'X-Trace', 'x-request-source', 'server', 'x-envoy-upstream-rq-timeout-ms'];
const QUERY_NAMES = ['mode', 'debug', 'q', 'page'];
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'];
const PATHS = ['/', '/api', '/api/v1/', '/reviews.Reviews/Get', '/static/img.png', '/a%20b', '/login?next=/x'];

/** A small list of valid RE2 regexes (some that JavaScript's RegExp reads differently or not at all). */
export const SAFE_REGEXES = [
  '/api/v[0-9]+/.*',
  '/reviews\\.Reviews/(List|Watch)',
  '.*',
  '[a-z]+',
  '^/users/\\d+$',
  '(?i)/admin.*',
  '/(?P<id>[0-9]+)',
  '[[:alpha:]]+',
  '\\pL+',
  'a{2,5}b?',
];
const METHOD_REGEXES = ['GET|POST', 'P.*', '(?i)post', '[A-Z]+', '[[:upper:]]+', 'DELETE'];
const COOKIE_REGEXES = ['^(.*?;)?(user=jason)(;.*)?$', '^(.*?;)?(beta=1)(;.*)?$', '.*session=[a-f0-9]+.*'];

// ---- small values ----------------------------------------------------------------------------

/**
 * Text a user might put in a value field: usually plain, sometimes any Unicode, rarely with a
 * tab or DEL. (CR, LF and NUL are rejected in header-bound values: the invalid generator's job.)
 */
function text(d: Draw, plain: readonly string[]): string {
  if (!d.chance(0.2)) return d.one(plain);
  if (!d.chance(0.1)) return d.unicode().replace(/[\r\n\0]/g, '');
  return `${d.one(plain)}${d.one(['\t', '\u007f'])}${d.one(plain)}`;
}

/** A duration Istio accepts, written in one of the many ways Go's time.ParseDuration reads. */
export function duration(d: Draw, opts: { allowZero?: boolean } = {}): string {
  if (opts.allowZero && d.chance(0.1)) return d.one(['0s', '0ms', '0h0m0s']);
  const ms = d.usually(0.85) ? d.int(1, 120_000) : d.usually(0.5) ? d.int(1, 10_000_000_000) : d.int(1, 9_000_000_000_000);
  const form = d.int(0, 6);
  switch (form) {
    case 0:
      return `${ms}ms`;
    case 1:
      return `${ms / 1000}s`; // e.g. 1.5s, 0.25s, 1.001s
    case 2:
      return `${BigInt(ms) * 1000n}${d.one(['us', 'µs'])}`;
    case 3:
      return `${BigInt(ms) * 1_000_000n}ns`;
    case 4: {
      // h/m/s composite, e.g. 1h2m3.004s
      const h = Math.floor(ms / 3_600_000);
      const m = Math.floor((ms % 3_600_000) / 60_000);
      const rest = (ms % 60_000) / 1000;
      const out = `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${rest ? `${rest}s` : ''}`;
      return out || '0s';
    }
    case 5:
      return ms % 60_000 === 0 ? `${ms / 60_000}m` : `${ms}ms`;
    default:
      // Fractional minutes (0.5m, 0.00005m): exact in decimal only when ms is a multiple of 3.
      return ms % 3 === 0 ? `${ms / 60_000}m` : `${ms}ms`;
  }
}

function smallOrHuge(d: Draw, min: number, max: number): number {
  if (d.chance(0.8)) return d.int(min, Math.min(max, min + 100));
  if (d.chance(0.5)) return max;
  return d.int(min, max);
}

const INT32_MAX = 2_147_483_647;
const UINT32_MAX = 4_294_967_295;

function labelsFrom(d: Draw, app: string | undefined): Record<string, string> {
  return compact({
    app: app !== undefined && d.chance(0.7) ? app : undefined,
    version: d.chance(0.9) ? d.one(VERSIONS) : undefined,
    tier: d.chance(0.3) ? d.one(TIERS) : undefined,
    'example.com/team': d.chance(0.15) ? d.one(TEAMS) : undefined,
  }) as Record<string, string>;
}

function locality(d: Draw): string {
  const parts = [d.one(REGIONS), d.one(ZONES), `rack-${d.int(1, 3)}`];
  return parts.slice(0, d.int(1, 3)).join('/');
}

function ipAddress(d: Draw): string {
  if (d.usually(0.85)) return `10.${d.int(0, 3)}.${d.int(0, 3)}.${d.int(1, 254)}`;
  return d.chance(0.5) ? d.ipV4() : d.ipV6();
}

// ---- the world: services, their endpoints, rules -----------------------------------------------

export interface PortModel { number: number; name: string; protocol: (typeof PROTOCOLS)[number] }
export interface EndpointModel { address: string; labels: Record<string, string> }
export interface ServiceModel {
  host: string;
  /** Namespace of the ServiceEntry. */
  namespace: string;
  /** For `name.ns.svc.cluster.local` hosts: the name and namespace a short host resolves from. */
  k8s?: { name: string; namespace: string };
  ports: PortModel[];
  resolution: 'STATIC' | 'DNS';
  endpoints: EndpointModel[];
  /** Subset name -> has at least one endpoint. Filled in when the DestinationRule is drawn. */
  subsets: Map<string, boolean>;
}

export interface World {
  docs: Doc[];
  services: ServiceModel[];
  /** Endpoint addresses (to place a sidecar on one of them, so it gets inbound config). */
  addresses: string[];
}

function apiVersion(d: Draw): string {
  return d.one(['networking.istio.io/v1', 'networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3']);
}

function metadata(d: Draw, name: string, namespace: string): Doc['metadata'] {
  // metadata.namespace may be left out for "default".
  const ns = namespace === 'default' && d.chance(0.3) ? undefined : namespace;
  return compact({ name, namespace: ns, labels: d.maybe(0.1, () => ({ owner: d.one(TEAMS) })), annotations: d.maybe(0.1, () => ({ 'example.com/note': text(d, ['a note', 'x']) })) });
}

function drawServiceShape(d: Draw, index: number, used: Set<string>): Omit<ServiceModel, 'endpoints' | 'subsets' | 'resolution'> {
  const namespace = d.one(NAMESPACES);
  let name = d.one(SERVICE_NAMES);
  const kind = d.int(0, 9);
  const hostOf = (n: string) => {
    if (kind < 6) return { host: `${n}.${namespace}.svc.cluster.local`, k8s: { name: n, namespace } };
    if (kind < 7) {
      const other = d.one(NAMESPACES); // a ServiceEntry may declare a Kubernetes-style host of another namespace
      return { host: `${n}.${other}.svc.cluster.local`, k8s: { name: n, namespace: other } };
    }
    if (kind < 9) {
      const form = d.int(0, 19);
      // Rarely: a host in the short forms callers use for Kubernetes services ("reviews.default"),
      // or in capitals (host names are case-insensitive, but the schema takes either case).
      if (form === 19) return { host: `${n}.${d.one(NAMESPACES)}` };
      if (form === 18) return { host: `${n.toUpperCase()}.${d.one(EXTERNAL_DOMAINS)}` };
      return { host: `${n}.${d.one(EXTERNAL_DOMAINS)}` };
    }
    return { host: `*.${n}.${d.one(EXTERNAL_DOMAINS)}` };
  };
  // Hosts that differ only in case are the same host (the model rejects the second).
  let h = hostOf(name);
  if (used.has(h.host.toLowerCase())) {
    name = `${name}-${index}`;
    h = hostOf(name);
  }
  used.add(h.host.toLowerCase());
  const numbers = d.usually(0.9) ? d.some(PORT_POOL, 1, 3) : [d.int(1, 65535)];
  const ports = [...new Set(numbers)].map((number, i) => {
    const protocol = d.one(PROTOCOLS);
    return { number, name: `${protocol.toLowerCase()}-${i}`, protocol };
  });
  return { namespace, ...h, ports };
}

/**
 * One endpoint. Weights go up to `maxWeight`: the weights of a service's endpoints must add up to
 * at most 2^32-1 (Envoy's limit for a locality), which the model checks.
 */
function endpointSpec(d: Draw, address: string, labels: Record<string, string>, ports: PortModel[], maxWeight: number): Json {
  return compact({
    address,
    ports: d.maybe(0.4, () => Object.fromEntries(d.some(ports, 1, ports.length).map((p) => [p.name, d.int(1, 65535)]))),
    labels: Object.keys(labels).length || d.chance(0.5) ? labels : undefined,
    locality: d.maybe(0.7, () => locality(d)),
    network: d.maybe(0.3, () => d.one(NETWORKS)),
    weight: d.maybe(0.3, () => (d.usually(0.85) ? d.int(0, 10) : d.one([maxWeight, d.int(0, maxWeight)]))),
    serviceAccount: d.maybe(0.2, () => d.one(['reviews', 'bookinfo-reviews', 'sa.example'])),
  });
}

/** A ServiceEntry (and, for a workloadSelector, its WorkloadEntries). */
function drawService(d: Draw, index: number, used: Set<string>, docs: Doc[]): ServiceModel {
  const shape = drawServiceShape(d, index, used);
  const wildcard = shape.host.startsWith('*.');
  const app = shape.k8s?.name ?? shape.host.split('.')[wildcard ? 1 : 0]!;
  const resolution: 'STATIC' | 'DNS' = d.usually(0.8) ? 'STATIC' : 'DNS';
  const endpoints: EndpointModel[] = [];
  const spec: Json = {
    hosts: [shape.host],
    location: d.maybe(0.5, () => d.one(['MESH_INTERNAL', 'MESH_EXTERNAL'])),
    resolution,
    ports: shape.ports.map((p) => compact({ ...p, targetPort: d.maybe(0.15, () => d.int(1, 65535)) })),
  };
  const seName = `se-${index}`;
  if (resolution === 'STATIC' && d.chance(0.2)) {
    // Endpoints are WorkloadEntries in the same namespace, picked by an app label.
    const selector = { app: `${app}-wl` };
    spec.workloadSelector = { labels: selector };
    const count = d.int(1, 3);
    for (let j = 0; j < count; j++) {
      const address = ipAddress(d);
      const labels = { ...selector, ...labelsFrom(d, undefined) };
      // Labels may sit in metadata.labels, in spec.labels, or in both (spec wins).
      const where = d.int(0, 2);
      const meta = metadata(d, `${seName}-we-${j}`, shape.namespace);
      if (where !== 1) meta.labels = { ...((meta.labels as Record<string, string>) ?? {}), ...labels };
      // Another ServiceEntry in this namespace may select these WorkloadEntries too.
      const weSpec = endpointSpec(d, address, where !== 0 ? labels : {}, shape.ports, Math.floor(UINT32_MAX / 16));
      if (where === 0) delete weSpec.labels;
      docs.push({ apiVersion: apiVersion(d), kind: 'WorkloadEntry', metadata: meta, spec: weSpec });
      endpoints.push({ address, labels: { ...((meta.labels as Record<string, string>) ?? {}), ...labels } });
    }
  } else {
    // DNS may go without endpoints (the hosts themselves are resolved), except for a wildcard host.
    const withEndpoints = resolution === 'STATIC' || wildcard || d.usually(0.7);
    if (withEndpoints) {
      const list: Json[] = [];
      const count = resolution === 'STATIC' ? d.int(1, 4) : d.int(1, 3);
      for (let j = 0; j < count; j++) {
        const address = resolution === 'STATIC' || d.chance(0.2) ? ipAddress(d) : `${d.one(['backend', 'mirror', 'eu'])}-${j}.${d.one(EXTERNAL_DOMAINS)}`;
        const labels = labelsFrom(d, app);
        list.push(endpointSpec(d, address, labels, shape.ports, count === 1 ? UINT32_MAX : Math.floor((UINT32_MAX - count) / count)));
        endpoints.push({ address, labels });
      }
      spec.endpoints = list;
    }
  }
  docs.push({ apiVersion: apiVersion(d), kind: 'ServiceEntry', metadata: metadata(d, seName, shape.namespace), spec: compact(spec) });
  return { ...shape, resolution, endpoints, subsets: new Map() };
}

// ---- DestinationRule ---------------------------------------------------------------------------

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let i = 2; i * i <= n; i++) if (n % i === 0) return false;
  return true;
}

function consistentHash(d: Draw): Json {
  const key = d.int(0, 3);
  const out: Json = {};
  if (key === 0) out.httpHeaderName = d.one(['x-user', 'X-Session-Id', 'end-user']);
  else if (key === 1) out.httpCookie = compact({ name: d.one(['session', 'user', 'JSESSIONID']), ttl: d.maybe(0.7, () => duration(d, { allowZero: true })), path: d.maybe(0.3, () => d.one(['/', '/app'])) });
  else if (key === 2) out.useSourceIp = true;
  else out.httpQueryParameterName = text(d, ['user', 'session', 'id']);
  const algo = d.int(0, 3);
  if (algo === 1) out.ringHash = compact({ minimumRingSize: d.maybe(0.7, () => smallOrHuge(d, 1, 8_388_608)) });
  else if (algo === 2) {
    let size = d.chance(0.5) ? d.one([65537, 5_000_011, 7, 2]) : d.int(2, 5_000_011);
    while (!isPrime(size)) size++;
    out.maglev = compact({ tableSize: d.usually(0.9) ? size : undefined });
  } else if (algo === 3) out.minimumRingSize = smallOrHuge(d, 1, 8_388_608);
  return out;
}

function loadBalancer(d: Draw): Json {
  const locality = d.maybe(0.3, () => localityLbSetting(d));
  if (locality && d.chance(0.4)) return { localityLbSetting: locality };
  const algorithm = d.chance(0.5) ? { simple: d.one(['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM']) } : { consistentHash: consistentHash(d) };
  return compact({ ...algorithm, localityLbSetting: locality });
}

/** A valid localityLbSetting: failover and/or failoverPriority, or distribute (weights adding up to 100), or off. */
function localityLbSetting(d: Draw): Json {
  const form = d.int(0, 3);
  if (form === 3) return { enabled: false };
  if (form === 2) {
    const froms = d.some(['*', ...REGIONS.map((r) => `${r}/*`), `${REGIONS[0]}/${ZONES[0]}/*`, `${REGIONS[1]}/${ZONES[1]}`], 1, 3);
    return {
      distribute: froms.map((from) => {
        const targets = d.some([...REGIONS.map((r) => `${r}/*`), ...ZONES.map((z) => `${REGIONS[0]}/${z}/*`), `${REGIONS[2]}/${ZONES[2]}`], 1, 3);
        let left = 100;
        const to = Object.fromEntries(targets.map((t, i) => {
          // Istio's weights are 1 to 100: leave at least 1 for each target still to come.
          const w = i === targets.length - 1 ? left : d.int(1, left - (targets.length - 1 - i));
          left -= w;
          return [t, w];
        }));
        return { from, to };
      }),
      ...(d.chance(0.2) ? { enabled: true } : {}),
    };
  }
  const regions = d.some(REGIONS, 0, REGIONS.length);
  const failover = regions.map((from) => ({ from, to: d.one(REGIONS.filter((r) => r !== from)) }));
  const failoverPriority = d.maybe(form === 1 ? 0.9 : 0.2, () => d.some(['topology.istio.io/network', 'tier', 'version=v1', 'topology.kubernetes.io/zone'], 1, 3));
  return compact({ failover: failover.length ? failover : undefined, failoverPriority });
}

function connectionPool(d: Draw): Json {
  const limit = () => smallOrHuge(d, 1, INT32_MAX);
  const pool = compact({
    tcp: d.maybe(0.6, () => compact({ maxConnections: d.maybe(0.6, limit), connectTimeout: d.maybe(0.6, () => duration(d)) })),
    http: d.maybe(0.6, () =>
      compact({
        http1MaxPendingRequests: d.maybe(0.4, limit),
        http2MaxRequests: d.maybe(0.4, limit),
        maxRequestsPerConnection: d.maybe(0.4, limit),
        maxRetries: d.maybe(0.4, limit),
        idleTimeout: d.maybe(0.4, () => duration(d, { allowZero: true })),
        maxConcurrentStreams: d.maybe(0.4, limit),
      }),
    ),
  });
  // Istio refuses a connectionPool with neither tcp nor http.
  return Object.keys(pool).length ? pool : { tcp: {} };
}

function outlierDetection(d: Draw): Json {
  const count = () => smallOrHuge(d, 0, UINT32_MAX);
  const split = d.maybe(0.3, () => d.chance(0.6));
  return compact({
    consecutive5xxErrors: d.maybe(0.5, count),
    consecutiveGatewayErrors: d.maybe(0.3, count),
    splitExternalLocalOriginErrors: split,
    consecutiveLocalOriginFailures: split === true ? d.maybe(0.7, count) : undefined,
    interval: d.maybe(0.5, () => duration(d)),
    baseEjectionTime: d.maybe(0.5, () => duration(d)),
    maxEjectionPercent: d.maybe(0.4, () => d.int(0, 100)),
    minHealthPercent: d.maybe(0.4, () => d.int(0, 100)),
  });
}

/** A valid DestinationRule `tls`, every mode. */
function clientTls(d: Draw): Json {
  const mode = d.one(['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL']);
  if (mode === 'DISABLE') return { mode };
  const sni = d.maybe(0.4, () => d.one(['reviews.internal', 'api.example.com']));
  const sans = d.maybe(0.4, () => d.some(['spiffe://cluster.local/ns/default/sa/reviews', 'api.example.com', 'spiffe://example.org/ns/x/sa/y'], 1, 2));
  if (mode === 'ISTIO_MUTUAL') return compact({ mode, sni, subjectAltNames: sans });
  const skip = d.chance(0.2);
  // credentialName (a Secret) instead of the file paths, as Istio requires.
  if (d.chance(0.25)) return compact({ mode, sni, insecureSkipVerify: skip ? true : undefined, subjectAltNames: skip ? undefined : sans, credentialName: d.one(['bank-client', 'feeds']) });
  return compact({
    mode,
    sni,
    insecureSkipVerify: skip ? true : undefined,
    subjectAltNames: skip ? undefined : sans,
    caCertificates: skip ? undefined : d.maybe(0.6, () => '/etc/certs/ca.pem'),
    clientCertificate: mode === 'MUTUAL' ? '/etc/certs/cert.pem' : undefined,
    privateKey: mode === 'MUTUAL' ? '/etc/certs/key.pem' : undefined,
  });
}

/** Some of the sections of a (port-level) traffic policy; at least one unless `optional`
 * (Istio refuses a policy that sets nothing). */
function policySections(d: Draw, optional = false): Json {
  const sections = compact({
    loadBalancer: d.maybe(0.5, () => loadBalancer(d)),
    connectionPool: d.maybe(0.4, () => connectionPool(d)),
    outlierDetection: d.maybe(0.4, () => outlierDetection(d)),
    tls: d.maybe(0.3, () => clientTls(d)),
  });
  return optional || Object.keys(sections).length ? sections : { outlierDetection: outlierDetection(d) };
}

function trafficPolicy(d: Draw, ports: PortModel[]): Json {
  const portLevelSettings = d.maybe(0.3, () => d.some(ports, 1, ports.length).map((p) => ({ port: { number: p.number }, ...policySections(d) })));
  return compact({ ...policySections(d, portLevelSettings !== undefined && portLevelSettings.length > 0), portLevelSettings });
}

/** How a rule in `namespace` names `svc`: the FQDN, or the short name when that resolves to it. */
function hostRef(d: Draw, svc: ServiceModel, namespace: string): string {
  if (svc.k8s && svc.k8s.namespace === namespace && d.chance(0.6)) return svc.k8s.name;
  return svc.host;
}

function drawDestinationRule(d: Draw, index: number, svc: ServiceModel): Doc {
  const namespace = d.usually(0.6) ? (svc.k8s?.namespace ?? svc.namespace) : d.one(NAMESPACES);
  const subsets = d.some(SUBSET_NAMES, 0, 3).map((name) => {
    let labels: Record<string, string> | undefined;
    const source = d.int(0, 9);
    if (source < 7 && svc.endpoints.length) {
      // Labels of an existing endpoint, or some of them: this subset has endpoints.
      const ep = d.one(svc.endpoints);
      labels = Object.fromEntries(d.some(Object.entries(ep.labels), 1, 2));
    } else if (source < 9) {
      labels = labelsFrom(d, undefined); // may select nothing
    }
    const hasEndpoints = svc.endpoints.some((e) => Object.entries(labels ?? {}).every(([k, v]) => e.labels[k] === v));
    svc.subsets.set(name, hasEndpoints);
    return compact({ name, labels, trafficPolicy: d.maybe(0.3, () => trafficPolicy(d, svc.ports)) });
  });
  return {
    apiVersion: apiVersion(d),
    kind: 'DestinationRule',
    metadata: metadata(d, `dr-${index}`, namespace),
    spec: compact({
      host: hostRef(d, svc, namespace),
      trafficPolicy: d.maybe(0.6, () => trafficPolicy(d, svc.ports)),
      subsets: subsets.length || d.chance(0.2) ? subsets : undefined,
    }),
  };
}

// ---- VirtualService ----------------------------------------------------------------------------

const isHttp = (p: PortModel) => p.protocol !== 'TCP';

/** `emptyPrefix`: whether `prefix: ""` is allowed (Istio: only in uri). */
function stringMatch(d: Draw, plain: readonly string[], regexes: readonly string[], kinds: ReadonlyArray<'exact' | 'prefix' | 'regex'> = ['exact', 'prefix', 'regex'], emptyPrefix = false): Json {
  const kind = d.one(kinds);
  if (kind === 'regex') return { regex: d.one(regexes) };
  const value = text(d, plain);
  return { [kind]: kind === 'prefix' && value === '' && !emptyPrefix ? plain.find((p) => p !== '')! : value };
}

function headerMatches(d: Draw): Json {
  const names = d.some(HEADER_NAMES.concat(['cookie']), 1, 2);
  return Object.fromEntries(
    names.map((n) => [
      n,
      n === 'cookie' ? { regex: d.one(COOKIE_REGEXES) } : d.chance(0.2) ? {} : stringMatch(d, ['jason', 'true', '1', 'beta', ''], SAFE_REGEXES),
    ]),
  );
}

function matchRequest(d: Draw, hostPorts: number[]): Json {
  const uri = d.maybe(0.6, () => stringMatch(d, PATHS, SAFE_REGEXES, undefined, true));
  return compact({
    name: d.maybe(0.2, () => text(d, ['m1', 'canary-match'])),
    uri,
    ignoreUriCase: uri && uri.regex === undefined ? d.maybe(0.3, () => d.chance(0.5)) : d.maybe(0.1, () => false),
    method: d.maybe(0.2, () => stringMatch(d, METHODS, METHOD_REGEXES)),
    headers: d.maybe(0.4, () => headerMatches(d)),
    withoutHeaders: d.maybe(0.15, () => headerMatches(d)),
    queryParams: d.maybe(0.2, () =>
      Object.fromEntries(d.some(QUERY_NAMES, 1, 2).map((n) => [n, stringMatch(d, ['1', 'test', 'on'], SAFE_REGEXES, ['exact', 'regex'])])),
    ),
    port: d.maybe(0.2, () => (hostPorts.length && d.chance(0.8) ? d.one(hostPorts) : d.int(1, 65535))),
    sourceLabels: d.maybe(0.15, () => {
      const l = labelsFrom(d, d.one(SERVICE_NAMES));
      return Object.keys(l).length ? l : { version: 'v1' };
    }),
    sourceNamespace: d.maybe(0.15, () => d.one(NAMESPACES)),
  });
}

function headerOperations(d: Draw): Json {
  const values = ['meshpilot', 'on', '1', 'a b', ''];
  // Header values are Envoy formats: a literal % is written %%.
  const value = () => text(d, values).replace(/%/g, '%%');
  return compact({
    set: d.maybe(0.5, () => Object.fromEntries(d.some(MUTABLE_HEADER_NAMES, 1, 2).map((n) => [n, value()]))),
    add: d.maybe(0.4, () => Object.fromEntries(d.some(MUTABLE_HEADER_NAMES, 1, 2).map((n) => [n, value()]))),
    remove: d.maybe(0.3, () => d.some(MUTABLE_HEADER_NAMES, 1, 2)),
  });
}

/** Destinations for one http route; every destination resolves for every port the route is used on. */
function destinations(d: Draw, services: ServiceModel[], vsHosts: ServiceModel[], namespace: string): Json[] {
  const count = d.int(1, 3);
  const tablePorts = vsHosts.flatMap((s) => s.ports.filter(isHttp).map((p) => p.number));
  const out: Json[] = [];
  for (let k = 0; k < count; k++) {
    const svc = d.usually(0.7) ? d.one(vsHosts) : d.one(services);
    // Without a port, a multi-port destination takes the port of the route table; so leave it
    // out only when the destination has every such port.
    const canOmitPort = svc.ports.length === 1 || tablePorts.every((n) => svc.ports.some((p) => p.number === n));
    const port = canOmitPort && d.chance(0.6) ? undefined : { number: d.one(svc.ports).number };
    // A STATIC service's subset must have endpoints (else the route is rejected); DNS ones need not.
    const usable = [...svc.subsets].filter(([, has]) => has).map(([n]) => n);
    const subset = usable.length && d.chance(0.7) ? d.one(usable) : undefined;
    out.push({ destination: compact({ host: hostRef(d, svc, namespace), subset, port }) });
  }
  if (count === 1) {
    if (d.chance(0.3)) out[0]!.weight = d.int(0, 100);
  } else {
    for (const o of out) if (d.chance(0.85)) o.weight = d.int(0, 100);
    if (out.every((o) => !o.weight)) out[0]!.weight = d.int(1, 100);
  }
  return out;
}

function httpRoute(d: Draw, index: number, services: ServiceModel[], vsHosts: ServiceModel[], namespace: string): Json {
  const hostPorts = vsHosts.flatMap((s) => s.ports.map((p) => p.number));
  const route: Json = {
    name: d.maybe(0.6, () => (d.usually(0.9) ? `route-${index}` : `${text(d, ['x'])}-${index}`)),
    match: d.maybe(0.6, () => Array.from({ length: d.int(1, 3) }, () => matchRequest(d, hostPorts))),
    headers: d.maybe(0.25, () => compact({ request: d.maybe(0.7, () => headerOperations(d)), response: d.maybe(0.5, () => headerOperations(d)) })),
  };
  if (d.chance(0.15)) {
    const redirect = compact({
      uri: d.maybe(0.6, () => text(d, ['/new', '/v2/api', '/'])),
      authority: d.maybe(0.4, () => text(d, ['new.example.com', 'reviews:9080'])),
      port: d.maybe(0.2, () => d.int(1, 65535)),
      scheme: d.maybe(0.2, () => d.one(['https', 'http', 'git+ssh'])),
      redirectCode: d.maybe(0.5, () => d.one([301, 302, 303, 307, 308])),
    });
    if (Object.keys(redirect).filter((k) => k !== 'redirectCode').length === 0) redirect.uri = '/moved';
    route.redirect = redirect;
  } else {
    route.route = destinations(d, services, vsHosts, namespace);
    route.timeout = d.maybe(0.3, () => duration(d, { allowZero: true }));
    route.retries = d.maybe(0.3, () => {
      const retries = compact({
        attempts: d.maybe(0.8, () => (d.usually(0.9) ? d.int(0, 5) : d.int(0, INT32_MAX))),
        perTryTimeout: d.maybe(0.5, () => duration(d)),
        retryOn: d.maybe(0.6, () =>
          d
            .some(['5xx', 'gateway-error', 'reset', 'connect-failure', 'retriable-4xx', 'unavailable', 'cancelled', 'deadline-exceeded', 'internal', '503', '429'], 1, 4)
            .join(d.one([',', ', '])),
        ),
      });
      // attempts: 0 turns retries off; Istio refuses retry settings next to it.
      return retries.attempts === 0 ? { attempts: 0 } : retries;
    });
    route.rewrite = d.maybe(0.2, () => {
      const kind = d.int(0, 3);
      const rw = compact({
        uri: kind === 0 || kind === 2 ? text(d, ['/', '/v2/', '/api']) : undefined,
        uriRegexRewrite: kind === 1 ? { match: d.one(SAFE_REGEXES), rewrite: d.one(['/', '/v2/\\1', '']) } : undefined,
        authority: kind >= 2 ? text(d, ['reviews.internal', 'example.com:8080']) : undefined,
      });
      return rw;
    });
  }
  return compact(route);
}

function drawVirtualService(d: Draw, index: number, services: ServiceModel[]): Doc | undefined {
  const namespace = d.one(NAMESPACES);
  const candidates = services.filter((s) => s.ports.some(isHttp));
  if (!candidates.length) return undefined;
  const hosts = d.some(candidates, 1, 2);
  if (!hosts.length) hosts.push(candidates[0]!);
  const http = Array.from({ length: d.int(1, 4) }, (_, i) => httpRoute(d, i, services, hosts, namespace));
  return {
    apiVersion: apiVersion(d),
    kind: 'VirtualService',
    metadata: metadata(d, `vs-${index}`, namespace),
    spec: { hosts: hosts.map((s) => hostRef(d, s, namespace)), http },
  };
}

/** A consistent, valid rule set. */
export function drawWorld(d: Draw): World {
  const docs: Doc[] = [];
  const used = new Set<string>();
  const services = Array.from({ length: d.int(1, 4) }, (_, i) => drawService(d, i, used, docs));
  services.forEach((svc, i) => {
    if (d.chance(0.6)) docs.push(drawDestinationRule(d, i, svc));
  });
  const vsCount = d.int(0, 3);
  for (let i = 0; i < vsCount; i++) {
    const vs = drawVirtualService(d, i, services);
    if (vs) docs.push(vs);
  }
  // Document order must not matter; shuffle it.
  // Sidecars sit on IP addresses (DNS endpoints have host names).
  const addresses = services.flatMap((s) => s.endpoints.map((e) => e.address)).filter((a) => isIP(a) !== 0);
  return { docs: d.shuffle(docs), services, addresses };
}

/** The random numbers a case is drawn from. */
export const drawsArb: fc.Arbitrary<number[]> = fc.array(fc.nat({ max: RAW_MAX }), { minLength: DRAWS, maxLength: DRAWS });

export const worldArb: fc.Arbitrary<World> = drawsArb.map((raw) => drawWorld(new Draw(raw)));

// ---- YAML ------------------------------------------------------------------------------------

export interface YamlStyle { indent: number; flow: boolean; aliases: boolean }

export function drawStyle(d: Draw): YamlStyle {
  return { indent: d.one([2, 4]), flow: d.chance(0.3), aliases: d.chance(0.5) };
}

/** Each document's YAML (every one ends with a newline). */
export function yamlParts(docs: readonly unknown[], style: YamlStyle = { indent: 2, flow: false, aliases: false }): string[] {
  return docs.map((doc) => YAML.stringify(doc, { indent: style.indent, collectionStyle: style.flow ? 'flow' : 'any', aliasDuplicateObjects: style.aliases, lineWidth: 0 }));
}

/** A multi-document YAML text. */
export function toYaml(docs: readonly unknown[], style?: YamlStyle): string {
  return yamlParts(docs, style).join('---\n');
}

/** The first and last line (1-based) of document `index` in toYaml's output. */
export function documentLines(parts: readonly string[], index: number): { first: number; last: number } {
  const lines = (s: string) => s.split('\n').length - 1; // parts end with a newline
  let first = 1;
  for (let i = 0; i < index; i++) first += lines(parts[i]!) + 1; // the document, then "---"
  return { first, last: first + lines(parts[index]!) - 1 };
}

// ---- proxies -----------------------------------------------------------------------------------

/** An Envoy sidecar (sometimes on one of the endpoints' addresses) or a proxyless gRPC client. */
export function drawProxy(d: Draw, kind: 'sidecar' | 'grpc', addresses: readonly string[]): Proxy {
  const namespace = d.one(NAMESPACES);
  const app = d.one([...SERVICE_NAMES, 'productpage']);
  const ip = addresses.length && d.chance(0.5) ? d.one(addresses) : d.ipV4();
  return proxyFromNode({
    id: `sidecar~${ip}~${app}-1.${namespace}~${namespace}.svc.cluster.local`,
    metadata: {
      NAMESPACE: namespace,
      LABELS: compact({ app, version: d.maybe(0.7, () => d.one(VERSIONS)), tier: d.maybe(0.3, () => d.one(TIERS)) }),
      ...(kind === 'grpc' ? { GENERATOR: 'grpc' } : {}),
      ...(d.chance(0.4) ? { NETWORK: d.one(NETWORKS) } : {}),
    },
    // Callers with a locality get their own priorities; those without, everything at priority 0.
    ...(d.chance(0.7) ? { locality: compact({ region: d.one(REGIONS), zone: d.maybe(0.8, () => d.one(ZONES)), sub_zone: d.maybe(0.3, () => `rack-${d.int(1, 3)}`) }) } : {}),
  });
}

export interface ValidCase { docs: Doc[]; style: YamlStyle; sidecar: Proxy; grpc: Proxy }

/** A valid rule set, how to write it, and a client of each kind asking for config. */
export const validCaseArb: fc.Arbitrary<ValidCase> = drawsArb.map((raw) => {
  const d = new Draw(raw);
  const world = drawWorld(d);
  return { docs: world.docs, style: drawStyle(d), sidecar: drawProxy(d, 'sidecar', world.addresses), grpc: drawProxy(d, 'grpc', world.addresses) };
});

// ---- making valid documents invalid ------------------------------------------------------------

export type Mutation =
  | { kind: 'delete-required'; doc: number; path: Path }
  | { kind: 'unknown-field'; doc: number; path: Path }
  | { kind: 'wrong-type'; doc: number; path: Path }
  | { kind: 'bad-duration'; doc: number; path: Path; value: string }
  | { kind: 'bad-regex'; doc: number; path: Path; value: string }
  /** Valid on its own, but names a host, subset or port that does not exist. */
  | { kind: 'dangling-reference'; doc: number; path: Path; value: unknown };

/** Every path in a JSON value, with the value there. */
export function walk(value: unknown, path: Path = [], out: Array<{ path: Path; value: unknown }> = []): Array<{ path: Path; value: unknown }> {
  out.push({ path, value });
  if (Array.isArray(value)) value.forEach((v, i) => walk(v, [...path, i], out));
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(v, [...path, k], out);
  return out;
}

/** `spec.http.*.route` for ['spec','http',0,'route']. */
export function pattern(path: Path): string {
  return path.map((s) => (typeof s === 'number' ? '*' : s)).join('.');
}

/** Maps whose keys are data (labels, header names, port names), not field names. */
const RECORDS = [
  /^metadata\.(labels|annotations)$/,
  /^spec\.(labels|ports)$/, // WorkloadEntry (spec.ports of a ServiceEntry is a list)
  /^spec\.endpoints\.\*\.(labels|ports)$/,
  /^spec\.workloadSelector\.labels$/,
  /^spec\.subsets\.\*\.labels$/,
  /^spec\.http\.\*\.match\.\*\.(headers|withoutHeaders|queryParams|sourceLabels)$/,
  /^spec\.http\.\*\.headers\.(request|response)\.(set|add)$/,
  /localityLbSetting\.distribute\.\*\.to$/,
];
export const isRecordPath = (path: Path): boolean => RECORDS.some((r) => r.test(pattern(path)));

/** Fields that must be present, by document kind (patterns over the document). Not here, as
 * Istio takes them absent: ServiceEntry ports, an address next to a network, VirtualService hosts;
 * VirtualService http (one of http, tcp, tls is required: that error is at spec). */
const REQUIRED: Record<Doc['kind'], RegExp> = {
  ServiceEntry: /^(spec|metadata|metadata\.name|spec\.hosts|spec\.ports\.\*\.(number|name))$/,
  WorkloadEntry: /^(spec|metadata|metadata\.name)$/,
  DestinationRule: /^(spec|metadata|metadata\.name|spec\.host|spec\.subsets\.\*\.name|spec\.(trafficPolicy\.)?portLevelSettings\.\*\.port|spec\.subsets\.\*\.trafficPolicy\.portLevelSettings\.\*\.port)$/,
  VirtualService: /^(spec|metadata|metadata\.name|spec\.http\.\*\.route\.\*\.destination|spec\.http\.\*\.route\.\*\.destination\.host)$/,
};

const DURATION_FIELDS = /^(timeout|perTryTimeout|connectTimeout|idleTimeout|interval|baseEjectionTime|ttl)$/;
const ZERO_OK_FIELDS = /^(timeout|idleTimeout|ttl)$/;
const BAD_DURATIONS = ['10', '1.5', '-1s', '1 s', '.5s', '1d', 's', '', '1500us', '10sec', '1e3ms', '9999999999h', '1h-1m', ' 1s', '1s ', '1S', '0x10s', '1m1'];
export const BAD_REGEXES = ['(', '[a-', '(?<=a)b', '(?!x)y', 'a**', '\\1(a)', 'a{2,1}', '*a', '(?P<n>a', '[z-a]', ''];

function regexPaths(doc: Doc): Path[] {
  return walk(doc)
    .filter(({ path, value }) => typeof value === 'string' && (path[path.length - 1] === 'regex' || pattern(path).endsWith('uriRegexRewrite.match')))
    .map(({ path }) => path);
}

/** A mutation that makes one of `docs` invalid, with the path an error must be reported at. */
export function drawMutation(d: Draw, docs: readonly Doc[]): Mutation {
  const nodesOf = (i: number) => walk(docs[i]!).filter(({ path }) => path.length > 0);
  const indexes = docs.map((_, i) => i);
  const virtualServices = indexes.filter((i) => docs[i]!.kind === 'VirtualService');
  const kind = d.int(0, 4);

  if (kind === 0) {
    const doc = d.one(indexes);
    const required = nodesOf(doc).filter(({ path }) => REQUIRED[docs[doc]!.kind].test(pattern(path)));
    if (required.length) return { kind: 'delete-required', doc, path: d.one(required).path };
  }
  if (kind === 1) {
    const doc = d.one(indexes);
    return { kind: 'wrong-type', doc, path: d.one(nodesOf(doc)).path };
  }
  if (kind === 2) {
    const durations = indexes.flatMap((doc) =>
      nodesOf(doc)
        .filter(({ path, value }) => typeof value === 'string' && DURATION_FIELDS.test(String(path[path.length - 1])) && !isRecordPath(path.slice(0, -1)))
        .map(({ path }) => ({ doc, path })),
    );
    if (durations.length && d.chance(0.7)) {
      const { doc, path } = d.one(durations);
      const zeroIsBad = !ZERO_OK_FIELDS.test(String(path[path.length - 1]));
      return { kind: 'bad-duration', doc, path, value: d.one(BAD_DURATIONS.concat(zeroIsBad ? ['0s', '0ms'] : [])) };
    }
    if (virtualServices.length) {
      const doc = d.one(virtualServices);
      const http = docs[doc]!.spec.http as Json[];
      const i = d.int(0, http.length - 1);
      const field = http[i]!.route ? d.one(['timeout', 'perTryTimeout']) : 'timeout';
      const path: Path = field === 'timeout' ? ['spec', 'http', i, 'timeout'] : ['spec', 'http', i, 'retries', 'perTryTimeout'];
      // On a redirect, a timeout is an error of its own; on a route, only its value is wrong.
      return { kind: 'bad-duration', doc, path, value: d.one(BAD_DURATIONS) };
    }
  }
  if (kind === 3 && virtualServices.length) {
    const doc = d.one(virtualServices);
    const existing = regexPaths(docs[doc]!);
    const value = d.one(BAD_REGEXES);
    if (existing.length && d.chance(0.6)) return { kind: 'bad-regex', doc, path: d.one(existing), value };
    const i = d.int(0, (docs[doc]!.spec.http as Json[]).length - 1);
    const where = d.one<Path>([['uri', 'regex'], ['method', 'regex'], ['headers', 'x-bad', 'regex'], ['withoutHeaders', 'cookie', 'regex'], ['queryParams', 'q', 'regex']]);
    return { kind: 'bad-regex', doc, path: ['spec', 'http', i, 'match', 0, ...where], value };
  }
  // Otherwise: an unknown field in a map that has a fixed set of fields.
  const doc = d.one(indexes);
  const maps = [{ path: [] as Path, value: docs[doc] as unknown }, ...nodesOf(doc)].filter(
    ({ path, value }) => value !== null && typeof value === 'object' && !Array.isArray(value) && !isRecordPath(path),
  );
  const { path } = d.one(maps);
  return { kind: 'unknown-field', doc, path: [...path, d.one(['zzUnknownField', 'timeoutt', 'Spec', 'x_extra', 'weight2'])] };
}

const NOWHERE = 'nowhere.example.com';

/**
 * A reference to something that does not exist, in a rule of a valid world: a VirtualService host
 * or destination (host, subset, port), or a DestinationRule host or port-level setting.
 */
export function drawBrokenReference(d: Draw, world: World): Mutation | undefined {
  const options: Mutation[] = [];
  const unusedPort = (svc: ServiceModel | undefined) => {
    let n = 1;
    while (svc?.ports.some((p) => p.number === n)) n++;
    return n;
  };
  const serviceOf = (ref: string, namespace: string) =>
    world.services.find((s) => s.host === ref || (s.k8s?.name === ref && s.k8s.namespace === namespace));
  world.docs.forEach((doc, i) => {
    const ns = doc.metadata.namespace ?? 'default';
    if (doc.kind === 'DestinationRule') {
      // Not spec.host: a rule for a host not declared yet is kept with a warning, as Istio keeps it.
      const svc = serviceOf(doc.spec.host as string, ns);
      const tp = doc.spec.trafficPolicy as Json | undefined;
      (tp?.portLevelSettings as Json[] | undefined)?.forEach((_, j) =>
        options.push({ kind: 'dangling-reference', doc: i, path: ['spec', 'trafficPolicy', 'portLevelSettings', j, 'port', 'number'], value: unusedPort(svc) }),
      );
      (doc.spec.subsets as Json[] | undefined)?.forEach((subset, k) => {
        const stp = subset.trafficPolicy as Json | undefined;
        (stp?.portLevelSettings as Json[] | undefined)?.forEach((_, j) =>
          options.push({ kind: 'dangling-reference', doc: i, path: ['spec', 'subsets', k, 'trafficPolicy', 'portLevelSettings', j, 'port', 'number'], value: unusedPort(svc) }),
        );
      });
    }
    if (doc.kind === 'VirtualService') {
      (doc.spec.hosts as string[]).forEach((_, h) => options.push({ kind: 'dangling-reference', doc: i, path: ['spec', 'hosts', h], value: NOWHERE }));
      const httpPorts = (doc.spec.hosts as string[]).flatMap((h) => serviceOf(h, ns)?.ports.filter(isHttp).map((p) => p.number) ?? []);
      (doc.spec.http as Json[]).forEach((http, r) => {
        // A route whose match ports select none of the hosts' HTTP ports is never used, and its
        // destinations are not resolved (nor checked): leave such routes alone.
        const matches = (http.match as Json[] | undefined) ?? [];
        if (matches.length && !matches.some((m) => m.port === undefined || httpPorts.includes(m.port as number))) return;
        (http.route as Json[] | undefined)?.forEach((rd, j) => {
          const at: Path = ['spec', 'http', r, 'route', j, 'destination'];
          const dest = rd.destination as Json;
          const svc = serviceOf(dest.host as string, ns);
          options.push({ kind: 'dangling-reference', doc: i, path: [...at, 'host'], value: NOWHERE });
          options.push({ kind: 'dangling-reference', doc: i, path: [...at, 'subset'], value: 'ghost' });
          options.push({ kind: 'dangling-reference', doc: i, path: [...at, 'port'], value: { number: unusedPort(svc) } });
        });
      });
    }
  });
  return options.length ? d.one(options) : undefined;
}

function parentOf(root: unknown, path: Path): Json | unknown[] {
  let node = root as Json;
  for (const seg of path.slice(0, -1)) {
    const next = (node as Record<string | number, unknown>)[seg];
    if (next === undefined || next === null || typeof next !== 'object') {
      // Create what is missing (used when a regex is inserted into a route without matches).
      const created = typeof seg === 'number' ? {} : {};
      (node as Record<string | number, unknown>)[seg] = created;
      node = created as Json;
    } else node = next as Json;
  }
  return node;
}

/** A value of a different JSON type than `v`. */
function wrongTypeOf(v: unknown): unknown {
  if (typeof v === 'string') return 42;
  if (typeof v === 'number') return 'forty-two';
  if (typeof v === 'boolean') return 'yes please';
  if (Array.isArray(v)) return 'not-a-list';
  return ['not', 'a', 'map'];
}

/** Applies a mutation to a deep copy of the documents. */
export function applyMutation(docs: readonly Doc[], m: Mutation): Doc[] {
  const out = structuredClone(docs) as Doc[];
  const root = out[m.doc]!;
  const last = m.path[m.path.length - 1]!;
  if (m.kind === 'bad-regex' && m.path.includes('match')) {
    // Make sure the match list exists and is a list of maps.
    const httpEntry = (root.spec.http as Json[])[m.path[2] as number]!;
    if (!Array.isArray(httpEntry.match) || httpEntry.match.length === 0) httpEntry.match = [{}];
    if (m.path[5] === 'uri') delete (httpEntry.match as Json[])[0]!.ignoreUriCase;
  }
  const parent = parentOf(root, m.path) as Record<string | number, unknown>;
  switch (m.kind) {
    case 'delete-required':
      if (Array.isArray(parent)) parent.splice(last as number, 1);
      else delete parent[last];
      break;
    case 'unknown-field':
      parent[last] = 'surprise';
      break;
    case 'wrong-type':
      parent[last] = wrongTypeOf(parent[last]);
      break;
    case 'dangling-reference':
      parent[last] = m.value;
      break;
    case 'bad-duration':
    case 'bad-regex': {
      if (m.kind === 'bad-regex' && m.path.length >= 2 && m.path[m.path.length - 1] === 'regex') {
        // A string match has exactly one kind: drop the others so only the regex is wrong.
        for (const k of ['exact', 'prefix']) delete parent[k];
      }
      parent[last] = m.value;
      break;
    }
  }
  return out;
}

export interface MutationCase { docs: Doc[]; mutation: Mutation }

/** A valid rule set with one field broken (see drawMutation). */
export const mutationCaseArb: fc.Arbitrary<MutationCase> = drawsArb.map((raw) => {
  const d = new Draw(raw);
  const { docs } = drawWorld(d);
  return { docs, mutation: drawMutation(d, docs) };
});

export interface BrokenReferenceCase { world: World; mutation: Mutation }

/** A valid rule set in which one rule names a host, subset or port that does not exist. */
export const brokenReferenceCaseArb: fc.Arbitrary<BrokenReferenceCase> = drawsArb
  .map((raw) => {
    const d = new Draw(raw);
    const world = drawWorld(d);
    return { world, mutation: drawBrokenReference(d, world) };
  })
  .filter((c): c is BrokenReferenceCase => c.mutation !== undefined);

/** A valid rule set's YAML, cut off anywhere. */
export const truncatedArb: fc.Arbitrary<string> = drawsArb.map((raw) => {
  const d = new Draw(raw);
  const text = toYaml(drawWorld(d).docs, drawStyle(d));
  return text.slice(0, d.int(0, text.length));
});

/** Random junk that is sometimes YAML and sometimes not. */
export const garbageArb: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc
    .array(
      fc.constantFrom(
        'apiVersion: networking.istio.io/v1\n', 'kind: VirtualService\n', 'kind: ServiceEntry\n', 'metadata:\n', '  name: x\n', 'spec:\n',
        '  hosts: [a]\n', '---\n', '- ', ': ', '{', '}', '[', ']', '&a ', '*a ', '!!binary ', '!!int ', '? ', '|\n', '>\n', '\t', '"', "'",
        '#c\n', '%YAML 1.2\n', '...\n', 'null\n', '~\n', '<<: *a\n', '  ', '\n', 'x', '1', 'true', '\u0000', '\ufeff', 'é',
      ),
      { maxLength: 60 },
    )
    .map((parts) => parts.join('')),
  fc.jsonValue().map((v) => YAML.stringify(v)),
  fc.array(fc.jsonValue(), { maxLength: 4 }).map((vs) => vs.map((v) => YAML.stringify(v)).join('---\n')),
  // Alias expansion ("billion laughs").
  fc.integer({ min: 2, max: 12 }).map((n) => {
    let s = 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n';
    for (let i = 1; i < n; i++) s += `a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]\n`;
    return s;
  }),
);
