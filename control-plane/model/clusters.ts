// DestinationRules attach subsets and policies to services; every service port becomes one
// default cluster plus one cluster per subset.
import { type ConfigObject, isKind } from '../config/types.ts';
import { compareText, SortedOrder } from './compare.ts';
import { clusterName, resolveHost } from './hosts.ts';
import type { DestinationRuleIn } from './input.ts';
import { IssueList, originOf } from './issues.ts';
import { resolvePolicy } from './policy.ts';
import { endpointPort, labelsMatch } from './services.ts';
import type { ClientTls, ClusterPolicy, Endpoint, NetworkGateway, Service, UpstreamCluster } from './types.ts';
import { type MtlsContext, upstreamTls } from './upstream-tls.ts';
import { DEFAULT_MESH } from './mesh-identity.ts';
import { hostSpecificity, namespaceRank, ruleHostMatches } from './rule-hosts.ts';

export interface ResolvedRule {
  obj: ConfigObject<'DestinationRule'>;
  spec: DestinationRuleIn;
  host: string;
}

/**
 * The DestinationRule in force for each service, by service host (see rule-hosts.ts for how one is
 * chosen among wildcard and exact hosts). Two rules for one host in one namespace, and ports a
 * service does not have, are errors; a rule that matches no service yet is kept, with a warning.
 */
export function indexDestinationRules(objects: ConfigObject[], services: Map<string, Service>, issues: IssueList, rootNamespace: string = DEFAULT_MESH.rootNamespace): Map<string, ResolvedRule> {
  const valid: ResolvedRule[] = [];
  const seen = new Map<string, ResolvedRule>();
  for (const obj of objects) {
    if (!isKind(obj, 'DestinationRule')) continue;
    const spec = obj.spec;
    const host = resolveHost(spec.host, obj.namespace);
    const previous = seen.get(`${obj.namespace}/${host}`);
    if (previous) {
      issues.error(obj, ['spec', 'host'], `host ${host} already has DestinationRule ${previous.obj.key}; merge them into one`);
      continue;
    }
    const service = services.get(host);
    const checkPorts = (tp: DestinationRuleIn['trafficPolicy'], at: Array<string | number>) =>
      tp?.portLevelSettings?.forEach((s, i) => {
        if (service && !service.ports.some((p) => p.number === s.port.number)) {
          issues.error(obj, [...at, 'portLevelSettings', i, 'port', 'number'], `service ${host} has no port ${s.port.number}`);
        }
      });
    checkPorts(spec.trafficPolicy, ['spec', 'trafficPolicy']);
    spec.subsets?.forEach((sub, i) => checkPorts(sub.trafficPolicy, ['spec', 'subsets', i, 'trafficPolicy']));
    if (issues.rejected.has(obj.key)) continue;
    const rule = { obj, spec, host };
    seen.set(`${obj.namespace}/${host}`, rule);
    valid.push(rule);
  }
  const exact = new Map<string, ResolvedRule[]>();
  const wildcards: ResolvedRule[] = [];
  for (const r of valid) {
    if (r.host.startsWith('*')) wildcards.push(r);
    else exact.set(r.host.toLowerCase(), [...(exact.get(r.host.toLowerCase()) ?? []), r]);
  }
  const out = new Map<string, ResolvedRule>();
  const used = new Set<ResolvedRule>();
  for (const svc of services.values()) {
    const candidates = [...(exact.get(svc.host.toLowerCase()) ?? []), ...wildcards.filter((r) => ruleHostMatches(r.host, svc.host))];
    const rank = (r: ResolvedRule) => [namespaceRank(r.obj.namespace, svc.namespace, rootNamespace), -hostSpecificity(r.host)];
    let best: ResolvedRule | undefined;
    for (const r of candidates) {
      if (!best) best = r;
      else {
        const [a, b] = [rank(r), rank(best)];
        const cmp = a[0] - b[0] || a[1] - b[1];
        if (cmp < 0) best = r;
        else if (cmp === 0) {
          // Same host in two namespaces, neither the service's nor the root: Istio gives each to
          // its own namespace's callers; one set of clusters can carry only one of them.
          issues.warn(r.obj, ['spec', 'host'], `DestinationRule ${best.obj.key} for the same host applies instead: meshpilot applies one rule per service to every caller (Istio would apply this one to callers in namespace ${r.obj.namespace} only)`);
        }
      }
    }
    if (best) {
      out.set(svc.host, best);
      used.add(best);
    }
  }
  for (const r of valid) {
    if (used.has(r)) continue;
    if (![...services.values()].some((s) => ruleHostMatches(r.host, s.host))) {
      issues.warn(r.obj, ['spec', 'host'], `host ${r.host} matches no service yet: the rule applies once one is declared (a ServiceEntry or a Kubernetes Service)`);
    } else if (!r.host.startsWith('*')) {
      const winner = out.get(services.get(r.host)?.host ?? '');
      if (winner) issues.warn(r.obj, ['spec', 'host'], `DestinationRule ${winner.obj.key} applies to ${r.host} instead: Istio takes a rule in the service's namespace, then in the root namespace (${rootNamespace}), before one in another namespace, and meshpilot applies one rule per service to every caller (Istio would apply this one to callers in namespace ${r.obj.namespace})`);
    }
  }
  return out;
}

/** The gateways of the networks these endpoints are in, or undefined when none are in a network. */
function gatewaysFor(endpoints: readonly Endpoint[], gateways: Record<string, NetworkGateway[]>): Record<string, NetworkGateway[]> | undefined {
  const networks = [...new Set(endpoints.flatMap((e) => (e.network ? [e.network] : [])))].sort();
  if (networks.length === 0) return undefined;
  return Object.fromEntries(networks.map((n) => [n, (gateways[n] ?? []).map((g) => ({ address: g.address, port: g.port }))]));
}

/** The clusters of one service, and what they were built from. */
export interface Built {
  /** The networks of the service's endpoints, sorted. */
  networks: string[];
  rule: ConfigObject | undefined;
  /** The gateways of the service's networks, as text ('' when its endpoints are in none). */
  gateways: string;
  /** The PeerAuthentications and mesh settings (auto mTLS reads them), as text. */
  mtls: string;
  clusters: UpstreamCluster[];
}

/**
 * What buildClusters keeps between builds. A service's clusters depend only on the service, its
 * DestinationRule object and the gateways of its endpoints' networks; they are kept per service
 * object, so unchanged clusters stay the same objects.
 */
export class ClusterMemo {
  readonly built = new WeakMap<Service, Built>();
  readonly order = new SortedOrder<UpstreamCluster>((c) => c.name, (a, b) => compareText(a.name, b.name));
}

function gatewaysKey(networks: string[], gateways: Record<string, NetworkGateway[]>): string {
  return networks.length ? JSON.stringify(networks.map((n) => [n, (gateways[n] ?? []).map((g) => [g.address, g.port])])) : '';
}

/** A PASSTHROUGH load balancer sends each connection where the caller sent it, as resolution NONE does. */
function resolutionOf(svc: Service, policy: ClusterPolicy): Service['resolution'] {
  return policy.loadBalancer?.kind === 'passthrough' ? 'NONE' : svc.resolution;
}

function clustersOf(svc: Service, rule: ResolvedRule | undefined, gateways: Record<string, NetworkGateway[]>, mtls: MtlsContext): UpstreamCluster[] {
  const out: UpstreamCluster[] = [];
  const withGateways = (eps: Endpoint[]) => {
    const g = gatewaysFor(eps, gateways);
    return g ? { networkGateways: g } : {};
  };
  for (const port of svc.ports) {
    const withPort = (sel: Record<string, string>) =>
      svc.endpoints.filter((e) => labelsMatch(sel, e.labels)).map((e) => ({ ...e, port: endpointPort(e, port) }));
    const withTls = (subset: string | undefined, tls: ClientTls | undefined, eps: Array<Endpoint & { port: number }>) => {
      const t = upstreamTls(svc, port.number, subset, tls, eps, mtls);
      return t ? { tls: t } : {};
    };
    const policy = resolvePolicy(rule?.spec.trafficPolicy, undefined, port.number, mtls.mesh.localityLbSetting);
    const all = withPort({});
    out.push({
      name: clusterName('outbound', port.number, undefined, svc.host),
      host: svc.host,
      port,
      resolution: resolutionOf(svc, policy),
      policy,
      endpoints: all,
      ...withGateways(all),
      ...withTls(undefined, policy.tls, all),
      ...(rule ? { origin: originOf(rule.obj) } : {}),
    });
    rule?.spec.subsets?.forEach((subset, i) => {
      const subsetPolicy = resolvePolicy(rule.spec.trafficPolicy, subset.trafficPolicy, port.number, mtls.mesh.localityLbSetting);
      const endpoints = withPort(subset.labels ?? {});
      out.push({
        name: clusterName('outbound', port.number, subset.name, svc.host),
        host: svc.host,
        port,
        subset: subset.name,
        resolution: resolutionOf(svc, subsetPolicy),
        policy: subsetPolicy,
        endpoints,
        ...withGateways(endpoints),
        ...withTls(subset.name, subsetPolicy.tls, endpoints),
        origin: originOf(rule.obj, ['spec', 'subsets', i]),
      });
    });
  }
  return out;
}

export function buildClusters(services: Service[], rules: Map<string, ResolvedRule>, gateways: Record<string, NetworkGateway[]> = {}, memo = new ClusterMemo(), mtls: MtlsContext = { policies: [], mesh: DEFAULT_MESH }): UpstreamCluster[] {
  const out: UpstreamCluster[] = [];
  const mtlsKey = JSON.stringify([mtls.policies, mtls.mesh]);
  for (const svc of services) out.push(...serviceClusters(svc, rules.get(svc.host), gateways, memo, mtls, mtlsKey).clusters);
  return memo.order.sort(out);
}

/** One service's clusters, kept per service object (see ClusterMemo); in port, then subset order. */
export function serviceClusters(svc: Service, rule: ResolvedRule | undefined, gateways: Record<string, NetworkGateway[]>, memo: ClusterMemo, mtls: MtlsContext, mtlsKey = JSON.stringify([mtls.policies, mtls.mesh])): Built {
  let b = memo.built.get(svc);
  const networks = b?.networks ?? [...new Set(svc.endpoints.flatMap((e) => (e.network ? [e.network] : [])))].sort();
  const g = gatewaysKey(networks, gateways);
  if (!b || b.rule !== rule?.obj || b.gateways !== g || b.mtls !== mtlsKey) {
    b = { networks, rule: rule?.obj, gateways: g, mtls: mtlsKey, clusters: clustersOf(svc, rule, gateways, mtls) };
    memo.built.set(svc, b);
  }
  return b;
}
