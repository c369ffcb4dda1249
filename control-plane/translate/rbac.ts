// AuthorizationPolicy -> Envoy's RBAC HTTP filter, on the inbound side only (Envoy's virtualInbound
// chains, proxyless gRPC server listeners). Two filters, as Istio orders them: DENY policies first,
// then ALLOW policies (when any ALLOW policy selects the workload, a request must match one of
// them). Dry-run policies become shadow rules (Envoy only; gRPC has none).
//
// Only what both Envoy and grpc-js-xds evaluate is generated: and/or/not, any, header, url_path,
// destination_port permissions; and/or/not, any, header, direct_remote_ip, remote_ip,
// authenticated principals (grpc-js-xds reads any other kind as "never matches"; see its rbac.js).
// `authenticated.principal_name` is matched by Envoy against the peer certificate's URI SAN and by
// gRPC against its URI SANs (else DNS SANs, else subject): the SPIFFE ID.
// Request identities (JWT) are metadata principals, Envoy only: jwt-rbac.ts.
import type { AuthorizationPolicy, AuthzCondition, AuthzOperation, AuthzSource, AuthzValue, Cidr, IdentityMatch, PathValue } from '../model/authorization.ts';
import type { ClientKind } from './proxy.ts';
import { labelsMatch } from '../model/services.ts';
import { jwtProvidersFor } from '../model/request-authentication.ts';
import { jwtConditionPrincipals, jwtSourcePrincipals, type JwtScope } from './jwt-rbac.ts';
import type { Feature, HcmContext } from './feature.ts';
import type { Proxy } from './proxy.ts';
import type { Json } from '../json.ts';

export const RBAC = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
export const RBAC_DENY_FILTER = 'envoy.filters.http.rbac.deny';
export const RBAC_ALLOW_FILTER = 'envoy.filters.http.rbac.allow';

/** Policies that select this proxy's workload: same namespace, and its labels match the selector. */
export function policiesFor(policies: readonly AuthorizationPolicy[], proxy: Proxy): AuthorizationPolicy[] {
  return policies.filter((p) => p.namespace === proxy.namespace && labelsMatch(p.selector ?? {}, proxy.labels));
}

// ---- matchers --------------------------------------------------------------------------------

function stringMatcher(v: Exclude<AuthzValue, { kind: 'any' }>, ignoreCase = false): Json {
  return { [v.kind]: v.value, ...(ignoreCase ? { ignore_case: true } : {}) };
}

function headerMatcher(name: string, v: AuthzValue): Json {
  return v.kind === 'any' ? { name, present_match: true } : { name, string_match: stringMatcher(v) };
}

const RE2_SPECIAL = /[\\^$.*+?()[\]{}|]/g;
const quote = (s: string) => s.replace(RE2_SPECIAL, '\\$&');

/**
 * Istio host patterns, case-insensitive. A host written without a port also matches the same host
 * with any port in :authority (gRPC clients always send host:port).
 */
function hostMatcher(host: string): Json {
  if (host === '*') return { name: ':authority', present_match: true };
  const anyPort = /:\d+$/.test(host) || host.endsWith('*') ? '' : '(:[0-9]+)?';
  const body = host.startsWith('*') ? `.*${quote(host.slice(1))}` : host.endsWith('*') ? `${quote(host.slice(0, -1))}.*` : quote(host);
  return { name: ':authority', string_match: { safe_regex: { regex: `(?i)${body}${anyPort}` } } };
}

export const URI_TEMPLATE = 'type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig';

/** A path permission. Templates: Envoy's URI template matcher (as Istio); gRPC has none, so the same template as a regex. */
function pathPermission(v: PathValue, kind: ClientKind): Json {
  if (v.kind === 'template') {
    if (kind === 'grpc') return { url_path: { path: { safe_regex: { regex: v.regex } } } };
    return { uri_template: { name: 'envoy.path.match.uri_template.uri_template_matcher', typed_config: { '@type': URI_TEMPLATE, path_template: v.template } } };
  }
  return { url_path: { path: v.kind === 'any' ? { safe_regex: { regex: '.+' } } : stringMatcher(v) } };
}

const anyString = (v: AuthzValue): Json => (v.kind === 'any' ? { safe_regex: { regex: '.+' } } : stringMatcher(v));

const cidrRange = (c: Cidr): Json => ({ address_prefix: c.address, prefix_len: c.prefixLen });

// ---- combinators (Envoy's sets need at least one member) --------------------------------------

const ANY_PERMISSION: Json = { any: true };
const ANY_PRINCIPAL: Json = { any: true };
const NO_PRINCIPAL: Json = { not_id: { any: true } };

function orRules(list: Json[]): Json {
  return list.length === 1 ? list[0]! : { or_rules: { rules: list } };
}
function andRules(list: Json[]): Json {
  return list.length === 0 ? ANY_PERMISSION : list.length === 1 ? list[0]! : { and_rules: { rules: list } };
}
function orIds(list: Json[]): Json {
  return list.length === 0 ? NO_PRINCIPAL : list.length === 1 ? list[0]! : { or_ids: { ids: list } };
}
function andIds(list: Json[]): Json {
  return list.length === 0 ? ANY_PRINCIPAL : list.length === 1 ? list[0]! : { and_ids: { ids: list } };
}

/** `values` (any one) and not `notValues` (none of them), as a list of conditions to AND. */
function inAndNotIn<T>(yes: T[] | undefined, no: T[] | undefined, one: (v: T) => Json, or: (l: Json[]) => Json, not: (j: Json) => Json): Json[] {
  const out: Json[] = [];
  if (yes) out.push(or(yes.map(one)));
  if (no) out.push(not(or(no.map(one))));
  return out;
}

const notRule = (j: Json): Json => ({ not_rule: j });
const notId = (j: Json): Json => ({ not_id: j });

// ---- one rule --------------------------------------------------------------------------------

function permissionsIn<T>(yes: T[] | undefined, no: T[] | undefined, one: (v: T) => Json): Json[] {
  return inAndNotIn(yes, no, one, orRules, notRule);
}

function operationPermissions(op: AuthzOperation, kind: ClientKind): Json[] {
  return [
    ...permissionsIn(op.hosts, op.notHosts, (h) => ({ header: hostMatcher(h) })),
    ...permissionsIn(op.ports, op.notPorts, (n) => ({ destination_port: n })),
    ...permissionsIn(op.methods, op.notMethods, (v) => ({ header: headerMatcher(':method', v) })),
    ...permissionsIn(op.paths, op.notPaths, (v) => pathPermission(v, kind)),
  ];
}

/** The peer's mTLS identity; `any` = any certificate-bearing peer with a name. */
export function identityPrincipal(m: IdentityMatch): Json {
  const name = m.kind === 'any' ? { safe_regex: { regex: '.+' } } : m.kind === 'regex' ? { safe_regex: { regex: m.value } } : { [m.kind]: m.value };
  return { authenticated: { principal_name: name } };
}

function sourcePrincipals(s: AuthzSource, jwt: JwtScope): Json[] {
  const direct = (c: Cidr): Json => ({ direct_remote_ip: cidrRange(c) });
  const remote = (c: Cidr): Json => ({ remote_ip: cidrRange(c) });
  return [
    ...inAndNotIn(s.principals, s.notPrincipals, identityPrincipal, orIds, notId),
    ...inAndNotIn(s.namespaces, s.notNamespaces, identityPrincipal, orIds, notId),
    ...inAndNotIn(s.serviceAccounts, s.notServiceAccounts, identityPrincipal, orIds, notId),
    ...inAndNotIn(s.trustDomains, s.notTrustDomains, identityPrincipal, orIds, notId),
    ...inAndNotIn(s.ipBlocks, s.notIpBlocks, direct, orIds, notId),
    ...inAndNotIn(s.remoteIpBlocks, s.notRemoteIpBlocks, remote, orIds, notId),
    ...(s.workloadIps ? [orIds(s.workloadIps.map(direct))] : []),
    ...jwtSourcePrincipals(s, jwt),
  ];
}

/**
 * How a rule is built: for which data plane, and as part of which action. Conditions proxyless gRPC
 * cannot evaluate (SNI: grpc-js-xds matches it against ""; other filters' metadata: never matches)
 * are replaced there by a fail-closed constant: false where a match allows, true where it denies.
 */
export interface RuleTarget {
  kind: ClientKind;
  matchDenies: boolean;
  /** Issuers the workload verifies (its RequestAuthentications): what JWT conditions are split by. */
  issuers?: readonly string[];
}

/** JWT conditions fail closed as the rest: ALLOW-side rules need them, deny-side rules drop them on gRPC. */
function jwtScope(target: RuleTarget): JwtScope {
  return { issuers: target.issuers ?? [], grpc: target.kind === 'grpc', allow: !target.matchDenies };
}

/** The issuers of the JWT providers on this workload's inbound side. */
export function jwtIssuers(ctx: HcmContext): string[] {
  return [...new Set(jwtProvidersFor(ctx.model.requestAuthentications, ctx.model.mesh, ctx.proxy.namespace, ctx.proxy.labels).map((r) => r.issuer))];
}

const ENVOY_ALLOW: RuleTarget = { kind: 'envoy', matchDenies: false };

function metadataPermission(filter: string, path: string[], v: AuthzValue): Json {
  const value = v.kind === 'any' ? { present_match: true } : { list_match: { one_of: { string_match: stringMatcher(v) } } };
  return { metadata: { filter, path: path.map((key) => ({ key })), value } };
}

/** `when` conditions split by where Envoy can evaluate them (headers and IPs: principal; ports: permission). */
function conditionParts(when: AuthzCondition[], target: RuleTarget = ENVOY_ALLOW): { principals: Json[]; permissions: Json[] } {
  const principals: Json[] = [];
  const permissions: Json[] = [];
  for (const c of when) {
    switch (c.kind) {
      case 'requestPrincipal':
      case 'jwtClaim':
        principals.push(...jwtConditionPrincipals(c, jwtScope(target))!);
        break;
      case 'header':
        principals.push(...inAndNotIn(c.values, c.notValues, (v) => ({ header: headerMatcher(c.name, v) }), orIds, notId));
        break;
      case 'sourceIp':
      case 'remoteIp': {
        const field = c.kind === 'sourceIp' ? 'direct_remote_ip' : 'remote_ip';
        principals.push(...inAndNotIn(c.values, c.notValues, (v) => ({ [field]: cidrRange(v) }), orIds, notId));
        break;
      }
      case 'principal':
      case 'namespace':
        principals.push(...inAndNotIn(c.values, c.notValues, identityPrincipal, orIds, notId));
        break;
      case 'destinationPort':
        permissions.push(...inAndNotIn(c.values, c.notValues, (n) => ({ destination_port: n }), orRules, notRule));
        break;
      case 'destinationIp':
        permissions.push(...inAndNotIn(c.values, c.notValues, (v) => ({ destination_ip: cidrRange(v) }), orRules, notRule));
        break;
      case 'sni':
      case 'filterMetadata':
        if (target.kind === 'grpc') permissions.push(target.matchDenies ? ANY_PERMISSION : notRule(ANY_PERMISSION));
        else if (c.kind === 'sni') permissions.push(...inAndNotIn(c.values, c.notValues, (v) => ({ requested_server_name: anyString(v) }), orRules, notRule));
        else permissions.push(...inAndNotIn(c.values, c.notValues, (v) => metadataPermission(c.filter, c.path, v), orRules, notRule));
        break;
    }
  }
  return { principals, permissions };
}

export function rulePolicy(rule: AuthorizationPolicy['rules'][number], target: RuleTarget = ENVOY_ALLOW): Json {
  const cond = conditionParts(rule.when, target);
  const permissions = rule.to.length === 0 ? [andRules(cond.permissions)] : rule.to.map((op) => andRules([...operationPermissions(op, target.kind), ...cond.permissions]));
  const principals = rule.from.length === 0 ? [andIds(cond.principals)] : rule.from.map((s) => andIds([...sourcePrincipals(s, jwtScope(target)), ...cond.principals]));
  return { permissions, principals };
}

/** Istio's policy names: `ns[<namespace>]-policy[<name>]-rule[<index>]` (with a prefix/suffix for CUSTOM). */
export function policyMap(policies: AuthorizationPolicy[], target: RuleTarget, prefix = '', suffix = ''): Json {
  const out: Json = {};
  for (const p of policies) p.rules.forEach((r, i) => (out[`${prefix}ns[${p.namespace}]-policy[${p.name}]-rule[${i}]${suffix}`] = rulePolicy(r, target)));
  return out;
}

// ---- the filters -----------------------------------------------------------------------------

function rbacFilter(ctx: HcmContext, action: 'ALLOW' | 'DENY'): Json | undefined {
  if (ctx.side !== 'inbound') return undefined;
  const mine = policiesFor(ctx.model.authorizationPolicies, ctx.proxy).filter((p) => p.action === action);
  const enforced = mine.filter((p) => !p.dryRun);
  // grpc-js-xds needs `rules` and knows no shadow rules: dry-run policies are left out for it.
  const shadow = ctx.proxy.kind === 'envoy' ? mine.filter((p) => p.dryRun) : [];
  if (enforced.length === 0 && shadow.length === 0) return undefined;
  const lower = action.toLowerCase();
  const target: RuleTarget = { kind: ctx.proxy.kind, matchDenies: action === 'DENY', issuers: jwtIssuers(ctx) };
  return {
    name: action === 'DENY' ? RBAC_DENY_FILTER : RBAC_ALLOW_FILTER,
    typed_config: {
      '@type': RBAC,
      ...(enforced.length > 0 ? { rules: { action, policies: policyMap(enforced, target) } } : {}),
      ...(shadow.length > 0 ? { shadow_rules: { action, policies: policyMap(shadow, target) }, shadow_rules_stat_prefix: `istio_dry_run_${lower}_` } : {}),
    },
  };
}

export const rbacDeny: Feature = { name: 'rbac-deny', grpc: true, httpFilter: (ctx) => rbacFilter(ctx, 'DENY') };
export const rbacAllow: Feature = { name: 'rbac-allow', grpc: true, httpFilter: (ctx) => rbacFilter(ctx, 'ALLOW') };
