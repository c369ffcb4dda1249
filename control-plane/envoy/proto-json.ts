// Strict proto3-JSON <-> protobufjs messages. protobufjs' own fromObject silently drops unknown or
// misspelled fields, so a translator bug would become an invisible missing feature; this parser
// reports every such problem with the field path instead, and only then hands protobufjs a
// normalised plain object (snake_case keys, enums as numbers, 64-bit ints as strings, bytes as
// Uint8Array, Any as {type_url, value}) to build the message from.
import protobuf from 'protobufjs';
import type { Json } from '../json.ts';
import { findType, nameOf, typeNameOfUrl } from './protos.ts';

export type Violation = { path: string; message: string };

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
export const joinPath = (path: string, name: string): string => (path ? `${path}.${name}` : name);
const hasOwn = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

const WRAPPERS = new Set(
  ['Double', 'Float', 'Int64', 'UInt64', 'Int32', 'UInt32', 'Bool', 'String', 'Bytes'].map((n) => `google.protobuf.${n}Value`),
);
/** Well-known types whose JSON form is not a plain object of fields. */
export function isSpecialWkt(type: protobuf.Type): boolean {
  const n = nameOf(type);
  return WRAPPERS.has(n) || ['Any', 'Duration', 'Timestamp', 'FieldMask', 'Struct', 'Value', 'ListValue']
    .some((w) => n === `google.protobuf.${w}`);
}
export const isWrapper = (type: protobuf.Type): boolean => WRAPPERS.has(nameOf(type));

/** protoc's default json_name: drop underscores, upper-case the letter after each one. */
export function jsonNameOf(field: protobuf.Field): string {
  const explicit = field.options?.json_name;
  if (typeof explicit === 'string') return explicit;
  return field.name.replace(/_+([a-zA-Z0-9])/g, (_m, c: string) => c.toUpperCase()).replace(/_+$/, '');
}

const jsonNames = new WeakMap<protobuf.Type, Map<string, protobuf.Field>>();
function fieldByJsonKey(type: protobuf.Type, key: string): protobuf.Field | undefined {
  if (hasOwn(type.fields, key)) return type.fields[key];
  let m = jsonNames.get(type);
  if (!m) {
    m = new Map(type.fieldsArray.map((f) => [jsonNameOf(f), f]));
    jsonNames.set(type, m);
  }
  return m.get(key);
}

export const mapKeyType = (field: protobuf.Field): string => (field as unknown as protobuf.MapField).keyType;

/** Field with implicit presence: proto3 scalar not in a oneof and not `optional`. */
export function hasImplicitPresence(field: protobuf.Field): boolean {
  return !field.repeated && !field.map && !field.partOf && !(field.resolvedType instanceof protobuf.Type);
}

/**
 * Proto3 default value test used to keep encodings canonical (defaults are not written). The
 * string '0' is a default only for 64-bit integers (written as strings), never for a string field.
 */
function isDefaultScalar(v: unknown, type: string): boolean {
  if (v instanceof Uint8Array) return v.length === 0;
  if (type === 'string') return v === '';
  return v === 0 || v === '' || v === false || (v === '0' && /int64|fixed64/.test(type));
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${JSON.stringify(v)}`;
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0];
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j];
      d[j] = Math.min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length];
}

function suggestion(type: protobuf.Type, key: string): string {
  let best = '';
  let bestD = Infinity;
  for (const f of type.fieldsArray) {
    const d = Math.min(editDistance(key, f.name), editDistance(key, jsonNameOf(f)));
    if (d < bestD) [best, bestD] = [f.name, d];
  }
  return bestD <= Math.max(2, Math.floor(key.length / 3)) ? ` (did you mean "${best}"?)` : '';
}

const INT_RANGES: Record<string, [bigint, bigint]> = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n], sint32: [-(2n ** 31n), 2n ** 31n - 1n], sfixed32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n], fixed32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n], sint64: [-(2n ** 63n), 2n ** 63n - 1n], sfixed64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n], fixed64: [0n, 2n ** 64n - 1n],
};
const is64 = (kind: string): boolean => kind.endsWith('64');
const MAX_FLOAT = 3.4028234663852886e38;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;
const DURATION_RE = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/;
const MAX_DURATION_SECONDS = 315_576_000_000n;
const TIMESTAMP_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;
// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z in Unix seconds (proto3 Timestamp's range).
const MIN_TS = -62_135_596_800;
const MAX_TS = 253_402_300_799;

class Parser {
  errors: Violation[] = [];

  err(path: string, message: string): undefined {
    this.errors.push({ path, message });
    return undefined;
  }

  /** Any message type, special well-known types included, to protobufjs object form. */
  message(type: protobuf.Type, json: unknown, path: string): Json | undefined {
    const n = nameOf(type);
    if (n === 'google.protobuf.Any') return this.any(json, path);
    if (n === 'google.protobuf.Duration') return this.duration(json, path);
    if (n === 'google.protobuf.Timestamp') return this.timestamp(json, path);
    if (n === 'google.protobuf.Value') return this.value(json, path);
    if (n === 'google.protobuf.Struct') {
      if (!isObj(json)) return this.err(path, `expected a JSON object for google.protobuf.Struct, got ${describe(json)}`);
      return { fields: this.sortedMap(json, (v, p) => this.value(v, p), path) };
    }
    if (n === 'google.protobuf.ListValue') {
      if (!Array.isArray(json)) return this.err(path, `expected a JSON array for google.protobuf.ListValue, got ${describe(json)}`);
      return { values: json.map((v, i) => this.value(v, `${path}[${i}]`)) };
    }
    if (n === 'google.protobuf.FieldMask') {
      if (typeof json !== 'string') return this.err(path, `expected a string for google.protobuf.FieldMask, got ${describe(json)}`);
      const paths = json === '' ? [] : json.split(',').map((p) => p.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`));
      return { paths };
    }
    if (WRAPPERS.has(n)) {
      const v = this.scalar(type.fields.value.type, json, path);
      if (v === undefined) return undefined;
      return isDefaultScalar(v, type.fields.value.type) ? {} : { value: v }; // canonical: a default inner value is not written
    }
    return this.plainMessage(type, json, path);
  }

  plainMessage(type: protobuf.Type, json: unknown, path: string): Json | undefined {
    const name = nameOf(type);
    if (!isObj(json)) return this.err(path, `expected a JSON object for ${name}, got ${describe(json)}`);
    const out: Json = {};
    const seenAs = new Map<string, string>();
    const oneofSetBy = new Map<string, string>();
    for (const key of Object.keys(json)) {
      const val = json[key];
      const field = fieldByJsonKey(type, key);
      const fp = joinPath(path, field ? field.name : key);
      if (!field) {
        this.err(fp, `unknown field "${key}" in ${name}${suggestion(type, key)}`);
        continue;
      }
      const earlier = seenAs.get(field.name);
      if (earlier !== undefined) {
        this.err(fp, `field set twice (as "${earlier}" and "${key}")`);
        continue;
      }
      seenAs.set(field.name, key);
      // proto3 JSON: null means "not set", except for google.protobuf.Value / NullValue fields.
      if (val === null && !acceptsNull(field)) continue;
      const oneof = field.partOf;
      if (oneof && !field.options?.proto3_optional) {
        const other = oneofSetBy.get(oneof.name);
        if (other !== undefined) {
          this.err(fp, `"${other}" and "${field.name}" are both set, but they belong to oneof "${oneof.name}" of ${name}: set only one`);
          continue;
        }
        oneofSetBy.set(oneof.name, field.name);
      }
      const v = this.field(field, val, fp);
      if (v === undefined) continue;
      if (hasImplicitPresence(field) && isDefaultScalar(v, field.type)) continue;
      out[field.name] = v;
    }
    return out;
  }

  field(field: protobuf.Field, json: unknown, path: string): unknown {
    if (field.map) {
      if (!isObj(json)) return this.err(path, `expected a JSON object for map field, got ${describe(json)}`);
      const keyType = mapKeyType(field);
      const out: Json = {};
      for (const k of Object.keys(json).sort()) {
        const kp = `${path}[${JSON.stringify(k)}]`;
        if (keyType === 'bool' && k !== 'true' && k !== 'false') {
          this.err(kp, 'map key must be "true" or "false"');
          continue;
        }
        if (keyType !== 'string' && keyType !== 'bool' && this.scalar(keyType, k, kp) === undefined) continue;
        const v = this.element(field, json[k], kp);
        if (v !== undefined) out[k] = v;
      }
      return out;
    }
    if (field.repeated) {
      if (!Array.isArray(json)) return this.err(path, `expected a JSON array for repeated field, got ${describe(json)}`);
      const out: unknown[] = [];
      json.forEach((item, i) => {
        const v = this.element(field, item, `${path}[${i}]`);
        if (v !== undefined) out.push(v);
      });
      return out;
    }
    return this.single(field, json, path);
  }

  element(field: protobuf.Field, json: unknown, path: string): unknown {
    if (json === null && !acceptsNull(field)) return this.err(path, 'null is not allowed in a repeated or map field');
    return this.single(field, json, path);
  }

  single(field: protobuf.Field, json: unknown, path: string): unknown {
    const rt = field.resolvedType;
    if (rt instanceof protobuf.Type) return this.message(rt, json, path);
    if (rt instanceof protobuf.Enum) return this.enumValue(rt, json, path);
    return this.scalar(field.type, json, path);
  }

  enumValue(e: protobuf.Enum, json: unknown, path: string): number | undefined {
    if (nameOf(e) === 'google.protobuf.NullValue' && json === null) return 0;
    if (typeof json === 'string') {
      if (hasOwn(e.values, json)) return e.values[json];
      const names = Object.keys(e.values);
      const list = names.slice(0, 12).join(', ') + (names.length > 12 ? ', ...' : '');
      return this.err(path, `unknown value "${json}" for enum ${nameOf(e)} (expected one of ${list})`);
    }
    // proto3 enums are open: any int32 number is accepted here; PGV's defined_only rejects unknown ones.
    if (typeof json === 'number' && Number.isInteger(json) && json >= -(2 ** 31) && json < 2 ** 31) return json;
    return this.err(path, `expected an enum name or integer for ${nameOf(e)}, got ${describe(json)}`);
  }

  scalar(kind: string, json: unknown, path: string): unknown {
    switch (kind) {
      case 'string':
        return typeof json === 'string' ? json : this.err(path, `expected a string, got ${describe(json)}`);
      case 'bool':
        return typeof json === 'boolean' ? json : this.err(path, `expected true or false, got ${describe(json)}`);
      case 'bytes': {
        if (typeof json !== 'string') return this.err(path, `expected a base64 string, got ${describe(json)}`);
        const std = json.replace(/-/g, '+').replace(/_/g, '/');
        if (!BASE64.test(std)) return this.err(path, `invalid base64 ${JSON.stringify(json)}`);
        return new Uint8Array(Buffer.from(std, 'base64'));
      }
      case 'double':
      case 'float': {
        let v: number;
        if (typeof json === 'number') v = json;
        else if (json === 'NaN' || json === 'Infinity' || json === '-Infinity') v = Number(json);
        else if (typeof json === 'string' && /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(json)) v = Number(json);
        else return this.err(path, `expected a number, got ${describe(json)}`);
        if (kind === 'float' && Number.isFinite(v) && Math.abs(v) > MAX_FLOAT) return this.err(path, `${json} is out of range for float`);
        return v;
      }
      default: {
        const range = INT_RANGES[kind];
        if (!range) return this.err(path, `unsupported scalar type ${kind}`);
        let b: bigint;
        if (typeof json === 'number') {
          if (!Number.isInteger(json)) return this.err(path, `expected an integer, got ${json}`);
          if (!Number.isSafeInteger(json)) return this.err(path, `${json} is not exact in JSON numbers; write it as a decimal string`);
          b = BigInt(json);
        } else if (typeof json === 'string' && /^-?\d+$/.test(json)) {
          b = BigInt(json);
        } else {
          return this.err(path, `expected an integer (${kind}), got ${describe(json)}`);
        }
        if (b < range[0] || b > range[1]) return this.err(path, `${json} is out of range for ${kind}`);
        return is64(kind) ? b.toString() : Number(b);
      }
    }
  }

  any(json: unknown, path: string): Json | undefined {
    if (!isObj(json)) return this.err(path, `expected a JSON object for google.protobuf.Any, got ${describe(json)}`);
    const typeUrl = json['@type'];
    if (typeUrl === undefined) {
      return Object.keys(json).length === 0 ? {} : this.err(joinPath(path, '@type'), 'google.protobuf.Any with fields needs "@type"');
    }
    if (typeof typeUrl !== 'string') return this.err(joinPath(path, '@type'), `expected a type URL string, got ${describe(typeUrl)}`);
    const inner = typeUrl.includes('/') ? findType(typeNameOfUrl(typeUrl)) : undefined;
    if (!inner) return this.err(joinPath(path, '@type'), `unknown Any type "${typeUrl}" (not a loaded message type)`);
    const { '@type': _t, ...rest } = json;
    const before = this.errors.length;
    let obj: Json | undefined;
    if (isSpecialWkt(inner)) {
      for (const k of Object.keys(rest)) if (k !== 'value') this.err(joinPath(path, k), `unknown field "${k}" in Any holding ${typeNameOfUrl(typeUrl)}`);
      obj = hasOwn(rest, 'value') ? this.message(inner, rest.value, joinPath(path, 'value')) : {};
    } else {
      obj = this.plainMessage(inner, rest, path);
    }
    if (obj === undefined || this.errors.length > before) return undefined;
    return { type_url: typeUrl, value: inner.encode(inner.fromObject(obj)).finish() };
  }

  duration(json: unknown, path: string): Json | undefined {
    const m = typeof json === 'string' ? DURATION_RE.exec(json) : null;
    if (!m) return this.err(path, `invalid duration ${JSON.stringify(json)}: expected seconds with an optional fraction and a trailing "s", e.g. "1.5s" or "0.100s"`);
    const seconds = BigInt(m[2]);
    if (seconds > MAX_DURATION_SECONDS) return this.err(path, `duration ${json} is out of range (at most ±${MAX_DURATION_SECONDS}s)`);
    const nanos = Number((m[3] ?? '').padEnd(9, '0'));
    const sign = m[1] ? -1 : 1;
    const out: Json = {};
    if (seconds !== 0n) out.seconds = (seconds * BigInt(sign)).toString();
    if (nanos !== 0) out.nanos = nanos * sign;
    return out;
  }

  timestamp(json: unknown, path: string): Json | undefined {
    const m = typeof json === 'string' ? TIMESTAMP_RE.exec(json) : null;
    const bad = (): undefined => this.err(path, `invalid timestamp ${JSON.stringify(json)}: expected RFC 3339, e.g. "2024-01-02T03:04:05.600Z"`);
    if (!m) return bad();
    const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number);
    const date = new Date(0);
    date.setUTCFullYear(y, mo - 1, d);
    date.setUTCHours(h, mi, s, 0);
    if (date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) return bad();
    let secs = date.getTime() / 1000;
    if (m[8] !== 'Z') {
      const [oh, om] = m[8].slice(1).split(':').map(Number);
      secs -= (m[8][0] === '-' ? -1 : 1) * (oh * 3600 + om * 60);
    }
    if (secs < MIN_TS || secs > MAX_TS) return this.err(path, `timestamp ${json} is out of range (years 0001-9999)`);
    const out: Json = {};
    if (secs !== 0) out.seconds = String(secs);
    const nanos = Number((m[7] ?? '').padEnd(9, '0'));
    if (nanos !== 0) out.nanos = nanos;
    return out;
  }

  /** google.protobuf.Value: any JSON value. */
  value(json: unknown, path: string): Json | undefined {
    const n = valueFieldNames();
    if (json === null) return { [n.nullValue]: 0 };
    if (typeof json === 'number') return Number.isFinite(json) ? { [n.numberValue]: json } : this.err(path, 'number must be finite');
    if (typeof json === 'string') return { [n.stringValue]: json };
    if (typeof json === 'boolean') return { [n.boolValue]: json };
    if (Array.isArray(json)) return { [n.listValue]: { values: json.map((v, i) => this.value(v, `${path}[${i}]`)) } };
    if (isObj(json)) return { [n.structValue]: { fields: this.sortedMap(json, (v, p) => this.value(v, p), path) } };
    return this.err(path, `not a JSON value: ${typeof json}`);
  }

  sortedMap(json: Json, each: (v: unknown, path: string) => unknown, path: string): Json {
    const out: Json = {};
    for (const k of Object.keys(json).sort()) out[k] = each(json[k], `${path}[${JSON.stringify(k)}]`);
    return out;
  }
}

// protobufjs bundles struct.proto with camelCase field names (nullValue, ...) whatever keepCase
// says, so the actual names are read from the loaded type, keyed by json name.
let valueNames: Record<string, string> | undefined;
function valueFieldNames(): Record<string, string> {
  if (!valueNames) {
    const t = findType('google.protobuf.Value');
    if (!t) throw new Error('google.protobuf.Value is not loaded');
    valueNames = Object.fromEntries(t.fieldsArray.map((f) => [jsonNameOf(f), f.name]));
  }
  return valueNames;
}

function acceptsNull(field: protobuf.Field): boolean {
  const t = field.resolvedType;
  return t !== null && (nameOf(t) === 'google.protobuf.Value' || nameOf(t) === 'google.protobuf.NullValue');
}

/**
 * Strict proto3-JSON parse. Field names may be snake_case (proto name) or lowerCamelCase (json_name).
 * Returns a message only when there are no errors; map keys are sorted so encoding is deterministic.
 */
export function fromProto3Json(type: protobuf.Type, json: unknown, path = ''): { message?: protobuf.Message; errors: Violation[] } {
  const p = new Parser();
  const obj = p.message(type, json, path);
  if (p.errors.length > 0 || obj === undefined) {
    return { errors: p.errors.length > 0 ? p.errors : [{ path, message: 'could not parse' }] };
  }
  return { message: type.fromObject(obj), errors: [] };
}

// ---------------------------------------------------------------------------------------------
// Back to proto3 JSON (snake_case names, Any with @type, Duration as string, defaults omitted).

type LongLike = { toString(): string };
/** Any protobufjs integer representation (number, string, Long) as a bigint. */
export function toBigInt(v: unknown): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return BigInt(Math.trunc(v));
  if (v === null || v === undefined) return 0n;
  return BigInt((v as LongLike).toString());
}

function fraction(nanos: number): string {
  if (nanos === 0) return '';
  const s = String(nanos).padStart(9, '0');
  return '.' + (nanos % 1_000_000 === 0 ? s.slice(0, 3) : nanos % 1000 === 0 ? s.slice(0, 6) : s);
}

/** Canonical proto3 JSON for a Duration given seconds and nanos (e.g. "1.500s", "-0.010s"). */
export function formatDuration(seconds: unknown, nanos: unknown): string {
  const s = toBigInt(seconds);
  const n = Number(nanos ?? 0);
  const neg = s < 0n || n < 0;
  return `${neg ? '-' : ''}${s < 0n ? -s : s}${fraction(Math.abs(n))}s`;
}

function formatTimestamp(seconds: unknown, nanos: unknown): string {
  const iso = new Date(Number(toBigInt(seconds)) * 1000).toISOString();
  return `${iso.slice(0, 19)}${fraction(Number(nanos ?? 0))}Z`;
}

/** Shortest decimal that reads back as the same float32 (protobufjs decodes floats to doubles). */
function shortestFloat(v: number): number {
  if (!Number.isFinite(v)) return v;
  for (let p = 1; p <= 9; p++) {
    const c = Number(v.toPrecision(p));
    if (Math.fround(c) === v) return c;
  }
  return v;
}

function scalarToJson(kind: string, v: unknown): unknown {
  if (kind === 'bytes') return Buffer.from(v as Uint8Array).toString('base64');
  if (kind === 'double' || kind === 'float') {
    const n = Number(v);
    if (Number.isNaN(n)) return 'NaN';
    if (!Number.isFinite(n)) return n > 0 ? 'Infinity' : '-Infinity';
    return kind === 'float' ? shortestFloat(n) : n;
  }
  if (is64(kind)) return toBigInt(v).toString();
  return v;
}

function valueToJson(v: Json): unknown {
  const n = valueFieldNames();
  const has = (k: string): boolean => hasOwn(v, n[k]) && v[n[k]] != null; // oneof: own property = set
  if (has('structValue')) return structToJson(v[n.structValue] as Json);
  if (has('listValue')) return (((v[n.listValue] as Json).values ?? []) as Json[]).map(valueToJson);
  if (has('stringValue')) return v[n.stringValue];
  if (has('numberValue')) return v[n.numberValue];
  if (has('boolValue')) return v[n.boolValue];
  return null;
}

function structToJson(s: Json): Json {
  const out: Json = {};
  const fields = (s.fields ?? {}) as Record<string, Json>;
  for (const k of Object.keys(fields).sort()) out[k] = valueToJson(fields[k]);
  return out;
}

/** Is this field present in a message, by proto3 rules (implicit-presence defaults count as absent)? */
export function isFieldSet(msg: Json, field: protobuf.Field): boolean {
  const v = msg[field.name];
  if (v === null || v === undefined) return false;
  if (field.map) return Object.keys(v as object).length > 0;
  if (field.repeated) return (v as unknown[]).length > 0;
  if (!hasImplicitPresence(field)) return field.resolvedType instanceof protobuf.Type || hasOwn(msg, field.name);
  if (v instanceof Uint8Array) return v.length > 0;
  return !(v === 0 || v === '' || v === false || (typeof v === 'object' && toBigInt(v) === 0n));
}

function elementToJson(field: protobuf.Field, v: unknown): unknown {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Type) return toProto3Json(rt, v as Json);
  if (rt instanceof protobuf.Enum) {
    if (nameOf(rt) === 'google.protobuf.NullValue') return null;
    return rt.valuesById[v as number] ?? v;
  }
  return scalarToJson(field.type, v);
}

/** A protobufjs message (or plain object of the same shape) to proto3 JSON. */
export function toProto3Json(type: protobuf.Type, message: protobuf.Message | Json): unknown {
  const m = message as Json;
  switch (nameOf(type)) {
    case 'google.protobuf.Any': {
      const url = m.type_url as string | undefined;
      if (!url) return {};
      const inner = findType(typeNameOfUrl(url));
      if (!inner) throw new Error(`cannot convert Any of unknown type "${url}" to JSON`);
      const body = toProto3Json(inner, inner.decode(m.value as Uint8Array));
      return isSpecialWkt(inner) ? { '@type': url, value: body } : { '@type': url, ...(body as Json) };
    }
    case 'google.protobuf.Duration':
      return formatDuration(m.seconds, m.nanos);
    case 'google.protobuf.Timestamp':
      return formatTimestamp(m.seconds, m.nanos);
    case 'google.protobuf.FieldMask':
      return ((m.paths as string[]) ?? []).map((p) => p.replace(/_([a-z0-9])/g, (_x, c: string) => c.toUpperCase())).join(',');
    case 'google.protobuf.Struct':
      return structToJson(m);
    case 'google.protobuf.Value':
      return valueToJson(m);
    case 'google.protobuf.ListValue':
      return ((m.values as Json[]) ?? []).map(valueToJson);
  }
  if (WRAPPERS.has(nameOf(type))) {
    const f = type.fields.value;
    return scalarToJson(f.type, m.value ?? (f.type === 'string' ? '' : f.type === 'bool' ? false : f.type === 'bytes' ? new Uint8Array() : 0));
  }
  const out: Json = {};
  for (const field of type.fieldsArray) {
    if (!isFieldSet(m, field)) continue;
    const v = m[field.name];
    if (field.map) {
      const o: Json = {};
      const src = v as Json;
      for (const k of Object.keys(src).sort()) o[k] = elementToJson(field, src[k]);
      out[field.name] = o;
    } else if (field.repeated) {
      out[field.name] = (v as unknown[]).map((x) => elementToJson(field, x));
    } else {
      out[field.name] = elementToJson(field, v);
    }
  }
  return out;
}
