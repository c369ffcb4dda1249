// End to end: mutual TLS between real proxyless gRPC peers configured by meshpilot. ratings v1 is
// a grpc-js-xds XdsServer with XdsServerCredentials; callers are grpc-js-xds clients with
// XdsChannelCredentials (insecure fallback). Each has its own certificate (URI SAN = its SPIFFE ID,
// signed by a test CA) behind bootstrap `certificate_providers.default` (file_watcher), as the node
// agent sets them up. Nothing here inspects xDS: a wrong TLS context fails or admits calls.
import './helpers/xds-rbac-env.ts'; // before grpc-js-xds is loaded: the server runs RBAC filters
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CertificateAuthority } from '../control-plane/tls/certs.ts';
import { explain } from '../control-plane/explain/explain.ts';
import { createCA, workloadIdentity } from './helpers/mesh-identities.ts';
import { replaceFile } from './helpers/mesh-files.ts';
import { ISTIO_MUTUAL, ONLY_PRODUCTPAGE, peerAuth, RATINGS, ratingsEntry, settlesOn } from './helpers/mtls-rules.ts';
import { startTestMesh, Teardown, type TestMesh } from './helpers/test-mesh.ts';
import type { XdsClient } from './helpers/xds-client.ts';
import { reserveLoopbackPort, startXdsEchoServer } from './helpers/xds-server.ts';

const TD = 'cluster.local';
const teardown = new Teardown();
afterEach(() => teardown.run());

let ca: CertificateAuthority;
let certDir: string;
beforeAll(async () => {
  ca = await createCA('meshpilot test mesh CA');
  certDir = await mkdtemp(path.join(os.tmpdir(), 'meshpilot-mtls-certs-'));
  return () => rm(certDir, { recursive: true, force: true });
});

const identity = (sa: string) => workloadIdentity(ca, path.join(certDir, `${sa}-${Math.random().toString(36).slice(2)}`), `spiffe://${TD}/ns/default/sa/${sa}`);

interface Mesh { mesh: TestMesh; port: number }

async function startMesh(files: Record<string, string>, serverSa = 'ratings'): Promise<Mesh> {
  const port = await reserveLoopbackPort();
  const mesh = await startTestMesh(teardown, { backends: [], files: { 'ratings.yaml': ratingsEntry(port, serverSa), ...files }, prefix: 'mtls' });
  expect(mesh.cp.state().errors, 'rule errors').toEqual([]);
  const server = await startXdsEchoServer({
    xdsAddress: mesh.cp.xdsAddress,
    service: 'ratings',
    version: 'v1',
    port,
    certificateProviders: await identity(serverSa),
    credentials: new grpcXds.XdsServerCredentials(grpc.ServerCredentials.createInsecure()),
  });
  teardown.add(() => server.stop());
  return { mesh, port };
}

/** A caller with its service account's certificate; `tls: false` = plaintext (insecure credentials). */
async function caller(m: Mesh, sa: string, tls = true): Promise<XdsClient> {
  return m.mesh.client({
    labels: { app: sa, version: 'v1' },
    serviceAccount: sa,
    certificateProviders: await identity(sa),
    credentials: tls ? new grpcXds.XdsChannelCredentials(grpc.credentials.createInsecure()) : grpc.credentials.createInsecure(),
  });
}

describe('mTLS between proxyless gRPC peers', () => {
  it('STRICT: an ISTIO_MUTUAL caller gets through, a plaintext caller is refused; an AuthorizationPolicy on principals admits only productpage', async () => {
    const m = await startMesh({ 'mtls.yaml': `${peerAuth('STRICT')}---\n${ISTIO_MUTUAL}` });
    const productpage = await caller(m, 'productpage');
    const reviews = await caller(m, 'reviews');
    const plaintext = await caller(m, 'productpage', false);
    await settlesOn(productpage, 'ok', 'productpage over mTLS');
    await settlesOn(reviews, 'ok', 'reviews over mTLS (no policy yet)');
    await settlesOn(plaintext, 'UNAVAILABLE', 'a plaintext caller refused by the STRICT server');

    await replaceFile(m.mesh.dir, 'authz.yaml', ONLY_PRODUCTPAGE);
    await settlesOn(reviews, 'PERMISSION_DENIED', 'reviews denied by principal');
    await settlesOn(productpage, 'ok', 'productpage still admitted');

    // explain, from the callers' live xDS identities, agrees with what the calls got.
    const connected = [...m.mesh.cp.ads.streams].flatMap((s) => (s.proxy ? [s.proxy] : []));
    const explainFor = (c: XdsClient) => explain(m.mesh.cp.state(), { from: c.nodeId, request: `${RATINGS}/meshpilot.demo.v1.Echo/Call` }, connected);
    const pp = explainFor(productpage);
    expect(pp.decision).toBe('allow');
    expect(pp.destinations[0]!.inbound[0]!.tls).toMatchObject({ caller: 'mTLS', callee: 'mTLS only', result: 'mTLS', identity: `spiffe://${TD}/ns/default/sa/productpage`, accepts: [`spiffe://${TD}/ns/default/sa/ratings`] });
    expect(explainFor(reviews).decision).toBe('deny');
  });

  it('the caller checks the server identity: a server whose certificate is not the service account the mesh knows is refused', async () => {
    // The ServiceEntry says ratings runs as "ratings-other"; the server's certificate says "ratings".
    const port = await reserveLoopbackPort();
    const mesh = await startTestMesh(teardown, { backends: [], files: { 'ratings.yaml': ratingsEntry(port, 'ratings-other'), 'mtls.yaml': `${peerAuth('STRICT')}---\n${ISTIO_MUTUAL}` }, prefix: 'mtls' });
    const server = await startXdsEchoServer({ xdsAddress: mesh.cp.xdsAddress, service: 'ratings', version: 'v1', port, certificateProviders: await identity('ratings'), credentials: new grpcXds.XdsServerCredentials(grpc.ServerCredentials.createInsecure()) });
    teardown.add(() => server.stop());
    const productpage = await caller({ mesh, port }, 'productpage');
    await settlesOn(productpage, 'UNAVAILABLE', 'a server with an unexpected SPIFFE ID refused');
    await replaceFile(mesh.dir, 'ratings.yaml', ratingsEntry(port, 'ratings'));
    await settlesOn(productpage, 'ok', 'the right identity accepted once the mesh knows it');
  });

  it('PERMISSIVE and DISABLE: a proxyless server takes plaintext (gRPC clients get no auto mTLS); an identity rule then refuses everyone, with a warning', async () => {
    const m = await startMesh({ 'mtls.yaml': peerAuth('PERMISSIVE') });
    expect(m.mesh.cp.state().warnings.map((w) => w.message).join('\n')).toMatch(/PERMISSIVE on GRPC ports .*proxyless gRPC server takes plaintext only/);
    const productpage = await caller(m, 'productpage');
    await settlesOn(productpage, 'ok', 'plaintext under PERMISSIVE');
    await replaceFile(m.mesh.dir, 'mtls.yaml', peerAuth('DISABLE'));
    await replaceFile(m.mesh.dir, 'authz.yaml', ONLY_PRODUCTPAGE);
    await settlesOn(productpage, 'PERMISSION_DENIED', 'no identity over plaintext');
    expect(m.mesh.cp.state().warnings.map((w) => w.message).join('\n')).toMatch(/matches on caller identities, but mTLS is not in force/);
  });
});
