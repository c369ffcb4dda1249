// Which service and subset a reported cluster name is, from the model's clusters (not by parsing
// the name: a name the model does not announce is "unknown", whatever it looks like).
import type { UpstreamCluster } from '../model/types.ts';

export type ClusterInfo = Pick<UpstreamCluster, 'name' | 'host' | 'subset' | 'loadReport'>;

/** The model's clusters now (e.g. `() => state().model.clusters`). */
export type ClusterList = () => readonly ClusterInfo[] | undefined;

const indexes = new WeakMap<readonly ClusterInfo[], Map<string, ClusterInfo>>();

/** The clusters by name, built once per list (a model's list is frozen and replaced on change). */
export function clusterIndex(list: readonly ClusterInfo[] | undefined): Map<string, ClusterInfo> {
  if (!list) return new Map();
  let index = indexes.get(list);
  if (!index) indexes.set(list, (index = new Map(list.map((c) => [c.name, c]))));
  return index;
}
