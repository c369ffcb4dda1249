// End to end: time-boxed fault experiments with real proxyless gRPC clients (@grpc/grpc-js-xds)
// and real backends. meshpilot stops injecting by itself when the experiment expires, or when the
// service's own success rate (the load the clients report for calls that reached it: injected
// aborts never do) falls below the guard. Every wait has a deadline; no wall-clock assertions.
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ExperimentEntry } from '../control-plane/rollout/controller.ts';
import { startBackends, type BackendSet } from './helpers/backends.ts';
import { vsFor } from './helpers/bookinfo-rules.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { getJson } from './helpers/admin-http.ts';
import { hostOf, targetOf } from './helpers/mesh-files.ts';
import { startTestMesh, streamsSynced, Teardown, type TestMesh } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';
import type { XdsClient } from './helpers/xds-client.ts';
import { httpRoute, to, toYaml } from './helpers/yaml-builders.ts';

const DETAILS = hostOf('details');
const TARGET = targetOf('details');
const KEY = 'FaultExperiment/default/details-aborts';

const DETAILS_RULE = vsFor(DETAILS, httpRoute([to(DETAILS, 'v1')], { name: 'main' }));

function experiment(o: { percent: number; expiresInMs: number; guard?: Record<string, unknown> }): string {
  return toYaml({
    apiVersion: 'traffic.meshpilot.io/v1alpha1',
    kind: 'FaultExperiment',
    metadata: { name: 'details-aborts', namespace: 'default' },
    spec: {
      target: { host: 'details', routes: ['main'] },
      fault: { abort: { grpcStatus: 'UNAVAILABLE', percentage: { value: o.percent } } },
      expiresAt: new Date(Date.now() + o.expiresInMs).toISOString(),
      ...(o.guard ? { guard: o.guard } : {}),
    },
  });
}

let backends: BackendSet;
const teardown = new Teardown();
beforeAll(async () => {
  backends = await startBackends([{ service: 'details', version: 'v1' }]);
});
afterAll(async () => {
  await backends?.stop();
});
afterEach(async () => {
  backends.get('details', 'v1').setFailShare(0);
  await teardown.run();
});

async function startMesh(rule: string, logs: ReturnType<typeof captureLogs>): Promise<TestMesh> {
  const mesh = await startTestMesh(teardown, {
    backends: backends.backends,
    files: { 'details.yaml': DETAILS_RULE, 'experiment.yaml': rule },
    prefix: 'e2e-experiment',
    controlPlane: { adminListen: '127.0.0.1:0', logger: logs.logger, loadReporting: { intervalMs: 200 }, rollouts: { tickMs: 50, refreshMs: 500 } },
  });
  expect(mesh.cp.state().errors.map((e) => e.message), 'the rules must be accepted').toEqual([]);
  return mesh;
}

const entry = (mesh: TestMesh): ExperimentEntry => mesh.cp.rollouts.experiments().find((e) => e.key === KEY)!;

/** Outcomes of n calls: the version, `injected` for the client's own fault, `backend:<STATUS>` for the backend's failures. */
async function outcomes(client: XdsClient, n: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  await Promise.all(Array.from({ length: 10 }, async (_, w) => {
    for (let i = w; i < n; i += 10) {
      let k: string;
      try {
        k = (await client.call(TARGET)).version;
      } catch (err) {
        const e = err as grpc.ServiceError;
        k = /fault injected/i.test(e.details) ? 'injected' : `backend:${grpc.status[e.code]}`;
      }
      counts[k] = (counts[k] ?? 0) + 1;
    }
  }));
  return counts;
}

const experimentLines = (logs: ReturnType<typeof captureLogs>) => logs.lines.filter((l) => String(l.msg).includes('details-aborts'));

describe('fault experiments with real gRPC clients', () => {
  it('stops injecting when it expires, and says so in /debug/rules and the logs', async () => {
    const logs = captureLogs();
    const mesh = await startMesh(experiment({ percent: 50, expiresInMs: 4000 }), logs);
    const client = mesh.client();
    await waitFor(async () => ((await outcomes(client, 20)).injected ?? 0) > 0, { timeoutMs: 20_000, intervalMs: 0, description: 'injected aborts' });
    expect(entry(mesh)).toMatchObject({ phase: 'Running', active: true });

    await waitFor(() => entry(mesh).phase === 'Expired', { timeoutMs: 15_000, description: 'the experiment to expire' });
    expect(entry(mesh).active).toBe(false);
    await streamsSynced(mesh.cp);
    expect(await outcomes(client, 200)).toEqual({ v1: 200 });

    const rules = await getJson(`http://${mesh.cp.adminAddress}/debug/rules`);
    expect(rules.body.experiments).toEqual([expect.objectContaining({ key: KEY, phase: 'Expired', active: false })]);
    expect(experimentLines(logs).map((l) => String(l.msg)).join('\n')).toMatch(/expired/i);
  });

  it('stops early when errors leak beyond the injected ones (the guard), and records why', async () => {
    const logs = captureLogs();
    const mesh = await startMesh(experiment({ percent: 20, expiresInMs: 600_000, guard: { minSuccessRate: 90, minRequests: 20, window: '2s' } }), logs);
    const client = mesh.client();
    await waitFor(async () => ((await outcomes(client, 20)).injected ?? 0) > 0, { timeoutMs: 20_000, intervalMs: 0, description: 'injected aborts' });
    // Injected aborts alone never trip the guard: they never reach details, so its own rate is 100%.
    for (let i = 0; i < 4; i++) {
      const counts = await outcomes(client, 100);
      expect(counts['backend:UNAVAILABLE'] ?? 0, JSON.stringify(counts)).toBe(0);
    }
    expect(entry(mesh)).toMatchObject({ phase: 'Running', active: true });

    // details itself starts failing: the guard trips and the injection stops.
    backends.get('details', 'v1').setFailShare(0.5);
    await waitFor(async () => {
      await outcomes(client, 40);
      return entry(mesh).phase === 'Tripped';
    }, { timeoutMs: 20_000, intervalMs: 0, description: 'the guard to trip' });
    expect(entry(mesh).reason).toMatch(/success/);
    await streamsSynced(mesh.cp);
    const after = await outcomes(client, 200);
    expect(after.injected ?? 0, JSON.stringify(after)).toBe(0);
    const rules = await getJson(`http://${mesh.cp.adminAddress}/debug/rules`);
    expect(rules.body.experiments).toEqual([expect.objectContaining({ key: KEY, phase: 'Tripped', reason: expect.stringMatching(/success/) })]);
    expect(experimentLines(logs).some((l) => /trip|guard/i.test(String(l.msg)))).toBe(true);
  });
});
