// End to end: locality failover and weights with real proxyless gRPC clients (@grpc/grpc-js-xds)
// and real backends. The service has endpoints in three zones across two regions (r1/a, r1/b,
// r2/c); each backend answers with its zone as its "version", so counting replies by version
// says where calls landed. Nothing here inspects generated xDS.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startBackend, startBackends, type Backend, type BackendSet } from './helpers/backends.ts';
import { replaceFile } from './helpers/mesh-files.ts';
import { startTestMesh, Teardown, type TestMesh } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';
import { serviceEntry } from './helpers/yaml-builders.ts';

const HOST = 'zoned.default.svc.cluster.local';
const TARGET = `xds:///${HOST}:9080`;
const ZONES: Record<string, string> = { 'r1-a': 'r1/a', 'r1-b': 'r1/b', 'r2-c': 'r2/c' };

const teardown = new Teardown();
afterEach(() => teardown.run());

/** Backends: two in r1/a, one in r1/b, one in r2/c; the version names the zone. */
async function startZones(): Promise<BackendSet> {
  const set = await startBackends([
    { service: 'zoned', version: 'r1-a' },
    { service: 'zoned', version: 'r1-a' },
    { service: 'zoned', version: 'r1-b' },
    { service: 'zoned', version: 'r2-c' },
  ]);
  teardown.add(() => set.stop());
  return set;
}

/** The service `zoned` on these backends, each in the zone its version names. */
function zonedEntry(endpoints: Array<Record<string, unknown>>): string {
  return serviceEntry({ name: 'zoned', hosts: [HOST], location: 'MESH_INTERNAL', endpoints });
}

function zonesEntry(backends: readonly Backend[]): string {
  return zonedEntry(backends.map((b) => ({ address: '127.0.0.1', ports: { grpc: b.port }, locality: ZONES[b.version], labels: { zone: b.version } })));
}

function destinationRule(localityLbSetting: string): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: zoned, namespace: default }
spec:
  host: ${HOST}
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
      localityLbSetting: ${localityLbSetting}
`;
}

async function startMesh(files: Record<string, string>): Promise<TestMesh> {
  const mesh = await startTestMesh(teardown, { backends: [], files, prefix: 'e2e-locality' });
  expect(mesh.cp.state().errors.map((e) => e.message), 'the rules must be accepted').toEqual([]);
  return mesh;
}

const only = (zone: string, n: number) => ({ [zone]: n });

describe('locality failover with proxyless gRPC clients', () => {
  it('keeps calls in the caller zone, fails over zone -> region -> other region as endpoints go, and comes back', async () => {
    const zones = await startZones();
    const all = zones.backends;
    const mesh = await startMesh({ 'zoned.yaml': zonesEntry(all) });
    const inA = mesh.client({ locality: { region: 'r1', zone: 'a' } });
    const inC = mesh.client({ locality: { region: 'r2', zone: 'c' } });
    const nowhere = mesh.client();

    expect(await inA.split(TARGET, 200)).toEqual(only('r1-a', 200));
    expect(await inC.split(TARGET, 100)).toEqual(only('r2-c', 100));
    // A caller without a locality is spread over every endpoint (round robin over all four).
    const spread = await nowhere.split(TARGET, 400);
    expect(Object.keys(spread).sort()).toEqual(['r1-a', 'r1-b', 'r2-c']);

    const step = async (backends: readonly Backend[], zone: string) => {
      await replaceFile(mesh.dir, 'zoned.yaml', zonesEntry(backends));
      await waitFor(async () => (await inA.split(TARGET, 20))[zone] === 20, { description: `calls from r1/a land in ${zone}` });
      expect(await inA.split(TARGET, 200)).toEqual(only(zone, 200));
    };
    await step(all.filter((b) => b.version !== 'r1-a'), 'r1-b'); // zone a gone: same region next
    await step(all.filter((b) => b.version === 'r2-c'), 'r2-c'); // region r1 gone: other region
    await step(all, 'r1-a'); // everything back: home again
  });

  it('fails over without a config change when the zone-a backends stop, and returns when they are back', async () => {
    const zones = await startZones();
    const mesh = await startMesh({ 'zoned.yaml': zonesEntry(zones.backends) });
    const inA = mesh.client({ locality: { region: 'r1', zone: 'a' } });
    expect(await inA.split(TARGET, 100)).toEqual(only('r1-a', 100));

    const zoneA = zones.backends.filter((b) => b.version === 'r1-a');
    await Promise.all(zoneA.map((b) => b.stop()));
    // gRPC's priority policy moves on when every connection of a priority fails; calls that were
    // on their way when the servers went away may fail, so wait for the switch, then count.
    await waitFor(async () => (await inA.split(TARGET, 20))['r1-b'] === 20, { timeoutMs: 20_000, description: 'calls fail over to r1/b' });
    expect(await inA.split(TARGET, 200)).toEqual(only('r1-b', 200));

    // The same addresses come back: gRPC reconnects (with backoff) and priority 0 wins again.
    const back = await Promise.all(zoneA.map((b) => startBackend({ service: 'zoned', version: 'r1-a', port: b.port })));
    teardown.add(() => Promise.all(back.map((b) => b.stop())).then(() => undefined));
    await waitFor(async () => (await inA.split(TARGET, 20))['r1-a'] === 20, { timeoutMs: 30_000, intervalMs: 200, description: 'calls return to r1/a' });
  });

  it('distribute: spreads a caller over the zones by weight (80/20), and never to a zone it does not name', async () => {
    const zones = await startZones();
    const mesh = await startMesh({
      'zoned.yaml': zonesEntry(zones.backends),
      'rule.yaml': destinationRule(`{ distribute: [{ from: "r1/a/*", to: { "r1/a/*": 80, "r1/b/*": 20 } }] }`),
    });
    const inA = mesh.client({ locality: { region: 'r1', zone: 'a' } });
    const n = 1000;
    const counts = await inA.split(TARGET, n);
    expect(Object.keys(counts).sort()).toEqual(['r1-a', 'r1-b']);
    // 80% of 1000: standard deviation sqrt(1000 * 0.8 * 0.2) ~ 12.6 calls, so 0.74-0.86 is ~5 sigma.
    const share = counts['r1-a'] / n;
    expect(share).toBeGreaterThan(0.74);
    expect(share).toBeLessThan(0.86);
    // A caller the rule is not for (r2/c) gets every zone at one priority: no preference at all.
    const inC = mesh.client({ locality: { region: 'r2', zone: 'c' } });
    expect(Object.keys(await inC.split(TARGET, 400)).sort()).toEqual(['r1-a', 'r1-b', 'r2-c']);
  });
});

/**
 * A stand-in east-west gateway: a TCP forwarder on 127.0.0.1 to the one backend of its network
 * (a real one routes by SNI; here there is one backend behind it). Counts the connections it
 * carried, so a test can tell calls went through it.
 */
async function startGateway(to: Backend): Promise<{ port: number; connections: () => number; stop: () => Promise<void> }> {
  let count = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((inbound) => {
    count++;
    const outbound = net.connect(to.port, '127.0.0.1');
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    connections: () => count,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('networks with proxyless gRPC clients', () => {
  it('reaches another network only through its gateway, and only after its own network', async () => {
    const set = await startBackends([
      { service: 'zoned', version: 'net1' },
      { service: 'zoned', version: 'net2' },
    ]);
    teardown.add(() => set.stop());
    const net1 = set.get('zoned', 'net1');
    const net2 = set.get('zoned', 'net2');
    const gateway = await startGateway(net2);
    teardown.add(() => gateway.stop());
    // The net2 endpoint's own address is one no caller can reach (TEST-NET-1): calls that arrive
    // at all went through the gateway.
    const entry = (withNet1: boolean) =>
      zonedEntry([
        ...(withNet1 ? [{ address: '127.0.0.1', ports: { grpc: net1.port }, locality: 'r1/a', network: 'network1' }] : []),
        { address: '192.0.2.77', ports: { grpc: 9 }, locality: 'r1/a', network: 'network2' },
      ]);
    const mesh = await startTestMesh(teardown, {
      backends: [],
      files: { 'zoned.yaml': entry(true) },
      prefix: 'e2e-network',
      networkGateways: { network2: [{ address: '127.0.0.1', port: gateway.port }] },
    });
    expect(mesh.cp.state().errors).toEqual([]);
    const inNet1 = mesh.client({ locality: { region: 'r1', zone: 'a' }, network: 'network1' });
    expect(await inNet1.split(TARGET, 100)).toEqual(only('net1', 100));
    expect(gateway.connections()).toBe(0);

    await replaceFile(mesh.dir, 'zoned.yaml', entry(false));
    await waitFor(async () => (await inNet1.split(TARGET, 20)).net2 === 20, { description: 'calls go through the network2 gateway' });
    expect(await inNet1.split(TARGET, 100)).toEqual(only('net2', 100));
    expect(gateway.connections()).toBeGreaterThan(0);
  });
});
