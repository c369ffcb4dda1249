// The canary and experiment command lines as a user runs them (bin/meshpilot.js in a child
// process) against a stub of the admin API that answers the shapes of the issue 18 design
// (GET /debug/canaries, POST /debug/canaries/:ns/:name/:cmd, GET /debug/experiments,
// POST /debug/experiments/:ns/:name/stop). The real routes are proven by the e2e tests.
import fs from 'node:fs';
import type { Server } from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import express from 'express';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseConfigFile } from '../control-plane/config/load.ts';
import { spawnServe } from './helpers/serve-process.ts';
import { Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';
import { meshpilot } from './helpers/cli-run.ts';
import type { CanaryView, ExperimentView } from '../control-plane/rollout/admin-views.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-cli-canary-'));
const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function canary(ns: string, name: string, over: Partial<CanaryView> = {}): CanaryView {
  return {
    key: `Canary/${ns}/${name}`,
    host: `${name}.${ns}.svc.cluster.local`,
    route: 'canary',
    stable: 'v1',
    canary: 'v2',
    steps: [10, 25, 50, 100],
    phase: 'Progressing',
    step: 0,
    weight: 10,
    since: new Date().toISOString(),
    failedChecks: 0,
    leader: true,
    ...over,
  };
}

/**
 * The stub admin API. `canaries` is what GET answers; a key in `scripts` makes each GET answer the
 * next entry of its list (the last one repeats), as a rollout seen by a poller.
 */
const stub = {
  canaries: [] as CanaryView[],
  experiments: [] as ExperimentView[],
  scripts: new Map<string, CanaryView[]>(),
  posts: [] as string[],
};

async function listen(app: express.Express): Promise<string> {
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
  cleanups.push(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

function stubApp(): express.Express {
  const app = express();
  app.get('/debug/canaries', (_req, res) => {
    for (const [key, script] of stub.scripts) {
      const next = script.length > 1 ? script.shift()! : script[0]!;
      stub.canaries = [...stub.canaries.filter((c) => c.key !== key), next];
    }
    res.json(stub.canaries);
  });
  app.post('/debug/canaries/:ns/:name/:cmd', (req, res) => {
    stub.posts.push(req.path);
    const c = stub.canaries.find((x) => x.key === `Canary/${req.params.ns}/${req.params.name}`);
    if (!c) return void res.status(404).json({ error: `no canary ${req.params.ns}/${req.params.name}` });
    if (!c.leader) return void res.status(409).json({ error: 'this replica is not the leader (meshpilot-0 is)' });
    const next: Record<string, Partial<CanaryView>> = {
      pause: { phase: 'Paused', reason: 'paused by hand' },
      resume: { phase: 'Progressing', reason: 'resumed by hand' },
      promote: { phase: 'Promoted', weight: 100, step: c.steps.length - 1, reason: 'promoted by hand' },
      abort: { phase: 'RolledBack', weight: 0, reason: 'aborted by hand' },
    };
    if (!next[req.params.cmd]) return void res.status(400).json({ error: `unknown command ${req.params.cmd}` });
    Object.assign(c, next[req.params.cmd]);
    res.json({ canary: c });
  });
  app.get('/debug/experiments', (_req, res) => res.json(stub.experiments));
  app.post('/debug/experiments/:ns/:name/stop', (req, res) => {
    stub.posts.push(req.path);
    const e = stub.experiments.find((x) => x.key === `FaultExperiment/${req.params.ns}/${req.params.name}`);
    if (!e) return void res.status(404).json({ error: 'no such experiment' });
    Object.assign(e, { phase: 'Stopped', reason: 'stopped by hand' });
    res.json({ experiment: e });
  });
  return app;
}

const admin = await listen(stubApp());
/** An admin API from before canaries: express answers its own 404 page. */
const oldAdmin = await listen(express());

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

beforeEach(() => {
  stub.canaries = [
    canary('default', 'reviews', { host: 'reviews.default.svc.cluster.local', route: 'v3-canary', canary: 'v3', step: 1, weight: 25, failedChecks: 1, reason: 'success 97.0% < 99% over 200 requests', nextCheckAt: new Date(Date.now() + 40_000).toISOString() }),
    canary('shop', 'cart', { phase: 'Paused', reason: 'paused by hand' }),
  ];
  stub.experiments = [];
  stub.scripts.clear();
  stub.posts = [];
});

describe('meshpilot canary status', () => {
  it('prints one line per canary: key, host/route, phase, weight, step i/n, failed checks, next check, reason', async () => {
    const r = await meshpilot(['canary', 'status', '--admin', admin]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [header, ...rows] = r.stdout.trimEnd().split('\n');
    expect(header!.split(/\s{2,}/)).toEqual(['CANARY', 'HOST/ROUTE', 'PHASE', 'WEIGHT', 'STEP', 'FAILED', 'NEXT CHECK', 'REASON']);
    expect(rows).toHaveLength(2);
    expect(rows[0]!.split(/\s{2,}/)).toEqual(['default/reviews', 'reviews.default.svc.cluster.local/v3-canary', 'Progressing', '25%', '2/4', '1', expect.stringMatching(/^in (3\d|40)s$/), 'success 97.0% < 99% over 200 requests']);
    expect(rows[1]!.split(/\s{2,}/)).toEqual(['shop/cart', 'cart.shop.svc.cluster.local/canary', 'Paused', '10%', '1/4', '0', '-', 'paused by hand']);
  });

  it('one canary by NS/NAME, as JSON; an unknown one is an error naming the known ones', async () => {
    const r = await meshpilot(['canary', 'status', 'default/reviews', '-o', 'json', '--admin', admin]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([stub.canaries[0]]);
    const unknown = await meshpilot(['canary', 'status', 'default/nope', '--admin', admin]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe('error: no canary default/nope (known: default/reviews, shop/cart)\n');
  });

  it('tells a replica that is not the leader', async () => {
    stub.canaries = [canary('default', 'reviews', { leader: false })];
    const r = await meshpilot(['canary', 'status', '--admin', admin]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^note: the replica that answered is not the leader/);
  });

  it('an admin API that does not answer: which URL, and how to give another (flag or MESHPILOT_ADMIN)', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const byFlag = await meshpilot(['canary', 'status', '--admin', url]);
    expect(byFlag.code).toBe(1);
    expect(byFlag.stderr).toBe(`error: cannot reach the admin API at ${url} (connection refused): check --admin: serve prints its admin address at start ("admin API: ...")\n`);
    const byEnv = await meshpilot(['canary', 'pause', 'default/reviews'], { MESHPILOT_ADMIN: url.replace('http://', '') });
    expect(byEnv.code).toBe(1);
    expect(byEnv.stderr).toBe(`error: cannot reach the admin API at ${url} (connection refused): the URL comes from MESHPILOT_ADMIN; serve prints its admin address at start ("admin API: ...")\n`);
  });

  it('the environment names the admin API when --admin is not given', async () => {
    const r = await meshpilot(['canary', 'status', '-o', 'json'], { MESHPILOT_ADMIN: admin });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveLength(2);
  });

  it('a control plane without canaries says so', async () => {
    const r = await meshpilot(['canary', 'status', '--admin', oldAdmin]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`error: ${oldAdmin} has no /debug/canaries: this control plane does not run canaries (an older meshpilot?)\n`);
  });
});

describe('meshpilot canary promote|pause|resume|abort', () => {
  it('POSTs the command and prints the canary as it is after it', async () => {
    const expected: Record<string, string> = {
      pause: 'default/reviews: Paused, 25% v3 (step 2/4), 1 failed check: paused by hand',
      resume: 'default/reviews: Progressing, 25% v3 (step 2/4), 1 failed check: resumed by hand',
      promote: 'default/reviews: Promoted, 100% v3 (step 4/4), 1 failed check: promoted by hand',
      abort: 'default/reviews: RolledBack, 0% v3 (step 4/4), 1 failed check: aborted by hand',
    };
    for (const [cmd, line] of Object.entries(expected)) {
      const r = await meshpilot(['canary', cmd, 'default/reviews', '--admin', admin]);
      expect(r.stderr, cmd).toBe('');
      expect(r.stdout, cmd).toBe(`${line}\n`);
      expect(r.code, cmd).toBe(0);
    }
    expect(stub.posts).toEqual(['pause', 'resume', 'promote', 'abort'].map((c) => `/debug/canaries/default/reviews/${c}`));
  });

  it('404: an unknown canary, with the known ones; 409: the refusal as the control plane words it', async () => {
    const unknown = await meshpilot(['canary', 'promote', 'default/nope', '--admin', admin]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe('error: no canary default/nope (known: default/reviews, shop/cart)\n');
    stub.canaries.push(canary('default', 'follower', { leader: false }));
    const refused = await meshpilot(['canary', 'pause', 'default/follower', '--admin', admin]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe('error: pause default/follower refused: this replica is not the leader (meshpilot-0 is)\n');
    const bad = await meshpilot(['canary', 'pause', 'a/b/c', '--admin', admin]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe('error: "a/b/c" is not NAMESPACE/NAME (e.g. default/reviews)\n');
  });
});

describe('meshpilot wait --canary', () => {
  const step = (weight: number, i: number, over: Partial<CanaryView> = {}) => canary('default', 'reviews', { canary: 'v3', weight, step: i, ...over });

  it('prints each weight change and exits 0 when the canary is promoted', async () => {
    stub.scripts.set('Canary/default/reviews', [step(10, 0), step(10, 0), step(25, 1, { reason: 'success 100.0% over 120 requests' }), step(50, 2), step(50, 2), step(100, 3, { phase: 'Promoted', reason: 'promoted: success 100% over 300 requests' })]);
    const r = await meshpilot(['wait', '--canary', 'default/reviews', '--timeout', '20s', '--admin', admin]);
    expect(r.stderr).toBe('');
    expect(r.stdout.trimEnd().split('\n')).toEqual([
      'default/reviews: Progressing, 10% v3 (step 1/4)',
      'default/reviews: 10% -> 25% v3 (step 2/4): success 100.0% over 120 requests',
      'default/reviews: 25% -> 50% v3 (step 3/4)',
      'default/reviews: 50% -> 100% v3 (step 4/4), Promoted: promoted: success 100% over 300 requests',
      'canary default/reviews promoted: 100% v3 (step 4/4): success 100% over 300 requests',
    ]);
    expect(r.code).toBe(0);
  });

  it('exits 3 when the canary is rolled back, saying why', async () => {
    stub.scripts.set('Canary/default/reviews', [
      step(10, 0),
      step(25, 1),
      step(25, 1, { failedChecks: 1, reason: 'success 70.0% < 99% over 40 requests' }),
      step(0, 1, { phase: 'RolledBack', failedChecks: 2, reason: 'rolled back: success 69.0% < 99% over 42 requests (failed check 2 of 2)' }),
    ]);
    const r = await meshpilot(['wait', '--canary', 'default/reviews', '--timeout', '20s', '--admin', admin]);
    expect(r.stdout.trimEnd().split('\n')).toEqual([
      'default/reviews: Progressing, 10% v3 (step 1/4)',
      'default/reviews: 10% -> 25% v3 (step 2/4)',
      'default/reviews: check failed at 25% (1 failed): success 70.0% < 99% over 40 requests',
      'default/reviews: check failed at 25% (2 failed): rolled back: success 69.0% < 99% over 42 requests (failed check 2 of 2)',
      'default/reviews: 25% -> 0% v3 (step 2/4), RolledBack',
    ]);
    expect(r.stderr).toBe('canary default/reviews rolled back: success 69.0% < 99% over 42 requests (failed check 2 of 2)\n');
    expect(r.code).toBe(3);
  });

  it('times out with exit 1 and the state it last saw; waits for a canary not known yet', async () => {
    const still = await meshpilot(['wait', '--canary', 'default/reviews', '--timeout', '1s', '--admin', admin]);
    expect(still.code).toBe(1);
    expect(still.stderr).toBe('timed out after 1s: default/reviews: Progressing, 25% v3 (step 2/4), 1 failed check: success 97.0% < 99% over 200 requests\n');
    const missing = await meshpilot(['wait', '--canary', 'default/later', '--timeout', '1s', '--admin', admin]);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe('default/later: not known to the control plane yet; waiting for it\n');
    expect(missing.stderr).toBe(`timed out after 1s: no canary default/later at ${admin} (known: default/reviews, shop/cart)\n`);
    const url = `http://127.0.0.1:${await closedPort()}`;
    const down = await meshpilot(['wait', '--canary', 'default/reviews', '--timeout', '500ms', '--admin', url]);
    expect(down.code).toBe(1);
    expect(down.stderr).toBe(`timed out after 0.5s: could not read ${url}/debug/canaries: connection refused\n`);
  });

  it('a canary that appears during the wait is followed; a control plane without canaries ends the wait at once', async () => {
    stub.scripts.set('Canary/default/new', [canary('default', 'new', { phase: 'Promoted', weight: 100, step: 3 })]);
    stub.canaries = [];
    const r = await meshpilot(['wait', '--canary', 'new', '--timeout', '10s', '--admin', admin]);
    expect(r.code).toBe(0);
    const old = await meshpilot(['wait', '--canary', 'default/reviews', '--timeout', '10s', '--admin', oldAdmin]);
    expect(old.code).toBe(1);
    expect(old.stderr).toBe(`${oldAdmin}/debug/canaries answered 404: this control plane does not run canaries (an older meshpilot?)\n`);
  });

  it('needs exactly one thing to wait for (exit 2)', async () => {
    const none = await meshpilot(['wait', '--admin', admin]);
    expect(none.code).toBe(2);
    const both = await meshpilot(['wait', '--until-synced', '--canary', 'default/reviews', '--admin', admin]);
    expect(both.code).toBe(2);
    expect(both.stderr).toBe('error: say what to wait for: --until-synced or --canary NS/NAME (not both)\n');
  });
});

describe('meshpilot experiment stop|list', () => {
  const running = (name: string, over: Partial<ExperimentView> = {}): ExperimentView => ({
    key: `FaultExperiment/default/${name}`,
    host: 'ratings.default.svc.cluster.local',
    routes: [],
    clusters: ['outbound|9080||ratings.default.svc.cluster.local'],
    phase: 'Running',
    active: true,
    since: new Date().toISOString(),
    expiresAt: new Date(Date.now() + 125_000).toISOString(),
    leader: true,
    ...over,
  });

  it('list: one line per experiment', async () => {
    stub.experiments = [running('ratings-503'), running('slow', { routes: ['a', 'b'], phase: 'Tripped', expiresAt: '2026-12-07T10:00:00Z', reason: 'success 80.0% < 95% over 60 requests' })];
    const r = await meshpilot(['experiment', 'list', '--admin', admin]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n').map((l) => l.split(/\s{2,}/));
    expect(lines).toEqual([
      ['EXPERIMENT', 'HOST', 'ROUTES', 'PHASE', 'EXPIRES', 'REASON'],
      ['default/ratings-503', 'ratings.default.svc.cluster.local', '(all)', 'Running', expect.stringMatching(/^in 2m0[0-5]s$/)],
      ['default/slow', 'ratings.default.svc.cluster.local', 'a,b', 'Tripped', '2026-12-07T10:00:00Z', 'success 80.0% < 95% over 60 requests'],
    ]);
  });

  it('stop: POSTs and says so; an unknown one is an error', async () => {
    stub.experiments = [running('ratings-503')];
    const r = await meshpilot(['experiment', 'stop', 'default/ratings-503', '--admin', admin]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('stopped default/ratings-503: stopped by hand (the rule stays in place with phase Stopped; delete it when done)\n');
    expect(stub.posts).toEqual(['/debug/experiments/default/ratings-503/stop']);
    const unknown = await meshpilot(['experiment', 'stop', 'default/nope', '--admin', admin]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe('error: no fault experiment default/nope (known: default/ratings-503)\n');
  });
});

describe('meshpilot experiment start', () => {
  function bookinfoCopy(name: string): string {
    const dir = path.join(tmp, name);
    fs.cpSync('examples/bookinfo', dir, { recursive: true });
    return dir;
  }

  it('writes DIR/experiment-NAME.yaml: the FaultExperiment of the flags, expiring --for from now, valid for validate', async () => {
    const dir = bookinfoCopy('start');
    const before = Date.now();
    const r = await meshpilot(['experiment', 'start', 'reviews-unavailable', '--host', 'reviews', '--route', 'v3-canary', '--abort-grpc', '14', '--percent', '30', '--for', '10m', '--guard-min-success', '95', '--guard-min-requests', '20', '--guard-window', '30s', '--config-dir', dir]);
    const after = Date.now();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const file = path.join(dir, 'experiment-reviews-unavailable.yaml');
    expect(r.stdout).toMatch(new RegExp(`^wrote ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: FaultExperiment default/reviews-unavailable runs until \\S+Z\\n$`));
    const doc = parseYaml(fs.readFileSync(file, 'utf8'));
    expect(doc).toEqual({
      apiVersion: 'traffic.meshpilot.io/v1alpha1',
      kind: 'FaultExperiment',
      metadata: { name: 'reviews-unavailable', namespace: 'default' },
      spec: {
        target: { host: 'reviews', routes: ['v3-canary'] },
        fault: { abort: { grpcStatus: 'UNAVAILABLE', percentage: { value: 30 } } },
        expiresAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
        guard: { minSuccessRate: 95, minRequests: 20, window: '30s' },
      },
    });
    const expires = Date.parse(doc.spec.expiresAt);
    expect(expires).toBeGreaterThanOrEqual(before + 600_000);
    expect(expires).toBeLessThanOrEqual(after + 601_000);
    // Only the rule is left in the directory (the temp file was renamed).
    expect(fs.readdirSync(dir).filter((f) => f.includes('experiment'))).toEqual(['experiment-reviews-unavailable.yaml']);
    const v = await meshpilot(['validate', '--config-dir', dir]);
    expect(v.stdout).toMatch(/10 rules valid, 0 errors/);
    expect(v.code).toBe(0);
  });

  it('-o yaml prints it (for kubectl apply -f -): an HTTP abort and a delay, every route of the host', async () => {
    const r = await meshpilot(['experiment', 'start', 'slow-ratings', '--host', 'ratings.default.svc.cluster.local', '--abort-http', '503', '--delay', '2s', '--percent', '12.5', '--for', '90s', '--namespace', 'default', '-o', 'yaml']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^# Fault experiment written by `meshpilot experiment start`/);
    const doc = parseYaml(r.stdout);
    expect(doc.spec.target).toEqual({ host: 'ratings.default.svc.cluster.local' });
    expect(doc.spec.fault).toEqual({ delay: { fixedDelay: '2s', percentage: { value: 12.5 } }, abort: { httpStatus: 503, percentage: { value: 12.5 } } });
    expect(doc.spec.guard).toBeUndefined();
    // The project's own validator takes it as it is.
    const parsed = parseConfigFile('stdin.yaml', r.stdout);
    expect(parsed.documents.flatMap((d) => d.errors)).toEqual([]);
    expect(parsed.documents[0]!.object!.key).toBe('FaultExperiment/default/slow-ratings');
  });

  it('a bad flag is refused with the schema\'s error, named by the flag, and nothing is written', async () => {
    const dir = bookinfoCopy('bad-flag');
    const bad = await meshpilot(['experiment', 'start', 'x', '--host', 'reviews', '--abort-grpc', 'NOPE', '--percent', '130', '--for', '10m', '--config-dir', dir]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^error: the experiment is not valid:\n/);
    expect(bad.stderr).toContain('  --abort-grpc: spec.fault.abort.grpcStatus: unknown gRPC status "NOPE"');
    expect(bad.stderr).toContain('  --percent: spec.fault.abort.percentage.value: must be a percentage from 0 to 100');
    const none = await meshpilot(['experiment', 'start', 'x', '--host', 'reviews', '--percent', '10', '--for', '10m', '--config-dir', dir]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('  --abort-http, --abort-grpc or --delay: spec.fault: fault must set delay, abort or both');
    const where = await meshpilot(['experiment', 'start', 'x', '--host', 'reviews', '--abort-http', '503', '--percent', '10', '--for', '10m']);
    expect(where.code).toBe(1);
    expect(where.stderr).toBe('error: say where the rule goes: --config-dir DIR (a file serve reads) or -o yaml (printed, e.g. for kubectl apply -f -)\n');
    expect(fs.readdirSync(dir).filter((f) => f.includes('experiment'))).toEqual([]);
  });

  it('with --config-dir, a route the host does not have is refused before anything is written', async () => {
    const dir = bookinfoCopy('bad-route');
    const r = await meshpilot(['experiment', 'start', 'x', '--host', 'reviews', '--route', 'no-such-route', '--abort-http', '503', '--percent', '10', '--for', '10m', '--config-dir', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: the experiment does not fit the rules in .*:\n {2}.*no-such-route/);
    expect(fs.readdirSync(dir).filter((f) => f.includes('experiment'))).toEqual([]);
  });
});

describe('translate and explain --state-dir', () => {
  // examples/canary's Canary (reviews-canary: v1 stable, v2 canary) at a recorded step.
  const rules = 'examples/canary';
  const node = ['--node-id', 'sidecar~127.0.0.1~productpage-1.default~default.svc.cluster.local', '--node-metadata', '{"NAMESPACE":"default","GENERATOR":"grpc","LABELS":{"app":"productpage"}}'];

  async function stateDir(name: string, state: Record<string, unknown>): Promise<string> {
    const { loadDirectory } = await import('../control-plane/config/load.ts');
    const { compile } = await import('../control-plane/model/compile.ts');
    const [rule] = compile(loadDirectory(rules)).model.canaries;
    const dir = path.join(tmp, name);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'Canary_default_reviews.json'), JSON.stringify({ key: rule!.key, canary: { revision: rule!.revision, since: Date.now(), failedChecks: 0, ...state } }));
    return dir;
  }

  /** The weights of the reviews-canary route in translate's output, by subset. */
  function canaryRouteWeights(stdout: string): Record<string, number> {
    const { resources } = JSON.parse(stdout) as { resources: Array<{ virtual_hosts?: Array<{ routes: Array<{ name: string; route?: { cluster?: string; weighted_clusters?: { clusters: Array<{ name: string; weight: number }> } } }> }> }> };
    const route = resources.flatMap((r) => r.virtual_hosts ?? []).flatMap((v) => v.routes).find((r) => r.name === 'default/reviews/reviews-canary');
    // One destination left (a zero weight dropped): a plain cluster route.
    const clusters = route?.route?.weighted_clusters?.clusters ?? (route?.route?.cluster ? [{ name: route.route.cluster, weight: 100 }] : []);
    return Object.fromEntries(clusters.map((c) => [c.name.split('|')[2], c.weight]));
  }

  it('translate: the weights of the recorded step (rolled back: none to the canary); without it the VirtualService\'s', async () => {
    const at25 = await meshpilot(['translate', '--config-dir', rules, ...node, '--state-dir', await stateDir('state-25', { phase: 'Progressing', step: 1, weight: 25 })]);
    expect(at25.stderr).toBe('');
    expect(canaryRouteWeights(at25.stdout)).toEqual({ v1: 75, v2: 25 });
    const back = await meshpilot(['translate', '--config-dir', rules, ...node, '--state-dir', await stateDir('state-back', { phase: 'RolledBack', step: 2, weight: 0, reason: 'failed checks' })]);
    expect(canaryRouteWeights(back.stdout)).toEqual({ v1: 100 });
    const plain = await meshpilot(['translate', '--config-dir', rules, ...node]);
    expect(canaryRouteWeights(plain.stdout)).toEqual({ v1: 100 });
    const missing = await meshpilot(['translate', '--config-dir', rules, ...node, '--state-dir', path.join(tmp, 'nowhere')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`error: --state-dir ${path.join(tmp, 'nowhere')}: no such directory\n`);
  });

  it('explain: the split of the recorded step, the Canary named as where the weights come from; a bad state file is a warning', async () => {
    const dir = await stateDir('state-50', { phase: 'Progressing', step: 2, weight: 50 });
    fs.writeFileSync(path.join(dir, 'broken.json'), '{');
    const r = await meshpilot(['explain', 'xds:///reviews.default.svc.cluster.local:9080/pkg.Svc/M', '--kind', 'grpc', '--from', 'default/productpage', '--config-dir', rules, '--state-dir', dir]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('forwarded to reviews.default.svc.cluster.local subset v1 50%, reviews.default.svc.cluster.local subset v2 50%');
    expect(r.stdout).toMatch(/weights: .*Canary default\/reviews/);
    expect(r.stderr).toMatch(/^warning: .*broken\.json/);
  });
});

describe('against a real serve (its admin routes, not the stub)', () => {
  const teardown = new Teardown();
  afterAll(() => teardown.run());

  it('status, pause, resume, abort and wait --canary on examples/canary; experiment start into its config dir, list, stop', async () => {
    // No traffic: the Canary holds its first step (too few requests), which commands can move.
    const dir = path.join(tmp, 'served');
    fs.cpSync('examples/canary', path.join(dir, 'rules'), { recursive: true });
    const { lines } = spawnServe(teardown, ['--config-dir', path.join(dir, 'rules'), '--state-dir', path.join(dir, 'state')]);
    await waitFor(() => lines.some((l) => l.msg === 'admin API listening'), { description: 'admin up', timeoutMs: 20_000 });
    const env = { MESHPILOT_ADMIN: String(lines.find((l) => l.msg === 'admin API listening')!.address) };

    await waitFor(async () => /Progressing/.test((await meshpilot(['canary', 'status', 'default/reviews'], env)).stdout), { description: 'canary started', timeoutMs: 20_000, intervalMs: 200 });
    const status = await meshpilot(['canary', 'status'], env);
    expect(status.stdout.trimEnd().split('\n')[1]!.split(/\s{2,}/).slice(0, 6)).toEqual(['default/reviews', 'reviews.default.svc.cluster.local/reviews-canary', 'Progressing', '10%', '1/4', '0']);
    expect((await meshpilot(['canary', 'pause', 'default/reviews'], env)).stdout).toMatch(/^default\/reviews: Paused, 10% v2 \(step 1\/4\)/);
    expect((await meshpilot(['canary', 'resume', 'reviews'], env)).stdout).toMatch(/^default\/reviews: Progressing, 10% v2 \(step 1\/4\)/);
    const unknown = await meshpilot(['canary', 'abort', 'default/nope'], env);
    expect(unknown.stderr).toBe('error: no canary default/nope (known: default/reviews)\n');
    expect((await meshpilot(['canary', 'abort', 'default/reviews'], env)).stdout).toMatch(/^default\/reviews: RolledBack, 0% v2/);
    const waited = await meshpilot(['wait', '--canary', 'default/reviews', '--timeout', '10s'], env);
    expect(waited.code).toBe(3);
    expect(waited.stderr).toMatch(/^canary default\/reviews rolled back/);
    // The state file the rollout keeps is what translate --state-dir reads.
    const node = ['--node-id', 'sidecar~127.0.0.1~productpage-1.default~default.svc.cluster.local', '--node-metadata', '{"NAMESPACE":"default","GENERATOR":"grpc","LABELS":{"app":"productpage"}}'];
    const t = await meshpilot(['translate', '--config-dir', path.join(dir, 'rules'), ...node, '--state-dir', path.join(dir, 'state')]);
    expect(t.stdout).toContain('"weights_from": "Canary/default/reviews"');

    const started = await meshpilot(['experiment', 'start', 'ratings-503', '--host', 'ratings', '--abort-http', '503', '--percent', '10', '--for', '10m', '--config-dir', path.join(dir, 'rules')]);
    expect(started.code).toBe(0);
    await waitFor(async () => /default\/ratings-503 .* Running/.test((await meshpilot(['experiment', 'list'], env)).stdout), { description: 'experiment running', timeoutMs: 20_000, intervalMs: 200 });
    expect((await meshpilot(['experiment', 'stop', 'default/ratings-503'], env)).stdout).toMatch(/^stopped default\/ratings-503/);
    expect((await meshpilot(['experiment', 'list', '-o', 'json'], env)).stdout).toMatch(/"phase": "Stopped"/);
  });
});
