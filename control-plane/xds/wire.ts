// Hand-encoded DiscoveryResponse, so the part shared by many streams (the resources) is encoded
// once and only the few per-stream bytes (nonce, version) are written per stream. Field numbers
// are those of envoy.service.discovery.v3.DiscoveryResponse and google.protobuf.Any.
import type { EncodedResource } from './snapshot-cache.ts';

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

const entries = new WeakMap<EncodedResource, Buffer>();

/** `repeated google.protobuf.Any resources = 2;` for these resources. */
export function resourcesField(resources: readonly EncodedResource[]): Buffer {
  return Buffer.concat(
    resources.map((r) => {
      let e = entries.get(r);
      if (!e) {
        const any = Buffer.concat([lengthDelimited(1, Buffer.from(r.any.type_url)), lengthDelimited(2, r.any.value)]);
        e = lengthDelimited(2, any);
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

/**
 * Decodes the common DiscoveryRequest (an ACK, or a subscription change) by hand: version_info,
 * resource_names, type_url and response_nonce. Anything else (a node, an error_detail, resource
 * locators, an unknown field) returns undefined, and the caller decodes the message in full.
 * Most requests are ACKs, and protobufjs' general decoder was a large share of serving them.
 */
export function decodePlainDiscoveryRequest(buf: Uint8Array): { version_info: string; resource_names: string[]; type_url: string; response_nonce: string } | undefined {
  const out = { version_info: '', resource_names: [] as string[], type_url: '', response_nonce: '' };
  let i = 0;
  const end = buf.length;
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
    const tag = readVarint();
    if (tag < 0 || (tag & 7) !== 2) return undefined;
    const len = readVarint();
    if (len < 0 || i + len > end) return undefined;
    const field = tag >>> 3;
    if (field !== 1 && field !== 3 && field !== 4 && field !== 5) return undefined;
    const text = Buffer.from(buf.buffer, buf.byteOffset + i, len).toString('utf8');
    i += len;
    if (field === 1) out.version_info = text;
    else if (field === 3) out.resource_names.push(text);
    else if (field === 4) out.type_url = text;
    else out.response_nonce = text;
  }
  return out;
}
