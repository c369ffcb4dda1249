// Wires the stages together: file source -> compile (validate + model) -> snapshot cache -> ADS
// server, plus the admin API. Returned handle stops everything it started.
import type { Server } from 'node:http';
import { createAdminApp } from './admin.ts';
import { coreComponents } from './core-health.ts';
import { Health } from './health.ts';
import { Metrics } from './metrics.ts';
import { capList, changedRules } from './rule-changes.ts';
import { Debouncer } from './debounce.ts';
import { FileConfigSource } from './config/file-source.ts';
import type { LoadResult } from './config/types.ts';
import { createLogger, type Logger } from './log.ts';
import { reuseUnchanged, sameForProxies } from './model/reuse.ts';
import { compile, formatIssue, type MeshState } from './pipeline.ts';
import { AdsServer } from './xds/ads-server.ts';
import { SnapshotCache } from './xds/snapshot-cache.ts';

export interface ControlPlaneOptions {
  configDir: string;
  xdsListen?: string;
  adminListen?: string | null;
  /** Quiet period before a change is applied (default 100 ms). */
  debounceMs?: number;
  /** Longest a change waits while changes keep coming (default 1 s). */
  maxDelayMs?: number;
  logLevel?: string;
  logger?: Logger;
}

export interface ControlPlane {
  xdsAddress: string;
  adminAddress?: string;
  state(): MeshState;
  readonly ads: AdsServer;
  readonly cache: SnapshotCache;
  /** Prometheus metrics (GET /metrics); sources and the webhook report through its hooks. */
  readonly metrics: Metrics;
  /** Component checks behind /healthz and /readyz; sources add theirs (e.g. one per cluster). */
  readonly health: Health;
  /** Re-reads the config directory now (the watcher does this by itself on changes). */
  reload(): void;
  stop(): Promise<void>;
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const log = opts.logger ?? createLogger(opts.logLevel);
  // The file source only coalesces one save's burst of file events; the pipeline debounces.
  const source = new FileConfigSource(opts.configDir, { debounceMs: 10 });
  const cache = new SnapshotCache(log);
  const metrics = new Metrics(cache);
  const health = new Health();
  let state: MeshState | undefined;

  const apply = (load: LoadResult) => {
    const next = compile(load, state?.accepted ?? []);
    const reported = new Set((state?.errors ?? []).map(formatIssue));
    for (const e of next.errors) {
      const text = formatIssue(e);
      if (!reported.has(text)) log.warn({ error: text }, 'rule rejected');
    }
    // A rule that was rejected and whose newest version is now in force: say so once.
    const stillRejected = new Set(next.rejected);
    const inForce = new Set(next.accepted.map((o) => o.key));
    for (const key of state?.rejected ?? []) if (!stillRejected.has(key) && inForce.has(key)) log.info({ rule: key }, 'rule accepted after being rejected');
    const changes = changedRules(state?.accepted ?? [], next.accepted);
    const before = state?.model;
    state = { ...next, model: reuseUnchanged(next.model, before) };
    // Nothing a proxy sees changed (warnings aside): keep the cache, and so every version.
    if (before && sameForProxies(before, state.model)) return;
    cache.setModel(state.model);
    log.info({ generation: cache.generation, services: next.model.services.length, rules: next.accepted.length, errors: next.errors.length, rejected: capList(next.rejected), ...changes }, 'configuration applied');
  };

  apply(source.load());
  const debouncer = new Debouncer(opts.debounceMs ?? 100, opts.maxDelayMs ?? 1000, () => apply(source.current()));
  source.watch(() => debouncer.trigger());

  const ads = new AdsServer(cache, log, metrics);
  metrics.observeState(() => ads.streams, () => state);
  health.add({ name: 'config-source/file', check: () => source.health() });
  for (const c of coreComponents(cache, ads, () => state)) health.add(c);
  const xdsAddress = await ads.listen(opts.xdsListen ?? '127.0.0.1:0');
  log.info({ address: xdsAddress }, 'xDS (ADS) server listening');

  let admin: Server | undefined;
  let adminAddress: string | undefined;
  if (opts.adminListen) {
    const app = createAdminApp({ state: () => state!, ads, cache, health, metrics });
    const [host, port] = splitHostPort(opts.adminListen);
    admin = await new Promise<Server>((resolve, reject) => {
      const s = app.listen(port, host, () => resolve(s));
      s.once('error', reject);
    });
    const addr = admin.address();
    adminAddress = typeof addr === 'object' && addr ? `${host}:${addr.port}` : opts.adminListen;
    log.info({ address: adminAddress }, 'admin API listening');
  }

  return {
    xdsAddress,
    ...(adminAddress ? { adminAddress } : {}),
    state: () => state!,
    ads,
    cache,
    metrics,
    health,
    reload: () => apply(source.load()),
    async stop() {
      debouncer.cancel();
      source.close();
      await ads.stop();
      if (admin) {
        admin.closeAllConnections();
        await new Promise<void>((resolve) => admin!.close(() => resolve()));
      }
    },
  };
}

export function splitHostPort(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  if (i < 0) throw new Error(`expected host:port, got "${address}"`);
  return [address.slice(0, i).replace(/^\[|\]$/g, ''), Number(address.slice(i + 1))];
}
