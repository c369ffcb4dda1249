// The lower bound for Envoy sidecars, inside the benchmark's lowerbound server (bench/server.ts):
// the least an ADS server on grpc-js could do to serve them, over delta (DeltaAggregatedResources)
// and state of the world (StreamAggregatedResources).
//
// - Each sidecar group (its node names it: metadata BENCH_GROUP) gets meshpilot's own translate
//   output for that group's node, every resource checked and encoded once with meshpilot's encoder
//   (identical resources of different groups share one encoding), versioned by a hash of its bytes.
// - Streams with the same subscription (group, type, protocol, names or wildcard) share one
//   subscription object; a stream keeps no per-resource state (it has what it was sent: every
//   change is pushed to it). The answer to a new subscription is encoded once per subscription and
//   generation and the same buffer written to every stream that asks.
// - A change re-encodes exactly the changed resources, once each, and writes one shared response
//   with exactly those (delta: the changed resources; SotW: the changed route configs or
//   ClusterLoadAssignments, which SotW allows partially) to every stream subscribed to them.
// - No model, no debounce, no ACK bookkeeping (an ACK or NACK is recognised and ignored).
import type * as grpc from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { encodeResource, type ResourceJson } from '../control-plane/envoy/check.ts';
import type { Model } from '../control-plane/model/types.ts';
import { TranslateMemo } from '../control-plane/translate/memo.ts';
import { proxyFromNode, type NodeInfo } from '../control-plane/translate/proxy.ts';
import { resourceName, translate } from '../control-plane/translate/translate.ts';
import { isClusterOf, setPorts, setVhostWeights } from './resource-edits.ts';
import {
  CLUSTER,
  ENDPOINTS,
  LISTENER,
  ROUTE_CONFIG,
  decodeDeltaRequest,
  eachField,
  encodeDeltaResource,
  encodeDeltaResponse,
  encodeResponse,
  nodeMetadataString,
} from './wire.ts';

/** A sidecar group: its name (node metadata BENCH_GROUP) and a node of it, to translate for. */
export interface EnvoyGroup {
  group: string;
  node: NodeInfo;
}

type Protocol = 'delta' | 'sotw';
const TYPES = [CLUSTER, ENDPOINTS, LISTENER, ROUTE_CONFIG];

interface Rec {
  id: number;
  name: string;
  json: ResourceJson;
  any: Buffer;
  version: string;
  /** The delta Resource message (version, Any, name). */
  entry: Buffer;
}

interface Group {
  name: string;
  recs: Map<string, Map<string, Rec>>;
  subs: Set<Sub>;
}

interface Sub {
  key: string;
  group: Group;
  type: string;
  protocol: Protocol;
  wildcard: boolean;
  names: ReadonlySet<string>;
  /** SotW: the encoded names of the request that made it, to recognise ACKs without decoding names. */
  raw?: Buffer;
  streams: Set<Stream>;
  answer?: { generation: number; buf: Buffer };
}

interface Stream {
  call: grpc.ServerDuplexStream<Buffer, Buffer>;
  group?: Group;
  subs: Map<string, Sub>;
}

const hash = (b: Uint8Array) => createHash('sha1').update(b).digest('hex').slice(0, 16);

export class EnvoyLowerBound {
  private readonly groups = new Map<string, Group>();
  private readonly subs = new Map<string, Sub>();
  private readonly streams = new Set<Stream>();
  private nextId = 1;
  private nonce = 0;
  private generation = 0;

  constructor(model: Model, groups: readonly EnvoyGroup[]) {
    const memo = new TranslateMemo();
    const byContent = new Map<string, Rec>();
    for (const g of groups) {
      const resources = translate(model, proxyFromNode(g.node), memo);
      const group: Group = { name: g.group, recs: new Map(), subs: new Set() };
      for (const type of TYPES) {
        const m = new Map<string, Rec>();
        for (const json of resources[type as keyof typeof resources]) {
          const key = `${type}\n${JSON.stringify(json)}`;
          let rec = byContent.get(key);
          if (!rec) byContent.set(key, (rec = this.record(resourceName(json), json)));
          m.set(rec.name, rec);
        }
        group.recs.set(type, m);
      }
      this.groups.set(g.group, group);
    }
  }

  get streamCount(): number {
    return this.streams.size;
  }

  /** Each group's encoded resources by type (for another server mode to serve: the Go peer). */
  resourcesByGroup(): Array<[string, Record<string, Buffer[]>]> {
    return [...this.groups.values()].map((g) => [g.name, Object.fromEntries([...g.recs].map(([type, m]) => [type, [...m.values()].map((r) => r.any)]))]);
  }

  /** The resources the last change made, per group (encoded), for another server mode to take. */
  lastChange: { type: string; byGroup: Array<[string, Buffer[]]> } | undefined;

  private record(name: string, json: ResourceJson): Rec {
    const any = encodeResource(json);
    const version = hash(any.value);
    return { id: this.nextId++, name, json, any: any.value, version, entry: encodeDeltaResource(name, version, any.type_url, any.value) };
  }

  private nextNonce(): string {
    return `${this.generation}.${++this.nonce}`;
  }

  // ------------------------------------------------------------ subscriptions

  private subscription(group: Group, type: string, protocol: Protocol, wildcard: boolean, names: Set<string>, raw?: Buffer): Sub {
    const key = `${group.name}\n${type}\n${protocol}\n${wildcard ? '*' : [...names].sort().join('\n')}`;
    let sub = this.subs.get(key);
    if (!sub) {
      sub = { key, group, type, protocol, wildcard, names, ...(raw ? { raw: Buffer.from(raw) } : {}), streams: new Set() };
      this.subs.set(key, sub);
      group.subs.add(sub);
    }
    return sub;
  }

  private join(s: Stream, type: string, sub: Sub): void {
    const prev = s.subs.get(type);
    if (prev === sub) return;
    if (prev) this.leaveSub(s, prev);
    sub.streams.add(s);
    s.subs.set(type, sub);
  }

  private leaveSub(s: Stream, sub: Sub): void {
    sub.streams.delete(s);
    if (sub.streams.size === 0) {
      this.subs.delete(sub.key);
      sub.group.subs.delete(sub);
    }
  }

  private wanted(sub: Sub): Rec[] {
    const all = sub.group.recs.get(sub.type)!;
    if (sub.wildcard) return [...all.values()];
    const out: Rec[] = [];
    for (const n of sub.names) {
      const r = all.get(n);
      if (r) out.push(r);
    }
    return out;
  }

  /** A subscription's whole answer, encoded once per generation and shared by its streams. */
  private answer(sub: Sub): Buffer {
    if (sub.answer?.generation === this.generation) return sub.answer.buf;
    const recs = this.wanted(sub);
    const nonce = this.nextNonce();
    let buf: Buffer;
    if (sub.protocol === 'delta') {
      const all = sub.group.recs.get(sub.type)!;
      const missing = sub.wildcard ? [] : [...sub.names].filter((n) => !all.has(n));
      buf = encodeDeltaResponse(nonce, sub.type, nonce, recs.map((r) => r.entry), missing);
    } else {
      buf = encodeResponse(nonce, sub.type, nonce, recs.map((r) => r.any));
    }
    sub.answer = { generation: this.generation, buf };
    return buf;
  }

  private groupOf(node: Uint8Array | undefined): Group | undefined {
    const name = node ? nodeMetadataString(node, 'BENCH_GROUP') : undefined;
    return name === undefined ? undefined : this.groups.get(name);
  }

  private open(call: grpc.ServerDuplexStream<Buffer, Buffer>): Stream {
    const s: Stream = { call, subs: new Map() };
    this.streams.add(s);
    const done = () => {
      if (!this.streams.delete(s)) return;
      for (const sub of s.subs.values()) this.leaveSub(s, sub);
      s.subs.clear();
    };
    call.on('end', () => {
      done();
      call.end();
    });
    call.on('error', done);
    call.on('cancelled', done);
    call.on('close', done);
    return s;
  }

  private refuse(s: Stream): void {
    s.call.emit('error', { code: 3, details: 'node metadata BENCH_GROUP names no sidecar group of this server' });
  }

  // ------------------------------------------------------------ delta

  deltaStream(call: grpc.ServerDuplexStream<Buffer, Buffer>): void {
    const s = this.open(call);
    call.on('data', (buf: Buffer) => this.onDelta(s, buf));
  }

  private onDelta(s: Stream, buf: Buffer): void {
    const req = decodeDeltaRequest(buf);
    if (!s.group) s.group = this.groupOf(req.node);
    if (!s.group) return this.refuse(s);
    const type = req.typeUrl;
    if (!TYPES.includes(type)) return;
    const prev = s.subs.get(type);
    // An ACK or a NACK: nothing to do.
    if (prev && req.subscribe.length === 0 && req.unsubscribe.length === 0) return;
    let wildcard = prev?.wildcard ?? (req.subscribe.length === 0 && (type === LISTENER || type === CLUSTER));
    const names = new Set(prev?.names ?? []);
    const added: string[] = [];
    for (const n of req.subscribe) {
      if (n === '*') wildcard = true;
      else if (!names.has(n)) {
        names.add(n);
        added.push(n);
      }
    }
    for (const n of req.unsubscribe) {
      if (n === '*') wildcard = false;
      else names.delete(n);
    }
    const sub = this.subscription(s.group, type, 'delta', wildcard, names);
    this.join(s, type, sub);
    if (!prev && req.initial.length === 0) {
      s.call.write(this.answer(sub));
      return;
    }
    const all = s.group.recs.get(type)!;
    const nonce = this.nextNonce();
    if (prev) {
      // The subscription grew: the added names (those that do not exist, as removed).
      const recs = added.flatMap((n) => all.get(n) ?? []);
      const missing = added.filter((n) => !all.has(n));
      if (recs.length || missing.length) s.call.write(encodeDeltaResponse(nonce, type, nonce, recs.map((r) => r.entry), missing));
      return;
    }
    // A reconnect: only what differs from initial_resource_versions, and what it has that is gone.
    const have = new Map(req.initial);
    const send = this.wanted(sub).filter((r) => have.get(r.name) !== r.version);
    const removed = [...have.keys()].filter((n) => !all.has(n));
    if (!sub.wildcard) for (const n of sub.names) if (!all.has(n) && !have.has(n)) removed.push(n);
    if (send.length === 0 && removed.length === 0) return; // it has everything already
    s.call.write(encodeDeltaResponse(nonce, type, nonce, send.map((r) => r.entry), removed));
  }

  // ------------------------------------------------------------ state of the world

  /**
   * Takes over a SotW stream whose first request comes from a sidecar of one of the groups (node
   * metadata BENCH_GROUP); returns false, leaving it alone, for any other client.
   */
  adoptSotw(call: grpc.ServerDuplexStream<Buffer, Buffer>, first: Buffer): boolean {
    const parts = sotwRequest(first);
    const group = this.groupOf(parts.node);
    if (!group) return false;
    const s = this.open(call);
    s.group = group;
    call.on('data', (buf: Buffer) => this.onSotw(s, buf));
    this.onSotw(s, first);
    return true;
  }

  private onSotw(s: Stream, buf: Buffer): void {
    const req = sotwRequest(buf);
    if (!TYPES.includes(req.typeUrl)) return;
    const prev = s.subs.get(req.typeUrl);
    // An ACK or NACK repeats the names: recognised by their bytes first.
    if (prev?.raw && prev.raw.equals(req.namesRaw)) return;
    const names = new Set<string>();
    eachField(req.namesRaw, 0, req.namesRaw.length, (f, w, a, b) => {
      if (f === 3 && w === 2) names.add(Buffer.from(req.namesRaw.buffer, req.namesRaw.byteOffset + a, b - a).toString('utf8'));
    });
    const wildcard = names.size === 0 && (req.typeUrl === LISTENER || req.typeUrl === CLUSTER);
    const sub = this.subscription(s.group!, req.typeUrl, 'sotw', wildcard, names, req.namesRaw);
    if (sub === prev) return;
    this.join(s, req.typeUrl, sub);
    s.call.write(this.answer(sub));
  }

  // ------------------------------------------------------------ changes

  /**
   * Re-encodes each resource `edit` changes (once, however many groups hold it) and writes one
   * shared response with exactly the changed resources to every stream subscribed to them.
   * Returns the number of streams written to.
   */
  private change(type: string, applies: (json: ResourceJson) => boolean, edit: (json: ResourceJson) => void): number {
    this.generation++;
    const remade = new Map<Rec, Rec | null>();
    const responses = new Map<string, Buffer>();
    let writes = 0;
    this.lastChange = { type, byGroup: [] };
    for (const group of this.groups.values()) {
      const recs = group.recs.get(type)!;
      const changed: Rec[] = [];
      for (const rec of recs.values()) {
        let next = remade.get(rec);
        if (next === undefined) {
          let json: ResourceJson | undefined;
          if (applies(rec.json)) edit((json = structuredClone(rec.json)));
          next = json ? this.record(rec.name, json) : null;
          remade.set(rec, next);
        }
        if (next) changed.push(next);
      }
      for (const r of changed) recs.set(r.name, r);
      if (changed.length === 0) continue;
      this.lastChange.byGroup.push([group.name, changed.map((r) => r.any)]);
      for (const sub of group.subs) {
        if (sub.type !== type || sub.streams.size === 0) continue;
        const mine = sub.wildcard ? changed : changed.filter((r) => sub.names.has(r.name));
        if (mine.length === 0) continue;
        const key = `${sub.protocol}\n${mine.map((r) => r.id).join(',')}`;
        let buf = responses.get(key);
        if (!buf) {
          const nonce = this.nextNonce();
          buf = sub.protocol === 'delta' ? encodeDeltaResponse(nonce, type, nonce, mine.map((r) => r.entry)) : encodeResponse(nonce, type, nonce, mine.map((r) => r.any));
          responses.set(key, buf);
        }
        for (const st of sub.streams) st.call.write(buf);
        writes += sub.streams.size;
      }
    }
    return writes;
  }

  /** New weights in the virtual host `vhost` (`host:port`) of every route config that has it. */
  routeChange(vhost: string, w1: number): number {
    return this.change(
      ROUTE_CONFIG,
      (json) => ((json as { virtual_hosts?: Array<{ name?: string }> }).virtual_hosts ?? []).some((h) => h.name === vhost),
      (json) => setVhostWeights(json, vhost, w1),
    );
  }

  /** New endpoint ports for every ClusterLoadAssignment of these hosts (all subsets), one batch. */
  endpointChange(changes: ReadonlyArray<{ host: string; port: number }>): number {
    const portOf = (json: ResourceJson) => changes.find((x) => isClusterOf(String(json.cluster_name), x.host))?.port;
    return this.change(ENDPOINTS, (json) => portOf(json) !== undefined, (json) => setPorts(json, portOf(json)!));
  }
}

/** A SotW DiscoveryRequest's type, node and encoded names (contiguous, as every client writes them). */
function sotwRequest(buf: Buffer): { typeUrl: string; node?: Uint8Array; namesRaw: Buffer } {
  let typeUrl = '';
  let node: Uint8Array | undefined;
  let first = -1;
  let last = -1;
  eachField(buf, 0, buf.length, (f, w, s, e) => {
    if (w !== 2) return;
    if (f === 4) typeUrl = buf.toString('utf8', s, e);
    else if (f === 2) node = buf.subarray(s, e);
    else if (f === 3) {
      // The field's tag (1 byte) and length varint come before s.
      const len = e - s;
      const start = s - 1 - (len < 128 ? 1 : len < 16384 ? 2 : 3);
      if (first < 0) first = start;
      last = e;
    }
  });
  return { typeUrl, ...(node ? { node } : {}), namesRaw: first < 0 ? Buffer.alloc(0) : buf.subarray(first, last) };
}
