// Operations, end to end with real @grpc/grpc-js-xds clients: /debug/proxies sync status, a NACK
// the client really sends (and its message), /debug/config_dump, /metrics moving with pushes and
// NACKs, and `meshpilot wait` as a user runs it (child process).
//
// The NACK is genuine: a ServiceEntry listing the same endpoint twice passes meshpilot's checks
// and Envoy's schema (Envoy keeps the first of duplicate addresses and does not NACK; see
// envoyproxy/envoy#23445), but grpc-js-xds rejects the ClusterLoadAssignment ("address is a
// duplicate of another address in the same endpoint"). If meshpilot starts de-duplicating or
// rejecting such endpoints, the NACK step below fails and needs another real gap.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackends, type BackendSet } from './helpers/backends.ts';
import { getJson, metricValue, scrape, startAdmin } from './helpers/admin-http.ts';
import { replaceFile, serviceEntriesYaml, targetOf } from './helpers/mesh-files.ts';
import { startTestMesh, Teardown, type TestMesh } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';
import type { XdsClient } from './helpers/xds-client.ts';

const BIN = path.resolve('bin/meshpilot.js');
const RATINGS_TARGET = targetOf('ratings');
const REVIEWS_TARGET = targetOf('reviews');
const DUPLICATE = 'address is a duplicate of another address in the same endpoint';

const teardown = new Teardown();
let backends: BackendSet;
let mesh: TestMesh;
let admin: string;
/** Calls ratings: its EDS gets the duplicate endpoint. */
let productpage: XdsClient;
/** Calls reviews only: never sees the bad ratings endpoints. */
let reviewer: XdsClient;

async function meshpilot(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, ...args], { timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

async function proxies(query = ''): Promise<any> {
  const r = await getJson(`${admin}/debug/proxies${query}`);
  expect(r.status).toBe(200);
  return r.body;
}

async function proxy(id: string): Promise<any> {
  return (await proxies(`?proxy=${encodeURIComponent(id)}`)).proxies[0];
}

beforeAll(async () => {
  backends = await startBackends([
    { service: 'reviews', version: 'v1' },
    { service: 'ratings', version: 'v1' },
  ]);
  teardown.add(() => backends.stop());
  mesh = await startTestMesh(teardown, { backends: backends.backends, files: {}, prefix: 'ops' });
  admin = await startAdmin(teardown, mesh.cp);
  productpage = mesh.client({ labels: { app: 'productpage', version: 'v1' } });
  reviewer = mesh.client({ labels: { app: 'reviews-caller', version: 'v1' } });
  expect((await productpage.call(RATINGS_TARGET)).service).toBe('ratings');
  expect((await reviewer.call(REVIEWS_TARGET)).service).toBe('reviews');
}, 30_000);

afterAll(() => teardown.run());

describe('operations with real proxyless gRPC clients', () => {
  it('lists each proxy with its identity and every type SYNCED', async () => {
    await waitFor(async () => (await proxies()).summary.SYNCED === 2, { timeoutMs: 10_000, description: 'both proxies SYNCED' });
    const body = await proxies();
    expect(body.summary).toMatchObject({ proxies: 2, SYNCED: 2, STALE: 0, NACKED: 0 });
    const p = body.proxies.find((x: any) => x.id === productpage.nodeId);
    expect(p).toMatchObject({ kind: 'grpc', protocol: 'sotw', namespace: 'default', labels: { app: 'productpage' }, state: 'SYNCED' });
    expect(Object.keys(p.types).sort()).toEqual(['cds', 'eds', 'lds', 'rds']);
    for (const t of Object.values(p.types) as any[]) {
      expect(t.state).toBe('SYNCED');
      expect(t.ackedVersion).toBe(t.sentVersion);
    }
    // Filters: a label selector, and one proxy by id.
    expect((await proxies('?selector=app=productpage')).proxies.map((x: any) => x.id)).toEqual([productpage.nodeId]);
    expect((await proxies('?selector=app!=productpage')).proxies.map((x: any) => x.id)).toEqual([reviewer.nodeId]);
    expect((await proxies(`?proxy=${encodeURIComponent(reviewer.nodeId)}`)).proxies).toHaveLength(1);
    expect((await getJson(`${admin}/debug/proxies?selector=${encodeURIComponent('a=b=c')}`)).status).toBe(400);
  });

  it('dumps what one proxy was sent, decoded, and 404s an unknown proxy', async () => {
    const dump = (await getJson(`${admin}/debug/config_dump?proxy=${encodeURIComponent(productpage.nodeId)}`)).body;
    expect(dump.proxy.id).toBe(productpage.nodeId);
    const cla = dump.types.eds.resources[0];
    expect(cla.name).toBe('outbound|9080||ratings.default.svc.cluster.local');
    expect(cla.resource.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value).toBe(backends.get('ratings', 'v1').port);
    expect(dump.types.lds.resources[0].resource['@type']).toBe('type.googleapis.com/envoy.config.listener.v3.Listener');
    const missing = await getJson(`${admin}/debug/config_dump?proxy=nobody`);
    expect(missing.status).toBe(404);
    expect(missing.body.error).toMatch(/no connected proxy has id "nobody"/);
    expect((await getJson(`${admin}/debug/config_dump`)).status).toBe(400);
  });

  it('shows a rule the client rejects as NACKED with its message, then SYNCED after the fix; metrics and wait follow', async () => {
    const before = await scrape(admin);
    const ratings = backends.get('ratings', 'v1');
    // The same endpoint twice: valid for meshpilot and Envoy, rejected by gRPC.
    await replaceFile(mesh.dir, 'services.yaml', serviceEntriesYaml([...backends.backends, ratings]));
    await waitFor(async () => (await proxy(productpage.nodeId))?.types.eds.state === 'NACKED', { timeoutMs: 10_000, description: 'productpage EDS NACKED' });
    expect(mesh.cp.state().errors).toEqual([]);
    expect(mesh.cp.cache.rejected).toEqual([]);
    const nacked = await proxy(productpage.nodeId);
    expect(nacked.state).toBe('NACKED');
    expect(nacked.types.eds.nack.message).toContain(DUPLICATE);
    expect(nacked.types.eds.nack.version).toBe(nacked.types.eds.sentVersion);
    expect(nacked.types.eds.nack.nonce).toBe(nacked.types.eds.sentNonce);
    expect(nacked.types.eds.ackedVersion).not.toBe(nacked.types.eds.sentVersion);
    expect((await proxies()).summary).toMatchObject({ NACKED: 1 });
    // The other proxy never subscribed to ratings: it is unaffected.
    expect((await proxy(reviewer.nodeId)).state).toBe('SYNCED');

    const dump = (await getJson(`${admin}/debug/config_dump?proxy=${encodeURIComponent(productpage.nodeId)}`)).body;
    expect(dump.types.eds.state).toBe('NACKED');
    expect(dump.types.eds.note).toBe(`these are the rejected version's resources; the proxy still runs version ${nacked.types.eds.ackedVersion}`);
    expect(dump.types.eds.resources[0].resource.endpoints[0].lb_endpoints).toHaveLength(2);

    const during = await scrape(admin);
    expect(metricValue(during, 'meshpilot_xds_nacks_total', { type: 'eds' }) - metricValue(before, 'meshpilot_xds_nacks_total', { type: 'eds' })).toBeGreaterThanOrEqual(1);
    expect(metricValue(during, 'meshpilot_xds_pushes_total', { type: 'eds' })).toBeGreaterThan(metricValue(before, 'meshpilot_xds_pushes_total', { type: 'eds' }));
    expect(metricValue(during, 'meshpilot_push_duration_seconds_count')).toBeGreaterThan(metricValue(before, 'meshpilot_push_duration_seconds_count'));

    // wait: the NACKED proxy is a straggler, with its state per type and the client's message.
    const failed = await meshpilot('wait', '--admin', admin, '--proxy-selector', 'app=productpage', '--until-synced', '--timeout', '1s');
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain(productpage.nodeId);
    expect(failed.stderr).toMatch(/eds NACKED \(rejected version \S+: .*address is a duplicate/);
    // ...while the proxies the change did not touch are synced.
    const others = await meshpilot('wait', '--admin', admin, '--proxy-selector', 'app=reviews-caller', '--until-synced', '--timeout', '5s');
    expect(others.stdout).toMatch(/1 proxy matching selector app=reviews-caller synced/);
    expect(others.code).toBe(0);

    // The fix: one endpoint again. The client ACKs; calls still land.
    await replaceFile(mesh.dir, 'services.yaml', serviceEntriesYaml(backends.backends));
    await waitFor(async () => (await proxy(productpage.nodeId))?.state === 'SYNCED', { timeoutMs: 10_000, description: 'productpage SYNCED after the fix' });
    const fixed = await proxy(productpage.nodeId);
    expect(fixed.types.eds.nack).toBeUndefined();
    expect(fixed.types.eds.ackedVersion).toBe(fixed.types.eds.sentVersion);
    expect((await productpage.call(RATINGS_TARGET)).service).toBe('ratings');
    const after = await scrape(admin);
    // productpage converged on the NACKed change only when it ACKed the fix: one more observation.
    expect(metricValue(after, 'meshpilot_proxy_convergence_seconds_count')).toBeGreaterThan(metricValue(during, 'meshpilot_proxy_convergence_seconds_count'));
    expect(metricValue(after, 'meshpilot_connected_proxies', { kind: 'grpc', protocol: 'sotw' })).toBe(2);

    const ok = await meshpilot('wait', '--admin', admin, '--proxy-selector', 'app=productpage', '--until-synced', '--timeout', '10s');
    expect(ok.stdout).toMatch(/1 proxy matching selector app=productpage synced to config generation \d+/);
    expect(ok.code).toBe(0);
  }, 60_000);
});
