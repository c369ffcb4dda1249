// RequestAuthentication and AuthorizationPolicy's request identities: what the schema refuses (at
// its position), which providers each workload gets, how requestPrincipals split against the
// declared issuers, the fail-closed rules for proxyless gRPC, and explain deciding on a token's
// claims (decoded, not verified).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { wildcardProblem } from '../control-plane/config/schemas/authorization-policy.ts';
import { principal, type RbacContext } from '../control-plane/explain/rbac.ts';
import { parseRequest } from '../control-plane/explain/request.ts';
import { parseValue } from '../control-plane/model/authorization.ts';
import { jwtSourcePrincipals } from '../control-plane/translate/jwt-rbac.ts';
import { parseConfigText } from '../control-plane/config/load.ts';
import { formatError } from '../control-plane/config/types.ts';
import { checkResource } from '../control-plane/envoy/check.ts';
import { explain } from '../control-plane/explain/explain.ts';
import { compile, formatIssue, type MeshState } from '../control-plane/model/compile.ts';
import { jwtProvidersFor } from '../control-plane/model/request-authentication.ts';
import { proxyFromNode } from '../control-plane/translate/proxy.ts';
import { translate } from '../control-plane/translate/translate.ts';
import { CLUSTER, LISTENER } from '../control-plane/translate/type-urls.ts';
import type { Json } from '../control-plane/json.ts';

const SERVICES = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: web, namespace: default }
spec:
  hosts: [web.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8080, name: http, protocol: HTTP }]
  endpoints: [{ address: 10.0.0.1, labels: { app: web } }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: default }
spec:
  hosts: [api.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9090, name: grpc, protocol: GRPC }]
  endpoints: [{ address: 10.0.0.2, labels: { app: api } }]
---
`;

const KEYS = '{"keys":[{"kty":"EC","crv":"P-256","x":"gBJsBQgtDlOohit8YGVbxyY1xsa5I6HMNa7Nlacwizw","y":"hJHGi7Q6a2Xk-PxMp9_1NsB-1oIYJzQSrSU_CD6HSrI"}]}';

function ra(name: string, namespace: string, spec: string): string {
  return `apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: { name: ${name}, namespace: ${namespace} }\nspec:\n${spec.replace(/^/gm, '  ')}\n---\n`;
}
function ap(name: string, spec: string): string {
  return `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: ${name}, namespace: default }\nspec:\n${spec.replace(/^/gm, '  ')}\n---\n`;
}

const errorsOf = (text: string) => parseConfigText('ra.yaml', text).errors.map(formatError);
function stateOf(text: string): MeshState & { issues: string[] } {
  const state = compile(parseConfigText('ra.yaml', text));
  return Object.assign(state, { issues: [...state.errors.map((e) => `error: ${formatIssue(e)}`), ...state.warnings.map((w) => `warning: ${formatIssue(w)}`)] });
}

const sidecar = proxyFromNode({ id: 'sidecar~10.0.0.1~web-1.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default', LABELS: { app: 'web' } } });
const grpcServer = proxyFromNode({ id: 'sidecar~10.0.0.2~api-1.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default', GENERATOR: 'grpc', LABELS: { app: 'api' } } });

/** The inbound HTTP filters of a proxy (first inbound connection manager). */
function inboundFilters(state: MeshState, proxy: typeof sidecar): Json[] {
  const res = translate(state.model, proxy);
  for (const r of [...res[LISTENER], ...res[CLUSTER]]) expect(checkResource(r), String(r.name)).toEqual([]);
  const found: Json[][] = [];
  const walk = (o: unknown, inbound: boolean): void => {
    if (!o || typeof o !== 'object') return;
    const j = o as Json;
    if (inbound && Array.isArray(j.http_filters)) found.push(j.http_filters as Json[]);
    for (const v of Object.values(j)) walk(v, inbound);
  };
  for (const l of res[LISTENER]) walk(l, String(l.name) === 'virtualInbound' || String(l.name).includes('/inbound/'));
  expect(found.length).toBeGreaterThan(0);
  return found[0]!;
}
const filterNamed = (filters: Json[], name: string) => filters.find((f) => f.name === name)?.typed_config as Json | undefined;

describe('RequestAuthentication schema', () => {
  it('refuses what Istio refuses, at the field', () => {
    const text = ra('bad', 'default', [
      'selector: { matchLabels: { app: web } }',
      'targetRef: { kind: Gateway, name: gw }',
      'jwtRules:',
      '- issuer: ""',
      '  jwksUri: ftp://keys.example/jwks',
      '- issuer: b',
      '  jwks: "not json"',
      '  fromHeaders: [{ name: "bad header" }]',
      '  timeout: 5x',
      '- issuer: c',
      '- issuer: d',
      '  jwksUri: https://d.example/k',
      '  outputClaimToHeaders: [{ header: x-a, claim: sub }, { header: X-A, claim: aud }]',
      '  issuerUrl: nope',
    ].join('\n'));
    expect(errorsOf(text)).toEqual([
      'ra.yaml:6:3 spec.targetRef: cannot be set with selector (a policy selects workloads one way) (RequestAuthentication default/bad)',
      'ra.yaml:8:13 spec.jwtRules[0].issuer: issuer must not be empty (RequestAuthentication default/bad)',
      'ra.yaml:9:14 spec.jwtRules[0].jwksUri: "ftp://keys.example/jwks": the scheme must be http or https (RequestAuthentication default/bad)',
      'ra.yaml:11:11 spec.jwtRules[1].jwks: is not JSON: expected a JSON Web Key Set {"keys": [...]} (RequestAuthentication default/bad)',
      'ra.yaml:12:27 spec.jwtRules[1].fromHeaders[0].name: invalid HTTP header name (RequestAuthentication default/bad)',
      'ra.yaml:13:14 spec.jwtRules[1].timeout: invalid duration "5x": expected e.g. 10s, 0.5s, 100ms, 1m, 1h or 1m30s (RequestAuthentication default/bad)',
      expect.stringMatching(/^ra\.yaml:14:13 spec\.jwtRules\[2\]\.issuer: needs jwksUri or jwks/),
      'ra.yaml:17:67 spec.jwtRules[3].outputClaimToHeaders[1].header: header "X-A" is set twice (RequestAuthentication default/bad)',
      'ra.yaml:18:5 spec.jwtRules[3].issuerUrl: field not supported by meshpilot (RequestAuthentication default/bad)',
    ]);
  });

  it('accepts security.istio.io v1 and v1beta1, and a policy with no rules', () => {
    expect(errorsOf(ra('a', 'default', `jwtRules: [{ issuer: a, jwks: '${KEYS}' }]`).replace('/v1\n', '/v1beta1\n'))).toEqual([]);
    expect(errorsOf(ra('b', 'default', '{}'))).toEqual([]);
  });

  it('AuthorizationPolicy: request principals and request.auth keys are accepted; bad values refused', () => {
    const ok = ap('ok', 'rules:\n- from: [{ source: { requestPrincipals: ["a/b", "a/*", "*/b", "*"], notRequestPrincipals: ["x/y"] } }]\n  when:\n  - { key: "request.auth.claims[groups]", values: [admin] }\n  - { key: "request.auth.claims[a][b]", notValues: ["x*"] }\n  - { key: request.auth.audiences, values: [web] }\n  - { key: request.auth.presenter, values: [app] }\n  - { key: request.auth.principal, values: ["a/b"] }');
    expect(errorsOf(ok)).toEqual([]);
    const bad = ap('bad', 'rules:\n- from: [{ source: { requestPrincipals: ["p1", ""] } }]\n  when:\n  - { key: "request.auth.claims[]", values: [x] }\n  - { key: request.auth.audiences, values: ["a*b"] }');
    expect(errorsOf(bad)).toEqual([
      'ra.yaml:6:50 spec.rules[0].from[0].source.requestPrincipals[1]: must not be empty (AuthorizationPolicy default/bad)',
      expect.stringMatching(/^ra\.yaml:8:14 spec\.rules\[0\]\.when\[0\]\.key: unknown condition key "request\.auth\.claims\[\]"/),
      expect.stringMatching(/^ra\.yaml:9:47 spec\.rules\[0\]\.when\[1\]\.values\[0\]: "a\*b": a wildcard/),
    ]);
  });
});

describe('JWT providers per workload', () => {
  const text = SERVICES
    + ra('mesh', 'istio-system', 'jwtRules: [{ issuer: mesh, jwksUri: "https://keys.mesh.example/jwks" }]')
    + ra('ns', 'default', `jwtRules: [{ issuer: ns, jwks: '${KEYS}' }]`)
    + ra('web', 'default', 'selector: { matchLabels: { app: web } }\njwtRules: [{ issuer: web, jwksUri: "http://10.9.9.9:8000/k" }]')
    + ra('other', 'other', `jwtRules: [{ issuer: other, jwks: '${KEYS}' }]`)
    + ra('gw', 'default', `targetRefs: [{ kind: Gateway, name: gw }]\njwtRules: [{ issuer: gw, jwks: '${KEYS}' }]`);
  const state = stateOf(text);

  it('adds mesh-wide, namespace and selected policies, in that order', () => {
    expect(state.errors).toEqual([]);
    const m = state.model;
    expect(jwtProvidersFor(m.requestAuthentications, m.mesh, 'default', { app: 'web' }).map((p) => p.issuer)).toEqual(['mesh', 'ns', 'web']);
    expect(jwtProvidersFor(m.requestAuthentications, m.mesh, 'default', { app: 'api' }).map((p) => p.issuer)).toEqual(['mesh', 'ns']);
    expect(jwtProvidersFor(m.requestAuthentications, m.mesh, 'other', {}).map((p) => p.issuer)).toEqual(['mesh', 'other']);
    expect(state.issues).toContainEqual(expect.stringContaining('spec.targetRefs: attaches to gateways or services by reference'));
  });

  it('puts one provider per rule in the sidecar\'s jwt_authn filter, before RBAC, with a cluster per remote key set', () => {
    const filters = inboundFilters(state, sidecar);
    expect(filters[0]!.name).toBe('envoy.filters.http.jwt_authn');
    const cfg = filters[0]!.typed_config as Json;
    expect(Object.values(cfg.providers as Json).map((p) => (p as Json).issuer)).toEqual(['mesh', 'ns', 'web']);
    const clusters = translate(state.model, sidecar)[CLUSTER].map((c) => String(c.name)).filter((n) => n.startsWith('jwks|'));
    expect(clusters).toEqual(['jwks|10.9.9.9|8000', 'jwks|keys.mesh.example|443']);
    // A request with a bad token fails, one without passes: Istio's semantics.
    expect(JSON.stringify(cfg.rules)).toContain('"allow_missing":{}');
  });

  it('gives proxyless gRPC no JWT filter and no key set clusters, and warns', () => {
    expect(filterNamed(inboundFilters(state, grpcServer), 'envoy.filters.http.jwt_authn')).toBeUndefined();
    expect(translate(state.model, grpcServer)[CLUSTER].some((c) => String(c.name).startsWith('jwks|'))).toBe(false);
    expect(state.issues).toContainEqual(expect.stringContaining('proxyless gRPC servers do not verify JWTs (gRPC has no JWT filter): on api.default.svc.cluster.local'));
  });
});

describe('requestPrincipals against the declared issuers', () => {
  const base = SERVICES + ra('r', 'default', `jwtRules:\n- { issuer: "https://idp.example/realms/a", jwks: '${KEYS}' }\n- { issuer: plain, jwks: '${KEYS}' }`);
  const principalsOf = (values: string[], action = 'ALLOW') => {
    const state = stateOf(base + ap('p', `action: ${action}\nrules: [{ from: [{ source: { requestPrincipals: ${JSON.stringify(values)} } }] }]`));
    const rbac = filterNamed(inboundFilters(state, sidecar), `envoy.filters.http.rbac.${action.toLowerCase()}`)!;
    return { state, principal: JSON.stringify(Object.values((rbac.rules as Json).policies as Json)[0]) };
  };
  const sub = (iss: string, match: string) => `"metadata":{"filter":"envoy.filters.http.jwt_authn","path":[{"key":"${iss}"},{"key":"sub"}],"value":${match}}`;

  it('splits at the issuer, not at the last slash', () => {
    const { principal } = principalsOf(['https://idp.example/realms/a/user/42']);
    expect(principal).toContain(sub('https://idp.example/realms/a', '{"string_match":{"exact":"user/42"}}'));
    expect(principal).not.toContain('"key":"plain"');
  });

  it('prefix, suffix and * forms', () => {
    expect(principalsOf(['plain/svc-*']).principal).toContain(sub('plain', '{"string_match":{"prefix":"svc-"}}'));
    // A prefix shorter than the issuer: any subject of the issuers it starts.
    const short = principalsOf(['https://idp*']).principal;
    expect(short).toContain(sub('https://idp.example/realms/a', '{"present_match":true}'));
    expect(short).not.toContain('"key":"plain"');
    // A suffix reaching over the slash into the issuer.
    const suffix = principalsOf(['*a/bob']).principal;
    expect(suffix).toContain(sub('https://idp.example/realms/a', '{"string_match":{"exact":"bob"}}'));
    expect(suffix).toContain(sub('plain', '{"string_match":{"suffix":"a/bob"}}'));
    expect(suffix).not.toContain(sub('plain', '{"string_match":{"exact":"bob"}}'));
    const any = principalsOf(['*']).principal;
    expect(any).toContain(sub('plain', '{"present_match":true}'));
    expect(any).toContain(sub('https://idp.example/realms/a', '{"present_match":true}'));
  });

  it('a principal of no declared issuer matches nothing, with a warning', () => {
    const { state, principal } = principalsOf(['someone-else/alice']);
    expect(principal).toContain('"principals":[{"not_id":{"any":true}}]');
    expect(state.issues).toContainEqual(expect.stringContaining('request principal "someone-else/alice" names no issuer a RequestAuthentication declares'));
  });

  it('without any RequestAuthentication, says the conditions never match', () => {
    const state = stateOf(SERVICES + ap('p', 'rules: [{ from: [{ source: { requestPrincipals: ["*"] } }] }]'));
    expect(state.issues).toContainEqual(expect.stringContaining('no RequestAuthentication applies in namespace default'));
  });
});

describe('proxyless gRPC fails closed', () => {
  const base = SERVICES + ra('r', 'default', `jwtRules: [{ issuer: plain, jwks: '${KEYS}' }]`);
  const policies = (action: string, source: string) => {
    const state = stateOf(base + ap('p', `action: ${action}\nrules: [{ from: [{ source: ${source} }], to: [{ operation: { paths: ["/admin*"] } }] }]`));
    return (filterNamed(inboundFilters(state, grpcServer), `envoy.filters.http.rbac.${action.toLowerCase()}`)!.rules as Json).policies as Json;
  };

  it('ALLOW rules that need a token match no call, whichever way they are written', () => {
    for (const source of ['{ requestPrincipals: ["*"] }', '{ notRequestPrincipals: ["plain/bad"] }']) {
      expect(JSON.stringify(policies('ALLOW', source))).toContain('"principals":[{"not_id":{"any":true}}]');
    }
  });

  it('DENY rules that need a token apply to every call of what they cover', () => {
    for (const source of ['{ requestPrincipals: ["plain/bad"] }', '{ notRequestPrincipals: ["*"] }']) {
      const p = Object.values(policies('DENY', source))[0] as Json;
      expect(p.principals).toEqual([{ any: true }]);
      expect(JSON.stringify(p.permissions)).toContain('"prefix":"/admin"');
    }
  });
});

describe('explain decides on the token\'s claims (decoded, not verified)', () => {
  const jwt = (payload: object) => ['{"alg":"ES256"}', JSON.stringify(payload), 'sig'].map((p) => Buffer.from(p).toString('base64url')).join('.');
  const state = stateOf(SERVICES
    + ra('r', 'default', `jwtRules: [{ issuer: plain, audiences: [web], jwks: '${KEYS}', fromHeaders: [{ name: x-token }] }]`)
    + ap('groups', 'selector: { matchLabels: { app: web } }\nrules: [{ when: [{ key: "request.auth.claims[groups]", values: [admin] }, { key: "request.auth.claims[org][unit]", values: ["eng-*"] }] }]')
    + ap('need-token', 'selector: { matchLabels: { app: web } }\naction: DENY\nrules: [{ from: [{ source: { notRequestPrincipals: ["*"] } }] }]'));
  const at = (headers: string[]) => {
    const e = explain(state, { from: 'sidecar~10.0.0.9~c-1.default~default.svc.cluster.local', request: 'GET http://web:8080/', headers });
    return e.destinations[0]!.inbound[0]!;
  };

  it('allows a token whose list claim holds the value and nested claim matches', () => {
    const r = at([`x-token: ${jwt({ iss: 'plain', sub: 'u1', aud: ['web'], groups: ['dev', 'admin'], org: { unit: 'eng-core' } })}`]);
    expect(r.decision).toBe('allow');
    expect(r.jwt?.reason).toContain('decoded, NOT verified');
  });

  it('denies a token without the claim (no ALLOW rule matches) and a request without a token (DENY)', () => {
    expect(at([`x-token: ${jwt({ iss: 'plain', sub: 'u1', aud: 'web', groups: ['dev'], org: { unit: 'eng-core' } })}`]).reason).toContain('ALLOW policies exist for this workload and none matches');
    const none = at([`authorization: Bearer ${jwt({ iss: 'plain', sub: 'u1', aud: 'web', groups: ['admin'] })}`]);
    expect(none.jwt?.outcome).toBe('no token');
    expect(none.reason).toContain('DENY policy ns[default]-policy[need-token]-rule[0] matches');
  });

  it('refuses with 401 a token for another audience or a token that is not a JWT', () => {
    expect(at([`x-token: ${jwt({ iss: 'plain', sub: 'u1', aud: 'other' })}`]).reason).toContain('401 Audiences in Jwt are not allowed');
    expect(at(['x-token: garbage']).reason).toContain('401 Jwt is not in the form');
  });
});

describe('requestPrincipals split: property', () => {
  // For random issuers (with slashes), subjects and Istio patterns, the RBAC principal meshpilot
  // generates matches a verified token exactly when `<iss>/<sub>` matches the pattern as a string.
  const seg = fc.stringMatching(/^[ab/]{0,4}$/);
  const istioMatch = (pattern: string, value: string) =>
    pattern === '*' ? true : pattern.startsWith('*') ? value.endsWith(pattern.slice(1)) : pattern.endsWith('*') ? value.startsWith(pattern.slice(0, -1)) : value === pattern;
  it('agrees with string matching on <iss>/<sub>', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.stringMatching(/^[ab][ab/]{0,4}$/), { minLength: 1, maxLength: 3 }), fc.nat(2), seg, seg, fc.constantFrom('exact', 'prefix', 'suffix', 'any'), (issuers, which, sub, body, form) => {
        const iss = issuers[which % issuers.length]!;
        const pattern = form === 'any' ? '*' : form === 'prefix' ? `${body}*` : form === 'suffix' ? `*${body}` : body;
        fc.pre(wildcardProblem(pattern) === undefined);
        const source = { requestPrincipals: [parseValue(pattern)] };
        const [p] = jwtSourcePrincipals(source, { issuers, grpc: false, allow: true });
        const ctx: RbacContext = { request: parseRequest('GET http://x/', [], 'envoy'), destinationPort: 80, jwtPayloads: { [iss]: { iss, sub } } };
        expect(principal(p!, ctx)).toBe(istioMatch(pattern, `${iss}/${sub}`));
      }),
      { numRuns: 2000, seed: 20261207 },
    );
  });
});

describe('explain at a proxyless gRPC server with JWT rules', () => {
  it('says the token is not checked, and the ALLOW rule needing one refuses the call', () => {
    const jwt = ['{"alg":"ES256"}', JSON.stringify({ iss: 'plain', sub: 'alice' }), 'sig'].map((p) => Buffer.from(p).toString('base64url')).join('.');
    const state = stateOf(SERVICES
      + ra('r', 'default', `selector: { matchLabels: { app: api } }\njwtRules: [{ issuer: plain, jwks: '${KEYS}' }]`)
      + ap('api', 'selector: { matchLabels: { app: api } }\nrules: [{ from: [{ source: { requestPrincipals: ["plain/alice"] } }] }]'));
    const e = explain(state, { from: 'sidecar~10.0.0.9~c-1.default~default.svc.cluster.local', kind: 'grpc', request: 'xds:///api.default.svc.cluster.local:9090/a.B/C', headers: [`authorization: Bearer ${jwt}`] });
    const r = e.destinations[0]!.inbound[0]!;
    expect(r.jwt?.reason).toContain('proxyless gRPC has no JWT filter');
    expect(r.decision).toBe('deny');
    expect(r.reason).toContain('PERMISSION_DENIED');
  });
});
