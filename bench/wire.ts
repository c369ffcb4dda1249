// Just enough protobuf wire format for the benchmark's ADS clients and its lower-bound server:
// DiscoveryRequest / DiscoveryResponse by hand, and field paths into Envoy resources (the RDS
// name of a Listener, the clusters of a RouteConfiguration, the cluster name and first endpoint
// port of a ClusterLoadAssignment). Parsing only what is needed keeps the simulated proxies cheap,
// so that the control plane, not the load generator, is what gets measured.

export const LISTENER = 'type.googleapis.com/envoy.config.listener.v3.Listener';
export const ROUTE_CONFIG = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';
export const CLUSTER = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
export const ENDPOINTS = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';

// ---- writing ----

function varintSize(n: number): number {
  let s = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    s++;
  }
  return s;
}

class Writer {
  buf: Buffer;
  pos = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  varint(n: number): void {
    while (n >= 0x80) {
      this.buf[this.pos++] = (n & 0x7f) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }
  bytes(field: number, b: Uint8Array): void {
    this.varint((field << 3) | 2);
    this.varint(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  string(field: number, s: string): void {
    const n = Buffer.byteLength(s);
    this.varint((field << 3) | 2);
    this.varint(n);
    this.buf.write(s, this.pos, 'utf8');
    this.pos += n;
  }
}

const fieldSize = (field: number, len: number) => varintSize(field << 3) + varintSize(len) + len;

/** A length-delimited message made of (field, bytes | string) pairs, in order. */
export function message(fields: Array<[number, Uint8Array | string]>): Buffer {
  let size = 0;
  for (const [f, v] of fields) size += fieldSize(f, typeof v === 'string' ? Buffer.byteLength(v) : v.length);
  const w = new Writer(size);
  for (const [f, v] of fields) typeof v === 'string' ? w.string(f, v) : w.bytes(f, v);
  return w.buf;
}

/** google.protobuf.Struct from a JSON object of strings and nested objects. */
export function struct(o: Record<string, unknown>): Buffer {
  const value = (v: unknown): Buffer =>
    typeof v === 'string' ? message([[3, v]]) : message([[5, struct(v as Record<string, unknown>)]]);
  return message(Object.entries(o).map(([k, v]) => [1, message([[1, k], [2, value(v)]])] as [number, Uint8Array]));
}

/** envoy.config.core.v3.Node with id, metadata and an (empty) locality, as gRPC's bootstrap sends it. */
export function node(id: string, metadata: Record<string, unknown>): Buffer {
  return message([[1, id], [3, struct(metadata)], [4, Buffer.alloc(0)], [6, 'grpc-node-js']]);
}

export interface Request {
  node?: Buffer;
  version: string;
  names: readonly string[];
  typeUrl: string;
  nonce: string;
}

/** Encodes a DiscoveryRequest. */
export function encodeRequest(r: Request): Buffer {
  let size = 0;
  if (r.version) size += fieldSize(1, Buffer.byteLength(r.version));
  if (r.node) size += fieldSize(2, r.node.length);
  for (const n of r.names) size += fieldSize(3, Buffer.byteLength(n));
  size += fieldSize(4, Buffer.byteLength(r.typeUrl));
  if (r.nonce) size += fieldSize(5, Buffer.byteLength(r.nonce));
  const w = new Writer(size);
  if (r.version) w.string(1, r.version);
  if (r.node) w.bytes(2, r.node);
  for (const n of r.names) w.string(3, n);
  w.string(4, r.typeUrl);
  if (r.nonce) w.string(5, r.nonce);
  return w.buf;
}

/** Encodes a DiscoveryResponse whose resources are already-encoded Any values of `typeUrl`. */
export function encodeResponse(version: string, typeUrl: string, nonce: string, resources: readonly Uint8Array[]): Buffer {
  const anyTypeUrlSize = fieldSize(1, Buffer.byteLength(typeUrl));
  let size = fieldSize(1, Buffer.byteLength(version)) + fieldSize(4, Buffer.byteLength(typeUrl)) + fieldSize(5, Buffer.byteLength(nonce));
  for (const r of resources) size += fieldSize(2, anyTypeUrlSize + fieldSize(2, r.length));
  const w = new Writer(size);
  w.string(1, version);
  for (const r of resources) {
    w.varint((2 << 3) | 2);
    w.varint(anyTypeUrlSize + fieldSize(2, r.length));
    w.string(1, typeUrl);
    w.bytes(2, r);
  }
  w.string(4, typeUrl);
  w.string(5, nonce);
  return w.buf;
}

// ---- reading ----

// Hot paths avoid closures created per call: tsx (esbuild keepNames) wraps every named function
// expression in __name(), an Object.defineProperty per creation.
let pos = 0;

function readVarint(buf: Uint8Array): number {
  let result = 0;
  let mul = 1;
  let b: number;
  do {
    b = buf[pos++]!;
    result += (b & 0x7f) * mul;
    mul *= 128;
  } while (b & 0x80);
  return result;
}

/** Calls `fn(field, wireType, start, end, varint)` for each field of buf[start, end). */
export function eachField(
  buf: Uint8Array,
  start: number,
  end: number,
  fn: (field: number, wire: number, s: number, e: number, v: number) => void,
): void {
  let p = start;
  while (p < end) {
    pos = p;
    const key = readVarint(buf);
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) {
      const v = readVarint(buf);
      p = pos;
      fn(field, wire, p, p, v);
    } else if (wire === 2) {
      const len = readVarint(buf);
      p = pos;
      fn(field, wire, p, p + len, len);
      p += len;
    } else if (wire === 1) {
      p = pos + 8;
    } else if (wire === 5) {
      p = pos + 4;
    } else {
      throw new Error(`unsupported wire type ${wire}`);
    }
  }
}

const utf8 = (b: Uint8Array, s: number, e: number) => Buffer.from(b.buffer, b.byteOffset + s, e - s).toString('utf8');

export interface Response {
  version: string;
  typeUrl: string;
  nonce: string;
  /** Any.value of each resource, as views into the response buffer (parsed on first use). */
  readonly resources: Uint8Array[];
}

/** Reads version, type and nonce; the resources are only split out if `resources` is read. */
export function decodeResponse(buf: Uint8Array): Response {
  let version = '';
  let typeUrl = '';
  let nonce = '';
  const ranges: number[] = [];
  let p = 0;
  while (p < buf.length) {
    pos = p;
    const key = readVarint(buf);
    const wire = key & 7;
    if (wire === 0) {
      readVarint(buf);
      p = pos;
      continue;
    }
    if (wire !== 2) throw new Error(`unexpected wire type ${wire} in DiscoveryResponse`);
    const len = readVarint(buf);
    const s = pos;
    p = s + len;
    const f = Math.floor(key / 8);
    if (f === 1) version = utf8(buf, s, p);
    else if (f === 4) typeUrl = utf8(buf, s, p);
    else if (f === 5) nonce = utf8(buf, s, p);
    else if (f === 2) ranges.push(s, p);
  }
  let resources: Uint8Array[] | undefined;
  return {
    version,
    typeUrl,
    nonce,
    get resources() {
      if (!resources) {
        const out: Uint8Array[] = [];
        for (let i = 0; i < ranges.length; i += 2) {
          eachField(buf, ranges[i]!, ranges[i + 1]!, (af, aw, as, ae) => {
            if (af === 2 && aw === 2) out.push(buf.subarray(as, ae));
          });
        }
        resources = out;
      }
      return resources;
    },
  };
}

export interface DecodedRequest {
  hasNode: boolean;
  version: string;
  names: string[];
  typeUrl: string;
  nonce: string;
  nack: boolean;
}

export function decodeRequest(buf: Uint8Array): DecodedRequest {
  const r: DecodedRequest = { hasNode: false, version: '', names: [], typeUrl: '', nonce: '', nack: false };
  eachField(buf, 0, buf.length, (f, w, s, e) => {
    if (w !== 2) return;
    if (f === 1) r.version = utf8(buf, s, e);
    else if (f === 2) r.hasNode = true;
    else if (f === 3) r.names.push(utf8(buf, s, e));
    else if (f === 4) r.typeUrl = utf8(buf, s, e);
    else if (f === 5) r.nonce = utf8(buf, s, e);
    else if (f === 6) r.nack = true;
  });
  return r;
}

/** The strings found by following a path of field numbers (every repeated occurrence). */
export function stringsAt(buf: Uint8Array, path: readonly number[], s = 0, e = buf.length, out: string[] = []): string[] {
  const [head, ...rest] = path;
  eachField(buf, s, e, (f, w, fs, fe) => {
    if (f !== head || w !== 2) return;
    if (rest.length === 0) out.push(utf8(buf, fs, fe));
    else stringsAt(buf, rest, fs, fe, out);
  });
  return out;
}

/** The first varint found by following a path of field numbers, or -1. */
export function firstVarintAt(buf: Uint8Array, path: readonly number[], s = 0, e = buf.length): number {
  let found = -1;
  const [head, ...rest] = path;
  eachField(buf, s, e, (f, w, fs, fe, v) => {
    if (found >= 0 || f !== head) return;
    if (rest.length === 0) {
      if (w === 0) found = v;
    } else if (w === 2) {
      found = firstVarintAt(buf, rest, fs, fe);
    }
  });
  return found;
}

/** Listener -> api_listener -> HttpConnectionManager -> rds.route_config_name. */
export function listenerRouteName(listener: Uint8Array): { name: string; rds: string | undefined } {
  const name = stringsAt(listener, [1])[0] ?? '';
  // ApiListener.api_listener is an Any: its value (field 2) is the HttpConnectionManager.
  let rds: string | undefined;
  eachField(listener, 0, listener.length, (f, w, s, e) => {
    if (f !== 19 || w !== 2) return;
    eachField(listener, s, e, (af, aw, as, ae) => {
      if (af !== 1 || aw !== 2) return;
      eachField(listener, as, ae, (xf, xw, xs, xe) => {
        if (xf === 2 && xw === 2) rds = stringsAt(listener, [3, 2], xs, xe)[0];
      });
    });
  });
  return { name, rds };
}

/** RouteConfiguration -> its name and every cluster its routes point at (single or weighted). */
export function routeClusters(route: Uint8Array): { name: string; clusters: string[] } {
  const name = stringsAt(route, [1])[0] ?? '';
  const clusters = [...stringsAt(route, [2, 3, 2, 1]), ...stringsAt(route, [2, 3, 2, 3, 1, 1])];
  return { name, clusters: [...new Set(clusters)] };
}

/** ClusterLoadAssignment -> cluster_name and the port of its first endpoint (the generation marker). */
export function claMarker(cla: Uint8Array): { cluster: string; port: number } {
  let cluster = '';
  eachField(cla, 0, cla.length, (f, w, s, e) => {
    if (f === 1 && w === 2 && cluster === '') cluster = utf8(cla, s, e);
  });
  return { cluster, port: firstVarintAt(cla, [2, 2, 1, 1, 1, 3]) };
}

/** Cluster -> name. */
export function clusterNameOf(cluster: Uint8Array): string {
  return stringsAt(cluster, [1])[0] ?? '';
}

// ---- delta xDS and Envoy resources (for the simulated Envoy sidecars, bench/envoy-proxies.ts, and
// the delta lower bound, bench/lowerbound-delta.ts) ----

/** envoy.config.core.v3.Node as an Envoy sidecar sends it: id, cluster, metadata, user agent "envoy". */
export function envoyNode(id: string, cluster: string, metadata: Record<string, unknown>): Buffer {
  return message([[1, id], [2, cluster], [3, struct(metadata)], [4, Buffer.alloc(0)], [6, 'envoy']]);
}

export interface DeltaRequest {
  node?: Buffer;
  typeUrl: string;
  subscribe?: readonly string[];
  unsubscribe?: readonly string[];
  /** initial_resource_versions: what the client already has, on a new stream. */
  initial?: ReadonlyArray<readonly [string, string]>;
  nonce?: string;
  /** error_detail.message: a NACK. */
  error?: string;
}

/** Encodes a DeltaDiscoveryRequest. */
export function encodeDeltaRequest(r: DeltaRequest): Buffer {
  const fields: Array<[number, Uint8Array | string]> = [];
  if (r.node) fields.push([1, r.node]);
  fields.push([2, r.typeUrl]);
  for (const n of r.subscribe ?? []) fields.push([3, n]);
  for (const n of r.unsubscribe ?? []) fields.push([4, n]);
  for (const [k, v] of r.initial ?? []) fields.push([5, message([[1, k], [2, v]])]);
  if (r.nonce) fields.push([6, r.nonce]);
  if (r.error !== undefined) fields.push([7, message([[2, r.error]])]);
  return message(fields);
}

/** One delta Resource message (version, Any, name), encoded once and shared by every response carrying it. */
export function encodeDeltaResource(name: string, version: string, typeUrl: string, value: Uint8Array): Buffer {
  return message([[1, version], [2, message([[1, typeUrl], [2, value]])], [3, name]]);
}

/** A DeltaDiscoveryResponse of already-encoded Resource messages (encodeDeltaResource). */
export function encodeDeltaResponse(systemVersion: string, typeUrl: string, nonce: string, entries: readonly Uint8Array[], removed: readonly string[] = []): Buffer {
  const fields: Array<[number, Uint8Array | string]> = [[1, systemVersion]];
  for (const e of entries) fields.push([2, e]);
  fields.push([4, typeUrl]);
  fields.push([5, nonce]);
  for (const n of removed) fields.push([6, n]);
  return message(fields);
}

export interface DeltaResponse {
  systemVersion: string;
  typeUrl: string;
  nonce: string;
  removed: string[];
  /** [start, end) of each Resource message in the buffer (read with deltaResourceAt). */
  ranges: number[];
}

/** Reads a DeltaDiscoveryResponse's small fields; the resources are left as ranges. */
export function decodeDeltaResponse(buf: Uint8Array): DeltaResponse {
  const r: DeltaResponse = { systemVersion: '', typeUrl: '', nonce: '', removed: [], ranges: [] };
  eachField(buf, 0, buf.length, (f, w, s, e) => {
    if (w !== 2) return;
    if (f === 2) r.ranges.push(s, e);
    else if (f === 1) r.systemVersion = utf8(buf, s, e);
    else if (f === 4) r.typeUrl = utf8(buf, s, e);
    else if (f === 5) r.nonce = utf8(buf, s, e);
    else if (f === 6) r.removed.push(utf8(buf, s, e));
  });
  return r;
}

/** A delta Resource: name, version, and the range of its Any's value (the resource itself). */
export function deltaResourceAt(buf: Uint8Array, s: number, e: number): { name: string; version: string; start: number; end: number } {
  // Read once per resource of every response a sidecar gets: a plain loop, no closures.
  let name = '';
  let version = '';
  let start = 0;
  let end = 0;
  let p = s;
  while (p < e) {
    pos = p;
    const key = readVarint(buf);
    const wire = key & 7;
    if (wire === 0) {
      readVarint(buf);
      p = pos;
      continue;
    }
    if (wire !== 2) throw new Error(`unexpected wire type ${wire} in a delta Resource`);
    const len = readVarint(buf);
    const fs = pos;
    p = fs + len;
    const f = Math.floor(key / 8);
    if (f === 3) name = utf8(buf, fs, p);
    else if (f === 1) version = utf8(buf, fs, p);
    else if (f === 2) {
      // Any: type_url (1), value (2).
      let q = fs;
      while (q < p) {
        pos = q;
        const k = readVarint(buf);
        const l = readVarint(buf);
        q = pos + l;
        if (k === ((2 << 3) | 2)) {
          start = pos;
          end = q;
        }
      }
    }
  }
  return { name, version, start, end };
}

export interface DecodedDeltaRequest {
  /** The Node message, on a stream's first request. */
  node?: Uint8Array;
  typeUrl: string;
  subscribe: string[];
  unsubscribe: string[];
  initial: Array<[string, string]>;
  nonce: string;
  nack: boolean;
}

export function decodeDeltaRequest(buf: Uint8Array): DecodedDeltaRequest {
  const r: DecodedDeltaRequest = { typeUrl: '', subscribe: [], unsubscribe: [], initial: [], nonce: '', nack: false };
  eachField(buf, 0, buf.length, (f, w, s, e) => {
    if (w !== 2) return;
    if (f === 1) r.node = buf.subarray(s, e);
    else if (f === 2) r.typeUrl = utf8(buf, s, e);
    else if (f === 3) r.subscribe.push(utf8(buf, s, e));
    else if (f === 4) r.unsubscribe.push(utf8(buf, s, e));
    else if (f === 5) r.initial.push([stringsAt(buf, [1], s, e)[0] ?? '', stringsAt(buf, [2], s, e)[0] ?? '']);
    else if (f === 6) r.nonce = utf8(buf, s, e);
    else if (f === 7) r.nack = true;
  });
  return r;
}

/** The Node of a (SotW) DiscoveryRequest, if it carries one. */
export function requestNode(buf: Uint8Array): Uint8Array | undefined {
  let node: Uint8Array | undefined;
  eachField(buf, 0, buf.length, (f, w, s, e) => {
    if (f === 2 && w === 2) node = buf.subarray(s, e);
  });
  return node;
}

/** A string value of a Node's metadata (Struct field -> Value.string_value), or undefined. */
export function nodeMetadataString(node: Uint8Array, key: string): string | undefined {
  let found: string | undefined;
  eachField(node, 0, node.length, (f, w, s, e) => {
    if (f !== 3 || w !== 2) return;
    eachField(node, s, e, (ef, ew, es, ee) => {
      if (ef !== 1 || ew !== 2 || found !== undefined) return;
      if (stringsAt(node, [1], es, ee)[0] === key) found = stringsAt(node, [2, 3], es, ee)[0];
    });
  });
  return found;
}

/** The EDS name of a Cluster of type EDS (eds_cluster_config.service_name, else its name), or undefined. */
export function clusterEdsName(cluster: Uint8Array, s = 0, e = cluster.length): { name: string; eds: string | undefined } {
  let name = '';
  let type = 0;
  let service = '';
  eachField(cluster, s, e, (f, w, fs, fe, v) => {
    if (f === 1 && w === 2) name = utf8(cluster, fs, fe);
    else if (f === 2 && w === 0) type = v;
    else if (f === 3 && w === 2) service = stringsAt(cluster, [2], fs, fe)[0] ?? '';
  });
  return { name, eds: type === 3 ? service || name : undefined };
}

const HCM_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

/** Every rds.route_config_name of the HTTP connection managers in a Listener's filter chains. */
export function listenerRdsNames(listener: Uint8Array, s = 0, e = listener.length): string[] {
  const out: string[] = [];
  // Listener.filter_chains (3) -> FilterChain.filters (3) -> Filter.typed_config (4): an Any.
  eachField(listener, s, e, (f, w, cs, ce) => {
    if (f !== 3 || w !== 2) return;
    eachField(listener, cs, ce, (ff, fw, fs, fe) => {
      if (ff !== 3 || fw !== 2) return;
      eachField(listener, fs, fe, (tf, tw, ts, te) => {
        if (tf !== 4 || tw !== 2) return;
        if (stringsAt(listener, [1], ts, te)[0] !== HCM_TYPE) return;
        eachField(listener, ts, te, (af, aw, as, ae) => {
          // HttpConnectionManager.rds (3) -> route_config_name (2).
          if (af === 2 && aw === 2) out.push(...stringsAt(listener, [3, 2], as, ae));
        });
      });
    });
  });
  return out;
}

/**
 * The first weighted cluster's weight in the virtual host named `vhost` of a RouteConfiguration
 * (a sidecar's route config per port holds one virtual host per service), or -1.
 */
export function vhostWeight(route: Uint8Array, vhost: string, s = 0, e = route.length): number {
  const want = Buffer.from(vhost);
  let w = -1;
  eachField(route, s, e, (f, wt, vs, ve) => {
    if (w >= 0 || f !== 2 || wt !== 2) return;
    let match = false;
    eachField(route, vs, ve, (nf, nw, ns, ne) => {
      if (nf === 1 && nw === 2 && ne - ns === want.length && want.compare(route, ns, ne) === 0) match = true;
    });
    // VirtualHost.routes (3) -> Route.route (2) -> weighted_clusters (3) -> clusters (1) -> weight (2) -> value (1).
    if (match) w = firstVarintAt(route, [3, 2, 3, 1, 2, 1], vs, ve);
  });
  return w;
}
