// Benchmark child process: N simulated Envoy sidecars, each one ADS stream on its own HTTP/2
// connection (as Envoy has), speaking delta xDS (DeltaAggregatedResources, Envoy's choice at scale)
// or, with xds "sotw", state of the world, the way Envoy does:
//   CDS wildcard first; for the EDS clusters it gets, EDS by name; once those endpoints arrived,
//   LDS wildcard; for the HTTP connection managers' rds names, RDS by name; every response ACKed
//   with its nonce (SotW: version + nonce + the names again); a resource that does not parse is
//   NACKed. On a reconnect a delta stream sends initial_resource_versions of what it holds.
// Node: `sidecar~10.200.X.Y~client-K.default~default.svc.cluster.local` (addresses that are no
// endpoint of the mesh, so sidecars share a proxy group), metadata NAMESPACE, LABELS and BENCH_GROUP
// (the group a lower-bound or peer server serves it as), user agent "envoy".
//
// Responses are parsed only as far as needed (bench/wire.ts): a cluster's EDS name, a listener's
// rds names, the watched virtual host's first weight, a ClusterLoadAssignment's first port. What a
// resource means is parsed once per (type, name, version) for delta and once per response
// (group, type, version, nonce, count) for SotW, and shared by every sidecar; per sidecar only
// small typed arrays indexed by interned names are kept.
//
// It counts the bytes (DiscoveryResponse messages) each sidecar receives, per type, and records with
// absolute timestamps when each sidecar is synced and when it ACKs an armed change.
//
// IPC: {id, cmd, ...} -> {id, ok, ...} over process.send, like bench/proxies.ts.
import http2 from 'node:http2';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { PORT, svcHost } from './mesh.ts';
import { profileStart, profileStop } from './profiler.ts';
import {
  CLUSTER,
  ENDPOINTS,
  LISTENER,
  ROUTE_CONFIG,
  claMarker,
  clusterEdsName,
  decodeDeltaResponse,
  decodeResponse,
  deltaResourceAt,
  type DeltaResponse,
  type Response,
  encodeDeltaRequest,
  envoyNode,
  listenerRdsNames,
  message,
  vhostWeight,
} from './wire.ts';

const ADS = '/envoy.service.discovery.v3.AggregatedDiscoveryService/';
const now = () => performance.timeOrigin + performance.now();

// Type indexes, in the order Envoy asks for them.
const CDS = 0;
const EDS = 1;
const LDS = 2;
const RDS = 3;
const TYPE_URLS = [CLUSTER, ENDPOINTS, LISTENER, ROUTE_CONFIG];
const TYPE_NAMES = ['CDS', 'EDS', 'LDS', 'RDS'];
const typeIndex = new Map(TYPE_URLS.map((u, i) => [u, i]));

/** The virtual host whose weight the rule changes set (service 0, in every sidecar's scope). */
const WATCHED_VHOST = `${svcHost(0)}:${PORT}`;

// ---------------------------------------------------------------- shared, interned meaning

/** Resource names per type, interned to small integers. */
const nameIds = TYPE_URLS.map(() => new Map<string, number>());
const nameList: string[][] = TYPE_URLS.map(() => []);
/** EDS name id -> service index (-1: not a bench service). */
const edsService: number[] = [];

function nameId(t: number, name: string): number {
  let id = nameIds[t]!.get(name);
  if (id === undefined) {
    id = nameList[t]!.length;
    nameIds[t]!.set(name, id);
    nameList[t]!.push(name);
    if (t === EDS) {
      const i = name.indexOf('svc-');
      edsService.push(i < 0 ? -1 : Number(name.slice(i + 4, i + 8)));
    }
  }
  return id;
}

/**
 * One content of one resource ("nv": name + version), interned: its meaning (CDS: the EDS name id
 * or -1; EDS: the first endpoint port; LDS: the rds name ids; RDS: the watched vhost's weight or -1)
 * and, for delta, its version (for initial_resource_versions).
 */
const nvIds = TYPE_URLS.map(() => new Map<string, number>());
const nvMeaning: Array<Array<number | number[]>> = TYPE_URLS.map(() => []);
const nvVersion: string[][] = TYPE_URLS.map(() => []);

function parseMeaning(t: number, buf: Uint8Array, s: number, e: number): number | number[] {
  switch (t) {
    case CDS: {
      const eds = clusterEdsName(buf, s, e).eds;
      return eds === undefined ? -1 : nameId(EDS, eds);
    }
    case EDS:
      return claMarker(buf.subarray(s, e)).port;
    case LDS:
      return listenerRdsNames(buf, s, e).map((n) => nameId(RDS, n));
    default:
      return vhostWeight(buf, WATCHED_VHOST, s, e);
  }
}

function nvId(t: number, key: string, version: string, parse: () => number | number[]): number {
  let id = nvIds[t]!.get(key);
  if (id === undefined) {
    id = nvMeaning[t]!.length;
    nvMeaning[t]!.push(parse());
    nvVersion[t]!.push(version);
    nvIds[t]!.set(key, id);
  }
  return id;
}

/** A response's resources as (name id, nv id) pairs, and the bytes of the resources themselves. */
interface Parsed {
  pairs: Int32Array;
  removed: number[];
  payload: number;
}

/** SotW: parsed once per response, shared by the sidecars that get the same one. */
const sotwParsed = new Map<string, Parsed>();
/**
 * SotW answers are told apart by (group, type, version, nonce, size). A server whose nonces are
 * per stream (go-control-plane) gives every sidecar of a group the same answer for a version with
 * another nonce: with keyByNames the nonce is left out (sidecars of a group ask the same names).
 */
let keyByNames = false;

function parseDelta(t: number, buf: Buffer, r: DeltaResponse): Parsed {
  const pairs = new Int32Array(r.ranges.length);
  let payload = 0;
  for (let i = 0; i < r.ranges.length; i += 2) {
    const res = deltaResourceAt(buf, r.ranges[i]!, r.ranges[i + 1]!);
    payload += res.end - res.start;
    pairs[i] = nameId(t, res.name);
    pairs[i + 1] = nvId(t, `${res.name}\0${res.version}`, res.version, () => parseMeaning(t, buf, res.start, res.end));
  }
  return { pairs, removed: r.removed.map((n) => nameId(t, n)), payload };
}

function parseSotw(t: number, group: string, buf: Buffer, r: Response): Parsed {
  const key = `${group}\n${t}\n${r.version}\n${keyByNames ? '' : r.nonce}\n${buf.length}`;
  let parsed = sotwParsed.get(key);
  if (!parsed) {
    if (sotwParsed.size > 2000) sotwParsed.clear();
    const res = r.resources;
    const pairs = new Int32Array(res.length * 2);
    let payload = 0;
    for (let i = 0; i < res.length; i++) {
      const b = res[i]!;
      payload += b.length;
      const name = t === EDS ? claMarker(b).cluster : t === CDS ? clusterEdsName(b).name : nameOf(b);
      pairs[2 * i] = nameId(t, name);
      pairs[2 * i + 1] = nvId(t, `${name}\0${key}`, '', () => parseMeaning(t, b, 0, b.length));
    }
    sotwParsed.set(key, (parsed = { pairs, removed: [], payload }));
  }
  return parsed;
}

/** Field 1 (name) of a Listener or RouteConfiguration. */
function nameOf(b: Uint8Array): string {
  // name is field 1, written first by every encoder; read it without walking the rest.
  if (b[0] !== 0x0a) return clusterEdsName(b).name;
  let len = 0;
  let shift = 0;
  let p = 1;
  for (;;) {
    const x = b[p++]!;
    len += (x & 0x7f) * 2 ** shift;
    if (x < 0x80) break;
    shift += 7;
  }
  return Buffer.from(b.buffer, b.byteOffset + p, len).toString('utf8');
}

/** Encoded `resource_names` fields for a SotW request, shared by sidecars with the same names. */
const namesBlocks = new Map<string, Buffer>();

function namesBlock(t: number, ids: readonly number[]): Buffer {
  let h1 = 0;
  let h2 = 0;
  for (const id of ids) {
    h1 = (Math.imul(h1, 31) + id) | 0;
    h2 = Math.imul(h2 ^ id, 16777619);
  }
  const key = `${t}:${ids.length}:${h1}:${h2}`;
  let b = namesBlocks.get(key);
  if (!b) {
    if (namesBlocks.size > 1000) namesBlocks.clear();
    b = message(ids.map((id) => [3, nameList[t]![id]!] as [number, string]));
    namesBlocks.set(key, b);
  }
  return b;
}

// ---------------------------------------------------------------- transport

interface Frames {
  write(message: Buffer): void;
  cancel(): void;
}

/** A gRPC bidi stream over node:http2; messages are reassembled from chunks with one copy each. */
function openStream(session: http2.ClientHttp2Session, path: string, onMessage: (m: Buffer) => void, onEnd: (status: number, detail: string) => void): Frames {
  const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' }, { endStream: false });
  let chunks: Buffer[] = [];
  let have = 0;
  let need = -1;
  let status = -1;
  let detail = '';
  let ended = false;
  req.on('response', (h) => {
    if (h['grpc-status'] !== undefined) {
      status = Number(h['grpc-status']);
      detail = String(h['grpc-message'] ?? '');
    }
  });
  req.on('trailers', (h) => {
    status = Number(h['grpc-status'] ?? 2);
    detail = String(h['grpc-message'] ?? '');
  });
  req.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    have += chunk.length;
    for (;;) {
      if (need < 0) {
        if (have < 5) return;
        if (chunks[0]!.length < 5) chunks = [Buffer.concat(chunks, have)];
        need = 5 + chunks[0]!.readUInt32BE(1);
      }
      if (have < need) return;
      const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, have);
      const rest = all.subarray(need);
      const msg = all.subarray(5, need);
      chunks = rest.length ? [rest] : [];
      have = rest.length;
      need = -1;
      onMessage(msg);
    }
  });
  const end = (s: number, d: string) => {
    if (ended) return;
    ended = true;
    onEnd(s, d);
  };
  req.on('close', () => end(status < 0 ? 14 : status, detail || (status < 0 ? `stream closed (http2 code ${req.rstCode})` : '')));
  req.on('error', (e) => end(14, e.message));
  return {
    write(m: Buffer) {
      const frame = Buffer.allocUnsafe(5 + m.length);
      frame[0] = 0;
      frame.writeUInt32BE(m.length, 1);
      m.copy(frame, 5);
      req.write(frame);
    },
    cancel() {
      ended = true;
      if (!req.closed) req.close(http2.constants.NGHTTP2_CANCEL);
    },
  };
}

function connectSession(address: string): http2.ClientHttp2Session {
  // Envoy opens large HTTP/2 windows towards its xDS server (256 MiB by default); 16 MiB here.
  const s = http2.connect(`http://${address}`, { settings: { initialWindowSize: 16 << 20, enablePush: false } });
  s.on('connect', () => s.setLocalWindowSize(64 << 20));
  s.on('error', () => {});
  return s;
}

// ---------------------------------------------------------------- measurement state

let proxies: Sidecar[] = [];
let sessions: http2.ClientHttp2Session[] = [];
let syncedCount = 0;
let onSynced: (() => void) | undefined;
let closing = false;
const errors: string[] = [];
let streamErrors = 0;
let nacks = 0;
/** Streams opened again after the server ended one (with Envoy's jittered exponential backoff). */
let retries = 0;
let serverAddress = '';

interface Armed {
  kind: 'route' | 'eds';
  svc: number;
  w1: number;
  port: number;
  expected: number;
  acked: number;
}
let armed: Armed | undefined;
let ackAt = new Float64Array(0);
/** Per sidecar: how many of its resources the armed change must reach, and how many it has. */
let needHits = new Int32Array(0);
let hits = new Int32Array(0);
/** Bytes and resources each sidecar had received per type when the change was armed. */
let bytesAtArm = new Float64Array(0);
let payloadAtArm = new Float64Array(0);
let resourcesAtArm = new Float64Array(0);

function fail(e: unknown): void {
  if (errors.length < 5) errors.push(e instanceof Error ? (e.stack ?? e.message) : String(e));
}

function grow<T extends Int32Array | Uint8Array>(a: T, id: number): T {
  if (id < a.length) return a;
  const b = new (a.constructor as new (n: number) => T)(Math.max(id + 1, a.length * 2, 64));
  b.set(a);
  return b;
}

class TypeState {
  /** name id -> nv id + 1; -1: answered as not existing; 0: none. */
  have: Int32Array = new Int32Array(0);
  /** EDS and RDS: the names subscribed to. */
  want: Uint8Array = new Uint8Array(0);
  wantIds: number[] = [];
  missing = 0;
  got = false;
  version = '';
  nonce = '';
}

class Sidecar {
  readonly types = [new TypeState(), new TypeState(), new TypeState(), new TypeState()];
  /** Bytes and resources received, per type. */
  readonly bytes = new Float64Array(4);
  /** Of those bytes, the resources' own (Any values), without the response envelope. */
  readonly payload = new Float64Array(4);
  readonly resources = new Float64Array(4);
  readonly responses = new Float64Array(4);
  phase = 0;
  syncedAt = 0;
  ldsAsked = false;
  private call!: Frames;
  private nodeSent = false;
  /** Set when it reconnected: [time, bytes at reconnect, time of the last response since]. */
  reconnect: { t: number; bytes: number; last: number; responses: number } | undefined;

  constructor(
    readonly idx: number,
    readonly group: string,
    readonly delta: boolean,
    private session: http2.ClientHttp2Session,
    private readonly nodeBytes: Buffer,
  ) {}

  private failures = 0;

  open(): void {
    this.nodeSent = false;
    this.call = openStream(this.session, ADS + (this.delta ? 'DeltaAggregatedResources' : 'StreamAggregatedResources'), (m) => {
      try {
        this.onResponse(m);
      } catch (e) {
        fail(e);
      }
    }, (status, detail) => {
      if (closing || status === 1) return;
      streamErrors++;
      if (errors.length < 5) errors.push(`sidecar ${this.idx} stream ended: status ${status} ${detail}`);
      // As Envoy does: try again after a jittered exponential backoff (base 500 ms, at most 30 s),
      // on a new connection if this one is gone.
      const delay = Math.random() * Math.min(30_000, 500 * 2 ** this.failures++);
      setTimeout(() => {
        if (closing) return;
        retries++;
        if (this.session.closed || this.session.destroyed) sessions.push((this.session = connectSession(serverAddress)));
        this.reopen(false);
      }, delay).unref();
    });
  }

  start(): void {
    this.open();
    this.ask(CDS, []);
  }

  /** Reconnects as Envoy does: every type asked again at once, delta with what it holds. */
  reopen(measure: boolean): void {
    this.call.cancel();
    this.open();
    if (measure) this.reconnect = { t: now(), bytes: this.bytes.reduce((a, b) => a + b, 0), last: 0, responses: 0 };
    for (const t of [CDS, EDS, LDS, RDS]) {
      const st = this.types[t]!;
      const asked = t === CDS || (t === LDS ? this.ldsAsked : st.wantIds.length > 0);
      if (!asked) continue;
      const names = t === EDS || t === RDS ? st.wantIds : [];
      if (this.delta) {
        const initial: Array<[string, string]> = [];
        for (let id = 0; id < st.have.length; id++) if (st.have[id]! > 0) initial.push([nameList[t]![id]!, nvVersion[t]![st.have[id]! - 1]!]);
        this.send(encodeDeltaRequest({ ...this.node(), typeUrl: TYPE_URLS[t]!, subscribe: names.map((id) => nameList[t]![id]!), initial }));
      } else {
        this.sendSotw(t, st.version, '');
      }
    }
  }

  private node(): { node?: Buffer } {
    if (this.nodeSent) return {};
    this.nodeSent = true;
    return { node: this.nodeBytes };
  }

  private send(m: Buffer): void {
    this.call.write(m);
  }

  private sendSotw(t: number, version: string, nonce: string, error?: string): void {
    const st = this.types[t]!;
    const names = t === EDS || t === RDS ? namesBlock(t, st.wantIds) : Buffer.alloc(0);
    const node = this.node().node;
    const head = message([...(version ? [[1, version] as [number, string]] : []), ...(node ? [[2, node] as [number, Buffer]] : [])]);
    const tail = message([[4, TYPE_URLS[t]!], ...(nonce ? [[5, nonce] as [number, string]] : []), ...(error !== undefined ? [[6, message([[2, error]])] as [number, Buffer]] : [])]);
    this.send(Buffer.concat([head, names, tail]));
  }

  /** A subscription: delta sends what was added and removed; SotW the whole name list. */
  private ask(t: number, add: readonly number[], remove: readonly number[] = []): void {
    if (this.delta) {
      this.send(encodeDeltaRequest({ ...this.node(), typeUrl: TYPE_URLS[t]!, subscribe: add.map((id) => nameList[t]![id]!), unsubscribe: remove.map((id) => nameList[t]![id]!) }));
    } else {
      this.sendSotw(t, this.types[t]!.version, this.types[t]!.nonce);
    }
  }

  private ack(t: number): void {
    const st = this.types[t]!;
    if (this.delta) this.send(encodeDeltaRequest({ typeUrl: TYPE_URLS[t]!, nonce: st.nonce }));
    else this.sendSotw(t, st.version, st.nonce);
  }

  /** Sets the names subscribed to (EDS, RDS) and sends the change. */
  private setWants(t: number, ids: Set<number>): void {
    const st = this.types[t]!;
    const add: number[] = [];
    const remove: number[] = [];
    for (const id of ids) {
      st.want = grow(st.want, id);
      st.have = grow(st.have, id);
      if (!st.want[id]) {
        st.want[id] = 1;
        add.push(id);
        if (st.have[id] === 0) st.missing++;
      }
    }
    for (const id of st.wantIds) {
      if (ids.has(id)) continue;
      st.want[id] = 0;
      remove.push(id);
      if (st.have[id] === 0) st.missing--;
      st.have[id] = 0; // what it unsubscribed from, it drops
    }
    if (add.length === 0 && remove.length === 0) return;
    st.wantIds = [...ids].sort((a, b) => a - b);
    this.ask(t, add.sort((a, b) => a - b), remove);
  }

  private onResponse(buf: Buffer): void {
    const d = this.delta ? decodeDeltaResponse(buf) : undefined;
    const r = d ? undefined : decodeResponse(buf);
    const t = typeIndex.get(d ? d.typeUrl : r!.typeUrl);
    if (t === undefined) return;
    const st = this.types[t]!;
    let parsed: Parsed;
    try {
      parsed = d ? parseDelta(t, buf, d) : parseSotw(t, this.group, buf, r!);
    } catch (e) {
      // What Envoy does with a response it cannot take: a NACK with the previous version.
      nacks++;
      fail(e);
      const nonce = d ? d.nonce : r!.nonce;
      if (this.delta) this.send(encodeDeltaRequest({ typeUrl: TYPE_URLS[t]!, nonce, error: String(e) }));
      else this.sendSotw(t, st.version, nonce, String(e));
      return;
    }
    st.nonce = d ? d.nonce : r!.nonce;
    if (r) st.version = r.version;
    this.failures = 0; // a stream that answers resets the backoff, as Envoy's does
    this.bytes[t] += buf.length;
    this.payload[t] += parsed.payload;
    this.resources[t] += parsed.pairs.length / 2;
    this.responses[t]++;
    if (this.reconnect) {
      this.reconnect.last = now();
      this.reconnect.responses++;
    }
    this.apply(t, parsed);
    st.got = true;
    this.ack(t);
    this.after(t);
  }

  /** Takes in a response's resources (SotW CDS and LDS: the whole set, the rest is removed). */
  private apply(t: number, p: Parsed): void {
    const st = this.types[t]!;
    const pairs = p.pairs;
    const full = !this.delta && (t === CDS || t === LDS);
    const seen = full ? new Set<number>() : undefined;
    const meaning = nvMeaning[t]!;
    for (let i = 0; i < pairs.length; i += 2) {
      const id = pairs[i]!;
      const nv = pairs[i + 1]!;
      st.have = grow(st.have, id);
      const old = st.have[id]!;
      if ((t === EDS || t === RDS) && !st.want[id]) continue; // not subscribed (any more)
      seen?.add(id);
      st.have[id] = nv + 1;
      if ((t === EDS || t === RDS) && old === 0) st.missing--;
      if (armed && ackAt[this.idx] === 0 && needHits[this.idx]! > 0) {
        const m = meaning[nv] as number;
        const before = old > 0 ? (meaning[old - 1] as number) : -2;
        if (armed.kind === 'eds' && t === EDS && edsService[id] === armed.svc && m === armed.port && before !== armed.port) hits[this.idx]!++;
        if (armed.kind === 'route' && t === RDS && m === armed.w1 && before !== armed.w1) hits[this.idx]!++;
      }
    }
    for (const id of p.removed) {
      st.have = grow(st.have, id);
      if ((t === EDS || t === RDS) && st.want[id] && st.have[id] === 0) st.missing--;
      st.have[id] = -1;
    }
    if (seen) for (let id = 0; id < st.have.length; id++) if (st.have[id]! > 0 && !seen.has(id)) st.have[id] = 0;
  }

  /** What the response leads to: new subscriptions, the next stage, a recorded ACK. */
  private after(t: number): void {
    if (t === CDS) {
      // The EDS clusters it holds name the endpoints to ask for.
      const st = this.types[CDS]!;
      const ids = new Set<number>();
      for (let id = 0; id < st.have.length; id++) {
        const nv = st.have[id]!;
        if (nv > 0) {
          const eds = nvMeaning[CDS]![nv - 1] as number;
          if (eds >= 0) ids.add(eds);
        }
      }
      this.setWants(EDS, ids);
      if (this.phase < 1) this.phase = 1;
    } else if (t === LDS) {
      const st = this.types[LDS]!;
      const ids = new Set<number>();
      for (let id = 0; id < st.have.length; id++) {
        const nv = st.have[id]!;
        if (nv > 0) for (const r of nvMeaning[LDS]![nv - 1] as number[]) ids.add(r);
      }
      this.setWants(RDS, ids);
      if (this.phase < 3) this.phase = 3;
    }
    // Cluster warming done (every EDS name answered): then listeners, as Envoy's init order has it.
    if (!this.ldsAsked && this.types[CDS]!.got && this.types[EDS]!.missing === 0) {
      this.ldsAsked = true;
      this.phase = 2;
      this.ask(LDS, []);
    }
    if (this.syncedAt === 0 && this.types[LDS]!.got && this.types[RDS]!.missing === 0 && this.types[EDS]!.missing === 0) {
      this.syncedAt = now();
      this.phase = 4;
      syncedCount++;
      if (syncedCount === proxies.length) onSynced?.();
    }
    if (armed && ackAt[this.idx] === 0 && needHits[this.idx]! > 0 && hits[this.idx]! >= needHits[this.idx]!) {
      ackAt[this.idx] = now();
      armed.acked++;
    }
  }

  /** How many of its resources a change of this kind must reach (0: the change is not for it). */
  exposure(kind: 'route' | 'eds', svc: number): number {
    if (kind === 'eds') {
      let n = 0;
      for (const id of this.types[EDS]!.wantIds) if (edsService[id] === svc) n++;
      return n;
    }
    if (svc !== 0) throw new Error('rule changes are watched on service 0 only');
    let n = 0;
    const st = this.types[RDS]!;
    for (const id of st.wantIds) if (st.have[id]! > 0 && (nvMeaning[RDS]![st.have[id]! - 1] as number) >= 0) n++;
    return n;
  }

  close(): void {
    this.call.cancel();
  }
}

// ---------------------------------------------------------------- commands

interface ConnectOpts {
  address: string;
  n: number;
  xds: 'delta' | 'sotw';
  groups: Array<{ group: string; labels: Record<string, string> }>;
  perChannel: number;
  timeoutMs: number;
  keyByNames?: boolean;
}

function sidecarIp(k: number): string {
  return `10.${200 + (k >> 16)}.${(k >> 8) & 255}.${k & 255}`;
}

function percentile(sorted: ArrayLike<number>, q: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Connections being set up at once (see connect). */
const HANDSHAKES = 256;

function totals(field: 'bytes' | 'payload' | 'resources'): number[] {
  const out = [0, 0, 0, 0];
  for (const p of proxies) for (let t = 0; t < 4; t++) out[t]! += p[field][t]!;
  return out;
}

async function connect(o: ConnectOpts): Promise<Record<string, unknown>> {
  syncedCount = 0;
  serverAddress = o.address;
  keyByNames = !!o.keyByNames;
  const t0 = now();
  const cpu0 = process.cpuUsage();
  // This process plays thousands of sidecars on one core: when its own loop stalls, a connection
  // it opened waits that long for its first stream, and a server's idle timer may close it.
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const done = new Promise<void>((resolve) => (onSynced = resolve));
  // At most HANDSHAKES connections being set up at once: thousands of simultaneous connects overflow
  // the server's accept queue (511), and the kernel's SYN retries (1, 3, 7, 15 s...) would then
  // decide the sync time instead of the server.
  let session!: http2.ClientHttp2Session;
  let i = 0;
  let pending = 0;
  let opened = 0;
  const openMore = () => {
    while (i < o.n && pending < HANDSHAKES) {
      if (i % o.perChannel === 0) {
        sessions.push((session = connectSession(o.address)));
        pending++;
        let settled = false;
        const settle = () => {
          if (settled) return;
          settled = true;
          pending--;
          if (i === o.n && pending === 0) opened = now();
          openMore();
        };
        session.once('connect', settle);
        session.once('close', settle);
      }
      const g = o.groups[i % o.groups.length]!;
      const md = { NAMESPACE: 'default', LABELS: { app: `client-${i}`, ...g.labels }, BENCH_GROUP: g.group };
      const p = new Sidecar(i, g.group, o.xds === 'delta', session, envoyNode(`sidecar~${sidecarIp(i)}~client-${i}.default~default.svc.cluster.local`, `client-${i}.default`, md));
      proxies.push(p);
      p.start();
      i++;
    }
  };
  openMore();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([done.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), o.timeoutMs)))]);
  clearTimeout(timer);
  const phases = [0, 0, 0, 0, 0];
  let last = 0;
  for (const p of proxies) {
    phases[p.phase]!++;
    last = Math.max(last, p.syncedAt);
  }
  const syncTimes = proxies.filter((p) => p.syncedAt).map((p) => p.syncedAt - t0).sort((a, b) => a - b);
  const bytes = totals('bytes');
  const resources = totals('resources');
  const payload = totals('payload');
  loop.disable();
  return {
    t0,
    /** The longest this process's event loop stalled during the sync. */
    clientLoopMaxMs: loop.max / 1e6,
    /** When the last connection was set up. */
    openedMs: opened ? opened - t0 : undefined,
    synced: syncedCount,
    timedOut,
    allSyncedMs: timedOut ? undefined : last - t0,
    p50SyncMs: percentile(syncTimes, 0.5),
    // [none, got CDS, endpoints complete (LDS asked), got LDS, synced]
    phases,
    bytesPerProxy: bytes.map((b) => b / o.n),
    payloadPerProxy: payload.map((b) => b / o.n),
    resourcesPerProxy: resources.map((r) => r / o.n),
    streamErrors,
    retries,
    nacks,
    errors,
    clientCpu: process.cpuUsage(cpu0),
  };
}

process.on('message', async (m: { id: number; cmd: string; [k: string]: unknown }) => {
  const reply = (body: Record<string, unknown>) => process.send!({ id: m.id, ok: true, ...body });
  try {
    switch (m.cmd) {
      case 'connect':
        reply(await connect(m as unknown as ConnectOpts));
        break;
      case 'arm': {
        const kind = m.kind as 'route' | 'eds';
        const svc = m.service as number;
        ackAt = new Float64Array(proxies.length);
        needHits = new Int32Array(proxies.length);
        hits = new Int32Array(proxies.length);
        bytesAtArm = new Float64Array(proxies.length * 4);
        payloadAtArm = new Float64Array(proxies.length * 4);
        resourcesAtArm = new Float64Array(proxies.length * 4);
        let expected = 0;
        for (const p of proxies) {
          needHits[p.idx] = p.exposure(kind, svc);
          if (needHits[p.idx]! > 0) expected++;
          bytesAtArm.set(p.bytes, p.idx * 4);
          payloadAtArm.set(p.payload, p.idx * 4);
          resourcesAtArm.set(p.resources, p.idx * 4);
        }
        armed = { kind, svc, w1: (m.w1 as number) ?? -1, port: (m.port as number) ?? -1, expected, acked: 0 };
        reply({ expected });
        break;
      }
      case 'await-armed': {
        const a = armed!;
        const complete = await waitFor(() => a.acked >= a.expected, m.timeoutMs as number);
        // Whatever else the server sends for this change arrives within the settle time.
        await sleep((m.settleMs as number) ?? 300);
        armed = undefined;
        const t0 = m.t0 as number;
        const lat: number[] = [];
        const bytes = [0, 0, 0, 0];
        const payload = [0, 0, 0, 0];
        const resources = [0, 0, 0, 0];
        let minBytes = Infinity;
        let maxBytes = 0;
        let counted = 0;
        for (const p of proxies) {
          if (needHits[p.idx] === 0) continue;
          if (ackAt[p.idx]) lat.push(ackAt[p.idx]! - t0);
          let sum = 0;
          for (let t = 0; t < 4; t++) {
            const b = p.bytes[t]! - bytesAtArm[p.idx * 4 + t]!;
            bytes[t]! += b;
            sum += b;
            resources[t]! += p.resources[t]! - resourcesAtArm[p.idx * 4 + t]!;
            payload[t]! += p.payload[t]! - payloadAtArm[p.idx * 4 + t]!;
          }
          minBytes = Math.min(minBytes, sum);
          maxBytes = Math.max(maxBytes, sum);
          counted++;
        }
        lat.sort((x, y) => x - y);
        reply({
          complete,
          expected: a.expected,
          acked: a.acked,
          latencies: lat,
          // per sidecar the change reached, averaged: bytes and resources received per type
          bytesPerProxy: bytes.map((b) => b / Math.max(1, counted)),
          payloadPerProxy: payload.map((b) => b / Math.max(1, counted)),
          resourcesPerProxy: resources.map((r) => r / Math.max(1, counted)),
          minBytes: counted ? minBytes : 0,
          maxBytes,
        });
        break;
      }
      case 'reconnect': {
        // The first `count` sidecars drop their stream and open a new one on the same connection;
        // after `windowMs`, what they received since.
        const count = Math.min(m.count as number, proxies.length);
        const chosen = proxies.slice(0, count);
        for (const p of chosen) p.reopen(true);
        await sleep(m.windowMs as number);
        let bytes = 0;
        let responses = 0;
        let lastMs = 0;
        for (const p of chosen) {
          const r = p.reconnect!;
          bytes += p.bytes.reduce((x, y) => x + y, 0) - r.bytes;
          responses += r.responses;
          if (r.last) lastMs = Math.max(lastMs, r.last - r.t);
          p.reconnect = undefined;
        }
        reply({ count, bytesPerProxy: bytes / Math.max(1, count), responsesPerProxy: responses / Math.max(1, count), lastResponseMs: lastMs, streamErrors, errors });
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
        reply({ cpu: process.cpuUsage(), rss: process.memoryUsage().rss, synced: syncedCount, streamErrors, retries, nacks, errors, types: TYPE_NAMES });
        break;
      case 'close':
        closing = true;
        for (const p of proxies) p.close();
        for (const s of sessions) s.close();
        proxies = [];
        sessions = [];
        reply({});
        setTimeout(() => process.exit(0), 50);
        break;
      default:
        throw new Error(`unknown command ${m.cmd}`);
    }
  } catch (e) {
    process.send!({ id: m.id, ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  }
});

process.on('disconnect', () => process.exit(0));
process.send!({ id: 0, ok: true, ready: true });
