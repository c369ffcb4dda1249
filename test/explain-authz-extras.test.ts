// explain on the AuthorizationPolicy parts beyond ALLOW/DENY: CUSTOM (the external authorizer
// decides, named; a provider that cannot be used denies), AUDIT (logs, never changes the decision),
// path templates and the new condition keys, evaluated on the callee's generated config.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { parseMeshConfig } from '../control-plane/config/mesh-config.ts';
import { explain } from '../control-plane/explain/explain.ts';
import { uriTemplateMatches } from '../control-plane/explain/rbac.ts';
import { compile } from '../control-plane/model/compile.ts';
import { DEFAULT_MESH } from '../control-plane/model/mesh-identity.ts';

function stateOf(caseName: string) {
  const file = `test/golden/in/${caseName}.yaml`;
  const meshFile = `test/golden/in/${caseName}.mesh.yaml`;
  const mesh = fs.existsSync(meshFile) ? { ...DEFAULT_MESH, ...parseMeshConfig(meshFile, fs.readFileSync(meshFile, 'utf8')).settings } : DEFAULT_MESH;
  return compile(parseConfigText(file, fs.readFileSync(file, 'utf8')), [], undefined, mesh);
}

/** The callee's decision for one request from reviews (10.0.0.10, an Envoy sidecar) to productpage. */
function inbound(caseName: string, request: string, headers: string[] = []) {
  const e = explain(stateOf(caseName), { request, headers, from: 'default/reviews', kind: 'envoy' });
  const all = e.destinations.flatMap((d) => d.inbound);
  const at = all.find((i) => i.endpoint === '10.0.0.9:9080');
  expect(at, JSON.stringify(e.destinations)).toBeDefined();
  return at!;
}

describe('explain: CUSTOM, AUDIT, templates, new keys', () => {
  it('CUSTOM: a request its rules match is decided by the named authorizer; others are not sent to it', () => {
    const asked = inbound('authz-custom-http', 'GET http://productpage.default:9080/api/v7/orders');
    expect(asked.decision).toBe('unknown');
    expect(asked.reason).toMatch(/CUSTOM policy istio-ext-authz-ns\[default\]-policy\[productpage-ext\]-rule\[0\] matches: the external authorizer "my-http-authz" \(ext_authz, cluster outbound\|8000\|\|ext-authz.security.svc.cluster.local\) decides/);
    expect(asked.authz[0]).toMatchObject({ action: 'CUSTOM', outcome: 'unknown', matched: [{ rule: { key: 'AuthorizationPolicy/default/productpage-ext' } }] });
    // Rule 1 needs POST and :authority shop.example.com: a POST to productpage is not sent.
    expect(inbound('authz-custom-http', 'POST http://productpage.default:9080/x').decision).toBe('allow');
    const notAsked = inbound('authz-custom-http', 'GET http://productpage.default:9080/api/v7/orders/1');
    expect(notAsked.decision).toBe('allow');
    expect(notAsked.authz[0]?.reason).toBe('no CUSTOM policy matches: the external authorizer is not asked');
  });

  it('CUSTOM with a provider the mesh config lacks denies what its rules match (fail closed), the good one still asks', () => {
    const denied = inbound('authz-custom-grpc-provider', 'GET http://productpage.default:9080/private/x');
    expect(denied.decision).toBe('deny');
    expect(denied.reason).toMatch(/DENY policy istio-ext-authz-ns\[default\]-policy\[productpage-typo\]-rule\[0\]-deny-due-to-bad-CUSTOM-action matches \(CUSTOM policy with no usable external authorizer here: a bad provider, or a proxyless gRPC server; its rules deny, fail closed\)/);
    const asked = inbound('authz-custom-grpc-provider', 'GET http://productpage.default:9080/public');
    expect(asked.decision).toBe('unknown');
    expect(asked.reason).toMatch(/external authorizer "my-grpc-authz" \(ext_authz, cluster outbound\|9000\|\|ext-authz.security.svc.cluster.local, fail open\)/);
  });

  it('AUDIT logs a match and leaves the decision to the other policies', () => {
    const logged = inbound('authz-audit', 'POST http://productpage.default:9080/x');
    expect(logged.decision).toBe('allow');
    expect(logged.authz[0]).toMatchObject({ action: 'AUDIT', outcome: 'no effect', reason: 'AUDIT policy ns[default]-policy[audit-writes]-rule[0], ns[default]-policy[audit-writes]-rule[1] matches: logged (access_log_hint), not refused' });
    // (rule 1, notNamespaces: a plaintext caller has no identity, so it is in no namespace)
    const deleted = inbound('authz-audit', 'DELETE http://productpage.default:9080/x');
    expect(deleted.decision).toBe('deny');
    expect(deleted.authz.map((s) => s.action)).toEqual(['AUDIT', 'DENY']);
  });

  it('path templates: {*} is one segment, {**} the rest, as Envoy matches them', () => {
    expect(inbound('authz-path-templates', 'GET http://productpage.default:9080/api/v1/orders').decision).toBe('allow');
    expect(inbound('authz-path-templates', 'GET http://productpage.default:9080/api/v1/x/orders').decision).toBe('deny');
    expect(inbound('authz-path-templates', 'GET http://productpage.default:9080/api/v1/orders/internal').decision).toBe('deny');
    expect(inbound('authz-path-templates', 'GET http://productpage.default:9080/static/a/b/c.css').decision).toBe('allow');
    expect(inbound('authz-path-templates', 'GET http://productpage.default:9080/static/private/key').decision).toBe('deny');
    expect(uriTemplateMatches('/v1/*/*/items/**', '/v1/a/b/items/c/d')).toBe(true);
    expect(uriTemplateMatches('/v1/*/*/items/**', '/v1/a/items/c')).toBe(false);
    expect(uriTemplateMatches('/a/*', '/a/')).toBe(false);
  });

  it('destination.ip, pseudo-headers and SNI conditions', () => {
    // allow-conditions rule 0: destination 10.0.0.9 in 10.0.0.0/24, :method GET, :path not /internal*.
    expect(inbound('authz-conditions-extra', 'GET http://productpage.default:9080/x').decision).toBe('allow');
    // DELETE fails rule 0; rule 1 tests SNI (a plaintext caller sends none: no match); rule 2 tests
    // another filter's metadata, which explain cannot know.
    const other = inbound('authz-conditions-extra', 'DELETE http://productpage.default:9080/x');
    expect(other.decision).toBe('unknown');
    expect(other.reason).toBe('only ALLOW policy ns[default]-policy[allow-conditions]-rule[2] may match');
  });
});
