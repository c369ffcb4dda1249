// `serve --monitoring-listen`: a second listener with the probes and the metrics only, so they can be
// published beyond the pod (kubelet probes, Prometheus) while the admin API, with config dumps,
// rules, explain and the CA endpoints, stays on loopback. Same handlers as the admin API's.
import { spawnServe } from './helpers/serve-process.ts';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startControlPlane, type ControlPlane } from '../control-plane/server.ts';
import { getJson, metricValue } from './helpers/admin-http.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { MESH, vs } from './helpers/protocol-fixtures.ts';
import { Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';

let dir: string;
let cp: ControlPlane;
let admin: string;
let monitoring: string;

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-monitoring-'));
  fs.writeFileSync(path.join(dir, 'mesh.yaml'), MESH);
  fs.writeFileSync(path.join(dir, 'rules.yaml'), vs(80, 20));
  cp = await startControlPlane({ configDir: dir, adminListen: '127.0.0.1:0', monitoringListen: '127.0.0.1:0', logger: captureLogs().logger });
  admin = `http://${cp.adminAddress}`;
  monitoring = `http://${cp.monitoringAddress}`;
});

afterEach(async () => {
  await cp.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Admin endpoints that must not be reachable on the monitoring listener (method, path, JSON body). */
const ADMIN_ONLY: Array<[string, string, unknown?]> = [
  ['GET', '/debug/config_dump?proxy=sidecar~10.0.0.1~x.default~default.svc.cluster.local'],
  ['GET', '/debug/proxies'],
  ['GET', '/debug/rules'],
  ['GET', '/debug/certs'],
  ['POST', '/debug/explain', { from: 'default/productpage', request: 'GET http://reviews:9080/' }],
  ['POST', '/debug/ca/rotate', {}],
  ['POST', '/debug/ca/activate', {}],
  ['POST', '/healthz', {}],
];

async function call(base: string, method: string, p: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}${p}`, { method, ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }) });
  return { status: res.status, body: await res.json() };
}

describe('the monitoring listener', () => {
  it('answers /healthz, /readyz and /metrics as the admin API does', async () => {
    for (const p of ['/healthz', '/readyz']) {
      const [a, m] = [await getJson(`${admin}${p}`), await getJson(`${monitoring}${p}`)];
      expect(m.status, p).toBe(200);
      expect(m.body, p).toEqual(a.body);
    }
    const res = await fetch(`${monitoring}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(metricValue(text, 'meshpilot_config_generation')).toBeGreaterThanOrEqual(1);
    expect(text).toContain('meshpilot_connected_proxies');
  });

  it('reports a failing component the same way (503 naming it)', async () => {
    const remove = cp.health.add({ name: 'cluster/east', check: () => ({ ok: false, detail: 'watch failed' }) });
    const ready = await getJson(`${monitoring}/readyz`);
    expect(ready.status).toBe(503);
    expect(ready.body.failing).toEqual(['cluster/east']);
    expect((await getJson(`${monitoring}/healthz`)).status).toBe(200); // readiness only
    remove();
    expect((await getJson(`${monitoring}/readyz`)).status).toBe(200);
  });

  it('serves nothing else: config dumps, rules, explain and the CA endpoints are a JSON 404 there, and served on the admin API', async () => {
    for (const [method, p, body] of ADMIN_ONLY) {
      const m = await call(monitoring, method, p, body);
      expect(m.status, `${method} ${p}`).toBe(404);
      expect(m.body.error, `${method} ${p}`).toBe(`no such endpoint: ${method} ${p.split('?')[0]}`);
    }
    // The same requests reach real handlers on the admin API (so the 404s above are the listener's doing).
    expect((await call(admin, 'GET', '/debug/rules')).status).toBe(200);
    expect((await call(admin, 'GET', '/debug/proxies')).status).toBe(200);
    expect((await call(admin, 'POST', '/debug/explain', { from: 'default/productpage', request: 'GET http://reviews:9080/' })).status).not.toBe(404);
  });

  it('closes with the control plane, and an address in use stops the start', async () => {
    await expect(startControlPlane({ configDir: dir, adminListen: '127.0.0.1:0', monitoringListen: cp.monitoringAddress!, logger: captureLogs().logger })).rejects.toThrow(`cannot listen on ${cp.monitoringAddress}: address already in use`);
    await cp.stop();
    await expect(fetch(`${monitoring}/healthz`)).rejects.toThrow();
    cp = await startControlPlane({ configDir: dir, adminListen: null, logger: captureLogs().logger }); // for afterEach
    expect(cp.monitoringAddress).toBeUndefined();
  });
});

describe('meshpilot serve --monitoring-listen', () => {
  const teardown = new Teardown();
  afterEach(() => teardown.run());

  it('starts the listener from the command line', async () => {
    const { lines } = spawnServe(teardown, ['--config-dir', 'examples/bookinfo', '--monitoring-listen', '127.0.0.1:0']);
    const listening = () => lines.find((l) => String(l['msg']).startsWith('monitoring listening'));
    await waitFor(() => Boolean(listening()), { description: 'monitoring listener up', timeoutMs: 20_000 });
    const base = `http://${String(listening()!['address'])}`;
    await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, { description: 'ready' });
    expect((await fetch(`${base}/metrics`)).status).toBe(200);
    expect((await fetch(`${base}/debug/rules`)).status).toBe(404);
  });
});
