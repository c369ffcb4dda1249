// The admin API's operations side against raw ADS clients (byte-for-byte requests, so every state
// can be reached on purpose): component health, STALE until ACKed, NACK bookkeeping and its
// metric, delta proxies, the wait loop (stragglers, disconnects, no match), and the event logs.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseSelector, typeSync } from '../control-plane/observe/proxy-status.ts';
import { startControlPlane, type ControlPlane } from '../control-plane/server.ts';
import { CLUSTER } from '../control-plane/translate/type-urls.ts';
import { parseDuration, waitUntilSynced } from '../control-plane/observe/wait.ts';
import { getJson, metricValue, scrape } from './helpers/admin-http.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { MESH, RATINGS_9080, vs } from './helpers/protocol-fixtures.ts';
import { RawAdsClient, RawDeltaClient, toStruct } from './helpers/raw-ads.ts';
import { waitFor } from './helpers/wait.ts';

let dir: string;
let cp: ControlPlane;
let admin: string;
let logLines: Array<Record<string, any>>;
const closers: Array<() => void> = [];

const node = (name: string, app: string) => ({
  id: `sidecar~10.9.0.7~${name}.default~default.svc.cluster.local`,
  metadata: toStruct({ NAMESPACE: 'default', LABELS: { app } }),
  user_agent_name: 'envoy',
});

function sotw(): RawAdsClient {
  const c = new RawAdsClient(cp.xdsAddress);
  closers.push(() => c.close());
  return c;
}

function writeRules(text: string) {
  const tmp = path.join(dir, '.rules.tmp');
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, path.join(dir, 'rules.yaml'));
}

async function status(id: string): Promise<any> {
  return (await getJson(`${admin}/debug/proxies?proxy=${encodeURIComponent(id)}`)).body.proxies[0];
}

/** A request with the Host header given (fetch does not let one set it). */
function rawRequest(base: string, method: string, url: string, host: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, method, path: url, headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-ops-'));
  fs.writeFileSync(path.join(dir, 'mesh.yaml'), MESH);
  writeRules(vs(80, 20));
  const logs = captureLogs();
  logLines = logs.lines;
  cp = await startControlPlane({ configDir: dir, adminListen: '127.0.0.1:0', logger: logs.logger, debounceMs: 20 });
  admin = `http://${cp.adminAddress}`;
});

afterEach(async () => {
  for (const c of closers.splice(0)) c();
  await cp.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const logged = (msg: string) => logLines.filter((l) => l.msg === msg);

describe('health', () => {
  it('names each component; a failing one makes /readyz 503 and is named', async () => {
    const ready = await getJson(`${admin}/readyz`);
    expect(ready.status).toBe(200);
    expect(ready.body.components.map((c: any) => c.name).sort()).toEqual(['config-source/file', 'model', 'xds-server']);
    expect(ready.body.components.find((c: any) => c.name === 'model').detail).toMatch(/3 rules in force, 0 rejected/);
    // A source that plugs in its own check (as each Kubernetes cluster will).
    const remove = cp.health.add({ name: 'cluster/east', check: () => ({ ok: false, detail: 'watch failed: connection refused; retrying' }) });
    const failing = await getJson(`${admin}/readyz`);
    expect(failing.status).toBe(503);
    expect(failing.body.failing).toEqual(['cluster/east']);
    expect(failing.body.components.find((c: any) => c.name === 'cluster/east').detail).toMatch(/connection refused/);
    // Readiness only: the process itself is fine.
    expect((await getJson(`${admin}/healthz`)).status).toBe(200);
    remove();
    expect((await getJson(`${admin}/readyz`)).status).toBe(200);
  });

  it('names the file source when its directory goes away, and the proxies keep the last good config', async () => {
    fs.rmSync(dir, { recursive: true, force: true });
    cp.reload();
    await waitFor(async () => (await getJson(`${admin}/readyz`)).status === 503, { timeoutMs: 5000 });
    const r = await getJson(`${admin}/readyz`);
    expect(r.body.failing).toEqual(['config-source/file']);
    expect(r.body.components.find((c: any) => c.name === 'config-source/file').detail).toContain(dir);
    expect(cp.state().accepted).toHaveLength(3);
    expect((await getJson(`${admin}/healthz`)).status).toBe(200);
  });

  it('fails /healthz naming the xDS server when it stops', async () => {
    await cp.ads.stop();
    const live = await getJson(`${admin}/healthz`);
    expect(live.status).toBe(503);
    expect(live.body.status).toBe('failing: xds-server');
    expect((await getJson(`${admin}/readyz`)).status).toBe(503);
  });
});

describe('errors are JSON, never an HTML page or a stack trace', () => {
  const explain = (body: string, contentType?: string) =>
    fetch(`${admin}/debug/explain`, { method: 'POST', body, ...(contentType ? { headers: { 'content-type': contentType } } : {}) });
  async function errorOf(res: Response): Promise<string> {
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const text = await res.text();
    expect(text).not.toMatch(/<html|<pre|\bat .*\(|node_modules/i);
    return JSON.parse(text).error;
  }

  it('a malformed body is a 400, a large one a 413, another content type a 415', async () => {
    const bad = await explain('{bad', 'application/json');
    expect(bad.status).toBe(400);
    expect(await errorOf(bad)).toMatch(/^body is not JSON \(.+\)$/);

    const big = await explain(JSON.stringify({ request: 'GET http://reviews:9080/', from: 'x'.repeat(70 * 1024) }), 'application/json');
    expect(big.status).toBe(413);
    expect(await errorOf(big)).toBe('request body larger than 65536 bytes');

    for (const type of ['text/plain', undefined]) {
      // fetch sends a string body as text/plain when no type is given.
      const r = await explain('{bad', type);
      expect(r.status).toBe(415);
      expect(await errorOf(r)).toBe('expected Content-Type: application/json');
    }
    // A good body still works after all that.
    expect((await explain(JSON.stringify({ request: 'GET http://reviews:9080/' }), 'application/json')).status).toBe(200);
  });

  it('a POST a browser marks as coming from another origin is refused (a page elsewhere cannot act on a loopback admin API)', async () => {
    const body = JSON.stringify({ request: 'GET http://reviews:9080/' });
    const host = new URL(admin).host;
    for (const headers of [{ origin: 'http://evil.example' }, { origin: 'http://127.0.0.1:1' }, { 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }] as Array<Record<string, string>>) {
      const r = await fetch(`${admin}/debug/explain`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
      expect(r.status, JSON.stringify(headers)).toBe(403);
      expect(await errorOf(r)).toMatch(/^refused: a POST from another origin/);
    }
    // Its own page, and clients that are no browser, are served.
    for (const headers of [{ origin: `http://${host}`, 'sec-fetch-site': 'same-origin' }, {}] as Array<Record<string, string>>) {
      const r = await fetch(`${admin}/debug/explain`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
      expect(r.status, JSON.stringify(headers)).toBe(200);
    }
  });

  it('answers only Host names that are an IP address or localhost, or given with --admin-host (a page cannot read it through DNS rebinding)', async () => {
    const { port } = new URL(admin);
    const refused = ['rebind.example', `rebind.example:${port}`, `127.0.0.1.nip.io:${port}`, `LOCALHOST.evil.example:${port}`, `kubernetes.default.svc:${port}`];
    const served = [`127.0.0.1:${port}`, `localhost:${port}`, `LocalHost.:${port}`, `app.localhost:${port}`, `[::1]:${port}`, '10.1.2.3', '::1', `[fe80::1]:${port}`];
    for (const host of refused) {
      for (const [method, url] of [['GET', '/debug/proxies'], ['GET', '/'], ['GET', '/dashboard/api/state'], ['GET', '/readyz']]) {
        const r = await rawRequest(admin, method!, url!, host);
        expect(r.status, `${host} ${url}`).toBe(403);
        expect(JSON.parse(r.body).error, host).toMatch(/^refused: Host ".*" is not an IP address, localhost or a name given with serve --admin-host/);
      }
    }
    for (const host of served) expect((await rawRequest(admin, 'GET', '/debug/proxies', host)).status, host).toBe(200);
    // A name the operator gave is served, case and a final dot aside; others still are not.
    const named = await startControlPlane({ configDir: dir, adminListen: '127.0.0.1:0', logger: captureLogs().logger, adminHosts: ['meshpilot-admin.internal'] });
    try {
      const url = `http://${named.adminAddress}`;
      for (const host of ['meshpilot-admin.internal', 'MESHPILOT-ADMIN.internal.:15000']) expect((await rawRequest(url, 'GET', '/debug/proxies', host)).status, host).toBe(200);
      expect((await rawRequest(url, 'GET', '/debug/proxies', 'rebind.example')).status).toBe(403);
    } finally {
      await named.stop();
    }
  });

  it('an unknown endpoint is a 404 naming it', async () => {
    for (const [method, url] of [['GET', '/debug/nothing'], ['POST', '/readyz']]) {
      const r = await fetch(`${admin}${url}`, { method });
      expect(r.status).toBe(404);
      expect(await errorOf(r)).toBe(`no such endpoint: ${method} ${url}`);
    }
  });

  it('an unexpected failure is a 500 with its message', async () => {
    const remove = cp.health.addProvider({
      health() {
        throw new Error('provider broke');
      },
    });
    const r = await fetch(`${admin}/readyz`);
    expect(r.status).toBe(500);
    expect(await errorOf(r)).toBe('internal error: provider broke');
    remove();
    expect((await fetch(`${admin}/readyz`)).status).toBe(200);
  });
});

describe('sync status', () => {
  it('is STALE until ACKed, NACKED with the message (counted once per nonce), SYNCED after a newer version is ACKed', async () => {
    const c = sotw();
    const n = node('stale-1', 'probe');
    c.send({ node: n, type_url: CLUSTER, resource_names: [] });
    const cds = await c.next();
    await waitFor(async () => (await status(n.id))?.types.cds.state === 'STALE', { timeoutMs: 3000 });
    expect((await status(n.id)).types.cds.reason).toBe(`version ${cds.version_info} sent, never ACKed on this stream`);

    c.send({ type_url: CLUSTER, resource_names: [], version_info: cds.version_info, response_nonce: cds.nonce });
    await waitFor(async () => (await status(n.id))?.state === 'SYNCED', { timeoutMs: 3000 });

    // A config change: a new CDS version; this client rejects it (the raw client sends the NACK
    // byte for byte, twice, as gRPC repeats it).
    const before = await scrape(admin);
    fs.appendFileSync(path.join(dir, 'mesh.yaml'), RATINGS_9080);
    const pushed = await c.next();
    const nack = { type_url: CLUSTER, resource_names: [], version_info: cds.version_info, response_nonce: pushed.nonce, error_detail: { code: 14, message: 'cluster outbound|9080||ratings: test rejection' } };
    c.send(nack);
    c.send(nack);
    await waitFor(async () => (await status(n.id))?.state === 'NACKED', { timeoutMs: 3000 });
    const s = await status(n.id);
    expect(s.types.cds).toMatchObject({ state: 'NACKED', ackedVersion: cds.version_info, nack: { version: pushed.version_info, nonce: pushed.nonce, message: 'cluster outbound|9080||ratings: test rejection' } });
    const during = await scrape(admin);
    expect(metricValue(during, 'meshpilot_xds_nacks_total', { type: 'cds' }) - metricValue(before, 'meshpilot_xds_nacks_total', { type: 'cds' })).toBe(1);
    expect(metricValue(during, 'meshpilot_xds_pushes_total', { type: 'cds' }) - metricValue(before, 'meshpilot_xds_pushes_total', { type: 'cds' })).toBe(1);
    const nackLogs = logged('proxy rejected config (NACK)');
    expect(nackLogs).toHaveLength(1);
    expect(nackLogs[0]).toMatchObject({ proxy: n.id, type: CLUSTER, message: 'cluster outbound|9080||ratings: test rejection' });

    // The fix: the ServiceEntry goes; the client ACKs the version after it.
    fs.writeFileSync(path.join(dir, 'mesh.yaml'), MESH);
    const fixed = await c.next();
    c.send({ type_url: CLUSTER, resource_names: [], version_info: fixed.version_info, response_nonce: fixed.nonce });
    await waitFor(async () => (await status(n.id))?.state === 'SYNCED', { timeoutMs: 3000 });
    expect((await status(n.id)).types.cds.nack).toBeUndefined();
    const after = await scrape(admin);
    expect(metricValue(after, 'meshpilot_proxy_convergence_seconds_count') - metricValue(during, 'meshpilot_proxy_convergence_seconds_count')).toBe(1);
  });

  it('reports delta proxies, their config dump, and counts connected proxies by kind and protocol', async () => {
    const d = new RawDeltaClient(cp.xdsAddress);
    closers.push(() => d.close());
    const n = node('delta-1', 'delta-probe');
    d.send({ node: n, type_url: CLUSTER, resource_names_subscribe: [] });
    const r = await d.next();
    d.send({ type_url: CLUSTER, response_nonce: r.nonce });
    await waitFor(async () => (await status(n.id))?.state === 'SYNCED', { timeoutMs: 3000 });
    expect(await status(n.id)).toMatchObject({ protocol: 'delta', kind: 'envoy', labels: { app: 'delta-probe' } });
    const dump = (await getJson(`${admin}/debug/config_dump?proxy=${encodeURIComponent(n.id)}`)).body;
    expect(dump.types.cds.resources.map((x: any) => x.name).sort()).toEqual(r.resources.map((x) => x.name).sort());
    expect(dump.types.cds.resources.every((x: any) => x.resource['@type'] === CLUSTER)).toBe(true);
    const m = await scrape(admin);
    expect(metricValue(m, 'meshpilot_connected_proxies', { kind: 'envoy', protocol: 'delta' })).toBe(1);
    expect(metricValue(m, 'meshpilot_connected_proxies', { kind: 'envoy', protocol: 'sotw' })).toBe(0);
    // Series the other parts of meshpilot feed: present from the start.
    for (const name of ['meshpilot_rejected_rules', 'meshpilot_push_duration_seconds_count', 'meshpilot_proxy_convergence_seconds_count']) expect(m).toMatch(new RegExp(`^${name}`, 'm'));
    expect(m).toMatch(/^# TYPE meshpilot_webhook_admissions_total counter/m);
    expect(m).toMatch(/^# TYPE meshpilot_cluster_source_up gauge/m);
  });

  it('exposes the webhook and per-cluster hooks as series', async () => {
    cp.metrics.onAdmission('injected', 0.004);
    cp.metrics.onAdmission('injected', 0.02);
    cp.metrics.onAdmission('error', 0.5);
    cp.metrics.setClusterHealth('east', true);
    cp.metrics.setClusterHealth('west', false);
    const m = await scrape(admin);
    expect(metricValue(m, 'meshpilot_webhook_admissions_total', { outcome: 'injected' })).toBe(2);
    expect(metricValue(m, 'meshpilot_webhook_admissions_total', { outcome: 'error' })).toBe(1);
    expect(metricValue(m, 'meshpilot_webhook_admission_duration_seconds_count', { outcome: 'injected' })).toBe(2);
    expect(metricValue(m, 'meshpilot_cluster_source_up', { cluster: 'east' })).toBe(1);
    expect(m).toMatch(/^meshpilot_cluster_source_up\{cluster="west"\} 0$/m);
    expect(metricValue(m, 'meshpilot_rejected_rules')).toBe(0);
  });
});

describe('wait until synced', () => {
  it('succeeds once the proxy ACKs during the wait', async () => {
    const c = sotw();
    const n = node('wait-1', 'waiter');
    c.send({ node: n, type_url: CLUSTER, resource_names: [] });
    const cds = await c.next();
    let polls = 0;
    const result = waitUntilSynced({
      admin,
      selector: 'app=waiter',
      timeoutMs: 10_000,
      intervalMs: 30,
      onPoll: (ps) => {
        // ACK only after the wait has seen the proxy STALE, so the wait really waits.
        if (++polls === 1 && ps[0]?.state === 'STALE') c.send({ type_url: CLUSTER, resource_names: [], version_info: cds.version_info, response_nonce: cds.nonce });
      },
    });
    const r = await result;
    expect(r).toMatchObject({ ok: true, stragglers: [] });
    expect(polls).toBeGreaterThan(1);
  });

  it('lists a proxy that disconnects mid-way as a straggler', async () => {
    const c = sotw();
    const n = node('wait-2', 'leaver');
    c.send({ node: n, type_url: CLUSTER, resource_names: [] });
    await c.next();
    const r = await waitUntilSynced({
      admin,
      selector: 'app=leaver',
      timeoutMs: 1500,
      intervalMs: 30,
      onPoll: (ps) => {
        if (ps.length) c.close();
      },
    });
    expect(r.ok).toBe(false);
    expect(r.stragglers).toEqual([expect.stringMatching(new RegExp(`^${n.id.replace(/[.~]/g, '\\$&')}: disconnected during the wait \\(was STALE; cds STALE`))]);
    expect(logged('proxy disconnected').map((l) => l.proxy)).toContain(n.id);
  });

  it('says so when no proxy matches, and refuses a bad selector at once', async () => {
    const none = await waitUntilSynced({ admin, selector: 'app=nobody', timeoutMs: 200, intervalMs: 30 });
    expect(none).toMatchObject({ ok: false, message: 'timed out after 0.2s: no connected proxy matches selector app=nobody' });
    const bad = await waitUntilSynced({ admin, selector: '=x', timeoutMs: 5000 });
    expect(bad.ok).toBe(false);
    expect(bad.message).toMatch(/admin API refused the query: bad label selector term "=x"/);
  });
});

describe('logs', () => {
  it('one line per event: connected, configuration applied with the rules that changed, rule rejected and accepted again', async () => {
    const c = sotw();
    const n = node('log-1', 'logger');
    c.send({ node: n, type_url: CLUSTER, resource_names: [] });
    await c.next();
    expect(logged('proxy connected')).toEqual([expect.objectContaining({ proxy: n.id, kind: 'envoy' })]);
    writeRules(vs(50, 50));
    await waitFor(() => logged('configuration applied').some((l) => l.changed?.includes('VirtualService/default/reviews')), { timeoutMs: 3000 });
    writeRules(vs(50, 50).replace('subset: v2', 'subset: v9'));
    await waitFor(() => logged('rule rejected').length > 0, { timeoutMs: 3000 });
    expect(logged('rule rejected')[0].error).toMatch(/v9/);
    writeRules(vs(60, 40));
    await waitFor(() => logged('rule accepted after being rejected').length > 0, { timeoutMs: 3000 });
    expect(logged('rule accepted after being rejected')[0].rule).toBe('VirtualService/default/reviews');
  });
});

describe('sync states', () => {
  it('are STALE when the config changed and the push has not reached the proxy, NOT_SENT when there is nothing', () => {
    const acked = { subscribed: '*' as const, sentVersion: 'v1', sentNonce: 'n1', ackedVersion: 'v1', generation: 3 };
    expect(typeSync(CLUSTER, acked, 3).state).toBe('SYNCED');
    expect(typeSync(CLUSTER, acked, 4)).toMatchObject({ state: 'STALE', reason: 'the config changed and has not been pushed to this proxy yet' });
    expect(typeSync(CLUSTER, { subscribed: ['x'], generation: 4 }, 4).state).toBe('NOT_SENT');
    // A NACK of an older nonce, then a newer version sent: waiting for its ACK, the NACK kept for reference.
    const afterNack = { ...acked, sentVersion: 'v3', sentNonce: 'n3', ackedVersion: 'v1', nack: { nonce: 'n2', version: 'v2', message: 'bad' } };
    expect(typeSync(CLUSTER, afterNack, 3)).toMatchObject({ state: 'STALE', reason: 'version v3 sent after a NACK, not yet ACKed', nack: { message: 'bad' } });
    expect(typeSync(CLUSTER, { ...afterNack, nack: { nonce: 'n3', version: 'v3', message: 'bad' } }, 3).state).toBe('NACKED');
  });
});

describe('selectors and durations', () => {
  it('parses kubectl-style selectors', () => {
    const m = parseSelector('app=reviews, version!=v1,canary,!legacy');
    expect(m({ app: 'reviews', version: 'v2', canary: 'true' })).toBe(true);
    expect(m({ app: 'reviews', version: 'v1', canary: 'true' })).toBe(false);
    expect(m({ app: 'reviews', version: 'v2' })).toBe(false);
    expect(m({ app: 'reviews', version: 'v2', canary: '', legacy: 'x' })).toBe(false);
    expect(parseSelector('')({})).toBe(true);
    expect(() => parseSelector('a=b=c')).toThrow(/bad label selector term/);
  });

  it('parses durations', () => {
    expect([parseDuration('60s'), parseDuration('500ms'), parseDuration('2m'), parseDuration('1.5')]).toEqual([60_000, 500, 120_000, 1500]);
    expect(() => parseDuration('soon')).toThrow(/bad duration/);
  });
});
