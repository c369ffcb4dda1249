// One resource of one cluster, kept in memory by client-node's own ListWatch (the informer that
// `makeInformer` returns), made to never stop silently: the stock ListWatch gives up on any error
// other than 410 Gone, so the owner restarts it with backoff. Restarting resumes the watch from
// the last resourceVersion (no relist, so no mass delete/re-add); a 410 makes it relist, and the
// relist only reports the objects that really changed. Watches ask for bookmarks so that the
// resourceVersion stays fresh and a resumed watch rarely needs that relist.
import { type KubeConfig, type KubernetesListObject, type KubernetesObject, ListWatch, Watch } from '@kubernetes/client-node';

export interface WatcherHealth {
  /** The first list has completed (the cache holds the cluster's objects). */
  synced: boolean;
  /** Listing/watching works right now. */
  healthy: boolean;
  /** Why not, when not healthy. */
  reason?: string;
  /** When the last error happened (ISO time). */
  lastErrorAt?: string;
  /** How many times the informer was restarted after an error. */
  restarts: number;
}

export interface WatcherOptions<T extends KubernetesObject> {
  kubeConfig: KubeConfig;
  /** API path of the collection, e.g. `/api/v1/services`. */
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  /** E.g. `metadata.name=x`: only the objects it selects are listed and watched. */
  fieldSelector?: string;
  /** Called (synchronously, possibly many times per burst) after any object changed. */
  onChange: () => void;
  /** Called with each object added, updated or deleted in the cache (before `onChange`). */
  onEvent?: (type: 'add' | 'update' | 'delete', obj: T) => void;
  /** Called when health changes (synced, healthy). */
  onHealth?: (h: WatcherHealth) => void;
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** Asks the server to end each watch after this long (the informer then resumes it). */
  watchTimeoutSeconds?: number;
  /**
   * A watch that delivers nothing (no event, no bookmark) for this long is cut and restarted: a
   * half-open connection to a vanished API server would otherwise look healthy for ever.
   * Default: the watch timeout plus 60 s; 0 turns it off.
   */
  idleTimeoutMs?: number;
}

type WatchFn = Watch['watch'];

export class ResourceWatcher<T extends KubernetesObject> {
  private readonly informer: ListWatch<T>;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private backoff: number;
  private readonly health: WatcherHealth = { synced: false, healthy: false, restarts: 0 };
  private watchdog: NodeJS.Timeout | undefined;
  /** The watch in flight: when it last delivered something, and how to cut it. */
  private current: { lastActivity: number; abort: () => void } | undefined;

  constructor(private readonly opts: WatcherOptions<T>) {
    this.backoff = opts.backoffMinMs ?? 200;
    const real = new Watch(opts.kubeConfig);
    // A thin adapter around client-node's Watch: ask for bookmarks, and learn when a watch request
    // was accepted (the stock informer only tells us about failures).
    const watch: Pick<Watch, 'watch'> = {
      watch: async (path, query, callback, done) => {
        let failed = false;
        const params = { ...query, allowWatchBookmarks: true, ...(opts.watchTimeoutSeconds ? { timeoutSeconds: opts.watchTimeoutSeconds } : {}) };
        const entry = { lastActivity: Date.now(), abort: () => {}, idle: false };
        this.current = entry;
        const ctrl = await real.watch(
          path,
          params,
          (phase, obj, raw) => {
            entry.lastActivity = Date.now();
            callback(phase, obj, raw);
          },
          (err) => {
            if (this.current === entry) this.current = undefined;
            if (err) failed = true;
            // A watch we cut for being silent reports as an error, so that it is restarted with backoff.
            done(entry.idle ? new Error('watch delivered nothing (no event, no bookmark) for too long; restarted') : err);
          },
        );
        entry.abort = () => {
          entry.idle = true;
          ctrl.abort();
        };
        if (!failed && !this.stopped) this.setHealthy();
        return ctrl;
      },
    } satisfies { watch: WatchFn };
    const list = async () => {
      const result = await opts.list();
      // ListWatch applies the list right after this promise resolves; report once it has.
      setImmediate(() => {
        if (this.stopped) return;
        const first = !this.health.synced;
        this.health.synced = true;
        this.setHealthy(first);
        opts.onChange();
      });
      return result;
    };
    this.informer = new ListWatch<T>(opts.path, watch as Watch, list, false, opts.labelSelector, opts.fieldSelector);
    for (const verb of ['add', 'update', 'delete'] as const) {
      this.informer.on(verb, (obj) => {
        if (this.stopped) return;
        opts.onEvent?.(verb, obj);
        opts.onChange();
      });
    }
    this.informer.on('error', (err) => this.failed(err));
  }

  start(): void {
    this.stopped = false;
    const idle = this.opts.idleTimeoutMs ?? ((this.opts.watchTimeoutSeconds ?? 300) + 60) * 1000;
    if (idle > 0 && !this.watchdog) {
      this.watchdog = setInterval(() => {
        const w = this.current;
        if (w && Date.now() - w.lastActivity > idle) w.abort();
      }, Math.max(10, Math.min(idle / 4, 5000)));
      this.watchdog.unref();
    }
    this.informer.start().catch((e) => this.failed(e));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    clearInterval(this.watchdog);
    this.watchdog = undefined;
    void this.informer.stop();
  }

  /** Objects in the cache (the last known state, kept while the cluster is unreachable). */
  list(): T[] {
    return [...this.informer.list()];
  }

  /** One object of the cache (cluster-scoped: no namespace). */
  get(name: string, namespace?: string): T | undefined {
    return this.informer.get(name, namespace);
  }

  status(): WatcherHealth {
    return { ...this.health };
  }

  private setHealthy(force = false): void {
    this.backoff = this.opts.backoffMinMs ?? 200;
    if (this.health.healthy && !force) return;
    this.health.healthy = true;
    delete this.health.reason;
    this.opts.onHealth?.(this.status());
  }

  private failed(err: unknown): void {
    if (this.stopped) return; // aborting our own request on stop() reports an error too
    const reason = describeError(err);
    const changed = this.health.healthy || this.health.reason !== reason;
    this.health.healthy = false;
    this.health.reason = reason;
    this.health.lastErrorAt = new Date().toISOString();
    if (changed) this.opts.onHealth?.(this.status());
    if (this.retryTimer) return;
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, this.opts.backoffMaxMs ?? 10_000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.stopped) return;
      this.health.restarts++;
      this.start();
    }, delay);
    this.retryTimer.unref();
  }
}

export function describeError(err: unknown): string {
  if (err && typeof err === 'object') {
    const e = err as { statusCode?: number; code?: number | string; message?: string; body?: unknown };
    const code = e.statusCode ?? e.code;
    const msg = e.message ?? String(err);
    return code !== undefined && !msg.includes(String(code)) ? `${code}: ${msg}` : msg;
  }
  return String(err);
}
