// The xDS server against hostile clients: huge subscriptions, too many names, oversized messages,
// too many streams per connection and in all, connections that never speak HTTP/2, requests that
// quote nonces never sent, and clients that try to flood the logs.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { startControlPlane, type ControlPlane } from '../control-plane/server.ts';
import { CLUSTER, LISTENER } from '../control-plane/translate/type-urls.ts';
import type { XdsLimits } from '../control-plane/xds/limits.ts';
import { LogLimiter } from '../control-plane/xds/log-limiter.ts';
import { getJson } from './helpers/admin-http.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { ENVOY_NODE, GRPC_NODE, MESH, vs } from './helpers/protocol-fixtures.ts';
import { RawAdsClient, RawDeltaClient } from './helpers/raw-ads.ts';
import { waitFor } from './helpers/wait.ts';

let dir: string | undefined;
let cp: ControlPlane | undefined;
let logLines: Array<Record<string, any>> = [];
const closers: Array<() => void> = [];

async function start(limits: Partial<XdsLimits> = {}): Promise<ControlPlane> {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-limits-'));
  fs.writeFileSync(path.join(dir, 'mesh.yaml'), MESH);
  fs.writeFileSync(path.join(dir, 'rules.yaml'), vs(80, 20));
  const logs = captureLogs();
  logLines = logs.lines;
  cp = await startControlPlane({ configDir: dir, adminListen: '127.0.0.1:0', logger: logs.logger, debounceMs: 20, xdsLimits: limits });
  return cp;
}

/** A stream on a connection of its own (grpc-js otherwise shares one connection per target). */
function delta(own = false): RawDeltaClient {
  const c = new RawDeltaClient(cp!.xdsAddress, own ? { 'grpc.use_local_subchannel_pool': 1 } : undefined);
  closers.push(() => c.close());
  return c;
}

function sotw(): RawAdsClient {
  const c = new RawAdsClient(cp!.xdsAddress);
  closers.push(() => c.close());
  return c;
}

afterEach(async () => {
  for (const c of closers.splice(0)) c();
  await cp?.stop();
  cp = undefined;
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const names = (n: number, prefix = 'outbound|9080|v') => Array.from({ length: n }, (_, i) => `${prefix}${i}|svc-${i}.default.svc.cluster.local`);

/** The status a stream was ended with. */
async function endedWith(c: RawDeltaClient | RawAdsClient): Promise<grpc.ServiceError> {
  await waitFor(() => c.error !== undefined, { timeoutMs: 10_000, description: 'the stream ends with an error' });
  return c.error!;
}

describe('large subscriptions', () => {
  it('answers a 50,000-name delta subscription while other streams and /healthz are served', async () => {
    await start({ maxNamesPerRequest: 60_000, maxNamesPerStream: 60_000 });
    const big = delta();
    const other = sotw();
    big.send({ node: GRPC_NODE, type_url: CLUSTER, resource_names_subscribe: [...names(50_000), 'outbound|9080|v1|reviews.default.svc.cluster.local'] });
    other.send({ node: ENVOY_NODE, type_url: CLUSTER, resource_names: [] });
    const health = await getJson(`http://${cp!.adminAddress}/healthz`);
    expect(health.status).toBe(200);
    expect((await other.next(20_000)).resources.length).toBeGreaterThan(0);
    const r = await big.next(20_000);
    expect(r.resources.map((x) => x.name)).toEqual(['outbound|9080|v1|reviews.default.svc.cluster.local']);
    // Names that do not exist are answered as removed, so the client does not wait for them.
    expect(r.removed_resources.length).toBe(50_000);
  });

  it('ends a stream naming more than the limit with RESOURCE_EXHAUSTED naming it (delta per request and per stream, SotW)', async () => {
    await start({ maxNamesPerRequest: 1000, maxNamesPerStream: 1500 });
    const perRequest = delta();
    perRequest.send({ node: GRPC_NODE, type_url: CLUSTER, resource_names_subscribe: names(1001) });
    const e1 = await endedWith(perRequest);
    expect(e1.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(e1.details).toMatch(/1001, over the limit of 1000 \(maxNamesPerRequest\)/);

    const perStream = delta();
    perStream.send({ node: GRPC_NODE, type_url: CLUSTER, resource_names_subscribe: names(800, 'a') });
    await perStream.next();
    perStream.send({ type_url: CLUSTER, resource_names_subscribe: names(800, 'b') });
    const e2 = await endedWith(perStream);
    expect(e2.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(e2.details).toMatch(/1600, over the limit of 1500 \(maxNamesPerStream\)/);

    const state = sotw();
    state.send({ node: GRPC_NODE, type_url: LISTENER, resource_names: names(1001) });
    const e3 = await endedWith(state);
    expect(e3.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(e3.details).toMatch(/maxNamesPerRequest/);
    // Within the limits, the server still serves.
    const fine = delta();
    fine.send({ node: GRPC_NODE, type_url: CLUSTER, resource_names_subscribe: names(1000) });
    expect((await fine.next()).removed_resources.length).toBe(1000);
  });

  it('refuses a request message over maxMessageBytes with RESOURCE_EXHAUSTED', async () => {
    await start({ maxMessageBytes: 64 * 1024 });
    const c = delta();
    c.send({ node: GRPC_NODE, type_url: CLUSTER, resource_names_subscribe: names(500, 'x'.repeat(200)) });
    const e = await endedWith(c);
    expect(e.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(e.details).toMatch(/larger than max .*65536/);
  });
});

describe('streams and connections', () => {
  it('serves at most maxStreamsPerConnection streams on one connection; more wait for a free slot', async () => {
    await start({ maxStreamsPerConnection: 3 });
    // One connection: grpc-js shares it between clients of the same target.
    const cs = [delta(), delta(), delta(), delta()];
    cs.forEach((c, i) => c.send({ node: { ...GRPC_NODE, id: `${GRPC_NODE.id}-${i}` }, type_url: CLUSTER, resource_names_subscribe: ['outbound|9080|v1|reviews.default.svc.cluster.local'] }));
    await waitFor(() => cp!.ads.streams.size === 3, { timeoutMs: 5000 });
    const answered = await Promise.all(cs.map((c) => c.next(500).then(() => true, () => false)));
    expect(answered.filter(Boolean).length).toBe(3);
    expect(cp!.ads.streams.size).toBe(3);
    // Closing one lets the waiting one in.
    cs[answered.indexOf(true)]!.close();
    const waiting = cs[answered.indexOf(false)]!;
    expect((await waiting.next(5000)).resources.length).toBe(1);
  });

  it('ends streams over maxStreams at once with RESOURCE_EXHAUSTED, and admits new ones when some close', async () => {
    await start({ maxStreams: 4 });
    const open = [delta(true), delta(true), delta(true), delta(true)];
    for (const c of open) c.send({ node: GRPC_NODE, type_url: CLUSTER, resource_names_subscribe: ['outbound|9080|v1|reviews.default.svc.cluster.local'] });
    for (const c of open) await c.next();
    const extra = delta(true);
    extra.send({ node: GRPC_NODE, type_url: CLUSTER, resource_names_subscribe: ['outbound|9080|v1|reviews.default.svc.cluster.local'] });
    const e = await endedWith(extra);
    expect(e.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(e.details).toMatch(/at most 4 xDS streams.*maxStreams/);
    open[0]!.close();
    await waitFor(() => cp!.ads.streams.size === 3, { timeoutMs: 5000 });
    const later = delta(true);
    later.send({ node: GRPC_NODE, type_url: CLUSTER, resource_names_subscribe: ['outbound|9080|v1|reviews.default.svc.cluster.local'] });
    expect((await later.next()).resources.length).toBe(1);
  });

  it('releases what closed streams held: no stream, no shared subscription left', async () => {
    await start();
    const before = cp!.ads.subscriptions.size();
    // Under the 100 streams one connection may carry (they share one here).
    const many = Array.from({ length: 90 }, (_, i) => (i % 2 ? delta() : sotw()));
    many.forEach((c, i) => {
      const node = { ...GRPC_NODE, id: `${GRPC_NODE.id}-${i}` };
      if (c instanceof RawDeltaClient) c.send({ node, type_url: CLUSTER, resource_names_subscribe: names(20, `n${i}-`) });
      else c.send({ node, type_url: CLUSTER, resource_names: names(20, `n${i}-`) });
    });
    await waitFor(() => cp!.ads.streams.size === 90 && cp!.ads.subscriptions.size().subscriptions >= before.subscriptions + 45, { timeoutMs: 10_000 });
    for (const c of many) c.close();
    await waitFor(() => cp!.ads.streams.size === 0, { timeoutMs: 10_000 });
    expect(cp!.ads.subscriptions.size()).toEqual(before);
  });

  it('closes a connection that never sends the HTTP/2 preface, and keeps one with an open stream', async () => {
    await start({ idleConnectionMs: 300 });
    const live = delta(true);
    live.send({ node: GRPC_NODE, type_url: CLUSTER, resource_names_subscribe: ['outbound|9080|v1|reviews.default.svc.cluster.local'] });
    await live.next();

    const [host, port] = [cp!.xdsAddress.slice(0, cp!.xdsAddress.lastIndexOf(':')), Number(cp!.xdsAddress.split(':').pop())];
    const socket = net.connect(port, host);
    closers.push(() => socket.destroy());
    let closedByServer = false;
    socket.on('end', () => (closedByServer = true));
    socket.on('close', () => (closedByServer = true));
    socket.on('error', () => {});
    socket.resume();
    await waitFor(() => closedByServer, { timeoutMs: 5000, description: 'the server closes a silent connection' });

    // The idle timeout has passed at least once by now: the stream's connection is still served.
    live.send({ type_url: CLUSTER, resource_names_subscribe: ['outbound|9080|v2|reviews.default.svc.cluster.local'] });
    expect((await live.next()).resources.map((r) => r.name)).toEqual(['outbound|9080|v2|reviews.default.svc.cluster.local']);
    expect(live.error).toBeUndefined();
  });

  it('ends a stream that sends no first request within firstRequestMs, freeing its slot', async () => {
    await start({ firstRequestMs: 200, maxStreams: 1 });
    const mute = delta();
    const e = await endedWith(mute);
    expect(e.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(e.details).toMatch(/firstRequestMs/);
    await waitFor(() => cp!.ads.streams.size === 0, { timeoutMs: 5000 });
    const next = delta();
    next.send({ node: GRPC_NODE, type_url: CLUSTER, resource_names_subscribe: ['outbound|9080|v1|reviews.default.svc.cluster.local'] });
    expect((await next.next()).resources.length).toBe(1);
  });
});

describe('nonces and logs', () => {
  it('does not take a first request quoting a nonce this stream never sent as an ACK', async () => {
    await start();
    const honest = sotw();
    honest.send({ node: ENVOY_NODE, type_url: CLUSTER, resource_names: [] });
    const real = await honest.next();
    const liar = sotw();
    const liarNode = { ...ENVOY_NODE, id: ENVOY_NODE.id.replace('caller-2', 'liar') };
    // Same proxy group, so the same version: claimed with a nonce it was never sent.
    liar.send({ node: liarNode, type_url: CLUSTER, resource_names: [], version_info: real.version_info, response_nonce: real.nonce });
    await liar.next();
    const status = async () => (await getJson(`http://${cp!.adminAddress}/debug/proxies?proxy=${encodeURIComponent(liarNode.id)}`)).body.proxies[0];
    await waitFor(async () => (await status())?.types?.cds?.sentVersion === real.version_info, { timeoutMs: 5000 });
    const s = await status();
    expect(s.types.cds.ackedVersion).toBeUndefined();
    expect(s.types.cds.state).toBe('STALE');
  });

  it('logs the first few requests for unknown types per stream, then one summary line', async () => {
    await start({ logEventsPerStream: 3 });
    const c = delta();
    c.send({ node: GRPC_NODE, type_url: 'type.googleapis.com/nosuch.Type' });
    for (let i = 0; i < 49; i++) c.send({ type_url: `type.googleapis.com/nosuch.Type${i}` });
    // A request after them is answered, so all 50 were read.
    c.send({ type_url: CLUSTER, resource_names_subscribe: ['outbound|9080|v1|reviews.default.svc.cluster.local'] });
    await c.next();
    expect(logLines.filter((l) => l.msg === 'request for a resource type meshpilot does not serve').length).toBe(3);
    c.close();
    await waitFor(() => logLines.some((l) => l.msg === 'repeated stream events not logged'), { timeoutMs: 5000 });
    expect(logLines.filter((l) => l.msg === 'repeated stream events not logged')).toEqual([expect.objectContaining({ event: 'unknown-type', suppressed: 47, proxy: GRPC_NODE.id })]);
  });

  it('writes at most one summary per interval while events keep coming', () => {
    const lines: string[] = [];
    let now = 0;
    const log = { warn: (_f: unknown, msg: string) => lines.push(msg) } as any;
    const limiter = new LogLimiter(log, 2, 1000, () => now);
    for (let i = 0; i < 100; i++) {
      now += 50; // 100 events over 5 s
      limiter.warn('nack', { proxy: 'p' }, 'event');
    }
    expect(lines.filter((l) => l === 'event').length).toBe(2);
    // Summaries at 1.05, 2.05, 3.05 and 4.05 s (the first event started the clock).
    expect(lines.filter((l) => l === 'repeated stream events not logged').length).toBe(4);
  });
});
