// Load reports decide canaries, so they are heard under the xDS server's identity rule: with
// --xds-require-identity a stream without a workload certificate is refused, and a node that claims
// another namespace than its certificate proves is refused; the workload's own node is heard.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterEach, describe, expect, it } from 'vitest';
import { PROTO_INCLUDE_DIRS } from '../control-plane/envoy/protos.ts';
import { startControlPlane } from '../control-plane/server.ts';
import { caClient, createCertificate, credentials, type ClientTls } from './helpers/ca-client.ts';
import { workloadCsr } from './helpers/ca-certs.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';

const ID = 'spiffe://cluster.local/ns/default/sa/productpage';
const TOKEN = 'bootstrap-token-productpage-0123456789';
const CLUSTER = 'outbound|9080|v1|reviews.default.svc.cluster.local';
const teardown = new Teardown();
afterEach(() => teardown.run());

function lrsStream(address: string, tls: ClientTls, nodeId: string) {
  const def = protoLoader.loadSync('envoy/service/load_stats/v3/lrs.proto', { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true, includeDirs: [...PROTO_INCLUDE_DIRS] });
  const Ctor = (grpc.loadPackageDefinition(def) as any).envoy.service.load_stats.v3.LoadReportingService;
  const client = new Ctor(address, credentials(tls)) as grpc.Client & { StreamLoadStats(): grpc.ClientDuplexStream<object, object> };
  const call = client.StreamLoadStats();
  const out: { error?: grpc.ServiceError; answers: number } = { answers: 0 };
  call.on('error', (e: grpc.ServiceError) => (out.error = e));
  call.on('data', () => out.answers++);
  call.write({ node: { id: nodeId, user_agent_name: 'gRPC Node Pure JS' } });
  call.write({ cluster_stats: [{ cluster_name: CLUSTER, upstream_locality_stats: [{ total_successful_requests: '5', total_error_requests: '0', total_issued_requests: '5', total_requests_in_progress: '0' }] }] });
  teardown.add(() => (call.cancel(), client.close()));
  return out;
}

describe('load reports under --xds-require-identity', () => {
  it('refuses a stream without a certificate and a node claiming another namespace; hears the workload itself', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshpilot-lrs-id-'));
    teardown.add(() => rmSync(dir, { recursive: true, force: true }));
    mkdirSync(join(dir, 'rules'));
    writeFileSync(join(dir, 'tokens'), `${TOKEN} default productpage\n`, { mode: 0o600 });
    const cp = await startControlPlane({ configDir: join(dir, 'rules'), xdsListen: '127.0.0.1:0', adminListen: null, logger: captureLogs().logger, xdsTls: { dir: join(dir, 'ca'), tokensFile: join(dir, 'tokens'), requireIdentity: true } });
    teardown.add(() => cp.stop());
    const rootPem = readFileSync(cp.ca!.trustBundlePath, 'utf8');
    const w = await workloadCsr([ID]);
    const ca = caClient(cp.xdsAddress, { rootPem });
    teardown.add(() => ca.close());
    const chain = await createCertificate(ca, w.csrPem, { token: TOKEN });
    const mine = { rootPem, certChainPem: chain[0]!, keyPem: w.keyPem };

    const anon = lrsStream(cp.xdsAddress, { rootPem }, 'sidecar~10.0.0.2~anon-1.default~default.svc.cluster.local');
    const other = lrsStream(cp.xdsAddress, mine, 'sidecar~10.0.0.1~productpage-1.shop~shop.svc.cluster.local');
    await waitFor(() => anon.error !== undefined && other.error !== undefined, { description: 'both refused' });
    expect(anon.error!.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(other.error!.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(other.error!.details).toMatch(/claims namespace shop/);
    expect(cp.load.recent(CLUSTER).completed).toBe(0);

    const own = lrsStream(cp.xdsAddress, mine, 'sidecar~10.0.0.1~productpage-1.default~default.svc.cluster.local');
    await waitFor(() => cp.load.recent(CLUSTER).completed === 5, { description: "the workload's own report" });
    expect(own.error).toBeUndefined();
    expect(own.answers).toBe(1);
  });
});
