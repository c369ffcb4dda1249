// Envoy in the loop for what only Envoy carries of AuthorizationPolicy: CUSTOM through a real
// external authorizer (a node HTTP ext_authz server started here), enabled only for the requests
// the CUSTOM rules match (path templates among them), and AUDIT (logs, never refuses). Runs with
// ENVOY_BIN or `envoy` on PATH; without it, only the first describe runs: it builds the callee's
// bootstrap and config and checks them against Envoy's schema and the test's assumptions.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { checkResource } from '../control-plane/envoy/check.ts';
import { compile } from '../control-plane/model/compile.ts';
import { DEFAULT_MESH, type MeshSettings } from '../control-plane/model/mesh-identity.ts';
import { CLUSTER } from '../control-plane/translate/type-urls.ts';
import { BOOTSTRAP_TYPE, type Workload } from './helpers/envoy-bootstrap.ts';
import { outcome, startHttpBackend } from './helpers/envoy-http.ts';
import { hostHeader, meshYaml, sidecarConfig, startEnvoyMesh, startSidecar } from './helpers/envoy-mesh.ts';
import { findEnvoy } from './helpers/envoy-process.ts';
import { Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';

type Json = Record<string, any>;
const envoy = findEnvoy();
if (!envoy) console.log('envoy-e2e-authz: no envoy binary (ENVOY_BIN or PATH); the Envoy-in-the-loop authorization suite is skipped, only its config checks run');
const secondLoopback = process.platform === 'linux';

const workload = (pod: string, ip: string, labels: Record<string, string>): Workload => ({ pod, namespace: 'default', ip, labels });
const PRODUCTPAGE = workload('productpage-v1-1', '10.255.0.1', { app: 'productpage', version: 'v1' });
const RATINGS_POD = workload('ratings-v1-1', '127.0.0.2', { app: 'ratings', version: 'v1' });
const AUTHZ_HOST = 'ext-authz.default.svc.cluster.local';
const MESH: MeshSettings = { ...DEFAULT_MESH, extensionProviders: [{ name: 'node-authz', kind: 'http', service: AUTHZ_HOST, port: 8000, timeoutMs: 2000, pathPrefix: '/check', includeRequestHeadersInCheck: ['x-allow'] }] };

/** Rules: ratings behind its sidecar; /secure/{**} and /api/{*}/admin go to the authorizer; everything is audited. */
function files(ratingsPort: number, authzPort: number): Record<string, string> {
  return {
    'mesh.yaml': meshYaml([{ service: 'ratings', version: 'v1', port: ratingsPort, address: RATINGS_POD.ip }]),
    'authz-service.yaml': `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ext-authz, namespace: default }
spec:
  hosts: [${AUTHZ_HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8000, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.1, ports: { http: ${authzPort} } }]
`,
    'policies.yaml': `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ext, namespace: default }
spec:
  selector: { matchLabels: { app: ratings } }
  action: CUSTOM
  provider: { name: node-authz }
  rules:
  - to: [{ operation: { paths: ["/secure/{**}", "/api/{*}/admin"] } }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: audit-all, namespace: default }
spec:
  selector: { matchLabels: { app: ratings } }
  action: AUDIT
  rules: [{}]
`,
  };
}

/** A small ext_authz HTTP authorizer: allows when the checked request carries `x-allow: yes`. */
async function startAuthorizer(): Promise<{ port: number; checked: string[]; stop: () => Promise<void> }> {
  const checked: string[] = [];
  const server = http.createServer((req, res) => {
    checked.push(req.url ?? '');
    req.resume();
    const ok = req.headers['x-allow'] === 'yes';
    res.writeHead(ok ? 200 : 403, { 'x-authz-reason': ok ? 'allowed' : 'no x-allow' });
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, checked, stop: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

describe('CUSTOM and AUDIT for Envoy (checked without Envoy)', () => {
  it("the callee's inbound entry has AUDIT, CUSTOM's shadow RBAC and ext_authz in Istio's order, and the authorizer's cluster comes by CDS", () => {
    const load = Object.entries(files(31001, 31002)).map(([f, t]) => parseConfigText(f, t));
    const state = compile({ ...load[0]!, objects: load.flatMap((l) => l.objects), errors: load.flatMap((l) => l.errors) }, [], undefined, MESH);
    expect(state.errors.map((e) => e.message)).toEqual([]);
    const { resources, entries, bootstrap } = sidecarConfig(state.model, RATINGS_POD, '127.0.0.1:15010', { inboundPort: 31001 });
    expect(checkResource({ '@type': BOOTSTRAP_TYPE, ...bootstrap })).toEqual([]);
    const filters = (entries[0]!.hcm.http_filters as Json[]).map((f) => f.name);
    expect(filters.slice(0, 3)).toEqual(['envoy.filters.http.rbac.audit', 'envoy.filters.http.rbac.custom', 'envoy.filters.http.ext_authz']);
    expect(resources[CLUSTER].map((c) => c.name)).toContain(`outbound|8000||${AUTHZ_HOST}`);
  });
});

describe.skipIf(!envoy || !secondLoopback)('CUSTOM and AUDIT with real Envoy sidecars', () => {
  const teardown = new Teardown();
  afterEach(() => teardown.run());

  it('asks the authorizer only for what the CUSTOM rules match, and follows its answer; AUDIT refuses nothing', { timeout: 60_000 }, async () => {
    const ratings = await startHttpBackend({ service: 'ratings', version: 'v1' });
    teardown.add(() => ratings.stop());
    const authz = await startAuthorizer();
    teardown.add(() => authz.stop());
    const mesh = await startEnvoyMesh(teardown, files(ratings.port, authz.port), { mesh: MESH });
    expect(mesh.cp.state().errors.map((e) => e.message)).toEqual([]);
    await startSidecar(teardown, envoy!, mesh, RATINGS_POD, { inboundPort: ratings.port });
    const pp = await startSidecar(teardown, envoy!, mesh, PRODUCTPAGE, { caller: true, readyHost: hostHeader('ratings') });
    const get = async (path: string, headers: Record<string, string> = {}) => outcome(await pp.client!.request(hostHeader('ratings'), headers, { path }));
    await waitFor(async () => (await get('/open')) === 'v1', { timeoutMs: 20_000, intervalMs: 100, description: 'ratings through both sidecars' });

    expect(await get('/open')).toBe('v1');
    expect(authz.checked).toEqual([]); // not matched by the CUSTOM rules: never sent to the authorizer
    expect(await get('/secure/a/b')).toBe('status:403');
    expect(await get('/secure/a/b', { 'x-allow': 'yes' })).toBe('v1');
    expect(await get('/api/v2/admin', { 'x-allow': 'yes' })).toBe('v1');
    expect(await get('/api/v2/x/admin')).toBe('v1'); // {*} is one segment: not matched, not asked
    expect(authz.checked).toEqual(['/check/secure/a/b', '/check/secure/a/b', '/check/api/v2/admin']);
  });
});
