// Two ADS servers in one process share nothing: each owns its subscription pool (handed to its
// streams), so a subscription held on one is neither seen nor released by the other.
import { afterEach, describe, expect, it } from 'vitest';
import { loadDirectory } from '../control-plane/config/load.ts';
import { silentLogger } from '../control-plane/log.ts';
import { compile } from '../control-plane/model/compile.ts';
import { CLUSTER } from '../control-plane/translate/type-urls.ts';
import { AdsServer } from '../control-plane/xds/ads-server.ts';
import { SnapshotCache } from '../control-plane/xds/snapshot-cache.ts';
import { GRPC_NODE } from './helpers/protocol-fixtures.ts';
import { RawAdsClient } from './helpers/raw-ads.ts';
import { waitFor } from './helpers/wait.ts';

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

async function server(cache: SnapshotCache): Promise<{ ads: AdsServer; address: string }> {
  const ads = new AdsServer(cache, silentLogger);
  const address = await ads.listen('127.0.0.1:0');
  closers.push(() => ads.stop());
  return { ads, address };
}

function client(address: string): RawAdsClient {
  const c = new RawAdsClient(address, { 'grpc.use_local_subchannel_pool': 1 });
  closers.push(() => c.close());
  return c;
}

describe('AdsServer subscription pools', () => {
  it('are per server: two servers in one process share no subscription', async () => {
    const cache = new SnapshotCache(silentLogger);
    cache.setModel(compile(loadDirectory('examples/bookinfo')).model);
    const a = await server(cache);
    const b = await server(cache);
    expect(a.ads.subscriptions).not.toBe(b.ads.subscriptions);
    const names = ['outbound|9080||reviews.default.svc.cluster.local'];

    const onA = client(a.address);
    onA.send({ node: GRPC_NODE, type_url: CLUSTER, resource_names: names });
    expect((await onA.next()).resources.length).toBe(1);
    expect(a.ads.subscriptions.size().subscriptions).toBe(1);
    expect(b.ads.subscriptions.size()).toEqual({ subscriptions: 0, byBytes: 0, names: 0 });

    const onB = client(b.address);
    onB.send({ node: GRPC_NODE, type_url: CLUSTER, resource_names: names });
    expect((await onB.next()).resources.length).toBe(1);
    expect(b.ads.subscriptions.size().subscriptions).toBe(1);

    // The same names on both, held twice: closing the stream on one releases only that one's.
    onA.close();
    await waitFor(() => a.ads.streams.size === 0, { timeoutMs: 5000 });
    expect(a.ads.subscriptions.size()).toEqual({ subscriptions: 0, byBytes: 0, names: 0 });
    expect(b.ads.subscriptions.size().subscriptions).toBe(1);
  });
});
