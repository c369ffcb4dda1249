// `translate --state-dir` and `explain --state-dir`: the model as a file-mode serve with that state
// directory serves it, i.e. the rules plus the rollout state the leader recorded (each Canary's
// current weight, the fault experiments injecting now), overlaid as the server overlays it.
// STUB until rollout/store.ts, rollout/runtime.ts (branch wt-controller) and
// model/runtime-overlay.ts (branch wt-kinds) are merged: the next commit connects them.
import type { Model } from '../model/types.ts';

export async function loadRuntimeForCli(_model: Model, stateDir: string, _warn: (line: string) => void, _now = Date.now()): Promise<Model> {
  throw new Error(`--state-dir ${stateDir}: this build cannot read rollout state yet`);
}
