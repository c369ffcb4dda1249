// Structural sharing between model generations: a service, cluster or route table that did not
// change keeps the very object of the previous model. The translator memoizes per object, so an
// edit to one service re-translates and re-encodes that service's resources only, and an endpoint
// change produces new endpoint resources while every cluster resource stays the same object.
import { sameItems } from './compare.ts';
import type { Model } from './types.ts';

// The JSON of objects kept from the previous generation is remembered, so each change
// stringifies only the new generation's objects.
const jsonText = new WeakMap<object, string>();
function jsonOf(o: object): string {
  let t = jsonText.get(o);
  if (t === undefined) {
    t = JSON.stringify(o);
    jsonText.set(o, t);
  }
  return t;
}

function reuse<T extends object>(next: readonly T[], prev: readonly T[] | undefined, key: (x: T) => string): T[] {
  if (!prev) return [...next];
  // Usually the same keys in the same order: the previous object at the same position is the one
  // to compare with, and the index by key is made only when that fails.
  let before: Map<string, T> | undefined;
  return next.map((x, i) => {
    // The build already keeps most unchanged parts as the same objects: no JSON for those.
    if (prev[i] === x) return x;
    const k = key(x);
    const old = prev[i] !== undefined && key(prev[i]) === k ? prev[i] : (before ??= new Map(prev.map((p) => [key(p), p]))).get(k);
    return old && jsonOf(old) === jsonOf(x) ? old : x;
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

/** After reuseUnchanged: whether the two models give every proxy the same config. */
export function sameForProxies(a: Model, b: Model): boolean {
  return (
    sameItems(a.services, b.services) &&
    sameItems(a.clusters, b.clusters) &&
    sameItems(a.routeTables, b.routeTables) &&
    JSON.stringify(a.l4Tables) === JSON.stringify(b.l4Tables) &&
    JSON.stringify([a.rateLimits, a.authorizationPolicies, a.peerAuthentications, a.requestAuthentications, a.mesh]) === JSON.stringify([b.rateLimits, b.authorizationPolicies, b.peerAuthentications, b.requestAuthentications, b.mesh])
  );
}
