// Locality load balancing without a network: which priority (and weight) each caller gives each
// endpoint, the schema's errors for localityLbSetting, the warnings, and the proxy group key.
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { checkResource } from '../control-plane/envoy/check.ts';
import { compile, formatIssue } from '../control-plane/model/compile.ts';
import type { Model } from '../control-plane/model/types.ts';
import { clusterLoadAssignment } from '../control-plane/translate/endpoints.ts';
import { TranslateMemo } from '../control-plane/translate/memo.ts';
import { localityLevel, localityMatches, topologyUse } from '../control-plane/translate/locality-priority.ts';
import { proxyFromNode, proxyGroupKey, type NodeInfo } from '../control-plane/translate/proxy.ts';
import { translate } from '../control-plane/translate/translate.ts';
import { CLUSTER, ENDPOINTS } from '../control-plane/translate/type-urls.ts';
import { silentLogger } from '../control-plane/log.ts';
import { SnapshotCache } from '../control-plane/xds/snapshot-cache.ts';
import { destinationRule, endpointsAt, serviceEntry, yamlDocs } from './helpers/yaml-builders.ts';

const HOST = 'svc.default.svc.cluster.local';

type Policy = Record<string, unknown>;

/** The ServiceEntry `svc` with one endpoint per `ip@locality[#network]` (labels by position), and a DestinationRule if given a traffic policy or subsets. */
function meshYaml(endpoints: string[], o: { trafficPolicy?: Policy; subsets?: Policy[]; labels?: Array<Record<string, string>>; location?: 'MESH_INTERNAL' } = {}): string {
  const se = serviceEntry({ name: 'svc', hosts: [HOST], location: o.location, ports: [{ number: 80, name: 'grpc', protocol: 'GRPC' }], endpoints: endpointsAt(endpoints, o.labels) });
  if (!o.trafficPolicy && !o.subsets) return se;
  return yamlDocs(se, destinationRule({ name: 'svc', host: HOST, trafficPolicy: o.trafficPolicy, subsets: o.subsets }));
}

const build = (text: string) => compile(parseConfigText('m.yaml', text));

/** The mesh most tests use: an internal service, and an optional DestinationRule traffic policy. */
const mesh = (endpoints: string[], trafficPolicy?: Policy) => build(meshYaml(endpoints, { trafficPolicy, location: 'MESH_INTERNAL' }));

/** `{ loadBalancer: { localityLbSetting } }` */
const lb = (localityLbSetting: Policy): Policy => ({ loadBalancer: { localityLbSetting } });
const OUTLIERS = { outlierDetection: { consecutive5xxErrors: 3 } };

function caller(locality: string, more: Partial<NodeInfo> = {}) {
  const [region, zone, sub_zone] = locality.split('/');
  return proxyFromNode({
    id: 'sidecar~10.9.9.9~c-1.default~default.svc.cluster.local',
    metadata: { GENERATOR: 'grpc', NAMESPACE: 'default', ...(more.metadata ?? {}) },
    locality: { ...(region ? { region } : {}), ...(zone ? { zone } : {}), ...(sub_zone ? { sub_zone } : {}) },
  });
}

type Eds = { endpoints: Array<{ locality: Record<string, string>; priority?: number; load_balancing_weight: number; lb_endpoints: Array<{ endpoint: { address: { socket_address: { address: string; port_value: number } } }; load_balancing_weight?: number }> }>; policy?: unknown };

function eds(model: Model, proxy: ReturnType<typeof caller>): Eds {
  const c = model.clusters.find((x) => x.name === `outbound|80||${HOST}`)!;
  const out = clusterLoadAssignment(c, proxy, new TranslateMemo());
  expect(checkResource(out as never)).toEqual([]);
  return out as unknown as Eds;
}

/** address -> priority, the compact view most assertions need. */
function priorities(e: Eds): Record<string, number> {
  const out: Record<string, number> = {};
  for (const g of e.endpoints) for (const l of g.lb_endpoints) out[l.endpoint.address.socket_address.address] = g.priority ?? 0;
  return out;
}

describe('locality priorities per caller', () => {
  const three = mesh(['10.0.0.1@r1/a', '10.0.0.2@r1/b', '10.0.0.3@r2/c']);

  it('orders same zone, same region, other regions, with weights and the overprovisioning factor stated', () => {
    const e = eds(three.model, caller('r1/a'));
    expect(priorities(e)).toEqual({ '10.0.0.1': 0, '10.0.0.2': 1, '10.0.0.3': 2 });
    expect(e.endpoints.every((g) => g.load_balancing_weight === 1)).toBe(true);
    expect(e.policy).toEqual({ overprovisioning_factor: 140 });
    expect(priorities(eds(three.model, caller('r2/c')))).toEqual({ '10.0.0.3': 0, '10.0.0.1': 1, '10.0.0.2': 1 });
  });

  it('skips empty levels so priorities stay contiguous', () => {
    const m = mesh(['10.0.0.2@r1/b', '10.0.0.3@r2/c', '10.0.0.4@r3/d']);
    expect(priorities(eds(m.model, caller('r1/a')))).toEqual({ '10.0.0.2': 0, '10.0.0.3': 1, '10.0.0.4': 1 });
    expect(priorities(eds(m.model, caller('r9/z')))).toEqual({ '10.0.0.2': 0, '10.0.0.3': 0, '10.0.0.4': 0 });
  });

  it('tells subzones apart', () => {
    const m = mesh(['10.0.0.1@r1/a/s1', '10.0.0.2@r1/a/s2', '10.0.0.3@r1/b/s1']);
    expect(priorities(eds(m.model, caller('r1/a/s1')))).toEqual({ '10.0.0.1': 0, '10.0.0.2': 1, '10.0.0.3': 2 });
    expect(localityLevel({ region: 'r1', zone: 'a', subzone: '' }, { region: 'r1', zone: 'a', subzone: 'x' }, [])).toBe(1);
  });

  it('gives a caller without a locality every endpoint at priority 0, as before', () => {
    const e = eds(three.model, caller(''));
    expect(priorities(e)).toEqual({ '10.0.0.1': 0, '10.0.0.2': 0, '10.0.0.3': 0 });
    expect(e.policy).toBeUndefined();
  });

  it('failover picks the next region; the others come after it', () => {
    const m = mesh(['10.0.0.1@r1/a', '10.0.0.2@r2/b', '10.0.0.3@r3/c'], { ...lb({ failover: [{ from: 'r1', to: 'r3' }] }), ...OUTLIERS });
    expect(m.errors).toEqual([]);
    expect(priorities(eds(m.model, caller('r1/a')))).toEqual({ '10.0.0.1': 0, '10.0.0.3': 1, '10.0.0.2': 2 });
    // The rule is for callers in r1 only.
    expect(priorities(eds(m.model, caller('r2/b')))).toEqual({ '10.0.0.2': 0, '10.0.0.1': 1, '10.0.0.3': 1 });
  });

  it('failoverPriority orders by the caller labels matched, most important key first', () => {
    const labelled = (localityLbSetting: Policy) =>
      build(meshYaml(['10.0.0.1@r1/a', '10.0.0.2@r1/a', '10.0.0.3@r1/a', '10.0.0.4@r2/a'], {
        labels: [{ tier: 'gold', rack: 'x' }, { tier: 'gold', rack: 'y' }, { tier: 'bronze', rack: 'x' }, { tier: 'gold', rack: 'x' }],
        trafficPolicy: { ...OUTLIERS, ...lb(localityLbSetting) },
      }));
    const state = labelled({ failoverPriority: ['tier', 'rack'] });
    expect(state.errors.map(formatIssue)).toEqual([]);
    const p = caller('r1/a', { metadata: { LABELS: { tier: 'gold', rack: 'x' } } });
    // Both labels: 0 (whatever the locality: without failover, Istio orders by labels only),
    // tier only: next, none: last.
    expect(priorities(eds(state.model, p))).toEqual({ '10.0.0.1': 0, '10.0.0.4': 0, '10.0.0.2': 1, '10.0.0.3': 2 });
    // The keys become part of the group key: callers with other tiers get other config.
    const other = caller('r1/a', { metadata: { LABELS: { tier: 'bronze', rack: 'x' } } });
    expect(priorities(eds(state.model, other))).toEqual({ '10.0.0.3': 0, '10.0.0.1': 1, '10.0.0.2': 1, '10.0.0.4': 1 });
    // With failover as well, the locality order applies within each label level.
    const both = labelled({ failoverPriority: ['tier', 'rack'], failover: [{ from: 'r1', to: 'r2' }] });
    expect(both.errors).toEqual([]);
    expect(priorities(eds(both.model, p))).toEqual({ '10.0.0.1': 0, '10.0.0.4': 1, '10.0.0.2': 2, '10.0.0.3': 3 });
    // key=value compares with that value instead of the caller's; a label both lack counts as a match.
    const fixed = labelled({ failoverPriority: ['tier=bronze', 'unset-label', 'rack'] });
    expect(fixed.errors).toEqual([]);
    expect(priorities(eds(fixed.model, p))).toEqual({ '10.0.0.3': 0, '10.0.0.1': 1, '10.0.0.2': 1, '10.0.0.4': 1 });
    expect(priorities(eds(fixed.model, other))).toEqual({ '10.0.0.3': 0, '10.0.0.1': 1, '10.0.0.2': 1, '10.0.0.4': 1 });
  });

  it('failoverPriority applies within a single locality too', () => {
    const state = build(meshYaml(['10.0.0.1@r1/a', '10.0.0.2@r1/a'], { labels: [{ version: 'v1' }, { version: 'v2' }], trafficPolicy: { ...OUTLIERS, ...lb({ failoverPriority: ['version'] }) } }));
    expect(priorities(eds(state.model, caller('r1/a', { metadata: { LABELS: { version: 'v2' } } })))).toEqual({ '10.0.0.2': 0, '10.0.0.1': 1 });
    expect(topologyUse(state.model).locality).toBe(true);
  });

  it('distribute sets locality weights for matching callers and leaves out localities it does not name', () => {
    const m = mesh(
      ['10.0.0.1@r1/a', '10.0.0.2@r1/a', '10.0.0.3@r1/b', '10.0.0.4@r2/c'],
      lb({ distribute: [{ from: 'r1/a/*', to: { 'r1/a/*': 70, 'r2/*': 30 } }] }),
    );
    expect(m.errors).toEqual([]);
    const e = eds(m.model, caller('r1/a'));
    expect(e.endpoints.map((g) => [g.locality, g.priority ?? 0, g.load_balancing_weight])).toEqual([
      [{ region: 'r1', zone: 'a' }, 0, 70],
      [{ region: 'r2', zone: 'c' }, 0, 30],
    ]);
    // A caller no `from` matches gets plain round robin over everything (no priorities either).
    expect(priorities(eds(m.model, caller('r2/c')))).toEqual({ '10.0.0.1': 0, '10.0.0.2': 0, '10.0.0.3': 0, '10.0.0.4': 0 });
    // Envoy needs locality-weighted balancing on the cluster to honour the weights.
    const cluster = translate(m.model, { ...caller('r1/a'), kind: 'envoy' })[CLUSTER].find((c) => c.name === `outbound|80||${HOST}`);
    expect(cluster?.common_lb_config).toEqual({ locality_weighted_lb_config: {} });
  });

  it('splits a wildcard weight over the localities it matches by their size', () => {
    const m = mesh(
      ['10.0.0.1@r1/a', '10.0.0.2@r1/b', '10.0.0.3@r1/b', '10.0.0.4@r1/b'],
      lb({ distribute: [{ from: '*', to: { 'r1/*': 100 } }] }),
    );
    expect(eds(m.model, caller('r1/a')).endpoints.map((g) => g.load_balancing_weight)).toEqual([25, 75]);
  });

  it('enabled: false gives every caller everything at priority 0', () => {
    const m = mesh(['10.0.0.1@r1/a', '10.0.0.2@r2/b'], lb({ enabled: false }));
    expect(priorities(eds(m.model, caller('r1/a')))).toEqual({ '10.0.0.1': 0, '10.0.0.2': 0 });
    expect(topologyUse(m.model)).toEqual({ locality: false, network: false });
  });

  it('a subset rule replaces the whole loadBalancer section, locality settings included', () => {
    const state = build(meshYaml(['10.0.0.1@r1/a', '10.0.0.2@r2/a'], {
      labels: [{ v: '1' }, { v: '1' }],
      trafficPolicy: lb({ enabled: false }),
      subsets: [{ name: 'v1', labels: { v: '1' }, trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBIN' } } }],
    }));
    const sub = state.model.clusters.find((c) => c.subset === 'v1')!;
    const top = state.model.clusters.find((c) => !c.subset)!;
    expect(top.policy.locality?.enabled).toBe(false);
    expect(sub.policy.locality).toBeUndefined();
    expect(priorities(clusterLoadAssignment(sub, caller('r1/a'), new TranslateMemo()) as unknown as Eds)).toEqual({ '10.0.0.1': 0, '10.0.0.2': 1 });
  });

  it('is deterministic and memoized per caller view', () => {
    const memo = new TranslateMemo();
    const a = clusterLoadAssignment(three.model.clusters[0], caller('r1/a'), memo);
    expect(clusterLoadAssignment(three.model.clusters[0], caller('r1/a'), memo)).toBe(a);
    const again = mesh(['10.0.0.3@r2/c', '10.0.0.2@r1/b', '10.0.0.1@r1/a']);
    expect(JSON.stringify(clusterLoadAssignment(again.model.clusters[0], caller('r1/a'), memo))).toBe(JSON.stringify(a));
  });

  it('keeps priorities within Envoy\'s limit of 128, the levels past it sharing the last', () => {
    const eps = Array.from({ length: 140 }, (_, i) => `10.1.${Math.floor(i / 200)}.${(i % 200) + 1}@r1/a`);
    const keys = Array.from({ length: 139 }, (_, i) => `k${i}`);
    // Endpoint i matches the caller on its first i keys: one level per endpoint.
    const labels = eps.map((_, i) => Object.fromEntries(keys.slice(0, i).map((k) => [k, 'x'])));
    const state = build(meshYaml(eps, { labels, trafficPolicy: { ...OUTLIERS, ...lb({ failoverPriority: keys }) } }));
    expect(state.errors).toEqual([]);
    const p = caller('r1/a', { metadata: { LABELS: Object.fromEntries(keys.map((k) => [k, 'x'])) } });
    const e = eds(state.model, p); // checkResource inside: priority <= 128
    const prios = e.endpoints.map((g) => g.priority ?? 0);
    expect(Math.max(...prios)).toBe(128);
    expect(new Set(prios).size).toBe(129);
  });

  it('matches locality patterns the way Istio does', () => {
    const l = { region: 'r1', zone: 'a', subzone: 's' };
    expect(['*', 'r1', 'r1/*', 'r1/a', 'r1/a/*', 'r1/a/s'].map((p) => localityMatches(l, p))).toEqual([true, true, true, true, true, true]);
    expect(['r2', 'r1/b', 'r1/b/*', 'r1/a/t'].map((p) => localityMatches(l, p))).toEqual([false, false, false, false]);
  });
});

describe('snapshot cache groups', () => {
  it('shares one snapshot between callers in the same locality, and gives other localities their own EDS', () => {
    const cache = new SnapshotCache(silentLogger);
    cache.setModel(mesh(['10.0.0.1@r1/a', '10.0.0.2@r1/b']).model);
    const a1 = cache.snapshotFor(caller('r1/a'));
    const a2 = cache.snapshotFor({ ...caller('r1/a'), id: 'another-pod' });
    const b = cache.snapshotFor(caller('r1/b'));
    expect(a2).toBe(a1);
    expect(b).not.toBe(a1);
    const name = `outbound|80||${HOST}`;
    expect(b[ENDPOINTS].get(name)!.hash).not.toBe(a1[ENDPOINTS].get(name)!.hash);
    // Clusters do not depend on the caller: the very same encoded resource is shared.
    expect(b[CLUSTER].get(name)).toBe(a1[CLUSTER].get(name));
    // Without several localities, callers anywhere share one snapshot.
    cache.setModel(mesh(['10.0.0.1@r1/a', '10.0.0.2@r1/a']).model);
    expect(cache.snapshotFor(caller('r1/b'))).toBe(cache.snapshotFor(caller('r2/z')));
  });
});

describe('proxy group key', () => {
  const key = (model: Model, p: ReturnType<typeof caller>) => proxyGroupKey(p, false, new Set(), topologyUse(model));

  it('includes the caller locality only when some cluster spans several localities', () => {
    const one = mesh(['10.0.0.1@r1/a', '10.0.0.2@r1/a']);
    expect(key(one.model, caller('r1/a'))).toBe(key(one.model, caller('r2/b')));
    const two = mesh(['10.0.0.1@r1/a', '10.0.0.2@r1/b']);
    expect(key(two.model, caller('r1/a'))).not.toBe(key(two.model, caller('r1/b')));
    // Callers in the same locality still share.
    expect(key(two.model, caller('r1/a'))).toBe(key(two.model, caller('r1/a')));
  });
});

describe('localityLbSetting validation', () => {
  const dr = (lb: string) => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: x}
spec:
  host: a
  trafficPolicy:
    loadBalancer:
      localityLbSetting:
${lb.replace(/^/gm, '        ')}
`;
  const problems = (text: string) => parseConfigText('t.yaml', text).errors.map((e) => `${e.line}:${e.col} ${e.path}: ${e.message}`);

  it('rejects distribute with failover, weights not adding up to 100, bad patterns, same-region failover', () => {
    expect(problems(dr('distribute:\n- from: r1/*\n  to: {"r1/*": 60, "r2/*": 30}\nfailover:\n- {from: r1, to: r1}\n- {from: r1/a, to: r2}'))).toEqual([
      '11:11 spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to: the weights add up to 90; they must add up to 100',
      '12:9 spec.trafficPolicy.loadBalancer.localityLbSetting.failover: distribute and failover cannot both be set (Istio forbids it): choose weights or an order',
      '13:26 spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0].to: failover must name two different regions',
      '14:18 spec.trafficPolicy.loadBalancer.localityLbSetting.failover[1].from: failover names a region only (no "/", "*" or spaces)',
    ]);
    expect(problems(dr('distribute:\n- from: "r1/*/a"\n  to: {"r1/a": 100}'))).toEqual([
      '10:17 spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].from: a wildcard is only allowed as the whole last part, e.g. "region/*" or "region/zone/*"',
    ]);
    expect(problems(dr('enabled: false\nfailoverPriority: [topology.istio.io/network]'))).toEqual([
      '9:18 spec.trafficPolicy.loadBalancer.localityLbSetting.enabled: locality load balancing is disabled here, so distribute, failover and failoverPriority would never apply',
    ]);
  });

  it('accepts localityLbSetting without an algorithm', () => {
    expect(problems(dr('failover: [{from: r1, to: r2}]'))).toEqual([]);
  });

  it('warns when failover is set without outlierDetection', () => {
    const m = mesh(['10.0.0.1@r1/a', '10.0.0.2@r2/b'], lb({ failover: [{ from: 'r1', to: 'r2' }] }));
    expect(m.warnings.map(formatIssue)).toEqual([
      'm.yaml:31:9 spec.trafficPolicy.loadBalancer.localityLbSetting.failover: failover configured without outlierDetection: Envoy sidecars never eject unhealthy hosts, so their traffic leaves a locality only when its endpoints are removed (proxyless gRPC clients still fail over when a locality\'s connections fail) (DestinationRule default/svc)',
    ]);
    const withOd = mesh(['10.0.0.1@r1/a', '10.0.0.2@r2/b'], { ...OUTLIERS, ...lb({ failover: [{ from: 'r1', to: 'r2' }] }) });
    expect(withOd.warnings.filter((w) => w.path.includes('localityLbSetting'))).toEqual([]);
  });
});
