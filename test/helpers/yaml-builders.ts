// Small builders for the Istio rules tests write: each returns one YAML document (plain objects
// stringified), so a test states only the fields it is about. Join several with `yamlDocs`.
// Defaults: namespace `default`, metadata.name = the first label of the (first) host.
import { stringify } from 'yaml';

type Obj = Record<string, unknown>;

/** One object as a YAML document (no width limit, so long values stay on one line). */
export function toYaml(object: unknown): string {
  return stringify(object, { lineWidth: 0 });
}

/** Several YAML documents as one file. */
export function yamlDocs(...docs: string[]): string {
  return docs.join('---\n');
}

/** `reviews.default.svc.cluster.local` -> `reviews` */
const shortName = (host: string) => host.split('.')[0]!;

function metadata(name: string, namespace: string | null | undefined, more: Obj = {}): Obj {
  return { name, ...(namespace === null ? {} : { namespace: namespace ?? 'default' }), ...more };
}

export interface ServiceEntryOptions {
  hosts: string[];
  endpoints: Obj[];
  name?: string;
  /** null: no namespace field at all. */
  namespace?: string | null;
  /** Default one port 9080 named grpc, protocol GRPC. */
  ports?: Array<{ number: number; name: string; protocol: string }>;
  location?: 'MESH_INTERNAL' | 'MESH_EXTERNAL';
  resolution?: string;
}

export function serviceEntry(o: ServiceEntryOptions): string {
  return toYaml({
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: metadata(o.name ?? shortName(o.hosts[0]!), o.namespace),
    spec: {
      hosts: o.hosts,
      ...(o.location ? { location: o.location } : {}),
      resolution: o.resolution ?? 'STATIC',
      ports: o.ports ?? [{ number: 9080, name: 'grpc', protocol: 'GRPC' }],
      endpoints: o.endpoints,
    },
  });
}

/**
 * Endpoints written `ip@region/zone[/subzone][#network]`, e.g. `10.0.0.1@r1/a#n1`;
 * `labels` (optional) gives each its labels, by position.
 */
export function endpointsAt(specs: readonly string[], labels: ReadonlyArray<Record<string, string>> = []): Obj[] {
  return specs.map((s, i) => {
    const [address, rest] = s.split('@');
    const [locality, network] = rest!.split('#');
    return { address, locality, ...(network ? { network } : {}), ...(labels[i] ? { labels: labels[i] } : {}) };
  });
}

export interface DestinationRuleOptions {
  host: string;
  name?: string;
  namespace?: string | null;
  trafficPolicy?: Obj;
  /** Subset names, each selecting `version: <name>`, or full subset objects. */
  subsets?: Array<string | Obj>;
}

export function destinationRule(o: DestinationRuleOptions): string {
  return toYaml({
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: metadata(o.name ?? shortName(o.host), o.namespace),
    spec: {
      host: o.host,
      ...(o.trafficPolicy ? { trafficPolicy: o.trafficPolicy } : {}),
      ...(o.subsets ? { subsets: o.subsets.map((s) => (typeof s === 'string' ? { name: s, labels: { version: s } } : s)) } : {}),
    },
  });
}

export interface VirtualServiceOptions {
  hosts: string[];
  /** Http routes, first match wins; build them with `httpRoute`. */
  http: Obj[];
  name?: string;
  namespace?: string | null;
  /** spec.gateways (absent: mesh only). */
  gateways?: string[];
}

export function virtualService(o: VirtualServiceOptions): string {
  return toYaml({
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: metadata(o.name ?? shortName(o.hosts[0]!), o.namespace),
    spec: { hosts: o.hosts, ...(o.gateways ? { gateways: o.gateways } : {}), http: o.http },
  });
}

/** A route destination: `{ destination: { host, subset }, weight }`. */
export function to(host: string, subset?: string, weight?: number): Obj {
  return { destination: { host, ...(subset !== undefined ? { subset } : {}) }, ...(weight !== undefined ? { weight } : {}) };
}

/** One http route: `match` (if any) first, then whatever else it sets (fault, mirror...), then `route`. */
export function httpRoute(route: Obj[], more: { match?: Obj[] } & Obj = {}): Obj {
  const { match, ...rest } = more;
  return { ...(match ? { match } : {}), ...rest, route };
}

/** A header match: `{ headers: { name: { exact|prefix|regex: value } } }`. */
export function header(name: string, how: 'exact' | 'prefix' | 'regex', value: string): Obj {
  return { headers: { [name]: { [how]: value } } };
}

/** Fault: abort with a gRPC status name or an HTTP status number, at `percent`. */
export function abort(status: string | number, percent: number): Obj {
  return { abort: { ...(typeof status === 'string' ? { grpcStatus: status } : { httpStatus: status }), percentage: { value: percent } } };
}

/** Fault: a fixed delay (e.g. `7s`) at `percent`. */
export function delay(fixedDelay: string, percent: number): Obj {
  return { delay: { fixedDelay, percentage: { value: percent } } };
}

export interface AuthorizationPolicyOptions {
  name: string;
  namespace?: string;
  annotations?: Record<string, string>;
  /** matchLabels of the workloads it applies to. */
  selector?: Record<string, string>;
  action?: 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';
  rules: Obj[];
}

export function authorizationPolicy(o: AuthorizationPolicyOptions): string {
  return toYaml({
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: metadata(o.name, o.namespace, o.annotations ? { annotations: o.annotations } : {}),
    spec: {
      ...(o.selector ? { selector: { matchLabels: o.selector } } : {}),
      ...(o.action ? { action: o.action } : {}),
      rules: o.rules,
    },
  });
}

/** An authorization rule condition on a request header: `when: [{ key: request.headers[name], values }]`. */
export function whenHeader(name: string, values: string[]): Obj {
  return { key: `request.headers[${name}]`, values };
}

export function workloadEntry(o: { name: string; address: string; labels: Record<string, string>; namespace?: string }): string {
  return toYaml({
    apiVersion: 'networking.istio.io/v1',
    kind: 'WorkloadEntry',
    metadata: metadata(o.name, o.namespace),
    spec: { address: o.address, labels: o.labels },
  });
}
