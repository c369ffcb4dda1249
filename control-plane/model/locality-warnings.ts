// Locality and network settings that are valid but will not do what they seem to: failover without
// outlier detection, and endpoints in a network no other network can reach (no gateway).
import { type ConfigObject, isKind } from '../config/types.ts';
import type { PolicyIn, TrafficPolicyIn, WorkloadEntryIn } from './input.ts';
import type { FieldPath, IssueSink } from './issues.ts';
import type { NetworkGateway, Service, ServiceLookup } from './types.ts';

function warnPolicy(obj: ConfigObject, p: PolicyIn | undefined, withOd: boolean, path: FieldPath, issues: IssueSink): void {
  const l = p?.loadBalancer?.localityLbSetting;
  if (!l || l.enabled === false || withOd || p?.outlierDetection) return;
  const what = l.failover?.length ? 'failover' : l.failoverPriority?.length ? 'failoverPriority' : undefined;
  if (!what) return;
  issues.warn(
    obj,
    [...path, 'loadBalancer', 'localityLbSetting', what],
    `${what} configured without outlierDetection: Envoy sidecars never eject unhealthy hosts, so their traffic leaves a locality only when its endpoints are removed (proxyless gRPC clients still fail over when a locality's connections fail)`,
  );
}

/** `hosts`: the services the rule is in force for. */
export function warnLocality(obj: ConfigObject<'DestinationRule'>, hosts: readonly string[], services: ServiceLookup, issues: IssueSink): void {
  const spec = obj.spec;
  if (!hosts.some((h) => services.has(h))) return;
  const topOd = spec.trafficPolicy?.outlierDetection !== undefined;
  const each = (tp: TrafficPolicyIn | undefined, od: boolean, path: FieldPath) => {
    const here = od || tp?.outlierDetection !== undefined;
    warnPolicy(obj, tp, here, path, issues);
    tp?.portLevelSettings?.forEach((s, i) => warnPolicy(obj, s, here, [...path, 'portLevelSettings', i], issues));
  };
  each(spec.trafficPolicy, false, ['spec', 'trafficPolicy']);
  spec.subsets?.forEach((s, i) => each(s.trafficPolicy, topOd, ['spec', 'subsets', i, 'trafficPolicy']));
}

/**
 * When endpoints span several networks, one in a network without a gateway cannot be reached from
 * the others: it is left out of their config, and said so here on the rule that declares it.
 */
export function warnUnreachableNetworks(objects: ConfigObject[], services: Map<string, Service>, gateways: Record<string, NetworkGateway[]>, issues: IssueSink): void {
  // Without an address a workload is reached only through its network's gateway.
  const addressless = (obj: ConfigObject, we: WorkloadEntryIn, path: FieldPath) => {
    if (we.address === undefined && we.network && !(gateways[we.network]?.length)) {
      issues.warn(obj, [...path, 'network'], `no address, and network ${we.network} has no gateway: no caller can reach this workload`);
    }
  };
  for (const obj of objects) {
    if (isKind(obj, 'WorkloadEntry')) addressless(obj, obj.spec, ['spec']);
    if (isKind(obj, 'ServiceEntry')) obj.spec.endpoints?.forEach((e, i) => addressless(obj, e, ['spec', 'endpoints', i]));
  }
  const networks = new Set([...services.values()].flatMap((s) => s.endpoints.flatMap((e) => (e.network ? [e.network] : []))));
  if (networks.size < 2) return;
  const check = (obj: ConfigObject, we: WorkloadEntryIn, path: FieldPath) => {
    if (we.network && !(gateways[we.network]?.length)) {
      issues.warn(obj, [...path, 'network'], `network ${we.network} has no gateway: callers in other networks do not get this endpoint`);
    }
  };
  for (const obj of objects) {
    if (isKind(obj, 'WorkloadEntry')) check(obj, obj.spec, ['spec']);
    if (isKind(obj, 'ServiceEntry')) obj.spec.endpoints?.forEach((e, i) => check(obj, e, ['spec', 'endpoints', i]));
  }
}
