// Benchmark child process: the xDS server under test, alone in its process so that its CPU time
// and memory can be read without the load generator's.
//
//   mode "meshpilot":  startControlPlane() on the generated config directory (file watcher, debounce,
//                      compile, snapshot cache, ADS server), exactly as `meshpilot serve` runs.
//   mode "lowerbound": the least any SotW ADS server on grpc-js could do for the same clients: every
//                      resource encoded once up front (with meshpilot's own translator and encoder);
//                      a subscription is answered with a response encoded once per distinct name set
//                      and written as the same bytes to every stream asking for it; a change encodes
//                      the changed resource(s) once and writes one shared buffer to every subscriber.
//                      No debounce, no model, no per-stream versions.
//   mode "gocp":       go-control-plane's snapshot cache and ADS server (bench/peers/gocp, a Go
//                      process of its own) serving the lower bound's resources; stats are the Go
//                      process's CPU and memory, not this process's.
//
// Talks to the parent over the IPC channel (process.send): {id, cmd, ...} -> {id, ok, ...}.
import * as grpc from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pino } from 'pino';
import { encodeResource, type ResourceJson } from '../control-plane/envoy/check.ts';
import { FileConfigSource } from '../control-plane/config/file-source.ts';
import { compile } from '../control-plane/model/compile.ts';
import { startControlPlane, type ControlPlane } from '../control-plane/server.ts';
import { proxyFromNode } from '../control-plane/translate/proxy.ts';
import { resourceName, translate } from '../control-plane/translate/translate.ts';
import { profileStart, profileStop } from './profiler.ts';
import { GoPeer } from './peers/gocp.ts';
import { setPorts, setWeights } from './resource-edits.ts';
import { EnvoyLowerBound, type EnvoyGroup } from './lowerbound-delta.ts';
import type { Model } from '../control-plane/model/types.ts';
import { clusterName, svcHost, PORT, SUBSETS } from './mesh.ts';
import { CLUSTER, ENDPOINTS, LISTENER, ROUTE_CONFIG, decodeRequest, encodeResponse } from './wire.ts';

const ADS_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
const now = () => performance.timeOrigin + performance.now();

interface Msg {
  id: number;
  cmd: string;
  [k: string]: unknown;
}

function reply(id: number, body: Record<string, unknown>): void {
  process.send!({ id, ok: true, ...body });
}

// The longest the event loop went without turning since the last stats call: how long a new
// connection, a probe or an ACK may have waited for the server's attention.
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

function stats(): Record<string, unknown> {
  const m = process.memoryUsage();
  const loopMaxMs = loopDelay.max / 1e6;
  loopDelay.reset();
  return { cpu: process.cpuUsage(), rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, t: now(), loopMaxMs };
}

/** The node a benchmark proxy sends (label set 0): used to warm the cache for that group. */
function benchProxy(labelSet: number) {
  return proxyFromNode({ id: `bench-warm-${labelSet}`, metadata: { GENERATOR: 'grpc', NAMESPACE: 'default', LABELS: { app: `client-${labelSet}` } } });
}

// ---------------------------------------------------------------- meshpilot

// BENCH_TRACE=1: log how long each directory rescan takes and when the pipeline applies a model.
if (process.env.BENCH_TRACE) {
  const proto = FileConfigSource.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const name of ['rescan', 'refresh']) {
    const orig = proto[name]!;
    proto[name] = function (this: unknown, ...a: unknown[]) {
      const s = now();
      const r = orig.apply(this, a);
      process.stderr.write(`[trace] ${name} ${(s % 100000).toFixed(0)} took ${(now() - s).toFixed(0)} ms -> ${String(r)}\n`);
      return r;
    };
  }
}

let cp: ControlPlane | undefined;
/** [start, end] of each SnapshotCache.setModel call: compile is done at start; all pushes are written by end. */
const applies: Array<[number, number]> = [];

async function startMeshpilot(configDir: string, labelSets: number, envoyGroups: readonly EnvoyGroup[]): Promise<Record<string, unknown>> {
  const t0 = now();
  cp = await startControlPlane({ configDir, xdsListen: '127.0.0.1:0', adminListen: null, logger: pino({ level: 'warn' }, pino.destination(2)) });
  const started = now();
  const cache = cp.cache;
  const setModel = cache.setModel.bind(cache);
  cache.setModel = (model) => {
    const s = now();
    setModel(model);
    applies.push([s, now()]);
    if (process.env.BENCH_TRACE) process.stderr.write(`[trace] setModel ${(s % 100000).toFixed(0)} took ${(now() - s).toFixed(0)} ms\n`);
  };
  // Warm: the translation of each proxy group the benchmark uses, as the first proxy would trigger.
  for (let g = 0; g < labelSets; g++) cache.snapshotFor(benchProxy(g));
  for (const g of envoyGroups) cache.snapshotFor(proxyFromNode(g.node));
  const warmed = now();
  return { address: cp.xdsAddress, startMs: started - t0, warmMs: warmed - started };
}

// ---------------------------------------------------------------- lower bound

interface LbStream {
  call: grpc.ServerDuplexStream<Buffer, Buffer>;
  subs: Map<string, string>;
  /** Taken over by the Envoy sidecars' lower bound (bench/lowerbound-delta.ts). */
  adopted?: boolean;
}

const bytes = new Map<string, Map<string, Buffer>>();
const jsons = new Map<string, Map<string, ResourceJson>>();
const responseCache = new Map<string, Buffer>();
// type -> name -> streams, for the types the benchmark changes (listeners and clusters never change).
const subscribers = new Map<string, Map<string, Set<LbStream>>>([[ROUTE_CONFIG, new Map()], [ENDPOINTS, new Map()]]);
let lbServer: grpc.Server | undefined;
/** Envoy sidecar groups (start's envoyGroups): delta and SotW, bench/lowerbound-delta.ts. */
let envoyLb: EnvoyLowerBound | undefined;
const lbStreams = new Set<LbStream>();
let generation = 0;

// Initial responses are shared by streams subscribing at about the same time, not kept forever
// (holding every distinct response would count as per-proxy memory at small N).
setInterval(() => responseCache.clear(), 1000).unref();

const shortHash = (s: string) => createHash('sha1').update(s).digest('hex').slice(0, 16);

function responseFor(type: string, names: string[]): Buffer {
  const key = `${type}\n${names.join('\n')}`;
  let r = responseCache.get(key);
  if (!r) {
    const all = bytes.get(type)!;
    const chosen = names.map((n) => all.get(n)).filter((b): b is Buffer => !!b);
    const version = `${generation}.${shortHash(key)}`;
    r = encodeResponse(version, type, version, chosen);
    responseCache.set(key, r);
  }
  return r;
}

/** Every resource the benchmark's proxy group gets, translated and encoded once (as JSON and bytes). */
function prepare(configDir: string): Model {
  const source = new FileConfigSource(configDir, { pollMs: 0 });
  const state = compile(source.load());
  source.close();
  const resources = translate(state.model, benchProxy(0));
  for (const type of [LISTENER, ROUTE_CONFIG, CLUSTER, ENDPOINTS]) {
    const b = new Map<string, Buffer>();
    const j = new Map<string, ResourceJson>();
    for (const json of resources[type as keyof typeof resources]) {
      b.set(resourceName(json), encodeResource(json).value);
      j.set(resourceName(json), json);
    }
    bytes.set(type, b);
    jsons.set(type, j);
  }
  return state.model;
}

async function startLowerBound(configDir: string, envoyGroups: readonly EnvoyGroup[]): Promise<Record<string, unknown>> {
  const t0 = now();
  const model = prepare(configDir);
  if (envoyGroups.length) envoyLb = new EnvoyLowerBound(model, envoyGroups);
  const encoded = now();
  const identity = (b: Buffer) => b;
  const service: grpc.ServiceDefinition = {
    StreamAggregatedResources: {
      path: ADS_PATH,
      requestStream: true,
      responseStream: true,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
    DeltaAggregatedResources: { path: ADS_PATH.replace('Stream', 'Delta'), requestStream: true, responseStream: true, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity },
  };
  lbServer = new grpc.Server({ 'grpc.keepalive_permit_without_calls': 1 });
  lbServer.addService(service, {
    StreamAggregatedResources: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      const s: LbStream = { call, subs: new Map() };
      lbStreams.add(s);
      call.on('data', (buf: Buffer) => {
        if (s.adopted) return;
        if (envoyLb && s.subs.size === 0 && (s.adopted = envoyLb.adoptSotw(call, buf))) return void lbStreams.delete(s);
        const req = decodeRequest(buf);
        if (req.nack) return;
        const key = req.names.join('\n');
        const before = s.subs.get(req.typeUrl);
        if (before === key) return; // an ACK
        const index = subscribers.get(req.typeUrl);
        if (index) {
          if (before) for (const n of before.split('\n')) index.get(n)?.delete(s);
          for (const n of req.names) {
            let set = index.get(n);
            if (!set) index.set(n, (set = new Set()));
            set.add(s);
          }
        }
        s.subs.set(req.typeUrl, key);
        call.write(responseFor(req.typeUrl, req.names));
      });
      const done = () => {
        lbStreams.delete(s);
        for (const [type, key] of s.subs) for (const n of key.split('\n')) subscribers.get(type)?.get(n)?.delete(s);
        s.subs.clear();
      };
      call.on('end', () => {
        done();
        call.end();
      });
      call.on('error', done);
      call.on('cancelled', done);
    },
    DeltaAggregatedResources: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      if (envoyLb) envoyLb.deltaStream(call);
      else call.emit('error', { code: 12, details: 'no sidecar groups' });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    lbServer!.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { address: `127.0.0.1:${port}`, startMs: encoded - t0, warmMs: 0 };
}

/** Edits the named resources' JSON and encodes each once; returns the new bytes by name. */
function editResources(type: string, names: string[], edit: (json: ResourceJson) => void): Map<string, Buffer> {
  const changed = new Map<string, Buffer>();
  for (const name of names) {
    const json = structuredClone(jsons.get(type)!.get(name)!);
    edit(json);
    jsons.get(type)!.set(name, json);
    const value = encodeResource(json).value;
    bytes.get(type)!.set(name, value);
    changed.set(name, value);
  }
  return changed;
}

/** Writes the changed resources' bytes, in one response, to every stream subscribed to any of them. */
function pushChange(type: string, changed: Map<string, Buffer>): number {
  generation++;
  const names = [...changed.keys()];
  const encoded = [...changed.values()];
  // Later subscriptions must see the new bytes too.
  responseCache.clear();
  const version = `u${generation}`;
  const response = encodeResponse(version, type, version, encoded);
  const targets = new Set<LbStream>();
  for (const n of names) for (const s of subscribers.get(type)?.get(n) ?? []) targets.add(s);
  for (const s of targets) s.call.write(response);
  return targets.size;
}

// ---------------------------------------------------------------- go-control-plane peer

let peer: GoPeer | undefined;
const GO_GROUP = 'grpc'; // the Go peer's group for proxyless clients (node metadata GENERATOR: grpc)

async function startGoPeer(configDir: string, binary: string, envoyGroups: readonly EnvoyGroup[]): Promise<Record<string, unknown>> {
  const t0 = now();
  const model = prepare(configDir);
  // Sidecar groups: the lower bound's resources and edits, served by the Go peer (it picks a
  // node's group by its metadata BENCH_GROUP).
  if (envoyGroups.length) envoyLb = new EnvoyLowerBound(model, envoyGroups);
  const encoded = now();
  peer = await GoPeer.start(binary);
  await peer.loadGroup(GO_GROUP, Object.fromEntries([...bytes].map(([type, byName]) => [type, [...byName.values()]])));
  for (const [group, byType] of envoyLb?.resourcesByGroup() ?? []) await peer.loadGroup(group, byType);
  return { address: peer.address, startMs: encoded - t0, warmMs: now() - encoded };
}

// ---------------------------------------------------------------- IPC

const gc = (globalThis as { gc?: () => void }).gc;

process.on('message', async (m: Msg) => {
  try {
    switch (m.cmd) {
      case 'start': {
        const mode = m.mode as string;
        const envoyGroups = (m.envoyGroups as EnvoyGroup[] | undefined) ?? [];
        const res =
          mode === 'meshpilot'
            ? await startMeshpilot(m.configDir as string, m.labelSets as number, envoyGroups)
            : mode === 'gocp'
              ? await startGoPeer(m.configDir as string, m.goPeer as string, envoyGroups)
              : await startLowerBound(m.configDir as string, envoyGroups);
        reply(m.id, res);
        break;
      }
      case 'stats': {
        if (peer) {
          const s = await peer.stats(!!m.gc);
          reply(m.id, { cpu: s.cpu, rss: s.rss, heapUsed: s.heap, external: 0, arrayBuffers: 0, t: now(), streams: s.streams + s.deltaStreams });
          break;
        }
        if (m.gc && gc) {
          // Collect, then give V8 time to hand freed pages back, so RSS means live memory.
          for (let i = 0; i < 3; i++) {
            gc();
            await new Promise((r) => setTimeout(r, 300));
          }
        }
        const streams = cp ? cp.ads.streams.size : lbStreams.size + (envoyLb?.streamCount ?? 0);
        reply(m.id, { ...stats(), streams });
        break;
      }
      case 'prof-start':
        await profileStart();
        reply(m.id, {});
        break;
      case 'prof-stop':
        await profileStop(m.file as string);
        reply(m.id, {});
        break;
      case 'applies':
        reply(m.id, { applies: applies.splice(0) });
        break;
      case 'route-change': {
        const svc = m.service as number;
        const w1 = m.w1 as number;
        const changed = editResources(ROUTE_CONFIG, [`${svcHost(svc)}:${PORT}`], (j) => setWeights(j, w1));
        if (peer) await peer.update(GO_GROUP, ROUTE_CONFIG, [...changed.values()]);
        const envoyWrites = envoyLb?.routeChange(`${svcHost(svc)}:${PORT}`, w1) ?? 0;
        if (peer) for (const [group, values] of envoyLb?.lastChange?.byGroup ?? []) await peer.update(group, ROUTE_CONFIG, values);
        reply(m.id, { streams: peer ? undefined : pushChange(ROUTE_CONFIG, changed) + envoyWrites });
        break;
      }
      case 'endpoint-change': {
        // One batch (one benchmark tick): each changed ClusterLoadAssignment is encoded once; each
        // stream using any of them gets one response with just the changed ones it subscribes to
        // (SotW allows partial EDS responses); streams with the same set share one encoded buffer.
        generation++;
        responseCache.clear();
        const changed = new Map<string, Buffer>();
        for (const { service, port } of m.changes as Array<{ service: number; port: number }>) {
          const names = SUBSETS.map((subset) => clusterName(service, subset));
          for (const [name, value] of editResources(ENDPOINTS, names, (j) => setPorts(j, port))) changed.set(name, value);
        }
        const envoyWrites = envoyLb?.endpointChange((m.changes as Array<{ service: number; port: number }>).map((c) => ({ host: svcHost(c.service), port: c.port }))) ?? 0;
        if (peer) {
          // The Go peer gets the changed ClusterLoadAssignments; its cache decides what to send.
          await peer.update(GO_GROUP, ENDPOINTS, [...changed.values()]);
          for (const [group, values] of envoyLb?.lastChange?.byGroup ?? []) await peer.update(group, ENDPOINTS, values);
          reply(m.id, {});
          break;
        }
        const perStream = new Map<LbStream, string[]>();
        for (const name of changed.keys()) {
          for (const st of subscribers.get(ENDPOINTS)!.get(name) ?? []) {
            const list = perStream.get(st);
            if (list) list.push(name);
            else perStream.set(st, [name]);
          }
        }
        const shared = new Map<string, Buffer>();
        for (const [st, names] of perStream) {
          const key = names.join('\n');
          let r = shared.get(key);
          if (!r) {
            const version = `u${generation}.${shared.size}`;
            r = encodeResponse(version, ENDPOINTS, version, names.map((n) => changed.get(n)!));
            shared.set(key, r);
          }
          st.call.write(r);
        }
        reply(m.id, { writes: perStream.size + envoyWrites, distinct: shared.size });
        break;
      }
      case 'stop': {
        if (cp) await cp.stop();
        await peer?.stop();
        lbServer?.forceShutdown();
        reply(m.id, {});
        setTimeout(() => process.exit(0), 50);
        break;
      }
      default:
        throw new Error(`unknown command ${m.cmd}`);
    }
  } catch (e) {
    process.send!({ id: m.id, ok: false, error: e instanceof Error ? e.stack ?? e.message : String(e) });
  }
});

process.on('disconnect', () => process.exit(0));
process.send!({ id: 0, ok: true, ready: true });
