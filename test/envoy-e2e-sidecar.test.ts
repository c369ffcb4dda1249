// Sidecar scoping and REGISTRY_ONLY with real Envoy, where Envoy exists (ENVOY_BIN or `envoy` on
// PATH; skipped with a line saying so otherwise). Only Envoy carries these: proxyless gRPC clients
// ask for names and get no Sidecar scope. Without Envoy the first describe still runs: it builds the
// bootstrap this suite would start and checks it and meshpilot's config for it against Envoy's schema.
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { checkResource } from '../control-plane/envoy/check.ts';
import { compile } from '../control-plane/model/compile.ts';
import { CLUSTER, LISTENER, TYPE_ORDER } from '../control-plane/translate/type-urls.ts';
import { BOOTSTRAP_TYPE, virtualHostFor, type Workload } from './helpers/envoy-bootstrap.ts';
import { startHttpBackend } from './helpers/envoy-http.ts';
import { hostHeader, meshYaml, sidecarConfig, startEnvoyMesh, startSidecar } from './helpers/envoy-mesh.ts';
import { findEnvoy } from './helpers/envoy-process.ts';
import { Teardown } from './helpers/test-mesh.ts';

const envoy = findEnvoy();
if (!envoy) console.log('envoy-e2e-sidecar: no envoy binary (ENVOY_BIN or PATH); the Envoy-in-the-loop suite is skipped, only its config checks run');

const CALLER: Workload = { pod: 'productpage-v1-1', namespace: 'default', ip: '10.255.0.1', labels: { app: 'productpage' } };

/** REGISTRY_ONLY for productpage, which sees only reviews (not details). */
const SIDECAR = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: productpage, namespace: default }
spec:
  workloadSelector: { labels: { app: productpage } }
  egress:
  - hosts: ["./reviews.default.svc.cluster.local"]
  outboundTrafficPolicy: { mode: REGISTRY_ONLY }
`;

const backends = (reviewsPort: number, detailsPort: number) => [
  { service: 'reviews', version: 'v1', port: reviewsPort },
  { service: 'details', version: 'v1', port: detailsPort },
];

describe('Envoy sidecar under a REGISTRY_ONLY Sidecar: config checks (no Envoy needed)', () => {
  it('the bootstrap and every resource pass Envoy\'s schema; unknown hosts meet block_all (502), details is not in the config', () => {
    const state = compile(parseConfigText('rules.yaml', `${meshYaml(backends(1, 2))}---\n${SIDECAR}`));
    expect(state.errors).toEqual([]);
    const { resources, bootstrap } = sidecarConfig(state.model, CALLER, '127.0.0.1:1', { outboundPort: 2 });
    expect(checkResource({ '@type': BOOTSTRAP_TYPE, ...bootstrap })).toEqual([]);
    for (const t of TYPE_ORDER) for (const r of resources[t]) expect(checkResource(r), String(r.name ?? r.cluster_name)).toEqual([]);
    // Any authority no virtual host names (an unknown host, details) falls to the catch-all.
    expect(virtualHostFor(resources, '9080', '*')?.routes).toEqual([{ name: 'block_all', match: { prefix: '/' }, direct_response: { status: 502 } }]);
    expect(virtualHostFor(resources, '9080', hostHeader('details'))).toBeUndefined();
    expect(virtualHostFor(resources, '9080', hostHeader('reviews'))?.name).toBe('reviews.default.svc.cluster.local:9080');
    expect(resources[CLUSTER].map((c) => c.name).filter((n) => String(n).includes('details'))).toEqual([]);
    expect((resources[LISTENER].find((l) => l.name === 'virtualOutbound') as any).filter_chains[0].filters[0].typed_config.cluster).toBe('BlackHoleCluster');
  });
});

describe.skipIf(!envoy)('Envoy sidecar under a REGISTRY_ONLY Sidecar (real Envoy)', () => {
  const teardown = new Teardown();
  afterEach(() => teardown.run());

  it('reaches reviews, and an unknown host or a service outside its egress gets 502 from Envoy', async () => {
    const reviews = await startHttpBackend({ service: 'reviews', version: 'v1' });
    const details = await startHttpBackend({ service: 'details', version: 'v1' });
    teardown.add(() => reviews.stop());
    teardown.add(() => details.stop());
    const mesh = await startEnvoyMesh(teardown, { 'mesh.yaml': meshYaml(backends(reviews.port, details.port)), 'sidecar.yaml': SIDECAR });
    const caller = await startSidecar(teardown, envoy!, mesh, CALLER, { caller: true });
    expect((await caller.client!.request(hostHeader('reviews'))).status).toBe(200);
    expect((await caller.client!.request('unknown.example.com:9080')).status).toBe(502);
    expect((await caller.client!.request(hostHeader('details'))).status).toBe(502);
    expect(details.received).toEqual([]);
  });
});
