// Hand-encoded DiscoveryResponse, so the part shared by many streams (the resources) is encoded
// once and only the few per-stream bytes (nonce, version) are written per stream. Field numbers
// are those of envoy.service.discovery.v3.DiscoveryResponse and google.protobuf.Any.
import type { EncodedResource } from './encoded.ts';

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 127) {
    out.push((n & 127) | 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

function lengthDelimited(field: number, bytes: Buffer): Buffer {
  return Buffer.concat([varint((field << 3) | 2), varint(bytes.length), bytes]);
}

/** A resource as a `google.protobuf.Any` message (type_url = 1, value = 2). */
function anyMessage(r: EncodedResource): Buffer {
  return Buffer.concat([lengthDelimited(1, Buffer.from(r.any.type_url)), lengthDelimited(2, r.any.value)]);
}

const entries = new WeakMap<EncodedResource, Buffer>();

/** `repeated google.protobuf.Any resources = 2;` for these resources. */
export function resourcesField(resources: readonly EncodedResource[]): Buffer {
  return Buffer.concat(
    resources.map((r) => {
      let e = entries.get(r);
      if (!e) {
        e = lengthDelimited(2, anyMessage(r));
        entries.set(r, e);
      }
      return e;
    }),
  );
}

/** A DiscoveryResponse already encoded, to be written as it is. */
export interface PreEncodedResponse { preEncoded: true; wire: Buffer }

const CONTROL_PLANE = lengthDelimited(6, lengthDelimited(1, Buffer.from('meshpilot')));

export function encodeDiscoveryResponse(r: { version_info: string; type_url: string; nonce: string; body: Buffer }): Buffer {
  return Buffer.concat([
    lengthDelimited(1, Buffer.from(r.version_info)),
    r.body,
    lengthDelimited(4, Buffer.from(r.type_url)),
    lengthDelimited(5, Buffer.from(r.nonce)),
    CONTROL_PLANE,
  ]);
}

const deltaEntries = new WeakMap<EncodedResource, Buffer>();

/** `repeated Resource resources = 2;` of a DeltaDiscoveryResponse: version, the Any, name; encoded once per resource. */
function deltaEntry(r: EncodedResource): Buffer {
  let e = deltaEntries.get(r);
  if (!e) {
    e = lengthDelimited(2, Buffer.concat([lengthDelimited(1, Buffer.from(r.hash)), lengthDelimited(2, anyMessage(r)), lengthDelimited(3, Buffer.from(r.name))]));
    deltaEntries.set(r, e);
  }
  return e;
}

const CONTROL_PLANE_DELTA = lengthDelimited(7, lengthDelimited(1, Buffer.from('meshpilot')));

/** A DeltaDiscoveryResponse, with each resource's part encoded once and shared by every stream sending it. */
export function encodeDeltaResponse(r: { version: string; type_url: string; nonce: string; resources: readonly EncodedResource[]; removed: readonly string[] }): Buffer {
  return Buffer.concat([
    lengthDelimited(1, Buffer.from(r.version)),
    ...r.resources.map(deltaEntry),
    lengthDelimited(4, Buffer.from(r.type_url)),
    lengthDelimited(5, Buffer.from(r.nonce)),
    ...r.removed.map((n) => lengthDelimited(6, Buffer.from(n))),
    CONTROL_PLANE_DELTA,
  ]);
}

/**
 * The common DiscoveryRequest (an ACK, or a subscription change), read by hand: version_info,
 * resource_names, type_url and response_nonce. Most requests are ACKs repeating the names of the
 * request before, so the names are decoded only when asked for; `names_bytes` lets a stream see
 * that they did not change without decoding them (protobufjs' decoder and the strings it made were
 * a large share of serving ACKs).
 */
export class PlainDiscoveryRequest {
  version_info = '';
  type_url = '';
  response_nonce = '';
  /** The encoded resource_names entries, when they are contiguous (as every encoder writes them). */
  names_bytes: Buffer | undefined;
  private spans: number[] = [];
  private names: string[] | undefined;

  constructor(private readonly buf: Buffer) {}

  /** How many resource names the request holds (without decoding them). */
  get names_count(): number {
    return this.spans.length / 2;
  }

  get resource_names(): string[] {
    if (!this.names) {
      this.names = [];
      for (let k = 0; k < this.spans.length; k += 2) this.names.push(this.buf.toString('utf8', this.spans[k], this.spans[k]! + this.spans[k + 1]!));
    }
    return this.names;
  }

  /** Reads `buf`; undefined when it holds anything else (a node, an error_detail, resource locators, an unknown field). */
  static decode(buf: Buffer): PlainDiscoveryRequest | undefined {
    const out = new PlainDiscoveryRequest(buf);
    let i = 0;
    const end = buf.length;
    let namesStart = -1;
    let namesEnd = -1;
    let contiguous = true;
    const readVarint = (): number => {
      let n = 0;
      let shift = 0;
      for (;;) {
        if (i >= end || shift > 28) return -1;
        const b = buf[i++]!;
        n += (b & 127) * 2 ** shift;
        if (b < 128) return n;
        shift += 7;
      }
    };
    while (i < end) {
      const at = i;
      const tag = readVarint();
      if (tag < 0 || (tag & 7) !== 2) return undefined;
      const len = readVarint();
      if (len < 0 || i + len > end) return undefined;
      const field = tag >>> 3;
      if (field === 3) {
        if (namesStart < 0) namesStart = at;
        else if (namesEnd !== at) contiguous = false;
        namesEnd = i + len;
        out.spans.push(i, len);
      } else if (field === 1) out.version_info = buf.toString('utf8', i, i + len);
      else if (field === 4) out.type_url = buf.toString('utf8', i, i + len);
      else if (field === 5) out.response_nonce = buf.toString('utf8', i, i + len);
      else return undefined;
      i += len;
    }
    if (namesStart >= 0 && contiguous) out.names_bytes = buf.subarray(namesStart, namesEnd);
    return out;
  }
}
