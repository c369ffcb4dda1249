// Benchmark child process: N simulated proxyless gRPC clients, each one SotW ADS stream over real
// gRPC (grpc-js) on loopback, sharing one HTTP/2 connection per `perChannel` streams.
//
// Each proxy behaves like a gRPC client scoped to `scope` services: it subscribes LDS to their
// `host:port` names, then RDS to the route names the listeners point at, then CDS to the clusters
// the routes name, then EDS to those clusters, and ACKs every response (version + nonce) the way
// gRPC does. Responses are parsed only as far as needed (bench/wire.ts), and what a response means
// is decoded once per (type, version) and shared, so the load generator stays cheap.
//
// It records, with absolute timestamps (performance.timeOrigin + now):
//  - when each proxy is fully synced (every subscribed cluster has endpoints, all four types ACKed);
//  - for an armed rule change, when each affected proxy ACKs the route with the new weight;
//  - during churn, every (proxy, service) endpoint update it ACKs, identified by the endpoint port
//    (the generation marker written by the benchmark), so latencies are exact per change.
//
// IPC: {id, cmd, ...} -> {id, ok, ...} over process.send.
import * as grpc from '@grpc/grpc-js';
import { H2Channel, type BidiStream, type StreamHandlers } from './h2-grpc.ts';
import { listenerName, proxyScope } from './mesh.ts';
import { profileStart, profileStop } from './profiler.ts';
import {
  CLUSTER,
  ENDPOINTS,
  LISTENER,
  ROUTE_CONFIG,
  claMarker,
  decodeResponse,
  encodeRequest,
  listenerRouteName,
  node,
  routeClusters,
  firstVarintAt,
} from './wire.ts';

const ADS_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
const now = () => performance.timeOrigin + performance.now();
const identity = (b: Buffer) => b;

interface TypeState {
  version: string;
  nonce: string;
  names: string[];
  key: string;
}

const newType = (): TypeState => ({ version: '', nonce: '', names: [], key: '' });

/** service index from a cluster or route name (`...svc-0042.default...`). */
function serviceOf(name: string): number {
  const i = name.indexOf('svc-');
  return i < 0 ? -1 : Number(name.slice(i + 4, i + 8));
}

interface RouteInfo {
  name: string;
  svc: number;
  clusters: string;
  w1: number;
}

interface EdsInfo {
  cluster: string;
  svc: number;
  port: number;
}

// Meaning of a response, per (type, version, nonce). Not per version alone: in SotW, routes and
// endpoints may be sent as only what changed, so two responses with one version can carry different
// resources (meshpilot's are shared by every stream that gets the same bytes, nonce included).
// A server whose nonces count per stream (go-control-plane) sends one (version, nonce) with different
// resources on different streams; its SotW answer is the full state of the names asked for at that
// version, so its meanings are cached by (type, version, subscribed names) instead (`keyByNames`).
let keyByNames = false;
const answerKey = (r: { version: string; nonce: string }, st: TypeState) => (keyByNames ? `${r.version}|${st.key}` : `${r.version}|${r.nonce}`);
const ldsCache = new Map<string, string[]>();
const rdsCache = new Map<string, RouteInfo[]>();
const edsCache = new Map<string, EdsInfo[]>();

function cached<T>(cache: Map<string, T>, key: string, make: () => T): T {
  let v = cache.get(key);
  if (v === undefined) {
    if (cache.size > 20000) cache.clear();
    v = make();
    cache.set(key, v);
  }
  return v;
}

class Growable {
  a: Float64Array;
  n = 0;
  constructor(size = 1024) {
    this.a = new Float64Array(size);
  }
  push(x: number): void {
    if (this.n === this.a.length) {
      const b = new Float64Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.n++] = x;
  }
  reset(): void {
    this.n = 0;
  }
}

// ---- measurement state
let services = 1000;
let proxies: SimProxy[] = [];
let syncedCount = 0;
let onSynced: (() => void) | undefined;
/** The change being timed: a route's new v1 weight, or a service's new endpoint port. */
let armed: { kind: 'route' | 'eds'; route: string; svc: number; w1: number; port: number; expected: number; acked: number } | undefined;
let ruleAcks = new Float64Array(0);
let churnActive = false;
let edsResponses = 0;
let churnCpu0 = process.cpuUsage();
const dSvc = new Growable();
const dPrev = new Growable();
const dPort = new Growable();
const dAck = new Growable();
const changeTimes = new Map<number, number>(); // svc * 65536 + port -> time written
const errors: string[] = [];
let streamErrors = 0;

class SimProxy {
  readonly types: Record<string, TypeState> = { [LISTENER]: newType(), [ROUTE_CONFIG]: newType(), [CLUSTER]: newType(), [ENDPOINTS]: newType() };
  readonly routes = new Map<string, string>();
  readonly lastPort: Uint16Array;
  edsSeen: Set<string> | undefined = new Set();
  syncedAt = 0;
  phase = 0;
  private nodeSent = false;
  private readonly call: BidiStream;

  constructor(
    readonly idx: number,
    readonly scope: number[],
    open: (h: StreamHandlers) => BidiStream,
    private readonly nodeBytes: Buffer,
  ) {
    this.lastPort = new Uint16Array(services);
    this.call = open({
      onMessage: (b: Buffer) => {
        try {
          this.onResponse(b);
        } catch (e) {
          if (errors.length < 5) errors.push(e instanceof Error ? e.stack ?? e.message : String(e));
        }
      },
      onEnd: (status: number, detail: string) => {
        if (closing) return;
        streamErrors++;
        if (errors.length < 5) errors.push(`stream ${idx} ended: status ${status} ${detail}`);
      },
    });
  }

  start(): void {
    this.subscribe(LISTENER, this.scope.map(listenerName));
  }

  private send(type: string, names: string[]): void {
    const st = this.types[type]!;
    const req = encodeRequest({ ...(this.nodeSent ? {} : { node: this.nodeBytes }), version: st.version, names, typeUrl: type, nonce: st.nonce });
    this.nodeSent = true;
    this.call.write(req);
  }

  private subscribe(type: string, names: string[]): void {
    const st = this.types[type]!;
    const key = names.join('\n');
    if (key === st.key) return;
    st.names = names;
    st.key = key;
    this.send(type, names);
  }

  private onResponse(buf: Buffer): void {
    const r = decodeResponse(buf);
    const st = this.types[r.typeUrl];
    if (!st) return;
    st.version = r.version;
    st.nonce = r.nonce;
    switch (r.typeUrl) {
      case LISTENER: {
        const rds = cached(ldsCache, answerKey(r, st), () => [...new Set(r.resources.map((l) => listenerRouteName(l).rds).filter((x): x is string => !!x))].sort());
        this.send(LISTENER, st.names); // ACK
        if (this.phase < 1) this.phase = 1;
        if (rds.length) this.subscribe(ROUTE_CONFIG, rds);
        break;
      }
      case ROUTE_CONFIG: {
        const infos = cached(rdsCache, answerKey(r, st), () =>
          r.resources.map((b) => {
            const { name, clusters } = routeClusters(b);
            // The first weighted cluster's weight (UInt32Value.value): the v1 share.
            return { name, svc: serviceOf(name), clusters: clusters.sort().join('\n'), w1: firstVarintAt(b, [2, 3, 2, 3, 1, 2, 1]) };
          }),
        );
        let changed = false;
        let ruleHit = false;
        for (const info of infos) {
          if (this.routes.get(info.name) !== info.clusters) {
            this.routes.set(info.name, info.clusters);
            changed = true;
          }
          if (armed?.kind === 'route' && info.name === armed.route && info.w1 === armed.w1 && ruleAcks[this.idx] === 0) ruleHit = true;
        }
        this.send(ROUTE_CONFIG, st.names); // ACK
        if (ruleHit) {
          ruleAcks[this.idx] = now();
          armed!.acked++;
        }
        if (this.phase < 2) this.phase = 2;
        if (changed) {
          const all = new Set<string>();
          for (const c of this.routes.values()) for (const x of c.split('\n')) if (x) all.add(x);
          this.subscribe(CLUSTER, [...all].sort());
        }
        break;
      }
      case CLUSTER: {
        this.send(CLUSTER, st.names); // ACK
        if (this.phase < 3) this.phase = 3;
        // gRPC subscribes EDS for the EDS clusters it was given; here every routed cluster is EDS.
        this.subscribe(ENDPOINTS, this.types[CLUSTER]!.names);
        break;
      }
      case ENDPOINTS: {
        const infos = cached(edsCache, answerKey(r, st), () =>
          r.resources.map((b) => {
            const { cluster, port } = claMarker(b);
            return { cluster, svc: serviceOf(cluster), port };
          }),
        );
        this.send(ENDPOINTS, st.names); // ACK
        const t = now();
        if (churnActive) edsResponses++;
        for (const info of infos) {
          if (info.svc < 0) continue;
          if (armed?.kind === 'eds' && info.svc === armed.svc && info.port === armed.port && ruleAcks[this.idx] === 0) {
            ruleAcks[this.idx] = t;
            armed.acked++;
          }
          const prev = this.lastPort[info.svc]!;
          if (info.port > prev) {
            if (prev !== 0 && churnActive) {
              dSvc.push(info.svc);
              dPrev.push(prev);
              dPort.push(info.port);
              dAck.push(t);
            }
            this.lastPort[info.svc] = info.port;
          }
          this.edsSeen?.add(info.cluster);
        }
        if (this.phase < 4) this.phase = 4;
        if (this.edsSeen && this.edsSeen.size >= this.types[ENDPOINTS]!.names.length) {
          this.edsSeen = undefined;
          this.syncedAt = t;
          this.phase = 5;
          syncedCount++;
          if (syncedCount === proxies.length) onSynced?.();
        }
        break;
      }
    }
  }

  close(): void {
    this.call.cancel();
  }
}

let clients: Array<{ close(): void }> = [];
let closing = false;

/** A grpc-js bidi stream behind the same interface as the lean HTTP/2 one. */
function grpcJsStream(client: grpc.Client, h: StreamHandlers): BidiStream {
  const call = client.makeBidiStreamRequest(ADS_PATH, identity, identity);
  let ended = false;
  call.on('data', (b: Buffer) => h.onMessage(b));
  call.on('error', (e: grpc.ServiceError) => {
    if (!ended) h.onEnd(e.code, e.message);
    ended = true;
  });
  call.on('status', (st: grpc.StatusObject) => {
    if (!ended) h.onEnd(st.code, st.details);
    ended = true;
  });
  return { write: (m) => call.write(m), cancel: () => call.cancel() };
}

interface ConnectOpts {
  address: string;
  n: number;
  scope: number;
  services: number;
  perChannel: number;
  labelSets: number;
  timeoutMs: number;
  client: 'h2' | 'grpc-js';
  keyByNames?: boolean;
}

async function connect(o: ConnectOpts): Promise<Record<string, unknown>> {
  services = o.services;
  keyByNames = o.keyByNames ?? false;
  syncedCount = 0;
  const t0 = now();
  const cpu0 = process.cpuUsage();
  const done = new Promise<void>((resolve) => (onSynced = resolve));
  proxies = [];
  let open!: (h: StreamHandlers) => BidiStream;
  for (let i = 0; i < o.n; i++) {
    if (i % o.perChannel === 0) {
      if (o.client === 'grpc-js') {
        // A local subchannel pool gives each client its own HTTP/2 connection.
        const c = new grpc.Client(o.address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1, 'grpc.max_receive_message_length': 64 << 20 });
        clients.push(c);
        open = (h) => grpcJsStream(c, h);
      } else {
        const c = new H2Channel(o.address);
        clients.push(c);
        open = (h) => c.openStream(ADS_PATH, h);
      }
    }
    const md = { GENERATOR: 'grpc', NAMESPACE: 'default', LABELS: { app: `client-${i % o.labelSets}` } };
    const p = new SimProxy(i, proxyScope(i, o.scope, o.services), open, node(`bench-proxy-${i}`, md));
    proxies.push(p);
    p.start();
  }
  const opened = now();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([done.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), o.timeoutMs)))]);
  clearTimeout(timer);
  const phases = [0, 0, 0, 0, 0, 0];
  let last = 0;
  for (const p of proxies) {
    phases[p.phase]!++;
    last = Math.max(last, p.syncedAt);
  }
  const syncTimes = proxies.filter((p) => p.syncedAt).map((p) => p.syncedAt - t0).sort((a, b) => a - b);
  return {
    t0,
    openedMs: opened - t0,
    synced: syncedCount,
    timedOut,
    allSyncedMs: timedOut ? undefined : last - t0,
    p50SyncMs: syncTimes[Math.floor(syncTimes.length * 0.5)],
    // phases: [none, got LDS, got RDS, got CDS, got EDS (partial), synced]
    phases,
    streamErrors,
    errors,
    clientCpu: process.cpuUsage(cpu0),
  };
}

function percentile(sorted: Float64Array | number[], q: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

function summary(lat: Float64Array) {
  lat.sort();
  return {
    n: lat.length,
    p50: percentile(lat, 0.5),
    p90: percentile(lat, 0.9),
    p99: percentile(lat, 0.99),
    max: lat.length ? lat[lat.length - 1] : undefined,
  };
}

function waitFor(pred: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve) => {
    const tick = () => {
      if (pred()) resolve(true);
      else if (Date.now() > deadline) resolve(false);
      else setTimeout(tick, 20);
    };
    tick();
  });
}

process.on('message', async (m: { id: number; cmd: string; [k: string]: unknown }) => {
  const reply = (body: Record<string, unknown>) => process.send!({ id: m.id, ok: true, ...body });
  try {
    switch (m.cmd) {
      case 'connect':
        reply(await connect(m as unknown as ConnectOpts));
        break;
      case 'arm': {
        const svc = m.service as number;
        ruleAcks = new Float64Array(proxies.length);
        let expected = 0;
        for (const p of proxies) if (p.scope.includes(svc)) expected++;
        armed = { kind: m.kind as 'route' | 'eds', route: listenerName(svc), svc, w1: (m.w1 as number) ?? -1, port: (m.port as number) ?? -1, expected, acked: 0 };
        reply({ expected });
        break;
      }
      case 'await-armed': {
        const a = armed!;
        const ok = await waitFor(() => a.acked >= a.expected, m.timeoutMs as number);
        const t0 = m.t0 as number;
        const lat = new Float64Array(a.acked);
        let k = 0;
        for (let i = 0; i < ruleAcks.length; i++) if (ruleAcks[i]) lat[k++] = ruleAcks[i]! - t0;
        armed = undefined;
        const sorted = lat.slice().sort();
        reply({ complete: ok, expected: a.expected, acked: a.acked, latencies: Array.from(sorted) });
        break;
      }
      case 'churn-start':
        dSvc.reset();
        dPrev.reset();
        dPort.reset();
        dAck.reset();
        changeTimes.clear();
        edsResponses = 0;
        churnCpu0 = process.cpuUsage();
        churnActive = true;
        reply({});
        break;
      case 'churn-changes':
        for (const c of m.changes as Array<{ service: number; port: number; t: number }>) changeTimes.set(c.service * 65536 + c.port, c.t);
        reply({});
        break;
      case 'churn-await': {
        // Final port per changed service: done when every proxy using the service has it.
        const finals = m.finals as Array<[number, number]>;
        const users = finals.map(([svc, port]) => ({ port, svc, ps: proxies.filter((p) => p.scope.includes(svc)) }));
        const pending = () => {
          let n = 0;
          for (const u of users) for (const p of u.ps) if (p.lastPort[u.svc]! < u.port) n++;
          return n;
        };
        const complete = await waitFor(() => pending() === 0, m.timeoutMs as number);
        churnActive = false;
        const clientCpu = process.cpuUsage(churnCpu0);
        // One latency sample per change a proxy received (a change superseded by a later one before
        // it was sent counts as received with the later one).
        const lat = new Growable(dAck.n * 2 + 16);
        let firstAck = Infinity;
        let lastAck = 0;
        let missingTimes = 0;
        for (let i = 0; i < dAck.n; i++) {
          const svc = dSvc.a[i]!;
          const ack = dAck.a[i]!;
          firstAck = Math.min(firstAck, ack);
          lastAck = Math.max(lastAck, ack);
          for (let port = dPrev.a[i]! + 1; port <= dPort.a[i]!; port++) {
            const t = changeTimes.get(svc * 65536 + port);
            if (t === undefined) missingTimes++;
            else lat.push(ack - t);
          }
        }
        reply({
          complete,
          pending: pending(),
          deliveries: dAck.n,
          edsResponses,
          changesReceived: lat.n,
          missingTimes,
          firstAck,
          lastAck,
          latency: summary(lat.a.subarray(0, lat.n)),
          clientCpuMs: (clientCpu.user + clientCpu.system) / 1000,
        });
        break;
      }
      case 'prof-start':
        await profileStart();
        reply({});
        break;
      case 'prof-stop':
        await profileStop(m.file as string);
        reply({});
        break;
      case 'stats':
        reply({ cpu: process.cpuUsage(), rss: process.memoryUsage().rss, synced: syncedCount, streamErrors, errors });
        break;
      case 'close':
        closing = true;
        for (const p of proxies) p.close();
        for (const c of clients) c.close();
        proxies = [];
        clients = [];
        reply({});
        setTimeout(() => process.exit(0), 50);
        break;
      default:
        throw new Error(`unknown command ${m.cmd}`);
    }
  } catch (e) {
    process.send!({ id: m.id, ok: false, error: e instanceof Error ? e.stack ?? e.message : String(e) });
  }
});

process.on('disconnect', () => process.exit(0));
process.send!({ id: 0, ok: true, ready: true });
