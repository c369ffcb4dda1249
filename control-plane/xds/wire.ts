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
