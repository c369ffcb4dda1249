// Prometheus series from the load proxies report (LRS), per service and subset, never per proxy:
// the label values are the model's hosts and subset names, and every cluster the model does not
// announce counts under service="unknown", so a proxy cannot grow the series by making up names.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { LoadWindow } from './load-window.ts';
import { clusterIndex, type ClusterList } from './cluster-index.ts';

export const UNKNOWN_SERVICE = 'unknown';

export function registerLoadMetrics(registry: Registry, window: LoadWindow, clusters: ClusterList): void {
  const labelsOf = (cluster: string) => {
    const c = clusterIndex(clusters()).get(cluster);
    return c ? { service: c.host, subset: c.subset ?? '' } : { service: UNKNOWN_SERVICE, subset: '' };
  };
  const requests = new Counter({
    name: 'meshpilot_upstream_requests_total',
    help: 'Requests proxies reported finished (load reporting), by destination service, subset and outcome (success, error)',
    labelNames: ['service', 'subset', 'outcome'],
    registers: [registry],
  });
  window.onRecord((load) => {
    const labels = labelsOf(load.cluster);
    if (load.succeeded) requests.inc({ ...labels, outcome: 'success' }, load.succeeded);
    if (load.failed) requests.inc({ ...labels, outcome: 'error' }, load.failed);
  });
  // Both gauges are computed when scraped, from the window.
  const perSubset = <T>(each: (cluster: string, key: string, acc: T | undefined) => T) => {
    const out = new Map<string, { labels: { service: string; subset: string }; value: T }>();
    for (const cluster of window.clusters()) {
      const labels = labelsOf(cluster);
      const key = `${labels.service}\n${labels.subset}`;
      out.set(key, { labels, value: each(cluster, key, out.get(key)?.value) });
    }
    return out.values();
  };
  new Gauge({
    name: 'meshpilot_upstream_requests_in_flight',
    help: 'Requests in flight at each connected proxy\'s latest load report, summed, by destination service and subset',
    labelNames: ['service', 'subset'],
    registers: [registry],
    collect() {
      this.reset();
      for (const { labels, value } of perSubset<number>((c, _k, acc) => (acc ?? 0) + window.recent(c).inFlight)) this.set(labels, value);
    },
  });
  new Gauge({
    name: 'meshpilot_load_reporting_proxies',
    help: 'Proxies that reported load for the destination service and subset within the load window',
    labelNames: ['service', 'subset'],
    registers: [registry],
    collect() {
      this.reset();
      for (const { labels, value } of perSubset<Set<string>>((c, _k, acc) => {
        const set = acc ?? new Set<string>();
        for (const p of window.recentProxies(c)) set.add(p);
        return set;
      })) this.set(labels, value.size);
    },
  });
}
