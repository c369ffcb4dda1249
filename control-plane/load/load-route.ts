// GET /debug/load: what proxies reported over the window, per service and subset. Clusters the
// model marks for load reporting are listed even before any report (all zeros), so an operator can
// tell "nobody reports" from "nobody calls"; reported clusters the model does not announce (an old
// model's, or made up) are listed by name under unknownClusters.
import type express from 'express';
import type { LoadWindow } from './load-window.ts';
import { clusterIndex, type ClusterInfo, type ClusterList } from './cluster-index.ts';

export interface SubsetLoad {
  subset: string | null;
  cluster: string;
  /** Completed requests per second, over the whole window. */
  requestsPerSecond: number;
  /** Percent of completed requests that succeeded; null with none completed. */
  successRate: number | null;
  inFlight: number;
  proxies: number;
  completed: number;
  failed: number;
}

export interface LoadReport {
  windowSeconds: number;
  services: Array<{ host: string; subsets: SubsetLoad[] }>;
  unknownClusters: string[];
}

const round = (n: number, digits: number) => Math.round(n * 10 ** digits) / 10 ** digits;

export function loadReport(window: LoadWindow, clusters: readonly ClusterInfo[] | undefined): LoadReport {
  const index = clusterIndex(clusters);
  const windowSeconds = window.windowMs / 1000;
  const unknownClusters: string[] = [];
  const listed = new Map<string, ClusterInfo>();
  for (const c of clusters ?? []) if (c.loadReport) listed.set(c.name, c);
  for (const name of window.clusters()) {
    const c = index.get(name);
    if (c) listed.set(name, c);
    else unknownClusters.push(name);
  }
  const byHost = new Map<string, SubsetLoad[]>();
  for (const c of listed.values()) {
    const f = window.recent(c.name);
    const entry: SubsetLoad = {
      subset: c.subset ?? null,
      cluster: c.name,
      requestsPerSecond: round(f.completed / windowSeconds, 3),
      successRate: f.completed ? round((f.succeeded / f.completed) * 100, 2) : null,
      inFlight: f.inFlight,
      proxies: f.proxies,
      completed: f.completed,
      failed: f.failed,
    };
    let subsets = byHost.get(c.host);
    if (!subsets) byHost.set(c.host, (subsets = []));
    subsets.push(entry);
  }
  const services = [...byHost]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([host, subsets]) => ({ host, subsets: subsets.sort((a, b) => (a.subset ?? '').localeCompare(b.subset ?? '') || a.cluster.localeCompare(b.cluster)) }));
  return { windowSeconds, services, unknownClusters };
}

/** Adds GET /debug/load to the admin app. */
export function addLoadRoute(app: express.Express, window: LoadWindow, clusters: ClusterList): void {
  app.get('/debug/load', (_req, res) => {
    res.json(loadReport(window, clusters()));
  });
}
