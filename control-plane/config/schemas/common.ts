// Building blocks shared by the per-kind schemas: names, hosts, labels, ports, durations, RE2
// regexes, string matches, and a helper for rules that span several fields.
import { isIP } from 'node:net';
import { RE2JS } from 're2js';
import { z } from 'zod';

/** A loosely typed view of an object that a cross-field rule inspects. */
export type Fields = Record<string, unknown>;
type Report = (path: (string | number)[], message: string) => void;

export function isRecord(v: unknown): v is Fields {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Adds a cross-field rule to an object schema. The rule runs whenever the value is an object, even
 * if some of its fields failed, so that one pass reports as many errors as possible; rules must
 * therefore read fields defensively (they are typed `unknown`).
 */
export function withRule<T extends z.ZodType>(schema: T, rule: (v: Fields, report: Report) => void): T {
  return schema.superRefine(
    (value, ctx) => {
      rule(value as Fields, (path, message) => ctx.addIssue({ code: 'custom', path, message, input: value }));
    },
    { when: (payload) => isRecord(payload.value) },
  );
}

/** Names of the fields of `v` (among `names`) that are set. `false` does not count as set. */
export function setFields(v: Fields, names: readonly string[]): string[] {
  return names.filter((n) => v[n] !== undefined && v[n] !== false);
}

export function exactlyOne(names: readonly string[]) {
  return (v: Fields, report: Report): void => {
    const set = setFields(v, names);
    if (set.length === 0) report([], `exactly one of ${names.join(', ')} must be set`);
    else if (set.length > 1) report([], `only one of ${names.join(', ')} may be set (found ${set.join(' and ')})`);
  };
}

export function atMostOne(names: readonly string[]) {
  return (v: Fields, report: Report): void => {
    const set = setFields(v, names);
    if (set.length > 1) report([], `only one of ${names.join(', ')} may be set (found ${set.join(' and ')})`);
  };
}

/** Reports the second and later occurrences of the same value of `field` in a list. */
export function uniqueBy(list: unknown, field: string, what: string, report: Report, listPath: (string | number)[]): void {
  if (!Array.isArray(list)) return;
  const seen = new Map<string, number>();
  list.forEach((item, i) => {
    const raw = isRecord(item) ? item[field] : undefined;
    const value = isRecord(raw) ? raw['number'] : raw; // port selectors: { number }
    if (value === undefined || (typeof value !== 'string' && typeof value !== 'number')) return;
    const k = String(value);
    const first = seen.get(k);
    if (first !== undefined) report([...listPath, i, field], `duplicate ${what} ${JSON.stringify(value)} (also at index ${first})`);
    else seen.set(k, i);
  });
}

// ---- numbers -------------------------------------------------------------------------------

/** An integer in [min, max], with one clear message for every way of getting it wrong. */
export function intRange(min: number, max: number, what = 'an integer', hint = '') {
  const error = `must be ${what} from ${min} to ${max}${hint}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

export const INT32_MAX = 2_147_483_647;
export const UINT32_MAX = 4_294_967_295;

export const portNumber = intRange(1, 65535, 'a port number');
export const percent = intRange(0, 100, 'a percentage');
/** A limit where Istio reads 0 as "unset": meshpilot asks for the field to be left out instead. */
export const positiveLimit = intRange(1, INT32_MAX, 'an integer', ' (leave the field out for the default)');

/** Istio's PortSelector. */
export const PortSelector = z.strictObject({ number: portNumber });

// ---- names ---------------------------------------------------------------------------------

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const HOST_LABEL = /^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export function isDnsLabel(s: string): boolean {
  return s.length <= 63 && DNS_LABEL.test(s);
}

export function isDnsSubdomain(s: string): boolean {
  return s.length <= 253 && s.split('.').every(isDnsLabel);
}

/** A host name: dot-separated labels (either case), at most 255 characters. IPv4 literals pass too. */
export function isHostName(s: string): boolean {
  return s.length > 0 && s.length <= 255 && s.split('.').every((l) => l.length <= 63 && HOST_LABEL.test(l));
}

/** `*.example.com` (when `wildcard`) or a plain host name. Bare `*` only when `star`; `*example.com`
 * (a suffix that does not start at a dot, as Istio allows in ServiceEntry hosts) only when `partial`. */
export function checkHost(s: string, opts: { wildcard: boolean; star?: boolean; partial?: boolean }): string | undefined {
  if (s === '*') return opts.star ? undefined : 'the host "*" is not allowed here';
  if (opts.partial && s.startsWith('*') && !s.startsWith('*.') && isHostName(s.slice(1))) return undefined;
  if (s.startsWith('*.')) {
    if (!opts.wildcard) return `wildcard host ${JSON.stringify(s)} is not allowed here`;
    return isHostName(s.slice(2)) ? undefined : `invalid wildcard host ${JSON.stringify(s)}`;
  }
  if (s.includes('*')) return `invalid host ${JSON.stringify(s)}: a wildcard may only be a leading "*."`;
  return isHostName(s) ? undefined : `invalid host ${JSON.stringify(s)}: expected a DNS name such as reviews or reviews.default.svc.cluster.local`;
}

export function host(opts: { wildcard: boolean; star?: boolean; partial?: boolean }) {
  return z.string().superRefine((s, ctx) => {
    const problem = checkHost(s, opts);
    if (problem) ctx.addIssue({ code: 'custom', message: problem, input: s });
  });
}

export const dnsLabel = z.string().refine(isDnsLabel, {
  error: 'must be a DNS-1123 label: lower-case letters, digits and "-", starting and ending with a letter or digit, at most 63 characters',
});

export const dnsSubdomain = z.string().refine(isDnsSubdomain, {
  error: 'must be a DNS-1123 name: lower-case letters, digits, "-" and ".", at most 253 characters',
});

/** A Kubernetes label (or annotation) key: `[prefix/]name`. */
export function isLabelKey(s: string): boolean {
  const slash = s.lastIndexOf('/');
  const name = slash >= 0 ? s.slice(slash + 1) : s;
  if (slash >= 0 && !isDnsSubdomain(s.slice(0, slash))) return false;
  return name.length <= 63 && LABEL_NAME.test(name);
}

export function isLabelValue(s: string): boolean {
  return s === '' || (s.length <= 63 && LABEL_NAME.test(s));
}

const labelKey = z.string().refine(isLabelKey, { error: 'invalid label key: expected [prefix/]name, name at most 63 characters of letters, digits, "-", "_" and "."' });
const labelValue = z.string({ error: 'label values must be strings (quote numbers and booleans)' }).refine(isLabelValue, {
  error: 'invalid label value: at most 63 characters of letters, digits, "-", "_" and ".", starting and ending with a letter or digit',
});

export const labels = z.record(labelKey, labelValue);
export const annotations = z.record(labelKey, z.string({ error: 'annotation values must be strings (quote numbers and booleans)' }));

export const headerName = z.string().refine((s) => HTTP_TOKEN.test(s), { error: 'invalid HTTP header name' });

/** A header name usable in a match: a token, or a pseudo-header such as `:authority`. */
export const matchHeaderName = z.string().refine((s) => HTTP_TOKEN.test(s.startsWith(':') ? s.slice(1) : s), {
  error: 'invalid HTTP header name',
});

/** Envoy refuses to set, add or remove pseudo-headers and Host. */
export const mutableHeaderName = headerName.refine((s) => s.toLowerCase() !== 'host', {
  error: 'the Host header cannot be added or removed; set it (or :authority), or use rewrite.authority',
});

/** `:authority` or `Host`: in `headers.request.set` they rewrite the authority, as in Istio. */
export function isAuthorityHeader(s: string): boolean {
  const l = s.toLowerCase();
  return l === ':authority' || l === 'host';
}

/** A header name `headers.*.set` takes: a mutable header, or the authority (`:authority`, `Host`). */
export const settableHeaderName = z.string().superRefine((s, ctx) => {
  if (isAuthorityHeader(s)) return;
  if (!HTTP_TOKEN.test(s)) ctx.addIssue({ code: 'custom', message: 'invalid HTTP header name', input: s });
});

/** Why `value` is not a valid Envoy header value format, or undefined: a literal % is written %%,
 * and %NAME% / %NAME(args)% / %NAME(args):N% are Envoy's substitutions (e.g. %HOSTNAME%), as Istio checks. */
export function headerFormatProblem(value: string): string | undefined {
  for (let i = 0; i < value.length; i++) {
    if (value[i] !== '%') continue;
    if (value[i + 1] === '%') {
      i++;
      continue;
    }
    const end = value.indexOf('%', i + 1);
    const command = end < 0 ? undefined : value.slice(i + 1, end);
    if (command === undefined || !/^[A-Z][A-Z0-9_]*(\(.*\))?(:\d+)?$/.test(command)) {
      return `unescaped % at offset ${i}: write %% for a literal %, or %NAME% for an Envoy substitution such as %HOSTNAME%`;
    }
    i = end;
  }
  return undefined;
}

/** A header value Envoy formats (set/add): headerValue, with % escaped or naming a substitution. */
export const formattedHeaderValue = z.string().superRefine((s, ctx) => {
  if (/[\r\n\0]/.test(s)) ctx.addIssue({ code: 'custom', message: 'must not contain CR, LF or NUL characters', input: s });
  else {
    const problem = headerFormatProblem(s);
    if (problem) ctx.addIssue({ code: 'custom', message: problem, input: s });
  }
});

/** Text that ends up in an HTTP header (values, authorities, paths): no CR, LF or NUL, which
 * Envoy refuses and which would otherwise split a header. */
export const headerValue = z.string().refine((s) => !/[\r\n\0]/.test(s), { error: 'must not contain CR, LF or NUL characters' });

/** An IP literal (v4 or v6). */
export function isIpLiteral(s: string): boolean {
  return isIP(s) !== 0;
}

/** Why a `unix://` address is malformed, or undefined: an absolute path to a socket, or `@name` (abstract). */
export function unixAddressProblem(s: string): string | undefined {
  const rest = s.slice('unix://'.length);
  if (rest.startsWith('@')) return rest.length > 1 ? undefined : 'an abstract unix socket needs a name after "@" (unix://@name)';
  if (!rest.startsWith('/')) return `unix socket path must be absolute (unix:///path/to/socket) or abstract (unix://@name), got ${JSON.stringify(s)}`;
  if (rest.endsWith('/')) return `unix socket path must name a socket, not a directory (got ${JSON.stringify(s)})`;
  return undefined;
}

/** An endpoint address: an IP literal, a host name, or a unix domain socket (`unix:///path`, `unix://@name`). */
export const endpointAddress = z.string().superRefine((s, ctx) => {
  if (s.startsWith('unix://')) {
    const problem = unixAddressProblem(s);
    if (problem) ctx.addIssue({ code: 'custom', message: problem, input: s });
  } else if (!isIpLiteral(s) && !isHostName(s)) ctx.addIssue({ code: 'custom', message: `invalid address ${JSON.stringify(s)}: expected an IP address or a host name`, input: s });
});

// ---- enums ---------------------------------------------------------------------------------

/**
 * One of `supported`. Values Istio knows but meshpilot does not (`istioOnly`) get a message that
 * says so, rather than "invalid".
 */
export function istioEnum<const T extends readonly [string, ...string[]]>(supported: T, istioOnly: readonly string[] = []) {
  return z.enum(supported, {
    error: (iss) => {
      const got = iss.input;
      const list = supported.join(', ');
      if (typeof got === 'string' && istioOnly.includes(got)) return `${JSON.stringify(got)} is not supported by meshpilot (supported: ${list})`;
      return `must be one of ${list}${got === undefined ? '' : ` (got ${JSON.stringify(got)})`}`;
    },
  });
}

// ---- durations -----------------------------------------------------------------------------

const UNIT_NS: Record<string, bigint> = {
  h: 3_600_000_000_000n,
  m: 60_000_000_000n,
  s: 1_000_000_000n,
  ms: 1_000_000n,
  us: 1_000n,
  'µs': 1_000n,
  ns: 1n,
};
const DURATION_PART = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y;
const MAX_NS = 9_223_372_036_854_775_807n; // the largest Go time.Duration

/**
 * Parses a duration the way Istio's Go code reads one (time.ParseDuration): one or more
 * `<digits>[.<digits>]<unit>` parts with units h, m, s, ms, us (µs), ns, e.g. "1s", "0.5s", "100ms",
 * "1m30s". No sign, no spaces, no bare numbers, no leading-dot ".5s" (Go takes it; written "0.5s"
 * here). Like Istio, the total must be whole milliseconds.
 */
export function parseDuration(text: string): { ms: number } | { error: string } {
  const bad = { error: `invalid duration ${JSON.stringify(text)}: expected e.g. 10s, 0.5s, 100ms, 1m, 1h or 1m30s` };
  if (text.length === 0) return bad;
  let ns = 0n;
  DURATION_PART.lastIndex = 0;
  let at = 0;
  while (at < text.length) {
    const m = DURATION_PART.exec(text);
    if (!m || m.index !== at) return bad;
    at = DURATION_PART.lastIndex;
    const [whole = '', frac = ''] = m[1]!.split('.');
    const unit = UNIT_NS[m[2]!]!;
    ns += BigInt(whole || '0') * unit;
    if (frac) ns += (BigInt(frac) * unit) / 10n ** BigInt(frac.length);
    if (ns > MAX_NS) return { error: `duration ${JSON.stringify(text)} is too large` };
  }
  if (ns % 1_000_000n !== 0n) return { error: `duration ${JSON.stringify(text)} is finer than 1ms; only whole milliseconds are supported` };
  return { ms: Number(ns / 1_000_000n) };
}

/** Milliseconds of a duration that has passed validation (throws on an invalid one). */
export function durationMs(text: string): number {
  const r = parseDuration(text);
  if ('error' in r) throw new Error(r.error);
  return r.ms;
}

/** A duration string. Zero ("0s") only where it has a meaning (e.g. "disabled"), given by `allowZero`. */
export function duration(opts: { allowZero?: boolean } = {}) {
  return z.string({ error: 'expected a duration string such as "10s" or "500ms"' }).superRefine((s, ctx) => {
    const r = parseDuration(s);
    if ('error' in r) ctx.addIssue({ code: 'custom', message: r.error, input: s });
    else if (r.ms === 0 && !opts.allowZero) ctx.addIssue({ code: 'custom', message: 'duration must be at least 1ms', input: s });
  });
}

// ---- regexes and string matches ------------------------------------------------------------

/** Why `pattern` is not a valid RE2 regex (the dialect Envoy uses), or undefined if it is. */
export function re2Problem(pattern: string): string | undefined {
  if (pattern === '') return 'regex must not be empty';
  try {
    RE2JS.compile(pattern);
    return undefined;
  } catch (e) {
    const msg = e instanceof Error ? e.message.replace(/^error parsing regexp: /, '') : String(e);
    return `invalid regex (RE2 syntax): ${msg}`;
  }
}

export const re2Regex = z.string().superRefine((s, ctx) => {
  const problem = re2Problem(s);
  if (problem) ctx.addIssue({ code: 'custom', message: problem, input: s });
});

const stringMatchShape = {
  exact: z.string().optional(),
  prefix: z.string().optional(),
  regex: re2Regex.optional(),
};
const MATCH_KINDS = ['exact', 'prefix', 'regex'] as const;

/** Istio's StringMatch: exactly one of exact, prefix, regex. */
export const StringMatch = withRule(z.strictObject(stringMatchShape), exactlyOne(MATCH_KINDS));

/** Istio rejects `prefix: ""` everywhere but in `uri` (where Envoy reads it as "any path"). */
function noEmptyPrefix(v: Fields, report: Report, hint: string): void {
  if (v['prefix'] === '') report(['prefix'], `an empty prefix matches every value, which Istio does not accept here; ${hint}`);
}

/** StringMatch for `method`: as StringMatch, but no empty prefix (as in Istio). */
export const MethodStringMatch = withRule(z.strictObject(stringMatchShape), (v, report) => {
  exactlyOne(MATCH_KINDS)(v, report);
  noEmptyPrefix(v, report, 'leave `method` out to match every method');
});

/** StringMatch for headers and withoutHeaders: at most one member; `{}` means "the header is present".
 * An empty prefix is refused (as in Istio): `{}` says "present" plainly. */
export const HeaderStringMatch = withRule(z.strictObject(stringMatchShape), (v, report) => {
  atMostOne(MATCH_KINDS)(v, report);
  noEmptyPrefix(v, report, 'write `{}` to match any value of a header that is present');
});

/** StringMatch for query parameters: exact or regex (Istio does not support prefix here). */
export const QueryParamStringMatch = withRule(z.strictObject(stringMatchShape), (v, report) => {
  if (v['prefix'] !== undefined) report(['prefix'], 'prefix matching is not supported for query parameters (as in Istio); use regex');
  else exactlyOne(['exact', 'regex'])(v, report);
});

export type StringMatch = z.infer<typeof StringMatch>;
