// credentialName with a real Envoy, where Envoy exists: an egress gateway (node type router)
// originates mutual TLS for a DestinationRule `tls: { mode: MUTUAL, credentialName }`, with the
// client certificate and the CA fetched over its ADS stream as SDS secrets `kubernetes://<name>`
// and `kubernetes://<name>-cacert` (served from `serve --credentials-dir`). The upstream is a
// node:tls server that requires a client certificate of its CA and answers with the subject it
// saw. Set ENVOY_BIN or put `envoy` on PATH to run it; without it only the first describe runs
// (the bootstrap and the gateway's cluster against Envoy's schema). Traffic enters through a
// static tcp_proxy listener on the gateway's CDS cluster (no LDS: test/helpers/envoy-bootstrap.ts).
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { checkResource } from '../control-plane/envoy/check.ts';
import { compile } from '../control-plane/model/compile.ts';
import { startControlPlane } from '../control-plane/server.ts';
import { createCA, issueServingCert } from '../control-plane/tls/certs.ts';
import { proxyFromNode } from '../control-plane/translate/proxy.ts';
import { translate } from '../control-plane/translate/translate.ts';
import { CLUSTER } from '../control-plane/translate/type-urls.ts';
import { BOOTSTRAP_TYPE, testBootstrap, type Json } from './helpers/envoy-bootstrap.ts';
import { findEnvoy, reservePort, startEnvoy } from './helpers/envoy-process.ts';
import { Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';

const envoy = findEnvoy();
if (!envoy) console.log('envoy-e2e-credentials: no envoy binary (ENVOY_BIN or PATH); the Envoy-in-the-loop test is skipped, only its bootstrap and cluster checks run');

const teardown = new Teardown();
afterEach(() => teardown.run());

const GATEWAY_ID = 'router~127.0.0.1~egress-1.default~default.svc.cluster.local';
const CLUSTER_NAME = 'outbound|443||bank.example.com';

function rules(upstreamPort: number): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: bank, namespace: default }
spec:
  hosts: [bank.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: 443, name: tls, protocol: TLS }]
  endpoints: [{ address: 127.0.0.1, ports: { tls: ${upstreamPort} } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: bank, namespace: default }
spec:
  host: bank.example.com
  trafficPolicy:
    tls: { mode: MUTUAL, credentialName: bank-client, sni: bank.example.com, subjectAltNames: [bank.example.com] }
`;
}

/** The gateway's bootstrap: its router node, ADS to meshpilot, one tcp_proxy entry on the DestinationRule's cluster. */
function gatewayBootstrap(xdsAddress: string, entryPort: number): Json {
  const base = testBootstrap({ workload: { pod: 'egress-1', namespace: 'default', ip: '127.0.0.1', labels: {} }, xdsAddress, entries: [] });
  return {
    ...base,
    node: { id: GATEWAY_ID, cluster: 'egress.default', metadata: { NAMESPACE: 'default' } },
    static_resources: {
      ...base.static_resources,
      listeners: [{
        name: 'entry',
        address: { socket_address: { address: '127.0.0.1', port_value: entryPort } },
        filter_chains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', stat_prefix: 'entry', cluster: CLUSTER_NAME } }] }],
      }],
    },
  };
}

describe('credentialName at a gateway: what Envoy would be given', () => {
  it('the bootstrap and the gateway cluster (SDS over ADS) pass Envoy\'s schema', () => {
    expect(checkResource({ '@type': BOOTSTRAP_TYPE, ...gatewayBootstrap('127.0.0.1:15010', 15999) })).toEqual([]);
    const model = compile(parseConfigText('rules.yaml', rules(8443))).model;
    const cluster = translate(model, proxyFromNode({ id: GATEWAY_ID, metadata: { NAMESPACE: 'default' } }))[CLUSTER].find((c) => c.name === CLUSTER_NAME)!;
    expect(checkResource(cluster)).toEqual([]);
    const common = (cluster.transport_socket as Json).typed_config.common_tls_context;
    expect(common.tls_certificate_sds_secret_configs[0]).toEqual({ name: 'kubernetes://bank-client', sds_config: { ads: {}, resource_api_version: 'V3' } });
    expect(common.combined_validation_context.validation_context_sds_secret_config.name).toBe('kubernetes://bank-client-cacert');
  });
});

describe.skipIf(!envoy)('credentialName at a gateway, with Envoy', () => {
  it('Envoy originates mutual TLS with the client certificate and CA of the credential', async () => {
    const serverCa = await createCA('bank server CA');
    const clientCa = await createCA('bank client CA');
    const serverCert = await issueServingCert(serverCa, { dnsNames: ['bank.example.com'] });
    const clientCert = await issueServingCert(clientCa, { dnsNames: ['egress.default'], clientAuth: true });
    const upstream = tls.createServer({ cert: serverCert.certPem, key: serverCert.keyPem, ca: clientCa.certPem, requestCert: true, rejectUnauthorized: true }, (s) => {
      s.end(`hello ${(s.getPeerCertificate().subject as { CN?: string }).CN}`);
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    teardown.add(() => new Promise<void>((resolve) => upstream.close(() => resolve())));
    const upstreamPort = (upstream.address() as net.AddressInfo).port;

    const dir = await mkdtemp(path.join(os.tmpdir(), 'meshpilot-envoy-creds-'));
    teardown.add(() => rm(dir, { recursive: true, force: true }));
    await mkdir(path.join(dir, 'rules'));
    await mkdir(path.join(dir, 'creds', 'default', 'bank-client'), { recursive: true });
    await writeFile(path.join(dir, 'rules', 'bank.yaml'), rules(upstreamPort));
    await writeFile(path.join(dir, 'creds', 'default', 'bank-client', 'tls.crt'), clientCert.certPem);
    await writeFile(path.join(dir, 'creds', 'default', 'bank-client', 'tls.key'), clientCert.keyPem);
    await writeFile(path.join(dir, 'creds', 'default', 'bank-client', 'ca.crt'), serverCa.certPem);
    const cp = await startControlPlane({ configDir: path.join(dir, 'rules'), credentialsDir: path.join(dir, 'creds'), xdsListen: '127.0.0.1:0', adminListen: null, debounceMs: 20, logLevel: 'silent' });
    teardown.add(() => cp.stop());

    const entryPort = await reservePort();
    await startEnvoy(teardown, { envoy: envoy!, name: 'egress', bootstrap: gatewayBootstrap(cp.xdsAddress, entryPort) });
    let reply = '';
    await waitFor(async () => {
      reply = await new Promise<string>((resolve, reject) => {
        const c = net.connect(entryPort, '127.0.0.1');
        let data = '';
        c.on('data', (d) => (data += d));
        c.on('end', () => resolve(data));
        c.on('error', reject);
      });
      return reply !== '';
    }, { timeoutMs: 20_000, description: 'a reply through the gateway (its cluster warm with both SDS secrets)' });
    expect(reply).toBe('hello egress.default');
  });
});
