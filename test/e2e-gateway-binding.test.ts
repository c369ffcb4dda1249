// Gateway binding seen by real proxyless gRPC clients (@grpc/grpc-js-xds) calling real backends:
// a VirtualService bound only to a Gateway changes nothing for them; bound to the Gateway and
// `mesh` it routes their calls, except for matches narrowed to the Gateway alone.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startBookinfoBackends, type BackendSet } from './helpers/backends.ts';
import { REVIEWS } from './helpers/bookinfo-rules.ts';
import { replaceFile, targetOf } from './helpers/mesh-files.ts';
import { startTestMesh, Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';
import { header, httpRoute, to, toYaml, virtualService, yamlDocs } from './helpers/yaml-builders.ts';

const TARGET = targetOf('reviews');

const GATEWAY = toYaml({
  apiVersion: 'networking.istio.io/v1',
  kind: 'Gateway',
  metadata: { name: 'ingress', namespace: 'default' },
  spec: { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }] },
});

/** Sorted before `b-mesh`, so its routes would come first if sidecars or gRPC got them. */
const gatewayRule = (gateways: string[]) =>
  virtualService({
    name: 'a-gateway',
    hosts: [REVIEWS],
    gateways,
    http: [
      // Narrowed to the gateway: never for gRPC clients, whatever the rule's own gateways.
      httpRoute([to(REVIEWS, 'v3')], { match: [{ ...header('x-canary', 'exact', '1'), gateways: ['ingress'] }] }),
      httpRoute([to(REVIEWS, 'v2')]),
    ],
  });
const MESH_RULE = virtualService({ name: 'b-mesh', hosts: [REVIEWS], http: [httpRoute([to(REVIEWS, 'v1')])] });

let bookinfo: BackendSet;
const teardown = new Teardown();
beforeAll(async () => {
  bookinfo = await startBookinfoBackends();
});
afterAll(async () => {
  await bookinfo?.stop();
});
afterEach(() => teardown.run());

describe('VirtualService gateway binding with proxyless gRPC clients', () => {
  it('a gateway-only rule leaves gRPC calls alone; bound to mesh too it routes them, except gateway-only matches', async () => {
    const mesh = await startTestMesh(teardown, { backends: bookinfo.backends, files: { 'rules.yaml': yamlDocs(GATEWAY, gatewayRule(['ingress']), MESH_RULE) }, prefix: 'e2e-gw' });
    const client = mesh.client();
    await waitFor(async () => (await client.call(TARGET)).version !== '', { timeoutMs: 20_000, intervalMs: 100, description: 'a first call' });

    expect(await client.split(TARGET, 100)).toEqual({ v1: 100 });
    expect(await client.split(TARGET, 50, { 'x-canary': '1' })).toEqual({ v1: 50 });

    await replaceFile(mesh.dir, 'rules.yaml', yamlDocs(GATEWAY, gatewayRule(['ingress', 'mesh']), MESH_RULE));
    await waitFor(async () => (await client.call(TARGET)).version === 'v2', { timeoutMs: 15_000, intervalMs: 50, description: 'calls to move to v2' });
    expect(await client.split(TARGET, 100)).toEqual({ v2: 100 });
    // The x-canary match is for the gateway only: gRPC clients fall through to v2, never v3.
    expect(await client.split(TARGET, 50, { 'x-canary': '1' })).toEqual({ v2: 50 });
  });
});
