// Which rules a generated resource came from, so a resource that fails Envoy's check is reported
// against the rules a person can fix, not only by its Envoy name.
import type { Model } from './types.ts';

const CLUSTER = /^outbound\|(\d+)\|[^|]*\|(.+)$/;

export function rulesBehind(model: Model, resourceName: string): string[] {
  const keys = new Set<string>();
  const fromTables = (match: (host: string, port: number) => boolean) => {
    for (const t of model.routeTables) if (match(t.host, t.port)) for (const r of t.routes) {
      keys.add(r.origin.key);
      if (r.delegation) keys.add(r.delegation.key);
    }
  };
  const cluster = model.clusters.find((c) => c.name === resourceName);
  if (cluster) {
    if (cluster.origin) keys.add(cluster.origin.key);
    const svc = model.services.find((s) => s.host === cluster.host);
    if (svc) keys.add(svc.origin.key);
  }
  const m = CLUSTER.exec(resourceName);
  if (m) fromTables((h, p) => h === m[2] && p === Number(m[1]));
  else if (/^\d+$/.test(resourceName)) fromTables((_h, p) => p === Number(resourceName));
  else if (/^0\.0\.0\.0_\d+$/.test(resourceName)) fromTables((_h, p) => `0.0.0.0_${p}` === resourceName);
  else {
    const i = resourceName.lastIndexOf(':');
    if (i > 0) {
      const [name, port] = [resourceName.slice(0, i), Number(resourceName.slice(i + 1))];
      fromTables((h, p) => p === port && (h === name || h.startsWith(`${name}.`)));
    }
  }
  return [...keys].sort();
}
