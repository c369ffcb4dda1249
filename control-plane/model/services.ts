// ServiceEntries (and the WorkloadEntries they select) become mesh services with endpoints.
import { exportField } from './export-to.ts';
import { type ConfigObject, isKind, ofKind } from '../config/types.ts';
import { compareText, sameItems, SortedOrder } from './compare.ts';
import type { ServiceEntryIn, WorkloadEntryIn } from './input.ts';
import { IssueList, originOf } from './issues.ts';
import type { Endpoint, Locality, Protocol, Resolution, Service } from './types.ts';

export function parseLocality(text: string | undefined): Locality {
  const [region = '', zone = '', subzone = ''] = (text ?? '').split('/');
  return { region, zone, subzone };
}

function toEndpoint(we: WorkloadEntryIn): Endpoint {
  return {
    // '' for a workload known only by its network: reached through that network's gateway.
    address: we.address ?? '',
    labels: { ...(we.labels ?? {}) },
    locality: parseLocality(we.locality),
    ...(we.network ? { network: we.network } : {}),
    ...(we.weight !== undefined ? { weight: we.weight } : {}),
    ports: { ...(we.ports ?? {}) },
    ...(we.serviceAccount ? { serviceAccount: we.serviceAccount } : {}),
  };
}

/** Envoy refuses a locality whose endpoint weights add up past uint32. */
export const MAX_ENDPOINT_WEIGHT = 4294967295;

function dnsSelf(host: string): Endpoint {
  return { address: host, labels: {}, locality: { region: '', zone: '', subzone: '' }, ports: {} };
}

export function labelsMatch(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** What one ServiceEntry gives, whatever the other entries say: a service per host, and its weight total. */
interface Converted {
  /** For a workloadSelector entry: the WorkloadEntries it selected. */
  workloads?: readonly ConfigObject<'WorkloadEntry'>[];
  services: Service[]; // one per spec.hosts entry, same index
  totalWeight: number;
}

/**
 * What buildServices keeps between builds. Rule objects are immutable and handed again for
 * unchanged files, so the conversion is kept per object; a service that did not change is then
 * the same object as in the previous model.
 */
export class ServiceMemo {
  readonly converted = new WeakMap<ConfigObject, Converted>();
  readonly order = new SortedOrder<Service>((s) => s.host, (a, b) => compareText(a.host, b.host));
}

/** A WorkloadEntry with its labels: those of the object, then those of the spec. */
function workloadOf(w: ConfigObject<'WorkloadEntry'>): WorkloadEntryIn & { labels: Record<string, string> } {
  const we = w.spec;
  return { ...we, labels: { ...w.labels, ...(we.labels ?? {}) } };
}

/** The WorkloadEntries a ServiceEntry's workloadSelector selects, in order. */
function selected(obj: ConfigObject, spec: ServiceEntryIn, workloads: readonly ConfigObject<'WorkloadEntry'>[]): ConfigObject<'WorkloadEntry'>[] {
  const selector = spec.workloadSelector?.labels ?? {};
  return workloads.filter((w) => w.namespace === obj.namespace && labelsMatch(selector, workloadOf(w).labels));
}

/** MONGO, MYSQL and REDIS are TCP to meshpilot (as to Istio without their filters); absent is TCP. */
function modelProtocol(p: NonNullable<ServiceEntryIn['ports']>[number]['protocol']): Protocol {
  return p === undefined || p === 'MONGO' || p === 'MYSQL' || p === 'REDIS' ? 'TCP' : p;
}

function isDns(r: ServiceEntryIn['resolution']): boolean {
  return r === 'DNS' || r === 'DNS_ROUND_ROBIN';
}

/** Absent is NONE (Istio's default); DYNAMIC_DNS is carried as NONE (build.ts warns). */
function modelResolution(r: ServiceEntryIn['resolution']): Resolution {
  return r === 'STATIC' || r === 'DNS' || r === 'DNS_ROUND_ROBIN' ? r : 'NONE';
}

function convert(obj: ConfigObject<'ServiceEntry'>, workloadsHere: readonly ConfigObject<'WorkloadEntry'>[] | undefined): Converted {
  const spec = obj.spec;
  let endpoints: Endpoint[];
  if (spec.workloadSelector) {
    endpoints = workloadsHere!.map((w) => toEndpoint(workloadOf(w)));
  } else {
    endpoints = (spec.endpoints ?? []).map(toEndpoint);
  }
  const services = spec.hosts.map(
    (host): Service => ({
      host,
      namespace: obj.namespace,
      ports: (spec.ports ?? []).map((p) => ({
        name: p.name,
        number: p.number,
        protocol: modelProtocol(p.protocol),
        ...(p.targetPort !== undefined ? { targetPort: p.targetPort } : {}),
      })),
      resolution: modelResolution(spec.resolution),
      ...(spec.addresses?.length ? { addresses: [...spec.addresses] } : {}),
      // Istio's default for a ServiceEntry is MESH_EXTERNAL.
      location: spec.location === 'MESH_INTERNAL' ? 'MESH_INTERNAL' : 'MESH_EXTERNAL',
      ...(spec.subjectAltNames?.length ? { subjectAltNames: [...spec.subjectAltNames] } : {}),
      // A DNS service without endpoints is reached at its own name, as in Istio.
      endpoints: isDns(spec.resolution) && endpoints.length === 0 && !spec.workloadSelector ? [dnsSelf(host)] : endpoints,
      ...exportField(spec, obj.namespace),
      origin: originOf(obj),
    }),
  );
  // Envoy refuses a locality whose endpoint weights add up past uint32.
  const totalWeight = endpoints.reduce((sum, e) => sum + (e.weight || 1), 0);
  return { ...(workloadsHere ? { workloads: workloadsHere } : {}), services, totalWeight };
}

/**
 * The services of one ServiceEntry without a workloadSelector and the sum of its endpoint weights,
 * kept per object as buildServices keeps them (for an endpoint update, model/endpoint-update.ts).
 */
export function serviceEntryServices(obj: ConfigObject<'ServiceEntry'>, memo: ServiceMemo): { services: readonly Service[]; totalWeight: number } {
  let c = memo.converted.get(obj);
  if (!c) memo.converted.set(obj, (c = convert(obj, undefined)));
  return c;
}

export function buildServices(objects: ConfigObject[], issues: IssueList, memo = new ServiceMemo()): Service[] {
  const workloads = ofKind(objects, 'WorkloadEntry');
  const byHost = new Map<string, Service>();
  const byLowerHost = new Map<string, Service>();
  for (const obj of objects) {
    if (!isKind(obj, 'ServiceEntry')) continue;
    const spec = obj.spec;
    // A workloadSelector entry also depends on the WorkloadEntries it selects (in order).
    const workloadsHere = spec.workloadSelector ? selected(obj, spec, workloads) : undefined;
    let c = memo.converted.get(obj);
    if (!c || (workloadsHere && !sameItems(c.workloads!, workloadsHere))) {
      c = convert(obj, workloadsHere);
      memo.converted.set(obj, c);
    }
    // Duplicate hosts depend on the other entries, so they are checked on every build.
    const hostsHere: Service[] = [];
    spec.hosts.forEach((host, i) => {
      // Host names are case-insensitive, as Envoy matches domains.
      const previous = byLowerHost.get(host.toLowerCase());
      if (previous) {
        issues.error(obj, ['spec', 'hosts', i], `host ${host} is already declared by ${previous.origin.key}`);
        return;
      }
      hostsHere.push(c.services[i]);
    });
    if (c.totalWeight > MAX_ENDPOINT_WEIGHT) issues.error(obj, ['spec', 'endpoints'], `the endpoint weights add up to ${c.totalWeight}, more than ${MAX_ENDPOINT_WEIGHT}`);
    if (issues.rejected.has(obj.key)) continue;
    for (const s of hostsHere) {
      byHost.set(s.host, s);
      byLowerHost.set(s.host.toLowerCase(), s);
    }
  }
  return memo.order.sort([...byHost.values()]);
}

/** The port an endpoint listens on for a service port: its own mapping, else targetPort, else the port. */
export function endpointPort(ep: Endpoint, port: { name: string; number: number; targetPort?: number }): number {
  return ep.ports[port.name] ?? port.targetPort ?? port.number;
}

export function isHttpProtocol(p: Protocol): boolean {
  return p === 'HTTP' || p === 'HTTP2' || p === 'GRPC';
}
