// Envoy's StringMatcher and HeaderMatcher, evaluated on a concrete value, with a description in
// words for the explanation. Regexes are RE2 and must match the whole value (Envoy's safe_regex).
import { RE2JS } from 're2js';
import type { Json } from '../json.ts';


const regexCache = new Map<string, RE2JS>();
function re2(regex: string): RE2JS {
  let r = regexCache.get(regex);
  if (!r) {
    r = RE2JS.compile(regex);
    regexCache.set(regex, r);
  }
  return r;
}

export function regexFullMatch(regex: string, value: string): boolean {
  return re2(regex).matches(value);
}

/** envoy.type.matcher.v3.StringMatcher on `value`. ignore_case does not apply to safe_regex (as in Envoy). */
export function stringMatches(m: Json, value: string): boolean {
  const ic = m.ignore_case === true;
  const eq = (a: string, b: string) => (ic ? a.toLowerCase() === b.toLowerCase() : a === b);
  const norm = (s: string) => (ic ? s.toLowerCase() : s);
  if (typeof m.exact === 'string') return eq(value, m.exact);
  if (typeof m.prefix === 'string') return norm(value).startsWith(norm(m.prefix));
  if (typeof m.suffix === 'string') return norm(value).endsWith(norm(m.suffix));
  if (typeof m.contains === 'string') return norm(value).includes(norm(m.contains));
  if (m.safe_regex && typeof (m.safe_regex as Json).regex === 'string') return regexFullMatch((m.safe_regex as Json).regex as string, value);
  throw new Error(`unsupported string matcher ${JSON.stringify(m)}`);
}

export function describeString(m: Json): string {
  const ic = m.ignore_case === true ? ' (any case)' : '';
  if (typeof m.exact === 'string') return `equal to "${m.exact}"${ic}`;
  if (typeof m.prefix === 'string') return `starting with "${m.prefix}"${ic}`;
  if (typeof m.suffix === 'string') return `ending with "${m.suffix}"${ic}`;
  if (typeof m.contains === 'string') return `containing "${m.contains}"${ic}`;
  if (m.safe_regex) return `fully matching the regex ${JSON.stringify((m.safe_regex as Json).regex)}`;
  return JSON.stringify(m);
}

/** The StringMatcher inside a HeaderMatcher, including the legacy *_match forms. */
function headerValueMatcher(h: Json): Json | undefined {
  if (h.string_match) return h.string_match as Json;
  if (typeof h.exact_match === 'string') return { exact: h.exact_match };
  if (typeof h.prefix_match === 'string') return { prefix: h.prefix_match };
  if (typeof h.suffix_match === 'string') return { suffix: h.suffix_match };
  if (typeof h.contains_match === 'string') return { contains: h.contains_match };
  if (h.safe_regex_match) return { safe_regex: h.safe_regex_match };
  return undefined;
}

export interface Check {
  ok: boolean;
  /** What was required and what the request had, in words. */
  detail: string;
}

/**
 * envoy.config.route.v3.HeaderMatcher, as each data plane evaluates it. They differ on a missing
 * header:
 * - Envoy: a missing header matches only `present_match: false`, or with invert_match only
 *   `present_match: true` (so an inverted value match does NOT match a request without the
 *   header); treat_missing_header_as_empty evaluates it as "". (Envoy's HeaderUtility::matchHeaders.)
 * - gRPC (grpc-js-xds): a missing header fails every matcher and invert_match flips that, so an
 *   inverted value match DOES match a request without the header; `-bin` headers never match and
 *   content-type is always application/grpc.
 * Repeated headers are joined with ',' in both.
 */
export function headerMatches(h: Json, headers: Record<string, string>, plane: 'envoy' | 'grpc' = 'envoy'): Check {
  const name = String(h.name).toLowerCase();
  const invert = h.invert_match === true;
  let value: string | undefined = headers[name];
  if (plane === 'grpc') {
    if (name === 'content-type') value = 'application/grpc';
    if (name.endsWith('-bin')) value = undefined;
  }
  const vm = headerValueMatcher(h);
  let want: string;
  if (vm) want = `header ${name} ${describeString(vm)}`;
  else if (h.present_match === false) want = `header ${name} absent`;
  else if (h.range_match) want = `header ${name} in [${String((h.range_match as Json).start)}, ${String((h.range_match as Json).end)})`;
  else want = `header ${name} present`;
  const had = value === undefined ? 'the request has no such header' : `the request has "${value}"`;
  const result = (ok: boolean): Check => ({ ok, detail: `${invert ? 'NOT ' : ''}${want}; ${had}` });
  if (value === undefined && plane === 'envoy' && h.treat_missing_header_as_empty === true) value = '';
  if (value === undefined) {
    const isPresent = !vm && !h.range_match;
    if (plane === 'grpc') return result(invert);
    return result(invert ? isPresent && h.present_match !== false : isPresent && h.present_match === false);
  }
  let raw: boolean;
  if (vm) raw = stringMatches(vm, value);
  else if (h.range_match) {
    const r = h.range_match as Json;
    raw = /^-?\d+$/.test(value) && Number(value) >= Number(r.start) && Number(value) < Number(r.end);
  } else raw = h.present_match !== false;
  return result(invert ? !raw : raw);
}
