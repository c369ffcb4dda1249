// RequestAuthentication objects -> the JWT providers each workload verifies. As in Istio, every
// policy that applies to a workload adds its rules: the mesh-wide ones (selector-less, in the root
// namespace), its namespace's selector-less ones, and those whose selector matches its labels.
// Policies attached by targetRef(s) (gateways, waypoints, services) apply to no proxy meshpilot
// programs; they are kept out, with a warning.
import { durationMs } from '../config/schemas/common.ts';
import { type ConfigObject, isKind } from '../config/types.ts';
import { compareText } from './compare.ts';
import type { JwtRuleIn } from './input.ts';
import { type IssueList, originOf } from './issues.ts';
import type { MeshSettings } from './mesh-identity.ts';
import { labelsMatch } from './services.ts';
import type { Origin, Service } from './types.ts';

/** Istio's default time to fetch a remote key set. */
export const DEFAULT_JWKS_TIMEOUT_MS = 5_000;

export type JwksSource =
  | { kind: 'remote'; uri: string; host: string; port: number; tls: boolean; timeoutMs: number }
  | { kind: 'inline'; text: string };

/** One jwtRule, resolved. */
export interface JwtProvider {
  issuer: string;
  audiences: string[];
  jwks: JwksSource;
  /** Where the token is read; all empty = Envoy's and Istio's default (Authorization: Bearer, ?access_token). */
  fromHeaders: Array<{ name: string; prefix?: string }>;
  fromParams: string[];
  fromCookies: string[];
  outputPayloadToHeader?: string;
  forwardOriginalToken: boolean;
  outputClaimToHeaders: Array<{ header: string; claim: string }>;
}

export interface RequestAuthn {
  name: string;
  namespace: string;
  /** Absent: the whole namespace (the mesh, in the root namespace). */
  selector?: Record<string, string>;
  rules: JwtProvider[];
  origin: Origin;
}

function jwksOf(r: JwtRuleIn): JwksSource {
  // Inline keys win: Envoy needs no fetch, and Istio prefers `jwks` when both are set.
  if (r.jwks !== undefined) return { kind: 'inline', text: r.jwks };
  const url = new URL(r.jwksUri!);
  const tls = url.protocol === 'https:';
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return { kind: 'remote', uri: r.jwksUri!, host, port: url.port ? Number(url.port) : tls ? 443 : 80, tls, timeoutMs: r.timeout ? durationMs(r.timeout) : DEFAULT_JWKS_TIMEOUT_MS };
}

function provider(r: JwtRuleIn): JwtProvider {
  return {
    issuer: r.issuer,
    audiences: r.audiences ?? [],
    jwks: jwksOf(r),
    fromHeaders: (r.fromHeaders ?? []).map((h) => ({ name: h.name, ...(h.prefix !== undefined ? { prefix: h.prefix } : {}) })),
    fromParams: r.fromParams ?? [],
    fromCookies: r.fromCookies ?? [],
    ...(r.outputPayloadToHeader !== undefined ? { outputPayloadToHeader: r.outputPayloadToHeader } : {}),
    forwardOriginalToken: r.forwardOriginalToken ?? false,
    outputClaimToHeaders: r.outputClaimToHeaders ?? [],
  };
}

export function buildRequestAuthentications(objects: readonly ConfigObject[], services: readonly Service[], issues: IssueList): RequestAuthn[] {
  const out: RequestAuthn[] = [];
  for (const obj of objects) {
    if (!isKind(obj, 'RequestAuthentication') || issues.rejected.has(obj.key)) continue;
    const spec = obj.spec;
    if (spec.targetRef || spec.targetRefs) {
      const field = spec.targetRef ? 'targetRef' : 'targetRefs';
      issues.warn(obj, ['spec', field], 'attaches to gateways or services by reference; meshpilot programs sidecars and proxyless gRPC servers, which are chosen by `selector`, so this policy applies to none of them');
      continue;
    }
    if (!spec.jwtRules?.length) continue;
    const selector = spec.selector?.matchLabels;
    warnGrpc(obj, selector ?? {}, services, issues);
    out.push({
      name: obj.name,
      namespace: obj.namespace,
      ...(selector && Object.keys(selector).length > 0 ? { selector: { ...selector } } : {}),
      rules: spec.jwtRules.map(provider),
      origin: originOf(obj),
    });
  }
  return out.sort((a, b) => compareText(a.origin.key, b.origin.key));
}

/** Proxyless gRPC has no JWT filter: tokens sent to it are neither checked nor refused. */
function warnGrpc(obj: ConfigObject, selector: Record<string, string>, services: readonly Service[], issues: IssueList): void {
  const grpc = services.filter((s) => s.namespace === obj.namespace && s.ports.some((p) => p.protocol === 'GRPC') && s.endpoints.some((ep) => labelsMatch(selector, ep.labels)));
  if (grpc.length === 0) return;
  issues.warn(obj, ['spec', 'jwtRules'], `proxyless gRPC servers do not verify JWTs (gRPC has no JWT filter): on ${grpc.map((s) => s.host).sort().join(', ')} a token is not checked (Envoy sidecars check it), and AuthorizationPolicy rules on request principals or request.auth claims fail closed there (an ALLOW rule needing a token matches no call, a DENY rule needing one applies to every call)`);
}

/** The policies that apply to one workload, in order: mesh-wide, namespace-wide, by selector. */
export function requestAuthnFor(policies: readonly RequestAuthn[], mesh: MeshSettings, namespace: string, labels: Record<string, string>): RequestAuthn[] {
  const level = (p: RequestAuthn) => (p.selector ? 2 : p.namespace === namespace ? 1 : 0);
  return policies
    .filter((p) => (p.selector ? p.namespace === namespace && labelsMatch(p.selector, labels) : p.namespace === namespace || p.namespace === mesh.rootNamespace))
    .sort((a, b) => level(a) - level(b));
}

/** Every JWT provider one workload verifies, in policy order. */
export function jwtProvidersFor(policies: readonly RequestAuthn[], mesh: MeshSettings, namespace: string, labels: Record<string, string>): JwtProvider[] {
  return requestAuthnFor(policies, mesh, namespace, labels).flatMap((p) => p.rules);
}

// ---- what AuthorizationPolicies on request identities will do ---------------------------------

/** Whether `<iss>/<sub>` for some subject can match the principal pattern `text` (Istio's forms). */
function mayMatchIssuer(text: string, issuer: string): boolean {
  const head = `${issuer}/`;
  if (text === '*' || text.startsWith('*')) return true;
  if (text.endsWith('*')) {
    const p = text.slice(0, -1);
    return p.startsWith(head) || head.startsWith(p);
  }
  return text.startsWith(head);
}

/**
 * Warnings for AuthorizationPolicies that test request identities: a principal no declared issuer
 * can produce (it matches no request: only tokens from declared issuers are ever verified), a
 * policy no RequestAuthentication backs, and proxyless gRPC servers, where such rules fail closed.
 */
export function warnRequestIdentityRules(objects: readonly ConfigObject[], policies: readonly RequestAuthn[], services: readonly Service[], mesh: MeshSettings, issues: IssueList): void {
  for (const obj of objects) {
    if (!isKind(obj, 'AuthorizationPolicy') || issues.rejected.has(obj.key)) continue;
    const principals: Array<[string, Array<string | number>]> = [];
    let usesJwt = false;
    (obj.spec.rules ?? []).forEach((r, i) => {
      (r.from ?? []).forEach(({ source }, j) => {
        for (const f of ['requestPrincipals', 'notRequestPrincipals'] as const) {
          source[f]?.forEach((t, k) => principals.push([t, ['spec', 'rules', i, 'from', j, 'source', f, k]]));
          if (source[f]) usesJwt = true;
        }
      });
      (r.when ?? []).forEach((c, j) => {
        if (!c.key.startsWith('request.auth.')) return;
        usesJwt = true;
        if (c.key !== 'request.auth.principal') return;
        for (const f of ['values', 'notValues'] as const) c[f]?.forEach((t, k) => principals.push([t, ['spec', 'rules', i, 'when', j, f, k]]));
      });
    });
    if (!usesJwt) continue;
    // Issuers any workload the policy can select may verify: its namespace's and the mesh's.
    const issuers = [...new Set(policies.filter((p) => p.namespace === obj.namespace || (p.namespace === mesh.rootNamespace && !p.selector)).flatMap((p) => p.rules.map((r) => r.issuer)))];
    if (issuers.length === 0) {
      issues.warn(obj, ['spec', 'rules'], `tests request identities (JWT), but no RequestAuthentication applies in namespace ${obj.namespace}: no request has one, so these conditions never match (an ALLOW rule needing a token lets nothing in)`);
    } else {
      for (const [text, path] of principals) {
        if (issuers.some((iss) => mayMatchIssuer(text, iss))) continue;
        issues.warn(obj, path, `request principal ${JSON.stringify(text)} names no issuer a RequestAuthentication declares for namespace ${obj.namespace} (${issuers.join(', ')}): a request principal is <issuer>/<subject>, and only tokens from declared issuers are verified, so it matches no request`);
      }
    }
    const selector = obj.spec.selector?.matchLabels ?? {};
    const grpc = services.filter((s) => s.namespace === obj.namespace && s.ports.some((p) => p.protocol === 'GRPC') && s.endpoints.some((ep) => labelsMatch(selector, ep.labels)));
    if (grpc.length > 0) {
      issues.warn(obj, ['spec', 'rules'], `tests request identities (JWT), which proxyless gRPC servers cannot check (no JWT filter): on ${grpc.map((s) => s.host).sort().join(', ')} it fails closed (${(obj.spec.action ?? 'ALLOW') === 'ALLOW' ? 'its rules that need a token match no call' : 'its rules apply whatever the token'}); Envoy sidecars check tokens`);
    }
  }
}
