// Kubernetes service account tokens as CA credentials: TokenReview through @kubernetes/client-node
// against the wire-level fake API server, bound to the CA's audience.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { startControlPlane } from '../control-plane/server.ts';
import { FakeApiServer } from './helpers/fake-apiserver.ts';
import { caClient, createCertificate } from './helpers/ca-client.ts';
import { workloadCsr } from './helpers/ca-certs.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { metricValue, scrape } from './helpers/admin-http.ts';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('CA authentication with Kubernetes TokenReview', () => {
  it('accepts a token for the CA audience, refuses one for another audience or an unknown token, and maps the service account to the identity', async () => {
    const api = await FakeApiServer.start('ca');
    cleanups.push(() => api.close());
    const dir = mkdtempSync(join(tmpdir(), 'meshpilot-ca-tr-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromString(api.kubeconfig());
    const cp = await startControlPlane({ configDir: dir, xdsListen: '127.0.0.1:0', adminListen: '127.0.0.1:0', logger: captureLogs().logger, xdsTls: { dir: join(dir, 'ca'), kubeConfig, tokenAudience: 'meshpilot-ca' } });
    cleanups.push(() => cp.stop());
    const c = caClient(cp.xdsAddress, { rootPem: readFileSync(cp.ca!.trustBundlePath, 'utf8') });
    cleanups.push(() => c.close());

    const csr = (await workloadCsr(['spiffe://cluster.local/ns/shop/sa/cart'])).csrPem;
    const good = api.serviceAccountToken('shop', 'cart', ['meshpilot-ca']);
    const chain = await createCertificate(c, csr, { token: good });
    expect(new X509Certificate(chain[0]!).subjectAltName).toBe('URI:spiffe://cluster.local/ns/shop/sa/cart');
    expect(api.requests.some((r) => r.method === 'POST' && r.path.endsWith('/tokenreviews') && r.status === 201)).toBe(true);

    // The same service account, but a token made for someone else: not a credential here.
    const elsewhere = api.serviceAccountToken('shop', 'cart', ['vault']);
    await expect(createCertificate(c, csr, { token: elsewhere })).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    const apiServerToken = api.serviceAccountToken('shop', 'cart');
    await expect(createCertificate(c, csr, { token: apiServerToken })).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    await expect(createCertificate(c, csr, { token: 'made-up' })).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    // A valid token asks only for its own identity.
    const orders = (await workloadCsr(['spiffe://cluster.local/ns/shop/sa/orders'])).csrPem;
    await expect(createCertificate(c, orders, { token: good })).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });

    // The API server unreachable: the CA cannot tell, says so (UNAVAILABLE), and counts an error.
    await api.stop();
    await expect(createCertificate(c, csr, { token: good })).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    const text = await scrape(`http://${cp.adminAddress}`);
    expect(metricValue(text, 'meshpilot_certs_issued_total', { outcome: 'issued' })).toBe(1);
    expect(metricValue(text, 'meshpilot_certs_issued_total', { outcome: 'unauthenticated' })).toBe(3);
    expect(metricValue(text, 'meshpilot_certs_issued_total', { outcome: 'denied' })).toBe(1);
    expect(metricValue(text, 'meshpilot_certs_issued_total', { outcome: 'error' })).toBe(1);
  });
});
