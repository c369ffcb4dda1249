// Where the leader keeps rollout state so that it survives restarts: a state directory in file
// mode (DirStore, here), the rule objects' status in Kubernetes (kube-store.ts).
// DirStore: one JSON file per rule, written atomically (temp file, fsync, rename), so a crash
// mid-write leaves the old state or the new one, never half of one. A file that cannot be read or
// does not hold a state is logged and skipped: a bad file must not keep the control plane down.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log.ts';
import type { CanaryState, ExperimentState } from './types.ts';

export interface RolloutStates {
  canaries: Record<string, CanaryState>;
  experiments: Record<string, ExperimentState>;
}

export interface RolloutStore {
  load(): Promise<RolloutStates>;
  saveCanary(key: string, state: CanaryState): Promise<void>;
  saveExperiment(key: string, state: ExperimentState): Promise<void>;
  /** Forgets the state of a rule that is gone (a store where it goes with the rule need not). */
  remove?(key: string): Promise<void>;
}

const CANARY_PHASES = ['Progressing', 'Paused', 'Promoted', 'RolledBack'];
const EXPERIMENT_PHASES = ['Running', 'Expired', 'Tripped', 'Stopped'];

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const optional = (v: unknown, check: (x: unknown) => boolean) => v === undefined || v === null || check(v);

/** The state in `v` (plain JSON from a file or a status), or a message saying what is wrong with it. */
export function asCanaryState(v: unknown): CanaryState | string {
  const s = v as Record<string, unknown> | null;
  if (!s || typeof s !== 'object') return 'not an object';
  if (typeof s.revision !== 'string') return 'revision: expected a string';
  if (!CANARY_PHASES.includes(s.phase as string)) return `phase: expected one of ${CANARY_PHASES.join(', ')}`;
  for (const f of ['step', 'weight', 'since', 'failedChecks'] as const) if (!isNum(s[f])) return `${f}: expected a number`;
  if (!optional(s.reason, (x) => typeof x === 'string')) return 'reason: expected a string';
  if (!optional(s.handedBack, (x) => typeof x === 'boolean')) return 'handedBack: expected a boolean';
  if (!optional(s.checkedAt, isNum)) return 'checkedAt: expected a number';
  const state: CanaryState = { revision: s.revision, phase: s.phase as CanaryState['phase'], step: s.step as number, weight: s.weight as number, since: s.since as number, failedChecks: s.failedChecks as number };
  if (typeof s.reason === 'string') state.reason = s.reason;
  if (s.handedBack === true) state.handedBack = true;
  if (isNum(s.checkedAt)) state.checkedAt = s.checkedAt;
  return state;
}

export function asExperimentState(v: unknown): ExperimentState | string {
  const s = v as Record<string, unknown> | null;
  if (!s || typeof s !== 'object') return 'not an object';
  if (typeof s.revision !== 'string') return 'revision: expected a string';
  if (!EXPERIMENT_PHASES.includes(s.phase as string)) return `phase: expected one of ${EXPERIMENT_PHASES.join(', ')}`;
  if (!isNum(s.since)) return 'since: expected a number';
  if (!optional(s.reason, (x) => typeof x === 'string')) return 'reason: expected a string';
  const state: ExperimentState = { revision: s.revision, phase: s.phase as ExperimentState['phase'], since: s.since };
  if (typeof s.reason === 'string') state.reason = s.reason;
  return state;
}

/** `Canary/default/reviews` -> `Canary_default_reviews.json` (no `_` in kinds or Kubernetes names; encoded anyway). */
export function fileNameOf(key: string): string {
  return `${key.split('/').map(encodeURIComponent).join('_')}.json`;
}

interface FileContent {
  key: string;
  canary?: unknown;
  experiment?: unknown;
}

export class DirStore implements RolloutStore {
  /** Per key, the last write queued: writes of one key land in the order they were made. */
  private writes = new Map<string, Promise<void>>();

  constructor(private readonly dir: string, private readonly log: Logger) {}

  async load(): Promise<RolloutStates> {
    const out: RolloutStates = { canaries: {}, experiments: {} };
    let names: string[];
    try {
      names = await fs.readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return out;
      throw e;
    }
    for (const name of names.sort()) {
      if (!name.endsWith('.json')) continue;
      const file = path.join(this.dir, name);
      try {
        const c = JSON.parse(await fs.readFile(file, 'utf8')) as FileContent;
        if (!c || typeof c.key !== 'string') throw new Error('key: expected a string');
        if (c.canary !== undefined) {
          const s = asCanaryState(c.canary);
          if (typeof s === 'string') throw new Error(`canary.${s}`);
          out.canaries[c.key] = s;
        } else if (c.experiment !== undefined) {
          const s = asExperimentState(c.experiment);
          if (typeof s === 'string') throw new Error(`experiment.${s}`);
          out.experiments[c.key] = s;
        } else throw new Error('expected a canary or an experiment state');
      } catch (e) {
        this.log.warn({ file, error: (e as Error).message }, 'ignoring unreadable rollout state file');
      }
    }
    return out;
  }

  saveCanary(key: string, state: CanaryState): Promise<void> {
    return this.write(key, { key, canary: state });
  }

  saveExperiment(key: string, state: ExperimentState): Promise<void> {
    return this.write(key, { key, experiment: state });
  }

  remove(key: string): Promise<void> {
    return this.queue(key, () => fs.rm(path.join(this.dir, fileNameOf(key)), { force: true }));
  }

  private write(key: string, content: FileContent): Promise<void> {
    return this.queue(key, async () => {
      await fs.mkdir(this.dir, { recursive: true });
      const file = path.join(this.dir, fileNameOf(key));
      const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
      try {
        const h = await fs.open(tmp, 'w');
        try {
          await h.writeFile(`${JSON.stringify(content, null, 2)}\n`);
          await h.sync();
        } finally {
          await h.close();
        }
        await fs.rename(tmp, file);
      } catch (e) {
        await fs.rm(tmp, { force: true });
        throw e;
      }
    });
  }

  private queue(key: string, op: () => Promise<void>): Promise<void> {
    const next = (this.writes.get(key) ?? Promise.resolve()).catch(() => {}).then(op);
    this.writes.set(key, next);
    void next.finally(() => {
      if (this.writes.get(key) === next) this.writes.delete(key);
    }).catch(() => {});
    return next;
  }
}

/** No state directory, no cluster: states live as long as the process (serve warns about it). */
export class MemoryStore implements RolloutStore {
  private states: RolloutStates = { canaries: {}, experiments: {} };

  load(): Promise<RolloutStates> {
    return Promise.resolve(structuredClone(this.states));
  }

  saveCanary(key: string, state: CanaryState): Promise<void> {
    this.states.canaries[key] = structuredClone(state);
    return Promise.resolve();
  }

  saveExperiment(key: string, state: ExperimentState): Promise<void> {
    this.states.experiments[key] = structuredClone(state);
    return Promise.resolve();
  }

  remove(key: string): Promise<void> {
    delete this.states.canaries[key];
    delete this.states.experiments[key];
    return Promise.resolve();
  }
}
