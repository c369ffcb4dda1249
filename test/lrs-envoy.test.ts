// Envoy sidecars and gateways report load too. The injected bootstrap (and the sample, and the
// Envoy-in-the-loop tests' bootstraps) carries `cluster_manager.load_stats_config` on meshpilot's
// xDS cluster, checked against Envoy's Bootstrap proto. The LRS service, driven by raw gRPC clients
// speaking Envoy's load_stats protos against a control plane serving examples/canary: an Envoy node
// is asked for exactly the clusters the Canary judges, and gets a new answer on its open stream
// when the Canary goes or comes back; a proxyless gRPC node still gets send_all_clusters.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { IContainer } from 'kubernetes-models/v1/Container';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { checkResource } from '../control-plane/envoy/check.ts';
import { PROTO_INCLUDE_DIRS } from '../control-plane/envoy/protos.ts';
import { ANNOTATIONS, INJECT } from '../control-plane/inject/annotations.ts';
import { XDS_CLUSTER } from '../control-plane/inject/bootstrap.ts';
import { loadInjectionConfig, type InjectionConfig } from '../control-plane/inject/config.ts';
import { injectPod, type PodLike } from '../control-plane/inject/inject-pod.ts';
import { PROXY_CONTAINER } from '../control-plane/inject/names.ts';
import { startControlPlane, type ControlPlane } from '../control-plane/server.ts';
import { BOOTSTRAP_TYPE, SAMPLE_BOOTSTRAP, testBootstrap, type Json } from './helpers/envoy-bootstrap.ts';
import { expandedArgs } from './helpers/kubelet.ts';
import { Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';

const LRS_TO_XDS = { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: XDS_CLUSTER } }] };

/** Envoy's load reporting must go to the static cluster ADS uses (same channel, same mTLS). */
function expectLrsOnXdsCluster(boot: Json): void {
  expect(checkResource({ '@type': BOOTSTRAP_TYPE, ...boot })).toEqual([]);
  expect(boot.cluster_manager?.load_stats_config).toEqual(LRS_TO_XDS);
  expect(boot.cluster_manager.load_stats_config.grpc_services).toEqual(boot.dynamic_resources.ads_config.grpc_services);
  expect((boot.static_resources.clusters as Json[]).map((c) => c.name)).toContain(XDS_CLUSTER);
}

describe('Envoy bootstraps report load to meshpilot', () => {
  const config = loadInjectionConfig();
  const facts = { ip: '10.0.0.9', name: 'w-1', namespace: 'bookinfo', serviceAccount: 'sa' };
  const injected = (annotations: Record<string, string>, settings: InjectionConfig = config): Json => {
    const pod: PodLike = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'w-1', labels: { app: 'reviews' }, annotations }, spec: { containers: [{ name: 'app', image: 'example.com/app:1' }] } };
    const r = injectPod(pod, { namespace: 'bookinfo', namespaceLabels: { [INJECT]: 'enabled' }, path: [] }, settings);
    const envoy = r.pod.spec!.initContainers!.find((c: IContainer) => c.name === PROXY_CONTAINER)!;
    const args = expandedArgs(envoy, facts);
    return YAML.parse(args[args.indexOf('--config-yaml') + 1]!);
  };

  it('the injected sidecar, over mTLS and in plaintext', () => {
    const boot = injected({});
    expect(boot.node.id).toMatch(/^sidecar~/);
    expectLrsOnXdsCluster(boot);
    expect(boot.static_resources.clusters.find((c: Json) => c.name === XDS_CLUSTER).transport_socket).toBeDefined();
    expectLrsOnXdsCluster(injected({}, { ...config, xds: { ...config.xds, tls: false } }));
  });

  it('an injected gateway (proxy-type router), also after a sidecar with the same labels', () => {
    // bootstrapArg keeps bootstraps by labels: a gateway must not get the sidecar's.
    expect(injected({}).node.id).toMatch(/^sidecar~/);
    const boot = injected({ [ANNOTATIONS.proxyType]: 'router' });
    expect(boot.node.id).toMatch(/^router~/);
    expectLrsOnXdsCluster(boot);
  });

  it('the sample bootstrap and the Envoy-in-the-loop tests\' bootstraps', () => {
    expectLrsOnXdsCluster(YAML.parse(fs.readFileSync(SAMPLE_BOOTSTRAP, 'utf8')));
    expectLrsOnXdsCluster(testBootstrap({ workload: { pod: 'p-1', namespace: 'default', ip: '127.0.0.1', labels: {} }, xdsAddress: '127.0.0.1:15010', entries: [] }));
  });
});

const REVIEWS = 'reviews.default.svc.cluster.local';
const V1 = `outbound|9080|v1|${REVIEWS}`;
const V2 = `outbound|9080|v2|${REVIEWS}`;
const INTERVAL = { seconds: '0', nanos: 250_000_000 };

interface LoadStatsResponse { clusters?: string[]; send_all_clusters?: boolean; load_reporting_interval?: unknown }
type Lrs = grpc.Client & { StreamLoadStats(): grpc.ClientDuplexStream<unknown, LoadStatsResponse> };

const ENVOY_NODE = { id: 'sidecar~10.0.0.9~productpage-v1-1.default~default.svc.cluster.local', user_agent_name: 'envoy', metadata: { fields: { NAMESPACE: { stringValue: 'default' } } } };
const GATEWAY_NODE = { id: 'router~10.0.0.7~ingress-1.istio-system~istio-system.svc.cluster.local', user_agent_name: 'envoy' };
// What grpc-js-xds 1.14.1 sends on its LRS stream (its lrsNode), and Istio's gRPC bootstrap form.
const GRPC_NODE = { id: 'sidecar~10.0.0.8~client-1.default~default.svc.cluster.local', user_agent_name: 'gRPC Node Pure JS', client_features: ['envoy.lrs.supports_send_all_clusters'] };
const GRPC_BY_METADATA = { id: 'grpc-2', metadata: { fields: { GENERATOR: { stringValue: 'grpc' } } } };

const stats = (cluster: string, succeeded: number, failed: number) => ({
  cluster_name: cluster,
  upstream_locality_stats: [{ locality: {}, total_successful_requests: String(succeeded), total_error_requests: String(failed), total_issued_requests: String(succeeded + failed), total_requests_in_progress: '0' }],
});

describe('LRS asks Envoy for the clusters a Canary judges', () => {
  const teardown = new Teardown();
  let LrsClient: new (address: string, creds: grpc.ChannelCredentials) => Lrs;
  let cp: ControlPlane;
  let dir: string;

  beforeAll(async () => {
    const def = protoLoader.loadSync('envoy/service/load_stats/v3/lrs.proto', { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true, includeDirs: [...PROTO_INCLUDE_DIRS] });
    LrsClient = (grpc.loadPackageDefinition(def) as any).envoy.service.load_stats.v3.LoadReportingService;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-lrs-envoy-'));
    teardown.add(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.cpSync('examples/canary', dir, { recursive: true });
    cp = await startControlPlane({ configDir: dir, xdsListen: '127.0.0.1:0', adminListen: null, debounceMs: 20, logLevel: 'error', loadReporting: { intervalMs: 250 } });
    teardown.add(() => cp.stop());
    await waitFor(() => cp.cache.ready, { description: 'the first model served' });
  });
  afterAll(() => teardown.run());

  function open(node: object) {
    const client = new LrsClient(cp.xdsAddress, grpc.credentials.createInsecure());
    const call = client.StreamLoadStats();
    const responses: LoadStatsResponse[] = [];
    call.on('data', (r: LoadStatsResponse) => responses.push(r));
    call.on('error', () => {});
    teardown.add(() => {
      call.cancel();
      client.close();
    });
    call.write({ node });
    return { call, responses };
  }
  const clustersOf = (r: LoadStatsResponse | undefined) => (r ? { clusters: r.clusters ?? [], sendAll: r.send_all_clusters ?? false } : undefined);
  const figures = (cluster: string) => cp.load.recent(cluster);

  it('an Envoy sidecar or gateway gets exactly the judged clusters, a gRPC client send_all_clusters; reports are summed alike', async () => {
    const envoy = open(ENVOY_NODE);
    const gateway = open(GATEWAY_NODE);
    const grpcClient = open(GRPC_NODE);
    const grpcByMetadata = open(GRPC_BY_METADATA);
    await waitFor(() => [envoy, gateway, grpcClient, grpcByMetadata].every((s) => s.responses.length === 1), { description: 'first answers' });
    expect(envoy.responses[0]).toEqual({ clusters: [V1, V2], load_reporting_interval: INTERVAL });
    expect(gateway.responses[0]).toEqual({ clusters: [V1, V2], load_reporting_interval: INTERVAL });
    expect(grpcClient.responses[0]).toEqual({ send_all_clusters: true, load_reporting_interval: INTERVAL });
    expect(grpcByMetadata.responses[0]).toEqual({ send_all_clusters: true, load_reporting_interval: INTERVAL });

    envoy.call.write({ cluster_stats: [stats(V2, 7, 3)] });
    grpcClient.call.write({ cluster_stats: [stats(V2, 5, 0)] });
    await waitFor(() => figures(V2).completed === 15, { description: 'both reports in the window' });
    expect(figures(V2)).toMatchObject({ succeeded: 12, failed: 3, proxies: 2 });
  });

  it('a new answer on the open stream when the Canary goes and comes back; none when the set stays', async () => {
    const envoy = open(ENVOY_NODE);
    const grpcClient = open(GRPC_NODE);
    await waitFor(() => envoy.responses.length === 1 && grpcClient.responses.length === 1, { description: 'first answers' });
    expect(clustersOf(envoy.responses[0])).toEqual({ clusters: [V1, V2], sendAll: false });

    // A change that leaves the judged clusters as they were: a new model, no new answer.
    const generation = cp.cache.generation;
    const services = path.join(dir, 'services.yaml');
    fs.writeFileSync(services, fs.readFileSync(services, 'utf8').replace('ports: { grpc: 19080 }', 'ports: { grpc: 19180 }'));
    await waitFor(() => cp.cache.generation > generation, { description: 'the edit served' });
    expect(envoy.responses.length).toBe(1);

    const canary = fs.readFileSync(path.join(dir, 'canary.yaml'), 'utf8');
    fs.rmSync(path.join(dir, 'canary.yaml'));
    await waitFor(() => envoy.responses.length === 2, { description: 'an answer after the Canary went' });
    expect(clustersOf(envoy.responses[1])).toEqual({ clusters: [], sendAll: false });
    expect(envoy.responses[1]!.load_reporting_interval).toEqual(INTERVAL);
    // An Envoy connecting now is asked for nothing either.
    const late = open(ENVOY_NODE);
    await waitFor(() => late.responses.length === 1, { description: "the late Envoy's answer" });
    expect(clustersOf(late.responses[0])).toEqual({ clusters: [], sendAll: false });

    fs.writeFileSync(path.join(dir, 'canary.yaml'), canary);
    await waitFor(() => envoy.responses.length === 3 && late.responses.length === 2, { description: 'answers after the Canary came back' });
    expect(clustersOf(envoy.responses[2])).toEqual({ clusters: [V1, V2], sendAll: false });
    expect(clustersOf(late.responses[1])).toEqual({ clusters: [V1, V2], sendAll: false });
    // gRPC clients were asked once, for everything, and that stands.
    expect(grpcClient.responses.length).toBe(1);
  });
});
