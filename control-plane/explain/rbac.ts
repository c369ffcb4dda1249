// Envoy's RBAC HTTP filter (envoy.extensions.filters.http.rbac.v3.RBAC), evaluated on one request
// at the callee. A policy matches when any of its permissions and any of its principals match.
// ALLOW rules: the request passes only if some policy matches; DENY rules: it is refused if one does.
// Some facts can be unknown here (the caller's IP when it has none, mTLS identities), so matching
// is three-valued: true, false or unknown, and an unknown that could change the outcome is said.
import { BlockList, isIP } from 'node:net';
import { pathOnly, type HttpRequest } from './request.ts';
import type { Json } from '../json.ts';
import { headerMatches, stringMatches } from './string-matcher.ts';
import type { RuleIndex } from './origins.ts';
import type { AuthzStep } from './types.ts';
import { jwtMetadataMatches } from './jwt.ts';

export type Tri = true | false | 'unknown';

export interface RbacContext {
  request: HttpRequest;
  /** The caller's IP as the callee sees it (undefined: not known). */
  sourceIp?: string;
  destinationPort: number;
  destinationIp?: string;
  /** The caller's mTLS identity (SPIFFE ID); null: a plaintext caller (none); undefined: not known. */
  peerIdentity?: string | null;
  /** Issuer -> JWT payload the jwt_authn filter left (decoded by explain/jwt.ts); none: no token. */
  jwtPayloads?: Record<string, Json>;
}

const not = (t: Tri): Tri => (t === 'unknown' ? t : !t);
function all(list: Tri[]): Tri {
  if (list.includes(false)) return false;
  return list.includes('unknown') ? 'unknown' : true;
}
function some(list: Tri[]): Tri {
  if (list.includes(true)) return true;
  return list.includes('unknown') ? 'unknown' : false;
}

function inCidr(ip: string | undefined, range: Json): Tri {
  if (!ip) return 'unknown';
  const family = isIP(ip);
  const prefix = String(range.address_prefix);
  const pfamily = isIP(prefix);
  if (!family || !pfamily) return false;
  if (family !== pfamily) return false;
  const list = new BlockList();
  list.addSubnet(prefix, Number(range.prefix_len ?? (pfamily === 4 ? 32 : 128)), pfamily === 4 ? 'ipv4' : 'ipv6');
  return list.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

export function permission(p: Json, ctx: RbacContext): Tri {
  if (p.any === true) return true;
  if (p.header) return headerMatches(p.header as Json, ctx.request.headers, ctx.request.plane).ok;
  if (p.url_path) {
    const pm = p.url_path as Json;
    return pm.path ? stringMatches(pm.path as Json, pathOnly(ctx.request.path)) : 'unknown';
  }
  if (p.destination_port !== undefined) return Number(p.destination_port) === ctx.destinationPort;
  if (p.destination_ip) return inCidr(ctx.destinationIp, p.destination_ip as Json);
  if (p.and_rules) return all(((p.and_rules as Json).rules as Json[]).map((r) => permission(r, ctx)));
  if (p.or_rules) return some(((p.or_rules as Json).rules as Json[]).map((r) => permission(r, ctx)));
  if (p.not_rule) return not(permission(p.not_rule as Json, ctx));
  return 'unknown';
}

export function principal(p: Json, ctx: RbacContext): Tri {
  if (p.any === true) return true;
  if (p.header) return headerMatches(p.header as Json, ctx.request.headers, ctx.request.plane).ok;
  if (p.direct_remote_ip) return inCidr(ctx.sourceIp, p.direct_remote_ip as Json);
  // Without a trusted X-Forwarded-For, the remote address is the direct one.
  if (p.remote_ip) return inCidr(ctx.sourceIp, p.remote_ip as Json);
  if (p.source_ip) return inCidr(ctx.sourceIp, p.source_ip as Json);
  if (p.and_ids) return all(((p.and_ids as Json).ids as Json[]).map((r) => principal(r, ctx)));
  if (p.or_ids) return some(((p.or_ids as Json).ids as Json[]).map((r) => principal(r, ctx)));
  if (p.not_id) return not(principal(p.not_id as Json, ctx));
  if (p.authenticated) {
    if (ctx.peerIdentity === undefined) return 'unknown';
    const name = (p.authenticated as Json).principal_name as Json | undefined;
    if (!name) return ctx.peerIdentity !== null;
    return ctx.peerIdentity !== null && stringMatches(name, ctx.peerIdentity);
  }
  if (p.metadata) {
    const jwt = jwtMetadataMatches(p.metadata as Json, ctx.jwtPayloads);
    if (jwt !== undefined) return jwt;
  }
  // other metadata, filter_state: not known to explain.
  return 'unknown';
}

export function policyMatches(policy: Json, ctx: RbacContext): Tri {
  return all([some(((policy.permissions as Json[]) ?? []).map((x) => permission(x, ctx))), some(((policy.principals as Json[]) ?? []).map((x) => principal(x, ctx)))]);
}

function evaluateRules(filterName: string, rules: Json, shadow: boolean, ctx: RbacContext, index: RuleIndex): AuthzStep {
  const action = (rules.action === 'DENY' ? 'DENY' : 'ALLOW') as 'ALLOW' | 'DENY';
  const matched: AuthzStep['matched'] = [];
  const unknown: AuthzStep['unknown'] = [];
  for (const [name, policy] of Object.entries((rules.policies as Record<string, Json>) ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
    const r = policyMatches(policy, ctx);
    const rule = index.rbacPolicy(name);
    if (r === true) matched.push({ policy: name, ...(rule ? { rule } : {}) });
    else if (r === 'unknown') unknown.push({ policy: name, why: ctx.sourceIp ? 'it tests something explain cannot know (e.g. an mTLS identity)' : "it tests the caller's IP, which is not known (give --from a node id or a workload)", ...(rule ? { rule } : {}) });
  }
  let outcome: AuthzStep['outcome'];
  let reason: string;
  const names = (l: Array<{ policy: string }>) => l.map((x) => x.policy).join(', ');
  if (action === 'DENY') {
    if (matched.length) [outcome, reason] = ['deny', `DENY policy ${names(matched)} matches`];
    else if (unknown.length) [outcome, reason] = ['unknown', `DENY policy ${names(unknown)} may match`];
    else [outcome, reason] = ['no effect', 'no DENY policy matches'];
  } else if (matched.length) [outcome, reason] = ['allow', `ALLOW policy ${names(matched)} matches`];
  else if (unknown.length) [outcome, reason] = ['unknown', `only ALLOW policy ${names(unknown)} may match`];
  else [outcome, reason] = ['deny', `ALLOW policies exist for this workload and none matches (${Object.keys((rules.policies as Json) ?? {}).length} checked)`];
  if (shadow) {
    const would = { deny: 'would deny', allow: 'would allow', unknown: 'might deny', 'no effect': 'would not deny' }[outcome];
    reason = `dry run (not enforced): ${would}; ${reason}`;
    outcome = 'no effect';
  }
  return { filter: filterName, action, shadow, matched, unknown, outcome, reason };
}

/** The RBAC filter's enforced rules and shadow (dry-run) rules, each as a step. */
export function evaluateRbacFilter(filter: Json, ctx: RbacContext, index: RuleIndex): AuthzStep[] {
  const cfg = filter.typed_config as Json;
  const out: AuthzStep[] = [];
  if (cfg.rules) out.push(evaluateRules(String(filter.name), cfg.rules as Json, false, ctx, index));
  if (cfg.shadow_rules) out.push(evaluateRules(String(filter.name), cfg.shadow_rules as Json, true, ctx, index));
  return out;
}
