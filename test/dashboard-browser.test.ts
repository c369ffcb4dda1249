// The dashboard in a real browser: Debian's Chromium driven by playwright-core, against a started
// control plane with real gRPC backends, a real grpc-js-xds client and a raw ADS client, on the
// Bookinfo rules (examples/bookinfo) plus a Canary. Each test reads the page as a person would
// (what is on screen, by data-testid) and changes the mesh the way an operator does (rule files).
// Screenshots of every view go to test-artifacts/dashboard/.
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLUSTER } from '../control-plane/translate/type-urls.ts';
import { BOOKINFO_VERSIONS, startBackends, type BackendSet } from './helpers/backends.ts';
import { replaceFile, targetOf } from './helpers/mesh-files.ts';
import { RawAdsClient, toStruct } from './helpers/raw-ads.ts';
import { startTestMesh, Teardown, type TestMesh } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';
import type { XdsClient } from './helpers/xds-client.ts';

const CHROMIUM = process.env.MESHPILOT_CHROMIUM ?? '/usr/bin/chromium';
const LAUNCH_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ARTIFACTS = path.resolve('test-artifacts/dashboard');
const BIN = path.resolve('bin/meshpilot.js');


/** The Bookinfo reviews rule as the example ships it: jason -> v2, everyone else 90/10 v1/v3. */
const REVIEWS_YAML = readFileSync(path.resolve('examples/bookinfo/reviews-canary.yaml'), 'utf8');
const REVIEWS_50_50 = REVIEWS_YAML.replace('weight: 90', 'weight: 50').replace('weight: 10', 'weight: 50');
/** A Canary moving ratings from v1 to v2; its interval is long enough that it stays at its first step. */
const RATINGS_YAML = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ratings, namespace: default }
spec:
  hosts: [ratings.default.svc.cluster.local]
  http:
  - name: ratings-canary
    route:
    - destination: { host: ratings.default.svc.cluster.local, subset: v1 }
      weight: 100
    - destination: { host: ratings.default.svc.cluster.local, subset: v2 }
      weight: 0
---
apiVersion: traffic.meshpilot.io/v1alpha1
kind: Canary
metadata: { name: ratings, namespace: default }
spec:
  target: { host: ratings, route: ratings-canary }
  stable: v1
  canary: v2
  steps: [20, 50, 100]
  interval: 1h
  analysis: { minRequests: 20, minSuccessRate: 99 }
`;

const teardown = new Teardown();
let backends: BackendSet;
let mesh: TestMesh;
let client: XdsClient;
let browser: Browser;
let base: string;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  backends = await startBackends([...BOOKINFO_VERSIONS, { service: 'ratings', version: 'v2' }]);
  teardown.add(() => backends.stop());
  mesh = await startTestMesh(teardown, {
    backends: backends.backends,
    files: { 'reviews.yaml': REVIEWS_YAML, 'ratings.yaml': RATINGS_YAML },
    prefix: 'dashboard',
    controlPlane: {
      adminListen: '127.0.0.1:0',
      loadReporting: { intervalMs: 1000 },
      // serve --dashboard-actions: the page offers the canary commands.
      dashboardActions: true,
    },
  });
  client = mesh.client({ labels: { app: 'productpage', version: 'v1' } });
  await waitFor(async () => (await client.call(targetOf('reviews'))).version !== '', { timeoutMs: 20_000, intervalMs: 100, description: 'a first call to reviews' });
  // Calls to ratings, whose clusters the Canary judges: the client reports their load.
  await waitFor(async () => Object.keys(await client.split(targetOf('ratings'), 20)).every((k) => !k.startsWith('error')), { timeoutMs: 10_000, description: 'calls to ratings' });
  base = adminUrl();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: LAUNCH_ARGS });
  teardown.add(() => browser.close());
});

afterAll(() => teardown.run());

/** The admin API (serve --admin-listen) of the test's control plane. */
const adminUrl = () => `http://${mesh.cp.adminAddress}`;

/** A fresh page on the dashboard, its console errors and page errors collected. */
async function open(hash = ''): Promise<{ page: Page; context: BrowserContext; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  await page.goto(`${base}/${hash}`);
  return { page, context, errors };
}

async function live(page: Page): Promise<void> {
  await page.locator('[data-testid=live-status][data-mode=live]').waitFor({ timeout: 10_000 });
}

const edge = (page: Page, route: string, subset: string) => page.locator(`[data-testid=edge][data-route$="/${route}"][data-subset="${subset}"]`);
const shot = (page: Page, name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });

describe('dashboard in Chromium', () => {
  it('loads without console errors and draws the services, routes and weights; a service opens its details', async () => {
    const { page, context, errors } = await open();
    await live(page);
    for (const name of ['productpage', 'details', 'ratings', 'reviews']) {
      await expect.poll(() => page.locator(`[data-testid=service][data-name="${name}"]`).count()).toBe(1);
    }
    await expect.poll(() => edge(page, 'jason-to-v2', 'v2').locator('[data-testid=edge-weight]').textContent()).toBe('100%');
    expect(await edge(page, 'v3-canary', 'v1').locator('[data-testid=edge-weight]').textContent()).toBe('90%');
    expect(await edge(page, 'v3-canary', 'v3').locator('[data-testid=edge-weight]').textContent()).toBe('10%');
    // The Canary's first step sets ratings' weights: drawn as canary-driven.
    await expect.poll(() => edge(page, 'ratings-canary', 'v2').getAttribute('data-weights-from'), { timeout: 10_000 }).toBe('Canary/default/ratings');
    expect(await edge(page, 'ratings-canary', 'v2').locator('[data-testid=edge-weight]').textContent()).toBe('20%');

    // The page down to the graph's bottom edge (docs/dashboard.png is one of these).
    const graphBox = (await page.getByTestId('graph').boundingBox())!;
    await page.screenshot({ path: path.join(ARTIFACTS, 'graph.png'), clip: { x: 0, y: 0, width: 1400, height: Math.ceil(graphBox.y + graphBox.height + 12) } });

    await page.locator('[data-testid=service][data-name=reviews]').click();
    const panel = page.getByTestId('service-panel');
    await expect.poll(() => panel.getByTestId('service-rules').textContent()).toMatch(/VirtualService default\/reviews \((\/.*\/)?reviews\.yaml:\d+\)/);
    expect(await panel.locator('[data-testid=service-subset]').evaluateAll((els) => els.map((e) => e.getAttribute('data-subset')))).toEqual(['v1', 'v2', 'v3']);
    expect(await panel.locator('[data-testid=locality]').count()).toBeGreaterThan(0);
    await shot(page, 'graph-service');
    expect(errors).toEqual([]);
    await context.close();
  });

  it('follows a rule file edit: the weights change on screen without a reload', async () => {
    const { page, context, errors } = await open();
    await live(page);
    await expect.poll(() => edge(page, 'v3-canary', 'v1').locator('[data-testid=edge-weight]').textContent()).toBe('90%');
    await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
    await replaceFile(mesh.dir, 'reviews.yaml', REVIEWS_50_50);
    await expect.poll(() => edge(page, 'v3-canary', 'v1').locator('[data-testid=edge-weight]').textContent(), { timeout: 10_000 }).toBe('50%');
    expect(await edge(page, 'v3-canary', 'v3').locator('[data-testid=edge-weight]').textContent()).toBe('50%');
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('shows a rejected rule with its positioned error and what stays in force', async () => {
    const { page, context, errors } = await open('#rules');
    await live(page);
    await replaceFile(mesh.dir, 'reviews.yaml', REVIEWS_50_50.replace('weight: 50', 'weight: fifty'));
    const rejected = page.locator('[data-testid=rejected-rule][data-rule="VirtualService/default/reviews"]');
    await rejected.waitFor({ timeout: 10_000 });
    expect(await rejected.getByTestId('rejected-error').allTextContents()).toContainEqual(expect.stringMatching(/reviews\.yaml:\d+:\d+ spec\.http\[1\]\.route\[0\]\.weight: /));
    expect(await rejected.getByTestId('rejected-in-force').textContent()).toMatch(/In force instead: the last accepted version, .*reviews\.yaml:\d+/);
    await shot(page, 'rules');
    // Fixed again: the rejection goes away by itself.
    await replaceFile(mesh.dir, 'reviews.yaml', REVIEWS_YAML);
    await rejected.waitFor({ state: 'detached', timeout: 10_000 });
    expect(errors).toEqual([]);
    await context.close();
  });

  it('explains the end-user: jason request as the CLI and POST /debug/explain do, with links to the rules', async () => {
    const { page, context, errors } = await open('#explain');
    await live(page);
    const body = { from: 'default/productpage', request: 'GET http://reviews:9080/', headers: ['end-user: jason'], text: true };
    await page.getByLabel('From', { exact: true }).fill(body.from);
    await page.getByLabel('Request line', { exact: true }).fill(body.request);
    await page.getByLabel('Headers', { exact: true }).fill(body.headers.join('\n'));
    await page.getByTestId('explain-submit').click();
    const text = page.getByTestId('explain-text');
    await text.waitFor();
    const shown = await text.textContent();

    const api = (await (await fetch(`${adminUrl()}/debug/explain`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).json()) as { text: string };
    expect(shown).toBe(api.text);
    expect(shown).toMatch(/MATCH #0 default\/reviews\/jason-to-v2: /);
    // The CLI compiles the same files; it assumes workloads hold mesh certificates (serve does only
    // with --xds-tls, not here), so its answer adds the hop's TLS line and is otherwise the same.
    const cli = await promisify(execFile)(process.execPath, [BIN, 'explain', '--config-dir', mesh.dir, '--from', body.from, body.request, '-H', body.headers[0]]);
    const withoutTls = (text: string) => text.split('\n').filter((l) => !/^ {4}tls: /.test(l)).join('\n');
    expect(withoutTls(cli.stdout)).toBe(shown);

    // Each rule it names links to the rules view.
    const link = text.locator('a[data-rule="VirtualService/default/reviews"]').first();
    await shot(page, 'explain');
    await link.click();
    await page.locator('[id="rule:VirtualService/default/reviews"].highlight').waitFor();
    expect(errors).toEqual([]);
    await context.close();
  });

  it('shows a NACKing proxy as NACKED with its message, filters proxies, and opens a config dump', async () => {
    const nacker = new RawAdsClient(mesh.cp.xdsAddress);
    teardown.add(() => nacker.close());
    const node = { id: 'sidecar~10.9.0.7~nacker-1.default~default.svc.cluster.local', metadata: toStruct({ NAMESPACE: 'default', LABELS: { app: 'nacker' } }), user_agent_name: 'envoy' };
    nacker.send({ node, type_url: CLUSTER, resource_names: [] });
    const cds = await nacker.next();
    const message = 'cluster outbound|9080|v1|ratings.default.svc.cluster.local: dashboard test rejection';
    nacker.send({ type_url: CLUSTER, resource_names: [], response_nonce: cds.nonce, error_detail: { code: 3, message } });

    const { page, context, errors } = await open('#proxies');
    await live(page);
    const row = page.locator(`[data-testid=proxy-row][data-proxy-id="${node.id}"]`);
    await expect.poll(() => row.getAttribute('data-state'), { timeout: 10_000 }).toBe('NACKED');
    expect(await page.locator(`[data-testid=nack-row][data-proxy-id="${node.id}"] [data-testid=nack-message]`).textContent()).toContain(message);

    await page.getByLabel('State').selectOption('NACKED');
    expect(await page.locator('[data-testid=proxy-row]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-proxy-id')))).toEqual([node.id]);
    await page.getByLabel('State').selectOption('');
    await page.getByLabel('Label selector').fill('app=productpage');
    // The client holds one xDS stream per channel (per target), all with its node id.
    await expect.poll(() => page.locator('[data-testid=proxy-row]').evaluateAll((rows) => [...new Set(rows.map((r) => r.getAttribute('data-proxy-id')))])).toEqual([client.nodeId]);
    await page.getByLabel('Label selector').fill('version in (v1)');
    await expect.poll(() => page.getByTestId('proxy-selector-error').textContent()).toContain('bad label selector term "version in (v1)"');
    await page.getByLabel('Label selector').fill('');

    await row.getByTestId('config-dump-button').click();
    await page.locator('[data-testid=config-dump-type][data-type=cds]').click();
    const dump = page.locator('[data-testid=config-dump-body][data-type=cds]');
    await dump.waitFor();
    expect(await dump.textContent()).toContain(message);
    expect(await dump.locator('details.resource summary').allTextContents()).toContainEqual(expect.stringContaining('outbound|9080|v1|reviews.default.svc.cluster.local'));
    await shot(page, 'proxies');
    expect(errors).toEqual([]);
    await context.close();
  });

  it('shows the canary at its step with the success rates behind it; its buttons pause and resume it', async () => {
    const { page, context, errors } = await open('#canaries');
    await live(page);
    const card = page.locator('[data-testid=canary][data-canary="Canary/default/ratings"]');
    await expect.poll(() => card.getAttribute('data-phase'), { timeout: 10_000 }).toBe('Progressing');
    expect(await card.getByTestId('canary-weight').textContent()).toBe('20%');
    expect(await card.locator('[data-testid=canary-step]').evaluateAll((els) => els.map((e) => `${e.textContent}:${e.getAttribute('data-status')}`))).toEqual(['20%:current', '50%:todo', '100%:todo']);
    // The client's calls to ratings v1, reported every second.
    await expect.poll(() => card.getByTestId('rate-stable').textContent(), { timeout: 10_000 }).toBe('100%');
    await card.getByTestId('canary-pause').click();
    await expect.poll(() => card.getAttribute('data-phase'), { timeout: 10_000 }).toBe('Paused');
    await shot(page, 'canaries');
    await card.getByTestId('canary-resume').click();
    await expect.poll(() => card.getAttribute('data-phase'), { timeout: 10_000 }).toBe('Progressing');
    expect(errors).toEqual([]);
    await context.close();
  });

  it('offers no canary commands without --dashboard-actions, and polls the state when the event stream is refused', async () => {
    const state = await (await fetch(`${base}/dashboard/api/state`)).json();
    const context = await browser.newContext();
    // What a meshpilot without the flag (and a proxy that drops event streams) would serve.
    await context.route('**/dashboard/events', (r) => r.fulfill({ status: 404, contentType: 'application/json', body: '{"error":"no"}' }));
    await context.route('**/dashboard/api/state', (r) => r.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ ...state, actions: false }) }));
    const page = await context.newPage();
    await page.goto(`${base}/#canaries`);
    await page.locator('[data-testid=live-status][data-mode=polling]').waitFor({ timeout: 10_000 });
    const card = page.locator('[data-testid=canary][data-canary="Canary/default/ratings"]');
    await card.waitFor();
    expect(await card.locator('button').count()).toBe(0);
    expect(await page.getByTestId('actions-off').count()).toBe(1);
    await context.close();
  });

  it('cannot be read by a page on another name that resolves to the admin address (DNS rebinding)', async () => {
    // What rebinding gives an attacker: their name, resolved to the loopback admin address, so
    // their page and the admin API share an origin in the browser's eyes.
    const port = new URL(base).port;
    const rebound = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...LAUNCH_ARGS, '--host-resolver-rules=MAP rebind.example 127.0.0.1'] });
    try {
      const page = await rebound.newPage();
      const nav = await page.goto(`http://rebind.example:${port}/`);
      expect(nav?.status()).toBe(403);
      const reads = await page.evaluate(async () => Promise.all(['/debug/proxies', '/debug/rules', '/dashboard/api/state'].map(async (u) => {
        const r = await fetch(u);
        return { u, status: r.status, text: await r.text() };
      })));
      for (const r of reads) {
        expect(r.status, r.u).toBe(403);
        expect(r.text, r.u).not.toContain('reviews');
      }
      // The same browser on the address itself is served: the check is the name, not the client.
      const own = await rebound.newPage();
      expect((await own.goto(`${base}/`))?.status()).toBe(200);
    } finally {
      await rebound.close();
    }
  });

  it("shows an ingress-host experiment's success from the clusters its guard reads (other services')", async () => {
    const state = await (await fetch(`${base}/dashboard/api/state`)).json();
    const cluster = 'outbound|9080|v1|productpage.default.svc.cluster.local';
    const experiment = { key: 'FaultExperiment/default/shop', host: 'shop.example.com', routes: [], clusters: [cluster], phase: 'Running', active: true, since: new Date().toISOString(), expiresAt: new Date(Date.now() + 600_000).toISOString(), leader: true };
    const load = { windowSeconds: 60, unknownClusters: [], services: [{ host: 'productpage.default.svc.cluster.local', subsets: [{ subset: 'v1', cluster, requestsPerSecond: 3.3, successRate: 95, inFlight: 0, proxies: 1, completed: 200, failed: 10 }] }] };
    const context = await browser.newContext();
    await context.route('**/dashboard/events', (r) => r.fulfill({ status: 204 }));
    await context.route('**/dashboard/api/state', (r) => r.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ ...state, experiments: [experiment], load }) }));
    const page = await context.newPage();
    await page.goto(`${base}/#canaries`);
    const row = page.locator('[data-testid=experiment][data-experiment="FaultExperiment/default/shop"]');
    await row.waitFor();
    // Columns: experiment, host, routes, phase, injecting, service success, ...
    expect(await row.locator('td').nth(5).textContent()).toMatch(/^95(\.0)?\s?%$/);
    await context.close();
  });

  it('draws every view from a state with fields missing or of the wrong type, without a script error', async () => {
    const states = [
      {},
      { generation: 7, graph: null, proxies: null, rules: null, canaries: null, experiments: null, load: null },
      {
        graph: { namespaces: 'x', services: [{ host: 'a.ns.svc' }, null, { host: 'b.ns.svc', subsets: [{}], endpoints: [{}], rules: [{}], policies: { faults: [{}], mirrors: [null], rateLimits: [{}], authorization: ['AuthorizationPolicy/ns/p'] } }], edges: [{ from: 'a.ns.svc', to: 'c.elsewhere' }, { id: 1 }], callers: [{ from: 'x', to: 'a.ns.svc' }, {}] },
        proxies: { proxies: [{ id: 'p1', types: { cds: { state: 'NACKED' } } }, { id: 2 }] },
        rules: { inForce: [{ key: 'VirtualService/ns/v' }, {}], rejected: [{}], errors: [1], warnings: null },
        canaries: [{ key: 'Canary/ns/c', steps: 'x' }, { key: 'Canary/ns/d', steps: [10, 100], step: 1, phase: 'RolledBack' }],
        experiments: [{ key: 'FaultExperiment/ns/e' }],
        actions: true,
      },
    ];
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') errors.push(m.text());
    });
    let current = states[0];
    await context.route('**/dashboard/events', (r) => r.fulfill({ status: 204 }));
    await context.route('**/dashboard/api/state', (r) => r.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(current) }));
    await page.goto(`${base}/`);
    for (const state of states) {
      current = state;
      for (const view of ['graph', 'proxies', 'rules', 'explain', 'canaries']) {
        await page.getByTestId(`tab-${view}`).click();
        await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 50)));
      }
      // The next poll draws the next state.
      await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 2100)));
    }
    await page.getByTestId('tab-graph').click();
    await page.locator('[data-testid=service][data-host="b.ns.svc"]').click();
    await page.getByTestId('service-panel').waitFor();
    expect(errors.filter((e) => !/204|EventSource|Failed to load resource/.test(e))).toEqual([]);
    await context.close();
  });
});
