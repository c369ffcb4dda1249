// envoy.service.load_stats.v3.LoadReportingService on the xDS port: proxies stream their per-cluster
// request counts here (clusters sent with `lrs_server: {self: {}}`, or Envoy's load_stats_config),
// and each report goes into the LoadWindow. The first request names the node, and the answer says
// what to report every `intervalMs`. A proxyless gRPC client is asked for every cluster
// (`send_all_clusters`: grpc-js-xds 1.14.1 never reports the first cluster of an explicit list; it
// only has `lrs_server` on the clusters meshpilot wants anyway). Envoy would report every cluster it
// has, so it gets the explicit list of `reported` clusters, and a new answer on the open stream
// whenever that list changes (Envoy goes by the newest). Reports are untrusted input: sizes are
// capped, odd values are read as 0, and nothing a proxy sends can throw out of a handler.
import * as grpc from '@grpc/grpc-js';
import { envoyService } from '../xds/envoy-service.ts';
import type { Logger } from '../log.ts';
import { proxyFromRequest, type RequestNode } from '../xds/stream-common.ts';
import type { ClusterLoad, LoadWindow } from './load-window.ts';
import type { ReportedClusters } from './reported-clusters.ts';

/** Clusters read from one report; the rest are ignored (a mesh proxy reports far fewer). */
export const MAX_CLUSTERS_PER_REPORT = 1000;
/** Localities read per cluster. */
const MAX_LOCALITIES = 100;
/** Longest node id or cluster name accepted (Istio's names are well under this). */
export const MAX_NAME_LENGTH = 512;
/** A count above this in one report is taken as this (no proxy finishes a billion calls in an interval). */
const MAX_COUNT = 1e9;

export interface LrsOptions {
  load: LoadWindow;
  /** How often proxies report (default 10 s). */
  intervalMs?: number;
  log: Logger;
  /** LRS streams served at once (default 10000); more are refused with RESOURCE_EXHAUSTED. */
  maxStreams?: number;
  /** The clusters Envoy proxies are asked to report, and when that list changes. */
  reported: ReportedClusters;
  /**
   * Why this call's node may not report, or undefined (the xDS server's identity rule: with
   * --xds-require-identity a client certificate is needed, and the node must be the workload it
   * proves), so no one can feed a canary made-up figures.
   */
  admit?: (call: grpc.ServerDuplexStream<LoadStatsRequest, unknown>, node: RequestNode) => string | undefined;
}

/** The request as proto-loader gives it (keepCase, longs as strings); anything may be missing. */
interface LoadStatsRequest {
  node?: (Omit<RequestNode, 'id'> & { id?: unknown }) | null;
  cluster_stats?: unknown;
}

let definition: grpc.ServiceDefinition | undefined;

export function lrsServiceDefinition(): grpc.ServiceDefinition {
  if (definition) return definition;
  definition = envoyService('envoy/service/load_stats/v3/lrs.proto', 'envoy.service.load_stats.v3.LoadReportingService');
  return definition;
}

/** A non-negative integer count from a uint64 (string, number or Long-like); anything else is 0. */
function count(v: unknown): number {
  const n = typeof v === 'string' || typeof v === 'number' ? Number(v) : 0;
  return Number.isFinite(n) && n > 0 ? Math.min(Math.floor(n), MAX_COUNT) : 0;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/** The clusters of one report, summed over localities; entries without a usable name are skipped. */
export function readClusterStats(raw: unknown): { loads: ClusterLoad[]; skipped: number } {
  const loads: ClusterLoad[] = [];
  let skipped = 0;
  if (!Array.isArray(raw)) return { loads, skipped };
  const byName = new Map<string, ClusterLoad>();
  raw.forEach((cs: unknown, i) => {
    const name = isObject(cs) ? cs.cluster_name : undefined;
    if (i >= MAX_CLUSTERS_PER_REPORT || typeof name !== 'string' || name === '' || name.length > MAX_NAME_LENGTH) {
      skipped++;
      return;
    }
    let load = byName.get(name);
    if (!load) byName.set(name, (load = { cluster: name, succeeded: 0, failed: 0, issued: 0, inFlight: 0 }));
    const localities = Array.isArray((cs as Record<string, unknown>).upstream_locality_stats) ? ((cs as Record<string, unknown>).upstream_locality_stats as unknown[]) : [];
    for (const l of localities.slice(0, MAX_LOCALITIES)) {
      if (!isObject(l)) continue;
      load.succeeded += count(l.total_successful_requests);
      load.failed += count(l.total_error_requests);
      load.issued += count(l.total_issued_requests);
      load.inFlight += count(l.total_requests_in_progress);
    }
  });
  loads.push(...byName.values());
  return { loads, skipped };
}

function duration(ms: number): { seconds: string; nanos: number } {
  return { seconds: String(Math.floor(ms / 1000)), nanos: Math.round(ms % 1000) * 1e6 };
}

export function lrsHandlers(o: LrsOptions): grpc.UntypedServiceImplementation {
  const intervalMs = o.intervalMs ?? 10_000;
  const maxStreams = o.maxStreams ?? 10_000;
  let streams = 0;
  let seq = 0;
  /** Sends Envoy the list now and again on each change of it; returns the unsubscribe. */
  const askEnvoy = (call: grpc.ServerDuplexStream<LoadStatsRequest, unknown>): (() => void) => {
    // An empty list is an answer too: Envoy then reports no cluster.
    const send = () => call.write({ clusters: o.reported.names(), load_reporting_interval: duration(intervalMs) });
    send();
    return o.reported.onChange(() => {
      // Called from the model change: a failed write costs this stream, never the caller.
      try {
        send();
      } catch (err) {
        o.log.warn({ err }, 'could not send the clusters to report to a load reporting stream');
        call.emit('error', { code: grpc.status.INTERNAL, details: 'internal error' });
      }
    });
  };
  return {
    StreamLoadStats: (call: grpc.ServerDuplexStream<LoadStatsRequest, unknown>) => {
      if (streams >= maxStreams) {
        call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: `meshpilot serves at most ${maxStreams} load reporting streams at once` });
        return;
      }
      streams++;
      const stream = `lrs-${++seq}`;
      let proxy: string | undefined;
      let warned = false;
      let done = false;
      let unsubscribe: (() => void) | undefined;
      const finish = () => {
        if (done) return;
        done = true;
        streams--;
        unsubscribe?.();
        o.load.endStream(stream);
        if (proxy) o.log.debug({ proxy, stream }, 'load reporting stream ended');
      };
      call.on('data', (req: LoadStatsRequest) => {
        if (done) return;
        try {
          if (proxy === undefined) {
            const id = isObject(req.node) ? req.node.id : undefined;
            if (typeof id !== 'string' || id === '' || id.length > MAX_NAME_LENGTH) {
              finish();
              call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: `the first LoadStatsRequest must name the node (node.id, 1-${MAX_NAME_LENGTH} characters)` });
              return;
            }
            const denied = o.admit?.(call, { ...req.node, id } as RequestNode);
            if (denied) {
              finish();
              o.log.warn({ node: id, reason: denied }, 'load reporting stream refused');
              call.emit('error', { code: grpc.status.PERMISSION_DENIED, details: denied });
              return;
            }
            proxy = id;
            const kind = proxyFromRequest({ ...req.node, id } as RequestNode).kind;
            o.log.debug({ proxy, stream, kind }, 'load reporting stream started');
            if (kind === 'envoy') unsubscribe = askEnvoy(call);
            else call.write({ send_all_clusters: true, load_reporting_interval: duration(intervalMs) });
          }
          const { loads, skipped } = readClusterStats(req.cluster_stats);
          if (skipped && !warned) {
            warned = true;
            o.log.warn({ proxy, skipped }, `load report entries ignored (no cluster_name, a name over ${MAX_NAME_LENGTH} characters, or over ${MAX_CLUSTERS_PER_REPORT} clusters); said once per stream`);
          }
          if (loads.length) o.load.record(stream, proxy, loads);
        } catch (err) {
          // A bug here must cost one stream, never the server.
          o.log.error({ err, proxy }, 'load report failed');
          finish();
          call.emit('error', { code: grpc.status.INTERNAL, details: 'internal error' });
        }
      });
      call.on('end', () => {
        finish();
        call.end();
      });
      call.on('error', finish);
      call.on('cancelled', finish);
      call.on('close', finish);
    },
  };
}
