// security.istio.io RequestAuthentication: which JWTs the selected workloads verify. A request
// with a token that fails verification is refused (401); one without a token passes with no
// request identity, and AuthorizationPolicy decides (requestPrincipals, request.auth.* keys).
// Istio's fields. `jwksUri` or inline `jwks` is required here: Istio's control plane would discover
// the key set through the issuer's OpenID configuration, which a pure translator cannot fetch.
import { z } from 'zod';
import { duration, headerName, isRecord, labels, withRule } from './common.ts';

type Report = (path: (string | number)[], message: string) => void;

/** Why `uri` is not a usable JWKS address (http or https, a host, an optional port), or undefined. */
export function jwksUriProblem(uri: string): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return `${JSON.stringify(uri)} is not a URL (expected e.g. https://example.com/.well-known/jwks.json)`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `${JSON.stringify(uri)}: the scheme must be http or https`;
  if (url.hostname === '') return `${JSON.stringify(uri)} has no host`;
  return undefined;
}

/** Why `text` is not a JSON Web Key Set Envoy can load (`{"keys": [ {kty...}, ... ]}`), or undefined. */
export function jwksProblem(text: string): string | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return 'is not JSON: expected a JSON Web Key Set {"keys": [...]}';
  }
  if (!isRecord(doc) || !Array.isArray(doc['keys'])) return 'is not a JSON Web Key Set: expected {"keys": [...]}';
  const keys = doc['keys'] as unknown[];
  if (keys.length === 0) return 'has no keys';
  const bad = keys.findIndex((k) => !isRecord(k) || typeof k['kty'] !== 'string');
  if (bad >= 0) return `key ${bad} has no "kty"`;
  return undefined;
}

const nonEmptyText = (what: string) => z.string().min(1, { error: `${what} must not be empty` });

const JwtHeader = z.strictObject({
  name: headerName,
  /** Stripped before the token is decoded, e.g. "Bearer ". */
  prefix: z.string().optional(),
});

const ClaimToHeader = z.strictObject({
  header: headerName,
  claim: nonEmptyText('claim'),
});

export const JwtRule = withRule(
  z.strictObject({
    issuer: nonEmptyText('issuer'),
    audiences: z.array(nonEmptyText('an audience')).optional(),
    jwksUri: z.string().superRefine((s, ctx) => {
      const problem = jwksUriProblem(s);
      if (problem) ctx.addIssue({ code: 'custom', message: problem, input: s });
    }).optional(),
    jwks: z.string().superRefine((s, ctx) => {
      const problem = jwksProblem(s);
      if (problem) ctx.addIssue({ code: 'custom', message: problem, input: s });
    }).optional(),
    fromHeaders: z.array(JwtHeader).optional(),
    fromParams: z.array(nonEmptyText('a parameter name')).optional(),
    fromCookies: z.array(nonEmptyText('a cookie name')).optional(),
    outputPayloadToHeader: headerName.optional(),
    forwardOriginalToken: z.boolean().optional(),
    outputClaimToHeaders: z.array(ClaimToHeader).optional(),
    timeout: duration().optional(),
  }),
  (v, report) => {
    if (v['jwksUri'] === undefined && v['jwks'] === undefined) {
      report(['issuer'], 'needs jwksUri or jwks: meshpilot does not discover the key set through the issuer\'s OpenID configuration');
    }
    const claims = v['outputClaimToHeaders'];
    if (Array.isArray(claims)) {
      const seen = new Set<string>();
      claims.forEach((c, i) => {
        const h = isRecord(c) && typeof c['header'] === 'string' ? c['header'].toLowerCase() : undefined;
        if (h === undefined) return;
        if (seen.has(h)) report(['outputClaimToHeaders', i, 'header'], `header ${JSON.stringify(c['header'])} is set twice`);
        seen.add(h);
      });
    }
  },
);

const TargetRef = z.strictObject({
  group: z.string().optional(),
  kind: z.string().min(1, { error: 'kind must not be empty' }),
  name: z.string().min(1, { error: 'name must not be empty' }),
  namespace: z.string().optional(),
});

export const RequestAuthenticationSpec = withRule(
  z.strictObject({
    selector: z.strictObject({ matchLabels: labels.optional() }).optional(),
    targetRef: TargetRef.optional(),
    targetRefs: z.array(TargetRef).optional(),
    jwtRules: z.array(JwtRule).optional(),
  }),
  (v, report: Report) => {
    // As Istio: a policy names its workloads one way.
    const ways = ['selector', 'targetRef', 'targetRefs'].filter((k) => v[k] !== undefined);
    if (ways.length > 1) report([ways[1]!], `cannot be set with ${ways[0]} (a policy selects workloads one way)`);
  },
);

export type RequestAuthenticationSpec = z.infer<typeof RequestAuthenticationSpec>;
export type JwtRuleSpec = z.infer<typeof JwtRule>;

// ---- AuthorizationPolicy condition keys on the verified token ---------------------------------

const CLAIMS_KEY = /^request\.auth\.claims((?:\[[^[\]]+\])+)$/;

/**
 * A `request.auth.*` condition key as what it tests in the token's payload: the principal
 * (`iss/sub`), or a claim path (`request.auth.audiences` is `aud`, `request.auth.presenter` is
 * `azp`, `request.auth.claims[a][b]` is the nested claim a.b). Undefined: not such a key.
 */
export function jwtConditionKey(key: string): { kind: 'principal' } | { kind: 'claim'; path: string[] } | undefined {
  if (key === 'request.auth.principal') return { kind: 'principal' };
  if (key === 'request.auth.audiences') return { kind: 'claim', path: ['aud'] };
  if (key === 'request.auth.presenter') return { kind: 'claim', path: ['azp'] };
  const m = CLAIMS_KEY.exec(key);
  if (m) return { kind: 'claim', path: m[1]!.slice(1, -1).split('][') };
  return undefined;
}
