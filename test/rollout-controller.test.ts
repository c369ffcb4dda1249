// The rollout controller with a fake clock, recorded load and a real state directory: the leader
// decides, saves, logs and signals runtime changes; a restart resumes at the recorded step;
// followers decide nothing and follow the stored state; commands and the admin routes.
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import type { Leadership } from '../control-plane/kube/leadership.ts';
import { createAdminApp } from '../control-plane/observe/admin.ts';
import { Health } from '../control-plane/observe/health.ts';
import { RolloutController } from '../control-plane/rollout/controller.ts';
import { DirStore, type RolloutStore } from '../control-plane/rollout/store.ts';
import type { CanaryRule, ExperimentRule } from '../control-plane/rollout/types.ts';
import { metricValue } from './helpers/admin-http.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { canaryRule, experimentRule, figures, RecordedLoad } from './helpers/rollout-rules.ts';
import { waitFor } from './helpers/wait.ts';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rollout-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

class FakeLeadership implements Leadership {
  private listeners = new Set<(leading: boolean) => void>();
  constructor(private leading: boolean) {}
  isLeader = () => this.leading;
  onChange(l: (leading: boolean) => void) {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  set(leading: boolean) {
    this.leading = leading;
    for (const l of this.listeners) l(leading);
  }
}

const I = 60_000;
const T0 = Date.UTC(2026, 11, 7, 9, 0, 0);

function setup(o: { store?: RolloutStore; dir: string; leader?: boolean | FakeLeadership; load?: RecordedLoad; canaries?: CanaryRule[]; experiments?: ExperimentRule[]; refreshMs?: number; tickMs?: number }) {
  const clock = { t: T0 };
  const logs = captureLogs();
  const load = o.load ?? new RecordedLoad();
  const leadership = o.leader instanceof FakeLeadership ? o.leader : new FakeLeadership(o.leader ?? true);
  const registry = new Registry();
  let changes = 0;
  const model = { canaries: o.canaries ?? [canaryRule({ intervalMs: I })], experiments: o.experiments ?? [] };
  const c = new RolloutController({
    load,
    store: o.store ?? new DirStore(o.dir, logs.logger),
    leadership,
    log: logs.logger,
    registry,
    onRuntimeChange: () => changes++,
    now: () => clock.t,
    // Long timers: the test drives rounds with tick() on its own clock.
    tickMs: o.tickMs ?? 3_600_000,
    refreshMs: o.refreshMs ?? 3_600_000,
  });
  cleanups.push(() => c.stop());
  c.setModel(model);
  const events = () => logs.lines.filter((l) => l.canary || l.experiment).map((l) => l.msg);
  const weight = () => c.runtime(model).canaryWeights.get(model.canaries[0]!.key);
  return { c, clock, logs, load, leadership, registry, model, events, weight, changes: () => changes };
}

const STABLE = canaryRule().stable.clusters[0]!;
const CANARY = canaryRule().canary.clusters[0]!;

/** Healthy traffic during the minute before `at`. */
function healthyMinute(load: RecordedLoad, at: number) {
  load.record(STABLE, at - 30_000, 1000);
  load.record(CANARY, at - 30_000, 200);
}

describe('rollout controller', () => {
  it('the leader drives a healthy canary through every step: saved, logged, metrics, one runtime change per step', async () => {
    const dir = await tempDir();
    const s = setup({ dir });
    await s.c.start();
    await s.c.tick();
    expect(s.events()).toEqual(['canary default/reviews started at 5%']);
    expect(s.weight()).toBe(5);
    expect(s.changes()).toBe(0); // 5% is what the overlay gave the new Canary already
    const weights: number[] = [];
    for (let i = 1; i <= 4; i++) {
      healthyMinute(s.load, T0 + i * I);
      s.clock.t = T0 + i * I - 1;
      await s.c.tick(); // not due yet: nothing judged
      expect(s.c.canaries()[0]!.phase).toBe('Progressing');
      s.clock.t = T0 + i * I;
      await s.c.tick();
      weights.push(s.weight()!);
    }
    expect(weights).toEqual([25, 50, 100, 100]);
    expect(s.c.canaries()[0]).toMatchObject({ phase: 'Promoted', weight: 100, step: 3, leader: true });
    expect(s.events().slice(1)).toEqual([
      'canary default/reviews 5% -> 25%: success 100% over 200 requests',
      'canary default/reviews 25% -> 50%: success 100% over 200 requests',
      'canary default/reviews 50% -> 100%: success 100% over 200 requests',
      'canary default/reviews 100% promoted: success 100% over 200 requests',
    ]);
    expect(s.changes()).toBe(3);
    // Each check judged its step's whole span, [since, now], on the stable and the canary clusters.
    const spans = s.load.queries.map((q) => `${q.cluster === CANARY ? 'canary' : 'stable'}:${(q.since - T0) / I}-${(q.until - T0) / I}`);
    expect(spans).toEqual(['stable:0-1', 'canary:0-1', 'stable:1-2', 'canary:1-2', 'stable:2-3', 'canary:2-3', 'stable:3-4', 'canary:3-4']);
    // Saved: the state directory holds the outcome.
    const saved = JSON.parse(await readFile(path.join(dir, 'Canary_default_reviews.json'), 'utf8'));
    expect(saved).toMatchObject({ key: 'Canary/default/reviews', canary: { phase: 'Promoted', weight: 100, revision: 'r1' } });
    const text = await s.registry.metrics();
    expect(metricValue(text, 'meshpilot_canary_weight', { canary: 'default/reviews' })).toBe(100);
    expect(metricValue(text, 'meshpilot_canary_phase', { canary: 'default/reviews', phase: 'Promoted' })).toBe(1);
    expect(metricValue(text, 'meshpilot_canary_phase', { canary: 'default/reviews', phase: 'Progressing' })).toBe(0);
  });

  it('rolls a failing canary back within two intervals and signals the new weight', async () => {
    const s = setup({ dir: await tempDir() });
    await s.c.start();
    await s.c.tick();
    for (let i = 1; i <= 2; i++) {
      s.load.record(STABLE, T0 + i * I - 1000, 1000);
      s.load.record(CANARY, T0 + i * I - 1000, 70, 30);
      s.clock.t = T0 + i * I;
      await s.c.tick();
    }
    expect(s.weight()).toBe(0);
    expect(s.changes()).toBe(1);
    expect(s.c.canaries()[0]).toMatchObject({ phase: 'RolledBack', weight: 0, failedChecks: 2 });
    expect(s.c.canaries()[0]!.nextCheckAt).toBeUndefined();
    expect(s.events()[2]).toBe('canary default/reviews 5% -> 0%: rolled back: success 70.0% over 100 requests, below 99% (failed check 2 of 2)');
  });

  it('a restart resumes at the recorded step: the runtime has the step before any round, and the rollout goes on', async () => {
    const dir = await tempDir();
    const load = new RecordedLoad();
    const a = setup({ dir, load });
    await a.c.start();
    await a.c.tick();
    for (let i = 1; i <= 2; i++) {
      healthyMinute(load, T0 + i * I);
      a.clock.t = T0 + i * I;
      await a.c.tick();
    }
    expect(a.weight()).toBe(50);
    a.c.stop();

    const b = setup({ dir, load });
    await b.c.start();
    // What the server overlays right after start, before any decision: the recorded 50%, not 5% or the VirtualService's.
    expect(b.weight()).toBe(50);
    expect(b.c.canaries()[0]).toMatchObject({ phase: 'Progressing', step: 2, weight: 50, since: new Date(T0 + 2 * I).toISOString() });
    b.clock.t = T0 + 2 * I + 10_000;
    await b.c.tick();
    expect(b.weight()).toBe(50);
    expect(b.events()).toEqual([]);
    healthyMinute(load, T0 + 3 * I);
    b.clock.t = T0 + 3 * I;
    await b.c.tick();
    expect(b.weight()).toBe(100);
    expect(b.events()).toEqual(['canary default/reviews 50% -> 100%: success 100% over 200 requests']);
  });

  it('a follower decides nothing, refuses commands, follows the stored state, and decides once it leads', async () => {
    const dir = await tempDir();
    const load = new RecordedLoad();
    const followerLead = new FakeLeadership(false);
    const f = setup({ dir, load, leader: followerLead, refreshMs: 20 });
    await f.c.start();
    await f.c.tick();
    expect(await readdir(dir).catch(() => [])).toEqual([]);
    expect(f.c.canaries()[0]).toMatchObject({ phase: 'Pending', weight: 5, leader: false, since: null });
    const refused = await f.c.command('Canary/default/reviews', 'promote');
    expect(refused).toMatchObject({ ok: false, status: 409 });
    expect(!refused.ok && refused.error).toMatch(/not the leader/);

    const leader = setup({ dir, load });
    await leader.c.start();
    await leader.c.tick();
    healthyMinute(load, T0 + I);
    leader.clock.t = T0 + I;
    await leader.c.tick();
    expect(leader.weight()).toBe(25);
    await waitFor(() => f.weight() === 25, { description: 'the follower reads the leader state', timeoutMs: 5000 });
    expect(f.changes()).toBeGreaterThanOrEqual(1);
    expect(f.events()).toEqual([]);
    leader.c.stop();

    // The follower takes over: it decides from the stored step on.
    f.clock.t = T0 + 2 * I;
    healthyMinute(load, T0 + 2 * I);
    followerLead.set(true);
    await waitFor(() => f.weight() === 50, { description: 'the new leader decides', timeoutMs: 5000 });
    expect(f.events()).toEqual(['canary default/reviews 25% -> 50%: success 100% over 200 requests']);
    expect(f.logs.lines.some((l) => l.msg === 'rollouts: leading, deciding canaries and experiments')).toBe(true);
  });

  it('a decision that cannot be saved does not take effect, and is made again at the next round', async () => {
    const dir = await tempDir();
    const logs = captureLogs();
    const real = new DirStore(dir, logs.logger);
    let failing = false;
    const store: RolloutStore = {
      load: () => real.load(),
      saveCanary: (k, st) => (failing ? Promise.reject(new Error('disk full')) : real.saveCanary(k, st)),
      saveExperiment: (k, st) => real.saveExperiment(k, st),
    };
    const s = setup({ dir, store });
    await s.c.start();
    await s.c.tick();
    healthyMinute(s.load, T0 + I);
    s.clock.t = T0 + I;
    failing = true;
    await s.c.tick();
    expect(s.weight()).toBe(5);
    expect(s.changes()).toBe(0);
    expect(s.logs.lines.some((l) => l.msg === 'cannot save canary state; deciding again at the next check' && l.error === 'disk full')).toBe(true);
    failing = false;
    await s.c.tick();
    expect(s.weight()).toBe(25);
    expect(s.changes()).toBe(1);
  });

  it('start retries a store it cannot read instead of starting every canary over', async () => {
    const dir = await tempDir();
    const logs = captureLogs();
    const real = new DirStore(dir, logs.logger);
    await real.saveCanary('Canary/default/reviews', { revision: 'r1', phase: 'Progressing', step: 2, weight: 50, since: T0, failedChecks: 0 });
    let failures = 2;
    const store: RolloutStore = { ...real, load: () => (failures-- > 0 ? Promise.reject(new Error('API server down')) : real.load()), saveCanary: (k, st) => real.saveCanary(k, st), saveExperiment: (k, st) => real.saveExperiment(k, st) };
    const c = new RolloutController({ load: new RecordedLoad(), store, log: logs.logger, onRuntimeChange: () => {}, tickMs: 3_600_000, now: () => T0 });
    cleanups.push(() => c.stop());
    const model = { canaries: [canaryRule({ intervalMs: I })], experiments: [] };
    c.setModel(model);
    await c.start();
    expect(c.runtime(model).canaryWeights.get('Canary/default/reviews')).toBe(50);
    expect(logs.lines.filter((l) => l.msg === 'cannot read rollout state; retrying').map((l) => l.error)).toEqual(['API server down', 'API server down']);
  });

  it('a store that keeps failing is retried once per tick, not in a tight loop on the past due time', async () => {
    const logs = captureLogs();
    let attempts = 0;
    const store: RolloutStore = {
      load: async () => ({ canaries: {}, experiments: {} }),
      saveCanary: async () => {
        attempts++;
        throw new Error('read-only file system');
      },
      saveExperiment: async () => {},
    };
    const c = new RolloutController({ load: new RecordedLoad(), store, log: logs.logger, onRuntimeChange: () => {}, tickMs: 200 });
    cleanups.push(() => c.stop());
    c.setModel({ canaries: [canaryRule()], experiments: [] });
    await c.start();
    await new Promise((r) => setTimeout(r, 700));
    // Rounds at about 0, 200, 400 and 600 ms (a tight loop would have made a hundred).
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(attempts).toBeLessThanOrEqual(8);
  });

  it('a store that never answers fails after storeTimeoutMs instead of stalling every later round', async () => {
    const logs = captureLogs();
    let hang = true;
    const real = new DirStore(await tempDir(), logs.logger);
    const store: RolloutStore = {
      load: () => real.load(),
      saveCanary: (k, st) => (hang ? new Promise<void>(() => {}) : real.saveCanary(k, st)),
      saveExperiment: (k, st) => real.saveExperiment(k, st),
    };
    const c = new RolloutController({ load: new RecordedLoad(), store, log: logs.logger, onRuntimeChange: () => {}, tickMs: 3_600_000, storeTimeoutMs: 50 });
    cleanups.push(() => c.stop());
    c.setModel({ canaries: [canaryRule()], experiments: [] });
    await c.start();
    await c.tick();
    expect(c.canaries()[0]!.phase).toBe('Pending');
    expect(logs.lines.find((l) => l.msg === 'cannot save canary state; deciding again at the next check')?.error).toBe('saving the state took longer than 50 ms');
    const r = await c.command('Canary/default/reviews', 'pause');
    expect(r).toMatchObject({ ok: false, status: 503, error: "cannot save the canary's state: saving the state took longer than 50 ms" });
    hang = false;
    expect(await c.command('Canary/default/reviews', 'pause')).toMatchObject({ ok: true, entry: { phase: 'Paused' } });
  });

  it('commands: promote, pause and resume, abort; refused ones are 409 and unknown canaries 404', async () => {
    const s = setup({ dir: await tempDir() });
    await s.c.start();
    await s.c.tick();
    const paused = await s.c.command('Canary/default/reviews', 'pause');
    expect(paused).toMatchObject({ ok: true, entry: { phase: 'Paused', weight: 5 } });
    // Paused: a due check judges nothing even on bad load.
    s.load.record(CANARY, T0 + 1000, 0, 500);
    s.clock.t = T0 + 5 * I;
    await s.c.tick();
    expect(s.c.canaries()[0]!.phase).toBe('Paused');
    expect(await s.c.command('Canary/default/reviews', 'pause')).toMatchObject({ ok: false, status: 409, error: 'the canary is paused already' });
    expect(await s.c.command('Canary/default/reviews', 'resume')).toMatchObject({ ok: true, entry: { phase: 'Progressing', nextCheckAt: new Date(T0 + 6 * I).toISOString() } });
    expect(await s.c.command('Canary/default/reviews', 'abort')).toMatchObject({ ok: true, entry: { phase: 'RolledBack', weight: 0, reason: 'aborted' } });
    expect(s.weight()).toBe(0);
    expect(s.changes()).toBe(1);
    expect(await s.c.command('Canary/default/reviews', 'promote')).toMatchObject({ ok: false, status: 409 });
    expect(await s.c.command('Canary/default/nope', 'promote')).toMatchObject({ ok: false, status: 404, error: 'no Canary Canary/default/nope is in force' });
    expect(s.events()).toEqual(['canary default/reviews started at 5%', 'canary default/reviews 5% paused', 'canary default/reviews 5% resumed', 'canary default/reviews 5% -> 0%: rolled back: aborted']);
  });

  it('experiments: stop on expiry and when the guard trips over its window, with runtime changes and metrics', async () => {
    const load = new RecordedLoad();
    const expiring = experimentRule({ key: 'FaultExperiment/default/short', name: 'short', expiresAtMs: T0 + 30_000, guard: undefined });
    const guarded = experimentRule({ expiresAtMs: T0 + 3_600_000 });
    const s = setup({ dir: await tempDir(), load, canaries: [], experiments: [expiring, guarded] });
    await s.c.start();
    await s.c.tick();
    const active = () => [...s.c.runtime(s.model).activeExperiments].sort();
    expect(active()).toEqual([guarded.key, expiring.key]);
    // Errors before the experiment began do not count; 10% errors inside the window trip it.
    load.record(guarded.clusters[0]!, T0 - 1000, 0, 1000);
    s.clock.t = T0 + 20_000;
    await s.c.tick();
    expect(active()).toHaveLength(2);
    s.clock.t = T0 + 29_999;
    await s.c.tick();
    expect(active()).toHaveLength(2);
    load.record(guarded.clusters[0]!, T0 + 31_000, 90, 10);
    s.clock.t = T0 + 40_000;
    await s.c.tick();
    expect(active()).toEqual([]);
    expect(s.changes()).toBe(1);
    expect(s.c.experiments().map((e) => [e.key, e.phase, e.reason])).toEqual([
      [expiring.key, 'Expired', 'expired at 2026-12-07T09:00:30.000Z'],
      [guarded.key, 'Tripped', 'guard tripped: success 90.0% over 100 requests, below 95%'],
    ]);
    // The guard read the window [now - 30 s, now] (after the experiment began).
    expect(load.queries.at(-1)).toMatchObject({ since: T0 + 10_000, until: T0 + 40_000 });
    const text = await s.registry.metrics();
    expect(metricValue(text, 'meshpilot_experiment_active', { experiment: 'default/ratings-delay' })).toBe(0);
    expect(await s.c.stopExperiment(guarded.key)).toMatchObject({ ok: false, status: 409, error: 'the experiment is tripped already' });
  });

  it('runs on its own timer with the real clock', async () => {
    const logs = captureLogs();
    // Ten good requests in any span.
    const load = { figures: () => figures(10) };
    const rule = canaryRule({ intervalMs: 150, steps: [50, 100], analysis: { minRequests: 1 } });
    let changes = 0;
    const c = new RolloutController({ load, store: new DirStore(await tempDir(), logs.logger), log: logs.logger, onRuntimeChange: () => changes++, tickMs: 1000 });
    cleanups.push(() => c.stop());
    c.setModel({ canaries: [rule], experiments: [] });
    await c.start();
    await waitFor(() => c.canaries()[0]!.phase === 'Promoted', { timeoutMs: 5000, description: 'promoted by the timer' });
    expect(changes).toBe(1);
  });

  it('forgets the state of a rule gone from the model only after a while', async () => {
    const dir = await tempDir();
    const s = setup({ dir });
    await s.c.start();
    await s.c.tick();
    s.c.setModel({ canaries: [], experiments: [] });
    s.clock.t = T0 + 60_000;
    await s.c.tick();
    expect(await readdir(dir)).toEqual(['Canary_default_reviews.json']);
    s.clock.t = T0 + 60_000 + 10 * 60_000;
    await s.c.tick();
    await waitFor(async () => (await readdir(dir)).length === 0, { timeoutMs: 2000 });
  });
});

describe('state directory', () => {
  it('skips (and logs) a file that is not a state, loading the others', async () => {
    const dir = await tempDir();
    const logs = captureLogs();
    const store = new DirStore(dir, logs.logger);
    await store.saveCanary('Canary/default/reviews', { revision: 'r1', phase: 'Paused', step: 1, weight: 25, since: 5, failedChecks: 1, reason: 'paused by command' });
    await store.saveExperiment('FaultExperiment/qa/x', { revision: 'e', phase: 'Running', since: 7 });
    await writeFile(path.join(dir, 'broken.json'), '{"key": "Canary/default/a", "canary": {"revision": "r", "phase": "Sideways"');
    await writeFile(path.join(dir, 'wrong.json'), JSON.stringify({ key: 'Canary/default/b', canary: { revision: 'r', phase: 'Paused', step: '1', weight: 1, since: 1, failedChecks: 0 } }));
    const loaded = await new DirStore(dir, logs.logger).load();
    expect(loaded).toEqual({
      canaries: { 'Canary/default/reviews': { revision: 'r1', phase: 'Paused', step: 1, weight: 25, since: 5, failedChecks: 1, reason: 'paused by command' } },
      experiments: { 'FaultExperiment/qa/x': { revision: 'e', phase: 'Running', since: 7 } },
    });
    const warned = logs.lines.filter((l) => l.msg === 'ignoring unreadable rollout state file').map((l) => [path.basename(l.file), l.error]);
    expect(warned[0]![0]).toBe('broken.json');
    expect(warned[1]).toEqual(['wrong.json', 'canary.step: expected a number']);
    // Written atomically: no temporary files stay behind.
    expect((await readdir(dir)).sort()).toEqual(['Canary_default_reviews.json', 'FaultExperiment_qa_x.json', 'broken.json', 'wrong.json']);
  });

  it('writes of one rule land in order, the last one wins', async () => {
    const dir = await tempDir();
    const store = new DirStore(dir, captureLogs().logger);
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.saveCanary('Canary/default/reviews', { revision: 'r', phase: 'Progressing', step: 0, weight: i, since: i, failedChecks: 0 })));
    expect((await store.load()).canaries['Canary/default/reviews']!.weight).toBe(19);
  });

  it('a missing directory is an empty store', async () => {
    const dir = await tempDir();
    expect(await new DirStore(path.join(dir, 'none'), captureLogs().logger).load()).toEqual({ canaries: {}, experiments: {} });
  });
});

describe('admin routes', () => {
  async function serve(c: RolloutController): Promise<string> {
    // The admin API itself (only the rollout routes are asked for: the xDS parts are stand-ins).
    const app = createAdminApp({ state: () => ({}) as never, ads: {} as never, cache: {} as never, health: new Health(), rollouts: c });
    const server = await new Promise<Server>((resolve) => {
      const srv = app.listen(0, '127.0.0.1', () => resolve(srv));
    });
    cleanups.push(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
    const a = server.address();
    return `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  }

  it('list canaries and experiments, run commands, answer 404 and 409 as JSON', async () => {
    const exp = experimentRule({ expiresAtMs: T0 + 3_600_000 });
    const s = setup({ dir: await tempDir(), experiments: [exp] });
    await s.c.start();
    await s.c.tick();
    const url = await serve(s.c);
    const canaries = await (await fetch(`${url}/debug/canaries`)).json();
    expect(canaries).toEqual([
      {
        key: 'Canary/default/reviews', host: 'reviews.default.svc.cluster.local', route: 'reviews-canary', stable: 'v1', canary: 'v2', steps: [5, 25, 50, 100],
        phase: 'Progressing', step: 0, weight: 5, since: new Date(T0).toISOString(), failedChecks: 0, nextCheckAt: new Date(T0 + I).toISOString(), leader: true,
      },
    ]);
    const exps = await (await fetch(`${url}/debug/experiments`)).json();
    expect(exps).toEqual([{ key: exp.key, host: exp.host, routes: [], clusters: exp.clusters, phase: 'Running', active: true, since: new Date(T0).toISOString(), expiresAt: new Date(exp.expiresAtMs).toISOString(), leader: true }]);

    const post = async (p: string) => {
      const r = await fetch(`${url}${p}`, { method: 'POST' });
      return { status: r.status, body: await r.json() };
    };
    expect(await post('/debug/canaries/default/reviews/promote')).toMatchObject({ status: 200, body: { canary: { phase: 'Promoted', weight: 100 } } });
    expect(await post('/debug/canaries/default/reviews/abort')).toMatchObject({ status: 409, body: { error: expect.stringMatching(/promoted already/) } });
    expect(await post('/debug/canaries/default/other/abort')).toMatchObject({ status: 404 });
    expect(await post('/debug/canaries/default/reviews/explode')).toMatchObject({ status: 404, body: { error: 'no such canary command "explode" (commands: promote, pause, resume, abort)' } });
    expect(await post('/debug/experiments/default/ratings-delay/stop')).toMatchObject({ status: 200, body: { experiment: { phase: 'Stopped', active: false } } });
    expect(await post('/debug/experiments/default/ratings-delay/stop')).toMatchObject({ status: 409 });
    expect(await post('/debug/experiments/default/nope/stop')).toMatchObject({ status: 404 });
    // Without a controller the routes are not there (the admin API's JSON 404).
    const bare = createAdminApp({ state: () => ({}) as never, ads: {} as never, cache: {} as never, health: new Health() });
    const srv = await new Promise<Server>((resolve) => {
      const x = bare.listen(0, '127.0.0.1', () => resolve(x));
    });
    cleanups.push(() => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()); }));
    const addr = srv.address();
    const r = await fetch(`http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/debug/canaries`);
    expect([r.status, await r.json()]).toEqual([404, { error: 'no such endpoint: GET /debug/canaries' }]);
  });
});
