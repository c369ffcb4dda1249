// Rollout series, computed when scraped from what the controller knows (every replica: followers
// read the leader's state), so they always match /debug/canaries and need no upkeep per decision.
import { Gauge, type Registry } from 'prom-client';
import type { CanaryPhase } from './types.ts';

export interface RolloutSnapshot {
  canaries: Array<{ name: string; weight: number | undefined; phase: CanaryPhase | 'Pending' }>;
  experiments: Array<{ name: string; active: boolean }>;
}

const PHASES: Array<CanaryPhase | 'Pending'> = ['Pending', 'Progressing', 'Paused', 'Promoted', 'RolledBack'];

export function registerRolloutMetrics(registry: Registry, snapshot: () => RolloutSnapshot): void {
  new Gauge({
    name: 'meshpilot_canary_weight',
    help: "Percent of the route's traffic sent to the canary subset (absent once handed back to the VirtualService)",
    labelNames: ['canary'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of snapshot().canaries) if (c.weight !== undefined) this.set({ canary: c.name }, c.weight);
    },
  });
  new Gauge({
    name: 'meshpilot_canary_phase',
    help: "1 for the canary's current phase, 0 for the others",
    labelNames: ['canary', 'phase'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of snapshot().canaries) for (const p of PHASES) this.set({ canary: c.name, phase: p }, p === c.phase ? 1 : 0);
    },
  });
  new Gauge({
    name: 'meshpilot_experiment_active',
    help: "1 while the fault experiment's fault is injected",
    labelNames: ['experiment'],
    registers: [registry],
    collect() {
      this.reset();
      for (const e of snapshot().experiments) this.set({ experiment: e.name }, e.active ? 1 : 0);
    },
  });
}
