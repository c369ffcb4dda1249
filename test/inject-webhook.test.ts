// The admission webhook over real HTTPS (Node's https client, a CA made for the test), with
// AdmissionReview v1 bodies as the API server sends them, and the documented answers to bad input.
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INJECT } from '../control-plane/inject/annotations.ts';
import { loadInjectionConfig } from '../control-plane/inject/config.ts';
import { AGENT_CONTAINER, INIT_CONTAINER, PROXY_CONTAINER } from '../control-plane/inject/names.ts';
import { applyPatch } from '../control-plane/inject/patch.ts';
import { createCA, issueServingCert, type CertificateAuthority } from '../control-plane/tls/certs.ts';
import type { AdmissionOutcome } from '../control-plane/webhook/admission.ts';
import { ensureCaBundle, type PatchOp, type WebhookConfigClient, type WebhookConfiguration } from '../control-plane/webhook/ca-bundle.ts';
import { cachedNamespaceLabels } from '../control-plane/webhook/namespace-labels.ts';
import { selfSignedCert } from '../control-plane/webhook/serving-cert.ts';
import { startWebhookServer, type WebhookServer } from '../control-plane/webhook/server.ts';
import { runWebhook } from '../control-plane/webhook/webhook-command.ts';
import { silentLogger } from '../control-plane/log.ts';
import { kubernetesProblems } from './helpers/k8s-schema.ts';
import { waitFor } from './helpers/wait.ts';

const config = loadInjectionConfig();
const NAMESPACES: Record<string, Record<string, string>> = { shop: { [INJECT]: 'enabled' }, plain: {} };

interface Reply {
  status: number;
  body: any;
}

function post(server: WebhookServer, ca: string, body: string | Buffer, contentType = 'application/json'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(`${server.url}/inject`, { method: 'POST', ca, headers: { 'content-type': contentType } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

function pod(namespace: string, annotations: Record<string, string> = {}) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { generateName: 'web-5d8f-', namespace, labels: { app: 'web' }, annotations },
    spec: { containers: [{ name: 'web', image: 'example.com/web:1', ports: [{ containerPort: 8080 }] }] },
  };
}

function review(uid: string, object: unknown, namespace = 'shop', kind = { group: '', version: 'v1', kind: 'Pod' }, operation = 'CREATE') {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid, kind, resource: { group: '', version: 'v1', resource: 'pods' }, operation, namespace, object, userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller' }, dryRun: false } };
}

function peerSerial(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const serial = s.getPeerCertificate().serialNumber;
      s.end();
      resolve(serial);
    });
    s.on('error', reject);
  });
}

describe('admission webhook over HTTPS', () => {
  let ca: CertificateAuthority;
  let server: WebhookServer;
  const outcomes: AdmissionOutcome[] = [];
  const reads: string[] = [];

  beforeAll(async () => {
    ca = await createCA('webhook-test-ca');
    const served = await issueServingCert(ca, { ipAddresses: ['127.0.0.1'] });
    const namespaceLabels = cachedNamespaceLabels(async (name) => {
      reads.push(name);
      if (!(name in NAMESPACES)) throw new Error(`namespaces "${name}" is forbidden`);
      return NAMESPACES[name]!;
    });
    server = await startWebhookServer({
      host: '127.0.0.1',
      port: 0,
      cert: { cert: served.certPem, key: served.keyPem },
      deps: { config, namespaceLabels },
      maxBodyBytes: 64 * 1024,
      onAdmission: (outcome, seconds) => {
        expect(seconds).toBeGreaterThanOrEqual(0);
        outcomes.push(outcome);
      },
    });
  });
  afterAll(async () => server?.stop());

  it('injects a pod in an opted-in namespace: same uid, a JSONPatch that yields a valid injected pod', async () => {
    const p = pod('shop');
    const r = await post(server, ca.certPem, JSON.stringify(review('7f3a-1', p)));
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: '7f3a-1', allowed: true, patchType: 'JSONPatch' } });
    const patched = applyPatch(p, JSON.parse(Buffer.from(r.body.response.patch, 'base64').toString()));
    expect(patched.spec.containers).toEqual(p.spec.containers);
    expect((patched.spec as any).initContainers.map((c: { name: string }) => c.name)).toEqual([INIT_CONTAINER, AGENT_CONTAINER, PROXY_CONTAINER]);
    expect(kubernetesProblems(patched)).toEqual([]);
    expect(outcomes.at(-1)).toBe('injected');
  });

  it('leaves pods alone that are not selected (no patch)', async () => {
    for (const [uid, object, ns] of [['u-out', pod('shop', { [INJECT]: 'false' }), 'shop'], ['u-plain', pod('plain'), 'plain']] as const) {
      const r = await post(server, ca.certPem, JSON.stringify(review(uid, object, ns)));
      expect(r.status).toBe(200);
      expect(r.body.response).toEqual({ uid, allowed: true });
      expect(outcomes.at(-1)).toBe('skipped');
    }
  });

  it('rejects a pod whose annotation it cannot read, naming the annotation', async () => {
    const r = await post(server, ca.certPem, JSON.stringify(review('u-bad', pod('shop', { 'meshpilot.io/exclude-inbound-ports': '80,http' }))));
    expect(r.status).toBe(200);
    expect(r.body.response.uid).toBe('u-bad');
    expect(r.body.response.allowed).toBe(false);
    expect(r.body.response.status.code).toBe(400);
    expect(r.body.response.status.message).toMatch(/metadata\.annotations\["meshpilot\.io\/exclude-inbound-ports"\]: "http" is not a port/);
    expect(outcomes.at(-1)).toBe('rejected');
  });

  it('answers malformed reviews with 400 and a message naming what is wrong', async () => {
    const cases: [string, RegExp][] = [
      ['{"apiVersion": "admission.k8s.io/v1", "kind": ', /not JSON/],
      [JSON.stringify({ ...review('x', pod('shop')), apiVersion: 'admission.k8s.io/v1beta1' }), /apiVersion: expected apiVersion admission\.k8s\.io\/v1/],
      [JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { ...review('x', pod('shop')).request, uid: '' } }), /request\.uid: must not be empty/],
      [JSON.stringify(review('x', 'not a pod')), /request\.object: expected the pod/],
      ['[]', /\(body\)|expected/],
    ];
    for (const [body, message] of cases) {
      const r = await post(server, ca.certPem, body);
      expect(r.status, body).toBe(400);
      expect(r.body.error).toMatch(message);
      expect(outcomes.at(-1)).toBe('rejected');
    }
  });

  it('allows other kinds and operations unchanged, with a warning (the documented choice)', async () => {
    const deployment = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' }, spec: {} };
    const r = await post(server, ca.certPem, JSON.stringify(review('u-dep', deployment, 'shop', { group: 'apps', version: 'v1', kind: 'Deployment' })));
    expect(r.status).toBe(200);
    expect(r.body.response).toMatchObject({ uid: 'u-dep', allowed: true });
    expect(r.body.response.patch).toBeUndefined();
    expect(r.body.response.warnings[0]).toMatch(/pods on CREATE only; apps\/v1 Deployment CREATE allowed unchanged/);
    const update = await post(server, ca.certPem, JSON.stringify(review('u-upd', pod('shop'), 'shop', undefined, 'UPDATE')));
    expect(update.body.response.patch).toBeUndefined();
  });

  it('refuses oversized bodies (413) and other content types (415)', async () => {
    const big = pod('shop', { filler: 'x'.repeat(100 * 1024) });
    const r = await post(server, ca.certPem, JSON.stringify(review('u-big', big)));
    expect(r.status).toBe(413);
    expect(r.body.error).toMatch(/larger than 65536 bytes/);
    const t = await post(server, ca.certPem, JSON.stringify(review('u-txt', pod('shop'))), 'text/plain');
    expect(t.status).toBe(415);
    // The content type decides before the body is read: not JSON, and not said to be, is still a 415.
    const garbage = await post(server, ca.certPem, 'not json at all', 'text/plain');
    expect(garbage.status).toBe(415);
    expect(garbage.body.error).toBe('expected Content-Type: application/json');
    expect(outcomes.at(-1)).toBe('rejected');
    // Any other path is a JSON 404 too, not express's HTML page.
    const wrong = await new Promise<Reply>((resolve, reject) => {
      https.get(`${server.url}/mutate`, { ca: ca.certPem }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      }).on('error', reject);
    });
    expect(wrong).toEqual({ status: 404, body: { error: 'no such endpoint: GET /mutate' } });
  });

  it('answers hostile pods with 400 naming the problem, never 500', async () => {
    // 30000 levels (60 KB, under this server's cap) overflow the stack of a recursive copy or compare.
    const deepText = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);
    const withExtra = (uid: string, extra: string) => JSON.stringify(review(uid, { ...pod('shop'), extra: 'X' })).replace('"X"', extra);
    const deep = await post(server, ca.certPem, withExtra('u-deep', deepText(30_000)));
    expect(deep.status).toBe(400);
    expect(deep.body.error).toBe('malformed AdmissionReview: request.object: nested more than 100 levels deep');
    expect(outcomes.at(-1)).toBe('rejected');
    // The limit counts the pod as level 1: 100 levels pass, 101 do not.
    expect((await post(server, ca.certPem, withExtra('u-100', deepText(99)))).status).toBe(200);
    expect((await post(server, ca.certPem, withExtra('u-101', deepText(100)))).status).toBe(400);

    const cases: [unknown, string][] = [
      [{ ...pod('shop'), spec: { containers: [null] } }, 'request.object.spec.containers.0: '],
      [{ ...pod('shop'), spec: { containers: [{ name: 'web' }], initContainers: [7] } }, 'request.object.spec.initContainers.0: '],
      [{ ...pod('shop'), metadata: { labels: { app: 1 } } }, 'request.object.metadata.labels.app: '],
      [{ ...pod('shop'), metadata: 'web' }, 'request.object.metadata: '],
      [{ ...pod('shop'), spec: { containers: [{ name: 'web' }], hostNetwork: 'false' } }, 'request.object.spec.hostNetwork: '],
    ];
    for (const [object, field] of cases) {
      const r = await post(server, ca.certPem, JSON.stringify(review('u-shape', object)));
      expect(r.status, JSON.stringify(object)).toBe(400);
      expect(r.body.error).toContain(`malformed AdmissionReview: ${field}`);
    }
  });

  it('answers 500 when the namespace cannot be read, so failurePolicy decides', async () => {
    const r = await post(server, ca.certPem, JSON.stringify(review('u-ns', pod('secret'), 'secret')));
    expect(r.status).toBe(500);
    expect(r.body.error).toMatch(/cannot read namespace secret: namespaces "secret" is forbidden/);
    expect(outcomes.at(-1)).toBe('error');
  });

  it('reads each namespace once for a burst of pods', async () => {
    const before = reads.filter((n) => n === 'plain').length;
    await Promise.all([1, 2, 3, 4].map((i) => post(server, ca.certPem, JSON.stringify(review(`b-${i}`, pod('plain'), 'plain')))));
    expect(reads.filter((n) => n === 'plain').length - before).toBe(0); // read once, in an earlier test
    expect(reads.filter((n) => n === 'plain').length).toBe(1);
  });
});

describe('webhook certificates', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-webhook-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('serves a rotated certificate from the mounted files without a restart', async () => {
    const ca = await createCA('rotation-ca');
    const first = await issueServingCert(ca, { dnsNames: ['localhost'] });
    const certFile = path.join(tmp, 'tls.crt');
    const keyFile = path.join(tmp, 'tls.key');
    fs.writeFileSync(certFile, first.certPem);
    fs.writeFileSync(keyFile, first.keyPem);
    const server = await startWebhookServer({ host: '127.0.0.1', port: 0, cert: { cert: first.certPem, key: first.keyPem }, certFiles: { cert: certFile, key: keyFile }, deps: { config, namespaceLabels: async () => ({}) } });
    try {
      const before = await peerSerial(server.port, ca.certPem);
      const second = await issueServingCert(ca, { dnsNames: ['localhost'] });
      // As a Secret volume update does: new files appear in place of the old ones.
      fs.writeFileSync(`${keyFile}.new`, second.keyPem);
      fs.writeFileSync(`${certFile}.new`, second.certPem);
      fs.renameSync(`${keyFile}.new`, keyFile);
      fs.renameSync(`${certFile}.new`, certFile);
      let after = before;
      await waitFor(async () => (after = await peerSerial(server.port, ca.certPem)) !== before, { timeoutMs: 10_000, description: 'new certificate served' });
      expect(after).not.toBe(before);
      // A certificate that does not match the key is refused; the current one stays.
      const other = await issueServingCert(ca, { dnsNames: ['localhost'] });
      expect(() => server.reloadCertificate({ cert: other.certPem, key: second.keyPem })).toThrow();
      expect(await peerSerial(server.port, ca.certPem)).toBe(after);
    } finally {
      await server.stop();
    }
  });

  it('uses a certificate mounted in --cert-dir, and makes its own when none is mounted', async () => {
    const ca = await createCA('mounted-ca');
    const mounted = await issueServingCert(ca, { dnsNames: ['localhost'] });
    const dir = fs.mkdtempSync(path.join(tmp, 'mounted-'));
    fs.writeFileSync(path.join(dir, 'tls.crt'), mounted.certPem);
    fs.writeFileSync(path.join(dir, 'tls.key'), mounted.keyPem);
    const common = { host: '127.0.0.1', port: 0, service: 'meshpilot', serviceNamespace: 'meshpilot-system', namespaceLabels: {}, logger: silentLogger };
    const withMount = await runWebhook({ ...common, certDir: dir });
    try {
      await expect(peerSerial(withMount.port, ca.certPem)).resolves.toBeTruthy();
    } finally {
      await withMount.stop();
    }
    const empty = fs.mkdtempSync(path.join(tmp, 'empty-'));
    const selfMade = await runWebhook({ ...common, certDir: empty });
    try {
      await expect(peerSerial(selfMade.port, ca.certPem)).rejects.toThrow();
      const issuer = await new Promise<string>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: selfMade.port, rejectUnauthorized: false }, () => {
          resolve(String(s.getPeerCertificate().issuer.CN));
          s.end();
        });
        s.on('error', reject);
      });
      expect(issuer).toBe('meshpilot-webhook-ca');
    } finally {
      await selfMade.stop();
    }
  });

  it('meshpilot webhook counts admissions by outcome at its own GET /metrics', async () => {
    const ca = await createCA('metrics-ca');
    const serving = await issueServingCert(ca, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    const dir = fs.mkdtempSync(path.join(tmp, 'metrics-'));
    fs.writeFileSync(path.join(dir, 'tls.crt'), serving.certPem);
    fs.writeFileSync(path.join(dir, 'tls.key'), serving.keyPem);
    const server = await runWebhook({ host: '127.0.0.1', port: 0, service: 'meshpilot', serviceNamespace: 'meshpilot-system', namespaceLabels: NAMESPACES, certDir: dir, logger: silentLogger });
    const scrape = () =>
      new Promise<string>((resolve, reject) => {
        https.get(`${server.url}/metrics`, { ca: ca.certPem }, (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve(text));
        }).on('error', reject);
      });
    const count = (text: string, outcome: string) => Number(new RegExp(`^meshpilot_webhook_admissions_total\\{outcome="${outcome}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
    try {
      expect((await post(server, ca.certPem, JSON.stringify(review('m-1', pod('shop'))))).body.response.patchType).toBe('JSONPatch');
      expect((await post(server, ca.certPem, JSON.stringify(review('m-2', pod('plain'), 'plain')))).body.response.allowed).toBe(true);
      expect((await post(server, ca.certPem, '{"kind":')).status).toBe(400);
      // The finish hook runs after the answer is written: wait for the counts rather than assume.
      await waitFor(async () => count(await scrape(), 'rejected') === 1, { description: 'the malformed review counted' });
      const text = await scrape();
      expect(count(text, 'injected')).toBe(1);
      expect(count(text, 'skipped')).toBe(1);
      expect(text).toMatch(/^meshpilot_webhook_admission_duration_seconds_count\{outcome="injected"\} 1$/m);
    } finally {
      await server.stop();
    }
  });

  it('makes its own CA and a serving cert for the webhook Service names', async () => {
    const c = await selfSignedCert('meshpilot', 'meshpilot-system');
    expect(c.caPem).toBeDefined();
    const server = await startWebhookServer({ host: '127.0.0.1', port: 0, cert: c, deps: { config, namespaceLabels: async () => ({}) } });
    try {
      for (const servername of ['meshpilot.meshpilot-system.svc', 'meshpilot.meshpilot-system.svc.cluster.local']) {
        await new Promise<void>((resolve, reject) => {
          const s = tls.connect({ host: '127.0.0.1', port: server.port, ca: c.caPem, servername }, () => {
            s.end();
            resolve();
          });
          s.on('error', reject);
        });
      }
    } finally {
      await server.stop();
    }
  });

  it('publishes the CA in every webhook of the configuration that lacks it, once', async () => {
    const stored: WebhookConfiguration = { webhooks: [{ name: 'namespace.inject.meshpilot.io', clientConfig: {} }, { name: 'pod.inject.meshpilot.io', clientConfig: { caBundle: 'b2xk' } }] };
    const patches: PatchOp[][] = [];
    const client: WebhookConfigClient = {
      read: async () => structuredClone(stored),
      patch: async (_name, ops) => {
        patches.push(ops);
        for (const op of ops) {
          const [, , i, , field] = op.path.split('/');
          if (op.op === 'test') expect(stored.webhooks![Number(i)]!.name).toBe(op.value);
          else stored.webhooks![Number(i)]!.clientConfig[field as 'caBundle'] = op.value as string;
        }
      },
    };
    expect(await ensureCaBundle(client, 'meshpilot-sidecar-injector', 'PEM')).toBe(2);
    expect(stored.webhooks!.map((w) => w.clientConfig.caBundle)).toEqual([Buffer.from('PEM').toString('base64'), Buffer.from('PEM').toString('base64')]);
    expect(patches[0]!.map((o) => o.op)).toEqual(['test', 'add', 'test', 'replace']);
    expect(await ensureCaBundle(client, 'meshpilot-sidecar-injector', 'PEM')).toBe(0);
    expect(patches).toHaveLength(1);
  });
});

describe('namespace label cache', () => {
  it('reads once per ttl, shares concurrent reads and retries after a failure', async () => {
    let t = 0;
    let calls = 0;
    let fail = true;
    const labels = cachedNamespaceLabels(async () => {
      calls++;
      if (fail) throw new Error('apiserver unavailable');
      return { [INJECT]: 'enabled' };
    }, 1000, () => t);
    await expect(labels('a')).rejects.toThrow('apiserver unavailable');
    fail = false;
    const [x, y] = await Promise.all([labels('a'), labels('a')]);
    expect(x).toEqual({ [INJECT]: 'enabled' });
    expect(y).toBe(x);
    expect(calls).toBe(2);
    t = 999;
    await labels('a');
    expect(calls).toBe(2);
    t = 1000;
    await labels('a');
    expect(calls).toBe(3);
  });
});
