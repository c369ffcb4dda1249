// One snapshot of what the dashboard shows (GET /dashboard/api/state, and each event of
// /dashboard/events): the mesh graph, plus the admin API's own answers for proxies, rules, rollouts
// and load, made by the same functions, so the page and the JSON endpoints never disagree.
import type { MeshState } from '../model/compile.ts';
import type { AdsServer } from '../xds/ads-server.ts';
import type { SnapshotCache } from '../xds/snapshot-cache.ts';
import type { LoadWindow } from '../load/load-window.ts';
import { loadReport, type LoadReport } from '../load/load-route.ts';
import { proxiesReport, rulesReport, type ProxiesReport } from '../observe/reports.ts';
import type { RolloutAdmin } from '../observe/rollout-routes.ts';
import { meshGraph, type Graph } from './graph.ts';

export interface DashboardDeps {
  /** The served state (canary weights and experiment faults applied), as the admin API sees it. */
  state: () => MeshState;
  ads: AdsServer;
  cache: SnapshotCache;
  load?: LoadWindow;
  rollouts?: Pick<RolloutAdmin, 'canaries' | 'experiments'>;
  /** `serve --dashboard-actions`: the page offers the canary commands. */
  actions?: boolean;
}

export interface DashboardState {
  generation: number;
  actions: boolean;
  graph: Graph;
  proxies: ProxiesReport;
  rules: ReturnType<typeof rulesReport>;
  canaries: unknown[];
  experiments: unknown[];
  load: LoadReport | null;
}

export function dashboardState({ state, ads, cache, load, rollouts, actions }: DashboardDeps): DashboardState {
  const s = state();
  const proxies = proxiesReport(ads, cache);
  const report = load ? loadReport(load, s.model.clusters) : null;
  const reporters = new Map<string, string[]>();
  if (load && report) for (const svc of report.services) for (const sub of svc.subsets) reporters.set(sub.cluster, [...load.recentProxies(sub.cluster)].sort());
  return {
    generation: cache.generation,
    actions: Boolean(actions),
    graph: meshGraph({ model: s.model, accepted: s.accepted, load: report, proxies: proxies.proxies, reporters }),
    proxies,
    rules: rulesReport(s, cache, rollouts),
    canaries: rollouts ? rollouts.canaries() : [],
    experiments: rollouts ? rollouts.experiments() : [],
    load: report,
  };
}
