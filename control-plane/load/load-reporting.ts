// Load reporting as the control plane runs it: the window, the LRS service on the xDS port (and on
// the plaintext listener, where proxyless gRPC clients of a TLS control plane connect), the
// Prometheus series. server.ts calls this once, before the xDS server listens. `modelChanges` tells
// when the served model changed, so Envoy proxies are asked for the new set of clusters to report.
import type { Registry } from 'prom-client';
import type { Logger } from '../log.ts';
import type { AdsServer } from '../xds/ads-server.ts';
import { clusterIndex, type ClusterList } from './cluster-index.ts';
import { registerLoadMetrics } from './load-metrics.ts';
import { LoadWindow } from './load-window.ts';
import { lrsHandlers, lrsServiceDefinition } from './lrs-service.ts';
import { reportedClusters, type ModelChanges } from './reported-clusters.ts';

export interface LoadReportingOptions {
  /** How often proxies report (default 10 s). */
  intervalMs?: number;
  /** The window /debug/load and the metrics show (default 60 s). */
  windowMs?: number;
  /** How far back canaries can look (default 15 min; at least the window). */
  retainMs?: number;
}

export function startLoadReporting(ads: AdsServer, registry: Registry, clusters: ClusterList, modelChanges: ModelChanges, log: Logger, o: LoadReportingOptions = {}): LoadWindow {
  const load = new LoadWindow({ ...(o.windowMs ? { windowMs: o.windowMs } : {}), retainMs: o.retainMs ?? 15 * 60_000, known: (name) => clusterIndex(clusters()).has(name) });
  ads.addService(lrsServiceDefinition(), lrsHandlers({ load, log, reported: reportedClusters(clusters, modelChanges), admit: (call, node) => ads.nodeDenial(call, node), ...(o.intervalMs ? { intervalMs: o.intervalMs } : {}) }), { plaintext: true });
  registerLoadMetrics(registry, load, clusters);
  return load;
}
