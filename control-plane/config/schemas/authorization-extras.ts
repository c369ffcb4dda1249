// The parts of AuthorizationPolicy's syntax beyond the plain value forms: path templates
// (`/api/{*}/items/{**}`) and the condition keys destination.ip, connection.sni and
// experimental.envoy.filters.<filter>[<key>], checked as Istio's validation checks them.
import { isIP } from 'node:net';

const ONE = '{*}';
const MANY = '{**}';

/** Whether a path uses Istio's template operators `{*}` (one segment) or `{**}` (the rest). */
export function isPathTemplate(path: string): boolean {
  return path.includes(ONE) || path.includes(MANY);
}

// RFC 3986 pchar (unreserved, pct-encoded, sub-delims, ":" and "@"), what Envoy's URI templates
// take as literal text in a segment.
const LITERAL = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})*$/;

/**
 * Why a path is not a valid template, or undefined. As Istio: a segment is `{*}`, `{**}` (only as
 * the last operator) or literal text; braces elsewhere are refused; literal segments of a
 * template must be valid path characters (no `*` wildcard mixed with templates).
 */
export function pathTemplateProblem(path: string): string | undefined {
  const segments = path.replace(/^\/+|\/+$/g, '').split('/');
  const templated = isPathTemplate(path);
  let sawMany = false;
  for (const seg of segments) {
    if (seg === ONE || seg === MANY) {
      if (sawMany) return `${JSON.stringify(path)}: {**} must be the last operator of a path template`;
      sawMany = seg === MANY;
      continue;
    }
    if (/[{}]/.test(seg)) return `${JSON.stringify(path)}: "{" and "}" only appear as a whole segment {*} or {**}`;
    if (templated && (!LITERAL.test(seg) || seg.includes('*'))) return `${JSON.stringify(path)}: segment ${JSON.stringify(seg)} of a path template is not valid literal path text`;
  }
  return undefined;
}

export const EXPERIMENTAL_PREFIX = 'experimental.envoy.filters.';

/** `experimental.envoy.filters.network.mysql_proxy[db.table]` -> filter and metadata key path. */
export function parseExperimentalKey(key: string): { filter: string; path: string[] } | undefined {
  if (!key.startsWith(EXPERIMENTAL_PREFIX)) return undefined;
  const open = key.indexOf('[');
  if (open < 0 || !key.endsWith(']')) return undefined;
  const filter = key.slice('experimental.'.length, open);
  const path = key.slice(open + 1, -1).split('][');
  if (filter === 'envoy.filters.' || filter.endsWith('.') || path.some((p) => p === '' || /[[\]]/.test(p))) return undefined;
  return { filter, path };
}

/**
 * For the keys this file owns: undefined (valid) or why not; null for any other key.
 */
export function conditionKeyExtra(key: string): string | undefined | null {
  if (key === 'destination.ip' || key === 'connection.sni' || key === 'source.serviceAccount' || key === 'source.trustDomain') return undefined;
  if (key.startsWith(EXPERIMENTAL_PREFIX)) {
    return parseExperimentalKey(key) ? undefined : `${JSON.stringify(key)}: write experimental.envoy.filters.<filter name>[<metadata key>], e.g. experimental.envoy.filters.network.mysql_proxy[db.table]`;
  }
  return null;
}

/** A value of one of this file's keys: undefined when fine. */
export function checkExtraConditionValue(key: string, value: string): string | undefined {
  if (key === 'destination.ip') return ipOrCidrProblem(value);
  if (value === '') return 'must not be empty';
  if (key === 'source.serviceAccount' && !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(\/[a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$/.test(value)) return `${JSON.stringify(value)}: a service account is written <namespace>/<name> or <name> (no wildcards)`;
  if (key === 'source.trustDomain' && value.slice(1, -1).includes('*')) return `${JSON.stringify(value)}: a wildcard "*" may only be at the start or at the end`;
  return undefined;
}

function ipOrCidrProblem(s: string): string | undefined {
  const [addr = '', len, extra] = s.split('/');
  const family = addr.includes('%') ? 0 : isIP(addr);
  const max = family === 4 ? 32 : 128;
  if (extra !== undefined || family === 0 || (len !== undefined && (!/^\d{1,3}$/.test(len) || Number(len) > max))) {
    return `invalid IP address or CIDR block ${JSON.stringify(s)}: expected e.g. 10.1.2.3 or 10.1.0.0/16`;
  }
  return undefined;
}

// ---- templates as Envoy and gRPC evaluate them ------------------------------------------------

// Envoy's URI template operators match these characters (a segment: no "/").
const SEGMENT_CHARS = "[a-zA-Z0-9\\-._~%!$&'()+,;:@=]";
const RE2_SPECIAL = /[\\^$.*+?()[\]{}|]/g;

/** Istio's `{*}` / `{**}` as Envoy's URI template operators `*` / `**`. */
export function envoyUriTemplate(path: string): string {
  return path.split('/').map((seg) => (seg === ONE ? '*' : seg === MANY ? '**' : seg)).join('/');
}

/** The same template as a full-match RE2 regex (for gRPC, which has no URI template matcher). */
export function pathTemplateRegex(path: string): string {
  return path
    .split('/')
    .map((seg) => (seg === ONE ? `${SEGMENT_CHARS}+` : seg === MANY ? `(?:${SEGMENT_CHARS}|/)*` : seg.replace(RE2_SPECIAL, '\\$&')))
    .join('/');
}
