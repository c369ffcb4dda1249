// Cluster mode: the mesh CA's trust bundle in a ConfigMap of every namespace (default
// `meshpilot-ca-root`, key `root-cert.pem`), which injected agents mount to trust the CA's serving
// certificate before they have a certificate of their own.
//
// Level-triggered: Namespaces and the ConfigMaps of that name are kept in informer caches, and
// after any change (a namespace created, a ConfigMap edited or deleted by hand, the bundle changed,
// a relist) every live namespace is compared with what it should hold; only the ones that differ
// are written. Writes are conditional (create never overwrites, replace carries the
// resourceVersion the decision was made on), so a stale cache costs a 409 and a retry, never a
// lost edit of someone else's that we did not see.
import { CoreV1Api, type KubeConfig, type V1ConfigMap, type V1Namespace } from '@kubernetes/client-node';
import type { Logger } from '../log.ts';
import { describeError, ResourceWatcher, type WatcherHealth } from '../kube/watcher.ts';

export const DEFAULT_ROOT_CONFIGMAP = 'meshpilot-ca-root';
export const ROOT_CERT_KEY = 'root-cert.pem';
export const MANAGED_BY = { key: 'app.kubernetes.io/managed-by', value: 'meshpilot' } as const;

export interface RootPublisherOptions {
  /** The config cluster. */
  kubeConfig: KubeConfig;
  configMapName?: string;
  /** The trust bundle (every trusted root, PEM), read each time it is compared. */
  bundle: () => string;
  /** Subscribes to bundle changes; returns the unsubscribe. */
  onBundleChange: (listener: () => void) => () => void;
  log: Logger;
  /** Per-namespace retry backoff after a failed write (default 500 ms doubling to 60 s). */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** Watch restart backoff (ResourceWatcher's defaults when absent). */
  watchBackoffMinMs?: number;
  watchBackoffMaxMs?: number;
}

/** A write sent for a namespace: until the cache shows its result, the namespace is left alone. */
interface Pending {
  /** The write succeeded (at this tick of `clock`). */
  doneAt?: number;
  /** An event for the ConfigMap arrived since the write was sent. */
  seen: boolean;
}

interface Retry {
  delay: number;
  timer?: NodeJS.Timeout;
  /** The kind of error last logged, so a failure repeating with backoff is logged once. */
  kind: string;
}

/** Writes in flight at once: a bundle change in a cluster of many namespaces must not flood the API server. */
const MAX_IN_FLIGHT = 8;

export class RootPublisher {
  readonly configMapName: string;
  private readonly core: CoreV1Api;
  private readonly namespaces: ResourceWatcher<V1Namespace>;
  private readonly configMaps: ResourceWatcher<V1ConfigMap>;
  private readonly pending = new Map<string, Pending>();
  private readonly retries = new Map<string, Retry>();
  /** Namespaces to write, in order; each decides what to write only when its turn comes. */
  private readonly queue = new Set<string>();
  private inFlight = 0;
  private scheduled: NodeJS.Immediate | undefined;
  private unsubscribe: (() => void) | undefined;
  private stopped = true;
  /** Orders write completions against ConfigMap lists (see `listConfigMaps`). */
  private clock = 0;
  private lastListStart = 0;
  private announced = false;
  private passes = 0;
  private writes = 0;

  constructor(private readonly o: RootPublisherOptions) {
    this.configMapName = o.configMapName ?? DEFAULT_ROOT_CONFIGMAP;
    this.core = o.kubeConfig.makeApiClient(CoreV1Api);
    const watchBackoff = {
      ...(o.watchBackoffMinMs !== undefined ? { backoffMinMs: o.watchBackoffMinMs } : {}),
      ...(o.watchBackoffMaxMs !== undefined ? { backoffMaxMs: o.watchBackoffMaxMs } : {}),
    };
    this.namespaces = new ResourceWatcher<V1Namespace>({
      kubeConfig: o.kubeConfig,
      path: '/api/v1/namespaces',
      list: () => this.core.listNamespace(),
      onChange: () => this.schedule(),
      onHealth: (h) => this.watchHealth('Namespaces', h),
      watchTimeoutSeconds: 300,
      ...watchBackoff,
    });
    const fieldSelector = `metadata.name=${this.configMapName}`;
    this.configMaps = new ResourceWatcher<V1ConfigMap>({
      kubeConfig: o.kubeConfig,
      path: '/api/v1/configmaps',
      fieldSelector,
      list: () => this.listConfigMaps(fieldSelector),
      onEvent: (_type, cm) => this.configMapEvent(cm),
      onChange: () => this.schedule(),
      onHealth: (h) => this.watchHealth(`ConfigMaps ${this.configMapName}`, h),
      watchTimeoutSeconds: 300,
      ...watchBackoff,
    });
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.unsubscribe = this.o.onBundleChange(() => {
      this.o.log.info({ configMap: this.configMapName }, 'CA trust bundle changed: updating its ConfigMap in every namespace');
      this.schedule();
    });
    this.namespaces.start();
    this.configMaps.start();
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.namespaces.stop();
    this.configMaps.stop();
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    for (const r of this.retries.values()) clearTimeout(r.timer);
    this.retries.clear();
    this.queue.clear();
    this.pending.clear();
  }

  /** For tests and diagnostics: comparison passes run and writes sent so far. */
  stats(): { passes: number; writes: number; synced: boolean } {
    return { passes: this.passes, writes: this.writes, synced: this.synced() };
  }

  private synced(): boolean {
    return this.namespaces.status().synced && this.configMaps.status().synced;
  }

  private async listConfigMaps(fieldSelector: string) {
    const start = ++this.clock;
    const list = await this.core.listConfigMapForAllNamespaces({ fieldSelector });
    // The informer applies this list right after it resolves, before the pass it triggers.
    this.lastListStart = start;
    return list;
  }

  /**
   * A successful conditional write is the next change of its object, so the first event for the
   * ConfigMap after the write was sent is the write's own (or a later one): the cache has caught up.
   */
  private configMapEvent(cm: V1ConfigMap): void {
    const ns = cm.metadata?.namespace;
    if (!ns || cm.metadata?.name !== this.configMapName) return;
    const p = this.pending.get(ns);
    if (!p) return;
    if (p.doneAt !== undefined) this.pending.delete(ns);
    else p.seen = true;
  }

  /** One comparison pass per event-loop turn, however many events arrived. */
  private schedule(): void {
    if (this.stopped || this.scheduled) return;
    this.scheduled = setImmediate(() => {
      this.scheduled = undefined;
      this.pass();
    });
  }

  private pass(): void {
    // Before both caches are full, "absent" may only mean "not listed yet".
    if (this.stopped || !this.synced()) return;
    this.passes++;
    // A relist reflects every write that finished before it started, even one whose own event
    // it skipped (410 Gone): those namespaces are decided on the cache again.
    for (const [ns, p] of this.pending) if (p.doneAt !== undefined && p.doneAt < this.lastListStart) this.pending.delete(ns);
    const live = new Set<string>();
    const bundle = this.o.bundle();
    let differ = 0;
    for (const n of this.namespaces.list()) {
      const ns = n.metadata?.name;
      if (!ns || terminating(n)) continue;
      live.add(ns);
      if (this.pending.has(ns) || this.retries.get(ns)?.timer) continue;
      if (this.wanted(ns, bundle) !== undefined) {
        differ++;
        this.queue.add(ns);
      } else if (this.retries.delete(ns)) {
        this.o.log.info({ namespace: ns, configMap: this.configMapName }, 'CA trust bundle ConfigMap is up to date again');
      }
    }
    // Namespaces gone or going: nothing to write or retry there (a write into a terminating
    // namespace is refused anyway).
    for (const ns of [...this.queue]) if (!live.has(ns)) this.queue.delete(ns);
    for (const [ns, r] of this.retries) {
      if (live.has(ns)) continue;
      clearTimeout(r.timer);
      this.retries.delete(ns);
    }
    for (const ns of this.pending.keys()) if (!live.has(ns)) this.pending.delete(ns);
    if (!this.announced) {
      this.announced = true;
      this.o.log.info({ configMap: this.configMapName, namespaces: live.size, toWrite: differ }, `publishing the CA trust bundle as ConfigMap ${this.configMapName} in every namespace`);
    }
    this.pump();
  }

  /** The write a namespace needs now (undefined: its ConfigMap is as it should be). */
  private wanted(ns: string, bundle: string): { create: true } | { replace: V1ConfigMap } | undefined {
    const cm = this.configMaps.get(this.configMapName, ns);
    if (!cm) return { create: true };
    return upToDate(cm, bundle) ? undefined : { replace: cm };
  }

  private pump(): void {
    if (this.stopped || this.queue.size === 0) return;
    const bundle = this.o.bundle();
    while (!this.stopped && this.inFlight < MAX_IN_FLIGHT && this.queue.size > 0) {
      const ns = this.queue.values().next().value!;
      this.queue.delete(ns);
      // Decided now, on the newest cache and bundle: a queued namespace may no longer need it.
      if (this.pending.has(ns) || this.retries.get(ns)?.timer) continue;
      const want = this.wanted(ns, bundle);
      if (!want) continue;
      this.write(ns, want, bundle);
    }
  }

  private write(ns: string, want: { create: true } | { replace: V1ConfigMap }, bundle: string): void {
    const p: Pending = { seen: false };
    this.pending.set(ns, p);
    this.inFlight++;
    this.writes++;
    const name = this.configMapName;
    const request = 'create' in want
      ? this.core.createNamespacedConfigMap({ namespace: ns, body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ns, labels: { [MANAGED_BY.key]: MANAGED_BY.value } }, data: { [ROOT_CERT_KEY]: bundle } } })
      : this.core.replaceNamespacedConfigMap({ name, namespace: ns, body: replacement(want.replace, bundle) });
    const action = 'create' in want ? 'created' : 'replaced';
    request
      .then(() => {
        if (this.stopped || this.pending.get(ns) !== p) return;
        if (p.seen) this.pending.delete(ns);
        else p.doneAt = ++this.clock;
        const r = this.retries.get(ns);
        if (r) {
          this.retries.delete(ns);
          this.o.log.info({ namespace: ns, configMap: name }, 'CA trust bundle ConfigMap written after earlier failures');
        }
        this.o.log.debug({ namespace: ns, configMap: name }, `CA trust bundle ConfigMap ${action}`);
      })
      .catch((err: unknown) => {
        if (this.stopped) return;
        if (this.pending.get(ns) === p) this.pending.delete(ns);
        // A namespace deleted meanwhile refuses the write: nothing to report or retry there.
        if (!this.live(ns)) return;
        this.failed(ns, err);
      })
      .finally(() => {
        this.inFlight--;
        this.pump();
      });
  }

  /** Logged (once per kind of error, per namespace) and retried with backoff; other namespaces go on. */
  private failed(ns: string, err: unknown): void {
    const { kind, error } = apiError(err);
    const min = this.o.backoffMinMs ?? 500;
    const prev = this.retries.get(ns);
    const r: Retry = { delay: prev ? Math.min(prev.delay * 2, this.o.backoffMaxMs ?? 60_000) : min, kind };
    if (prev?.kind !== kind) {
      // A 409 is usually our cache being behind (someone wrote since): the retry reads the newer state.
      this.o.log.warn({ namespace: ns, configMap: this.configMapName, error, retryInMs: r.delay }, 'cannot write the CA trust bundle ConfigMap; retrying');
    }
    r.timer = setTimeout(() => {
      r.timer = undefined; // kept (without a timer) so the delay keeps growing until a write succeeds
      this.schedule();
    }, r.delay);
    r.timer.unref();
    this.retries.set(ns, r);
  }

  private live(ns: string): boolean {
    const n = this.namespaces.get(ns);
    return n !== undefined && !terminating(n);
  }

  private watchHealth(what: string, h: WatcherHealth): void {
    if (this.stopped) return;
    if (!h.healthy && h.reason) this.o.log.warn({ configMap: this.configMapName, error: h.reason }, `CA trust bundle publisher: cannot list/watch ${what}; retrying`);
  }
}

/**
 * What went wrong, for the log: the API server's status code, reason and message (client-node's
 * exception text also holds the response headers, date included, so it differs on every retry).
 */
function apiError(err: unknown): { kind: string; error: string } {
  const e = err as { code?: unknown; body?: unknown };
  if (typeof e?.code !== 'number') {
    const error = describeError(err);
    return { kind: error, error };
  }
  let status: { reason?: string; message?: string } = {};
  try {
    status = (typeof e.body === 'string' ? JSON.parse(e.body) : e.body) ?? {};
  } catch {
    // not a Status object: the code alone
  }
  const kind = `${e.code}${status.reason ? ` ${status.reason}` : ''}`;
  return { kind, error: status.message ? `${kind}: ${status.message}` : kind };
}

function terminating(n: V1Namespace): boolean {
  return n.status?.phase === 'Terminating' || n.metadata?.deletionTimestamp !== undefined;
}

/** Exactly the bundle under `root-cert.pem` (nothing else), and our label. */
function upToDate(cm: V1ConfigMap, bundle: string): boolean {
  const keys = Object.keys(cm.data ?? {});
  const binary = Object.keys(cm.binaryData ?? {});
  return keys.length === 1 && cm.data?.[ROOT_CERT_KEY] === bundle && binary.length === 0 && cm.metadata?.labels?.[MANAGED_BY.key] === MANAGED_BY.value;
}

/**
 * The ConfigMap as it should be, keeping what others may have added to its metadata (labels,
 * annotations, owners). The resourceVersion it was read at makes the replace conditional.
 */
function replacement(cm: V1ConfigMap, bundle: string): V1ConfigMap {
  const m = cm.metadata ?? {};
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: m.name!,
      namespace: m.namespace!,
      ...(m.resourceVersion ? { resourceVersion: m.resourceVersion } : {}),
      labels: { ...m.labels, [MANAGED_BY.key]: MANAGED_BY.value },
      ...(m.annotations ? { annotations: m.annotations } : {}),
      ...(m.ownerReferences ? { ownerReferences: m.ownerReferences } : {}),
      ...(m.finalizers ? { finalizers: m.finalizers } : {}),
    },
    data: { [ROOT_CERT_KEY]: bundle },
  };
}
