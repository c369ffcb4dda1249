// Wires the stages together: file source -> compile (validate + model) -> snapshot cache -> ADS
// server, plus the admin API (and the monitoring listener). Returned handle stops everything it started.
import { createServer, type Server } from 'node:http';
import type { Express } from 'express';
import { listenOn } from './listen-error.ts';
import { createAdminApp, createMonitoringApp } from './observe/admin.ts';
import { coreComponents } from './observe/core-health.ts';
import { Health } from './observe/health.ts';
import { Metrics } from './observe/metrics.ts';
import { capList, changedRules } from './model/rule-changes.ts';
import { Debouncer } from './debounce.ts';
import { FileConfigSource } from './config/file-source.ts';
import type { LoadResult } from './config/types.ts';
import type { KubeSource, KubeSourceOptions } from './kube/kube-source.ts';
import { ConfigSources } from './sources.ts';
import { createLogger, type Logger } from './log.ts';
import { reuseUnchanged, sameForProxies } from './model/reuse.ts';
import { compile, formatIssue, type MeshState } from './model/compile.ts';
import { AdsServer } from './xds/ads-server.ts';
import { SnapshotCache } from './xds/snapshot-cache.ts';
import type { XdsLimits } from './xds/limits.ts';
import { ModelMemo } from './model/build.ts';
import { endpointUpdate } from './model/endpoint-update.ts';
import type { MeshCa, MeshCaOptions } from './ca/mesh-ca.ts';
import type { Authority } from './ca/authority.ts';
import { DEFAULT_MESH, type MeshSettings } from './model/mesh-identity.ts';
import type { LeaderElector, LeaderElectionTimings } from './kube/leader-election.ts';
import { SOLE_REPLICA, type Leadership } from './kube/leadership.ts';
import { DEFAULT_CA_NAMESPACE } from './ca/defaults.ts';
import { splitHostPort } from './host-port.ts';
import { CredentialSources } from './credentials/sources.ts';
import type { CredentialStore } from './credentials/credential-store.ts';
import { startLoadReporting, type LoadReportingOptions } from './load/load-reporting.ts';
import type { LoadWindow } from './load/load-window.ts';
import { RolloutController } from './rollout/controller.ts';
import { DirStore, MemoryStore, type RolloutStore } from './rollout/store.ts';
import { applyRuntime } from './model/runtime-overlay.ts';
import { DashboardEvents } from './dashboard/events.ts';
import type { Model } from './model/types.ts';

export interface ControlPlaneOptions {
  /** A directory of rule files (optional when `kube` is given; both may be used at once). */
  configDir?: string;
  /** Kubernetes clusters: rules from the config cluster's CRDs, services from every cluster. */
  kube?: Omit<KubeSourceOptions, 'log'>;
  xdsListen?: string;
  /**
   * TLS on the xDS port with meshpilot's CA (server certificate from it, client certificates
   * verified, not required) and the CA service on the same port. Without it xDS is plaintext and
   * no certificates are issued (tokens must not travel in the clear).
   */
  xdsTls?: MeshCaOptions;
  /**
   * With `xdsTls`: also serve xDS (ADS only, never the CA) in plaintext on this address, for
   * proxyless gRPC clients that cannot do TLS to the xDS server (grpc-js-xds 1.14.1). Proxies
   * connecting there are not authenticated.
   */
  xdsPlaintextListen?: string;
  /** What one xDS client may cost (xds/limits.ts; defaults in DEFAULT_XDS_LIMITS). */
  xdsLimits?: Partial<XdsLimits>;
  adminListen?: string | null;
  /**
   * A second HTTP listener serving only GET /healthz, /readyz and /metrics (`--monitoring-listen`),
   * for probes and scrapers from outside the pod while the admin API stays on loopback.
   */
  monitoringListen?: string | null;
  /** Quiet period before a change is applied (default 100 ms). */
  debounceMs?: number;
  /** Longest a change waits while changes keep coming (default 1 s). */
  maxDelayMs?: number;
  /**
   * Quiet period before an endpoint-only change (ServiceEntry endpoints, EndpointSlices) is pushed
   * (default 10 ms; at most 10x this while they keep coming). Such changes skip the compile
   * (model/endpoint-update.ts); a compile follows within a few seconds to refresh warnings.
   */
  endpointDebounceMs?: number;
  logLevel?: string;
  logger?: Logger;
  /** Network -> gateways, for file mode (`--network-gateway`); added to what the source finds. */
  networkGateways?: LoadResult['networkGateways'];
  /** Trust domain and root namespace (`--trust-domain`, `--root-namespace`); Istio's defaults. */
  mesh?: MeshSettings;
  /**
   * Replicas elect a leader with a Lease in the config cluster (or the CA's, `xdsTls.secrets`), in
   * `namespace` (default: the CA's namespace); only the leader writes rule status and the CA's
   * trust bundle ConfigMaps, every replica serves xDS and the CA. Without a cluster there is no
   * election and this process writes. `false`: no election (one replica only).
   */
  leaderElection?: false | (LeaderElectionTimings & { namespace?: string; name?: string; identity?: string });
  /** credentialName certificates from DIR/<namespace>/<name>/ (`--credentials-dir`); Secrets of the config cluster are read anyway. */
  credentialsDir?: string;
  /** Load reporting (LRS): how often proxies report and how far back figures are kept (default 10 s, 60 s). */
  loadReporting?: LoadReportingOptions;
  /**
   * Where canary and fault experiment state is kept in file mode (`--state-dir`), so a restart
   * resumes each rollout where it was. With a config cluster it is the rules' status instead;
   * with neither it lives in memory only.
   */
  stateDir?: string;
  /** Rollout rounds: longest time between two (default 1 s), store re-reads (default 2 s). */
  rollouts?: { tickMs?: number; refreshMs?: number };
  /** `--dashboard-actions`: the dashboard offers canary promote/pause/resume/abort (the admin API takes them either way). */
  dashboardActions?: boolean;
  /** `--admin-host`: host names the admin API answers besides IP addresses and localhost. */
  adminHosts?: string[];
}

export interface ControlPlane {
  xdsAddress: string;
  /** The plaintext xDS address (`xdsPlaintextListen`), when one was asked for. */
  xdsPlaintextAddress?: string;
  adminAddress?: string;
  /** The monitoring listener's address (`monitoringListen`), when one was asked for. */
  monitoringAddress?: string;
  state(): MeshState;
  readonly ads: AdsServer;
  readonly cache: SnapshotCache;
  readonly kube?: KubeSource;
  /** The TLS credentials served as SDS secrets (credentialName). */
  readonly credentials: CredentialStore;
  /** Prometheus metrics (GET /metrics); sources and the webhook report through its hooks. */
  readonly metrics: Metrics;
  /** Component checks behind /healthz and /readyz; sources add theirs (e.g. one per cluster). */
  readonly health: Health;
  /** The mesh CA, when serving with TLS. */
  readonly ca?: Authority;
  /** Whether this replica leads (writes to the cluster); always true without an election. */
  readonly leadership: Leadership;
  /** The election, when there is one. */
  readonly elector?: LeaderElector;
  /** The load proxies report (LRS), over the load window. */
  readonly load: LoadWindow;
  /** Canaries and fault experiments: their state, decisions and commands. */
  readonly rollouts: RolloutController;
  /** Re-reads the config directory now (the watcher does this by itself on changes). */
  reload(): void;
  stop(): Promise<void>;
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const log = opts.logger ?? createLogger(opts.logLevel);
  if (!opts.configDir && !opts.kube) throw new Error('give a config directory, Kubernetes clusters, or both');
  if (opts.xdsPlaintextListen && !opts.xdsTls) throw new Error('a plaintext xDS listener is only meaningful with TLS on the xDS port (--xds-tls); without it xDS is plaintext already');
  if (opts.xdsPlaintextListen && opts.xdsTls?.requireIdentity) throw new Error('a plaintext xDS listener cannot be combined with --xds-require-identity: no stream there has a verified identity');
  // The file source coalesces the events of one turn of the event loop, then waits for each named
  // file to settle (and holds removals for its quiet period, so a file rewritten in place never
  // drops rules); the pipeline's debounce is the quiet period users configure.
  const files = opts.configDir ? new FileConfigSource(opts.configDir, { debounceMs: 1 }) : undefined;
  // Only the leader writes to the cluster; an election needs a cluster to hold its Lease.
  const electIn = opts.kube?.configCluster?.kubeConfig ?? opts.xdsTls?.secrets?.kubeConfig;
  const election = opts.leaderElection === false ? undefined : opts.leaderElection ?? {};
  // The Kubernetes client and the CA's X.509 code load only when used (most of a file-only start's imports).
  const elector = electIn && election
    ? new (await import('./kube/leader-election.ts')).LeaderElector({ ...election, kubeConfig: electIn, namespace: election.namespace ?? opts.xdsTls?.secrets?.namespace ?? DEFAULT_CA_NAMESPACE, log })
    : undefined;
  const leadership: Leadership = elector ?? SOLE_REPLICA;
  const kube = opts.kube ? new (await import('./kube/kube-source.ts')).KubeSource({ ...opts.kube, log, leadership }) : undefined;
  const source = new ConfigSources(files, kube);
  const cache = new SnapshotCache(log);
  // credentialName: TLS certificates served to gateways as SDS secrets (credentials/).
  const credentialSources = new CredentialSources({ ...(opts.kube?.configCluster ? { kubeConfig: opts.kube.configCluster.kubeConfig, kubeReader: (await import('./credentials/kube-credentials.ts')).KubeCredentials } : {}), ...(opts.credentialsDir ? { dir: opts.credentialsDir } : {}), ...(opts.kube?.backoffMinMs !== undefined ? { backoffMinMs: opts.kube.backoffMinMs } : {}), ...(opts.kube?.backoffMaxMs !== undefined ? { backoffMaxMs: opts.kube.backoffMaxMs } : {}) }, log);
  cache.useCredentials(credentialSources.store);
  credentialSources.start();
  const metrics = new Metrics(cache);
  const health = new Health();
  let state: MeshState | undefined;
  // What model builds keep between changes, for this control plane's lifetime (model/build.ts).
  const modelMemo = new ModelMemo();
  // Workloads hold mesh certificates only when this control plane runs the mesh CA.
  const mesh: MeshSettings = { ...DEFAULT_MESH, certificates: Boolean(opts.xdsTls), ...opts.mesh };

  let reported = new Set<string>();

  const apply = (load: LoadResult) => {
    const next = compile(opts.networkGateways ? { ...load, networkGateways: { ...load.networkGateways, ...opts.networkGateways } } : load, state?.accepted ?? [], modelMemo, mesh);
    // No proxy gets config before every source has synced and the rollout state is read: ADS
    // answers UNAVAILABLE until then.
    const ready = source.ready() && rolloutsLoaded;
    // Before that, errors may only mean "not synced yet" (a rule naming a service of a cluster
    // still listing): they are logged once everything is in.
    if (ready) {
      const now = new Set(next.errors.map(formatIssue));
      for (const text of now) if (!reported.has(text)) log.warn({ error: text }, 'rule rejected');
      reported = now;
    }
    // A rule that was rejected and whose newest version is now in force: say so once.
    const stillRejected = new Set(next.rejected);
    const inForce = new Set(next.accepted.map((o) => o.key));
    for (const key of state?.rejected ?? []) if (!stillRejected.has(key) && inForce.has(key)) log.info({ rule: key }, 'rule accepted after being rejected');
    const changes = changedRules(state?.accepted ?? [], next.accepted);
    const before = state?.model;
    state = { ...next, model: reuseUnchanged(next.model, before) };
    applied = load;
    refresh.cancel();
    source.afterCompile(state);
    rollouts.setModel(state.model);
    if (!keepsState && !warnedMemoryState && (state.model.canaries.length > 0 || state.model.experiments.length > 0)) {
      warnedMemoryState = true;
      log.warn('no --state-dir: canary and fault experiment state is kept in memory only, and a restart starts every canary over');
    }
    if (!ready) return;
    // Nothing a proxy sees changed (warnings aside): keep the cache, and so every version.
    const servedBefore = served;
    const now = serve(state);
    if (cache.ready && servedBefore && sameForProxies(servedBefore, now)) return;
    cache.setModel(now);
    log.info({ generation: cache.generation, services: next.model.services.length, rules: next.accepted.length, errors: next.errors.length, rejected: capList(next.rejected), ...changes }, 'configuration applied');
  };

  // The load `state` was made from: an endpoint update compares the next one with it.
  let applied: LoadResult | undefined;
  const debouncer = new Debouncer(opts.debounceMs ?? 100, opts.maxDelayMs ?? 1000, () => apply(source.current()));
  // After endpoint updates, a compile brings warnings that depend on endpoints up to date.
  const refresh = new Debouncer(1000, 5000, () => apply(source.current()));
  // Endpoint-only changes go straight to the cache: the model with those services' endpoints and
  // clusters replaced, no compile; anything else waits for the debounced compile.
  const applyEndpoints = () => {
    if (debouncer.pending) return;
    const load = source.current();
    const update = state && applied && cache.ready && source.ready() && rolloutsLoaded ? endpointUpdate(applied, load, state, modelMemo) : undefined;
    if (!update) {
      debouncer.trigger();
      return;
    }
    applied = load;
    state = update.state;
    if (update.changed.length === 0) return;
    cache.setModel(serve(state));
    refresh.trigger();
    log.debug({ generation: cache.generation, endpointsOf: capList(update.changed) }, 'endpoints applied');
  };
  // Canaries and fault experiments: the compiled model is served with the weights and faults their
  // state says (model/runtime-overlay.ts); `served` is that model, what proxies, explain and the
  // admin API see. A state change re-overlays the last compiled model and pushes.
  let served: Model | undefined;
  let warnedMemoryState = false;
  const serve = (s: MeshState): Model => (served = applyRuntime(s.model, rollouts.runtime(s.model)));
  const ads = new AdsServer(cache, log, metrics, opts.xdsLimits);
  // The cache tells its listeners after each setModel(served): LRS then asks Envoy for the new clusters.
  const load = startLoadReporting(ads, metrics.registry, () => served?.clusters, (l) => cache.onChange(l), log, opts.loadReporting);
  const customApi = kube?.configCustom();
  const keepsState = Boolean(opts.stateDir || customApi);
  const store: RolloutStore = opts.stateDir
    ? new DirStore(opts.stateDir, log)
    : customApi
      ? new (await import('./rollout/kube-store.ts')).KubeRolloutStore(customApi, log)
      : new MemoryStore();
  const rollouts = new RolloutController({
    load,
    store,
    leadership,
    log,
    registry: metrics.registry,
    ...(opts.rollouts?.tickMs !== undefined ? { tickMs: opts.rollouts.tickMs } : {}),
    ...(opts.rollouts?.refreshMs !== undefined ? { refreshMs: opts.rollouts.refreshMs } : {}),
    onRuntimeChange: () => {
      if (!state || !cache.ready || !source.ready()) return;
      const before = served;
      const now = serve(state);
      if (now !== before) cache.setModel(now);
    },
  });
  // Stored states first: serving without them would put every canary back to its first step, so
  // nothing is pushed (and /readyz says not ready) until they are read. A state directory is read
  // before serve returns; a cluster's statuses may take a while, and xDS comes up meanwhile.
  let rolloutsLoaded = false;
  let stopping = false;
  const rolloutsStarted = rollouts.start().then(() => {
    rolloutsLoaded = true;
    if (!stopping && state) apply(source.current());
  });
  if (!customApi) await rolloutsStarted;
  /** The compiled state with the model proxies are served (canary weights, experiment faults applied). */
  const servedState = (): MeshState => (served && state && served !== state.model ? { ...state, model: served } : state!);
  const endpointDebounceMs = opts.endpointDebounceMs ?? 10;
  const endpoints = new Debouncer(endpointDebounceMs, endpointDebounceMs * 10, applyEndpoints);
  apply(source.load());
  // While a compile is pending, every change joins it.
  source.watch(() => (debouncer.pending ? debouncer.trigger() : endpoints.trigger()));

  metrics.observeState(() => ads.streams, () => state);
  metrics.observeLeader(leadership);
  if (elector) health.addProvider(elector);
  health.addProvider(credentialSources);
  if (files) health.add({ name: 'config-source/file', check: () => files.health() });
  if (kube) {
    health.addProvider(kube);
    kube.onClusterStatus((cluster, up) => (up === undefined ? metrics.removeCluster(cluster) : metrics.setClusterHealth(cluster, up)));
  }
  for (const c of coreComponents(cache, ads, () => state)) health.add(c);
  let meshCa: MeshCa | undefined;
  if (opts.xdsTls) {
    meshCa = await (await import('./ca/mesh-ca.ts')).startMeshCa({ ...opts.xdsTls, leadership }, ads, log, metrics);
    metrics.observeCa(meshCa.authority);
  } else {
    log.warn('xDS is plaintext (no --xds-tls): proxies cannot tell meshpilot from an impostor, and no workload certificates are issued');
  }
  // A listener that cannot bind (ListenError: a port in use) stops what was started before it.
  const abandon = async (e: unknown): Promise<never> => {
    stopping = true;
    rollouts.stop();
    debouncer.cancel();
    endpoints.cancel();
    refresh.cancel();
    source.close();
    credentialSources.stop();
    await ads.stop();
    meshCa?.close();
    throw e;
  };
  const xdsAddress = await ads.listen(opts.xdsListen ?? '127.0.0.1:0', meshCa?.tls.credentials).catch(abandon);
  log.info({ address: xdsAddress, tls: Boolean(meshCa) }, 'xDS (ADS) server listening');
  let xdsPlaintextAddress: string | undefined;
  if (opts.xdsPlaintextListen) {
    xdsPlaintextAddress = await ads.listenPlaintext(opts.xdsPlaintextListen).catch(abandon);
    log.warn({ address: xdsPlaintextAddress }, 'xDS also served in plaintext (ADS only, no CA): proxies connecting there are not authenticated and cannot tell meshpilot from an impostor');
  }

  const servers: Server[] = [];
  const dashboardEvents = new DashboardEvents();
  let adminAddress: string | undefined;
  let monitoringAddress: string | undefined;
  try {
    if (opts.adminListen) {
      const app = createAdminApp({ state: servedState, ads, cache, health, metrics, logger: log, load, rollouts, ...(meshCa ? { ca: meshCa.authority } : {}), dashboard: { actions: Boolean(opts.dashboardActions), events: dashboardEvents }, ...(opts.adminHosts ? { hosts: opts.adminHosts } : {}) });
      adminAddress = await listenHttp(app, opts.adminListen, servers);
      log.info({ address: adminAddress }, 'admin API listening');
    }
    if (opts.monitoringListen) {
      monitoringAddress = await listenHttp(createMonitoringApp({ health, metrics, logger: log }), opts.monitoringListen, servers);
      log.info({ address: monitoringAddress }, 'monitoring listening (/healthz, /readyz, /metrics)');
    }
  } catch (e) {
    // An address in use: nothing started here keeps running.
    await closeHttp(servers);
    await abandon(e);
  }
  elector?.start();

  return {
    xdsAddress,
    ...(xdsPlaintextAddress ? { xdsPlaintextAddress } : {}),
    ...(adminAddress ? { adminAddress } : {}),
    ...(monitoringAddress ? { monitoringAddress } : {}),
    state: servedState,
    ads,
    cache,
    ...(kube ? { kube } : {}),
    credentials: credentialSources.store,
    metrics,
    health,
    ...(meshCa ? { ca: meshCa.authority } : {}),
    leadership,
    ...(elector ? { elector } : {}),
    load,
    rollouts,
    reload: () => apply(source.load()),
    async stop() {
      // Stop writing first, then hand the Lease over, so another replica takes over at once.
      await elector?.stop();
      stopping = true;
      // Dashboard streams end cleanly (the page sees the end, not a reset) before the listeners close.
      dashboardEvents.close();
      rollouts.stop();
      debouncer.cancel();
      endpoints.cancel();
      refresh.cancel();
      source.close();
      credentialSources.stop();
      await ads.stop();
      meshCa?.close();
      await closeHttp(servers);
    },
  };
}

/** Listens on host:port (port 0: the OS picks); the server joins `servers`; returns host:port. */
async function listenHttp(app: Express, address: string, servers: Server[]): Promise<string> {
  const [host, port] = splitHostPort(address);
  // Not app.listen: express 5 calls its callback on a listen error too, so an address in use
  // would look like success.
  const server = createServer(app);
  await listenOn(server, port, host, address);
  servers.push(server);
  const addr = server.address();
  return typeof addr === 'object' && addr ? `${host}:${addr.port}` : address;
}

async function closeHttp(servers: Server[]): Promise<void> {
  await Promise.all(servers.map((s) => {
    s.closeAllConnections();
    return new Promise<void>((resolve) => s.close(() => resolve()));
  }));
}

export { splitHostPort };
