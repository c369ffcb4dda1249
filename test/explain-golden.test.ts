// Golden explain outputs: the full text for a few requests against examples/bookinfo and golden
// inputs, in test/golden/explain/<case>.txt, so the format is reviewed as a whole and changes show
// in diffs. `npm run golden:update` (UPDATE_GOLDEN=1) rewrites them with the translator goldens.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadDirectory, parseConfigText } from '../control-plane/config/load.ts';
import { explain, type ExplainInput } from '../control-plane/explain/explain.ts';
import { renderExplanation } from '../control-plane/explain/render.ts';
import { compile, type MeshState } from '../control-plane/model/compile.ts';

const DIR = path.join('test', 'golden', 'explain');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

const bookinfo = () => compile(loadDirectory('examples/bookinfo'));
const golden = (name: string) => () => {
  const file = path.join('test/golden/in', `${name}.yaml`);
  return compile(parseConfigText(file, fs.readFileSync(file, 'utf8')));
};

/** An unsigned JWT (explain decodes, never verifies). */
const jwt = (payload: object) => ['{"alg":"ES256"}', JSON.stringify(payload), 'sig'].map((p) => Buffer.from(p).toString('base64url')).join('.');

const CASES: Record<string, { mesh: () => MeshState; input: ExplainInput }> = {
  'bookinfo-jason-envoy': { mesh: bookinfo, input: { from: 'default/productpage', request: 'GET http://reviews:9080/reviews/1', headers: ['end-user: jason'] } },
  'bookinfo-canary-grpc': { mesh: bookinfo, input: { from: 'default/productpage', kind: 'grpc', request: 'xds:///reviews:9080/meshpilot.demo.v1.Echo/Call', headers: ['end-user: bob'] } },
  'match-conditions-admin': { mesh: golden('match-conditions'), input: { from: 'sidecar~10.0.0.50~web-1.default~default.svc.cluster.local', request: 'GET http://reviews:9080/admin/users?mode=test', headers: ['x-debug: 1'] } },
  'fault-half-unavailable-grpc': { mesh: golden('fault-injection'), input: { kind: 'grpc', request: 'xds:///ratings.default.svc.cluster.local:9080/a.B/C' } },
  'authz-deny-admin': { mesh: golden('authz-allow-deny'), input: { from: 'sidecar~172.16.0.1~x-1.default~default.svc.cluster.local', request: 'POST http://productpage:9080/admin/users' } },
  'ratelimit-productpage': { mesh: golden('ratelimit-overrides'), input: { from: 'default/productpage', request: 'GET http://ratings:9080/' } },
  // Auto mTLS from the productpage sidecar to a STRICT reviews; its identity passes reviews' RBAC.
  'mtls-principal-envoy': { mesh: golden('mtls-authz-principals'), input: { from: 'default/productpage', request: 'POST http://reviews:9080/a.B/C' } },
  // A proxyless client gets no auto mTLS: plaintext to a STRICT server fails.
  // A directResponse route: the sidecar answers; nothing is forwarded.
  'direct-response-maintenance-envoy': { mesh: golden('direct-response'), input: { from: 'sidecar~10.0.0.50~web-1.default~default.svc.cluster.local', request: 'GET http://reviews:9080/admin/x' } },
  // JWT: the token's payload decides RBAC (decoded, not verified); a foreign issuer is a 401.
  'jwt-alice-envoy': { mesh: golden('jwt-remote-jwks'), input: { from: 'default/productpage', request: 'GET http://productpage:9080/reviews', headers: [`authorization: Bearer ${jwt({ iss: 'https://auth.example.com', sub: 'alice', aud: 'productpage' })}`] } },
  'jwt-no-token-envoy': { mesh: golden('jwt-remote-jwks'), input: { from: 'default/productpage', request: 'GET http://productpage:9080/reviews' } },
  'jwt-foreign-issuer-envoy': { mesh: golden('jwt-remote-jwks'), input: { from: 'default/productpage', request: 'GET http://productpage:9080/public/x', headers: [`x-jwt-assertion: ${jwt({ iss: 'https://evil.example', sub: 'alice' })}`] } },
  // A gateway's TCP server: the weighted tcp route bound to it; its PASSTHROUGH server: the tls route by SNI.
  'gateway-l4-tcp': { mesh: golden('gateway-l4'), input: { from: 'router~10.0.0.20~gw-1.istio-system~istio-system.svc.cluster.local', labels: { istio: 'ingressgateway' }, request: 'tcp://any.example.com:31400' } },
  'gateway-l4-passthrough': { mesh: golden('gateway-l4'), input: { from: 'router~10.0.0.20~gw-1.istio-system~istio-system.svc.cluster.local', labels: { istio: 'ingressgateway' }, request: 'tls://b.secure.example.com:443' } },
  // Through an ingress gateway (node type router): SNI picks the MUTUAL chain; the rule bound to the gateway routes.
  'gateway-https-mutual': { mesh: golden('gateway-https'), input: { from: 'router~10.0.0.20~gw-1.istio-system~istio-system.svc.cluster.local', labels: { istio: 'ingressgateway' }, request: 'GET https://partner.example.com/orders' } },
  // httpsRedirect on port 80: 301 before any route.
  'gateway-https-redirect': { mesh: golden('gateway-https'), input: { from: 'router~10.0.0.20~gw-1.istio-system~istio-system.svc.cluster.local', labels: { istio: 'ingressgateway' }, request: 'GET http://shop.example.com/cart' } },
  // A gateway-narrowed match (`gateways: [public]`) answers 403 at the gateway; the sidecar never sees it.
  'gateway-http-admin': { mesh: golden('gateway-http'), input: { from: 'router~10.0.0.20~gw-1.istio-system~istio-system.svc.cluster.local', labels: { istio: 'ingressgateway' }, request: 'GET http://reviews.example.com/admin' } },
  'gateway-http-admin-sidecar': { mesh: golden('gateway-http'), input: { from: 'sidecar~10.0.0.50~web-1.default~default.svc.cluster.local', request: 'GET http://reviews:9080/admin' } },
  'mtls-plaintext-to-strict-grpc': { mesh: golden('mtls-authz-principals'), input: { from: 'default/productpage', kind: 'grpc', request: 'xds:///reviews:9080/a.B/C' } },
};

describe('golden explain outputs', () => {
  for (const [name, c] of Object.entries(CASES)) {
    it(name, () => {
      const text = renderExplanation(explain(c.mesh(), c.input));
      const file = path.join(DIR, `${name}.txt`);
      if (UPDATE || !fs.existsSync(file)) {
        fs.writeFileSync(file, text);
        if (!UPDATE) throw new Error(`${file} was missing; it has been written, check it in`);
        return;
      }
      expect(text, `${file} differs (UPDATE_GOLDEN=1 to rewrite if intended)`).toBe(fs.readFileSync(file, 'utf8'));
    });
  }
});
