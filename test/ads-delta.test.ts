// Delta (incremental) ADS, spoken to byte for byte by a raw client: per-resource versions,
// wildcard and named subscriptions, subscribe/unsubscribe mid-stream, removals, ACK/NACK,
// stale nonces, reconnect with initial_resource_versions, and endpoints resent for warming.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../control-plane/log.ts';
import { startControlPlane, type ControlPlane } from '../control-plane/server.ts';
import { CLUSTER, ENDPOINTS, LISTENER, ROUTE_CONFIG } from '../control-plane/translate/type-urls.ts';
import { ENVOY_NODE, GRPC_NODE, MESH, RATINGS_9080, vs } from './helpers/protocol-fixtures.ts';
import { deltaDecoded, deltaNames, RawDeltaClient } from './helpers/raw-ads.ts';
import { waitFor } from './helpers/wait.ts';

let dir: string;
let cp: ControlPlane;
const clients: RawDeltaClient[] = [];

function client(): RawDeltaClient {
  const c = new RawDeltaClient(cp.xdsAddress);
  clients.push(c);
  return c;
}

function writeFile(name: string, text: string) {
  const tmp = path.join(dir, `.${name}.tmp`);
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, path.join(dir, name));
}

const V1 = 'outbound|9080|v1|reviews.default.svc.cluster.local';
const V2 = 'outbound|9080|v2|reviews.default.svc.cluster.local';
const RATINGS = 'outbound|9080||ratings.default.svc.cluster.local';

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-delta-'));
  writeFile('mesh.yaml', MESH);
  writeFile('rules.yaml', vs(80, 20));
  cp = await startControlPlane({ configDir: dir, logger: silentLogger, debounceMs: 20 });
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await cp.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const stream = () => [...cp.ads.streams][0];

describe('delta ADS', () => {
  it('answers a wildcard cluster subscription with every cluster, each with its own version, and records the ACK', async () => {
    const c = client();
    c.send({ node: ENVOY_NODE, type_url: CLUSTER });
    const r = await c.next();
    expect(r.type_url).toBe(CLUSTER);
    expect(deltaNames(r)).toEqual(expect.arrayContaining([V1, V2, 'PassthroughCluster']));
    expect(r.removed_resources).toEqual([]);
    for (const res of r.resources) expect(res.version).toMatch(/^[0-9a-f]{16}$/);
    c.send({ type_url: CLUSTER, response_nonce: r.nonce });
    await waitFor(() => stream()?.status()[CLUSTER]?.ackedVersion === r.system_version_info, { timeoutMs: 3000 });
    expect(stream().protocol).toBe('delta');
  });

  it('subscribes and unsubscribes by name mid-stream; unknown names come back as removed', async () => {
    const c = client();
    c.send({ node: GRPC_NODE, type_url: CLUSTER, resource_names_subscribe: [V1] });
    const first = await c.next();
    expect(deltaNames(first)).toEqual([V1]);
    c.send({ type_url: CLUSTER, response_nonce: first.nonce, resource_names_subscribe: [V2, 'outbound|1|x|nosuch'] });
    const second = await c.next();
    expect(deltaNames(second)).toEqual([V2]);
    expect(second.removed_resources).toEqual(['outbound|1|x|nosuch']);
    c.send({ type_url: CLUSTER, response_nonce: second.nonce, resource_names_unsubscribe: [V1] });
    expect(await c.quiet(200)).toBe(true);
    // A change to the unsubscribed cluster's service is not sent; the subscribed one is.
    writeFile('mesh.yaml', MESH.replace('  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]', '  trafficPolicy: { connectionPool: { tcp: { maxConnections: 7 } } }\n  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]'));
    const pushed = await c.next();
    expect(pushed.type_url).toBe(CLUSTER);
    expect(deltaNames(pushed)).toEqual([V2]);
    expect((deltaDecoded(pushed)[0] as any).circuit_breakers.thresholds[0].max_connections).toBe(7);
  });

  it('sends only what changed, and removals, on a live update', async () => {
    const c = client();
    c.send({ node: ENVOY_NODE, type_url: CLUSTER });
    const cds = await c.next();
    c.send({ type_url: CLUSTER, response_nonce: cds.nonce });
    fs.appendFileSync(path.join(dir, 'mesh.yaml'), RATINGS_9080);
    const added = await c.next();
    expect(deltaNames(added)).toEqual([RATINGS]);
    expect(added.removed_resources).toEqual([]);
    c.send({ type_url: CLUSTER, response_nonce: added.nonce });
    writeFile('mesh.yaml', MESH);
    const removed = await c.next();
    expect(removed.resources).toEqual([]);
    expect(removed.removed_resources).toEqual([RATINGS]);
  });

  it('tracks a NACK, then clears it when the next version is ACKed', async () => {
    const c = client();
    c.send({ node: ENVOY_NODE, type_url: CLUSTER });
    const cds = await c.next();
    c.send({ type_url: CLUSTER, response_nonce: cds.nonce, error_detail: { code: 3, message: 'bad cluster' } });
    await waitFor(() => stream()?.status()[CLUSTER]?.nack?.message === 'bad cluster', { timeoutMs: 3000 });
    fs.appendFileSync(path.join(dir, 'mesh.yaml'), RATINGS_9080);
    const fix = await c.next();
    c.send({ type_url: CLUSTER, response_nonce: fix.nonce });
    await waitFor(() => stream().status()[CLUSTER].nack === undefined, { timeoutMs: 3000 });
    expect(stream().status()[CLUSTER].ackedVersion).toBe(fix.system_version_info);
  });

  it('honours a subscription change that carries a stale nonce', async () => {
    const c = client();
    c.send({ node: GRPC_NODE, type_url: CLUSTER, resource_names_subscribe: [V1] });
    await c.next();
    c.send({ type_url: CLUSTER, response_nonce: 'stale-1', resource_names_subscribe: [V2] });
    const r = await c.next();
    expect(deltaNames(r)).toEqual([V2]);
    // ...but it is not taken as an ACK of anything.
    expect(stream().status()[CLUSTER].ackedVersion).toBeUndefined();
  });

  it('on reconnect with initial_resource_versions sends only what changed while away, and removals', async () => {
    const c = client();
    c.send({ node: ENVOY_NODE, type_url: CLUSTER });
    const cds = await c.next();
    const versions = Object.fromEntries(cds.resources.map((r) => [r.name, r.version]));
    c.close();
    await waitFor(() => cp.ads.streams.size === 0, { timeoutMs: 3000 });
    // While away: v2 changes (a subset policy), and a cluster it claims to have disappears.
    writeFile('mesh.yaml', MESH.replace('{ name: v2, labels: { version: v2 } }', '{ name: v2, labels: { version: v2 }, trafficPolicy: { loadBalancer: { simple: RANDOM } } }'));
    await waitFor(() => JSON.stringify(cp.state().model).includes('RANDOM'), { timeoutMs: 3000 });
    const again = client();
    again.send({ node: ENVOY_NODE, type_url: CLUSTER, initial_resource_versions: { ...versions, 'outbound|9|gone|old.default.svc.cluster.local': 'abc' } });
    const r = await again.next();
    expect(deltaNames(r)).toEqual([V2]);
    expect(r.removed_resources).toEqual(['outbound|9|gone|old.default.svc.cluster.local']);
  });

  it('resends endpoints after clusters change, so Envoy can finish warming them', async () => {
    const c = client();
    c.send({ node: ENVOY_NODE, type_url: CLUSTER });
    const cds = await c.next();
    c.send({ type_url: CLUSTER, response_nonce: cds.nonce });
    c.send({ type_url: ENDPOINTS, resource_names_subscribe: [V1, V2] });
    const eds = await c.next();
    c.send({ type_url: ENDPOINTS, response_nonce: eds.nonce });
    writeFile('mesh.yaml', MESH.replace('host: reviews\n', 'host: reviews\n  trafficPolicy: { loadBalancer: { simple: RANDOM } }\n'));
    const cdsPush = await c.next();
    expect(cdsPush.type_url).toBe(CLUSTER);
    const edsPush = await c.next();
    expect(edsPush.type_url).toBe(ENDPOINTS);
    expect(deltaNames(edsPush).sort()).toEqual([V1, V2]);
  });

  it('converges on the last of several quick changes, and survives clients leaving mid-push', async () => {
    const target = 'reviews.default.svc.cluster.local:9080';
    const leaving = client();
    leaving.send({ node: GRPC_NODE, type_url: ROUTE_CONFIG, resource_names_subscribe: [target] });
    const c = client();
    c.send({ node: GRPC_NODE, type_url: ROUTE_CONFIG, resource_names_subscribe: [target] });
    let last = await c.next();
    await leaving.next();
    for (const w of [70, 60, 40, 30]) writeFile('rules.yaml', vs(w, 100 - w));
    leaving.close();
    const weights = (r: typeof last) => (deltaDecoded(r)[0] as any).virtual_hosts[0].routes[0].route.weighted_clusters.clusters.map((x: any) => x.weight);
    await waitFor(async () => {
      c.send({ type_url: ROUTE_CONFIG, response_nonce: last.nonce });
      last = await c.next(2000);
      return weights(last)[0] === 30;
    }, { timeoutMs: 5000 });
    expect(weights(last)).toEqual([30, 70]);
    await waitFor(() => cp.ads.streams.size === 1, { timeoutMs: 3000 });
  });

  it('serves listeners and routes by name to a gRPC client, in order', async () => {
    const c = client();
    const target = 'reviews.default.svc.cluster.local:9080';
    c.send({ node: GRPC_NODE, type_url: LISTENER, resource_names_subscribe: [target] });
    expect(deltaNames(await c.next())).toEqual([target]);
    c.send({ type_url: ROUTE_CONFIG, resource_names_subscribe: [target] });
    const rds = await c.next();
    expect((deltaDecoded(rds)[0] as any).virtual_hosts[0].routes[0].route.weighted_clusters.clusters.map((x: any) => x.weight)).toEqual([80, 20]);
    writeFile('rules.yaml', vs(50, 50));
    const pushed = await c.next();
    expect(pushed.type_url).toBe(ROUTE_CONFIG);
    expect((deltaDecoded(pushed)[0] as any).virtual_hosts[0].routes[0].route.weighted_clusters.clusters.map((x: any) => x.weight)).toEqual([50, 50]);
  });
});
