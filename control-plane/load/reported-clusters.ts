// The clusters Envoy proxies are asked to report load for: those of the served model with
// `loadReport` (the ones a Canary or fault experiment judges; model/runtime-overlay.ts sets it).
// The LRS service reads the list when a stream starts and hears when it changes, to send Envoy the
// new list on the open stream.
import type { ClusterList } from './cluster-index.ts';

/** Something that calls `listener` after each change of the model (e.g. SnapshotCache.onChange). */
export type ModelChanges = (listener: () => void) => () => void;

export interface ReportedClusters {
  /** Sorted names of the clusters to report. */
  names(): readonly string[];
  /** `listener` runs when names() changed; returns the unsubscribe. */
  onChange(listener: () => void): () => void;
}

const namesOf = new WeakMap<object, readonly string[]>();

export function reportedClusters(clusters: ClusterList, modelChanges: ModelChanges): ReportedClusters {
  const names = (): readonly string[] => {
    const list = clusters();
    if (!list) return [];
    let out = namesOf.get(list);
    if (!out) namesOf.set(list, (out = Object.freeze(list.filter((c) => c.loadReport).map((c) => c.name).sort())));
    return out;
  };
  const listeners = new Set<() => void>();
  let last = '';
  // Most model changes (endpoints, other rules) leave the list as it was: only a real change is told.
  // With no Envoy stream listening (proxyless clients only) nothing is computed on a change.
  modelChanges(() => {
    if (listeners.size === 0) return;
    const now = names().join('\n');
    if (now === last) return;
    last = now;
    for (const l of [...listeners]) l();
  });
  return {
    names,
    onChange(listener) {
      // The first listener compares from the list as it is now (what its stream was just sent).
      if (listeners.size === 0) last = names().join('\n');
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
