// AuthorizationPolicy: what is accepted and what is refused (with file:line:col and field path),
// how the model resolves it, and what the generated RBAC filters MEAN: requests are evaluated by
// grpc-js-xds's own RBAC engine (the one an XdsServer runs), fed the bytes meshpilot would send.
import './helpers/xds-rbac-env.ts'; // before grpc-js-xds is loaded: registers its RBAC filter
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import { parseTopLevelFilterConfig } from '@grpc/grpc-js-xds/build/src/http-filter.js';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { type ConfigError, formatError } from '../control-plane/config/types.ts';
import { encodeResource } from '../control-plane/envoy/check.ts';
import { parseCidr, principalTrustDomain } from '../control-plane/model/authorization.ts';
import { DEFAULT_MESH } from '../control-plane/model/mesh-identity.ts';
import { compile, formatIssue } from '../control-plane/model/compile.ts';
import { proxyFromNode, type Proxy } from '../control-plane/translate/proxy.ts';
import { translate } from '../control-plane/translate/translate.ts';
import { LISTENER } from '../control-plane/translate/type-urls.ts';

/** 1-based line and column of the first occurrence of `needle` in `text`. */
function posOf(text: string, needle: string): { line: number; col: number } {
  const at = text.indexOf(needle);
  if (at < 0) throw new Error(`${needle} not in text`);
  const before = text.slice(0, at);
  return { line: before.split('\n').length, col: at - before.lastIndexOf('\n') };
}

function policy(spec: string, metadata = ''): string {
  return `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: p\n  namespace: default${metadata}\nspec:\n${spec.replace(/^/gm, '  ')}\n`;
}

function errorsOf(text: string): ConfigError[] {
  return parseConfigText('authz.yaml', text).errors;
}

/** The one error at `path`, checked to point at `needle`'s position. */
function errorAt(text: string, path: string, needle: string): string {
  const errors = errorsOf(text);
  const hits = errors.filter((e) => e.path === path);
  expect(hits.map(formatError), `errors at ${path} among:\n${errors.map(formatError).join('\n')}`).toHaveLength(1);
  expect(hits[0]).toMatchObject(posOf(text, needle));
  return hits[0]!.message;
}

describe('AuthorizationPolicy schema', () => {
  it('accepts Istio policies and our workloadSelector source', () => {
    const text = policy(`selector: {matchLabels: {app: ratings}}
action: DENY
rules:
- from:
  - source: {ipBlocks: [10.0.0.0/8, "fd00::/8"], notRemoteIpBlocks: [1.2.3.4]}
  - source: {workloadSelector: {matchLabels: {app: reviews}, namespace: shop}}
  to:
  - operation: {hosts: ["*.example.com"], ports: ["8080", 9090], methods: [GET], paths: ["/api/*", "*.png", "/x"], notPaths: ["*"]}
  when:
  - {key: "request.headers[X-Caller]", values: ["a*"], notValues: ["*b"]}
  - {key: source.ip, notValues: [10.1.0.0/16]}
  - {key: destination.port, values: ["9080"]}`);
    const r = parseConfigText('authz.yaml', text);
    expect(r.errors.map(formatError)).toEqual([]);
    expect(r.objects).toHaveLength(1);
    expect(errorsOf(policy('{}'))).toEqual([]);
    expect(errorsOf(policy('rules: [{}]'))).toEqual([]);
  });

  it('refuses an unknown action; CUSTOM needs rules and a provider, and only CUSTOM names one (as Istio)', () => {
    const bad = policy('action: LOG');
    expect(errorAt(bad, 'spec.action', 'LOG')).toBe('must be one of ALLOW, DENY, AUDIT, CUSTOM (got "LOG")');
    expect(formatError(errorsOf(bad)[0]!)).toBe(`authz.yaml:${posOf(bad, 'LOG').line}:${posOf(bad, 'LOG').col} spec.action: must be one of ALLOW, DENY, AUDIT, CUSTOM (got "LOG") (AuthorizationPolicy default/p)`);
    expect(errorsOf(policy('action: CUSTOM\nprovider: {name: ext}\nrules: [{}]'))).toEqual([]);
    expect(errorsOf(policy('action: AUDIT\nrules: [{}]'))).toEqual([]);
    const noRules = policy('action: CUSTOM\nprovider: {name: ext}');
    expect(errorAt(noRules, 'spec.action', 'CUSTOM')).toMatch(/^a CUSTOM policy needs at least one rule/);
    const noName = policy('action: CUSTOM\nprovider: {}\nrules: [{}]');
    expect(errorAt(noName, 'spec.provider', 'provider')).toMatch(/^a CUSTOM policy names its extension provider/);
    const noProvider = policy('action: CUSTOM\nrules: [{}]');
    expect(errorAt(noProvider, 'spec.action', 'CUSTOM')).toMatch(/^a CUSTOM policy names its extension provider/);
    const wrong = policy('action: DENY\nprovider: {name: ext}\nrules: [{}]');
    expect(errorAt(wrong, 'spec.provider', 'provider')).toBe('only a CUSTOM policy names a provider (action is DENY)');
  });

  it('refuses a dry-run CUSTOM policy (as Istio: the authorizer has no dry run)', () => {
    const text = policy('action: CUSTOM\nprovider: {name: ext}\nrules: [{}]', '\n  annotations:\n    istio.io/dry-run: "true"');
    const state = compile(parseConfigText('authz.yaml', text));
    expect(state.errors.map(formatIssue)).toEqual([`authz.yaml:${posOf(text, '"true"').line}:${posOf(text, '"true"').col} metadata.annotations.istio.io/dry-run: is not supported on a CUSTOM policy (the external authorizer decides; it has no dry run) (AuthorizationPolicy default/p)`]);
    expect(state.model.authorizationPolicies).toEqual([]);
  });

  it('refuses bad IP addresses and CIDR blocks at their position', () => {
    const text = policy(`rules:
- from:
  - source: {ipBlocks: [10.0.0.1, 10.0.0.300/8], notIpBlocks: [10.0.0.0/33], remoteIpBlocks: ["fd00::/129"], notRemoteIpBlocks: [example.com]}`);
    expect(errorAt(text, 'spec.rules[0].from[0].source.ipBlocks[1]', '10.0.0.300/8')).toMatch(/^invalid IP address or CIDR block "10.0.0.300\/8"/);
    expect(errorAt(text, 'spec.rules[0].from[0].source.notIpBlocks[0]', '10.0.0.0/33')).toBe('invalid prefix length in "10.0.0.0/33": must be 0 to 32');
    expect(errorAt(text, 'spec.rules[0].from[0].source.remoteIpBlocks[0]', '"fd00::/129"')).toBe('invalid prefix length in "fd00::/129": must be 0 to 128');
    expect(errorAt(text, 'spec.rules[0].from[0].source.notRemoteIpBlocks[0]', 'example.com')).toMatch(/^invalid IP address or CIDR block/);
    const when = policy(`rules:\n- when:\n  - {key: remote.ip, values: [10.0.0.0/8, "300.1.1.1"]}`);
    expect(errorAt(when, 'spec.rules[0].when[0].values[1]', '"300.1.1.1"')).toMatch(/^invalid IP address or CIDR block "300.1.1.1"/);
  });

  it('refuses `when` keys it cannot enforce, saying why; takes the rest of Istio\'s keys', () => {
    const text = policy(`rules:
- when:
  - {key: "request.auth.claims[]", values: [x]}
  - {key: connection.sni, values: [ops]}
  - {key: destination.ip, values: [10.0.0.1, 10.0.0.300]}
  - {key: "request.header[x]", values: [y]}
  - {key: "request.headers[bad header]", values: [y]}
  - {key: destination.port, values: [http]}
  - {key: source.ip}
  - {key: "request.headers[:method]", values: [GET]}
  - {key: "experimental.envoy.filters.network.mysql_proxy", values: [x]}
  - {key: "experimental.envoy.filters.network.mysql_proxy[db.table]", values: ["[update]"]}
  - {key: "request.headers[:authority]", values: [""]}
  - {key: source.serviceAccount, values: [ops/batch, "ops/*"]}
  - {key: source.trustDomain, values: ["*.corp.example"]}`);
    expect(errorAt(text, 'spec.rules[0].when[0].key', '"request.auth.claims[]"')).toMatch(/^unknown condition key "request.auth.claims\[\]"/);
    expect(errorsOf(text).filter((e) => e.path.startsWith('spec.rules[0].when[1]'))).toEqual([]);
    expect(errorAt(text, 'spec.rules[0].when[2].values[1]', '10.0.0.300')).toMatch(/^invalid IP address or CIDR block "10.0.0.300"/);
    expect(errorsOf(text).filter((e) => e.path === 'spec.rules[0].when[2].values[0]')).toEqual([]);
    expect(errorAt(text, 'spec.rules[0].when[3].key', '"request.header[x]"')).toMatch(/^unknown condition key "request.header\[x\]" \(supported: .*destination.ip.*connection.sni/);
    expect(errorAt(text, 'spec.rules[0].when[4].key', '"request.headers[bad header]"')).toBe('invalid header name in "request.headers[bad header]"');
    expect(errorAt(text, 'spec.rules[0].when[5].values[0]', 'http]')).toBe('"http" is not a port number');
    expect(errorAt(text, 'spec.rules[0].when[6]', '{key: source.ip}')).toBe('a condition must set values or notValues');
    expect(errorsOf(text).filter((e) => e.path.startsWith('spec.rules[0].when[7]'))).toEqual([]);
    expect(errorAt(text, 'spec.rules[0].when[8].key', '"experimental.envoy.filters.network.mysql_proxy"')).toMatch(/write experimental.envoy.filters.<filter name>\[<metadata key>\]/);
    expect(errorsOf(text).filter((e) => e.path.startsWith('spec.rules[0].when[9]'))).toEqual([]);
    expect(errorAt(text, 'spec.rules[0].when[10].values[0]', '""]')).toBe('must not be empty');
    expect(errorAt(text, 'spec.rules[0].when[11].values[1]', '"ops/*"')).toMatch(/a service account is written <namespace>\/<name> or <name>/);
    expect(errorsOf(text).filter((e) => e.path.startsWith('spec.rules[0].when[12]') || e.path === 'spec.rules[0].when[11].values[0]')).toEqual([]);
  });

  it('refuses serviceAccounts mixed with principals or namespaces (as Istio), JWTs, and empty sources and operations', () => {
    const text = policy(`rules:
- from:
  - source: {serviceAccounts: [default/reviews], namespaces: [ops]}
  - source: {notServiceAccounts: ["ns/*"]}
  - source: {requestPrincipals: ["a*b"]}
  - source: {}
  to:
  - operation: {}`);
    expect(errorAt(text, 'spec.rules[0].from[0].source.serviceAccounts', 'serviceAccounts')).toBe('cannot be set with namespaces in the same source (use separate sources)');
    expect(errorAt(text, 'spec.rules[0].from[1].source.notServiceAccounts[0]', '"ns/*"')).toMatch(/a service account is written <namespace>\/<name> or <name>/);
    expect(errorAt(text, 'spec.rules[0].from[2].source.requestPrincipals[0]', '"a*b"')).toMatch(/a wildcard "\*" may only be at the start/);
    expect(errorAt(text, 'spec.rules[0].from[3].source', 'source: {}')).toMatch(/^a source must set at least one of principals/);
    expect(errorAt(text, 'spec.rules[0].to[0].operation', 'operation: {}')).toMatch(/^an operation must set at least one of hosts/);
  });

  it('checks path, host and port values; takes any path Istio takes, templates included', () => {
    const text = policy(`rules:
- to:
  - operation: {paths: ["/a/*/b", "api/*", "/x/{*}", "/x/{**}/y/{*}", "/x/{id}", "/x/{*}/a*", "/v1/{*}/items/{**}"], hosts: ["*a*"], ports: ["80a", 70000], methods: [""]}`);
    expect(errorAt(text, 'spec.rules[0].to[0].operation.paths[0]', '"/a/*/b"')).toMatch(/may only be at the start \(suffix match\) or at the end/);
    expect(errorAt(text, 'spec.rules[0].to[0].operation.paths[3]', '"/x/{**}/y/{*}"')).toBe('"/x/{**}/y/{*}": {**} must be the last operator of a path template');
    expect(errorAt(text, 'spec.rules[0].to[0].operation.paths[4]', '"/x/{id}"')).toMatch(/"\{" and "\}" only appear as a whole segment/);
    expect(errorAt(text, 'spec.rules[0].to[0].operation.paths[5]', '"/x/{*}/a*"')).toMatch(/segment "a\*" of a path template is not valid literal path text/);
    for (const ok of [1, 2, 6]) expect(errorsOf(text).filter((e) => e.path === `spec.rules[0].to[0].operation.paths[${ok}]`)).toEqual([]);
    expect(errorAt(text, 'spec.rules[0].to[0].operation.hosts[0]', '"*a*"')).toMatch(/at the start or at the end, not both/);
    expect(errorsOf(text).filter((e) => e.path.startsWith('spec.rules[0].to[0].operation.ports')).map((e) => e.path)).toEqual([
      'spec.rules[0].to[0].operation.ports[0]',
      'spec.rules[0].to[0].operation.ports[1]',
    ]);
    expect(errorAt(text, 'spec.rules[0].to[0].operation.methods[0]', '""')).toBe('must not be empty');
  });

  it('refuses a dry-run annotation that is not "true" or "false", at its line', () => {
    const text = policy('rules: [{}]', '\n  annotations:\n    istio.io/dry-run: "yes"');
    const state = compile(parseConfigText('authz.yaml', text));
    expect(state.errors.map(formatIssue)).toEqual([
      `authz.yaml:${posOf(text, '"yes"').line}:${posOf(text, '"yes"').col} metadata.annotations.istio.io/dry-run: must be "true" or "false" (got "yes") (AuthorizationPolicy default/p)`,
    ]);
    expect(state.model.authorizationPolicies).toEqual([]);
  });
});

describe('AuthorizationPolicy model', () => {
  it('normalises CIDR blocks to their network address (gRPC compares the address as given)', () => {
    expect(parseCidr('10.1.2.3/16')).toEqual({ address: '10.1.0.0', prefixLen: 16 });
    expect(parseCidr('10.1.2.3')).toEqual({ address: '10.1.2.3', prefixLen: 32 });
    expect(parseCidr('0.0.0.0/0')).toEqual({ address: '0.0.0.0', prefixLen: 0 });
    expect(parseCidr('255.255.255.255/31')).toEqual({ address: '255.255.255.254', prefixLen: 31 });
    expect(parseCidr('fd00::1/8')).toEqual({ address: 'fd00::', prefixLen: 8 });
    expect(parseCidr('2001:db8:0:0:1:0:0:1')).toEqual({ address: '2001:db8::1:0:0:1', prefixLen: 128 });
    expect(parseCidr('::ffff:10.1.2.3/120')).toEqual({ address: '::ffff:a01:200', prefixLen: 120 });
    expect(parseCidr('::/0')).toEqual({ address: '::', prefixLen: 0 });
  });

  it('resolves workloadSelector to the current IPs, and a rebuilt model follows a moved workload', () => {
    const workload = (addr: string) => `apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: batch, namespace: default}\nspec: {address: ${addr}, labels: {app: batch}}\n---\n`;
    const rule = policy('action: DENY\nrules:\n- from:\n  - source: {workloadSelector: {matchLabels: {app: batch}}}');
    const ips = (text: string) => compile(parseConfigText('x.yaml', text)).model.authorizationPolicies[0]!.rules[0]!.from[0]!.workloadIps;
    expect(ips(workload('10.0.0.1') + rule)).toEqual([{ address: '10.0.0.1', prefixLen: 32 }]);
    expect(ips(workload('10.0.0.2') + rule)).toEqual([{ address: '10.0.0.2', prefixLen: 32 }]);
    const none = compile(parseConfigText('x.yaml', rule));
    expect(none.model.authorizationPolicies[0]!.rules[0]!.from[0]!.workloadIps).toEqual([]);
    expect(none.warnings.map((w) => w.message)).toEqual([
      'selects no workload with an IP address in namespace default (ServiceEntry endpoints, WorkloadEntries): this source matches no caller until one exists',
    ]);
  });

  it('warns about a principal in a trust domain the mesh does not have (field path and both trust domains)', () => {
    const text = policy([
      'rules:',
      '- from:',
      '  - source:',
      '      principals: [cluster.local/ns/a/sa/x, other.example/ns/a/sa/y, "*/ns/a/sa/z", "*", "cluster*", "partner.example/ns/b/*"]',
      '      notPrincipals: [old.example/ns/a/sa/gone]',
      '      trustDomains: [cluster.local, "partner-*", legacy.example]',
      '  when:',
      '  - {key: source.principal, values: [other.example/ns/c/sa/w], notValues: ["cluster.local/ns/c/*"]}',
      '  - {key: source.namespace, values: [other.example]}',
    ].join('\n'));
    const state = compile(parseConfigText('authz.yaml', text));
    const warnings = state.warnings.filter((w) => /trust domain/.test(w.message));
    const tail = (td: string) => `, but the mesh's trust domain is cluster.local: no workload certificate of this mesh has it, so it matches no caller (meshpilot has no trust domain aliases; check the principal, or the control plane's --trust-domain)`;
    expect(warnings.map((w) => [w.path, w.message])).toEqual([
      ['spec.rules[0].from[0].source.principals[1]', `principal "other.example/ns/a/sa/y" is in trust domain other.example${tail('other.example')}`],
      ['spec.rules[0].from[0].source.principals[5]', `principal "partner.example/ns/b/*" is in trust domain partner.example${tail('partner.example')}`],
      ['spec.rules[0].from[0].source.notPrincipals[0]', `principal "old.example/ns/a/sa/gone" is in trust domain old.example${tail('old.example')}`],
      ['spec.rules[0].from[0].source.trustDomains[2]', `trust domain legacy.example${tail('legacy.example')}`],
      ['spec.rules[0].when[0].values[0]', `principal "other.example/ns/c/sa/w" is in trust domain other.example${tail('other.example')}`],
    ]);
    expect(warnings[0]).toMatchObject(posOf(text, 'other.example/ns/a/sa/y'));
    expect(formatIssue(warnings[4]!)).toContain('authz.yaml:');
    // Still a valid policy: a warning, not an error.
    expect(state.errors).toEqual([]);
    expect(state.model.authorizationPolicies).toHaveLength(1);

    // In a mesh whose trust domain is other.example, the cluster.local ones are the foreign ones.
    const other = compile(parseConfigText('authz.yaml', text), [], undefined, { ...DEFAULT_MESH, trustDomain: 'other.example' });
    expect(other.warnings.filter((w) => /trust domain/.test(w.message)).map((w) => w.path)).toEqual([
      'spec.rules[0].from[0].source.principals[0]',
      'spec.rules[0].from[0].source.principals[5]',
      'spec.rules[0].from[0].source.notPrincipals[0]',
      'spec.rules[0].from[0].source.trustDomains[0]',
      'spec.rules[0].from[0].source.trustDomains[2]',
      'spec.rules[0].when[0].notValues[0]',
    ]);
    expect(other.warnings.find((w) => w.path === 'spec.rules[0].from[0].source.principals[0]')!.message)
      .toMatch(/^principal "cluster.local\/ns\/a\/sa\/x" is in trust domain cluster.local, but the mesh's trust domain is other.example:/);
  });

  it('principalTrustDomain: the trust-domain part only when it is a literal', () => {
    expect(principalTrustDomain('cluster.local/ns/a/sa/b')).toBe('cluster.local');
    expect(principalTrustDomain('td.example/ns/a/*')).toBe('td.example');
    expect(principalTrustDomain('td.example/*')).toBe('td.example');
    expect(principalTrustDomain('*')).toBeUndefined();
    expect(principalTrustDomain('*/ns/a/sa/b')).toBeUndefined();
    expect(principalTrustDomain('*.example/ns/a/sa/b')).toBeUndefined();
    expect(principalTrustDomain('cluster*')).toBeUndefined();
    expect(principalTrustDomain('td-*/ns/a/sa/b')).toBeUndefined();
    expect(principalTrustDomain('no-slash')).toBeUndefined();
    expect(principalTrustDomain('/ns/a/sa/b')).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------
// Meaning: the RBAC filters meshpilot generates for a proxyless gRPC server (ratings at 10.0.0.5),
// encoded to bytes as they would be sent, parsed and evaluated by grpc-js-xds's RBAC engine.

const SERVICES = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: grpc, protocol: GRPC}, {number: 9090, name: grpc-admin, protocol: GRPC}]
  endpoints:
  - {address: 10.0.0.5, labels: {app: ratings, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1, namespace: default}
spec: {address: 10.0.1.1, labels: {app: reviews, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v3, namespace: default}
spec: {address: 10.0.1.3, labels: {app: reviews, version: v3}}
---
`;

const SERVER: Proxy = proxyFromNode({
  id: 'sidecar~10.0.0.5~ratings-v1-1.default~default.svc.cluster.local',
  metadata: { NAMESPACE: 'default', GENERATOR: 'grpc', LABELS: { app: 'ratings', version: 'v1' } },
});

interface Request {
  path?: string;
  authority?: string;
  port?: number;
  source?: string;
  headers?: Record<string, string>;
  /** The caller's SPIFFE ID (its certificate's URI SAN); absent: a plaintext caller. */
  principal?: string;
}

interface RbacGroup { apply(info: unknown): boolean }

/** Evaluates requests against the filters of ratings' server listener on `port`, in filter order. */
function authorizer(policies: string, port = 9080): (req: Request) => boolean {
  registerOnce();
  const state = compile(parseConfigText('p.yaml', SERVICES + policies));
  expect(state.errors.map(formatIssue)).toEqual([]);
  const listener = translate(state.model, SERVER)[LISTENER].find((l) => l.name === `xds.istio.io/grpc/lds/inbound/10.0.0.5:${port}`);
  expect(listener, 'server listener').toBeDefined();
  const hcm = (listener as unknown as { filter_chains: Array<{ filters: Array<{ typed_config: { http_filters: Array<{ name: string; typed_config: { '@type': string } }> } }> }> })
    .filter_chains[0]!.filters[0]!.typed_config;
  const groups: RbacGroup[] = hcm.http_filters
    .filter((f) => f.name.includes('rbac'))
    .map((f) => {
      const parsed = parseTopLevelFilterConfig(encodeResource(f.typed_config), false) as { config: RbacGroup } | null;
      if (!parsed) throw new Error(`grpc-js-xds refused the ${f.name} filter`);
      return parsed.config;
    });
  return (req) => {
    const path = req.path ?? '/meshpilot.demo.v1.Echo/Call';
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(req.headers ?? {})) md.set(k, v);
    md.set(':method', 'POST');
    md.set(':authority', req.authority ?? 'ratings.default.svc.cluster.local:9080');
    md.set(':path', path);
    const info = { destinationIp: '10.0.0.5', destinationPort: req.port ?? port, sourceIp: req.source ?? '10.0.1.1', headers: md, tls: req.principal !== undefined, peerCertificate: req.principal ? { subjectaltname: `URI:${req.principal}`, subject: {} } : null, urlPath: path };
    return groups.every((g) => g.apply(info));
  };
}

let registered = false;
function registerOnce(): void {
  if (!registered) grpcXds.register();
  registered = true;
}

function doc(name: string, spec: string, annotations = ''): string {
  return `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: ${name}, namespace: default${annotations}}\nspec:\n${spec.replace(/^/gm, '  ')}\n---\n`;
}

describe('AuthorizationPolicy identities, evaluated by grpc-js-xds RBAC against the peer certificate', () => {
  const PP = 'spiffe://cluster.local/ns/default/sa/productpage';
  const OPS = 'spiffe://cluster.local/ns/ops/sa/backup';

  it('principals: exact, prefix, suffix, "*" (any caller with an identity); plaintext callers have none', () => {
    const ok = authorizer(doc('p', 'rules:\n- from: [{source: {principals: [cluster.local/ns/default/sa/productpage, "cluster.local/ns/team-*", "*/sa/backup"]}}]'));
    expect(ok({ principal: PP })).toBe(true);
    expect(ok({ principal: 'spiffe://cluster.local/ns/default/sa/reviews' })).toBe(false);
    expect(ok({ principal: 'spiffe://cluster.local/ns/team-a/sa/x' })).toBe(true);
    expect(ok({ principal: OPS })).toBe(true);
    expect(ok({})).toBe(false);
    const any = authorizer(doc('any', 'rules:\n- from: [{source: {principals: ["*"]}}]'));
    expect(any({ principal: OPS })).toBe(true);
    expect(any({})).toBe(false);
  });

  it('namespaces and serviceAccounts ("sa" is in the policy\'s namespace); notNamespaces lets plaintext callers match, as in Istio', () => {
    const ok = authorizer(doc('ns', 'rules:\n- from: [{source: {namespaces: [default]}}, {source: {serviceAccounts: [ops/backup]}}]'));
    expect(ok({ principal: PP })).toBe(true);
    expect(ok({ principal: OPS })).toBe(true);
    expect(ok({ principal: 'spiffe://cluster.local/ns/ops/sa/other' })).toBe(false);
    expect(ok({ principal: 'spiffe://cluster.local/ns/defaultx/sa/a' })).toBe(false);
    const sa = authorizer(doc('sa', 'rules:\n- from: [{source: {serviceAccounts: [productpage]}}]'));
    expect(sa({ principal: PP })).toBe(true);
    expect(sa({ principal: 'spiffe://cluster.local/ns/other/sa/productpage' })).toBe(false);
    const deny = authorizer(doc('deny-ops', 'action: DENY\nrules:\n- from: [{source: {notNamespaces: [default]}}]'));
    expect(deny({ principal: PP })).toBe(true);
    expect(deny({ principal: OPS })).toBe(false);
    expect(deny({})).toBe(false);
  });

  it('trustDomains / notTrustDomains match the SPIFFE ID\'s trust domain', () => {
    const ok = authorizer(doc('td', 'rules:\n- from: [{source: {trustDomains: [cluster.local, "partner-*"], notTrustDomains: [partner-test.example]}}]'));
    expect(ok({ principal: PP })).toBe(true);
    expect(ok({ principal: 'spiffe://cluster.localx/ns/default/sa/a' })).toBe(false);
    expect(ok({ principal: 'spiffe://partner-a.example/ns/x/sa/y' })).toBe(true);
    expect(ok({ principal: 'spiffe://partner-test.example/ns/x/sa/y' })).toBe(false);
    expect(ok({})).toBe(false);
  });

  it('when source.principal / source.namespace', () => {
    const ok = authorizer(doc('w', 'rules:\n- when: [{key: source.namespace, values: [default]}, {key: source.principal, notValues: [cluster.local/ns/default/sa/reviews]}]'));
    expect(ok({ principal: PP })).toBe(true);
    expect(ok({ principal: 'spiffe://cluster.local/ns/default/sa/reviews' })).toBe(false);
    expect(ok({ principal: OPS })).toBe(false);
  });
});

describe('AuthorizationPolicy meaning, evaluated by grpc-js-xds RBAC', () => {
  it('without policies every request is admitted; `spec: {}` denies all; a rule `{}` allows all', () => {
    expect(authorizer('')({})).toBe(true);
    expect(authorizer(doc('deny-all', '{}'))({})).toBe(false);
    expect(authorizer(doc('allow-all', 'rules: [{}]'))({})).toBe(true);
    // A policy for other workloads, or another namespace, does not apply.
    expect(authorizer(doc('other', 'selector: {matchLabels: {app: reviews}}'))({})).toBe(true);
  });

  it('evaluates DENY before ALLOW: a request matching both is denied', () => {
    const allow = doc('allow', 'rules:\n- when: [{key: "request.headers[x-caller]", values: [reviews-v1, reviews-v2]}]');
    const deny = doc('deny', 'action: DENY\nrules:\n- when: [{key: "request.headers[x-caller]", values: [reviews-v1]}]');
    const ok = authorizer(allow + deny);
    expect(ok({ headers: { 'x-caller': 'reviews-v1' } })).toBe(false);
    expect(ok({ headers: { 'x-caller': 'reviews-v2' } })).toBe(true);
    expect(ok({ headers: { 'x-caller': 'reviews-v3' } })).toBe(false);
    expect(ok({})).toBe(false);
  });

  it('matches paths exactly, by prefix "/x/*", by suffix "*x", and "*" for any', () => {
    const ok = authorizer(doc('paths', 'rules:\n- to: [{operation: {paths: ["/meshpilot.demo.v1.Echo/Call", "/grpc.health.v1.Health/*", "*/Debug"], notPaths: ["/grpc.health.v1.Health/Watch"]}}]'));
    expect(ok({ path: '/meshpilot.demo.v1.Echo/Call' })).toBe(true);
    expect(ok({ path: '/meshpilot.demo.v1.Echo/CallX' })).toBe(false);
    expect(ok({ path: '/grpc.health.v1.Health/Check' })).toBe(true);
    expect(ok({ path: '/grpc.health.v1.Health/Watch' })).toBe(false);
    expect(ok({ path: '/grpc.health.v1.HealthX/Check' })).toBe(false);
    expect(ok({ path: '/any.Service/Debug' })).toBe(true);
    expect(authorizer(doc('any', 'action: DENY\nrules:\n- to: [{operation: {paths: ["*"]}}]'))({})).toBe(false);
  });

  it('matches hosts case-insensitively, with or without the port clients put in :authority', () => {
    const ok = authorizer(doc('hosts', 'rules:\n- to: [{operation: {hosts: ["ratings.default.svc.cluster.local", "*.example.com", "admin:9090"]}}]'));
    expect(ok({ authority: 'ratings.default.svc.cluster.local:9080' })).toBe(true);
    expect(ok({ authority: 'RATINGS.default.svc.cluster.local' })).toBe(true);
    expect(ok({ authority: 'ratings.default.svc.cluster.localx:9080' })).toBe(false);
    expect(ok({ authority: 'ratings.default:9080' })).toBe(false);
    expect(ok({ authority: 'a.b.example.com:443' })).toBe(true);
    expect(ok({ authority: 'example.com' })).toBe(false);
    expect(ok({ authority: 'admin:9090' })).toBe(true);
    expect(ok({ authority: 'admin:9091' })).toBe(false);
  });

  it('matches ports and methods (gRPC calls are POST)', () => {
    const byPort = doc('ports', 'rules:\n- to: [{operation: {ports: ["9090"]}}]');
    expect(authorizer(byPort, 9080)({})).toBe(false);
    expect(authorizer(byPort, 9090)({})).toBe(true);
    expect(authorizer(doc('m', 'rules:\n- to: [{operation: {methods: [POST]}}]'))({})).toBe(true);
    expect(authorizer(doc('m', 'rules:\n- to: [{operation: {notMethods: [POST]}}]'))({})).toBe(false);
    const whenPort = doc('wp', 'action: DENY\nrules:\n- when: [{key: destination.port, notValues: ["9090"]}]');
    expect(authorizer(whenPort, 9080)({})).toBe(false);
    expect(authorizer(whenPort, 9090)({})).toBe(true);
  });

  it('matches source IP blocks (normalised), notIpBlocks, and remote IPs (the peer, for gRPC)', () => {
    const ok = authorizer(doc('ips', 'rules:\n- from:\n  - source: {ipBlocks: [10.0.1.77/24], notIpBlocks: [10.0.1.3]}\n  - source: {remoteIpBlocks: ["192.168.0.0/16"]}'));
    expect(ok({ source: '10.0.1.1' })).toBe(true);
    expect(ok({ source: '10.0.1.3' })).toBe(false);
    expect(ok({ source: '10.0.2.1' })).toBe(false);
    expect(ok({ source: '192.168.44.1' })).toBe(true);
    const deny = authorizer(doc('outside', 'action: DENY\nrules:\n- from: [{source: {notIpBlocks: [10.0.0.0/8]}}]\n  to: [{operation: {paths: ["/admin/*"]}}]'));
    expect(deny({ source: '172.16.0.1', path: '/admin/reset' })).toBe(false);
    expect(deny({ source: '10.9.9.9', path: '/admin/reset' })).toBe(true);
    expect(deny({ source: '172.16.0.1', path: '/meshpilot.demo.v1.Echo/Call' })).toBe(true);
  });

  it('matches callers named by workload labels at their current IPs', () => {
    const ok = authorizer(doc('no-v3', 'action: DENY\nrules:\n- from: [{source: {workloadSelector: {matchLabels: {app: reviews, version: v3}}}}]'));
    expect(ok({ source: '10.0.1.3' })).toBe(false);
    expect(ok({ source: '10.0.1.1' })).toBe(true);
    // Nothing selected: the source matches nobody (an ALLOW policy with only that source denies all).
    const nobody = authorizer(doc('nobody', 'rules:\n- from: [{source: {workloadSelector: {matchLabels: {app: ghost}}}}]'));
    expect(nobody({ source: '10.0.1.1' })).toBe(false);
  });

  it('matches request headers: exact, prefix, suffix, present, and notValues', () => {
    const ok = authorizer(doc('h', 'rules:\n- when:\n  - {key: "request.headers[X-Tenant]", values: ["acme-*", "*-test", "exact"]}\n  - {key: "request.headers[x-env]", notValues: ["prod"]}\n  - {key: "request.headers[x-trace]", values: ["*"]}'));
    const h = (tenant: string, env?: string, trace = 't') => ({ headers: { 'x-tenant': tenant, ...(env ? { 'x-env': env } : {}), ...(trace ? { 'x-trace': trace } : {}) } });
    expect(ok(h('acme-eu'))).toBe(true);
    expect(ok(h('shop-test'))).toBe(true);
    expect(ok(h('exact'))).toBe(true);
    expect(ok(h('exactly'))).toBe(false);
    expect(ok(h('acme-eu', 'prod'))).toBe(false);
    expect(ok(h('acme-eu', 'staging'))).toBe(true);
    expect(ok(h('acme-eu', undefined, ''))).toBe(false);
  });

  it('leaves dry-run policies out for gRPC servers (no shadow rules there): they deny nothing', () => {
    const ok = authorizer(doc('try', 'action: DENY\nrules: [{}]', ', annotations: {istio.io/dry-run: "true"}'));
    expect(ok({})).toBe(true);
  });
});
