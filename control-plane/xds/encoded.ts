// A resource as the cache holds it and the wire sends it: checked, encoded once, versioned by the
// hash of its bytes. Shared by the cache, the SotW answers, the wire encoder and the streams.
import type { Resource } from '../translate/translate.ts';
import type { ResourceType } from '../translate/type-urls.ts';
import { contentHash } from './hash.ts';

export interface EncodedResource {
  name: string;
  json: Resource;
  any: { type_url: string; value: Buffer };
  /** Hash of the encoded bytes: the resource's version. */
  hash: string;
  /** The hash as two 32-bit numbers, for set versions (setVersion). */
  hi: number;
  lo: number;
}

/** One proxy group's resources, per type, by name. */
export type Snapshot = Record<ResourceType, Map<string, EncodedResource>>;

/** A resource with its encoding, versioned by the hash of the encoded bytes. */
export function encodedResource(name: string, json: Resource, any: { type_url: string; value: Buffer }): EncodedResource {
  const hash = contentHash(any.value);
  return { name, json, any, hash, hi: parseInt(hash.slice(0, 8), 16), lo: parseInt(hash.slice(8, 16), 16) };
}

/**
 * The version of a set of resources: the XOR of their 64-bit content hashes (which cover their
 * names), with the count. It depends only on the content, not on order or history, so a proxy
 * reconnecting after a restart presents a version the new process computes too; and it costs a
 * few operations per resource, where hashing the joined names was a large share of a push.
 */
export function setVersion(resources: readonly EncodedResource[]): string {
  let hi = 0;
  let lo = 0;
  for (const r of resources) {
    hi ^= r.hi;
    lo ^= r.lo;
  }
  return formatSetVersion(resources.length, hi, lo);
}

/** A set version from its count and XORed halves (also kept as it goes, xds/delta-stream.ts). */
export function formatSetVersion(count: number, hi: number, lo: number): string {
  return `${count}-${(hi >>> 0).toString(16).padStart(8, '0')}${(lo >>> 0).toString(16).padStart(8, '0')}`;
}
