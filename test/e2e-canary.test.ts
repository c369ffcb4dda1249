// End to end: a Canary drives a VirtualService route's weights by itself, judged from the load
// reports (LRS) of real proxyless gRPC clients (@grpc/grpc-js-xds) calling real backends. Short
// intervals; every wait has a deadline and nothing asserts wall-clock time. Shares are checked
// against binomial bounds: 200 calls at p = 0.5 have a standard deviation of 0.035.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane } from '../control-plane/server.ts';
import type { CanaryEntry } from '../control-plane/rollout/controller.ts';
import { startBackends, type BackendSet } from './helpers/backends.ts';
import { REVIEWS } from './helpers/bookinfo-rules.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { targetOf } from './helpers/mesh-files.ts';
import { startTestMesh, streamsSynced, Teardown, type TestMesh } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';
import type { XdsClient } from './helpers/xds-client.ts';
import { httpRoute, to, toYaml, virtualService } from './helpers/yaml-builders.ts';

const TARGET = targetOf('reviews');
const KEY = 'Canary/default/reviews';

/** reviews: one named route, all of it to v1 as written; the Canary sets its effective weights. */
const REVIEWS_RULE = virtualService({ hosts: [REVIEWS], http: [httpRoute([to(REVIEWS, 'v1')], { name: 'main' })] });

interface CanaryOptions { steps: number[]; interval: string; minRequests: number; minSuccessRate?: number; maxFailedChecks?: number }

function canaryRule(o: CanaryOptions): string {
  return toYaml({
    apiVersion: 'traffic.meshpilot.io/v1alpha1',
    kind: 'Canary',
    metadata: { name: 'reviews', namespace: 'default' },
    spec: {
      target: { host: 'reviews', route: 'main' },
      stable: 'v1',
      canary: 'v2',
      steps: o.steps,
      interval: o.interval,
      analysis: { minRequests: o.minRequests, minSuccessRate: o.minSuccessRate ?? 90, maxFailedChecks: o.maxFailedChecks ?? 2 },
    },
  });
}

let backends: BackendSet;
const teardown = new Teardown();

beforeAll(async () => {
  backends = await startBackends([
    { service: 'reviews', version: 'v1' },
    { service: 'reviews', version: 'v2' },
  ]);
});
afterAll(async () => {
  await backends?.stop();
});
afterEach(async () => {
  backends.get('reviews', 'v2').setFailShare(0);
  await teardown.run();
});

// Control planes here report load every 200 ms and decide every 50 ms at most.
const FAST = { loadReporting: { intervalMs: 200 }, rollouts: { tickMs: 50, refreshMs: 500 } };

async function startMesh(canary: CanaryOptions, more: { stateDir?: string; logs?: ReturnType<typeof captureLogs> } = {}): Promise<TestMesh> {
  const mesh = await startTestMesh(teardown, {
    backends: backends.backends,
    files: { 'reviews.yaml': REVIEWS_RULE, 'canary.yaml': canaryRule(canary) },
    prefix: 'e2e-canary',
    controlPlane: { ...FAST, ...(more.stateDir ? { stateDir: more.stateDir } : {}), ...(more.logs ? { logger: more.logs.logger } : {}) },
  });
  expect(mesh.cp.state().errors.map((e) => e.message), 'the rules must be accepted').toEqual([]);
  return mesh;
}

const entry = (mesh: { cp: { rollouts: { canaries(): CanaryEntry[] } } }): CanaryEntry => {
  const e = mesh.cp.rollouts.canaries().find((c) => c.key === KEY);
  if (!e) throw new Error(`${KEY} is not in force`);
  return e;
};

async function ready(client: XdsClient): Promise<void> {
  await waitFor(async () => (await client.call(TARGET)).version !== '', { timeoutMs: 20_000, intervalMs: 100, description: 'a first call to reviews' });
}

const share = (counts: Record<string, number>, key: string) => (counts[key] ?? 0) / Object.values(counts).reduce((a, b) => a + b, 0);
const add = (into: Record<string, number>, counts: Record<string, number>) => {
  for (const [k, n] of Object.entries(counts)) into[k] = (into[k] ?? 0) + n;
};
/** 4.4 standard deviations of a share p over n calls, plus one call. */
const slack = (p: number, n: number) => 4.4 * Math.sqrt((p * (1 - p)) / n) + 1 / n;

/** Canary messages the control plane logged, in order. */
const canaryLines = (logs: ReturnType<typeof captureLogs>) => logs.lines.map((l) => String(l.msg)).filter((m) => m.startsWith('canary default/reviews'));

describe('a Canary with real gRPC clients', () => {
  it('takes a healthy canary through every step, one interval each, and the traffic follows each step', async () => {
    const logs = captureLogs();
    const mesh = await startMesh({ steps: [20, 50, 100], interval: '3s', minRequests: 20 }, { logs });
    const client = mesh.client();
    await ready(client);

    const measured = new Map<number, Record<string, number>>();
    await waitFor(async () => {
      const e = entry(mesh);
      if (e.phase === 'Promoted') return true;
      if (!measured.has(e.weight)) {
        // A new step: once the client runs on the config it was pushed, 200 calls split by its weight.
        await streamsSynced(mesh.cp);
        const counts = await client.split(TARGET, 200);
        if (entry(mesh).since === e.since) measured.set(e.weight, counts);
      } else {
        await client.split(TARGET, 40); // keeps traffic flowing for the analysis
      }
      return false;
    }, { timeoutMs: 40_000, intervalMs: 0, description: 'the canary to be promoted' });

    expect([...measured.keys()]).toEqual([20, 50, 100]);
    for (const [w, counts] of measured) {
      const p = w / 100;
      expect(Object.keys(counts).every((k) => k === 'v1' || k === 'v2'), JSON.stringify(counts)).toBe(true);
      expect(Math.abs(share(counts, 'v2') - p), `v2's share at ${w}%: ${JSON.stringify(counts)}`).toBeLessThanOrEqual(slack(p, 200));
    }
    const e = entry(mesh);
    expect(e).toMatchObject({ phase: 'Promoted', weight: 100, failedChecks: 0 });
    // One judgement per step, each a pass: no hold, no failed check.
    const lines = canaryLines(logs);
    expect(lines.filter((l) => / -> |promoted/.test(l)).length, lines.join('\n')).toBe(3);
    expect(lines.filter((l) => /hold|fail/i.test(l)), lines.join('\n')).toEqual([]);
    expect(lines[0]).toBe('canary default/reviews started at 20%');
    expect(lines[1]).toMatch(/^canary default\/reviews 20% -> 50%: success 100% over [\d,]+ requests$/);
    // The served route names the Canary as the origin of its weights.
    const route = mesh.cp.state().model.routeTables.find((t) => t.host === REVIEWS)!.routes[0]!;
    expect(route.weightsFrom?.key).toBe(KEY);
    await streamsSynced(mesh.cp);
    expect(await client.split(TARGET, 100)).toEqual({ v2: 100 });
  });

  it('rolls a canary failing 30% of its calls back within two intervals; clients never see more failures than its weight allows', async () => {
    backends.get('reviews', 'v2').setFailShare(0.3);
    const logs = captureLogs();
    const mesh = await startMesh({ steps: [20, 50, 100], interval: '2s', minRequests: 20, minSuccessRate: 95, maxFailedChecks: 2 }, { logs });
    const client = mesh.client();
    await ready(client);

    const during: Record<string, number> = {};
    const weights = new Set<number>();
    await waitFor(async () => {
      const e = entry(mesh);
      weights.add(e.weight);
      if (e.phase === 'RolledBack') return true;
      add(during, await client.split(TARGET, 40));
      return false;
    }, { timeoutMs: 30_000, intervalMs: 0, description: 'the canary to be rolled back' });

    const e = entry(mesh);
    expect(e).toMatchObject({ phase: 'RolledBack', weight: 0, failedChecks: 2 });
    expect(e.reason).toMatch(/success/);
    // Never past its first step, and judged exactly twice: both checks failed.
    expect([...weights].filter((w) => w !== 0 && w !== 20)).toEqual([]);
    const lines = canaryLines(logs);
    expect(lines.filter((l) => /fail|roll/i.test(l)).length, lines.join('\n')).toBe(2);
    // Failures seen by the clients: at most 20% x 30% = 6% (plus noise).
    const n = Object.values(during).reduce((a, b) => a + b, 0);
    expect(share(during, 'error:UNAVAILABLE'), JSON.stringify(during)).toBeLessThanOrEqual(0.06 + slack(0.06, n));
    expect(share(during, 'v2'), JSON.stringify(during)).toBeGreaterThan(0);
    // After the rollback nothing reaches the canary.
    await streamsSynced(mesh.cp);
    expect(await client.split(TARGET, 200)).toEqual({ v1: 200 });
  });

  it('holds its step while there is too little traffic to judge, and moves on once there is enough', async () => {
    const logs = captureLogs();
    const mesh = await startMesh({ steps: [20, 100], interval: '500ms', minRequests: 30 }, { logs });
    const client = mesh.client();
    await ready(client);
    await waitFor(() => canaryLines(logs).filter((l) => /hold/.test(l)).length >= 3, { timeoutMs: 15_000, description: 'three judgements that hold' });
    expect(entry(mesh)).toMatchObject({ phase: 'Progressing', weight: 20, failedChecks: 0 });
    await waitFor(async () => {
      await client.split(TARGET, 50);
      return entry(mesh).weight === 100;
    }, { timeoutMs: 20_000, intervalMs: 0, description: 'the canary to move on once calls flow' });
  });

  it('resumes at the recorded step after a restart: clients never see the VirtualService weights again', async () => {
    const stateDir = await mkdtemp(path.join(os.tmpdir(), 'meshpilot-canary-state-'));
    teardown.add(() => rm(stateDir, { recursive: true, force: true }));
    const mesh = await startMesh({ steps: [20, 50, 100], interval: '2s', minRequests: 20 }, { stateDir });
    const client = mesh.client();
    await ready(client);
    await waitFor(async () => {
      await client.split(TARGET, 40);
      return entry(mesh).weight === 50;
    }, { timeoutMs: 30_000, intervalMs: 0, description: 'the canary to reach 50%' });
    const address = mesh.cp.xdsAddress;
    await mesh.cp.stop();

    const restarted = await startControlPlane({ configDir: mesh.dir, xdsListen: address, adminListen: null, debounceMs: 20, logLevel: 'error', stateDir, ...FAST, rollouts: { tickMs: 60_000 } });
    teardown.add(() => restarted.stop());
    // Its very first model already has the recorded step: nothing older was ever served.
    expect(entry({ cp: restarted })).toMatchObject({ phase: 'Progressing', weight: 50 });
    const route = restarted.state().model.routeTables.find((t) => t.host === REVIEWS)!.routes[0]!;
    expect(route.action.kind === 'route' && route.action.destinations.map((d) => [d.subset, d.weight])).toEqual([['v1', 50], ['v2', 50]]);
    // The client, reconnected, splits 50/50 from its first calls on: VirtualService weights would be v1 only.
    const after: Record<string, number> = {};
    for (let i = 0; i < 5; i++) {
      const counts = await client.split(TARGET, 40);
      expect(counts.v2 ?? 0, `calls ${i * 40}-${i * 40 + 39} after the restart: ${JSON.stringify(counts)}`).toBeGreaterThan(0);
      add(after, counts);
    }
    expect(Math.abs(share(after, 'v2') - 0.5), JSON.stringify(after)).toBeLessThanOrEqual(slack(0.5, 200));
  });
});
