// End to end on a real xDS-enabled gRPC server (grpc-js-xds XdsServer + RBAC) configured by
// meshpilot: the AuthorizationPolicy parts proxyless gRPC cannot carry as Envoy does.
// - CUSTOM: grpc-js-xds cannot call an external authorizer, so the requests a CUSTOM policy's rules
//   match are refused (fail closed), the others admitted.
// - Path templates ({*}, {**}): gRPC has no URI template matcher; the same template as a regex.
// - Conditions gRPC cannot evaluate (connection.sni): an ALLOW rule with one admits nothing, a DENY
//   rule applies as if it held. Pseudo-headers (:path) and destination.ip are evaluated for real.
// Callers are told apart by `x-caller: reviews-vN` (every process here is on 127.0.0.1).
import './helpers/xds-rbac-env.ts';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_MESH } from '../control-plane/model/mesh-identity.ts';
import { replaceFile, targetOf } from './helpers/mesh-files.ts';
import { startTestMesh, Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';
import { createXdsClient, type XdsClient } from './helpers/xds-client.ts';
import { reserveLoopbackPort, startXdsEchoServer } from './helpers/xds-server.ts';
import { authorizationPolicy, whenHeader } from './helpers/yaml-builders.ts';

const RATINGS = targetOf('ratings');
const CALLERS = ['reviews-v1', 'reviews-v2', 'reviews-v3'] as const;
const teardown = new Teardown();
afterEach(() => teardown.run());

const AUTHORIZER = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ext-authz, namespace: default }
spec:
  hosts: [ext-authz.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9000, name: grpc, protocol: GRPC }]
  endpoints: [{ address: 10.99.0.7 }]
`;

const policy = (action: string, rules: unknown[], extra: Record<string, unknown> = {}) =>
  authorizationPolicy({ name: 'p', selector: { app: 'ratings' }, action: action as 'ALLOW', rules: rules as never }).replace('spec:\n', `spec:\n${Object.entries(extra).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}\n`).join('')}`);

async function outcome(client: XdsClient, caller: string): Promise<string> {
  try {
    await client.call(RATINGS, { 'x-caller': caller });
    return 'ok';
  } catch (err) {
    const code = (err as grpc.ServiceError).code;
    return typeof code === 'number' ? grpc.status[code] : String(err);
  }
}

/** Waits until exactly `denied` callers get PERMISSION_DENIED (5 calls each), the rest ok. */
async function until(client: XdsClient, denied: readonly string[], what: string): Promise<void> {
  const want = Object.fromEntries(CALLERS.map((c) => [c, denied.includes(c) ? 'PERMISSION_DENIED' : 'ok']));
  let last: unknown;
  await waitFor(async () => {
    const got: Record<string, string> = {};
    for (const c of CALLERS) {
      const rs = await Promise.all(Array.from({ length: 5 }, () => outcome(client, c)));
      got[c] = rs.every((r) => r === rs[0]) ? rs[0]! : rs.join(',');
    }
    last = got;
    return JSON.stringify(got) === JSON.stringify(want);
  }, { timeoutMs: 20_000, intervalMs: 100, description: `${what}; last ${JSON.stringify(last)}` });
}

describe('AuthorizationPolicy parts gRPC cannot carry as Envoy does, on a real grpc-js-xds server', () => {
  it('CUSTOM fails closed, templates match as regexes, SNI conditions fail closed, :path and destination.ip are evaluated', async () => {
    const port = await reserveLoopbackPort();
    const backends = [{ service: 'ratings', version: 'v1', port, address: `127.0.0.1:${port}` }];
    const mesh = { ...DEFAULT_MESH, extensionProviders: [{ name: 'authz', kind: 'grpc' as const, service: 'ext-authz.default.svc.cluster.local', port: 9000 }] };
    const custom = policy('CUSTOM', [{ when: [whenHeader('x-caller', ['reviews-v3'])] }], { provider: { name: 'authz' } });
    const { dir, cp } = await startTestMesh(teardown, { backends, files: { 'ext-authz.yaml': AUTHORIZER, 'authz.yaml': custom }, prefix: 'authz-grpc', controlPlane: { mesh } });
    expect(cp.state().errors).toEqual([]);
    expect(cp.state().warnings.map((w) => w.message)).toContainEqual(expect.stringMatching(/proxyless gRPC servers cannot call an external authorizer/));
    const server = await startXdsEchoServer({ xdsAddress: cp.xdsAddress, service: 'ratings', version: 'v1', port });
    teardown.add(() => server.stop());
    const client = createXdsClient({ xdsAddress: cp.xdsAddress, labels: { app: 'reviews', version: 'v1' } });
    teardown.add(() => client.close());

    // CUSTOM: the calls its rules match are refused, the others go through.
    await until(client, ['reviews-v3'], 'CUSTOM to refuse what its rules match');

    // Path templates: {*} is one segment of /meshpilot.demo.v1.Echo/Call.
    await replaceFile(dir, 'authz.yaml', policy('ALLOW', [{ to: [{ operation: { paths: ['/{*}/Call'] } }], when: [whenHeader('x-caller', ['reviews-v1', 'reviews-v2'])] }]));
    await until(client, ['reviews-v3'], 'the {*} template to admit v1 and v2');
    await replaceFile(dir, 'authz.yaml', policy('ALLOW', [{ to: [{ operation: { paths: ['/{*}/Other', '/meshpilot.demo.v1.Echo/{*}/{**}'] } }] }]));
    await until(client, CALLERS, 'templates that do not match the method path to admit nobody');
    await replaceFile(dir, 'authz.yaml', policy('ALLOW', [{ to: [{ operation: { paths: ['/meshpilot.demo.v1.Echo/{**}'] } }] }]));
    await until(client, [], 'the {**} template to admit everyone');

    // connection.sni: unknown to gRPC. ALLOW admits nobody; DENY applies as if it held.
    await replaceFile(dir, 'authz.yaml', policy('ALLOW', [{ when: [{ key: 'connection.sni', values: ['*'] }] }]));
    await until(client, CALLERS, 'an ALLOW rule on connection.sni to admit nobody (fail closed)');
    await replaceFile(dir, 'authz.yaml', policy('DENY', [{ when: [{ key: 'connection.sni', values: ['nothing.example'] }, whenHeader('x-caller', ['reviews-v2'])] }]));
    await until(client, ['reviews-v2'], 'a DENY rule on connection.sni to apply as if it held');

    // Pseudo-header :path and destination.ip are real conditions on gRPC.
    await replaceFile(dir, 'authz.yaml', policy('DENY', [
      { when: [{ key: 'request.headers[:path]', values: ['/meshpilot.demo.v1.Echo/Call'] }, whenHeader('x-caller', ['reviews-v1'])] },
      { when: [{ key: 'destination.ip', values: ['127.0.0.0/8'] }, whenHeader('x-caller', ['reviews-v3'])] },
      { when: [{ key: 'destination.ip', values: ['10.0.0.0/8'] }, whenHeader('x-caller', ['reviews-v2'])] },
    ]));
    await until(client, ['reviews-v1', 'reviews-v3'], ':path and destination.ip DENY conditions');
  });
});
