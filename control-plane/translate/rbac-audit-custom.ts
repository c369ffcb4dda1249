// The RBAC filters of AUDIT and CUSTOM AuthorizationPolicies, on the inbound side (Envoy only for
// AUDIT; gRPC gets a fail-closed stand-in for CUSTOM).
//
// AUDIT: Envoy's RBAC with action LOG. It never refuses a request; a match sets the
// `access_log_hint` dynamic metadata that access logs can filter on.
//
// CUSTOM: the external authorizer (ext-authz.ts) must be asked only for requests the CUSTOM
// policies' rules match. Envoy's ext_authz filter cannot evaluate rules, so, as Istio does, an RBAC
// filter evaluates them as *shadow* DENY rules first: a match records the matching policy's name
// (prefixed `istio-ext-authz`) in the dynamic metadata key `istio_ext_authz_shadow_effective_policy_id`
// of namespace envoy.filters.http.rbac, and the ext_authz filter is enabled only when that key
// carries the prefix. Shadow rules never refuse anything themselves.
//
// Fail closed: a CUSTOM policy whose provider cannot be used (unknown, not an authorizer, service
// missing, or several providers for one workload) gets its rules as enforced DENY rules, as Istio
// does; proxyless gRPC cannot call an authorizer at all, so there every CUSTOM policy is such DENY
// rules.
import type { AuthorizationPolicy } from '../model/authorization.ts';
import type { ResolvedExtAuthz } from '../model/extension-providers.ts';
import type { Feature, HcmContext } from './feature.ts';
import { jwtIssuers, policiesFor, policyMap, RBAC } from './rbac.ts';
import type { Json } from '../json.ts';

export const RBAC_AUDIT_FILTER = 'envoy.filters.http.rbac.audit';
export const RBAC_CUSTOM_FILTER = 'envoy.filters.http.rbac.custom';
export const EXT_AUTHZ_POLICY_PREFIX = 'istio-ext-authz-';
export const EXT_AUTHZ_STAT_PREFIX = 'istio_ext_authz_';
/** The suffix on the DENY rules a CUSTOM policy falls back to (Istio's name for them). */
export const BAD_CUSTOM_SUFFIX = '-deny-due-to-bad-CUSTOM-action';

/** What the CUSTOM policies selecting this proxy's workload come to. */
export interface CustomPlan {
  /** Policies sent to the authorizer (shadow rules + ext_authz). */
  delegated: AuthorizationPolicy[];
  /** Policies whose rules deny instead (fail closed). */
  failClosed: AuthorizationPolicy[];
  extAuthz?: ResolvedExtAuthz;
}

export function customPlan(ctx: HcmContext): CustomPlan | undefined {
  if (ctx.side !== 'inbound') return undefined;
  const mine = policiesFor(ctx.model.authorizationPolicies, ctx.proxy).filter((p) => p.action === 'CUSTOM');
  if (mine.length === 0) return undefined;
  if (ctx.proxy.kind === 'grpc') return { delegated: [], failClosed: mine };
  const good = mine.filter((p) => p.custom && 'extAuthz' in p.custom);
  const providers = new Set(good.map((p) => p.custom!.provider));
  // One workload, one authorizer (Envoy's ext_authz filter has one service): with several, Istio
  // refuses them all for the workload.
  if (providers.size !== 1) return { delegated: [], failClosed: mine };
  const first = good[0]!.custom!;
  return { delegated: good, failClosed: mine.filter((p) => !good.includes(p)), ...('extAuthz' in first ? { extAuthz: first.extAuthz } : {}) };
}

function customRbacFilter(ctx: HcmContext): Json | undefined {
  const plan = customPlan(ctx);
  if (!plan) return undefined;
  const deny = { kind: ctx.proxy.kind, matchDenies: true, issuers: jwtIssuers(ctx) } as const;
  const cfg: Json = { '@type': RBAC };
  if (plan.failClosed.length > 0) cfg.rules = { action: 'DENY', policies: policyMap(plan.failClosed, deny, EXT_AUTHZ_POLICY_PREFIX, BAD_CUSTOM_SUFFIX) };
  if (plan.delegated.length > 0) {
    cfg.shadow_rules = { action: 'DENY', policies: policyMap(plan.delegated, deny, EXT_AUTHZ_POLICY_PREFIX) };
    cfg.shadow_rules_stat_prefix = EXT_AUTHZ_STAT_PREFIX;
  }
  return { name: RBAC_CUSTOM_FILTER, typed_config: cfg };
}

function auditFilter(ctx: HcmContext): Json | undefined {
  if (ctx.side !== 'inbound') return undefined;
  const mine = policiesFor(ctx.model.authorizationPolicies, ctx.proxy).filter((p) => p.action === 'AUDIT');
  if (mine.length === 0) return undefined;
  // An audit policy's match only logs, so matching more than written is harmless: conditions Envoy
  // cannot know are never there (Envoy evaluates every key).
  return { name: RBAC_AUDIT_FILTER, typed_config: { '@type': RBAC, rules: { action: 'LOG', policies: policyMap(mine, { kind: 'envoy', matchDenies: false, issuers: jwtIssuers(ctx) }) } } };
}

export const rbacAudit: Feature = { name: 'rbac-audit', grpc: false, httpFilter: auditFilter };
export const rbacCustom: Feature = { name: 'rbac-custom', grpc: true, httpFilter: customRbacFilter };
