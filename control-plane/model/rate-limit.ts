// RateLimit rules -> resolved rate limits with per-replica token shares.
//
// Where each part is enforced (see README, "Rate limits"):
// - the service-wide `limit` at the callee: every replica of the destination service gets a share
//   of it on its inbound side, so the callee sees every caller (sidecars, proxyless gRPC clients,
//   callers outside the mesh) and the shares add up to the limit whatever the number of callers;
// - each override at the caller: every replica of the selected source workloads gets a share of
//   the override on its outbound side, on the virtual host of the destination.
// The control plane knows both replica counts (service endpoints, and workloads matching a
// source), so a limit written for the service stays the same total when replicas come and go.
import { type ConfigObject, isKind, ofKind } from '../config/types.ts';
import { compareText } from './compare.ts';
import { durationMs } from './duration.ts';
import { resolveHost } from './hosts.ts';
import { type IssueList, originOf } from './issues.ts';
import { endpointPort, isHttpProtocol, labelsMatch } from './services.ts';
import type { Origin, Protocol, Service } from './types.ts';

/** `tokens` requests per `intervalMs`: one token bucket (max_tokens = tokens_per_fill = tokens). */
export interface TokenShare { tokens: number; intervalMs: number }

export interface RateLimitAmount { requests: number; perMs: number }

export interface RateLimitSource { labels?: Record<string, string>; namespace?: string }

export interface RateLimitOverride {
  source: RateLimitSource;
  limit: RateLimitAmount;
  /** The share of each known caller replica, by address (sorted). */
  callers: Array<{ address: string; share: TokenShare }>;
  /** The share of a matching caller that is not among `callers` (the smallest share, or all of it when no caller is known). */
  otherCallers: TokenShare;
}

export interface RateLimitReplica {
  address: string;
  /** The port the workload itself listens on (the inbound listener's port). */
  workloadPort: number;
  share: TokenShare;
}

export interface RateLimitPolicy {
  /** `namespace/name` of the RateLimit. */
  name: string;
  host: string;
  port: number;
  protocol: Protocol;
  /** The service-wide limit and each callee replica's share of it. */
  limit?: RateLimitAmount & { replicas: RateLimitReplica[] };
  overrides: RateLimitOverride[];
  shadow: boolean;
  responseHeaders: boolean;
  origin: Origin;
}

/**
 * Splits "`requests` per `perMs`" over `replicas` token buckets whose rates add up to exactly the
 * limit, none of them empty. With at least as many requests as replicas, each replica gets
 * floor(requests / replicas) per interval and the first (requests mod replicas) get one more.
 * With fewer requests than replicas, a bucket cannot hold a fraction of a token, so the interval
 * is stretched to the smallest whole multiple k of `perMs` in which every replica gets at least
 * one: k = ceil(replicas / requests), and the requests * k tokens of that window are split as
 * above. The long-run rate is exact; the price is a coarser refill (e.g. 2 per second over 5
 * replicas = 2, 1, 1, 1, 1 per 3 seconds) and a larger first burst.
 */
export function splitLimit(requests: number, perMs: number, replicas: number): TokenShare[] {
  if (replicas <= 0) return [];
  if (!Number.isInteger(requests) || requests < 1) throw new Error(`requests must be a positive integer, got ${requests}`);
  const k = Math.ceil(replicas / requests);
  const total = requests * k;
  const base = Math.floor(total / replicas);
  const extra = total % replicas;
  return Array.from({ length: replicas }, (_, i) => ({ tokens: base + (i < extra ? 1 : 0), intervalMs: perMs * k }));
}

/** Addresses in a stable, human-friendly order: IPv4 by octets, anything else after, by text. */
export function compareAddresses(a: string, b: string): number {
  const v4 = (s: string) => (/^\d+\.\d+\.\d+\.\d+$/.test(s) ? s.split('.').map(Number) : undefined);
  const x = v4(a);
  const y = v4(b);
  if (x && y) {
    for (let i = 0; i < 4; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
    return 0;
  }
  if (x) return -1;
  if (y) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Does a caller with these labels, in this namespace, match an override's source? */
export function sourceMatches(source: RateLimitSource, namespace: string, labels: Record<string, string>): boolean {
  if (source.namespace !== undefined && source.namespace !== namespace) return false;
  return labelsMatch(source.labels ?? {}, labels);
}

interface Workload { address: string; namespace: string; labels: Record<string, string> }

/** Every workload the control plane knows: service endpoints and WorkloadEntries. */
function knownWorkloads(objects: ConfigObject[], services: Service[]): Workload[] {
  const out: Workload[] = [];
  for (const s of services) for (const ep of s.endpoints) out.push({ address: ep.address, namespace: s.namespace, labels: ep.labels });
  for (const o of objects) {
    if (!isKind(o, 'WorkloadEntry')) continue;
    const we = o.spec;
    out.push({ address: we.address ?? '', namespace: o.namespace, labels: { ...o.labels, ...(we.labels ?? {}) } });
  }
  return out;
}

const rate = (a: RateLimitAmount): number => a.requests / a.perMs;

function describe(a: { requests: number; per: string }): string {
  return `${a.requests} per ${a.per}`;
}

export function buildRateLimits(objects: ConfigObject[], services: Map<string, Service>, issues: IssueList): RateLimitPolicy[] {
  // Listing every workload costs milliseconds on a large mesh; only rules need it.
  const workloads = objects.some((o) => o.kind === 'RateLimit') ? knownWorkloads(objects, [...services.values()]) : [];
  const byDestination = new Map<string, string>(); // host:port -> RateLimit key
  const byReplicaPort = new Map<string, string>(); // address|workload port -> RateLimit key
  const out: RateLimitPolicy[] = [];
  const rules = ofKind(objects, 'RateLimit').sort((a, b) => compareText(a.key, b.key));
  for (const obj of rules) {
    const spec = obj.spec;
    const host = resolveHost(spec.destination.host, obj.namespace);
    const svc = services.get(host);
    if (!svc) {
      issues.error(obj, ['spec', 'destination', 'host'], `destination host ${host} is not a known service (declare it with a ServiceEntry)`);
      continue;
    }
    const httpPorts = svc.ports.filter((p) => isHttpProtocol(p.protocol));
    let port = spec.destination.port === undefined ? undefined : svc.ports.find((p) => p.number === spec.destination.port);
    if (spec.destination.port !== undefined && !port) {
      issues.error(obj, ['spec', 'destination', 'port'], `service ${host} has no port ${spec.destination.port} (it has ${svc.ports.map((p) => p.number).join(', ')})`);
      continue;
    }
    if (port && !isHttpProtocol(port.protocol)) {
      issues.error(obj, ['spec', 'destination', 'port'], `port ${port.number} of ${host} is ${port.protocol}: rate limits apply to HTTP, HTTP2 and GRPC ports`);
      continue;
    }
    if (!port) {
      if (httpPorts.length !== 1) {
        issues.error(obj, ['spec', 'destination'], httpPorts.length === 0
          ? `service ${host} has no HTTP, HTTP2 or GRPC port to rate limit`
          : `service ${host} has several HTTP ports (${httpPorts.map((p) => p.number).join(', ')}); name one with destination.port`);
        continue;
      }
      port = httpPorts[0]!;
    }
    const destKey = `${host}:${port.number}`;
    const taken = byDestination.get(destKey);
    if (taken) {
      issues.error(obj, ['spec', 'destination'], `${destKey} already has a rate limit (${taken}); write one RateLimit per service port`);
      continue;
    }

    let limit: RateLimitPolicy['limit'];
    if (spec.limit) {
      const amount = { requests: spec.limit.requests, perMs: durationMs(spec.limit.per) };
      // A replica is one address and port that receives the service's calls (an inbound listener).
      const unique = new Map<string, { address: string; workloadPort: number }>();
      for (const ep of svc.endpoints) {
        const workloadPort = endpointPort(ep, port);
        unique.set(`${ep.address}|${workloadPort}`, { address: ep.address, workloadPort });
      }
      const targets = [...unique.values()].sort((a, b) => compareAddresses(a.address, b.address) || a.workloadPort - b.workloadPort);
      const clash = targets.map((r) => byReplicaPort.get(`${r.address}|${r.workloadPort}`)).find((k) => k !== undefined);
      if (clash) {
        issues.error(obj, ['spec', 'destination'], `the replicas of ${destKey} share their inbound port with a service limited by ${clash}; one service-wide limit per workload port`);
        continue;
      }
      if (targets.length === 0) {
        issues.warn(obj, ['spec', 'limit'], `${host} has no endpoints: no replica enforces this limit until it has some`);
      }
      const shares = splitLimit(amount.requests, amount.perMs, targets.length);
      limit = { ...amount, replicas: targets.map((r, i) => ({ ...r, share: shares[i]! })) };
      for (const r of targets) byReplicaPort.set(`${r.address}|${r.workloadPort}`, obj.key);
    }

    const overrides: RateLimitOverride[] = (spec.overrides ?? []).map((o, i) => {
      const amount = { requests: o.limit.requests, perMs: durationMs(o.limit.per) };
      const source: RateLimitSource = {
        ...(o.source.labels ? { labels: { ...o.source.labels } } : {}),
        ...(o.source.namespace !== undefined ? { namespace: o.source.namespace } : {}),
      };
      const addresses = [...new Set(workloads.filter((w) => sourceMatches(source, w.namespace, w.labels)).map((w) => w.address))].sort(compareAddresses);
      if (addresses.length === 0) {
        issues.warn(obj, ['spec', 'overrides', i, 'source'], 'selects no known workload: every matching caller gets the whole override limit (it is not split)');
      }
      if (spec.limit && limit && rate(amount) > rate(limit)) {
        issues.warn(obj, ['spec', 'overrides', i, 'limit'], `${describe(o.limit)} is more than the service-wide ${describe(spec.limit)}, which these callers' calls also count against at the callee: they get at most the service-wide limit`);
      }
      const shares = splitLimit(amount.requests, amount.perMs, Math.max(1, addresses.length));
      return {
        source,
        limit: amount,
        callers: addresses.map((address, j) => ({ address, share: shares[j]! })),
        otherCallers: shares[shares.length - 1]!,
      };
    });

    byDestination.set(destKey, obj.key);
    out.push({
      name: `${obj.namespace}/${obj.name}`,
      host,
      port: port.number,
      protocol: port.protocol,
      ...(limit ? { limit } : {}),
      overrides,
      shadow: spec.shadow ?? false,
      responseHeaders: spec.responseHeaders ?? false,
      origin: originOf(obj),
    });
  }
  return out.sort((a, b) => compareText(a.host, b.host) || a.port - b.port);
}
