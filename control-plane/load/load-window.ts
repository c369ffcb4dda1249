// The load proxies report over LRS (lrs-service.ts), kept per cluster in time buckets over a sliding
// window and summed across proxies: what canaries and fault experiments are judged on (LoadQuery).
// Counts are put in the bucket of the instant the report arrived (a report covers the interval
// before it, load_reporting_interval long), so figures are exact to a bucket. Memory is bounded:
// buckets older than the window go, and at most `maxClusters` clusters (of those, at most
// `maxUnknownClusters` the model does not know) are held; reports on further clusters are dropped
// and counted.
import type { LoadFigures, LoadQuery } from '../rollout/types.ts';

/** One cluster's part of one report: counts since the proxy's previous report, and in flight now. */
export interface ClusterLoad {
  cluster: string;
  succeeded: number;
  failed: number;
  issued: number;
  inFlight: number;
}

export interface LoadWindowOptions {
  /** How far back figures are kept (default 60 s). */
  windowMs?: number;
  /**
   * How far back `figures` can look (default: windowMs). Canaries judge a whole step, which can
   * last longer than the window /debug/load and the metrics show.
   */
  retainMs?: number;
  /** Bucket width (default 1 s): the precision of `figures`' span. */
  bucketMs?: number;
  /** Clusters held at most (default 5000). */
  maxClusters?: number;
  /** Of those, clusters `known` says no to, at most (default 100): a proxy sending made-up names cannot crowd out the mesh's. */
  maxUnknownClusters?: number;
  /** Which cluster names the model announces (default: all). */
  known?: (cluster: string) => boolean;
  /** Epoch ms (tests inject a clock). */
  now?: () => number;
}

interface Bucket {
  start: number;
  succeeded: number;
  failed: number;
  issued: number;
  /** Node ids that reported this cluster in this bucket. */
  proxies: Set<string>;
}

interface ClusterState {
  /** Oldest first. */
  buckets: Bucket[];
  known: boolean;
}

interface StreamState {
  proxy: string;
  /** Cluster -> in flight at this stream's latest report of it. */
  inFlight: Map<string, number>;
}

/** Clusters a stream may have requests in flight to (a proxy using more has bigger problems). */
const MAX_IN_FLIGHT_PER_STREAM = 1000;

export const EMPTY_FIGURES: LoadFigures = Object.freeze({ completed: 0, succeeded: 0, failed: 0, issued: 0, inFlight: 0, proxies: 0 });

export class LoadWindow implements LoadQuery {
  readonly windowMs: number;
  readonly retainMs: number;
  readonly bucketMs: number;
  private readonly maxClusters: number;
  private readonly maxUnknown: number;
  private known: (cluster: string) => boolean;
  private readonly now: () => number;
  private readonly clusterStates = new Map<string, ClusterState>();
  private unknownCount = 0;
  private readonly streams = new Map<string, StreamState>();
  private readonly listeners = new Set<(load: ClusterLoad) => void>();
  private lastPrune = 0;
  /** Cluster reports dropped because the cluster limits were reached. */
  dropped = 0;

  constructor(o: LoadWindowOptions = {}) {
    this.windowMs = o.windowMs ?? 60_000;
    this.retainMs = Math.max(this.windowMs, o.retainMs ?? 0);
    this.bucketMs = o.bucketMs ?? 1000;
    if (!(this.bucketMs > 0) || !(this.windowMs >= this.bucketMs)) throw new Error(`load window: bucketMs (${this.bucketMs}) must be > 0 and at most windowMs (${this.windowMs})`);
    this.maxClusters = o.maxClusters ?? 5000;
    this.maxUnknown = o.maxUnknownClusters ?? 100;
    this.known = o.known ?? (() => true);
    this.now = o.now ?? Date.now;
  }

  /** The model changed: which clusters it announces now (only new clusters are classified by it). */
  setKnown(known: (cluster: string) => boolean): void {
    this.known = known;
  }

  /** Called for every cluster report recorded (metrics). */
  onRecord(listener: (load: ClusterLoad) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * A report from `proxy` (node id) on LRS stream `stream`. One proxy may have several streams over
   * time (reconnects): counts are per proxy, in-flight figures per stream.
   */
  record(stream: string, proxy: string, loads: readonly ClusterLoad[]): void {
    const now = this.now();
    this.maybePrune(now);
    const start = Math.floor(now / this.bucketMs) * this.bucketMs;
    let s = this.streams.get(stream);
    if (!s) this.streams.set(stream, (s = { proxy, inFlight: new Map() }));
    for (const load of loads) {
      // Envoy reports every cluster it has, idle ones too: an idle one the model does not know
      // (PassthroughCluster, an inbound cluster) says nothing worth a place.
      if (!load.succeeded && !load.failed && !load.issued && !load.inFlight && !this.clusterStates.has(load.cluster) && !this.known(load.cluster)) continue;
      const c = this.clusterState(load.cluster);
      if (!c) {
        this.dropped++;
        continue;
      }
      // Only non-zero figures are kept, and a bounded number per stream.
      if (load.inFlight <= 0) s.inFlight.delete(load.cluster);
      else if (s.inFlight.has(load.cluster) || s.inFlight.size < MAX_IN_FLIGHT_PER_STREAM) s.inFlight.set(load.cluster, load.inFlight);
      let b = c.buckets[c.buckets.length - 1];
      if (!b || b.start !== start) c.buckets.push((b = { start, succeeded: 0, failed: 0, issued: 0, proxies: new Set() }));
      b.succeeded += load.succeeded;
      b.failed += load.failed;
      b.issued += load.issued;
      b.proxies.add(proxy);
      for (const l of this.listeners) l(load);
    }
  }

  /** The stream ended: its in-flight figures drop now; its counts age out with the window. */
  endStream(stream: string): void {
    this.streams.delete(stream);
  }

  figures(cluster: string, sinceMs: number, untilMs: number): LoadFigures {
    const c = this.clusterStates.get(cluster);
    const inFlight = this.inFlightOf(cluster);
    if (!c) return inFlight ? { ...EMPTY_FIGURES, inFlight } : EMPTY_FIGURES;
    let succeeded = 0;
    let failed = 0;
    let issued = 0;
    const proxies = new Set<string>();
    for (const b of this.bucketsIn(c, sinceMs, untilMs)) {
      succeeded += b.succeeded;
      failed += b.failed;
      issued += b.issued;
      for (const p of b.proxies) proxies.add(p);
    }
    return { completed: succeeded + failed, succeeded, failed, issued, inFlight, proxies: proxies.size };
  }

  /** Node ids that reported the cluster in the span. */
  proxiesOf(cluster: string, sinceMs: number, untilMs: number): Set<string> {
    const out = new Set<string>();
    const c = this.clusterStates.get(cluster);
    if (c) for (const b of this.bucketsIn(c, sinceMs, untilMs)) for (const p of b.proxies) out.add(p);
    return out;
  }

  /** Node ids that reported the cluster within the window. */
  recentProxies(cluster: string): Set<string> {
    const now = this.now();
    return this.proxiesOf(cluster, now - this.windowMs, now);
  }

  /** Figures over the whole window up to now. */
  recent(cluster: string): LoadFigures {
    const now = this.now();
    return this.figures(cluster, now - this.windowMs, now);
  }

  /** Clusters with counts in the window or requests in flight. */
  clusters(): string[] {
    this.maybePrune(this.now(), true);
    const out = new Set(this.clusterStates.keys());
    for (const s of this.streams.values()) for (const [c, n] of s.inFlight) if (n > 0) out.add(c);
    return [...out].sort();
  }

  /** Streams currently reporting. */
  get streamCount(): number {
    return this.streams.size;
  }

  private inFlightOf(cluster: string): number {
    let n = 0;
    for (const s of this.streams.values()) n += s.inFlight.get(cluster) ?? 0;
    return n;
  }

  /** Buckets overlapping [sinceMs, untilMs], none older than what is retained. */
  private *bucketsIn(c: ClusterState, sinceMs: number, untilMs: number): Iterable<Bucket> {
    const oldest = this.now() - this.retainMs;
    for (const b of c.buckets) {
      if (b.start + this.bucketMs <= Math.max(sinceMs, oldest)) continue;
      if (b.start > untilMs) break;
      yield b;
    }
  }

  private clusterState(name: string): ClusterState | undefined {
    let c = this.clusterStates.get(name);
    if (c) return c;
    const known = this.known(name);
    if (this.clusterStates.size >= this.maxClusters || (!known && this.unknownCount >= this.maxUnknown)) {
      // Make room from clusters that aged out before refusing.
      this.maybePrune(this.now(), true);
      if (this.clusterStates.size >= this.maxClusters || (!known && this.unknownCount >= this.maxUnknown)) return undefined;
    }
    this.clusterStates.set(name, (c = { buckets: [], known }));
    if (!known) this.unknownCount++;
    return c;
  }

  /** Drops buckets older than what is retained and clusters left without any (at most once a bucket unless forced). */
  private maybePrune(now: number, force = false): void {
    if (!force && now - this.lastPrune < this.bucketMs) return;
    this.lastPrune = now;
    const oldest = now - this.retainMs;
    for (const [name, c] of this.clusterStates) {
      let i = 0;
      while (i < c.buckets.length && c.buckets[i]!.start + this.bucketMs <= oldest) i++;
      if (i > 0) c.buckets.splice(0, i);
      if (c.buckets.length === 0) {
        this.clusterStates.delete(name);
        if (!c.known) this.unknownCount--;
      }
    }
    // A stream's in-flight figure for a cluster its proxy stopped reporting (grpc-js skips clusters
    // without new calls) stays until the stream ends: it is the latest the proxy said.
  }
}
