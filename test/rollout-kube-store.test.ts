// Rollout state in the Canary's and FaultExperiment's status (`status.rollout`), against the
// wire-level fake API server with the real client-node: merge patches that keep the Accepted
// condition, load by listing, and two controllers (leader, follower) sharing it.
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RolloutController } from '../control-plane/rollout/controller.ts';
import { KubeRolloutStore } from '../control-plane/rollout/kube-store.ts';
import type { CanaryState } from '../control-plane/rollout/types.ts';
import { FakeApiServer, MESH_CRDS } from './helpers/fake-apiserver.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { canaryRule, figures } from './helpers/rollout-rules.ts';
import { waitFor } from './helpers/wait.ts';

beforeAll(() => {
  // Until the kinds land in the fake API server's MESH_CRDS.
  for (const [kind, plural] of [['Canary', 'canaries'], ['FaultExperiment', 'faultexperiments']] as const) {
    if (!MESH_CRDS.some((r) => r.kind === kind)) MESH_CRDS.push({ group: 'traffic.meshpilot.io', versions: ['v1alpha1'], plural, kind, namespaced: true, status: true });
  }
});

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function cluster() {
  const api = await FakeApiServer.start('config');
  cleanups.push(() => api.close());
  const client = (user = 'tester') => {
    const kc = new KubeConfig();
    kc.loadFromString(api.kubeconfig(user));
    return kc.makeApiClient(CustomObjectsApi);
  };
  return { api, client };
}

const canaryObject = (name: string, status?: unknown) => ({
  apiVersion: 'traffic.meshpilot.io/v1alpha1',
  kind: 'Canary',
  metadata: { name, namespace: 'default' },
  spec: { target: { host: 'reviews', route: 'reviews-canary' }, stable: 'v1', canary: 'v2', steps: [5, 25, 50, 100], interval: '1m' },
  ...(status ? { status } : {}),
});

const ACCEPTED = { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'in force', observedGeneration: 1 };

describe('Kubernetes rollout store', () => {
  it('writes status.rollout by merge patch, keeping the Accepted condition, and reads it back by listing', async () => {
    const { api, client } = await cluster();
    const logs = captureLogs();
    api.apply(canaryObject('reviews', { conditions: [ACCEPTED] }));
    api.apply({ apiVersion: 'traffic.meshpilot.io/v1alpha1', kind: 'FaultExperiment', metadata: { name: 'slow', namespace: 'qa' }, spec: { expiresAt: '2026-12-07T10:00:00Z' } });
    const store = new KubeRolloutStore(client(), logs.logger);
    expect(await store.load()).toEqual({ canaries: {}, experiments: {} });

    const paused: CanaryState = { revision: 'r1', phase: 'Paused', step: 1, weight: 25, since: 1000, failedChecks: 1, reason: 'paused by command', checkedAt: 900 };
    await store.saveCanary('Canary/default/reviews', paused);
    expect(api.get('traffic.meshpilot.io/v1alpha1', 'Canary', 'default', 'reviews')!['status']).toEqual({ conditions: [ACCEPTED], rollout: paused });

    // Optional fields the new state lacks are removed, not left over from the previous one.
    const resumed: CanaryState = { revision: 'r1', phase: 'Progressing', step: 1, weight: 25, since: 2000, failedChecks: 1 };
    await store.saveCanary('Canary/default/reviews', resumed);
    expect(api.get('traffic.meshpilot.io/v1alpha1', 'Canary', 'default', 'reviews')!['status']).toEqual({ conditions: [ACCEPTED], rollout: resumed });

    // An object with no status yet.
    await store.saveExperiment('FaultExperiment/qa/slow', { revision: 'e1', phase: 'Tripped', since: 5, reason: 'guard tripped' });
    expect(api.get('traffic.meshpilot.io/v1alpha1', 'FaultExperiment', 'qa', 'slow')!['status']).toEqual({ rollout: { revision: 'e1', phase: 'Tripped', since: 5, reason: 'guard tripped' } });
    // The writes went to the status subresource.
    expect(api.requests.filter((r) => r.method === 'PATCH').map((r) => r.path)).toEqual([
      '/apis/traffic.meshpilot.io/v1alpha1/namespaces/default/canaries/reviews/status',
      '/apis/traffic.meshpilot.io/v1alpha1/namespaces/default/canaries/reviews/status',
      '/apis/traffic.meshpilot.io/v1alpha1/namespaces/qa/faultexperiments/slow/status',
    ]);

    // A status someone else wrote that is not a state is skipped with a warning.
    api.apply(canaryObject('odd', { rollout: { revision: 'r', phase: 'Promoted', step: 'last' } }));
    expect(await store.load()).toEqual({
      canaries: { 'Canary/default/reviews': resumed },
      experiments: { 'FaultExperiment/qa/slow': { revision: 'e1', phase: 'Tripped', since: 5, reason: 'guard tripped' } },
    });
    expect(logs.lines.find((l) => l.msg === 'ignoring unreadable rollout state')).toMatchObject({ rule: 'Canary/default/odd', error: 'status.rollout.step: expected a number' });
  });

  it('a write for an object that is gone fails (the controller then keeps the old state)', async () => {
    const { client } = await cluster();
    const store = new KubeRolloutStore(client(), captureLogs().logger);
    await expect(store.saveCanary('Canary/default/gone', { revision: 'r', phase: 'Progressing', step: 0, weight: 5, since: 0, failedChecks: 0 })).rejects.toThrow();
  });

  it('the follower replica follows the leader through the status; a restarted leader resumes at the recorded step', async () => {
    const { api, client } = await cluster();
    api.apply(canaryObject('reviews', { conditions: [ACCEPTED] }));
    const rule = canaryRule({ intervalMs: 60_000, steps: [10, 60, 100] });
    const model = { canaries: [rule], experiments: [] };
    let t = 1_000_000;
    const healthy = { figures: (c: string) => (c === rule.canary.clusters[0] ? figures(100) : figures(1000)) };
    const replica = (user: string, leading: boolean) => {
      const logs = captureLogs();
      let changes = 0;
      const c = new RolloutController({
        load: healthy,
        store: new KubeRolloutStore(client(user), logs.logger),
        leadership: { isLeader: () => leading, onChange: () => () => {} },
        log: logs.logger,
        onRuntimeChange: () => changes++,
        now: () => t,
        tickMs: 3_600_000,
        refreshMs: 50,
      });
      cleanups.push(() => c.stop());
      c.setModel(model);
      return { c, logs, changes: () => changes, weight: () => c.runtime(model).canaryWeights.get(rule.key) };
    };
    const leader = replica('replica-a', true);
    const follower = replica('replica-b', false);
    await leader.c.start();
    await follower.c.start();
    await leader.c.tick();
    t += 60_000;
    await leader.c.tick();
    expect(leader.weight()).toBe(60);
    await waitFor(() => follower.weight() === 60, { description: 'follower sees 60%', timeoutMs: 5000 });
    expect(follower.changes()).toBe(1);
    // Only the leader wrote.
    expect(new Set(api.requests.filter((r) => r.method === 'PATCH').map((r) => r.user))).toEqual(new Set(['replica-a']));
    expect(api.get('traffic.meshpilot.io/v1alpha1', 'Canary', 'default', 'reviews')!['status']).toMatchObject({ conditions: [ACCEPTED], rollout: { step: 1, weight: 60 } });

    // Another writer puts back an older status (e.g. a whole-status write from a stale cache): the
    // leader writes its own state again and does not step back; the follower ends at 60% too.
    api.apply(canaryObject('reviews', { conditions: [ACCEPTED], rollout: { revision: 'r1', phase: 'Progressing', step: 0, weight: 10, since: 1_000_000, failedChecks: 0 } }));
    await waitFor(() => (api.get('traffic.meshpilot.io/v1alpha1', 'Canary', 'default', 'reviews')!['status'] as any).rollout.weight === 60, { description: 'the leader repairs the status', timeoutMs: 5000 });
    expect(leader.weight()).toBe(60);
    expect(leader.changes()).toBe(1);
    // The line is logged once the write has returned, which can be just after the status shows it.
    await waitFor(() => leader.logs.lines.some((l) => l.msg === "stored rollout state differed from the leader's; written again"), { description: 'the repair logged', timeoutMs: 5000 });
    await waitFor(() => follower.weight() === 60, { description: 'follower back at 60%', timeoutMs: 5000 });

    leader.c.stop();
    const restarted = replica('replica-a', true);
    await restarted.c.start();
    expect(restarted.weight()).toBe(60);
    t += 60_000;
    await restarted.c.tick();
    expect(restarted.weight()).toBe(100);
    expect(restarted.logs.lines.map((l) => l.msg)).toContain('canary default/reviews 60% -> 100%: success 100% over 100 requests');

    // Deleted and created again: the leader forgets the old rollout and starts the new one.
    api.remove('traffic.meshpilot.io/v1alpha1', 'Canary', 'default', 'reviews');
    api.apply(canaryObject('reviews'));
    await waitFor(() => restarted.weight() === 10, { description: 'forgotten once the object is gone', timeoutMs: 5000 });
    await restarted.c.tick();
    expect(api.get('traffic.meshpilot.io/v1alpha1', 'Canary', 'default', 'reviews')!['status']).toMatchObject({ rollout: { phase: 'Progressing', step: 0, weight: 10 } });
  });
});
