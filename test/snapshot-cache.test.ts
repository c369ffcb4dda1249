// The cache never hands out a resource that fails Envoy's check: the proxy keeps the last good
// version, and the failure is reported against the rules behind the resource.
import { describe, expect, it } from 'vitest';
import { loadDirectory } from '../control-plane/config/load.ts';
import { silentLogger } from '../control-plane/log.ts';
import { compile } from '../control-plane/model/compile.ts';
import { proxyFromNode } from '../control-plane/translate/proxy.ts';
import { translate } from '../control-plane/translate/translate.ts';
import { CLUSTER } from '../control-plane/translate/type-urls.ts';
import { SnapshotCache } from '../control-plane/xds/snapshot-cache.ts';

// A translator bug on demand: when set, the named cluster comes out with a misspelled field.
const bug = { cluster: '' };
const buggyTranslate: typeof translate = (model, proxy) => {
  const out = translate(model, proxy);
  if (!bug.cluster) return out;
  return { ...out, [CLUSTER]: out[CLUSTER].map((c) => (c.name === bug.cluster ? { ...c, conect_timeout: '1s' } : c)) };
};

describe('SnapshotCache', () => {
  it('keeps the last good version of a resource that fails the check and names the rules behind it', () => {
    const model = compile(loadDirectory('examples/bookinfo')).model;
    const cache = new SnapshotCache(silentLogger, { translate: buggyTranslate });
    const proxy = proxyFromNode({ id: 'sidecar~10.9.9.9~pp-1.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default' } });
    const name = 'outbound|9080|v1|reviews.default.svc.cluster.local';
    cache.setModel(model);
    const good = cache.snapshotFor(proxy)[CLUSTER].get(name);
    expect(good).toBeDefined();

    bug.cluster = name;
    cache.setModel(model);
    const after = cache.snapshotFor(proxy)[CLUSTER].get(name);
    expect(after?.hash).toBe(good!.hash);
    expect(cache.rejected).toHaveLength(1);
    expect(cache.rejected[0].violations.join()).toMatch(/conect_timeout/);
    expect(cache.rejected[0].rules).toEqual(expect.arrayContaining(['DestinationRule/default/reviews', 'ServiceEntry/default/reviews', 'VirtualService/default/reviews']));
    bug.cluster = '';
  });
});

describe('SnapshotCache answers across model generations', () => {
  it('keeps the answer (version, nonce) of a subscription none of whose resources changed, and answers the others with only what changed', async () => {
    const { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { ROUTE_CONFIG } = await import('../control-plane/translate/type-urls.ts');
    const dir = mkdtempSync(join(tmpdir(), 'meshpilot-answers-'));
    try {
      cpSync('examples/bookinfo', dir, { recursive: true });
      const cache = new SnapshotCache(silentLogger);
      const proxy = proxyFromNode({ id: 'grpc-client', metadata: { GENERATOR: 'grpc', NAMESPACE: 'default' } });
      const first = compile(loadDirectory(dir));
      cache.setModel(first.model);
      const reviews = 'reviews.default.svc.cluster.local:9080';
      const ratings = 'ratings.default.svc.cluster.local:9080';
      const ask = (names: string[], since?: string) => {
        const sorted = [...names].sort();
        return cache.sotwAnswer(cache.snapshotFor(proxy), ROUTE_CONFIG, { wildcard: false, names: sorted, namesKey: sorted.join('\n'), since, nameSet: new Set(names) });
      };
      const both1 = ask([reviews, ratings]);
      const ratings1 = ask([ratings]);
      expect(both1.resources.map((r) => r.name)).toEqual([ratings, reviews]);

      const file = join(dir, 'reviews-canary.yaml');
      writeFileSync(file, readFileSync(file, 'utf8').replace('weight: 90', 'weight: 70').replace('weight: 10', 'weight: 30'));
      cache.setModel(compile(loadDirectory(dir), first.accepted).model);
      const ratings2 = ask([ratings]);
      expect(ratings2).toBe(ratings1);
      const both2 = ask([reviews, ratings]);
      expect(both2.version).not.toBe(both1.version);
      expect(both2.resources.map((r) => r.name)).toEqual([ratings, reviews]);
      const partial = ask([reviews, ratings], both1.version);
      expect(partial.version).toBe(both2.version);
      expect(partial.resources.map((r) => r.name)).toEqual([reviews]);
      expect(JSON.stringify(partial.resources[0].json)).toContain('"weight":70');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('EndpointIps', () => {
  it('tells when an address appears or disappears, not when services carrying it change', async () => {
    const { EndpointIps } = await import('../control-plane/xds/proxy-groups.ts');
    const svc = (host: string, ...addresses: string[]) => ({ host, endpoints: addresses.map((address) => ({ address })) }) as never;
    const ips = new EndpointIps();
    const a1 = svc('a', '10.0.0.1', '10.0.0.2');
    const b1 = svc('b', '10.0.0.2');
    expect(ips.update([a1, b1])).toBe(true);
    expect(ips.has('10.0.0.2')).toBe(true);
    // New objects with the same addresses (say, new ports): nothing appeared or went.
    expect(ips.update([svc('a', '10.0.0.1', '10.0.0.2'), b1])).toBe(false);
    // 10.0.0.2 leaves a but stays in b.
    const a3 = svc('a', '10.0.0.1');
    expect(ips.update([a3, b1])).toBe(false);
    expect(ips.update([a3])).toBe(true);
    expect(ips.has('10.0.0.2')).toBe(false);
    expect(ips.update([a3, svc('c', '10.0.0.3')])).toBe(true);
    expect(ips.has('10.0.0.3')).toBe(true);
  });
});

describe('SnapshotCache partial answers after untouched generations', () => {
  it('sends only what changed to a stream whose answer is older than the versions the cache remembers', async () => {
    const { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { ENDPOINTS } = await import('../control-plane/translate/type-urls.ts');
    const dir = mkdtempSync(join(tmpdir(), 'meshpilot-partial-'));
    try {
      cpSync('examples/bookinfo', dir, { recursive: true });
      const cache = new SnapshotCache(silentLogger);
      const proxy = proxyFromNode({ id: 'grpc-client', metadata: { GENERATOR: 'grpc', NAMESPACE: 'default' } });
      const names = ['outbound|9080||details.default.svc.cluster.local', 'outbound|9080||ratings.default.svc.cluster.local'];
      const ask = (since?: string, held?: ReturnType<SnapshotCache['sotwAnswer']>) =>
        cache.sotwAnswer(cache.snapshotFor(proxy), ENDPOINTS, { wildcard: false, names, namesKey: names.join('\n'), since, nameSet: new Set(names), held });
      let state = compile(loadDirectory(dir));
      cache.setModel(state.model);
      const first = ask();
      expect(first.resources.map((r) => r.name)).toEqual(names);
      // Three changes that leave these endpoints alone: nobody asks for them meanwhile.
      const edit = (file: string, from: string, to: string) => {
        const path = join(dir, file);
        writeFileSync(path, readFileSync(path, 'utf8').replace(from, to));
        state = compile(loadDirectory(dir), state.accepted);
        cache.setModel(state.model);
      };
      edit('reviews-canary.yaml', 'weight: 90', 'weight: 80');
      edit('reviews-canary.yaml', 'weight: 80', 'weight: 70');
      edit('services.yaml', 'ports: { grpc: 19082 }', 'ports: { grpc: 19182 }');
      const part = ask(first.version, first);
      expect(part.version).not.toBe(first.version);
      expect(part.resources.map((r) => r.name)).toEqual(names.filter((n) => n.includes('ratings')));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('shared subscriptions', () => {
  it('are let go when the last stream holding them closes or changes its names', async () => {
    const { AdsStream } = await import('../control-plane/xds/ads-stream.ts');
    const { SubscriptionPool } = await import('../control-plane/xds/subscriptions.ts');
    const { PlainDiscoveryRequest } = await import('../control-plane/xds/wire.ts');
    const { CLUSTER, ROUTE_CONFIG } = await import('../control-plane/translate/type-urls.ts');
    const cache = new SnapshotCache(silentLogger);
    cache.setModel(compile(loadDirectory('examples/bookinfo')).model);
    const pool = new SubscriptionPool();
    const before = pool.size();
    const routes = ['reviews.default.svc.cluster.local:9080', 'ratings.default.svc.cluster.local:9080'];
    // A hand-read request, as ACKs arrive: its names' bytes index the subscription too.
    const encoded = (names: string[]) => Buffer.concat(names.map((n) => Buffer.concat([Buffer.from([0x1a, Buffer.byteLength(n)]), Buffer.from(n)])));
    const streams = [0, 1, 2].map((i) => {
      const s = new AdsStream(cache, () => {}, silentLogger, { subscriptions: pool });
      s.onRequest({ node: { id: `grpc-${i}`, metadata: { fields: { GENERATOR: { string_value: 'grpc' } } } }, type_url: CLUSTER, resource_names: ['outbound|9080||reviews.default.svc.cluster.local'] });
      const req = PlainDiscoveryRequest.decode(Buffer.concat([encoded(routes), Buffer.from([0x22, ROUTE_CONFIG.length]), Buffer.from(ROUTE_CONFIG)]))!;
      s.onRequest(req);
      return s;
    });
    const held = pool.size();
    expect(held.subscriptions - before.subscriptions).toBe(2);
    expect(held.byBytes - before.byBytes).toBe(1);
    // One stream narrows its routes: a third subscription; the others keep the shared one.
    streams[0]!.onRequest({ type_url: ROUTE_CONFIG, resource_names: [routes[0]!], response_nonce: '' });
    expect(pool.size().subscriptions - before.subscriptions).toBe(3);
    for (const s of streams) s.close();
    expect(pool.size()).toEqual(before);
  });
});
