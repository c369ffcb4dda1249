// The runtime overlay's input from the rollout states: the canary weight of each Canary and the
// experiments injecting now. Pure. A state of an old revision counts as none, and "none" means
// what the leader will decide first (a Canary starts at its first step, an experiment runs until it
// expires), so weights do not flicker between a rule's arrival and the leader's first decision.
import type { CanaryRule, CanaryState, ExperimentRule, ExperimentState, RuntimeState } from './types.ts';

export interface RolloutRules {
  canaries: readonly CanaryRule[];
  experiments: readonly ExperimentRule[];
}

export function canaryWeight(rule: CanaryRule, state: CanaryState | undefined): number | undefined {
  if (!state || state.revision !== rule.revision) return rule.steps[0];
  switch (state.phase) {
    case 'RolledBack':
      return 0;
    case 'Promoted':
      return state.handedBack ? undefined : 100;
    default:
      return state.weight;
  }
}

export function experimentActive(rule: ExperimentRule, state: ExperimentState | undefined, now: number): boolean {
  if (!state || state.revision !== rule.revision) return now < rule.expiresAtMs;
  return state.phase === 'Running';
}

export function runtimeFrom(
  model: RolloutRules,
  canaryStates: Readonly<Record<string, CanaryState>>,
  experimentStates: Readonly<Record<string, ExperimentState>>,
  now: number,
): RuntimeState {
  const canaryWeights = new Map<string, number>();
  for (const c of model.canaries) {
    const w = canaryWeight(c, canaryStates[c.key]);
    if (w !== undefined) canaryWeights.set(c.key, w);
  }
  const activeExperiments = new Set<string>();
  for (const e of model.experiments) if (experimentActive(e, experimentStates[e.key], now)) activeExperiments.add(e.key);
  return { canaryWeights, activeExperiments };
}

export function sameRuntime(a: RuntimeState, b: RuntimeState): boolean {
  if (a.canaryWeights.size !== b.canaryWeights.size || a.activeExperiments.size !== b.activeExperiments.size) return false;
  for (const [k, w] of a.canaryWeights) if (b.canaryWeights.get(k) !== w) return false;
  for (const k of a.activeExperiments) if (!b.activeExperiments.has(k)) return false;
  return true;
}
