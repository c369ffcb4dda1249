// The LRS service of a started control plane (control-plane/load/lrs-service.ts), driven by raw
// gRPC clients speaking Envoy's real load_stats protos: the answer to the first request, several
// proxies' reports summed in the window, /debug/load and /metrics, a proxy that disconnects (its
// in-flight figure drops, its counts age out with a short window), clusters the model never
// announced, and malformed input that must cost a stream at most, never the server.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTO_INCLUDE_DIRS } from '../control-plane/envoy/protos.ts';
import { MAX_CLUSTERS_PER_REPORT } from '../control-plane/load/lrs-service.ts';
import { getJson, metricValue, scrape } from './helpers/admin-http.ts';
import type { BackendInfo } from './helpers/backends.ts';
import { hostOf } from './helpers/mesh-files.ts';
import { startTestMesh, Teardown, type TestMesh } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';

const REVIEWS = hostOf('reviews');
const V1 = `outbound|9080|v1|${REVIEWS}`;
const V2 = `outbound|9080|v2|${REVIEWS}`;
const WINDOW_MS = 2000;
const INTERVAL_MS = 250;

// The ServiceEntries need endpoints; nothing calls them here.
const fakeBackends: BackendInfo[] = [
  { service: 'reviews', version: 'v1', port: 1, address: '127.0.0.1:1' },
  { service: 'reviews', version: 'v2', port: 2, address: '127.0.0.1:2' },
];

type Lrs = grpc.Client & { StreamLoadStats(): grpc.ClientDuplexStream<unknown, LoadStatsResponse> };
interface LoadStatsResponse {
  clusters?: string[];
  send_all_clusters?: boolean;
  load_reporting_interval?: { seconds: string; nanos: number };
}

let LrsClient: new (address: string, creds: grpc.ChannelCredentials) => Lrs;
const teardown = new Teardown();
let mesh: TestMesh;
let admin: string;

beforeAll(async () => {
  const def = protoLoader.loadSync('envoy/service/load_stats/v3/lrs.proto', { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true, includeDirs: [...PROTO_INCLUDE_DIRS] });
  const pkg = grpc.loadPackageDefinition(def) as any;
  LrsClient = pkg.envoy.service.load_stats.v3.LoadReportingService;
  mesh = await startTestMesh(teardown, {
    backends: fakeBackends,
    files: {},
    prefix: 'lrs-service',
    controlPlane: { adminListen: '127.0.0.1:0', loadReporting: { intervalMs: INTERVAL_MS, windowMs: WINDOW_MS, retainMs: WINDOW_MS } },
  });
  admin = `http://${mesh.cp.adminAddress}`;
});
afterAll(() => teardown.run());

/** An LRS stream as a proxy opens it; responses are collected. */
function openStream(address = mesh.cp.xdsAddress) {
  const client = new LrsClient(address, grpc.credentials.createInsecure());
  const call = client.StreamLoadStats();
  const responses: LoadStatsResponse[] = [];
  const ended: { status?: grpc.StatusObject; error?: grpc.ServiceError } = {};
  call.on('data', (r: LoadStatsResponse) => responses.push(r));
  call.on('status', (s: grpc.StatusObject) => (ended.status = s));
  call.on('error', (e: grpc.ServiceError) => (ended.error = e));
  teardown.add(() => {
    call.cancel();
    client.close();
  });
  return { client, call, responses, ended };
}

const stats = (cluster: string, succeeded: number, failed: number, inProgress: number) => ({
  cluster_name: cluster,
  upstream_locality_stats: [
    // Two localities: the window sums them.
    { locality: { region: 'r1' }, total_successful_requests: String(succeeded - 1), total_error_requests: String(failed), total_issued_requests: String(succeeded + failed), total_requests_in_progress: String(inProgress) },
    { locality: { region: 'r2' }, total_successful_requests: '1', total_error_requests: '0', total_issued_requests: '0', total_requests_in_progress: '0' },
  ],
  load_report_interval: { seconds: '0', nanos: 250_000_000 },
});

// grpc-js-xds's user agent: these nodes are proxyless gRPC clients (test/lrs-envoy.test.ts has Envoy's).
const GRPC_AGENT = 'gRPC Node Pure JS';

const now = () => Date.now();
const figures = (cluster: string) => mesh.cp.load.figures(cluster, now() - WINDOW_MS, now());

describe('LRS service', () => {
  it('asks every proxyless gRPC client for all clusters at the configured interval, and sums their reports', async () => {
    const a = openStream();
    a.call.write({ node: { id: 'sidecar~127.0.0.1~client-a.default~default.svc.cluster.local', user_agent_name: GRPC_AGENT } });
    await waitFor(() => a.responses.length === 1, { description: 'the first LoadStatsResponse' });
    expect(a.responses[0]).toEqual({ send_all_clusters: true, load_reporting_interval: { seconds: '0', nanos: 250_000_000 } });

    const b = openStream();
    b.call.write({ node: { id: 'sidecar~127.0.0.1~client-b.default~default.svc.cluster.local', user_agent_name: GRPC_AGENT }, cluster_stats: [stats(V1, 20, 0, 1)] });
    a.call.write({ cluster_stats: [stats(V1, 30, 5, 2), stats(V2, 8, 2, 0)] });
    await waitFor(() => figures(V1).completed === 55 && figures(V2).completed === 10, { description: 'both reports in the window' });
    expect(figures(V1)).toEqual({ completed: 55, succeeded: 50, failed: 5, issued: 55, inFlight: 3, proxies: 2 });
    expect(figures(V2)).toEqual({ completed: 10, succeeded: 8, failed: 2, issued: 10, inFlight: 0, proxies: 1 });

    const { body } = await getJson(`${admin}/debug/load`);
    expect(body.windowSeconds).toBe(WINDOW_MS / 1000);
    const reviews = body.services.find((s: { host: string }) => s.host === REVIEWS);
    expect(reviews.subsets.find((s: { subset: string }) => s.subset === 'v1')).toEqual({ subset: 'v1', cluster: V1, requestsPerSecond: 27.5, successRate: 90.91, inFlight: 3, proxies: 2, completed: 55, failed: 5 });

    const text = await scrape(admin);
    expect(metricValue(text, 'meshpilot_upstream_requests_total', { service: REVIEWS, subset: 'v1', outcome: 'success' })).toBe(50);
    expect(metricValue(text, 'meshpilot_upstream_requests_total', { service: REVIEWS, subset: 'v1', outcome: 'error' })).toBe(5);
    expect(metricValue(text, 'meshpilot_upstream_requests_in_flight', { service: REVIEWS, subset: 'v1' })).toBe(3);
    expect(metricValue(text, 'meshpilot_load_reporting_proxies', { service: REVIEWS, subset: 'v1' })).toBe(2);
    expect(text).not.toContain('client-a');

    // b disconnects: its in-flight figure goes at once, then both proxies' counts age out.
    b.call.cancel();
    await waitFor(() => figures(V1).inFlight === 2, { description: "b's in-flight figure dropped" });
    expect(figures(V1).completed).toBe(55);
    a.call.end();
    await waitFor(() => a.ended.status !== undefined, { description: 'the server ends a half-closed stream' });
    expect(a.ended.status!.code).toBe(grpc.status.OK);
    await waitFor(() => figures(V1).completed === 0 && figures(V1).inFlight === 0, { timeoutMs: WINDOW_MS * 4, description: 'counts aged out' });
    const after = await getJson(`${admin}/debug/load`);
    expect(after.body.services).toEqual([]);
  });

  it('keeps clusters the model never announced, listed apart and counted as service "unknown"', async () => {
    const s = openStream();
    s.call.write({ node: { id: 'proxy-unknown' }, cluster_stats: [stats('outbound|9080|v7|nowhere.default.svc.cluster.local', 3, 1, 0)] });
    await waitFor(async () => (await getJson(`${admin}/debug/load`)).body.unknownClusters.includes('outbound|9080|v7|nowhere.default.svc.cluster.local'), { description: 'listed as unknown' });
    const text = await scrape(admin);
    expect(metricValue(text, 'meshpilot_upstream_requests_total', { service: 'unknown', subset: '', outcome: 'error' })).toBe(1);
    expect(text).not.toContain('nowhere');
  });

  it('refuses a first request without a node, and the server keeps serving', async () => {
    const s = openStream();
    s.call.write({ cluster_stats: [stats(V1, 5, 0, 0)] });
    await waitFor(() => s.ended.status !== undefined);
    expect(s.ended.status!.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(s.ended.status!.details).toMatch(/node\.id/);
    expect(figures(V1).completed).toBe(0);
  });

  it('caps what one report may carry and reads odd values as 0 or the cap', async () => {
    const s = openStream();
    const many = Array.from({ length: MAX_CLUSTERS_PER_REPORT + 500 }, (_, i) => stats(`made-up-${i}`, 2, 0, 0));
    const hugeName = { ...stats('x'.repeat(10_000), 2, 0, 0) };
    const noLocalities = { cluster_name: V2 };
    const absurd = { cluster_name: V1, upstream_locality_stats: [{ total_successful_requests: '18446744073709551615', total_error_requests: '7' }] };
    s.call.write({ node: { id: 'proxy-odd' }, cluster_stats: [absurd, noLocalities, hugeName, { cluster_name: '' }, ...many] });
    await waitFor(() => figures(V1).failed === 7, { description: 'the sane part of the report recorded' });
    expect(figures(V1).succeeded).toBe(1e9);
    // 100 unknown clusters at most are held (the window's bound), and nothing past the cap is read.
    expect(mesh.cp.load.clusters().filter((c) => c.startsWith('made-up-')).length).toBeLessThanOrEqual(100);
    expect(mesh.cp.load.clusters().some((c) => c.length > 600)).toBe(false);
    s.call.cancel();
  });

  it('survives bytes that are no LoadStatsRequest', async () => {
    const raw = new grpc.Client(mesh.cp.xdsAddress, grpc.credentials.createInsecure());
    teardown.add(() => raw.close());
    const call = raw.makeBidiStreamRequest('/envoy.service.load_stats.v3.LoadReportingService/StreamLoadStats', (b: Buffer) => b, (b: Buffer) => b);
    let status: grpc.StatusObject | undefined;
    call.on('status', (st: grpc.StatusObject) => (status = st));
    call.on('error', () => {});
    call.on('data', () => {});
    call.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x12]));
    await waitFor(() => status !== undefined, { description: 'the stream ended' });
    expect(status!.code).not.toBe(grpc.status.OK);
    // The server still serves a proper stream.
    const s = openStream();
    s.call.write({ node: { id: 'after-garbage' }, cluster_stats: [stats(V2, 4, 0, 0)] });
    await waitFor(() => figures(V2).completed >= 4);
    expect(s.responses.length).toBe(1);
  });
});

describe('LRS on the plaintext listener of a TLS control plane', () => {
  it('is served there too (proxyless gRPC clients report where they get xDS)', async () => {
    const t = new Teardown();
    try {
      const caDir = await mkdtemp(path.join(os.tmpdir(), 'meshpilot-lrs-ca-'));
      t.add(() => rm(caDir, { recursive: true, force: true }));
      const m = await startTestMesh(t, { backends: fakeBackends, files: {}, prefix: 'lrs-plain', controlPlane: { xdsTls: { dir: caDir }, xdsPlaintextListen: '127.0.0.1:0', loadReporting: { intervalMs: INTERVAL_MS } } });
      const s = openStream(m.cp.xdsPlaintextAddress);
      s.call.write({ node: { id: 'plain-proxy', user_agent_name: GRPC_AGENT }, cluster_stats: [stats(V1, 6, 0, 0)] });
      await waitFor(() => m.cp.load.recent(V1).completed === 6, { description: 'a report over the plaintext listener' });
      expect(s.responses[0]?.send_all_clusters).toBe(true);
      s.call.cancel();
    } finally {
      await t.run();
    }
  });
});
