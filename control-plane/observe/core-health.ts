// Health checks for the parts every control plane has: the model (snapshot cache) and the xDS
// server. Config sources add their own (see server.ts; Kubernetes clusters, one per cluster).
import type { HealthComponent } from './health.ts';
import type { MeshState } from '../model/compile.ts';
import type { AdsServer } from '../xds/ads-server.ts';
import type { SnapshotCache } from '../xds/snapshot-cache.ts';

export function coreComponents(cache: SnapshotCache, ads: AdsServer, state: () => MeshState | undefined): HealthComponent[] {
  return [
    {
      name: 'model',
      check() {
        const s = state();
        if (!cache.ready || !s) return { ok: false, detail: 'no configuration compiled yet' };
        // Rejected rules are reported, not a failure: their last good versions stay in force.
        return {
          ok: true,
          detail: `generation ${cache.generation}: ${s.model.services.length} services, ${s.accepted.length} rules in force, ${s.rejected.length} rejected, ${s.errors.length} errors, ${cache.rejected.length} generated resources failing Envoy's schema`,
        };
      },
    },
    {
      name: 'xds-server',
      liveness: true,
      check() {
        if (!ads.listening) return { ok: false, detail: 'the ADS gRPC server is not listening' };
        const proxies = [...ads.streams].filter((s) => s.proxy).length;
        return { ok: true, detail: `listening; ${ads.streams.size} streams, ${proxies} identified proxies` };
      },
    },
  ];
}
