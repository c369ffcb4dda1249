// `translate --state-dir` and `explain --state-dir`: the model as a file-mode serve with that state
// directory serves it, i.e. the rules plus the rollout state the leader recorded (each Canary's
// current weight, the fault experiments injecting now), overlaid as the server overlays it.
import { existsSync, statSync } from 'node:fs';
import type { Logger } from '../log.ts';
import { applyRuntime } from '../model/runtime-overlay.ts';
import type { Model } from '../model/types.ts';
import { runtimeFrom } from './runtime.ts';
import { DirStore } from './store.ts';

/**
 * The served model for `model` (a compile of the same rules) and the states in `stateDir` (serve's
 * `--state-dir`), judged at `now`. A state file the store cannot read is skipped and told to `warn`.
 */
export async function loadRuntimeForCli(model: Model, stateDir: string, warn: (line: string) => void, now = Date.now()): Promise<Model> {
  if (!existsSync(stateDir) || !statSync(stateDir).isDirectory()) throw new Error(`--state-dir ${stateDir}: no such directory`);
  // The store logs what it skips; here that is a warning line, not a log (the CLI has no logger).
  const log = { warn: (o: { file?: string; error?: string }, msg: string) => warn(`${msg}: ${o.file ?? stateDir}${o.error ? `: ${o.error}` : ''}`) } as unknown as Logger;
  const states = await new DirStore(stateDir, log).load();
  return applyRuntime(model, runtimeFrom(model, states.canaries, states.experiments, now));
}
