// The injected sidecar's Envoy bootstrap: after the kubelet fills in the downward-API values it
// must pass Envoy's schema check, and the node it names must get that workload's config from the
// real `meshpilot translate` (its inbound listener and cluster, the policy scoped to its labels).
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { IContainer } from 'kubernetes-models/v1/Container';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { INJECT } from '../control-plane/inject/annotations.ts';
import { loadInjectionConfig, type InjectionConfig } from '../control-plane/inject/config.ts';
import { XDS_CLUSTER } from '../control-plane/inject/bootstrap.ts';
import { injectPod, type PodLike } from '../control-plane/inject/inject-pod.ts';
import { PROXY_CONTAINER } from '../control-plane/inject/names.ts';
import { checkResource } from '../control-plane/envoy/check.ts';
import { loadDirectory } from '../control-plane/config/load.ts';
import { compile } from '../control-plane/model/compile.ts';
import { proxyFromNode } from '../control-plane/translate/proxy.ts';
import { translate } from '../control-plane/translate/translate.ts';
import { expandedArgs, type PodFacts } from './helpers/kubelet.ts';

const run = promisify(execFile);
const config = loadInjectionConfig();
const MESH = 'test/fixtures/inject-mesh';

function injectedSidecar(labels: Record<string, string>, settings: InjectionConfig = config): IContainer {
  const pod: PodLike = { apiVersion: 'v1', kind: 'Pod', metadata: { generateName: 'w-', labels }, spec: { containers: [{ name: 'app', image: 'example.com/app:1' }] } };
  const r = injectPod(pod, { namespace: 'bookinfo', namespaceLabels: { [INJECT]: 'enabled' }, path: [] }, settings);
  expect(r.injected).toBe(true);
  const sidecar = r.pod.spec!.initContainers!.find((c) => c.name === PROXY_CONTAINER);
  expect(sidecar).toBeDefined();
  return sidecar!;
}

/** The bootstrap Envoy would load: the --config-yaml argument after the kubelet's expansion. */
function bootstrapOf(sidecar: IContainer, facts: PodFacts): Record<string, any> {
  const args = expandedArgs(sidecar, facts);
  const at = args.indexOf('--config-yaml');
  expect(at).toBeGreaterThanOrEqual(0);
  return YAML.parse(args[at + 1]!);
}

function findEnvoy(): string | undefined {
  if (process.env.ENVOY_BIN) return process.env.ENVOY_BIN;
  return (process.env.PATH ?? '').split(path.delimiter).map((d) => path.join(d, 'envoy')).find((f) => fs.existsSync(f));
}
const envoy = findEnvoy();

const REVIEWS: PodFacts = { ip: '10.0.0.9', name: 'reviews-v1-7d9c-x2x4q', namespace: 'bookinfo', serviceAccount: 'bookinfo-reviews' };

describe('the injected Envoy bootstrap', () => {
  it('passes Envoy schema checks with every downward-API value filled in', () => {
    const boot = bootstrapOf(injectedSidecar({ app: 'reviews', version: 'v1' }), REVIEWS);
    expect(checkResource({ '@type': 'type.googleapis.com/envoy.config.bootstrap.v3.Bootstrap', ...boot })).toEqual([]);
    expect(JSON.stringify(boot)).not.toContain('$(');
    expect(boot.node.id).toBe('sidecar~10.0.0.9~reviews-v1-7d9c-x2x4q.bookinfo~bookinfo.svc.cluster.local');
    expect(boot.node.metadata).toEqual({ NAMESPACE: 'bookinfo', NAME: 'reviews-v1-7d9c-x2x4q', LABELS: { app: 'reviews', version: 'v1' }, SERVICE_ACCOUNT: 'bookinfo-reviews', INSTANCE_IPS: '10.0.0.9' });
    // Admin only on loopback; ADS to meshpilot's Service, on its TLS port, over mutual TLS with the
    // agent's SDS secrets (test/inject-xds-tls.test.ts shows a real handshake with them).
    expect(boot.admin.address.socket_address.address).toBe('127.0.0.1');
    const xds = boot.static_resources.clusters.find((c: { name: string }) => c.name === XDS_CLUSTER);
    expect(xds.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address).toEqual({ address: 'meshpilot.meshpilot-system.svc.cluster.local', port_value: 15012 });
    const tls = xds.transport_socket.typed_config;
    expect(tls['@type']).toBe('type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext');
    expect(tls.sni).toBe('meshpilot.meshpilot-system.svc.cluster.local');
    const sds = { api_config_source: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'sds-grpc' } }] }, resource_api_version: 'V3' };
    expect(tls.common_tls_context).toEqual({
      tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: sds }],
      combined_validation_context: {
        default_validation_context: { match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: 'meshpilot.meshpilot-system.svc.cluster.local' } }] },
        validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: sds },
      },
      alpn_protocols: ['h2'],
    });
  });

  it('xds.tls false: plaintext ADS to xds.port, no transport socket, still schema-valid', () => {
    const plain: InjectionConfig = { ...config, xds: { ...config.xds, tls: false } };
    const boot = bootstrapOf(injectedSidecar({ app: 'reviews', version: 'v1' }, plain), REVIEWS);
    expect(checkResource({ '@type': 'type.googleapis.com/envoy.config.bootstrap.v3.Bootstrap', ...boot })).toEqual([]);
    const xds = boot.static_resources.clusters.find((c: { name: string }) => c.name === XDS_CLUSTER);
    expect(xds.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address).toEqual({ address: 'meshpilot.meshpilot-system.svc.cluster.local', port_value: 15010 });
    expect(xds.transport_socket).toBeUndefined();
  });

  it('keeps a literal $ in a label as it is', () => {
    // Kubernetes would reject such a label, but `meshpilot inject` reads files it has not checked.
    const boot = bootstrapOf(injectedSidecar({ app: 'a$(MESHPILOT_POD_IP)b' }), REVIEWS);
    expect(boot.node.metadata.LABELS.app).toBe('a$(MESHPILOT_POD_IP)b');
  });

  it('round trip: `meshpilot translate` with the injected node gives that workload its inbound config and policy', async () => {
    const boot = bootstrapOf(injectedSidecar({ app: 'reviews', version: 'v1' }), REVIEWS);
    const { stdout } = await run(process.execPath, [path.resolve('bin/meshpilot.js'), 'translate', '--config-dir', MESH, '--node-id', boot.node.id, '--node-metadata', JSON.stringify(boot.node.metadata)], { timeout: 30_000 });
    const out = JSON.parse(stdout) as { node: { namespace: string; labels: Record<string, string> }; resources: Record<string, any>[] };
    expect(out.node).toMatchObject({ namespace: 'bookinfo', labels: { app: 'reviews', version: 'v1' } });
    const names = out.resources.map((r) => String(r.name ?? r.cluster_name));
    expect(names).toContain('inbound|9080||');
    const inbound = out.resources.find((r) => r.name === 'virtualInbound');
    expect(JSON.stringify(inbound)).toContain('ns[bookinfo]-policy[reviews-callers]-rule[0]');
  });

  it('a different workload (other labels and IP) does not get that config', () => {
    const boot = bootstrapOf(injectedSidecar({ app: 'ratings', version: 'v1' }), { ...REVIEWS, ip: '10.0.1.5', name: 'ratings-v1-1' });
    const proxy = proxyFromNode({ id: boot.node.id, metadata: boot.node.metadata });
    const res = translate(compile(loadDirectory(MESH)).model, proxy);
    const all = Object.values(res).flat() as Record<string, any>[];
    expect(all.map((r) => String(r.name ?? r.cluster_name))).toContain('inbound|9080||');
    expect(JSON.stringify(all.find((r) => r.name === 'virtualInbound'))).not.toContain('reviews-callers');
  });
});

// Envoy in the loop where it exists (skipped here: no Envoy binary on these machines). The sidecar's
// real arguments, after the kubelet's expansion, given to `envoy --mode validate`.
describe.skipIf(!envoy)('Envoy accepts the injected sidecar', () => {
  it('envoy --mode validate with the container\'s own args', () => {
    const args = expandedArgs(injectedSidecar({ app: 'reviews', version: 'v1' }), REVIEWS);
    const out = execFileSync(envoy!, ['--mode', 'validate', ...args], { encoding: 'utf8' });
    expect(out).toMatch(/OK/);
  });
});
