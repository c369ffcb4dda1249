// Writes an `Accepted` condition on each rule object through the status subresource: True when
// the object is in force as written, False with the field path and message of each problem
// otherwise. Written only when it changes, so status writes do not feed back into more writes.
// With several replicas only the leader writes (kube/leader-election.ts): a replica that starts
// leading writes what its current state says is missing, one that stops drops what it had queued.
import type { CustomObjectsApi } from '@kubernetes/client-node';
import type { Logger } from '../log.ts';
import { SOLE_REPLICA, type Leadership } from './leader-election.ts';
import type { MeshState } from '../model/compile.ts';
import type { RuleEntry } from './rules.ts';
import { describeError } from './watcher.ts';

export interface Condition {
  type: string;
  status: 'True' | 'False';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime?: string;
}

const MAX_MESSAGE = 1024;

/** The Accepted condition for one object, from the compiled state. */
export function acceptedCondition(entry: RuleEntry, state: MeshState): Condition {
  const m = entry.object.metadata ?? {};
  const key = `${entry.resource.kind}/${m.namespace ?? 'default'}/${m.name}`;
  const problems = state.errors.filter((e) => e.file === entry.file).map((e) => (e.path ? `${e.path}: ${e.message}` : e.message));
  // Listed as rejected with nothing of this object's in force (e.g. a file holds the key first).
  const r = state.rejections.find((x) => x.rule === key);
  const rejected = problems.length > 0 || (r !== undefined && !r.inForce?.startsWith(`${entry.file}:`));
  const generation = typeof m.generation === 'number' ? { observedGeneration: m.generation } : {};
  if (!rejected) return { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'in force', ...generation };
  let message = [...new Set(problems)].join('; ') || 'rejected';
  if (message.length > MAX_MESSAGE) message = `${message.slice(0, MAX_MESSAGE - 3)}...`;
  return { type: 'Accepted', status: 'False', reason: 'Invalid', message, ...generation };
}

function currentConditions(status: unknown): Condition[] {
  const c = (status as { conditions?: unknown } | undefined)?.conditions;
  return Array.isArray(c) ? (c as Condition[]) : [];
}

function same(a: Condition | undefined, b: Condition): boolean {
  return !!a && a.status === b.status && a.reason === b.reason && a.message === b.message && a.observedGeneration === b.observedGeneration;
}

/** Writes in flight at once: a burst (e.g. the first sync of many rules) must not flood the API server. */
const MAX_IN_FLIGHT = 8;
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;

export class StatusWriter {
  /** uid -> the condition last written (a write's own watch event may not have arrived yet). */
  private written = new Map<string, Condition>();
  private failures = new Set<string>();
  /** uid -> the write to make (the newest wins while it waits). */
  private queue = new Map<string, () => Promise<unknown>>();
  private inFlight = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay = RETRY_MIN_MS;
  private last: { entries: readonly RuleEntry[]; state: MeshState } | undefined;
  private closed = false;
  private readonly unsubscribe: () => void;

  constructor(private readonly custom: CustomObjectsApi, private readonly log: Logger, private readonly leadership: Leadership = SOLE_REPLICA) {
    this.unsubscribe = leadership.onChange((leading) => this.leadershipChanged(leading));
  }

  close(): void {
    this.closed = true;
    this.unsubscribe();
    this.stopWriting();
  }

  /** Writes the current state's conditions when this replica starts leading; drops its queue when it stops. */
  private leadershipChanged(leading: boolean): void {
    if (this.closed) return;
    // Another leader may have written meanwhile: the objects' own status (the cache) is the truth.
    this.written.clear();
    this.failures.clear();
    if (!leading) {
      this.stopWriting();
      return;
    }
    if (this.last) this.sync(this.last.entries, this.last.state);
  }

  private stopWriting(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.retryDelay = RETRY_MIN_MS;
    this.queue.clear();
  }

  sync(entries: readonly RuleEntry[], state: MeshState): void {
    if (this.closed) return;
    this.last = { entries, state };
    if (!this.leadership.isLeader()) return;
    const live = new Set<string>();
    for (const e of entries) {
      const m = e.object.metadata ?? {};
      const uid = m.uid ?? e.file;
      live.add(uid);
      const want = acceptedCondition(e, state);
      const conditions = currentConditions(e.object.status);
      const have = conditions.find((c) => c.type === 'Accepted');
      if (same(have, want)) {
        this.written.delete(uid);
        this.queue.delete(uid);
        continue;
      }
      if (same(this.written.get(uid), want)) continue;
      want.lastTransitionTime = have && have.status === want.status && have.lastTransitionTime ? have.lastTransitionTime : new Date().toISOString();
      this.written.set(uid, want);
      const next = [...conditions.filter((c) => c.type !== 'Accepted'), want];
      // Only the conditions: the rest of the status (a Canary's rollout) has another writer, and
      // this object's copy of it may be older than what is stored.
      const hasStatus = typeof e.object.status === 'object' && e.object.status !== null;
      const op = hasStatus ? { op: 'add', path: '/status/conditions', value: next } : { op: 'add', path: '/status', value: { conditions: next } };
      this.queue.set(uid, () =>
        this.custom
          .patchNamespacedCustomObjectStatus({
            group: e.resource.group,
            version: e.resource.version,
            namespace: m.namespace ?? 'default',
            plural: e.resource.plural,
            name: m.name ?? '',
            body: [op],
          })
          .then(() => {
            this.failures.delete(e.file);
            this.retryDelay = RETRY_MIN_MS;
          })
          .catch((err) => {
            if (this.written.get(uid) === want) this.written.delete(uid);
            if (!this.failures.has(e.file)) this.log.warn({ object: e.file, error: describeError(err) }, 'cannot write rule status; retrying');
            this.failures.add(e.file);
            this.scheduleRetry();
          }),
      );
    }
    for (const uid of this.written.keys()) if (!live.has(uid)) this.written.delete(uid);
    for (const uid of this.queue.keys()) if (!live.has(uid)) this.queue.delete(uid);
    this.pump();
  }

  private pump(): void {
    while (!this.closed && this.leadership.isLeader() && this.inFlight < MAX_IN_FLIGHT && this.queue.size > 0) {
      const [uid, write] = this.queue.entries().next().value!;
      this.queue.delete(uid);
      this.inFlight++;
      void write().finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  /** A failed write is tried again (with backoff) even if nothing else changes meanwhile. */
  private scheduleRetry(): void {
    if (this.retryTimer || this.closed || !this.leadership.isLeader()) return;
    const delay = this.retryDelay;
    this.retryDelay = Math.min(this.retryDelay * 2, RETRY_MAX_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.last) this.sync(this.last.entries, this.last.state);
    }, delay);
    this.retryTimer.unref();
  }
}
