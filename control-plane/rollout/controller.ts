// Drives canaries and fault experiments: on a timer, the leader judges each rule's load
// (LoadQuery) with the pure decisions, saves the new state, logs what happened and tells the server
// when weights or the set of injected faults changed. Followers decide nothing: they re-read the
// store every `refreshMs`, so their runtime (what they serve) follows the leader's.
// A decision takes effect only once saved: a state that could not be saved is dropped and decided
// again at the next tick, so after a restart the store never lags what proxies were sent.
// The leader re-reads the store too, as the check of its own states: one gone from the store (the
// Kubernetes object was deleted, maybe re-created) is forgotten, one overwritten by another writer
// is written again. The states of rules that left the model are forgotten after `pruneAfterMs`
// (not at once: a model without them may be a passing one).
import type { Registry } from 'prom-client';
import type { Leadership } from '../kube/leadership.ts';
import { SOLE_REPLICA } from '../kube/leadership.ts';
import type { Logger } from '../log.ts';
import { decideCanary, nextCheckAt, NO_LOAD } from './decide-canary.ts';
import { decideExperiment } from './decide-experiment.ts';
import { registerRolloutMetrics } from './metrics.ts';
import { canaryWeight, experimentActive, runtimeFrom, sameRuntime, type RolloutRules } from './runtime.ts';
import type { RolloutStates, RolloutStore } from './store.ts';
import type { CanaryCommand, CanaryPhase, CanaryRule, CanaryState, ExperimentPhase, ExperimentRule, ExperimentState, LoadFigures, LoadQuery, RuntimeState } from './types.ts';
import { NO_RUNTIME } from './types.ts';

export interface RolloutControllerOptions {
  load: LoadQuery;
  store: RolloutStore;
  leadership?: Leadership;
  log: Logger;
  /** Where meshpilot_canary_weight, meshpilot_canary_phase and meshpilot_experiment_active go. */
  registry?: Registry;
  /** Weights or injected experiments changed: re-overlay the model and push. */
  onRuntimeChange: () => void;
  now?: () => number;
  /** Longest time between two rounds (default 1 s); a check or expiry due sooner comes sooner. */
  tickMs?: number;
  /** How often the store is re-read (default 2 s). */
  refreshMs?: number;
  /** How long a rule must be gone before its state is forgotten (default 10 min). */
  pruneAfterMs?: number;
  /** A store read or write taking longer fails (default 10 s): rounds and commands wait on it. */
  storeTimeoutMs?: number;
}

/** Not in force yet, or no state of its revision: the leader has not started it. */
export type PendingPhase = 'Pending';

/** An entry of GET /debug/canaries. */
export interface CanaryEntry {
  key: string;
  host: string;
  route: string;
  /** Set when the route is an ingress route: the host the Canary named (see CanaryRule). */
  gatewayHost?: string;
  stable: string;
  canary: string;
  steps: number[];
  phase: CanaryPhase | PendingPhase;
  step: number;
  /** Canary percent; with handedBack the VirtualService's own weights apply instead. */
  weight: number;
  handedBack?: true;
  since: string | null;
  failedChecks: number;
  reason?: string;
  nextCheckAt?: string;
  leader: boolean;
}

/** An entry of GET /debug/experiments. */
export interface ExperimentEntry {
  key: string;
  host: string;
  routes: string[];
  /** The clusters its guard reads (an ingress host's are those of the services its routes send to). */
  clusters: string[];
  phase: ExperimentPhase | PendingPhase;
  /** Whether its fault is injected now. */
  active: boolean;
  since: string | null;
  expiresAt: string;
  reason?: string;
  leader: boolean;
}

export type CommandResult<T> = { ok: true; entry: T } | { ok: false; status: 404 | 409 | 503; error: string };

const iso = (ms: number) => new Date(ms).toISOString();

function sum(load: LoadQuery, clusters: readonly string[], since: number, until: number): LoadFigures {
  const t = { completed: 0, succeeded: 0, failed: 0, issued: 0, inFlight: 0, proxies: 0 };
  for (const c of clusters) {
    const f = load.figures(c, since, until);
    t.completed += f.completed;
    t.succeeded += f.succeeded;
    t.failed += f.failed;
    t.issued += f.issued;
    t.inFlight += f.inFlight;
    // A proxy reporting on two clusters counts twice: good enough for "how many reported".
    t.proxies += f.proxies;
  }
  return t;
}

export class RolloutController {
  private model: RolloutRules = { canaries: [], experiments: [] };
  private canaryStates: Record<string, CanaryState> = {};
  private experimentStates: Record<string, ExperimentState> = {};
  /** The runtime the server was last told about (or will compute for the current model). */
  private served: RuntimeState = NO_RUNTIME;
  private started = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  /** Rounds, refreshes and commands run one at a time, in order (so a store read never overlaps a save). */
  private chain: Promise<unknown> = Promise.resolve();
  private queuedTick: Promise<void> | undefined;
  private absentSince = new Map<string, number>();
  /** Saves that failed in the last round: the next one waits a whole tick, not the (past) due time. */
  private failedSaves = 0;
  private readonly now: () => number;
  private readonly leadership: Leadership;
  private readonly tickMs: number;
  private readonly refreshMs: number;
  private readonly pruneAfterMs: number;
  private readonly storeTimeoutMs: number;

  constructor(private readonly o: RolloutControllerOptions) {
    this.now = o.now ?? Date.now;
    this.leadership = o.leadership ?? SOLE_REPLICA;
    this.tickMs = o.tickMs ?? 1000;
    this.refreshMs = o.refreshMs ?? 2000;
    this.pruneAfterMs = o.pruneAfterMs ?? 10 * 60_000;
    this.storeTimeoutMs = o.storeTimeoutMs ?? 10_000;
    if (o.registry) registerRolloutMetrics(o.registry, () => this.metricsSnapshot());
  }

  /**
   * Reads the stored states (retrying until it can: starting without them would put every canary
   * back to its first step) and starts the timers. Serve the runtime only once it has resolved.
   */
  async start(): Promise<void> {
    let loaded: RolloutStates | undefined;
    for (let delay = 500; !loaded; delay = Math.min(delay * 2, 10_000)) {
      try {
        loaded = await this.timed(this.o.store.load(), 'reading the state');
      } catch (e) {
        this.o.log.warn({ error: (e as Error).message, retryInMs: delay }, 'cannot read rollout state; retrying');
        await new Promise((r) => setTimeout(r, delay).unref());
      }
      if (this.stopped) return;
    }
    this.canaryStates = loaded.canaries;
    this.experimentStates = loaded.experiments;
    this.started = true;
    this.served = this.runtime(this.model);
    this.unsubscribe = this.leadership.onChange((leading) => {
      this.o.log.info({ leading }, leading ? 'rollouts: leading, deciding canaries and experiments' : 'rollouts: not leading, following the stored state');
      void this.refresh('adopt').then(() => this.tick());
    });
    this.refreshTimer = setInterval(() => void this.refresh(this.leadership.isLeader() ? 'repair' : 'adopt'), this.refreshMs);
    this.refreshTimer.unref();
    void this.tick();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.refreshTimer);
    this.unsubscribe?.();
  }

  /** The rules changed (a new model): decide on them now. */
  setModel(model: RolloutRules): void {
    this.model = { canaries: model.canaries, experiments: model.experiments };
    // The server overlays the new model with runtime() itself: that is now what it serves.
    this.served = this.runtime(this.model);
    if (this.started) void this.tick();
  }

  /** What to overlay on `model` now (synchronous; the server calls it for each model it serves). */
  runtime(model: RolloutRules): RuntimeState {
    return runtimeFrom(model, this.canaryStates, this.experimentStates, this.now());
  }

  /** One round now (the timer calls it; tests with a fake clock too). Rounds asked for while one waits share it. */
  tick(): Promise<void> {
    if (this.queuedTick) return this.queuedTick;
    const t = this.exclusive(async () => {
      this.queuedTick = undefined;
      await this.round();
    });
    this.queuedTick = t;
    return t;
  }

  async command(key: string, command: CanaryCommand): Promise<CommandResult<CanaryEntry>> {
    return this.exclusive(async () => {
      const rule = this.model.canaries.find((c) => c.key === key);
      if (!rule) return { ok: false, status: 404, error: `no Canary ${key} is in force` };
      if (!this.leadership.isLeader()) return notLeader();
      const prev = this.canaryStates[key];
      const d = decideCanary(rule, prev, { now: this.now(), stable: NO_LOAD, canary: NO_LOAD, command });
      if (d.error) return { ok: false, status: 409, error: d.error };
      const saved = await this.saveCanary(rule, d.state, d.event);
      if (saved) return { ok: false, status: 503, error: `cannot save the canary's state: ${saved}` };
      this.runtimeMayHaveChanged();
      this.schedule();
      return { ok: true, entry: this.canaryEntry(rule) };
    });
  }

  async stopExperiment(key: string): Promise<CommandResult<ExperimentEntry>> {
    return this.exclusive(async () => {
      const rule = this.model.experiments.find((e) => e.key === key);
      if (!rule) return { ok: false, status: 404, error: `no FaultExperiment ${key} is in force` };
      if (!this.leadership.isLeader()) return notLeader();
      const prev = this.experimentStates[key];
      const d = decideExperiment(rule, prev, { now: this.now(), load: NO_LOAD, command: 'stop' });
      if (d.error) return { ok: false, status: 409, error: d.error };
      const saved = await this.saveExperiment(rule, d.state, d.event);
      if (saved) return { ok: false, status: 503, error: `cannot save the experiment's state: ${saved}` };
      this.runtimeMayHaveChanged();
      return { ok: true, entry: this.experimentEntry(rule) };
    });
  }

  canaries(): CanaryEntry[] {
    return this.model.canaries.map((c) => this.canaryEntry(c));
  }

  experiments(): ExperimentEntry[] {
    return this.model.experiments.map((e) => this.experimentEntry(e));
  }

  private canaryEntry(rule: CanaryRule): CanaryEntry {
    const s = this.canaryStates[rule.key];
    const base = { key: rule.key, host: rule.host, route: rule.route, ...(rule.gatewayHost ? { gatewayHost: rule.gatewayHost } : {}), stable: rule.stable.subset, canary: rule.canary.subset, steps: rule.steps, leader: this.leadership.isLeader() };
    if (!s || s.revision !== rule.revision) return { ...base, phase: 'Pending', step: 0, weight: rule.steps[0]!, since: null, failedChecks: 0 };
    const next = nextCheckAt(rule, s);
    return {
      ...base,
      phase: s.phase,
      step: s.step,
      weight: s.weight,
      ...(s.handedBack ? { handedBack: true as const } : {}),
      since: iso(s.since),
      failedChecks: s.failedChecks,
      ...(s.reason !== undefined ? { reason: s.reason } : {}),
      ...(next !== undefined ? { nextCheckAt: iso(next) } : {}),
    };
  }

  private experimentEntry(rule: ExperimentRule): ExperimentEntry {
    const s = this.experimentStates[rule.key];
    const current = s && s.revision === rule.revision ? s : undefined;
    return {
      key: rule.key,
      host: rule.host,
      routes: rule.routes,
      clusters: rule.clusters,
      phase: current?.phase ?? 'Pending',
      active: experimentActive(rule, current, this.now()),
      since: current ? iso(current.since) : null,
      expiresAt: iso(rule.expiresAtMs),
      ...(current?.reason !== undefined ? { reason: current.reason } : {}),
      leader: this.leadership.isLeader(),
    };
  }

  private metricsSnapshot() {
    return {
      canaries: this.model.canaries.map((c) => {
        const s = this.canaryStates[c.key];
        const current = s && s.revision === c.revision ? s : undefined;
        return { name: `${c.namespace}/${c.name}`, weight: canaryWeight(c, current), phase: current?.phase ?? ('Pending' as const) };
      }),
      experiments: this.model.experiments.map((e) => ({ name: `${e.namespace}/${e.name}`, active: experimentActive(e, this.experimentStates[e.key], this.now()) })),
    };
  }

  /** A hung API server must not stall every later round and command (they run one at a time). */
  private timed<T>(p: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} took longer than ${this.storeTimeoutMs} ms`)), this.storeTimeoutMs);
    });
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn);
    this.chain = p.catch(() => {});
    return p;
  }

  private async round(): Promise<void> {
    if (this.stopped || !this.started) return;
    this.failedSaves = 0;
    try {
      if (this.leadership.isLeader()) await this.decideAll();
      this.runtimeMayHaveChanged();
    } catch (e) {
      this.o.log.error({ err: e }, 'rollout round failed');
    } finally {
      this.schedule();
    }
  }

  private async decideAll(): Promise<void> {
    const now = this.now();
    const saves: Array<Promise<unknown>> = [];
    for (const rule of this.model.canaries) {
      const prev = this.canaryStates[rule.key];
      const current = prev && prev.revision === rule.revision ? prev : undefined;
      const due = current ? nextCheckAt(rule, current) : undefined;
      // Figures only when a check is due: the span is the whole step, [since, now].
      const judging = due !== undefined && now >= due;
      const since = current?.since ?? now;
      const input = {
        now,
        stable: judging ? sum(this.o.load, rule.stable.clusters, since, now) : NO_LOAD,
        canary: judging ? sum(this.o.load, rule.canary.clusters, since, now) : NO_LOAD,
      };
      const d = decideCanary(rule, prev, input);
      if (d.state !== prev) saves.push(this.saveCanary(rule, d.state, d.event));
    }
    for (const rule of this.model.experiments) {
      const prev = this.experimentStates[rule.key];
      const current = prev && prev.revision === rule.revision ? prev : undefined;
      const g = rule.guard;
      const load = current && current.phase === 'Running' && g ? sum(this.o.load, rule.clusters, Math.max(current.since, now - g.windowMs), now) : NO_LOAD;
      const d = decideExperiment(rule, prev, { now, load });
      if (d.state !== prev) saves.push(this.saveExperiment(rule, d.state, d.event));
    }
    await Promise.all(saves);
    this.prune(now);
  }

  /** Saves, then makes the state current and logs the event; on failure the state stays as it was. Returns the error message. */
  private async saveCanary(rule: CanaryRule, next: CanaryState, event: string | undefined): Promise<string | undefined> {
    try {
      await this.timed(this.o.store.saveCanary(rule.key, next), 'saving the state');
    } catch (e) {
      this.failedSaves++;
      this.o.log.warn({ canary: rule.key, error: (e as Error).message }, 'cannot save canary state; deciding again at the next check');
      return (e as Error).message;
    }
    this.canaryStates[rule.key] = next;
    if (event) this.o.log.info({ canary: rule.key, phase: next.phase, step: next.step, weight: next.weight }, event);
    return undefined;
  }

  private async saveExperiment(rule: ExperimentRule, next: ExperimentState, event: string | undefined): Promise<string | undefined> {
    try {
      await this.timed(this.o.store.saveExperiment(rule.key, next), 'saving the state');
    } catch (e) {
      this.failedSaves++;
      this.o.log.warn({ experiment: rule.key, error: (e as Error).message }, 'cannot save experiment state; deciding again at the next round');
      return (e as Error).message;
    }
    this.experimentStates[rule.key] = next;
    if (event) this.o.log.info({ experiment: rule.key, phase: next.phase }, event);
    return undefined;
  }

  private prune(now: number): void {
    const live = new Set([...this.model.canaries.map((c) => c.key), ...this.model.experiments.map((e) => e.key)]);
    for (const key of [...Object.keys(this.canaryStates), ...Object.keys(this.experimentStates)]) {
      if (live.has(key)) {
        this.absentSince.delete(key);
        continue;
      }
      const since = this.absentSince.get(key);
      if (since === undefined) this.absentSince.set(key, now);
      else if (now - since >= this.pruneAfterMs) {
        this.absentSince.delete(key);
        delete this.canaryStates[key];
        delete this.experimentStates[key];
        this.o.store.remove?.(key).catch((e: Error) => this.o.log.warn({ rule: key, error: e.message }, 'cannot remove rollout state'));
      }
    }
    for (const key of this.absentSince.keys()) if (live.has(key)) this.absentSince.delete(key);
  }

  /**
   * Re-reads the store. `adopt` (a follower, or a replica that just started leading): what is stored
   * is the truth. `repair` (the leader): its own states are; a state gone from the store (its
   * object was deleted) is forgotten, one that differs (overwritten by some other writer of the
   * status) is written again, and the leader never steps back to what it was overwritten with.
   */
  private refresh(mode: 'adopt' | 'repair'): Promise<void> {
    return this.exclusive(async () => {
      if (this.stopped || !this.started) return;
      let loaded;
      try {
        loaded = await this.timed(this.o.store.load(), 'reading the state');
      } catch (e) {
        this.o.log.warn({ error: (e as Error).message }, 'cannot read rollout state; keeping the last known');
        return;
      }
      if (this.stopped) return;
      if (mode === 'repair') await this.repair(loaded);
      else {
        this.canaryStates = loaded.canaries;
        this.experimentStates = loaded.experiments;
      }
      this.runtimeMayHaveChanged();
    });
  }

  private async repair(loaded: RolloutStates): Promise<void> {
    const rewrite = (key: string, write: () => Promise<void>) =>
      this.timed(write(), 'saving the state').then(
        () => this.o.log.warn({ rule: key }, 'stored rollout state differed from the leader\'s; written again'),
        (e: Error) => this.o.log.warn({ rule: key, error: e.message }, 'cannot save rollout state'),
      );
    const writes: Array<Promise<void>> = [];
    for (const [key, state] of Object.entries(this.canaryStates)) {
      const stored = loaded.canaries[key];
      if (!stored) delete this.canaryStates[key];
      else if (!sameJson(stored, state)) writes.push(rewrite(key, () => this.o.store.saveCanary(key, state)));
    }
    for (const [key, state] of Object.entries(this.experimentStates)) {
      const stored = loaded.experiments[key];
      if (!stored) delete this.experimentStates[key];
      else if (!sameJson(stored, state)) writes.push(rewrite(key, () => this.o.store.saveExperiment(key, state)));
    }
    for (const [key, state] of Object.entries(loaded.canaries)) this.canaryStates[key] ??= state;
    for (const [key, state] of Object.entries(loaded.experiments)) this.experimentStates[key] ??= state;
    await Promise.all(writes);
  }

  private runtimeMayHaveChanged(): void {
    const now = this.runtime(this.model);
    if (sameRuntime(now, this.served)) return;
    this.served = now;
    this.o.onRuntimeChange();
  }

  /** The next round: at most tickMs away, sooner when a check or an expiry is due before. */
  private schedule(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    let delay = this.tickMs;
    if (this.leadership.isLeader() && this.failedSaves === 0) {
      const now = this.now();
      for (const c of this.model.canaries) {
        const s = this.canaryStates[c.key];
        const due = s && s.revision === c.revision ? nextCheckAt(c, s) : now;
        if (due !== undefined) delay = Math.min(delay, due - now);
      }
      for (const e of this.model.experiments) if (this.experimentStates[e.key]?.phase === 'Running') delay = Math.min(delay, e.expiresAtMs - now);
    }
    this.timer = setTimeout(() => void this.tick(), Math.max(delay, 5));
    this.timer.unref();
  }
}

/** Same plain-JSON state, whatever the order of its fields. */
function sameJson(a: object, b: object): boolean {
  const canon = (o: object) => JSON.stringify(Object.entries(o).filter(([, v]) => v !== undefined).sort(([x], [y]) => x.localeCompare(y)));
  return canon(a) === canon(b);
}

function notLeader(): { ok: false; status: 409; error: string } {
  return { ok: false, status: 409, error: 'this replica is not the leader: only the leader changes rollouts (the others follow its stored state); send the command to the leader' };
}
