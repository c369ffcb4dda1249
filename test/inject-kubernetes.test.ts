// The webhook's two Kubernetes calls through the real @kubernetes/client-node, against a small fake
// API server on 127.0.0.1: reading a namespace's labels, and JSON-patching the caBundle of the
// MutatingWebhookConfiguration (right path, right patch content type, `test` ops honoured).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import fjp from 'fast-json-patch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureCaBundle, kubernetesWebhookConfigClient } from '../control-plane/webhook/ca-bundle.ts';
import { kubernetesNamespaceReader } from '../control-plane/webhook/namespace-labels.ts';

const namespaces: Record<string, object> = {
  shop: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'meshpilot.io/inject': 'enabled', 'kubernetes.io/metadata.name': 'shop' } } },
};
let mwc: any = {
  apiVersion: 'admissionregistration.k8s.io/v1',
  kind: 'MutatingWebhookConfiguration',
  metadata: { name: 'meshpilot-sidecar-injector', resourceVersion: '1' },
  webhooks: [
    { name: 'namespace.inject.meshpilot.io', admissionReviewVersions: ['v1'], sideEffects: 'None', clientConfig: { service: { name: 'meshpilot', namespace: 'meshpilot-system', path: '/inject' } } },
    { name: 'pod.inject.meshpilot.io', admissionReviewVersions: ['v1'], sideEffects: 'None', clientConfig: { service: { name: 'meshpilot', namespace: 'meshpilot-system', path: '/inject' }, caBundle: 'c3RhbGU=' } },
  ],
};
const requests: string[] = [];

function send(res: http.ServerResponse, code: number, body: object) {
  res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
function status(code: number, message: string) {
  return { apiVersion: 'v1', kind: 'Status', status: 'Failure', code, message };
}

const server = http.createServer((req, res) => {
  let body = '';
  req.on('data', (d) => (body += d));
  req.on('end', () => {
    requests.push(`${req.method} ${req.url} ${req.headers['content-type'] ?? ''}`.trim());
    const url = new URL(req.url!, 'http://x');
    const ns = /^\/api\/v1\/namespaces\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'GET' && ns) return namespaces[ns[1]!] ? send(res, 200, namespaces[ns[1]!]!) : send(res, 404, status(404, `namespaces "${ns[1]}" not found`));
    if (url.pathname === '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/meshpilot-sidecar-injector') {
      if (req.method === 'GET') return send(res, 200, mwc);
      if (req.method === 'PATCH') {
        if (req.headers['content-type'] !== 'application/json-patch+json') return send(res, 415, status(415, 'unsupported patch type'));
        try {
          mwc = fjp.applyPatch(structuredClone(mwc), JSON.parse(body), true, false).newDocument;
        } catch (e) {
          return send(res, 422, status(422, (e as Error).message));
        }
        mwc.metadata.resourceVersion = String(Number(mwc.metadata.resourceVersion) + 1);
        return send(res, 200, mwc);
      }
    }
    send(res, 404, status(404, 'not found'));
  });
});

let kc: KubeConfig;
beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  kc = new KubeConfig();
  kc.loadFromClusterAndUser({ name: 'fake', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }, { name: 'meshpilot', token: 'test-token' });
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('Kubernetes calls of the webhook (real client, fake API server)', () => {
  it('reads namespace labels, and a missing namespace is an error', async () => {
    const read = await kubernetesNamespaceReader(kc);
    expect(await read('shop')).toMatchObject({ 'meshpilot.io/inject': 'enabled' });
    await expect(read('nowhere')).rejects.toThrow();
    expect(requests).toContain('GET /api/v1/namespaces/shop');
  });

  it('sets the caBundle of both webhooks with one JSON Patch, then leaves it alone', async () => {
    const client = await kubernetesWebhookConfigClient(kc);
    expect(await ensureCaBundle(client, 'meshpilot-sidecar-injector', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n')).toBe(2);
    const expected = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n').toString('base64');
    expect(mwc.webhooks.map((w: any) => w.clientConfig.caBundle)).toEqual([expected, expected]);
    expect(mwc.webhooks[0].clientConfig.service.path).toBe('/inject');
    expect(requests.filter((r) => r.startsWith('PATCH'))).toEqual(['PATCH /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/meshpilot-sidecar-injector application/json-patch+json']);
    expect(await ensureCaBundle(client, 'meshpilot-sidecar-injector', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n')).toBe(0);
    expect(requests.filter((r) => r.startsWith('PATCH'))).toHaveLength(1);
  });

  it('does not overwrite a configuration whose webhooks changed in between (test op fails)', async () => {
    const client = await kubernetesWebhookConfigClient(kc);
    const stale = { read: async () => ({ webhooks: [{ name: 'renamed', clientConfig: {} }] }), patch: client.patch };
    await expect(ensureCaBundle(stale, 'meshpilot-sidecar-injector', 'NEW')).rejects.toThrow();
    expect(mwc.webhooks[0].clientConfig.caBundle).not.toBe(Buffer.from('NEW').toString('base64'));
  });
});
