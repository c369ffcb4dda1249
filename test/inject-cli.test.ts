// `meshpilot inject` and `meshpilot webhook` as a user runs them (bin/meshpilot.js, child processes).
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { createCA, issueServingCert } from '../control-plane/tls/certs.ts';
import { waitFor } from './helpers/wait.ts';

const run = promisify(execFile);
const BIN = path.resolve('bin/meshpilot.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-inject-cli-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function meshpilot(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

describe('meshpilot inject', () => {
  it('prints the injected documents (the golden output) and says what it did', async () => {
    const r = await meshpilot('inject', '-f', 'test/golden-inject/in/workloads.yaml');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(fs.readFileSync('test/golden-inject/out/workloads.yaml', 'utf8'));
    expect(r.stderr).toMatch(/injected Job bookinfo\/seed/);
  });

  it('writes to -o, and a second pass over its output changes nothing', async () => {
    const out = path.join(tmp, 'once.yaml');
    expect((await meshpilot('inject', '-f', 'test/golden-inject/in/plain-pod.yaml', '-o', out, '-q')).code).toBe(0);
    const twice = await meshpilot('inject', '-f', out);
    expect(twice.stdout).toBe(fs.readFileSync(out, 'utf8'));
    expect(twice.stderr).toMatch(/skipped Pod bookinfo\/reviews-v1-7d9c: the pod already has a sidecar/);
  });

  it('rejects an unknown annotation value with file:line and field path, exit 1', async () => {
    const r = await meshpilot('inject', '-f', 'test/golden-inject/in/bad-log-level.yaml');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad-log-level\.yaml:11:\d+ spec\.template\.metadata\.annotations\["meshpilot\.io\/proxy-log-level"\]: expected one of trace/);
    expect(r.stdout).toBe('');
  });

  it('refuses to start on broken injection settings, naming the line', async () => {
    const bad = path.join(tmp, 'injection.yaml');
    fs.writeFileSync(bad, fs.readFileSync('sidecar-config/injection.yaml', 'utf8').replace('uid: 1337', 'uid: root'));
    const r = await meshpilot('inject', '-f', 'test/golden-inject/in/plain-pod.yaml', '--injection-config', bad);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/injection\.yaml:\d+:\d+ proxy\.uid: /);
  });
});

describe('meshpilot webhook', () => {
  it('serves AdmissionReviews over HTTPS with the given certificate and stops on SIGTERM', async () => {
    const ca = await createCA('cli-webhook-ca');
    const served = await issueServingCert(ca, { ipAddresses: ['127.0.0.1'] });
    fs.writeFileSync(path.join(tmp, 'tls.crt'), served.certPem);
    fs.writeFileSync(path.join(tmp, 'tls.key'), served.keyPem);
    const child = spawn(process.execPath, [BIN, 'webhook', '--listen', '127.0.0.1:0', '--cert', path.join(tmp, 'tls.crt'), '--key', path.join(tmp, 'tls.key'), '--namespace-labels', '{"shop":{"meshpilot.io/inject":"enabled"}}'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let logs = '';
    child.stdout.on('data', (d) => (logs += d));
    child.stderr.on('data', (d) => (logs += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitFor(() => /listening on https:\/\/127\.0\.0\.1:\d+\/inject/.test(logs), { timeoutMs: 20_000, description: 'webhook listening' });
      const url = /listening on (https:\/\/127\.0\.0\.1:\d+\/inject)/.exec(logs)![1]!;
      const body = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'cli-1', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', namespace: 'shop', object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'c', image: 'i' }] } } } });
      const reply = await new Promise<any>((resolve, reject) => {
        https.request(url, { method: 'POST', ca: ca.certPem, headers: { 'content-type': 'application/json' } }, (res) => {
          let t = '';
          res.on('data', (d) => (t += d));
          res.on('end', () => resolve(JSON.parse(t)));
        }).on('error', reject).end(body);
      });
      expect(reply.response).toMatchObject({ uid: 'cli-1', allowed: true, patchType: 'JSONPatch' });
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});
