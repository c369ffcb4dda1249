// The dashboard's HTTP side against a started control plane serving a temp copy of
// examples/bookinfo (endpoints moved to real backends) with a real grpc-js-xds client connected:
// the page and its files (types, no escape from public/, no listing), the state snapshot (the
// example's services and reviews' weighted edges; the admin API's own answers for proxies and
// rules), and the event stream (a first event at once, a new one when a rule file changes, ended
// when the client goes and when the control plane stops).
import { request, type IncomingMessage } from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DashboardEvents } from '../control-plane/dashboard/events.ts';
import type { DashboardState } from '../control-plane/dashboard/state.ts';
import { createAdminApp } from '../control-plane/observe/admin.ts';
import { startControlPlane, type ControlPlane } from '../control-plane/server.ts';
import { CANARY_FILE, materializeConfig, readExampleEndpoints, setRouteWeights } from '../examples/lib/bookinfo.ts';
import { getJson } from './helpers/admin-http.ts';
import { startBackends, type BackendSet } from './helpers/backends.ts';
import { replaceFile, targetOf } from './helpers/mesh-files.ts';
import { Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';
import { createXdsClient, type XdsClient } from './helpers/xds-client.ts';

const REVIEWS = 'reviews.default.svc.cluster.local';

const teardown = new Teardown();
let backends: BackendSet;
let configDir: string;
let cp: ControlPlane;
let admin: string;
let client: XdsClient;
/** A second admin app on the same control plane: a page folder of the test's own, and its own event streams. */
let own: string;
let ownEvents: DashboardEvents;
let publicDir: string;
let stopped = false;

beforeAll(async () => {
  const endpoints = await readExampleEndpoints();
  backends = await startBackends(endpoints.map((e) => ({ service: e.service, version: e.version })));
  teardown.add(() => backends.stop());
  configDir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-dashboard-api-'));
  teardown.add(() => fs.rmSync(configDir, { recursive: true, force: true }));
  await materializeConfig('examples/bookinfo', configDir, (service, version) => backends.get(service, version).port);
  cp = await startControlPlane({ configDir, xdsListen: '127.0.0.1:0', adminListen: '127.0.0.1:0', debounceMs: 20, logLevel: 'error', dashboardActions: true });
  teardown.add(() => (stopped ? undefined : cp.stop()));
  expect(cp.state().errors.map((e) => e.message), 'the rules must be accepted').toEqual([]);
  admin = `http://${cp.adminAddress}`;
  client = createXdsClient({ xdsAddress: cp.xdsAddress, labels: { app: 'productpage', version: 'v1' } });
  teardown.add(() => client.close());
  // A real call: the client holds every xDS type for reviews.
  expect((await client.call(targetOf('reviews'), { 'end-user': 'jason' })).version).toBe('v2');

  publicDir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-dashboard-public-'));
  teardown.add(() => fs.rmSync(publicDir, { recursive: true, force: true }));
  const files: Record<string, string> = { 'index.html': '<!doctype html><title>t</title>', 'app.js': 'export const x = 1;\n', 'style.css': 'body { margin: 0 }\n', 'logo.svg': '<svg xmlns="http://www.w3.org/2000/svg"/>', 'lib/graph.js': 'export {};\n', '.hidden.js': 'SECRET CONTENT', 'notes.txt': 'text', 'dir.js/inner.js': '' };
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(publicDir, name)), { recursive: true });
    fs.writeFileSync(path.join(publicDir, name), text);
  }
  // A link out of the folder, and a secret beside it.
  fs.writeFileSync(path.join(path.dirname(publicDir), `${path.basename(publicDir)}-secret.js`), 'SECRET CONTENT');
  teardown.add(() => fs.rmSync(path.join(path.dirname(publicDir), `${path.basename(publicDir)}-secret.js`), { force: true }));
  fs.symlinkSync(`../${path.basename(publicDir)}-secret.js`, path.join(publicDir, 'out.js'));
  ownEvents = new DashboardEvents({ pollMs: 20, heartbeatMs: 300 });
  own = await listen(createAdminApp({ state: cp.state, ads: cp.ads, cache: cp.cache, load: cp.load, rollouts: cp.rollouts, dashboard: { events: ownEvents, publicDir } }));
}, 30_000);

afterAll(async () => {
  await teardown.run();
});

async function listen(app: ReturnType<typeof createAdminApp>): Promise<string> {
  const server = await new Promise<import('node:http').Server>((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
  teardown.add(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

/** GET with the path sent as written (fetch would resolve `..` itself). */
function rawGet(base: string, rawPath: string): Promise<{ status: number; type: string; cache: string; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path: rawPath }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), cache: String(res.headers['cache-control']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** An open event stream: the events and comments received so far, in order. */
interface EventStream {
  res: IncomingMessage;
  items: Array<{ event: string; data: string } | { comment: string }>;
  states(): DashboardState[];
  ended: Promise<'end' | 'error'>;
  close(): void;
}

function openEvents(base: string): Promise<EventStream> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path: '/dashboard/events', headers: { accept: 'text/event-stream' } }, (res) => {
      const items: EventStream['items'] = [];
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        for (let i = buffer.indexOf('\n\n'); i >= 0; i = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          if (block.startsWith(':')) items.push({ comment: block.slice(1).trim() });
          else {
            const lines = block.split('\n');
            items.push({ event: lines.find((l) => l.startsWith('event: '))!.slice(7), data: lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n') });
          }
        }
      });
      const ended = new Promise<'end' | 'error'>((done) => {
        res.on('end', () => done('end'));
        res.on('error', () => done('error'));
        req.on('error', () => done('error'));
      });
      resolve({
        res,
        items,
        states: () => items.flatMap((i) => ('event' in i && i.event === 'state' ? [JSON.parse(i.data) as DashboardState] : [])),
        ended,
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
    req.end();
  });
}

const reviewsWeights = (s: DashboardState) => s.graph.edges.filter((e) => e.from === REVIEWS && e.route === 'default/reviews/v3-canary').map((e) => [e.subset, e.weight]);

describe('the page and its files', () => {
  it('GET / is the dashboard page (HTML), and the page\'s own files are served with their type', async () => {
    const page = await rawGet(admin, '/');
    expect(page.status).toBe(200);
    expect(page.type).toBe('text/html; charset=utf-8');
    expect(page.body).toBe(fs.readFileSync('control-plane/dashboard/public/index.html', 'utf8'));
    const file = await rawGet(admin, '/dashboard/index.html');
    expect([file.status, file.type, file.cache]).toEqual([200, 'text/html; charset=utf-8', 'no-cache']);
  });

  it('serves files of its folder (subfolders too) with their content types and no-cache', async () => {
    for (const [name, type] of [['app.js', 'text/javascript; charset=utf-8'], ['style.css', 'text/css; charset=utf-8'], ['logo.svg', 'image/svg+xml'], ['lib/graph.js', 'text/javascript; charset=utf-8']] as const) {
      const r = await rawGet(own, `/dashboard/${name}`);
      expect([name, r.status, r.type, r.cache]).toEqual([name, 200, type, 'no-cache']);
      expect(r.body).toBe(fs.readFileSync(path.join(publicDir, name), 'utf8'));
    }
    expect((await rawGet(own, '/')).body).toBe('<!doctype html><title>t</title>');
  });

  it('answers a JSON 404 for escapes, dot files, folders, links out, unknown types and missing files', async () => {
    const refused = [
      '/dashboard/../package.json',
      '/dashboard/../../package.json',
      '/dashboard/%2e%2e/%2e%2e/package.json',
      '/dashboard/..%2f..%2fpackage.json',
      '/dashboard/lib/..%2f..%2f..%2fpackage.json',
      '/dashboard/%5c..%5c..%5cpackage.json',
      `/dashboard/..%2f${path.basename(publicDir)}-secret.js`,
      '/dashboard/out.js',
      '/dashboard/.hidden.js',
      '/dashboard/notes.txt',
      '/dashboard/dir.js',
      '/dashboard/lib',
      '/dashboard/lib/',
      '/dashboard/',
      '/dashboard',
      '/dashboard/missing.js',
    ];
    for (const p of refused) {
      const r = await rawGet(own, p);
      expect([p, r.status, r.type]).toEqual([p, 404, 'application/json; charset=utf-8']);
      expect(r.body).not.toContain('SECRET CONTENT');
    }
  });
});

describe('GET /dashboard/api/state', () => {
  it('has the example\'s services, reviews\' edges with their weights, and the client SYNCED', async () => {
    let state!: DashboardState;
    await waitFor(async () => {
      state = (await getJson<DashboardState>(`${admin}/dashboard/api/state`)).body;
      return state.proxies.proxies.some((p) => p.id === client.nodeId && p.state === 'SYNCED');
    }, { description: 'the grpc-js-xds client SYNCED in the state' });
    expect(state.actions).toBe(true);
    expect(state.generation).toBe(cp.cache.generation);
    expect(state.graph.services.map((s) => s.name)).toEqual(['details', 'productpage', 'ratings', 'reviews']);
    expect(state.graph.edges.filter((e) => e.from === REVIEWS).map((e) => [e.route, e.subset, e.weight])).toEqual([
      ['default/reviews/jason-to-v2', 'v2', 100],
      ['default/reviews/v3-canary', 'v1', 90],
      ['default/reviews/v3-canary', 'v3', 10],
    ]);
    // The client called reviews: it subscribed to its listener.
    expect(state.graph.callers).toContainEqual({ from: 'productpage', to: REVIEWS });
    expect(state.canaries).toEqual([]);
    expect(state.experiments).toEqual([]);
    expect(state.load).toMatchObject({ windowSeconds: 60 });
  });

  it('carries the admin API\'s own answers for proxies, rules, canaries and load', async () => {
    await waitFor(async () => {
      const [state, proxies, rules, canaries, load] = await Promise.all(['/dashboard/api/state', '/debug/proxies', '/debug/rules', '/debug/canaries', '/debug/load'].map(async (p) => (await getJson(`${admin}${p}`)).body));
      expect(state.proxies).toEqual(proxies);
      expect(state.rules).toEqual(rules);
      expect(state.canaries).toEqual(canaries);
      expect(state.load).toEqual(load);
      return true;
    }, { description: 'the same answers (a push between two reads is retried)' });
  });

  it('says actions: false without --dashboard-actions', async () => {
    const state = (await getJson<DashboardState>(`${own}/dashboard/api/state`)).body;
    expect(state.actions).toBe(false);
  });

});

describe('GET /dashboard/events', () => {
  it('sends the state at once, then a new state when a rule file changes', async () => {
    const stream = await openEvents(admin);
    teardown.add(() => stream.close());
    expect(stream.res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    await waitFor(() => stream.states().length >= 1, { description: 'the first event' });
    expect(reviewsWeights(stream.states()[0]!)).toEqual([['v1', 90], ['v3', 10]]);
    const text = fs.readFileSync(path.join(configDir, CANARY_FILE), 'utf8');
    await replaceFile(configDir, CANARY_FILE, setRouteWeights(text, 'v3-canary', { v1: 40, v3: 60 }));
    await waitFor(() => reviewsWeights(stream.states().at(-1)!).join() === 'v1,40,v3,60', { timeoutMs: 15_000, description: 'an event with the new weights' });
    const last = stream.states().at(-1)!;
    expect(last.generation).toBeGreaterThan(stream.states()[0]!.generation);
    // Every event differs from the one before it.
    const texts = stream.items.flatMap((i) => ('data' in i ? [i.data] : []));
    expect(texts.every((t, i) => i === 0 || t !== texts[i - 1])).toBe(true);
    stream.close();
  }, 30_000);

  it('sends heartbeats, nothing while nothing changes, and stops its timers when the client goes', async () => {
    const stream = await openEvents(own);
    await waitFor(() => stream.states().length >= 1, { description: 'the first event' });
    expect(ownEvents.clientCount).toBe(1);
    expect(ownEvents.running).toBe(true);
    // Two heartbeats (300 ms apart) span many checks (every 20 ms): no other event in between.
    await waitFor(() => stream.items.filter((i) => 'comment' in i).length >= 2, { description: 'two heartbeats' });
    const firstBeat = stream.items.findIndex((i) => 'comment' in i);
    expect(stream.items.slice(firstBeat).filter((i) => 'event' in i)).toEqual([]);
    stream.close();
    await waitFor(() => ownEvents.clientCount === 0, { description: 'the client dropped' });
    expect(ownEvents.running).toBe(false);
  });

  it('ends open streams cleanly when the control plane stops', async () => {
    const stream = await openEvents(admin);
    await waitFor(() => stream.states().length >= 1, { description: 'the first event' });
    stopped = true;
    await cp.stop();
    expect(await stream.ended).toBe('end');
  });
});
