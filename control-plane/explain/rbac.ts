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
import { RBAC_CUSTOM_FILTER } from '../translate/rbac-audit-custom.ts';
import { EXT_AUTHZ_FILTER } from '../translate/ext-authz.ts';

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
  if (p.uri_template) return uriTemplateMatches(String(((p.uri_template as Json).typed_config as Json)?.path_template ?? ''), pathOnly(ctx.request.path));
  // SNI: a plaintext caller sends none; a TLS caller's is not known here.
  if (p.requested_server_name) return ctx.peerIdentity === null ? stringMatches(p.requested_server_name as Json, '') : 'unknown';
  if (p.and_rules) return all(((p.and_rules as Json).rules as Json[]).map((r) => permission(r, ctx)));
  if (p.or_rules) return some(((p.or_rules as Json).rules as Json[]).map((r) => permission(r, ctx)));
  if (p.not_rule) return not(permission(p.not_rule as Json, ctx));
  return 'unknown';
}

/** Envoy's URI template operators: `*` one path segment, `**` the rest (any segments). */
export function uriTemplateMatches(template: string, path: string): boolean {
  const seg = "[a-zA-Z0-9\\-._~%!$&'()+,;:@=]";
  const body = template.split('/').map((s) => (s === '*' ? `${seg}+` : s === '**' ? `(?:${seg}|/)*` : s.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&'))).join('/');
  return new RegExp(`^${body}$`).test(path);
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

type Found = { matched: AuthzStep['matched']; unknown: AuthzStep['unknown'] };

function matchPolicies(rules: Json, ctx: RbacContext, index: RuleIndex): Found {
  const matched: AuthzStep['matched'] = [];
  const unknown: AuthzStep['unknown'] = [];
  for (const [name, policy] of Object.entries((rules.policies as Record<string, Json>) ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
    const r = policyMatches(policy, ctx);
    const rule = index.rbacPolicy(name);
    if (r === true) matched.push({ policy: name, ...(rule ? { rule } : {}) });
    else if (r === 'unknown') unknown.push({ policy: name, why: ctx.sourceIp ? 'it tests something explain cannot know (e.g. an mTLS identity, SNI or another filter\'s metadata)' : "it tests the caller's IP, which is not known (give --from a node id or a workload)", ...(rule ? { rule } : {}) });
  }
  return { matched, unknown };
}

const names = (l: Array<{ policy: string }>) => l.map((x) => x.policy).join(', ');

function evaluateRules(filterName: string, rules: Json, shadow: boolean, ctx: RbacContext, index: RuleIndex): AuthzStep {
  if (rules.action === 'LOG') return auditStep(filterName, rules, ctx, index);
  const action = (rules.action === 'DENY' ? 'DENY' : 'ALLOW') as 'ALLOW' | 'DENY';
  const { matched, unknown } = matchPolicies(rules, ctx, index);
  let outcome: AuthzStep['outcome'];
  let reason: string;
  const failClosed = filterName === RBAC_CUSTOM_FILTER ? ' (CUSTOM policy with no usable external authorizer here: a bad provider, or a proxyless gRPC server; its rules deny, fail closed)' : '';
  if (action === 'DENY') {
    if (matched.length) [outcome, reason] = ['deny', `DENY policy ${names(matched)} matches${failClosed}`];
    else if (unknown.length) [outcome, reason] = ['unknown', `DENY policy ${names(unknown)} may match${failClosed}`];
    else [outcome, reason] = ['no effect', 'no DENY policy matches'];
  } else if (matched.length) [outcome, reason] = ['allow', `ALLOW policy ${names(matched)} matches`];
  else if (unknown.length) [outcome, reason] = ['unknown', `only ALLOW policy ${names(unknown)} may match`];
  else [outcome, reason] = ['deny', `ALLOW policies exist for this workload and none matches (${Object.keys((rules.policies as Json) ?? {}).length} checked)`];
  if (shadow) {
    const would = { deny: 'would deny', allow: 'would allow', unknown: 'might deny', 'no effect': 'would not deny' }[outcome];
    reason = `dry run (not enforced): ${would}; ${reason}`;
    outcome = 'no effect';
  }
  return { filter: filterName, action: failClosed ? 'CUSTOM' : action, shadow, matched, unknown, outcome, reason };
}

/** AUDIT (RBAC action LOG): a match marks the request for the access log; the decision is not changed. */
function auditStep(filterName: string, rules: Json, ctx: RbacContext, index: RuleIndex): AuthzStep {
  const { matched, unknown } = matchPolicies(rules, ctx, index);
  const reason = matched.length ? `AUDIT policy ${names(matched)} matches: logged (access_log_hint), not refused` : unknown.length ? `AUDIT policy ${names(unknown)} may match (logging only)` : 'no AUDIT policy matches (not logged)';
  return { filter: filterName, action: 'AUDIT', shadow: false, matched, unknown, outcome: 'no effect', reason };
}

/**
 * CUSTOM: the shadow rules say which requests the external authorizer is asked about; what it
 * answers is not known here, so a match leaves the decision unknown, naming the provider.
 */
function customStep(filterName: string, rules: Json, ctx: RbacContext, index: RuleIndex, extAuthz: Json | undefined): AuthzStep {
  const { matched, unknown } = matchPolicies(rules, ctx, index);
  const providers = [...new Set([...matched, ...unknown].map((m) => index.authorizationPolicy(m.policy)?.custom?.provider).filter((x): x is string => !!x))];
  const cfg = (extAuthz?.typed_config as Json | undefined) ?? {};
  const service = ((cfg.http_service as Json)?.server_uri as Json)?.cluster ?? ((cfg.grpc_service as Json)?.envoy_grpc as Json)?.cluster_name;
  const who = `external authorizer ${providers.length ? providers.map((p) => JSON.stringify(p)).join(', ') : '(provider)'}${service ? ` (ext_authz, cluster ${String(service)}${cfg.failure_mode_allow ? ', fail open' : ''})` : ''}`;
  let outcome: AuthzStep['outcome'] = 'no effect';
  let reason = 'no CUSTOM policy matches: the external authorizer is not asked';
  if (matched.length) [outcome, reason] = ['unknown', `CUSTOM policy ${names(matched)} matches: the ${who} decides (allow, or 403)`];
  else if (unknown.length) [outcome, reason] = ['unknown', `CUSTOM policy ${names(unknown)} may match: then the ${who} decides`];
  return { filter: filterName, action: 'CUSTOM', shadow: false, matched, unknown, outcome, reason };
}

/** The RBAC filter's enforced rules and shadow (dry-run) rules, each as a step. */
export function evaluateRbacFilter(filter: Json, ctx: RbacContext, index: RuleIndex, all: readonly Json[] = []): AuthzStep[] {
  const cfg = filter.typed_config as Json;
  const out: AuthzStep[] = [];
  if (cfg.rules) out.push(evaluateRules(String(filter.name), cfg.rules as Json, false, ctx, index));
  if (cfg.shadow_rules) {
    if (filter.name === RBAC_CUSTOM_FILTER) out.push(customStep(String(filter.name), cfg.shadow_rules as Json, ctx, index, all.find((f) => f.name === EXT_AUTHZ_FILTER)));
    else out.push(evaluateRules(String(filter.name), cfg.shadow_rules as Json, true, ctx, index));
  }
  return out;
}
