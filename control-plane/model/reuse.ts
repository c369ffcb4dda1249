// Structural sharing between model generations: a service, cluster or route table that did not
// change keeps the very object of the previous model. The translator memoizes per object, so an
// edit to one service re-translates and re-encodes that service's resources only, and an endpoint
// change produces new endpoint resources while every cluster resource stays the same object.
import type { Model } from './types.ts';

function reuse<T extends object>(next: readonly T[], prev: readonly T[] | undefined, key: (x: T) => string): T[] {
  if (!prev) return [...next];
  const before = new Map(prev.map((x) => [key(x), x]));
  return next.map((x) => {
    const old = before.get(key(x));
    return old && JSON.stringify(old) === JSON.stringify(x) ? old : x;
  });
}

export function reuseUnchanged(next: Model, prev: Model | undefined): Model {
  if (!prev) return next;
  return Object.freeze({
    ...next,
    services: Object.freeze(reuse(next.services, prev.services, (s) => s.host)),
    clusters: Object.freeze(reuse(next.clusters, prev.clusters, (c) => c.name)),
    routeTables: Object.freeze(reuse(next.routeTables, prev.routeTables, (t) => `${t.host}:${t.port}`)),
  }) as Model;
}
