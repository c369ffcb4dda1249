// Envoy's JWT filter (envoy.filters.http.jwt_authn), as explain evaluates it: the token is found
// where the providers look for it and its payload DECODED, NOT VERIFIED (explain has no keys and no
// clock: signature and expiry are not checked). What RBAC then sees is that payload under the
// issuer's name, as the filter would leave it in dynamic metadata after a successful check.
import type { Json } from '../json.ts';
import { queryParams, type HttpRequest } from './request.ts';
import { stringMatches } from './string-matcher.ts';

export const JWT_AUTHN_FILTER = 'envoy.filters.http.jwt_authn';

export interface JwtResult {
  /** deny: Envoy would answer 401 (a token is there and cannot pass). */
  outcome: 'authenticated' | 'no token' | 'deny';
  reason: string;
  /** Issuer -> decoded payload, what RBAC's metadata matchers read. */
  payloads: Record<string, Json>;
}

interface Location { kind: 'header' | 'param' | 'cookie'; name: string; prefix?: string }

function locations(p: Json): Location[] {
  const out: Location[] = [
    ...((p.from_headers as Json[] | undefined) ?? []).map((h) => ({ kind: 'header' as const, name: String(h.name).toLowerCase(), ...(h.value_prefix !== undefined ? { prefix: String(h.value_prefix) } : {}) })),
    ...((p.from_params as string[] | undefined) ?? []).map((name) => ({ kind: 'param' as const, name })),
    ...((p.from_cookies as string[] | undefined) ?? []).map((name) => ({ kind: 'cookie' as const, name })),
  ];
  // Envoy's default: Authorization: Bearer <token>, or ?access_token=<token>.
  return out.length ? out : [{ kind: 'header', name: 'authorization', prefix: 'Bearer ' }, { kind: 'param', name: 'access_token' }];
}

function extract(loc: Location, req: HttpRequest): string | undefined {
  if (loc.kind === 'param') return queryParams(req.path).get(loc.name);
  if (loc.kind === 'cookie') {
    for (const part of (req.headers['cookie'] ?? '').split(';')) {
      const [k, ...v] = part.trim().split('=');
      if (k === loc.name) return v.join('=');
    }
    return undefined;
  }
  const value = req.headers[loc.name];
  if (value === undefined) return undefined;
  if (loc.prefix === undefined) return value;
  return value.startsWith(loc.prefix) ? value.slice(loc.prefix.length) : undefined;
}

function decodePayload(token: string): Json | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as unknown;
    return typeof payload === 'object' && payload !== null && !Array.isArray(payload) ? (payload as Json) : undefined;
  } catch {
    return undefined;
  }
}

const NOT_VERIFIED = 'decoded, NOT verified: explain does not check the signature or expiry';

export function evaluateJwtFilter(filter: Json, req: HttpRequest): JwtResult {
  const cfg = filter.typed_config as Json;
  const providers = Object.values((cfg.providers as Record<string, Json>) ?? {});
  const found = new Set<string>();
  for (const p of providers) for (const loc of locations(p)) {
    const t = extract(loc, req);
    if (t) found.add(t);
  }
  if (found.size === 0) return { outcome: 'no token', reason: 'no token in the request: it passes with no request identity (authorization decides)', payloads: {} };
  const payloads: Record<string, Json> = {};
  for (const token of found) {
    const payload = decodePayload(token);
    if (!payload) return { outcome: 'deny', reason: 'the token is not a JWT (header.payload.signature, base64url JSON): 401 Jwt is not in the form of Header.Payload.Signature', payloads: {} };
    const iss = typeof payload.iss === 'string' ? payload.iss : undefined;
    const provider = providers.find((p) => p.issuer === iss);
    if (!provider) return { outcome: 'deny', reason: `the token's issuer ${JSON.stringify(iss ?? '(none)')} is not one this workload verifies (${providers.map((p) => String(p.issuer)).join(', ')}): 401 Jwt issuer is not configured`, payloads: {} };
    const audiences = (provider.audiences as string[] | undefined) ?? [];
    const aud = Array.isArray(payload.aud) ? (payload.aud as unknown[]).map(String) : payload.aud !== undefined ? [String(payload.aud)] : [];
    if (audiences.length && !aud.some((a) => audiences.includes(a))) return { outcome: 'deny', reason: `the token's audiences ${JSON.stringify(aud)} include none of ${JSON.stringify(audiences)}: 401 Audiences in Jwt are not allowed`, payloads: {} };
    payloads[iss!] = payload;
  }
  const who = Object.entries(payloads).map(([iss, p]) => `${iss}/${typeof p.sub === 'string' ? p.sub : '(no sub)'}`).join(', ');
  return { outcome: 'authenticated', reason: `token for request principal ${who} (${NOT_VERIFIED})`, payloads };
}

/** An RBAC metadata principal on the JWT payload; undefined: not one explain knows. */
export function jwtMetadataMatches(m: Json, payloads: Record<string, Json> | undefined): boolean | undefined {
  if (m.filter !== JWT_AUTHN_FILTER) return undefined;
  let v: unknown = payloads ?? {};
  for (const seg of (m.path as Json[]) ?? []) v = v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json)[String(seg.key)] : undefined;
  const r = valueMatches(m.value as Json, v);
  return m.invert === true ? !r : r;
}

function valueMatches(vm: Json, v: unknown): boolean {
  if (vm.present_match === true) return v !== undefined && v !== null;
  if (vm.string_match) return typeof v === 'string' && stringMatches(vm.string_match as Json, v) === true;
  if (vm.list_match) return Array.isArray(v) && v.some((x) => valueMatches((vm.list_match as Json).one_of as Json, x));
  return false;
}
