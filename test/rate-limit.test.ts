// Rate limits: how a limit is split into per-replica token buckets, that the buckets of all
// replicas add up to the limit as written, where each part is enforced, and that proxyless gRPC
// never receives a rate limit filter.
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { checkResource } from '../control-plane/envoy/check.ts';
import { compareAddresses, splitLimit } from '../control-plane/model/rate-limit.ts';
import { compile, formatIssue, type MeshState } from '../control-plane/model/compile.ts';
import { proxyFromNode, type Proxy } from '../control-plane/translate/proxy.ts';
import { translate } from '../control-plane/translate/translate.ts';
import { TYPE_ORDER } from '../control-plane/translate/type-urls.ts';

type Obj = Record<string, any>;
const RL = 'envoy.filters.http.local_ratelimit';

function mesh(yaml: string): MeshState {
  return compile(parseConfigText('rl.yaml', yaml));
}

function sidecar(ip: string, labels: Record<string, string>, namespace = 'default', kind: 'envoy' | 'grpc' = 'envoy'): Proxy {
  return proxyFromNode({
    id: `sidecar~${ip}~pod-${ip}.${namespace}~${namespace}.svc.cluster.local`,
    metadata: { NAMESPACE: namespace, LABELS: labels, ...(kind === 'grpc' ? { GENERATOR: 'grpc' } : {}) },
  });
}

function resources(state: MeshState, proxy: Proxy): Obj[] {
  const res = translate(state.model, proxy);
  const all = TYPE_ORDER.flatMap((t) => res[t]) as Obj[];
  for (const r of all) expect(checkResource(r as any), String(r.name ?? r.cluster_name)).toEqual([]);
  return all;
}

/** The local rate limit config on the inbound filter chain for `port`, if any. */
function inboundLimit(all: Obj[], port: number): Obj | undefined {
  const vi = all.find((r) => r.name === 'virtualInbound')!;
  const chain = vi.filter_chains.find((c: Obj) => c.filter_chain_match?.destination_port === port);
  const filters: Obj[] = chain?.filters[0].typed_config.http_filters ?? [];
  return filters.find((f) => f.name === RL)?.typed_config;
}

/** The per-virtual-host local rate limit config on the outbound route config for `port`. */
function outboundLimit(all: Obj[], port: number, host: string): Obj | undefined {
  const rc = all.find((r) => r['@type'].endsWith('RouteConfiguration') && r.name === String(port));
  const vh = rc?.virtual_hosts.find((v: Obj) => v.name === `${host}:${port}`);
  return vh?.typed_per_filter_config?.[RL];
}

/** Requests per second a bucket admits in the long run. */
const perSecond = (c: Obj): number => (c.token_bucket.tokens_per_fill * 1000) / msOf(c.token_bucket.fill_interval);
const msOf = (d: string): number => Math.round(Number(d.replace(/s$/, '')) * 1000);

function serviceEntry(name: string, ips: string[], opts: { labels?: Record<string, string>; protocol?: string; namespace?: string } = {}): string {
  const labels = JSON.stringify(opts.labels ?? { app: name });
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: ${opts.namespace ?? 'default'}}
spec:
  hosts: [${name}.${opts.namespace ?? 'default'}.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: ${opts.protocol ?? 'HTTP'}}]
  endpoints:
${ips.map((ip) => `  - {address: ${ip}, labels: ${labels}}`).join('\n')}
---
`;
}

const ips = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}.${i + 1}`);

describe('splitting a limit over replicas', () => {
  it('10 per second over 3 replicas: 4 + 3 + 3, none empty, same interval', () => {
    const shares = splitLimit(10, 1000, 3);
    expect(shares).toEqual([{ tokens: 4, intervalMs: 1000 }, { tokens: 3, intervalMs: 1000 }, { tokens: 3, intervalMs: 1000 }]);
    expect(shares.reduce((s, x) => s + x.tokens, 0)).toBe(10);
  });

  it('2 per second over 5 replicas: the interval stretches to 3s so nobody gets 0 and the total stays 2/s', () => {
    // A bucket holds whole tokens, so 0.4 per second per replica cannot be written. Rounding each
    // share up to 1 per second would admit 5/s (2.5 times the limit); rounding down to 0 would
    // block 3 of 5 replicas entirely. Instead: the smallest whole multiple of 1s in which every
    // replica gets a token is 3s (ceil(5 / 2)); its 6 tokens are split 2, 1, 1, 1, 1.
    const shares = splitLimit(2, 1000, 5);
    expect(shares).toEqual([2, 1, 1, 1, 1].map((tokens) => ({ tokens, intervalMs: 3000 })));
    const rate = shares.reduce((s, x) => s + x.tokens / x.intervalMs, 0) * 1000;
    expect(rate).toBeCloseTo(2, 10);
  });

  it('always gives every replica at least one token, shares within 1 of each other, and exactly the limit in total', () => {
    for (let requests = 1; requests <= 40; requests++) {
      for (let replicas = 1; replicas <= 40; replicas++) {
        const perMs = 50 * ((requests + replicas) % 7 + 1);
        const shares = splitLimit(requests, perMs, replicas);
        expect(shares).toHaveLength(replicas);
        const interval = shares[0]!.intervalMs;
        expect(interval % perMs).toBe(0);
        expect(shares.every((s) => s.intervalMs === interval && s.tokens >= 1)).toBe(true);
        const tokens = shares.map((s) => s.tokens);
        expect(Math.max(...tokens) - Math.min(...tokens)).toBeLessThanOrEqual(1);
        // Sum of rates == requests / perMs, compared exactly: sum(tokens) * perMs == requests * interval.
        expect(tokens.reduce((a, b) => a + b, 0) * perMs).toBe(requests * interval);
        if (requests >= replicas) expect(interval).toBe(perMs);
      }
    }
    expect(splitLimit(5, 1000, 0)).toEqual([]);
  });

  it('orders replicas by address so the larger shares go to the same replicas every time', () => {
    expect(['10.0.0.19', '10.0.0.9', 'b.example', '10.0.0.29', 'a.example'].sort(compareAddresses)).toEqual(['10.0.0.9', '10.0.0.19', '10.0.0.29', 'a.example', 'b.example']);
  });
});

const LIMIT_10 = `apiVersion: traffic.meshpilot.io/v1alpha1
kind: RateLimit
metadata: {name: ratings}
spec:
  destination: {host: ratings}
  limit: {requests: 10, per: 1s}
`;

describe('service-wide limit at the callee', () => {
  it('the inbound buckets of all callee replicas add up to the limit, whatever the replica count', () => {
    for (const n of [1, 2, 3, 7, 10, 13, 25]) {
      const state = mesh(serviceEntry('ratings', ips('10.0.3', n)) + LIMIT_10);
      expect(state.errors.map(formatIssue)).toEqual([]);
      const configs = ips('10.0.3', n).map((ip) => inboundLimit(resources(state, sidecar(ip, { app: 'ratings' })), 9080)!);
      expect(configs.every((c) => c && c.token_bucket.max_tokens >= 1)).toBe(true);
      expect(configs.reduce((s, c) => s + perSecond(c), 0)).toBeCloseTo(10, 9);
    }
  });

  it('is enforced (429, 100% enabled and enforced) and a workload that is not a replica gets nothing', () => {
    const state = mesh(serviceEntry('ratings', ips('10.0.3', 3)) + serviceEntry('reviews', ['10.0.1.1']) + LIMIT_10);
    const c = inboundLimit(resources(state, sidecar('10.0.3.1', { app: 'ratings' })), 9080)!;
    expect(c).toMatchObject({
      stat_prefix: 'rate_limit.default.ratings',
      status: { code: 'TooManyRequests' },
      token_bucket: { max_tokens: 4, tokens_per_fill: 4, fill_interval: '1s' },
      filter_enabled: { default_value: { numerator: 100 } },
      filter_enforced: { default_value: { numerator: 100 } },
    });
    expect(c.enable_x_ratelimit_headers).toBeUndefined();
    const reviews = resources(state, sidecar('10.0.1.1', { app: 'reviews' }));
    expect(JSON.stringify(reviews)).not.toContain(RL);
  });

  it('shadow mode counts but never rejects; responseHeaders asks for x-ratelimit-* headers', () => {
    const state = mesh(serviceEntry('ratings', ['10.0.3.1']) + LIMIT_10 + '  shadow: true\n  responseHeaders: true\n');
    const c = inboundLimit(resources(state, sidecar('10.0.3.1', { app: 'ratings' })), 9080)!;
    expect(c.filter_enabled.default_value.numerator).toBe(100);
    expect(c.filter_enforced.default_value.numerator ?? 0).toBe(0);
    expect(c.enable_x_ratelimit_headers).toBe('DRAFT_VERSION_03');
  });

  it('follows the replica count as endpoints come and go', () => {
    const three = inboundLimit(resources(mesh(serviceEntry('ratings', ips('10.0.3', 3)) + LIMIT_10), sidecar('10.0.3.2', { app: 'ratings' })), 9080)!;
    const five = inboundLimit(resources(mesh(serviceEntry('ratings', ips('10.0.3', 5)) + LIMIT_10), sidecar('10.0.3.2', { app: 'ratings' })), 9080)!;
    expect(three.token_bucket.max_tokens).toBe(3);
    expect(five.token_bucket.max_tokens).toBe(2);
  });
});

const OVERRIDES = `apiVersion: traffic.meshpilot.io/v1alpha1
kind: RateLimit
metadata: {name: ratings}
spec:
  destination: {host: ratings}
  limit: {requests: 5000, per: 1s}
  overrides:
  - source: {labels: {app: reviews}}
    limit: {requests: 10, per: 1s}
  - source: {namespace: batch}
    limit: {requests: 3, per: 1s}
`;

describe('per-source overrides at the caller', () => {
  const state = mesh(
    serviceEntry('ratings', ips('10.0.3', 2))
    + serviceEntry('reviews', ips('10.0.1', 2), { labels: { app: 'reviews' } })
    + serviceEntry('jobs', ips('10.0.9', 4), { namespace: 'batch' })
    + serviceEntry('productpage', ['10.0.0.9'])
    + OVERRIDES,
  );

  it('builds without errors', () => {
    expect(state.errors.map(formatIssue)).toEqual([]);
  });

  it('the buckets of the selected caller replicas add up to the override, on the destination\'s virtual host', () => {
    const reviews = ips('10.0.1', 2).map((ip) => outboundLimit(resources(state, sidecar(ip, { app: 'reviews' })), 9080, 'ratings.default.svc.cluster.local')!);
    expect(reviews.map((c) => c.token_bucket.max_tokens)).toEqual([5, 5]);
    expect(reviews[0]).toMatchObject({ stat_prefix: 'rate_limit.default.ratings.override_0', filter_enforced: { default_value: { numerator: 100 } } });
    // 3 per second over 4 batch workloads: 6 tokens per 2s, split 2, 2, 1, 1.
    const batch = ips('10.0.9', 4).map((ip) => outboundLimit(resources(state, sidecar(ip, { app: 'jobs' }, 'batch')), 9080, 'ratings.default.svc.cluster.local')!);
    expect(batch.map((c) => [c.token_bucket.max_tokens, c.token_bucket.fill_interval])).toEqual([[2, '2s'], [2, '2s'], [1, '2s'], [1, '2s']]);
    expect(batch.reduce((s, c) => s + perSecond(c), 0)).toBeCloseTo(3, 9);
    expect(batch.every((c) => c.token_bucket.max_tokens >= 1)).toBe(true);
  });

  it('the caller\'s outbound connection manager carries the filter switched off, before the router', () => {
    const all = resources(state, sidecar('10.0.1.1', { app: 'reviews' }));
    const listener = all.find((r) => r.name === '0.0.0.0_9080')!;
    const filters: Obj[] = listener.filter_chains[0].filters[0].typed_config.http_filters;
    expect(filters.map((f) => f.name)).toEqual([RL, 'envoy.filters.http.router']);
    expect(filters[0]!.typed_config).toEqual({ '@type': expect.stringContaining('LocalRateLimit'), stat_prefix: 'rate_limit' });
    // Other destinations on the same port get no per-host config, so the filter stays off for them.
    expect(outboundLimit(all, 9080, 'productpage.default.svc.cluster.local')).toBeUndefined();
  });

  it('callers that match no override get no outbound limit (only the callee\'s service-wide one)', () => {
    const all = resources(state, sidecar('10.0.0.9', { app: 'productpage' }));
    expect(outboundLimit(all, 9080, 'ratings.default.svc.cluster.local')).toBeUndefined();
    expect(JSON.stringify(all.filter((r) => r.name === '0.0.0.0_9080'))).not.toContain(RL);
  });

  it('one bucket per destination however many routes and matches the virtual service has', () => {
    const vs = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - match: [{headers: {end-user: {exact: jason}}}, {uri: {prefix: /v2}}]
    route: [{destination: {host: ratings}}]
  - route: [{destination: {host: ratings}}]
---
`;
    const s = mesh(serviceEntry('ratings', ips('10.0.3', 2)) + serviceEntry('reviews', ips('10.0.1', 2)) + vs + OVERRIDES);
    const all = resources(s, sidecar('10.0.1.1', { app: 'reviews' }));
    const rc = all.find((r) => r.name === '9080')!;
    const vh = rc.virtual_hosts.find((v: Obj) => v.name === 'ratings.default.svc.cluster.local:9080');
    expect(vh.routes).toHaveLength(3);
    expect(JSON.stringify(vh.routes)).not.toContain(RL);
    expect(vh.typed_per_filter_config[RL].token_bucket.max_tokens).toBe(5);
  });

  it('the rate limit filter comes before the fault filter', () => {
    const vs = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - fault: {abort: {httpStatus: 503, percentage: {value: 50}}}
    route: [{destination: {host: ratings}}]
---
`;
    const s = mesh(serviceEntry('ratings', ips('10.0.3', 2)) + serviceEntry('reviews', ips('10.0.1', 2)) + vs + OVERRIDES);
    expect(s.errors.map(formatIssue)).toEqual([]);
    const listener = resources(s, sidecar('10.0.1.1', { app: 'reviews' })).find((r) => r.name === '0.0.0.0_9080')!;
    const names = listener.filter_chains[0].filters[0].typed_config.http_filters.map((f: Obj) => f.name);
    expect(names).toEqual([RL, 'envoy.filters.http.fault', 'envoy.filters.http.router']);
  });
});

describe('proxyless gRPC', () => {
  const state = mesh(
    serviceEntry('ratings', ['10.0.3.1', '10.0.1.1'], { protocol: 'GRPC' })
    + serviceEntry('reviews', ips('10.0.1', 2), { labels: { app: 'reviews' } })
    + OVERRIDES,
  );

  it('gets no local_ratelimit anywhere, even as a callee replica matching an override', () => {
    const grpc = resources(state, sidecar('10.0.1.1', { app: 'reviews' }, 'default', 'grpc'));
    expect(grpc.length).toBeGreaterThan(0);
    expect(JSON.stringify(grpc)).not.toContain('local_ratelimit');
    expect(JSON.stringify(grpc)).not.toContain('LocalRateLimit');
    // The same workload as an Envoy sidecar does get both parts: the test can tell them apart.
    const envoy = resources(state, sidecar('10.0.1.1', { app: 'reviews' }));
    expect(inboundLimit(envoy, 9080)).toBeDefined();
    expect(outboundLimit(envoy, 9080, 'ratings.default.svc.cluster.local')).toBeDefined();
  });

  it('says so in a warning on the rule, and rate-limited gRPC calls get RESOURCE_EXHAUSTED from Envoy', () => {
    expect(state.warnings.map(formatIssue)).toContainEqual(expect.stringMatching(/^rl\.yaml:\d+:\d+ spec\.destination: gRPC has no rate limit filter: this rule is left out for proxyless gRPC clients.*\(RateLimit default\/ratings\)$/));
    const c = inboundLimit(resources(state, sidecar('10.0.3.1', { app: 'ratings' })), 9080)!;
    expect(c.rate_limited_as_resource_exhausted).toBe(true);
  });
});

describe('cross-object errors name file, line and field', () => {
  it('reports unknown hosts and ports and leaves the rule out', () => {
    const rl = (name: string, dest: string) => `apiVersion: traffic.meshpilot.io/v1alpha1
kind: RateLimit
metadata: {name: ${name}}
spec:
  destination: ${dest}
  limit: {requests: 1, per: 1s}
---
`;
    const state = mesh(serviceEntry('ratings', ['10.0.3.1']) + rl('a', '{host: nowhere}') + rl('b', '{host: ratings, port: 9999}'));
    expect(state.errors.map(formatIssue)).toEqual([
      'rl.yaml:16:23 spec.destination.host: destination host nowhere.default.svc.cluster.local is not a known service (declare it with a ServiceEntry) (RateLimit default/a)',
      'rl.yaml:23:38 spec.destination.port: service ratings.default.svc.cluster.local has no port 9999 (it has 9080) (RateLimit default/b)',
    ]);
    expect(state.model.rateLimits).toEqual([]);
    expect(state.rejected).toEqual(['RateLimit/default/a', 'RateLimit/default/b']);
  });

  it('warns about an override that selects no workload', () => {
    const state = mesh(serviceEntry('ratings', ['10.0.3.1']) + OVERRIDES);
    expect(state.errors).toEqual([]);
    expect(state.warnings.map(formatIssue)).toEqual([
      'rl.yaml:19:5 spec.overrides[0].source: selects no known workload: every matching caller gets the whole override limit (it is not split) (RateLimit default/ratings)',
      'rl.yaml:21:5 spec.overrides[1].source: selects no known workload: every matching caller gets the whole override limit (it is not split) (RateLimit default/ratings)',
    ]);
  });
});
