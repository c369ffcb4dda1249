// End to end: AuthorizationPolicy rules on request identities (JWT) at a real xDS-enabled gRPC
// server (grpc-js-xds XdsServer) called by real proxyless gRPC clients. gRPC has no JWT filter, so
// no call has a verified identity, even one carrying a valid token: meshpilot makes such rules
// fail closed. An ALLOW rule needing a token admits no call; a DENY rule needing one (here: "no
// token") applies to every call it covers, valid token or not. The rules next to them still work.

// First: sets GRPC_XDS_EXPERIMENTAL_RBAC=true before grpc-js-xds is loaded.
import './helpers/xds-rbac-env.ts';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { targetOf } from './helpers/mesh-files.ts';
import { testIssuer } from './helpers/jwt.ts';
import { startTestMesh, Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';
import { createXdsClient } from './helpers/xds-client.ts';
import { reserveLoopbackPort, startXdsEchoServer } from './helpers/xds-server.ts';

const RATINGS = targetOf('ratings');
const teardown = new Teardown();
afterEach(() => teardown.run());

const idp = testIssuer('https://idp.test');
const requestAuthn = `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: ratings-jwt, namespace: default }
spec:
  selector: { matchLabels: { app: ratings } }
  jwtRules:
  - issuer: ${idp.issuer}
    jwks: '${idp.jwks}'
`;

// ALLOW: any caller but mallory (rule 0: in Istio this admits calls without a token too), or
// the caller says it is reviews-v1 or v2 (rule 1). Rules that would only ever widen access when
// the token is unknown are the ones to get right.
const allow = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ratings-allow, namespace: default }
spec:
  selector: { matchLabels: { app: ratings } }
  rules:
  - from: [{ source: { notRequestPrincipals: ["https://idp.test/mallory"] } }]
  - when: [{ key: "request.headers[x-caller]", values: [reviews-v1, reviews-v2] }]
`;

// DENY: mallory's calls from reviews-v2 (in Istio a call without a token is not mallory's).
const deny = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ratings-deny, namespace: default }
spec:
  selector: { matchLabels: { app: ratings } }
  action: DENY
  rules:
  - from: [{ source: { requestPrincipals: ["https://idp.test/mallory"] } }]
    when: [{ key: "request.headers[x-caller]", values: [reviews-v2] }]
`;

async function outcome(client: ReturnType<typeof createXdsClient>, headers: Record<string, string>): Promise<string> {
  try {
    await client.call(RATINGS, headers);
    return 'ok';
  } catch (err) {
    const code = (err as grpc.ServiceError).code;
    return typeof code === 'number' ? grpc.status[code] : String(err);
  }
}

describe('request identities (JWT) on a proxyless gRPC server', () => {
  it('fail closed: ALLOW rules needing a token admit no call, DENY rules needing one apply whatever the token', async () => {
    const port = await reserveLoopbackPort();
    const backends = [{ service: 'ratings', version: 'v1', port, address: `127.0.0.1:${port}` }];
    const { cp } = await startTestMesh(teardown, { backends, files: { 'ra.yaml': requestAuthn, 'allow.yaml': allow, 'deny.yaml': deny }, prefix: 'jwt' });
    expect(cp.state().errors).toEqual([]);
    expect(cp.state().warnings.map((w) => w.message)).toContainEqual(expect.stringContaining('proxyless gRPC servers do not verify JWTs'));
    const server = await startXdsEchoServer({ xdsAddress: cp.xdsAddress, service: 'ratings', version: 'v1', port });
    teardown.add(() => server.stop());
    const client = createXdsClient({ xdsAddress: cp.xdsAddress, labels: { app: 'reviews', version: 'v1' } });
    teardown.add(() => client.close());
    await waitFor(async () => (await outcome(client, { 'x-caller': 'reviews-v1' })) === 'ok', { timeoutMs: 20_000, intervalMs: 100, description: 'a first admitted call' });

    const token = { authorization: `Bearer ${idp.sign({ sub: 'alice' })}` };
    const mallory = { authorization: `Bearer ${idp.sign({ sub: 'mallory' })}` };
    const cases: Array<[string, Record<string, string>, string]> = [
      // The header rule of the ALLOW policy still admits.
      ['v1, no token', { 'x-caller': 'reviews-v1' }, 'ok'],
      ['v1, valid token', { 'x-caller': 'reviews-v1', ...token }, 'ok'],
      // The token rule admits no one: gRPC cannot tell alice, mallory and no token apart.
      ['v3, no token', { 'x-caller': 'reviews-v3' }, 'PERMISSION_DENIED'],
      ['v3, alice', { 'x-caller': 'reviews-v3', ...token }, 'PERMISSION_DENIED'],
      ['v3, mallory', { 'x-caller': 'reviews-v3', ...mallory }, 'PERMISSION_DENIED'],
      // The DENY rule on mallory applies to every call from v2, whatever the token.
      ['v2, no token', { 'x-caller': 'reviews-v2' }, 'PERMISSION_DENIED'],
      ['v2, alice', { 'x-caller': 'reviews-v2', ...token }, 'PERMISSION_DENIED'],
      ['v2, mallory', { 'x-caller': 'reviews-v2', ...mallory }, 'PERMISSION_DENIED'],
    ];
    const got: Record<string, string[]> = {};
    for (const [name, headers] of cases) got[name] = await Promise.all(Array.from({ length: 10 }, () => outcome(client, headers)));
    expect(got).toEqual(Object.fromEntries(cases.map(([name, , want]) => [name, Array<string>(10).fill(want)])));
  });
});
