// Envoy in the loop for DestinationRule features only Envoy carries: cookie attributes on a
// consistent-hash cookie, and warmup (slow start). Set ENVOY_BIN or put `envoy` on PATH to run the
// Envoy part; without it that part is skipped with a line saying so, and only the first describe
// runs: the same mesh's generated config, checked against Envoy's schema.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { checkResource } from '../control-plane/envoy/check.ts';
import { compile } from '../control-plane/model/compile.ts';
import { proxyFromNode } from '../control-plane/translate/proxy.ts';
import { translate } from '../control-plane/translate/translate.ts';
import { CLUSTER, TYPE_ORDER } from '../control-plane/translate/type-urls.ts';
import { sidecarNode, type Workload } from './helpers/envoy-bootstrap.ts';
import { startHttpBackend, type HttpBackend } from './helpers/envoy-http.ts';
import { hostHeader, HTTP_PORT, meshYaml, startEnvoyMesh, startSidecar } from './helpers/envoy-mesh.ts';
import { findEnvoy } from './helpers/envoy-process.ts';
import { hostOf } from './helpers/mesh-files.ts';
import { Teardown } from './helpers/test-mesh.ts';

const envoy = findEnvoy();
if (!envoy) console.log('envoy-e2e-destination-rules: no envoy binary (ENVOY_BIN or PATH); the Envoy part is skipped, only the config checks run');

const COOKIE = { name: 'affinity', ttl: '60s', attributes: [{ name: 'SameSite', value: 'Strict' }, { name: 'HttpOnly' }] };
const POLICIES = {
  reviews: { loadBalancer: { consistentHash: { httpCookie: COOKIE } } },
  details: { loadBalancer: { simple: 'ROUND_ROBIN', warmup: { duration: '30s', minimumPercent: 20, aggression: 2 } } },
};
const PRODUCTPAGE: Workload = { pod: 'productpage-v1-1', namespace: 'default', ip: '10.255.0.1', labels: { app: 'productpage', version: 'v1' } };

const backendSpecs = [
  { service: 'reviews', version: 'v1' },
  { service: 'reviews', version: 'v2' },
  { service: 'details', version: 'v1' },
  { service: 'details', version: 'v2' },
];

describe('DestinationRule Envoy-only fields: generated config', () => {
  it("is valid Envoy config and carries the cookie attributes and the slow start", () => {
    const ports = backendSpecs.map((b, i) => ({ ...b, port: 20_000 + i }));
    const state = compile(parseConfigText('mesh.yaml', meshYaml(ports, POLICIES)));
    expect(state.errors).toEqual([]);
    const res = translate(state.model, proxyFromNode(sidecarNode(PRODUCTPAGE)));
    for (const t of TYPE_ORDER) for (const r of res[t]) expect(checkResource(r), String(r.name ?? r.cluster_name)).toEqual([]);
    const details = res[CLUSTER].find((c) => c.name === `outbound|${HTTP_PORT}||${hostOf('details')}`) as Record<string, any>;
    expect(details.round_robin_lb_config.slow_start_config).toEqual({ slow_start_window: '30s', aggression: { default_value: 2, runtime_key: 'meshpilot.slow_start.aggression' }, min_weight_percent: { value: 20 } });
    expect(JSON.stringify(res)).toContain('"attributes":[{"name":"SameSite","value":"Strict"},{"name":"HttpOnly"}]');
  });
});

describe.skipIf(!envoy)('DestinationRule Envoy-only fields with a real Envoy', () => {
  const teardown = new Teardown();
  const backends: HttpBackend[] = [];
  beforeAll(async () => {
    for (const b of backendSpecs) backends.push(await startHttpBackend(b));
  });
  afterAll(async () => {
    await Promise.all(backends.map((b) => b.stop()));
  });
  afterEach(() => teardown.run());

  it('sets the generated cookie with its attributes and keeps a client on one version; takes the slow start config', async () => {
    const mesh = await startEnvoyMesh(teardown, { 'mesh.yaml': meshYaml(backends, POLICIES) });
    const pp = await startSidecar(teardown, envoy!, mesh, PRODUCTPAGE, { caller: true, readyHost: hostHeader('reviews') });
    const first = await pp.client!.request(hostHeader('reviews'));
    expect(first.status).toBe(200);
    const setCookie = String(first.headers['set-cookie'] ?? '');
    expect(setCookie).toMatch(/^affinity=/);
    expect(setCookie).toContain('SameSite=Strict');
    expect(setCookie).toContain('HttpOnly');
    const cookie = setCookie.split(';')[0]!;
    const versions = new Set<string>();
    for (let i = 0; i < 20; i++) versions.add((await pp.client!.request(hostHeader('reviews'), { cookie })).reply!.version);
    expect(versions.size).toBe(1);

    expect((await pp.client!.request(hostHeader('details'))).status).toBe(200);
    const dump = JSON.parse((await pp.envoy.adminGet('/config_dump?resource=dynamic_active_clusters')).text);
    const details = dump.configs.find((c: any) => c.cluster?.name === `outbound|${HTTP_PORT}||${hostOf('details')}`);
    expect(details?.cluster.round_robin_lb_config?.slow_start_config?.slow_start_window).toBe('30s');
  });
});
