// The bodies of GET /debug/proxies and GET /debug/rules as functions, so the dashboard's snapshot
// (dashboard/state.ts) carries exactly what the admin API answers.
import type { MeshState } from '../model/compile.ts';
import { formatIssue } from '../model/compile.ts';
import type { AdsServer } from '../xds/ads-server.ts';
import type { SnapshotCache } from '../xds/snapshot-cache.ts';
import { proxyStatus, summarize, type ProxyStatus } from './proxy-status.ts';
import type { RolloutAdmin } from './rollout-routes.ts';

export type ProxyEntry = ProxyStatus & { identity: string | null };

export interface ProxiesReport {
  generation: number;
  summary: Record<string, number>;
  proxies: ProxyEntry[];
}

/** Connected proxies (those `match` keeps) with their sync state, sorted by id. */
export function proxiesReport(ads: AdsServer, cache: SnapshotCache, match: (p: ProxyStatus) => boolean = () => true): ProxiesReport {
  const proxies = [...ads.streams].flatMap((s) => { const p = proxyStatus(s, cache.generation); return p ? [{ ...p, identity: ads.peerIdentity(s) ?? null }] : []; }).filter(match);
  proxies.sort((a, b) => a.id.localeCompare(b.id) || a.connectedSince.localeCompare(b.connectedSince));
  return { generation: cache.generation, summary: summarize(proxies), proxies };
}

/** Rules in force, rejected (with what stands in), errors, warnings, and the rollouts' state. */
export function rulesReport(s: MeshState, cache: SnapshotCache, rollouts?: Pick<RolloutAdmin, 'canaries' | 'experiments'>) {
  return {
    inForce: s.accepted.map((o) => ({ key: o.key, source: `${o.source.file}:${o.source.line}` })),
    // Every rule whose newest version is not in force, whatever the reason, with what stands in.
    rejected: s.rejections.map((r) => ({ rule: r.rule, inForce: r.inForce ?? 'nothing', errors: r.errors.map(formatIssue) })),
    errors: s.errors.map(formatIssue),
    warnings: s.warnings.map(formatIssue),
    // The DestinationRule in force for each service (a wildcard host can cover many).
    destinationRules: Object.fromEntries(s.model.clusters.flatMap((c) => (c.subset === undefined && c.origin ? [[c.host, c.origin.key]] : []))),
    invalidGeneratedResources: cache.rejected,
    // Canaries and fault experiments with their state: where the served weights and faults come from.
    ...(rollouts ? { canaries: rollouts.canaries(), experiments: rollouts.experiments() } : {}),
  };
}
