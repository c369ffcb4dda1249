// Per-route-table memo for what a caller gets of one host:port (a gRPC client's listeners and route
// config, a sidecar's virtual host). A rule change usually touches one table, and re-translating the other thousand for every
// proxy group would be most of a change's cost. An entry is reused only when everything the output
// reads is the same: the table object, the caller's part (kind, namespace, labels, IP, the names
// it dials by), what the features read beyond the table (Feature.tableDeps: the rate limits), and
// the cluster objects the routes send to (their load-balancer policy shapes the route).
import type { Model, RouteTable, UpstreamCluster } from '../model/types.ts';
import { FEATURES } from './features.ts';
import type { Proxy } from './proxy.ts';

interface Entry<T> { deps: readonly unknown[]; value: T }

/** Callers with distinct labels each keep an entry; a table keeps this many. */
const ENTRIES_PER_TABLE = 16;

/** The caller-independent context of a table's translation, as values compared by identity. */
export function tableDeps(model: Model, t: RouteTable, clusters: Map<string, UpstreamCluster>): unknown[] {
  const deps: unknown[] = [t];
  for (const f of FEATURES) if (f.tableDeps) deps.push(f.tableDeps(model));
  for (const r of t.routes) if (r.action.kind === 'route') for (const d of r.action.destinations) deps.push(clusters.get(d.cluster));
  return deps;
}

/** The caller's part of the key (its IP too: a rate limit override shares tokens per caller pod). */
export function callerText(proxy: Proxy): string {
  return JSON.stringify([proxy.kind, proxy.namespace, proxy.labels, proxy.ip ?? '']);
}

export class TableMemo<T> {
  private entries = new WeakMap<RouteTable, Map<string, Entry<T>>>();

  get(t: RouteTable, key: string, deps: readonly unknown[], make: () => T): T {
    let perTable = this.entries.get(t);
    if (!perTable) this.entries.set(t, (perTable = new Map()));
    const hit = perTable.get(key);
    if (hit && hit.deps.length === deps.length && hit.deps.every((d, i) => d === deps[i])) return hit.value;
    const value = make();
    perTable.delete(key);
    perTable.set(key, { deps, value });
    if (perTable.size > ENTRIES_PER_TABLE) perTable.delete(perTable.keys().next().value!);
    return value;
  }
}
