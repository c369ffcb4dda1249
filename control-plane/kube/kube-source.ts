// Kubernetes as a config source: rules from the config cluster's CRDs, services and endpoints
// from every registered cluster (merged per host), clusters registered by flags or live by
// Secrets. It yields the same LoadResult a directory does, plus each network's gateways, and says
// when it is ready: every cluster has synced once, or the sync timeout passed (reported).
import type { CustomObjectsApi, V1Secret } from '@kubernetes/client-node';
import { compareErrors } from '../config/load.ts';
import type { ConfigError, ConfigObject, LoadResult } from '../config/types.ts';
import type { ComponentHealth, HealthProvider } from '../observe/health.ts';
import type { Logger } from '../log.ts';
import type { MeshState } from '../model/compile.ts';
import { KubeCluster, type ClusterRegistration, type Gateway } from './cluster.ts';
import { registrationFromSecret } from './cluster-secrets.ts';
import { sourceName } from './objects.ts';
import type { Leadership } from './leader-election.ts';
import { StatusWriter } from './rule-status.ts';
import { DocumentMemo, RuleObjects } from './rules.ts';
import { buildShard, mergeShards, serviceEntryDocument } from './service-shards.ts';

/** Label of Secrets that register a cluster; its value is the cluster's name. */
export const CLUSTER_SECRET_LABEL = 'meshpilot.io/cluster';

export interface KubeSourceOptions {
  /** Rules (CRDs), services and cluster Secrets come from here. */
  configCluster?: ClusterRegistration;
  /** Services and endpoints only. */
  remoteClusters?: ClusterRegistration[];
  /** Watch Secrets labelled `meshpilot.io/cluster` in this namespace of the config cluster. */
  secretsNamespace?: string;
  /** Serve anyway after this long if some cluster has not synced (default 30 s). */
  syncTimeoutMs?: number;
  log: Logger;
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** With several replicas: status is written only while this says so (default: always). */
  leadership?: Leadership;
}

export class KubeSource implements HealthProvider {
  private readonly clusters = new Map<string, KubeCluster>();
  /** Replacements (a registration Secret changed) syncing while the old cluster stays in force. */
  private readonly pending = new Map<string, KubeCluster>();
  /** cluster name -> fingerprint of the Secret that registered it */
  private readonly fromSecrets = new Map<string, string>();
  private readonly registrationErrors = new Map<string, string>();
  /** Secrets that could not be read, by fingerprint (reported once, retried when they change). */
  private readonly invalid = new Map<string, { where: string; error: string }>();
  private readonly rules = new RuleObjects();
  private readonly services = new DocumentMemo();
  private readonly statusWriter: StatusWriter | undefined;
  private readonly listeners: Array<() => void> = [];
  private readonly statusListeners: Array<(cluster: string, up: boolean | undefined) => void> = [];
  private readonly wasHealthy = new Map<string, boolean>();
  private readyLatched = false;
  private timedOut: string[] | undefined;
  private syncTimer: NodeJS.Timeout | undefined;
  private notifyScheduled = false;
  private closed = false;
  private readonly configName: string | undefined;

  constructor(private readonly opts: KubeSourceOptions) {
    if (opts.configCluster) {
      this.configName = opts.configCluster.name;
      this.clusters.set(opts.configCluster.name, this.create(opts.configCluster, true));
    }
    for (const reg of opts.remoteClusters ?? []) {
      if (this.clusters.has(reg.name)) throw new Error(`cluster ${reg.name} is registered twice`);
      this.clusters.set(reg.name, this.create(reg, false));
    }
    const config = this.configName ? this.clusters.get(this.configName) : undefined;
    this.statusWriter = config ? new StatusWriter(config.custom, opts.log, opts.leadership) : undefined;
  }

  /** The config cluster's custom objects API (rule status, rollout state), when there is one. */
  configCustom(): CustomObjectsApi | undefined {
    return this.configName ? this.clusters.get(this.configName)?.custom : undefined;
  }

  start(): void {
    for (const c of this.clusters.values()) c.start();
    const timeout = this.opts.syncTimeoutMs ?? 30_000;
    this.syncTimer = setTimeout(() => {
      if (this.readyLatched || this.closed) return;
      this.timedOut = [...this.clusters.values()].filter((c) => !c.health().synced).map((c) => c.name);
      this.readyLatched = true;
      this.opts.log.warn({ clusters: this.timedOut, timeoutMs: timeout }, 'serving before every cluster has synced: sync timeout passed');
      this.notify();
    }, timeout);
    this.syncTimer.unref();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.syncTimer);
    for (const c of [...this.clusters.values(), ...this.pending.values()]) c.stop();
    this.statusWriter?.close();
    this.listeners.length = 0;
  }

  /** Called after anything changed (coalesced per event-loop turn). */
  onChange(cb: () => void): void {
    this.listeners.push(cb);
  }

  /**
   * Called when a cluster comes up (connected and synced), goes down, or is unregistered
   * (`undefined`), e.g. to keep a per-cluster "up" metric.
   */
  onClusterStatus(cb: (cluster: string, up: boolean | undefined) => void): void {
    this.statusListeners.push(cb);
    for (const c of this.clusters.values()) cb(c.name, this.isUp(c));
  }

  private isUp(c: KubeCluster): boolean {
    const h = c.health();
    return h.healthy && h.synced;
  }

  private clusterStatus(name: string, up: boolean | undefined): void {
    for (const l of this.statusListeners) l(name, up);
  }

  /** Every cluster has synced once (or the sync timeout passed). Latches. */
  ready(): boolean {
    if (!this.readyLatched && [...this.clusters.values()].every((c) => c.health().synced)) {
      this.readyLatched = true;
      clearTimeout(this.syncTimer);
      this.opts.log.info({ clusters: [...this.clusters.keys()] }, 'every cluster has synced');
    }
    return this.readyLatched;
  }

  current(): LoadResult {
    const objects: ConfigObject[] = [];
    const errors: ConfigError[] = [];
    const config = this.configName ? this.clusters.get(this.configName) : undefined;
    if (config) {
      const r = this.rules.build(config);
      objects.push(...r.objects);
      errors.push(...r.errors);
    }
    // The config cluster first, then the others by name: the first cluster defining a port wins.
    const ordered = [...this.clusters.values()].sort((a, b) => (a.name === this.configName ? -1 : b.name === this.configName ? 1 : a.name.localeCompare(b.name)));
    const merged = mergeShards(ordered.map((c) => ({ cluster: c.name, shard: buildShard(c.objects(), c.reg.network) })));
    const taken = new Set(objects.map((o) => o.key));
    for (const s of merged) {
      const file = sourceName(s.clusters.join(','), 'Service', s.namespace, s.name);
      const parsed = this.services.parse(file, serviceEntryDocument(s));
      errors.push(...parsed.errors);
      if (!parsed.object) continue;
      if (taken.has(parsed.object.key)) {
        // A rule object happens to use the generated name: the rule wins, the Service is reported.
        errors.push({ file, line: 1, col: 1, path: 'metadata.name', message: `${parsed.object.key} is also a rule object's name; this Service is not meshed until one is renamed` });
        continue;
      }
      objects.push(parsed.object);
    }
    this.services.sweep();
    const networkGateways: Record<string, Gateway[]> = {};
    for (const c of ordered) {
      if (!c.reg.network || !c.reg.gateway) continue;
      (networkGateways[c.reg.network] ??= []).push({ ...c.reg.gateway });
    }
    objects.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    errors.sort(compareErrors);
    return { objects, errors, networkGateways };
  }

  /** Writes status conditions on the config cluster's rule objects (once ready). */
  afterCompile(state: MeshState): void {
    if (!this.readyLatched || !this.statusWriter) return;
    this.statusWriter.sync(this.rules.entries, state);
  }

  health(): ComponentHealth[] {
    const out: ComponentHealth[] = [];
    for (const c of this.clusters.values()) {
      const h = c.health();
      const late = this.timedOut?.includes(c.name) && !h.synced;
      out.push({
        name: `cluster/${c.name}`,
        ready: h.synced || this.readyLatched,
        healthy: h.healthy,
        detail: h.healthy ? (h.synced ? 'synced' : 'syncing') : !h.lastErrorAt ? 'connecting' : h.synced ? `unreachable, serving its last known state: ${h.reason}` : `cannot sync: ${h.reason}`,
        ...(late ? { syncTimedOut: true } : {}),
        ...(h.network ? { network: h.network } : {}),
        origin: h.origin,
        ...(h.lastErrorAt ? { lastErrorAt: h.lastErrorAt } : {}),
      });
    }
    for (const c of this.pending.values()) {
      const h = c.health();
      out.push({ name: `cluster/${c.name}/replacement`, ready: true, healthy: h.healthy, detail: h.healthy ? 'syncing; the current registration stays in force until it has' : `cannot sync: ${h.reason}`, origin: h.origin });
    }
    for (const [secret, error] of this.registrationErrors) out.push({ name: `registration/${secret}`, ready: true, healthy: false, detail: error });
    return out;
  }

  private create(reg: ClusterRegistration, isConfig: boolean): KubeCluster {
    return new KubeCluster(reg, {
      rules: isConfig,
      ...(isConfig && this.opts.secretsNamespace ? { secretsNamespace: this.opts.secretsNamespace } : {}),
      secretLabel: CLUSTER_SECRET_LABEL,
      onChange: () => this.changed(isConfig),
      onHealth: (cl) => this.healthChanged(cl),
      ...(this.opts.backoffMinMs !== undefined ? { backoffMinMs: this.opts.backoffMinMs } : {}),
      ...(this.opts.backoffMaxMs !== undefined ? { backoffMaxMs: this.opts.backoffMaxMs } : {}),
    });
  }

  private changed(fromConfig: boolean): void {
    if (this.closed) return;
    if (fromConfig) this.reconcileSecrets();
    this.promoteSynced();
    this.notify();
  }

  /** A replacement that has synced takes over from the cluster it replaces, in one step. */
  private promoteSynced(): void {
    for (const [name, next] of this.pending) {
      if (!next.health().synced) continue;
      this.pending.delete(name);
      this.clusters.get(name)?.stop();
      this.clusters.set(name, next);
      this.wasHealthy.delete(name);
      this.healthChanged(next);
      this.opts.log.info({ cluster: name, network: next.reg.network }, 'cluster registration replaced');
    }
  }

  private notify(): void {
    if (this.notifyScheduled || this.closed) return;
    this.notifyScheduled = true;
    setImmediate(() => {
      this.notifyScheduled = false;
      if (this.closed) return;
      for (const l of [...this.listeners]) l();
    });
  }

  private healthChanged(c: KubeCluster): void {
    if (this.closed || this.clusters.get(c.name) !== c) return;
    const h = c.health();
    this.clusterStatus(c.name, this.isUp(c));
    const before = this.wasHealthy.get(c.name);
    if (before === h.healthy) return;
    this.wasHealthy.set(c.name, h.healthy);
    if (h.healthy) this.opts.log.info({ cluster: c.name, network: h.network }, 'cluster connected');
    else if (before !== undefined || h.lastErrorAt) this.opts.log.warn({ cluster: c.name, reason: h.reason }, 'cluster unreachable; keeping its last known services and endpoints, retrying');
    this.notify();
  }

  /** Adds, replaces and removes clusters registered by Secrets, to match the Secrets now present. */
  private reconcileSecrets(): void {
    const config = this.configName ? this.clusters.get(this.configName) : undefined;
    if (!config?.secrets) return;
    const wanted = new Map<string, { secret: V1Secret; fingerprint: string }>();
    this.registrationErrors.clear();
    for (const s of config.secrets.list()) {
      const name = s.metadata?.labels?.[CLUSTER_SECRET_LABEL];
      const where = `${s.metadata?.namespace}/${s.metadata?.name}`;
      if (!name) continue;
      if (wanted.has(name) || (this.clusters.has(name) && !this.fromSecrets.has(name))) {
        this.registrationErrors.set(where, `cluster name ${JSON.stringify(name)} is already registered; this Secret is ignored`);
        continue;
      }
      wanted.set(name, { secret: s, fingerprint: `${name}\n${JSON.stringify(s.data ?? {})}` });
    }
    for (const [name] of this.fromSecrets) {
      if (wanted.has(name)) continue;
      this.clusters.get(name)?.stop();
      this.pending.get(name)?.stop();
      this.clusters.delete(name);
      this.pending.delete(name);
      this.fromSecrets.delete(name);
      this.wasHealthy.delete(name);
      this.clusterStatus(name, undefined);
      this.opts.log.info({ cluster: name }, 'cluster unregistered (its Secret is gone)');
    }
    const stillWanted = new Set([...wanted.values()].map((w) => w.fingerprint));
    for (const f of this.invalid.keys()) if (!stillWanted.has(f)) this.invalid.delete(f);
    for (const [name, { secret, fingerprint }] of wanted) {
      if (this.fromSecrets.get(name) === fingerprint) continue;
      const where = `${secret.metadata?.namespace}/${secret.metadata?.name}`;
      const known = this.invalid.get(fingerprint);
      if (known) {
        this.registrationErrors.set(known.where, known.error);
        continue;
      }
      try {
        const reg = registrationFromSecret(name, secret);
        const c = this.create(reg, false);
        this.pending.get(name)?.stop();
        // A changed Secret: the old cluster stays in force until the new one has synced.
        if (this.clusters.has(name)) this.pending.set(name, c);
        else this.clusters.set(name, c);
        this.fromSecrets.set(name, fingerprint);
        c.start();
        this.opts.log.info({ cluster: name, secret: where, network: reg.network }, 'cluster registered');
      } catch (e) {
        const error = e instanceof Error ? e.message : String(e);
        this.invalid.set(fingerprint, { where, error });
        this.registrationErrors.set(where, error);
        this.opts.log.warn({ secret: where, error }, 'invalid cluster Secret');
      }
    }
  }
}
