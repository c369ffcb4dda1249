// Leader election with a coordination.k8s.io/v1 Lease, so that of several `serve` replicas behind
// one Service exactly one writes to the cluster (rule status, the CA's trust bundle ConfigMaps).
// Every replica serves xDS and the CA; only the writes are the leader's.
//
// The rules (Kubernetes' own, as client-go's leaderelection has them):
// - A replica takes the Lease when it is absent (create: 409 = another replica was first), released
//   (no holderIdentity), or expired: unchanged for its leaseDurationSeconds since this replica first
//   saw that version. The time is this replica's clock from its own observation, not the holder's
//   renewTime, so clocks that disagree between nodes cannot make two leaders.
// - Every write carries the resourceVersion it was decided on: of two replicas racing for one
//   version, the API server lets one through and answers the other 409 (it lost).
// - The leader renews every retry period. It acts as leader only until `renewDeadline` after the
//   moment it sent its last successful renewal: a renewal written at time t cannot be seen expired
//   by anyone before t + leaseDuration, and renewDeadline < leaseDuration, so it has stopped
//   before another replica can take over, even when it cannot reach the API server at all.
// - On a clean shutdown the leader stops acting, then releases the Lease (no holder, duration 1 s)
//   so another replica takes over at its next retry instead of after a whole lease duration.
// - A Lease deleted by hand: its leader stops at its next renewal (404), and replicas that had seen
//   it wait a lease duration before creating it again (its holder may still be within its deadline).
import os from 'node:os';
import { type ConfigurationOptions, CoordinationV1Api, type KubeConfig, Observable, type ObservableMiddleware, type RequestContext, type ResponseContext, type V1Lease, V1MicroTime } from '@kubernetes/client-node';
import type { ComponentHealth, HealthProvider } from '../observe/health.ts';
import type { Logger } from '../log.ts';
import { describeError } from './watcher.ts';
import { deadlineSignal } from '../deadline-signal.ts';
import { checkTimings, LEADER_ELECTION_DEFAULTS, type LeaderElectionTimings } from './leader-election-options.ts';

export { checkTimings, LEADER_ELECTION_DEFAULTS, type LeaderElectionTimings };

import { SOLE_REPLICA, type Leadership } from './leadership.ts';

export { SOLE_REPLICA, type Leadership };

export const DEFAULT_LEASE_NAME = 'meshpilot-leader';
/** Kubernetes' defaults (kube-controller-manager, client-go). */

export interface LeaderElectionOptions extends LeaderElectionTimings {
  kubeConfig: KubeConfig;
  namespace: string;
  name?: string;
  /** Unique per replica (default: pod name, i.e. the hostname in a pod, and the process id). */
  identity?: string;
  log: Logger;
}

/** The pod's name (its hostname in Kubernetes, or POD_NAME) and the process id. */
export function defaultIdentity(): string {
  return `${process.env['POD_NAME'] || os.hostname()}_${process.pid}`;
}

/** Throws when the timings cannot work (as client-go checks them). */

/** What a successful write or a read left us knowing about the Lease. */
interface Observed {
  lease: V1Lease;
  /** Our clock when we first saw this resourceVersion. */
  since: number;
}

function statusOf(e: unknown): number | undefined {
  const x = e as { code?: unknown; statusCode?: unknown };
  const c = x?.code ?? x?.statusCode;
  return typeof c === 'number' ? c : undefined;
}

export class LeaderElector implements Leadership, HealthProvider {
  readonly identity: string;
  readonly name: string;
  readonly namespace: string;
  private readonly api: CoordinationV1Api;
  private readonly timings: Required<LeaderElectionTimings>;
  private readonly log: Logger;
  private readonly listeners = new Set<(leading: boolean) => void>();
  private leading = false;
  /** Leading is allowed until then (our clock): the send time of the last successful renewal + renewDeadline. */
  private leadUntil = 0;
  private observed: Observed | undefined;
  /** When this replica first found the Lease gone after having seen it (our clock). */
  private goneSince: number | undefined;
  private loopTimer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private attempt: { done: Promise<void>; abort: AbortController } | undefined;
  private started = false;
  private stopped = false;
  private lastError: string | undefined;
  /** When the current run of failures began (our clock). */
  private failingSince = 0;

  constructor(o: LeaderElectionOptions) {
    this.identity = o.identity ?? defaultIdentity();
    this.name = o.name ?? DEFAULT_LEASE_NAME;
    this.namespace = o.namespace;
    this.log = o.log.child({ lease: `${o.namespace}/${this.name}`, identity: this.identity });
    this.timings = {
      leaseDurationMs: o.leaseDurationMs ?? LEADER_ELECTION_DEFAULTS.leaseDurationMs,
      renewDeadlineMs: o.renewDeadlineMs ?? LEADER_ELECTION_DEFAULTS.renewDeadlineMs,
      retryPeriodMs: o.retryPeriodMs ?? LEADER_ELECTION_DEFAULTS.retryPeriodMs,
    };
    checkTimings(this.timings);
    this.api = o.kubeConfig.makeApiClient(CoordinationV1Api);
  }

  isLeader(): boolean {
    // The deadline holds even when its timer is late (a stalled event loop): writers ask this first.
    if (this.leading && Date.now() >= this.leadUntil) this.deadlinePassed();
    return this.leading;
  }

  onChange(listener: (leading: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Who holds the Lease as last seen ('' when nobody, undefined before the first look). */
  holder(): string | undefined {
    return this.observed ? this.observed.lease.spec?.holderIdentity ?? '' : undefined;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.log.info({ leaseDurationMs: this.timings.leaseDurationMs, renewDeadlineMs: this.timings.renewDeadlineMs, retryPeriodMs: this.timings.retryPeriodMs }, 'leader election: candidate');
    this.tick();
  }

  /**
   * Stops leading (listeners hear it before anything else happens), then, when `release` (the
   * default) and this replica holds the Lease, gives it up so another replica takes over at once.
   */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.loopTimer);
    clearTimeout(this.deadlineTimer);
    const wasLeading = this.leading;
    this.setLeading(false, 'shutting down', 'info');
    if (this.attempt) {
      this.attempt.abort.abort();
      await this.attempt.done;
    }
    if (opts.release === false || !this.started) return;
    if (wasLeading || this.holder() === this.identity) await this.release();
  }

  health(): ComponentHealth[] {
    const holder = this.holder();
    const leading = this.isLeader();
    const detail = leading
      ? 'leading: this replica writes rule status and the CA trust bundle ConfigMaps'
      : holder === undefined ? 'looking for the leader' : holder ? `following ${holder}` : 'no leader: the lease is free';
    // A blip is not worth reporting; failing for a lease duration means this replica could not
    // take over from a dead leader (or, leading, has already stopped).
    const impaired = this.lastError !== undefined && Date.now() - this.failingSince >= this.timings.leaseDurationMs;
    return [{
      name: 'leader-election',
      // A follower serves xDS and the CA as well as the leader: never a reason to be unready.
      ready: true,
      healthy: !impaired,
      detail: this.lastError ? `${detail}; cannot reach the lease: ${this.lastError}` : detail,
      leading,
      identity: this.identity,
      lease: `${this.namespace}/${this.name}`,
      ...(holder !== undefined ? { holder } : {}),
    }];
  }

  // ---- the loop ------------------------------------------------------------------------------------

  private tick(): void {
    if (this.stopped) return;
    const abort = new AbortController();
    const done = this.tryAcquireOrRenew(abort.signal)
      .then(() => this.recovered())
      .catch((e: unknown) => this.failed(e))
      .finally(() => {
        if (this.attempt?.abort === abort) this.attempt = undefined;
        if (this.stopped) return;
        // Followers spread their attempts a little (client-go's jitter), the leader keeps its beat.
        const delay = this.timings.retryPeriodMs * (this.leading ? 1 : 1 + Math.random() * 0.2);
        this.loopTimer = setTimeout(() => this.tick(), delay);
        this.loopTimer.unref();
      });
    this.attempt = { done, abort };
  }

  private async tryAcquireOrRenew(signal: AbortSignal): Promise<void> {
    const mine = this.observed?.lease;
    // The leader renews on the version it wrote last, without reading first; a 409 means the Lease
    // changed under it, so it reads what is there.
    if (this.leading && mine?.spec?.holderIdentity === this.identity) {
      try {
        if (await this.write(mine, signal)) return;
      } catch (e) {
        if (statusOf(e) !== 404) throw e;
        // Deleted under us: anyone may create it now, so this replica stops at once.
        this.setLeading(false, 'the lease was deleted');
      }
    }
    let lease: V1Lease | undefined;
    try {
      lease = await this.api.readNamespacedLease({ name: this.name, namespace: this.namespace }, this.requestOptions(signal));
    } catch (e) {
      if (statusOf(e) !== 404) throw e;
    }
    if (!lease) {
      // Never seen (a first start): create it now, one creator wins. Seen and now gone (deleted by
      // hand): its last holder may lead until its deadline, so wait a lease duration first.
      if (this.observed || this.goneSince !== undefined) {
        this.observed = undefined;
        this.goneSince ??= Date.now();
        if (Date.now() < this.goneSince + this.timings.leaseDurationMs) return;
      }
      await this.create(signal);
      return;
    }
    this.goneSince = undefined;
    this.observe(lease);
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    if (holder !== this.identity && holder !== '' && !this.expired()) {
      if (this.leading) this.setLeading(false, `the lease is held by ${holder}`);
      return;
    }
    await this.write(lease, signal);
  }

  /** Whether the Lease as observed has gone unrenewed for its duration (our clock since we saw it). */
  private expired(): boolean {
    const o = this.observed;
    if (!o) return false;
    const seconds = o.lease.spec?.leaseDurationSeconds ?? Math.ceil(this.timings.leaseDurationMs / 1000);
    return Date.now() >= o.since + seconds * 1000;
  }

  private observe(lease: V1Lease): void {
    const rv = lease.metadata?.resourceVersion;
    if (!this.observed || this.observed.lease.metadata?.resourceVersion !== rv) this.observed = { lease, since: Date.now() };
    else this.observed.lease = lease;
  }

  /** Takes or renews the Lease on the version given; false when another write came first (409). */
  private async write(current: V1Lease, signal: AbortSignal): Promise<boolean> {
    const sentAt = Date.now();
    const prev = current.spec ?? {};
    const taking = prev.holderIdentity !== this.identity;
    const body: V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { ...current.metadata, name: this.name, namespace: this.namespace },
      spec: {
        holderIdentity: this.identity,
        leaseDurationSeconds: Math.ceil(this.timings.leaseDurationMs / 1000),
        acquireTime: taking || !prev.acquireTime ? new V1MicroTime(sentAt) : prev.acquireTime,
        renewTime: new V1MicroTime(sentAt),
        leaseTransitions: (prev.leaseTransitions ?? 0) + (taking && prev.holderIdentity ? 1 : 0),
      },
    };
    let written: V1Lease;
    try {
      written = await this.api.replaceNamespacedLease({ name: this.name, namespace: this.namespace, body }, this.requestOptions(signal));
    } catch (e) {
      if (statusOf(e) === 409) {
        if (taking) this.log.debug('leader election: another replica changed the lease first');
        return false;
      }
      throw e;
    }
    if (taking) this.log.info({ previous: prev.holderIdentity || undefined }, 'leader election: took the lease');
    this.succeeded(written, sentAt);
    return true;
  }

  private async create(signal: AbortSignal): Promise<void> {
    const sentAt = Date.now();
    const body: V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.name, namespace: this.namespace, labels: { 'app.kubernetes.io/managed-by': 'meshpilot' } },
      spec: {
        holderIdentity: this.identity,
        leaseDurationSeconds: Math.ceil(this.timings.leaseDurationMs / 1000),
        acquireTime: new V1MicroTime(sentAt),
        renewTime: new V1MicroTime(sentAt),
        leaseTransitions: 0,
      },
    };
    let made: V1Lease;
    try {
      made = await this.api.createNamespacedLease({ namespace: this.namespace, body }, this.requestOptions(signal));
    } catch (e) {
      if (statusOf(e) === 409) return; // another replica created it first: read it next time
      throw e;
    }
    this.log.info('leader election: created the lease');
    this.succeeded(made, sentAt);
  }

  /** A write of ours went through: lead until renewDeadline after it was sent. */
  private succeeded(lease: V1Lease, sentAt: number): void {
    this.observed = { lease, since: Date.now() };
    this.goneSince = undefined;
    if (this.stopped) return;
    this.leadUntil = sentAt + this.timings.renewDeadlineMs;
    const left = this.leadUntil - Date.now();
    // A write that took longer than the deadline to come back: not safe to act on; the next renew is.
    if (left <= 0) return;
    this.armDeadline(left);
    this.setLeading(true, 'holding the lease');
  }

  private armDeadline(ms: number): void {
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = setTimeout(() => this.deadlinePassed(), ms);
    this.deadlineTimer.unref();
  }

  private deadlinePassed(): void {
    if (!this.leading) return;
    const left = this.leadUntil - Date.now();
    // Timers may fire a millisecond early by Date.now(): wait out the rest.
    if (left > 0) return this.armDeadline(left);
    this.setLeading(false, `could not renew the lease within ${this.timings.renewDeadlineMs} ms${this.lastError ? ` (${this.lastError})` : ''}`);
  }

  private setLeading(leading: boolean, why: string, level: 'info' | 'warn' = leading ? 'info' : 'warn'): void {
    if (this.leading === leading) return;
    this.leading = leading;
    if (!leading) clearTimeout(this.deadlineTimer);
    this.log[level]({ reason: why }, leading ? 'leader election: started leading' : 'leader election: stopped leading');
    for (const l of [...this.listeners]) {
      try {
        l(leading);
      } catch (e) {
        this.log.error({ error: describeError(e) }, 'leader election: a listener failed');
      }
    }
  }

  private recovered(): void {
    if (this.lastError === undefined) return;
    this.lastError = undefined;
    this.log.info('leader election: the lease is reachable again');
  }

  private failed(e: unknown): void {
    if (this.stopped) return;
    const error = describeError(e);
    if (this.lastError === undefined) {
      this.failingSince = Date.now();
      this.log.warn({ error, leading: this.leading }, 'leader election: cannot read or write the lease; retrying');
    }
    this.lastError = error;
  }

  private async release(): Promise<void> {
    const abort = deadlineSignal(this.timings.renewDeadlineMs);
    for (let i = 0; i < 2; i++) {
      let lease = this.observed?.lease;
      try {
        if (i > 0 || !lease) lease = await this.api.readNamespacedLease({ name: this.name, namespace: this.namespace }, this.requestOptions(abort));
        if (lease.spec?.holderIdentity !== this.identity) return;
        const now = new V1MicroTime(Date.now());
        const spec = { ...lease.spec, leaseDurationSeconds: 1, acquireTime: now, renewTime: now };
        delete spec.holderIdentity;
        await this.api.replaceNamespacedLease({ name: this.name, namespace: this.namespace, body: { ...lease, spec } }, this.requestOptions(abort));
        this.log.info('leader election: released the lease');
        return;
      } catch (e) {
        if (statusOf(e) === 409 && i === 0) continue;
        this.log.warn({ error: describeError(e) }, 'leader election: could not release the lease; another replica takes over when it expires');
        return;
      }
    }
  }

  /** Each request is cut after a bounded time (a hung connection must not stall renewals) or on stop. */
  private requestOptions(signal: AbortSignal): ConfigurationOptions {
    const limit = Math.max(this.timings.retryPeriodMs, Math.floor(this.timings.renewDeadlineMs / 3));
    const combined = deadlineSignal(limit, signal);
    const cut: ObservableMiddleware = {
      pre: (ctx: RequestContext) => {
        ctx.setSignal(combined);
        return new Observable(Promise.resolve(ctx));
      },
      post: (r: ResponseContext) => new Observable(Promise.resolve(r)),
    };
    return { middleware: [cut], middlewareMergeStrategy: 'append' };
  }
}
