// Envoy's RouteMatch, evaluated on one request. Conditions are checked path first, then headers,
// query parameters, the gRPC flag and the runtime fraction; every one must hold. For a route that
// does not match, `failed` says which condition failed first, in words.
import { pathOnly, queryParams, routingHeaders, type HttpRequest } from './request.ts';
import type { Json } from '../json.ts';
import { describeString, headerMatches, regexFullMatch, stringMatches } from './string-matcher.ts';

export interface MatchResult {
  matched: boolean;
  /** Below 1 when a runtime_fraction lets only this share of matching requests take the route. */
  fraction: number;
  /** The first condition that failed (when not matched). */
  failed?: string;
  /** Every condition checked, in order, with its result. */
  checks: Array<{ ok: boolean; detail: string }>;
}

const DENOMINATORS: Record<string, number> = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 };

/** A FractionalPercent as a share between 0 and 1 (a missing percentage is 0, as in Envoy). */
export function fraction(p: Json | undefined): number {
  if (!p) return 0;
  const d = DENOMINATORS[String(p.denominator ?? 'HUNDRED')] ?? 100;
  return Math.min(1, Number(p.numerator ?? 0) / d);
}

export function percentText(share: number): string {
  const p = share * 100;
  return `${Number.isInteger(p) ? p : p.toFixed(p < 1 ? 4 : 2).replace(/0+$/, '')}%`;
}

function pathCheck(m: Json, req: HttpRequest): { ok: boolean; detail: string } | undefined {
  const sensitive = m.case_sensitive !== false;
  const norm = (s: string) => (sensitive ? s : s.toLowerCase());
  const cs = sensitive ? '' : ' (any case)';
  const full = req.path;
  const bare = pathOnly(req.path);
  if (typeof m.prefix === 'string') {
    // Envoy compares a prefix with the whole :path header (query string included).
    return { ok: norm(full).startsWith(norm(m.prefix)), detail: `path starting with "${m.prefix}"${cs}; the request has "${full}"` };
  }
  if (typeof m.path === 'string') {
    return { ok: norm(bare) === norm(m.path), detail: `path equal to "${m.path}"${cs} (query string ignored); the request has "${bare}"` };
  }
  if (m.safe_regex) {
    const rx = String((m.safe_regex as Json).regex);
    return { ok: regexFullMatch(rx, bare), detail: `path fully matching the regex ${JSON.stringify(rx)} (query string ignored); the request has "${bare}"` };
  }
  if (typeof m.path_separated_prefix === 'string') {
    const p = norm(m.path_separated_prefix);
    const b = norm(bare);
    return { ok: b === p || b.startsWith(`${p}/`), detail: `path equal to "${m.path_separated_prefix}" or under it${cs}; the request has "${bare}"` };
  }
  return undefined;
}

const UNSUPPORTED = ['connect_matcher', 'path_match_policy', 'tls_context', 'dynamic_metadata', 'filter_state', 'cel_matcher'];

export function evaluateRouteMatch(m: Json, req: HttpRequest): MatchResult {
  const checks: MatchResult['checks'] = [];
  const result = (): MatchResult => {
    const bad = checks.find((c) => !c.ok);
    return bad ? { matched: false, fraction: 0, failed: bad.detail, checks } : { matched: true, fraction: frac, checks };
  };
  let frac = 1;
  for (const key of UNSUPPORTED) {
    if (m[key] !== undefined) {
      checks.push({ ok: false, detail: `explain cannot evaluate the ${key} condition (treated as not matching)` });
      return result();
    }
  }
  const p = pathCheck(m, req);
  if (!p) checks.push({ ok: false, detail: 'a route match without a path condition (not valid Envoy config)' });
  else checks.push(p);
  if (!checks[checks.length - 1]!.ok) return result();
  for (const h of (m.headers as Json[] | undefined) ?? []) {
    const c = headerMatches(h, routingHeaders(req), req.plane);
    checks.push(c);
    if (!c.ok) return result();
  }
  const query = queryParams(req.path);
  for (const q of (m.query_parameters as Json[] | undefined) ?? []) {
    const name = String(q.name);
    const value = query.get(name);
    const had = value === undefined ? 'the request has no such parameter' : `the request has "${value}"`;
    if (q.string_match) {
      const sm = q.string_match as Json;
      checks.push({ ok: value !== undefined && stringMatches(sm, value), detail: `query parameter ${name} ${describeString(sm)}; ${had}` });
    } else if (q.present_match === false) {
      checks.push({ ok: value === undefined, detail: `query parameter ${name} absent; ${had}` });
    } else {
      checks.push({ ok: value !== undefined, detail: `query parameter ${name} present; ${had}` });
    }
    if (!checks[checks.length - 1]!.ok) return result();
  }
  if (m.grpc !== undefined) {
    const ct = req.headers['content-type'] ?? '';
    checks.push({ ok: ct.startsWith('application/grpc'), detail: `a gRPC request (content-type application/grpc); the request has "${ct}"` });
    if (!checks[checks.length - 1]!.ok) return result();
  }
  if (m.runtime_fraction) {
    frac = fraction((m.runtime_fraction as Json).default_value as Json | undefined);
    checks.push({ ok: frac > 0, detail: `a random ${percentText(frac)} of requests (runtime_fraction)` });
  }
  return result();
}

/** A RouteMatch in one line, e.g. `prefix "/" and header end-user equal to "jason"`. */
export function describeMatch(m: Json): string {
  const parts: string[] = [];
  if (typeof m.prefix === 'string') parts.push(`prefix "${m.prefix}"`);
  if (typeof m.path === 'string') parts.push(`path "${m.path}"`);
  if (m.safe_regex) parts.push(`path regex ${JSON.stringify((m.safe_regex as Json).regex)}`);
  if (typeof m.path_separated_prefix === 'string') parts.push(`path under "${m.path_separated_prefix}"`);
  if (m.case_sensitive === false) parts.push('any case');
  for (const h of (m.headers as Json[] | undefined) ?? []) {
    const detail = headerMatches(h, {}).detail.split(';')[0]!;
    parts.push(detail);
  }
  for (const q of (m.query_parameters as Json[] | undefined) ?? []) parts.push(q.string_match ? `query ${String(q.name)} ${describeString(q.string_match as Json)}` : `query ${String(q.name)} present`);
  if (m.grpc !== undefined) parts.push('gRPC only');
  if (m.runtime_fraction) parts.push(`${percentText(fraction((m.runtime_fraction as Json).default_value as Json))} of requests`);
  return parts.join(' and ');
}
