// Rollout state in Kubernetes: `status.rollout` of each Canary and FaultExperiment, written through
// the status subresource with a JSON merge patch of that one field, so the `Accepted` condition
// (kube/rule-status.ts) and anything else in the status stay as they are. The state goes with the
// object: a deleted Canary forgets its rollout, a re-created one starts over.
// Every replica reads it (load lists both kinds); only the leader writes (controller.ts).
import { type CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { Logger } from '../log.ts';
import { asCanaryState, asExperimentState, type RolloutStates, type RolloutStore } from './store.ts';
import type { CanaryState, ExperimentState } from './types.ts';

export const ROLLOUT_GROUP = 'traffic.meshpilot.io';
export const ROLLOUT_VERSION = 'v1alpha1';
const KINDS = { Canary: 'canaries', FaultExperiment: 'faultexperiments' } as const;

interface Listed {
  items?: Array<{ metadata?: { name?: string; namespace?: string }; status?: { rollout?: unknown } }>;
}

/** `Canary/<ns>/<name>` -> where its status lives. */
function target(key: string, kind: keyof typeof KINDS): { namespace: string; name: string; plural: string } {
  const [k, namespace, name, ...rest] = key.split('/');
  if (k !== kind || !namespace || !name || rest.length > 0) throw new Error(`not a ${kind} key: ${key}`);
  return { namespace, name, plural: KINDS[kind] };
}

/** A merge patch sets the fields it names and keeps the others: absent optional fields must be nulled. */
function replacing<T extends object>(state: T, optional: string[]): Record<string, unknown> {
  const out = { ...state } as Record<string, unknown>;
  for (const f of optional) if (out[f] === undefined) out[f] = null;
  return out;
}

export class KubeRolloutStore implements RolloutStore {
  constructor(private readonly custom: CustomObjectsApi, private readonly log: Logger) {}

  async load(): Promise<RolloutStates> {
    const out: RolloutStates = { canaries: {}, experiments: {} };
    for (const [kind, plural] of Object.entries(KINDS) as Array<[keyof typeof KINDS, string]>) {
      const list = (await this.custom.listClusterCustomObject({ group: ROLLOUT_GROUP, version: ROLLOUT_VERSION, plural })) as Listed;
      for (const o of list.items ?? []) {
        const raw = o.status?.rollout;
        if (raw === undefined || raw === null) continue;
        const key = `${kind}/${o.metadata?.namespace ?? 'default'}/${o.metadata?.name}`;
        const s = kind === 'Canary' ? asCanaryState(raw) : asExperimentState(raw);
        if (typeof s === 'string') {
          this.log.warn({ rule: key, error: `status.rollout.${s}` }, 'ignoring unreadable rollout state');
          continue;
        }
        if (kind === 'Canary') out.canaries[key] = s as CanaryState;
        else out.experiments[key] = s as ExperimentState;
      }
    }
    return out;
  }

  saveCanary(key: string, state: CanaryState): Promise<void> {
    return this.patch(target(key, 'Canary'), replacing(state, ['reason', 'handedBack', 'checkedAt']));
  }

  saveExperiment(key: string, state: ExperimentState): Promise<void> {
    return this.patch(target(key, 'FaultExperiment'), replacing(state, ['reason']));
  }

  private async patch(t: { namespace: string; name: string; plural: string }, rollout: Record<string, unknown>): Promise<void> {
    await this.custom.patchNamespacedCustomObjectStatus(
      { group: ROLLOUT_GROUP, version: ROLLOUT_VERSION, namespace: t.namespace, plural: t.plural, name: t.name, body: { status: { rollout } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }
}
