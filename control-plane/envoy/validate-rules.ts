// protoc-gen-validate rules, as Envoy enforces them when it loads config. protobufjs 7 keeps custom
// options in `parsedOptions` as nested objects, e.g. field.parsedOptions =
// [{"(validate.rules)": {"string": {"min_len": 1}}}] and oneof.parsedOptions = [{"(validate.required)": true}];
// a field may carry several "(validate.rules)" entries (e.g. uint32 and message), which are merged.
import net from 'node:net';
import protobuf from 'protobufjs';
import { RE2JS } from 're2js';
import type { Json } from '../json.ts';
import { findType, nameOf, typeNameOfUrl } from './protos.ts';
import { formatDuration, isSpecialWkt, mapKeyType, isWrapper, joinPath, toBigInt, type Violation } from './proto-json.ts';

type Rules = Record<string, any>;
const hasOwn = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

// ---------------------------------------------------------------------------------------------
// Walking every message, Any payloads included (shared with envoy-extra-rules.ts).

const anyCache = new WeakMap<object, { type: protobuf.Type; message: Json } | null>();
/** The decoded payload of a google.protobuf.Any, or undefined if empty or of an unknown type. */
export function anyPayload(any: Json): { type: protobuf.Type; message: Json } | undefined {
  let hit = anyCache.get(any);
  if (hit === undefined) {
    const type = typeof any.type_url === 'string' && any.type_url ? findType(typeNameOfUrl(any.type_url)) : undefined;
    hit = type ? { type, message: type.decode((any.value as Uint8Array) ?? new Uint8Array()) as unknown as Json } : null;
    anyCache.set(any, hit);
  }
  return hit ?? undefined;
}

// Per-type lists computed once: walking 10k endpoints visits the same few types many times.
const msgFieldsCache = new WeakMap<protobuf.Type, protobuf.Field[]>();
function messageFields(type: protobuf.Type): protobuf.Field[] {
  let f = msgFieldsCache.get(type);
  if (!f) {
    f = isSpecialWkt(type) ? [] : type.fieldsArray.filter((x) => x.resolvedType instanceof protobuf.Type);
    msgFieldsCache.set(type, f);
  }
  return f;
}

export type Visitor = (type: protobuf.Type, message: Json, path: string) => void;

/** Calls visit for the message and every nested message (repeated, map values, Any payloads). */
export function forEachMessage(type: protobuf.Type, message: Json, path: string, visit: Visitor): void {
  visit(type, message, path);
  if (nameOf(type) === 'google.protobuf.Any') {
    const p = anyPayload(message);
    if (p) forEachMessage(p.type, p.message, path, visit); // payload fields sit beside "@type" in JSON
    return;
  }
  for (const field of messageFields(type)) {
    const rt = field.resolvedType as protobuf.Type;
    const v = message[field.name];
    if (v === null || v === undefined) continue;
    const fp = joinPath(path, field.name);
    if (field.map) {
      for (const k of Object.keys(v as Json).sort()) forEachMessage(rt, (v as Record<string, Json>)[k], `${fp}[${JSON.stringify(k)}]`, visit);
    } else if (field.repeated) {
      (v as Json[]).forEach((item, i) => forEachMessage(rt, item, `${fp}[${i}]`, visit));
    } else {
      forEachMessage(rt, v as Json, fp, visit);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Reading the rules.

function merge(a: Rules, b: Rules): Rules {
  const out: Rules = { ...a };
  for (const [k, v] of Object.entries(b)) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && out[k] && typeof out[k] === 'object' ? merge(out[k], v) : v;
  }
  return out;
}

const rulesCache = new WeakMap<protobuf.Field, Rules | null>();
export function fieldRules(field: protobuf.Field): Rules | undefined {
  let r = rulesCache.get(field);
  if (r === undefined) {
    r = null;
    for (const o of (field.parsedOptions ?? []) as Json[]) {
      if (o['(validate.rules)']) r = merge(r ?? {}, o['(validate.rules)'] as Rules);
    }
    rulesCache.set(field, r);
  }
  return r ?? undefined;
}

function oneofRequired(oneof: protobuf.OneOf): boolean {
  return oneof.options?.['(validate.required)'] === true
    || ((oneof.parsedOptions ?? []) as Json[]).some((o) => o['(validate.required)'] === true);
}

function messageDisabled(type: protobuf.Type): boolean {
  const o = type.options ?? {};
  return o['(validate.disabled)'] === true || o['(validate.ignored)'] === true;
}

const plans = new WeakMap<protobuf.Type, { requiredOneofs: protobuf.OneOf[]; ruleFields: [protobuf.Field, Rules][] }>();
function planOf(type: protobuf.Type): { requiredOneofs: protobuf.OneOf[]; ruleFields: [protobuf.Field, Rules][] } {
  let p = plans.get(type);
  if (!p) {
    const off = messageDisabled(type);
    p = {
      requiredOneofs: off ? [] : type.oneofsArray.filter(oneofRequired),
      ruleFields: off ? [] : type.fieldsArray.flatMap((f) => { const r = fieldRules(f); return r ? [[f, r] as [protobuf.Field, Rules]] : []; }),
    };
    plans.set(type, p);
  }
  return p;
}

/** A repeated option appears as a scalar when written once; always give a list. */
const list = (x: unknown): unknown[] | undefined => (x === undefined ? undefined : Array.isArray(x) ? x : [x]);

// ---------------------------------------------------------------------------------------------
// Checks.

const WRAPPED_KIND: Record<string, string> = {
  DoubleValue: 'double', FloatValue: 'float', Int64Value: 'int64', UInt64Value: 'uint64', Int32Value: 'int32',
  UInt32Value: 'uint32', BoolValue: 'bool', StringValue: 'string', BytesValue: 'bytes',
};

// PGV's well_known_regex patterns (same character sets as PGV's C++ templates).
const HEADER_NAME_STRICT = /^:?[0-9a-zA-Z!#$%&'*+-.^_|~`]+$/;
const HEADER_VALUE_STRICT = /^[^\u0000-\u0008\u000A-\u001F\u007F]*$/;
const HEADER_LOOSE = /^[^\u0000\u000A\u000D]*$/;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

const re2Cache = new Map<string, RE2JS | Error>();
/** Compiles with RE2 semantics (what Envoy uses); returns the error instead of throwing. */
export function compileRe2(pattern: string): RE2JS | Error {
  let r = re2Cache.get(pattern);
  if (!r) {
    try {
      r = RE2JS.compile(pattern);
    } catch (e) {
      r = e instanceof Error ? e : new Error(String(e));
    }
    if (re2Cache.size > 10_000) re2Cache.clear();
    re2Cache.set(pattern, r);
  }
  return r;
}

function runeCount(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xdc00 && c <= 0xdfff && i > 0 && s.charCodeAt(i - 1) >= 0xd800 && s.charCodeAt(i - 1) <= 0xdbff) n--;
  }
  return n;
}

function isHostname(s: string): boolean {
  const h = s.endsWith('.') ? s.slice(0, -1) : s;
  return h.length > 0 && h.length <= 253
    && h.split('.').every((l) => /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/.test(l));
}

class Checker {
  out: Violation[] = [];

  add(path: string, message: string): void {
    this.out.push({ path, message });
  }

  messageNode(type: protobuf.Type, msg: Json, path: string): void {
    const plan = planOf(type);
    for (const oneof of plan.requiredOneofs) {
      if (!oneof.fieldsArray.some((f) => hasOwn(msg, f.name) && msg[f.name] != null)) {
        this.add(joinPath(path, oneof.name), `exactly one of ${oneof.fieldsArray.map((f) => `"${f.name}"`).join(', ')} is required`);
      }
    }
    for (const [field, rules] of plan.ruleFields) {
      const fp = joinPath(path, field.name);
      const v = msg[field.name];
      if (field.map) this.map(field, rules.map, (v ?? {}) as Json, fp);
      else if (field.repeated) this.repeated(field, rules.repeated, (v ?? []) as unknown[], fp);
      else {
        // Oneof members and proto3 `optional` fields are only checked when set (as in PGV).
        if (field.partOf && !(hasOwn(msg, field.name) && v != null)) continue;
        this.value(field, rules, v, fp);
      }
    }
  }

  /** One value (singular field, repeated item or map value) against FieldRules. */
  value(field: protobuf.Field, rules: Rules, v: unknown, path: string): void {
    const rt = field.resolvedType;
    if (rt instanceof protobuf.Type) {
      const short = nameOf(rt).replace('google.protobuf.', '');
      if (v === null || v === undefined) {
        if (rules.message?.required || rules.duration?.required || rules.timestamp?.required || rules.any?.required) {
          this.add(path, 'value is required');
        }
        return;
      }
      const m = v as Json;
      if (nameOf(rt) === 'google.protobuf.Duration') this.duration(rules.duration, m, path);
      else if (nameOf(rt) === 'google.protobuf.Timestamp') this.timestamp(rules.timestamp, m, path);
      else if (nameOf(rt) === 'google.protobuf.Any') this.any(rules.any, m, path);
      else if (isWrapper(rt)) {
        const kind = WRAPPED_KIND[short];
        this.scalar(kind, rules[kind], m.value ?? rt.fields.value.defaultValue ?? defaultOf(kind), path);
      }
      return;
    }
    if (rt instanceof protobuf.Enum) this.enumValue(rt, rules.enum, (v ?? 0) as number, path);
    else this.scalar(field.type, rules[field.type], v ?? defaultOf(field.type), path);
  }

  repeated(field: protobuf.Field, r: Rules | undefined, items: unknown[], path: string): void {
    if (!r) return;
    if (r.ignore_empty && items.length === 0) return;
    if (r.min_items !== undefined && items.length < Number(r.min_items)) this.add(path, `must have at least ${r.min_items} item(s), has ${items.length}`);
    if (r.max_items !== undefined && items.length > Number(r.max_items)) this.add(path, `must have at most ${r.max_items} item(s), has ${items.length}`);
    if (r.unique) {
      const seen = new Map<string, number>();
      items.forEach((it, i) => {
        const key = it instanceof Uint8Array ? Buffer.from(it).toString('base64') : typeof it === 'object' && it !== null && !('low' in it) ? JSON.stringify(it) : String(it);
        if (seen.has(key)) this.add(`${path}[${i}]`, `items must be unique; duplicate of ${path}[${seen.get(key)}]`);
        else seen.set(key, i);
      });
    }
    if (r.items) items.forEach((it, i) => this.value(field, r.items, it, `${path}[${i}]`));
  }

  map(field: protobuf.Field, r: Rules | undefined, m: Json, path: string): void {
    if (!r) return;
    const keys = Object.keys(m).sort();
    if (r.ignore_empty && keys.length === 0) return;
    if (r.min_pairs !== undefined && keys.length < Number(r.min_pairs)) this.add(path, `must have at least ${r.min_pairs} entr(ies), has ${keys.length}`);
    if (r.max_pairs !== undefined && keys.length > Number(r.max_pairs)) this.add(path, `must have at most ${r.max_pairs} entr(ies), has ${keys.length}`);
    const keyType = mapKeyType(field);
    for (const k of keys) {
      const kp = `${path}[${JSON.stringify(k)}]`;
      if (r.keys) this.scalar(keyType, r.keys[keyType], keyType === 'string' ? k : keyType === 'bool' ? k === 'true' : k, kp, 'key ');
      if (r.no_sparse && m[k] == null) this.add(kp, 'map value must not be empty');
      if (r.values) this.value(field, r.values, m[k], kp);
    }
  }

  scalar(kind: string, r: Rules | undefined, v: unknown, path: string, what = ''): void {
    if (!r) return;
    if (kind === 'string') this.string(r, String(v ?? ''), path, what);
    else if (kind === 'bytes') this.bytes(r, v instanceof Uint8Array ? v : new Uint8Array(Array.isArray(v) ? v : []), path);
    else if (kind === 'bool') {
      if (r.const !== undefined && Boolean(v) !== r.const) this.add(path, `${what}must be ${r.const}`);
    } else this.number(kind, r, v, path, what);
  }

  number(kind: string, r: Rules, raw: unknown, path: string, what: string): void {
    const isFloat = kind === 'double' || kind === 'float';
    // 64-bit values are compared as bigints so nothing is lost above 2^53.
    const conv = (x: unknown): number | bigint => (isFloat ? Number(x) : toBigInt(x));
    const v = conv(raw);
    if (r.ignore_empty && (v === 0 || v === 0n)) return;
    if (r.const !== undefined && v !== conv(r.const)) this.add(path, `${what}must equal ${r.const}, got ${v}`);
    const inList = list(r.in)?.map(conv);
    if (inList && !inList.includes(v)) this.add(path, `${what}must be one of [${inList.join(', ')}], got ${v}`);
    const notIn = list(r.not_in)?.map(conv);
    if (notIn?.includes(v)) this.add(path, `${what}must not be one of [${notIn.join(', ')}], got ${v}`);
    this.range(r, v, conv, path, `${what}value ${v}`, String);
  }

  /** PGV's gt/gte/lt/lte; when the lower bound is above the upper one the range is exclusive. */
  range<T extends number | bigint>(r: Rules, v: T, conv: (x: unknown) => T, path: string, what: string, show: (x: T) => string): void {
    const lo = r.gt !== undefined ? { b: conv(r.gt), strict: true } : r.gte !== undefined ? { b: conv(r.gte), strict: false } : undefined;
    const hi = r.lt !== undefined ? { b: conv(r.lt), strict: true } : r.lte !== undefined ? { b: conv(r.lte), strict: false } : undefined;
    const okLo = !lo || (lo.strict ? v > lo.b : v >= lo.b);
    const okHi = !hi || (hi.strict ? v < hi.b : v <= hi.b);
    const loText = lo && `${lo.strict ? '>' : '>='} ${show(lo.b)}`;
    const hiText = hi && `${hi.strict ? '<' : '<='} ${show(hi.b)}`;
    if (lo && hi && hi.b < lo.b) {
      if (!okLo && !okHi) this.add(path, `${what} must be ${loText} or ${hiText}`);
    } else if (!okLo || !okHi) {
      this.add(path, `${what} must be ${[loText, hiText].filter(Boolean).join(' and ')}`);
    }
  }

  string(r: Rules, s: string, path: string, what: string): void {
    if (r.ignore_empty && s === '') return;
    const runes = runeCount(s); // PGV counts code points for *_len and UTF-8 bytes for *_bytes
    const bytes = r.len_bytes !== undefined || r.min_bytes !== undefined || r.max_bytes !== undefined ? Buffer.byteLength(s, 'utf8') : 0;
    const fail = (m: string): void => this.add(path, `${what}${m}, got ${JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}...` : s)}`);
    if (r.const !== undefined && s !== r.const) fail(`must equal ${JSON.stringify(r.const)}`);
    if (r.len !== undefined && runes !== Number(r.len)) fail(`must be exactly ${r.len} characters`);
    if (r.min_len !== undefined && runes < Number(r.min_len)) fail(`must be at least ${r.min_len} character(s) long`);
    if (r.max_len !== undefined && runes > Number(r.max_len)) fail(`must be at most ${r.max_len} characters long`);
    if (r.len_bytes !== undefined && bytes !== Number(r.len_bytes)) fail(`must be exactly ${r.len_bytes} bytes`);
    if (r.min_bytes !== undefined && bytes < Number(r.min_bytes)) fail(`must be at least ${r.min_bytes} byte(s) long`);
    if (r.max_bytes !== undefined && bytes > Number(r.max_bytes)) fail(`must be at most ${r.max_bytes} bytes long`);
    if (r.pattern !== undefined) {
      const re = compileRe2(String(r.pattern));
      if (!(re instanceof Error) && !re.matcher(s).find()) fail(`must match the pattern ${JSON.stringify(r.pattern)}`);
    }
    if (r.prefix !== undefined && !s.startsWith(r.prefix)) fail(`must start with ${JSON.stringify(r.prefix)}`);
    if (r.suffix !== undefined && !s.endsWith(r.suffix)) fail(`must end with ${JSON.stringify(r.suffix)}`);
    if (r.contains !== undefined && !s.includes(r.contains)) fail(`must contain ${JSON.stringify(r.contains)}`);
    if (r.not_contains !== undefined && s.includes(r.not_contains)) fail(`must not contain ${JSON.stringify(r.not_contains)}`);
    const inList = list(r.in) as string[] | undefined;
    if (inList && !inList.includes(s)) fail(`must be one of ${JSON.stringify(inList)}`);
    if ((list(r.not_in) as string[] | undefined)?.includes(s)) fail(`must not be one of ${JSON.stringify(r.not_in)}`);
    if (r.hostname && !isHostname(s)) fail('must be a valid hostname');
    if (r.ip && net.isIP(s) === 0) fail('must be a valid IP address');
    if (r.ipv4 && !net.isIPv4(s)) fail('must be a valid IPv4 address');
    if (r.ipv6 && !net.isIPv6(s)) fail('must be a valid IPv6 address');
    if (r.address && net.isIP(s) === 0 && !isHostname(s)) fail('must be a valid hostname or IP address');
    if (r.uuid && !UUID.test(s)) fail('must be a valid UUID');
    if (r.well_known_regex === 'HTTP_HEADER_NAME' || r.well_known_regex === 'HTTP_HEADER_VALUE') {
      const isName = r.well_known_regex === 'HTTP_HEADER_NAME';
      const strict = r.strict !== false; // PGV: strict defaults to true
      const re = !strict ? HEADER_LOOSE : isName ? HEADER_NAME_STRICT : HEADER_VALUE_STRICT;
      if (!re.test(s)) fail(`must be a valid HTTP header ${isName ? 'name' : 'value'}${strict ? '' : ' (no NUL, CR or LF)'}`);
    }
  }

  bytes(r: Rules, b: Uint8Array, path: string): void {
    if (r.ignore_empty && b.length === 0) return;
    const buf = Buffer.from(b.buffer, b.byteOffset, b.length);
    const asBuf = (x: unknown): Buffer => Buffer.from(String(x), 'utf8');
    if (r.const !== undefined && !buf.equals(asBuf(r.const))) this.add(path, 'bytes must equal the constant');
    if (r.len !== undefined && b.length !== Number(r.len)) this.add(path, `must be exactly ${r.len} bytes, got ${b.length}`);
    if (r.min_len !== undefined && b.length < Number(r.min_len)) this.add(path, `must be at least ${r.min_len} byte(s), got ${b.length}`);
    if (r.max_len !== undefined && b.length > Number(r.max_len)) this.add(path, `must be at most ${r.max_len} bytes, got ${b.length}`);
    if (r.prefix !== undefined && !buf.subarray(0, asBuf(r.prefix).length).equals(asBuf(r.prefix))) this.add(path, 'bytes must start with the given prefix');
    if (r.suffix !== undefined && !buf.subarray(buf.length - asBuf(r.suffix).length).equals(asBuf(r.suffix))) this.add(path, 'bytes must end with the given suffix');
    if (r.contains !== undefined && buf.indexOf(asBuf(r.contains)) < 0) this.add(path, 'bytes must contain the given sequence');
    if (list(r.in) && !list(r.in)!.some((x) => buf.equals(asBuf(x)))) this.add(path, 'bytes must be one of the allowed values');
    if (list(r.not_in)?.some((x) => buf.equals(asBuf(x)))) this.add(path, 'bytes must not be one of the listed values');
    if ((r.ip && b.length !== 4 && b.length !== 16) || (r.ipv4 && b.length !== 4) || (r.ipv6 && b.length !== 16)) this.add(path, 'bytes must be an IP address in byte form');
  }

  enumValue(e: protobuf.Enum, r: Rules | undefined, v: number, path: string): void {
    if (!r) return;
    const name = e.valuesById[v] ?? String(v);
    if (r.defined_only && e.valuesById[v] === undefined) this.add(path, `${v} is not a defined value of enum ${nameOf(e)}`);
    if (r.const !== undefined && v !== Number(r.const)) this.add(path, `must be ${e.valuesById[Number(r.const)] ?? r.const}, got ${name}`);
    const inList = list(r.in)?.map(Number);
    if (inList && !inList.includes(v)) this.add(path, `must be one of [${inList.map((x) => e.valuesById[x] ?? x).join(', ')}], got ${name}`);
    const notIn = list(r.not_in)?.map(Number);
    if (notIn?.includes(v)) this.add(path, `must not be ${name}`);
  }

  duration(r: Rules | undefined, d: Json, path: string): void {
    if (!r) return;
    const nanos = (x: unknown): bigint => {
      const o = (x ?? {}) as Json;
      return toBigInt(o.seconds) * 1_000_000_000n + toBigInt(o.nanos);
    };
    const show = (n: bigint): string => formatDuration(n / 1_000_000_000n, Number(n % 1_000_000_000n));
    const v = nanos(d);
    if (r.const !== undefined && v !== nanos(r.const)) this.add(path, `duration must equal ${show(nanos(r.const))}, got ${show(v)}`);
    const inList = list(r.in)?.map(nanos);
    if (inList && !inList.includes(v)) this.add(path, `duration must be one of [${inList.map(show).join(', ')}], got ${show(v)}`);
    if (list(r.not_in)?.map(nanos).includes(v)) this.add(path, `duration must not be ${show(v)}`);
    this.range(r, v, nanos, path, `duration ${show(v)}`, show);
  }

  timestamp(r: Rules | undefined, t: Json, path: string): void {
    if (!r) return;
    const nanos = (x: unknown): bigint => {
      const o = (x ?? {}) as Json;
      return toBigInt(o.seconds) * 1_000_000_000n + toBigInt(o.nanos);
    };
    const v = nanos(t);
    if (r.const !== undefined && v !== nanos(r.const)) this.add(path, 'timestamp must equal the constant');
    this.range(r, v, nanos, path, 'timestamp', (n) => `${n / 1_000_000_000n}s since the epoch`);
  }

  any(r: Rules | undefined, a: Json, path: string): void {
    if (!r) return;
    const url = String(a.type_url ?? '');
    const inList = list(r.in) as string[] | undefined;
    if (inList && !inList.includes(url)) this.add(joinPath(path, '@type'), `type must be one of ${JSON.stringify(inList)}, got ${JSON.stringify(url)}`);
    if ((list(r.not_in) as string[] | undefined)?.includes(url)) this.add(joinPath(path, '@type'), `type ${JSON.stringify(url)} is not allowed here`);
  }
}

function defaultOf(kind: string): unknown {
  return kind === 'string' ? '' : kind === 'bool' ? false : kind === 'bytes' ? new Uint8Array() : 0;
}

/** Checks a parsed message (and everything nested in it) against its (validate.*) options. */
export function validateMessage(type: protobuf.Type, message: protobuf.Message | Json, path = ''): Violation[] {
  const c = new Checker();
  forEachMessage(type, message as Json, path, (t, m, p) => c.messageNode(t, m, p));
  return c.out;
}
