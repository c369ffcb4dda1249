// Admin API (JSON over HTTP): health, readiness, connected proxies, rule status and explain.
import express from 'express';
import type { ComponentHealth, HealthProvider } from './health-provider.ts';
import { explainHandler } from './explain/admin-route.ts';
import type { MeshState } from './pipeline.ts';
import { formatIssue } from './pipeline.ts';
import type { AdsServer } from './xds/ads-server.ts';
import type { SnapshotCache } from './xds/snapshot-cache.ts';

interface AdminDeps { state: () => MeshState; ads: AdsServer; cache: SnapshotCache; health?: readonly HealthProvider[] }

export function createAdminApp({ state, ads, cache, health = [] }: AdminDeps): express.Express {
  const app = express();
  const extra = (): Record<string, ComponentHealth> => Object.fromEntries(health.flatMap((p) => p.health()).map((c) => [c.name, c]));
  // Liveness: a remote cluster being down is reported ("degraded") but is no reason to restart us.
  app.get('/healthz', (_req, res) => {
    const components = extra();
    const degraded = Object.values(components).some((c) => !c.healthy);
    res.json({ status: degraded ? 'degraded' : 'ok', ...(health.length ? { components } : {}) });
  });
  app.get('/readyz', (_req, res) => {
    const components: Record<string, { ready: boolean; detail: string }> = {
      config: { ready: cache.ready, detail: cache.ready ? `${state().accepted.length} rules in force, ${state().errors.length} errors` : 'not loaded' },
      xds: { ready: true, detail: `${ads.streams.size} streams` },
      ...extra(),
    };
    const ready = Object.values(components).every((c) => c.ready);
    res.status(ready ? 200 : 503).json({ ready, components });
  });
  app.get('/debug/proxies', (_req, res) => {
    res.json(
      [...ads.streams]
        .filter((s) => s.proxy)
        .map((s) => ({ id: s.proxy!.id, kind: s.proxy!.kind, protocol: s.protocol, namespace: s.proxy!.namespace, labels: s.proxy!.labels, locality: s.proxy!.locality, ...(s.proxy!.network ? { network: s.proxy!.network } : {}), connectedAt: s.connectedAt, types: s.status() })),
    );
  });
  app.get('/debug/rules', (_req, res) => {
    const s = state();
    res.json({
      inForce: s.accepted.map((o) => ({ key: o.key, source: `${o.source.file}:${o.source.line}` })),
      rejected: s.rejected,
      errors: s.errors.map(formatIssue),
      warnings: s.warnings.map(formatIssue),
      invalidGeneratedResources: cache.rejected,
    });
  });
  app.post('/debug/explain', express.json({ limit: '64kb' }), explainHandler(state, () => [...ads.streams].flatMap((s) => (s.proxy ? [s.proxy] : []))));
  return app;
}
