// A real proxyless gRPC client (@grpc/grpc-js-xds) whose xDS server goes away mid-traffic: two
// meshpilot replicas on the same rule files behind a "Service" (a TCP forwarder on a fixed
// loopback port, the one address in the client's bootstrap). The Service is repointed to replica B
// and replica A stops; the client's ADS stream breaks, reconnects through the Service to B, and B
// brings it back to the very versions A had given it. Calls run in a loop the whole time: none
// fails and none lands anywhere but where the rules say (end-user jason -> v2, everyone else -> v1).
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { startControlPlane, type ControlPlane } from '../control-plane/server.ts';
import { TYPE_ORDER } from '../control-plane/translate/type-urls.ts';
import { startBackends } from './helpers/backends.ts';
import { JASON_TO_V2, REVIEWS, vsFor } from './helpers/bookinfo-rules.ts';
import { targetOf, writeMeshDir } from './helpers/mesh-files.ts';
import { startTcpProxy } from './helpers/tcp-proxy.ts';
import { Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';
import { createXdsClient } from './helpers/xds-client.ts';
import { httpRoute, to } from './helpers/yaml-builders.ts';

const TARGET = targetOf('reviews');
const JASON = { 'end-user': 'jason' };
const teardown = new Teardown();
afterEach(() => teardown.run());

/** The acked version per type of the stream of node `id` on a control plane, if it has all four. */
function acked(cp: ControlPlane, id: string): Record<string, string> | undefined {
  const s = [...cp.ads.streams].find((x) => x.proxy?.id === id);
  const status = s?.status();
  if (!status || !TYPE_ORDER.every((t) => status[t]?.ackedVersion)) return undefined;
  return Object.fromEntries(TYPE_ORDER.map((t) => [t, status[t]!.ackedVersion!]));
}

describe('xDS server failover', () => {
  it('a proxyless gRPC client moves from one replica to another through the Service: no call fails, its config stays the same', async () => {
    const set = await startBackends([{ service: 'reviews', version: 'v1' }, { service: 'reviews', version: 'v2' }]);
    teardown.add(() => set.stop());
    const dir = await mkdtemp(path.join(os.tmpdir(), 'meshpilot-failover-'));
    teardown.add(() => rm(dir, { recursive: true, force: true }));
    await writeMeshDir(dir, set.backends, vsFor(REVIEWS, JASON_TO_V2, httpRoute([to(REVIEWS, 'v1')])));
    const start = async () => {
      const cp = await startControlPlane({ configDir: dir, xdsListen: '127.0.0.1:0', adminListen: null, debounceMs: 20, logLevel: process.env.MESHPILOT_TEST_LOG_LEVEL ?? 'error' });
      let stopped = false;
      const stop = async () => {
        if (stopped) return;
        stopped = true;
        await cp.stop();
      };
      teardown.add(stop);
      return { cp, stop };
    };
    const a = await start();
    const b = await start();
    const service = await startTcpProxy(a.cp.xdsAddress);
    teardown.add(() => service.close());
    const client = createXdsClient({ xdsAddress: service.address });
    teardown.add(() => client.close());

    await waitFor(async () => (await client.call(TARGET, JASON)).version === 'v2' && (await client.call(TARGET)).version === 'v1', { timeoutMs: 15_000, description: 'routes from replica A' });
    await waitFor(() => acked(a.cp, client.nodeId) !== undefined, { description: 'the client acked every type on A' });
    const fromA = acked(a.cp, client.nodeId)!;

    // Calls in a loop, half of them as jason, until told to stop.
    const outcome = { calls: 0, wrong: 0, failed: {} as Record<string, number> };
    let running = true;
    const worker = async (n: number) => {
      for (let i = n; running; i += 4) {
        const asJason = i % 2 === 0;
        try {
          const r = await client.call(TARGET, asJason ? JASON : {});
          if (r.version !== (asJason ? 'v2' : 'v1')) outcome.wrong++;
        } catch (e) {
          const code = grpc.status[(e as grpc.ServiceError).code] ?? 'UNKNOWN';
          outcome.failed[code] = (outcome.failed[code] ?? 0) + 1;
        }
        outcome.calls++;
      }
    };
    const workers = [0, 1, 2, 3].map(worker);
    teardown.add(async () => {
      running = false;
      await Promise.all(workers);
    });
    await waitFor(() => outcome.calls >= 200, { timeoutMs: 20_000, description: 'calls through A' });

    // The Service now sends new connections to B, and A goes away (its connections with it).
    service.retarget(b.cp.xdsAddress);
    const callsBefore = outcome.calls;
    await a.stop();
    await waitFor(() => {
      const now = acked(b.cp, client.nodeId);
      return now !== undefined && TYPE_ORDER.every((t) => now[t] === fromA[t]);
    }, { timeoutMs: 20_000, description: 'the client reconnected to B and acked the versions A had given it' });
    const switchedAt = outcome.calls;
    await waitFor(() => outcome.calls >= switchedAt + 300, { timeoutMs: 20_000, description: 'calls after the move' });
    running = false;
    await Promise.all(workers);

    expect(service.opened[b.cp.xdsAddress]).toBeGreaterThanOrEqual(1);
    expect(outcome.failed).toEqual({});
    expect(outcome.wrong).toBe(0);
    expect(acked(b.cp, client.nodeId)).toEqual(fromA);
    console.log(`failover: ${outcome.calls} calls (${callsBefore} before A stopped, ${switchedAt - callsBefore} while the client moved, ${outcome.calls - switchedAt} after), 0 failed, 0 misrouted; versions kept ${JSON.stringify(Object.values(fromA))}`);
  });
});
