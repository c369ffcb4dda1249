// The admin API of a test control plane on 127.0.0.1:0, and small readers for its answers.
import type { Server } from 'node:http';
import { createAdminApp } from '../../control-plane/observe/admin.ts';
import type { ControlPlane } from '../../control-plane/server.ts';
import type { Teardown } from './test-mesh.ts';

/** Serves cp's admin API (with its health checks and metrics); stopped by the teardown. */
export async function startAdmin(teardown: Teardown, cp: ControlPlane): Promise<string> {
  const app = createAdminApp({ state: cp.state, ads: cp.ads, cache: cp.cache, health: cp.health, metrics: cp.metrics });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
  teardown.add(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const addr = server.address();
  if (!addr || typeof addr !== 'object') throw new Error('admin server has no address');
  return `http://127.0.0.1:${addr.port}`;
}

export async function getJson<T = any>(url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as T };
}

/**
 * The value of one series in Prometheus text format: `name` with exactly these labels (order
 * free); 0 when the series is absent, so deltas work from the first scrape.
 */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(',');
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = (m[2] ?? '').split(',').filter(Boolean).sort().join(',');
    if (got === want) return Number(m[3]);
  }
  return 0;
}

export async function scrape(admin: string): Promise<string> {
  const res = await fetch(`${admin}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return res.text();
}
