// AuthorizationPolicy's request identities (requestPrincipals, request.auth.* keys) as RBAC
// principals on the JWT payload the jwt_authn filter (jwt-authn.ts) leaves in dynamic metadata:
// namespace `envoy.filters.http.jwt_authn`, one key per issuer, holding the verified payload.
//
// A request principal is `<iss>/<sub>`. Only tokens from the issuers this workload's
// RequestAuthentications declare can ever be verified (any other is refused with 401), so each
// principal pattern is split against those issuers exactly: `https://a.example/alice` is
// iss=https://a.example and sub=alice, whatever slashes either contains. A pattern that fits no
// declared issuer matches no request.
//
// Proxyless gRPC has no JWT filter, so no request there has a verified identity. Rather than guess,
// a condition on one fails closed: in an ALLOW rule it matches nothing (the rule cannot widen
// access); in any other rule (DENY, and actions that act on a match) it is left out, so the rule
// applies whatever the token (a DENY rule is never weakened).
import type { AuthzCondition, AuthzSource, AuthzValue } from '../model/authorization.ts';
import type { Json } from '../json.ts';

export const JWT_AUTHN_FILTER = 'envoy.filters.http.jwt_authn';

/** What a rule's JWT conditions are translated against. */
export interface JwtScope {
  /** Issuers the workload verifies (its RequestAuthentications' jwtRules). */
  issuers: readonly string[];
  /** Proxyless gRPC: no JWT filter, conditions fail closed. */
  grpc: boolean;
  /** The rule's policy is ALLOW (a match grants access). */
  allow: boolean;
}

const NO_PRINCIPAL: Json = { not_id: { any: true } };
const orIds = (list: Json[]): Json => (list.length === 0 ? NO_PRINCIPAL : list.length === 1 ? list[0]! : { or_ids: { ids: list } });

function payload(issuer: string, path: readonly string[], value: Json): Json {
  return { metadata: { filter: JWT_AUTHN_FILTER, path: [issuer, ...path].map((key) => ({ key })), value } };
}

const present = (issuer: string, claim: string): Json => payload(issuer, [claim], { present_match: true });

/** `sub` matched by kind; an empty prefix or suffix is any subject (Envoy refuses empty ones). */
function subject(issuer: string, kind: 'exact' | 'prefix' | 'suffix', value: string): Json {
  if (value === '' && kind !== 'exact') return present(issuer, 'sub');
  return payload(issuer, ['sub'], { string_match: { [kind]: value } });
}

/** The ways `<issuer>/<sub>` can match `v`, for one declared issuer. */
function principalForIssuer(v: AuthzValue, issuer: string): Json[] {
  const head = `${issuer}/`;
  switch (v.kind) {
    case 'any':
      return [present(issuer, 'sub')];
    case 'exact':
      return v.value.startsWith(head) ? [subject(issuer, 'exact', v.value.slice(head.length))] : [];
    case 'prefix':
      if (v.value.startsWith(head)) return [subject(issuer, 'prefix', v.value.slice(head.length))];
      return head.startsWith(v.value) ? [present(issuer, 'sub')] : [];
    case 'suffix': {
      // Either the subject ends with the whole suffix, or the suffix reaches back over the `/`
      // into the issuer and the subject is what follows that `/`.
      const out = [subject(issuer, 'suffix', v.value)];
      for (let k = v.value.indexOf('/'); k >= 0; k = v.value.indexOf('/', k + 1)) {
        if (issuer.endsWith(v.value.slice(0, k))) out.push(subject(issuer, 'exact', v.value.slice(k + 1)));
      }
      return out;
    }
  }
}

function principalMatcher(v: AuthzValue, issuers: readonly string[]): Json {
  return orIds(issuers.flatMap((iss) => principalForIssuer(v, iss)));
}

/** A claim equal to the value, or a list claim holding it (aud, groups...). */
function claimMatcher(path: readonly string[], v: AuthzValue, issuers: readonly string[]): Json {
  if (v.kind === 'any') return orIds(issuers.map((iss) => payload(iss, path, { present_match: true })));
  const sm = { string_match: { [v.kind]: v.value } };
  return orIds(issuers.flatMap((iss) => [payload(iss, path, sm), payload(iss, path, { list_match: { one_of: sm } })]));
}

/** The conjuncts for one values/notValues pair (values: any one; notValues: none of them). */
function conjuncts(yes: AuthzValue[] | undefined, no: AuthzValue[] | undefined, one: (v: AuthzValue) => Json, scope: JwtScope): Json[] {
  const out: Json[] = [];
  if (yes) out.push(orIds(yes.map(one)));
  if (no) out.push({ not_id: orIds(no.map(one)) });
  if (!scope.grpc || out.length === 0) return out;
  return scope.allow ? [NO_PRINCIPAL] : [];
}

/** A source's requestPrincipals / notRequestPrincipals, as principals to AND with the rest. */
export function jwtSourcePrincipals(s: AuthzSource, scope: JwtScope): Json[] {
  return conjuncts(s.requestPrincipals, s.notRequestPrincipals, (v) => principalMatcher(v, scope.issuers), scope);
}

/** A `when` condition on the token, as principals to AND; undefined: not a JWT condition. */
export function jwtConditionPrincipals(c: AuthzCondition, scope: JwtScope): Json[] | undefined {
  if (c.kind === 'requestPrincipal') return conjuncts(c.values, c.notValues, (v) => principalMatcher(v, scope.issuers), scope);
  if (c.kind === 'jwtClaim') return conjuncts(c.values, c.notValues, (v) => claimMatcher(c.claim, v, scope.issuers), scope);
  return undefined;
}
