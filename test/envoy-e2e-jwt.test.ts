// Envoy in the loop for JWT request authentication, where Envoy exists: meshpilot -> a real Envoy
// sidecar in front of ratings, whose RequestAuthentication has an inline key set generated here
// (node:crypto, ES256) and whose AuthorizationPolicy wants a request principal or a claim. A valid
// token is admitted, a forged or expired one refused 401 by the JWT filter, a request without a
// token refused 403 by the ALLOW policy. Set ENVOY_BIN or put `envoy` on PATH to run it; without
// it the Envoy part is skipped with a line saying so, and only the config checks run: the callee's
// test bootstrap passes Envoy's schema and verifies tokens before RBAC.
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { checkResource } from '../control-plane/envoy/check.ts';
import { compile } from '../control-plane/model/compile.ts';
import { BOOTSTRAP_TYPE, type Workload } from './helpers/envoy-bootstrap.ts';
import { EntryClient, outcome, startHttpBackend } from './helpers/envoy-http.ts';
import { hostHeader, meshYaml, sidecarConfig, startEnvoyMesh, startSidecar } from './helpers/envoy-mesh.ts';
import { findEnvoy } from './helpers/envoy-process.ts';
import { testIssuer } from './helpers/jwt.ts';
import { Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';

const envoy = findEnvoy();
if (!envoy) console.log('envoy-e2e-jwt: no envoy binary (ENVOY_BIN or PATH); the Envoy-in-the-loop JWT test is skipped, only its config checks run');
// The callee's sidecar listens on its own loopback IP, 127.0.0.2 (Linux answers on all of 127/8).
const secondLoopback = process.platform === 'linux';

const RATINGS_POD: Workload = { pod: 'ratings-v1-1', namespace: 'default', ip: '127.0.0.2', labels: { app: 'ratings', version: 'v1' } };
const idp = testIssuer('https://idp.test');
const forger = testIssuer('https://idp.test'); // same issuer name, another key

function files(port: number): Record<string, string> {
  return {
    'mesh.yaml': meshYaml([{ service: 'ratings', version: 'v1', port, address: RATINGS_POD.ip }]),
    'jwt.yaml': `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: ratings, namespace: default }
spec:
  selector: { matchLabels: { app: ratings } }
  jwtRules:
  - issuer: ${idp.issuer}
    audiences: [ratings]
    jwks: '${idp.jwks}'
    outputClaimToHeaders: [{ header: x-jwt-sub, claim: sub }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ratings, namespace: default }
spec:
  selector: { matchLabels: { app: ratings } }
  rules:
  - from: [{ source: { requestPrincipals: ["${idp.issuer}/alice"] } }]
  - when: [{ key: "request.auth.claims[groups]", values: [admin] }]
`,
  };
}

const teardown = new Teardown();
afterEach(() => teardown.run());

describe('JWT config for Envoy (always runs)', () => {
  it("the callee's bootstrap passes Envoy's schema and its inbound entry verifies tokens before RBAC", () => {
    const state = compile(parseConfigText('jwt.yaml', Object.values(files(8080)).join('---\n')));
    expect(state.errors).toEqual([]);
    const { entries, bootstrap } = sidecarConfig(state.model, RATINGS_POD, '127.0.0.1:15010', { inboundPort: 8080 });
    expect(checkResource({ '@type': BOOTSTRAP_TYPE, ...bootstrap })).toEqual([]);
    const filters = (entries[0]!.hcm.http_filters as Array<{ name: string; typed_config: Record<string, unknown> }>);
    expect(filters.map((f) => f.name)).toEqual(['envoy.filters.http.jwt_authn', 'envoy.filters.http.rbac.allow', 'envoy.filters.http.router']);
    expect(JSON.stringify(filters[0]!.typed_config)).toContain(JSON.stringify(idp.jwks));
  });
});

describe.skipIf(!envoy || !secondLoopback)('JWT request authentication in a real Envoy', () => {
  it('admits a valid token, refuses a forged or expired one 401 and a request without a token 403', async () => {
    const backend = await startHttpBackend({ service: 'ratings', version: 'v1' });
    teardown.add(() => backend.stop());
    const mesh = await startEnvoyMesh(teardown, files(backend.port));
    expect(mesh.cp.state().errors.map((e) => e.message)).toEqual([]);
    await startSidecar(teardown, envoy!, mesh, RATINGS_POD, { inboundPort: backend.port });
    const client = new EntryClient(RATINGS_POD.ip, backend.port);
    teardown.add(() => client.close());
    const host = hostHeader('ratings');
    const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
    const status = async (headers: Record<string, string>) => outcome(await client.request(host, headers));

    await waitFor(async () => (await status(bearer(idp.sign({ sub: 'alice', aud: 'ratings' })))) === 'v1', { timeoutMs: 20_000, intervalMs: 100, description: 'a valid token through to ratings' });
    const alice = await client.request(host, bearer(idp.sign({ sub: 'alice', aud: 'ratings' })));
    expect(alice.reply!.headers['x-jwt-sub'], 'outputClaimToHeaders').toBe('alice');
    expect(alice.reply!.headers['authorization'], 'the token is not forwarded (forwardOriginalToken: false)').toBeUndefined();

    expect(await status(bearer(idp.sign({ sub: 'bob', aud: 'ratings', groups: ['dev', 'admin'] })))).toBe('v1');
    expect(await status(bearer(idp.sign({ sub: 'bob', aud: 'ratings', groups: ['dev'] })))).toBe('status:403');
    expect(await status({})).toBe('status:403');
    expect(await status(bearer(forger.sign({ sub: 'alice', aud: 'ratings' })))).toBe('status:401');
    expect(await status(bearer(idp.sign({ sub: 'alice', aud: 'ratings', exp: Math.floor(Date.now() / 1000) - 600 })))).toBe('status:401');
    expect(await status(bearer(idp.sign({ sub: 'alice', aud: 'other' })))).toBe('status:401');
    expect(await status(bearer('not-a-jwt'))).toBe('status:401');
  });
});
