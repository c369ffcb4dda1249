// Public API: our generated Envoy resources (proto3 JSON with "@type") in, protobuf bytes out,
// refusing anything Envoy would reject (strict JSON parse + PGV rules + Envoy's own checks).
import type protobuf from 'protobufjs';
import { findType, nameOf, typeNameOfUrl } from './protos.ts';
import { fromProto3Json, isSpecialWkt, toProto3Json, type Violation } from './proto-json.ts';
import { validateMessage } from './validate-rules.ts';
import { checkEnvoyRules } from './envoy-extra-rules.ts';

export type { Violation };
export type ResourceJson = { '@type': string; [k: string]: unknown };

/** Thrown by encodeResource; `violations` lists every problem with its field path. */
export class ResourceCheckError extends Error {
  constructor(readonly typeUrl: string, readonly violations: Violation[]) {
    super(`${typeUrl || 'resource'} rejected, ${violations.length} violation(s):\n`
      + violations.map((v) => `  ${v.path || '(root)'}: ${v.message}`).join('\n'));
    this.name = 'ResourceCheckError';
  }
}

function parse(json: unknown): { typeUrl: string; type?: protobuf.Type; message?: protobuf.Message; violations: Violation[] } {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { typeUrl: '', violations: [{ path: '', message: 'a resource must be a JSON object with "@type"' }] };
  }
  const { '@type': typeUrl, ...fields } = json as Record<string, unknown>;
  if (typeof typeUrl !== 'string') return { typeUrl: '', violations: [{ path: '@type', message: 'missing "@type" (a type URL string)' }] };
  const type = typeUrl.includes('/') ? findType(typeNameOfUrl(typeUrl)) : undefined;
  if (!type || isSpecialWkt(type)) return { typeUrl, violations: [{ path: '@type', message: `unknown resource type "${typeUrl}"` }] };
  const { message, errors } = fromProto3Json(type, fields);
  // Rules on a half-parsed message would only add noise, so stop at parse errors.
  if (!message) return { typeUrl, type, violations: errors };
  return { typeUrl, type, message, violations: [...validateMessage(type, message), ...checkEnvoyRules(type, message)] };
}

/** Every reason Envoy would reject this resource ([] when it is fine). */
export function checkResource(json: ResourceJson): Violation[] {
  return parse(json).violations;
}

/**
 * Encodes a checked resource for DiscoveryResponse.resources (google.protobuf.Any). Throws a
 * ResourceCheckError listing all violations. Same JSON gives the same bytes (map keys are sorted).
 */
export function encodeResource(json: ResourceJson): { type_url: string; value: Buffer } {
  const { typeUrl, type, message, violations } = parse(json);
  if (violations.length > 0 || !type || !message) throw new ResourceCheckError(typeUrl, violations);
  return toAny(type, message);
}

function toAny(type: protobuf.Type, message: protobuf.Message): { type_url: string; value: Buffer } {
  const bytes = type.encode(message).finish();
  return { type_url: `type.googleapis.com/${nameOf(type)}`, value: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length) };
}

/** Checks and encodes in one parse: the violations, or the encoding when there are none. */
export function checkAndEncode(json: ResourceJson): { violations: Violation[] } | { any: { type_url: string; value: Buffer } } {
  const { type, message, violations } = parse(json);
  if (violations.length > 0 || !type || !message) return { violations: violations.length ? violations : [{ path: '', message: 'not a resource' }] };
  return { any: toAny(type, message) };
}

/** Decodes an Any back to proto3 JSON with "@type" (snake_case names, defaults omitted). */
export function decodeResource(any: { type_url: string; value: Uint8Array }): ResourceJson {
  const type = findType(typeNameOfUrl(any.type_url));
  if (!type) throw new Error(`cannot decode resource of unknown type "${any.type_url}"`);
  const body = toProto3Json(type, type.decode(any.value));
  return isSpecialWkt(type) ? { '@type': any.type_url, value: body } : { '@type': any.type_url, ...(body as object) };
}
