// The translator's memory: what translate() keeps between calls so that an edit costs in
// proportion to what it touched. Every entry is keyed by frozen model objects (and the caller's
// part), so a hit is always what a fresh translation would give: translate() stays a pure function
// of (model, proxy), and this is only its cache. One memo per owner (the snapshot cache keeps one for
// its lifetime; a CLI call or an explain request gets its own), so two control planes in one process
// share nothing. A translate() without a memo starts from an empty one.
// Not here: six WeakMaps that remember a derived fact of one frozen model object (fault.ts,
// local-rate-limit.ts, changes.ts, locality-priority.ts, endpoints.ts). They are lazily computed properties of
// that object: never stale, shared harmlessly, and gone with it.
import type { Json } from '../json.ts';
import type { Model, RouteTable, UpstreamCluster } from '../model/types.ts';
import { TableMemo } from './table-memo.ts';

export class TranslateMemo {
  /** The model's clusters by name, once per model. */
  readonly clusterMaps = new WeakMap<Model, Map<string, UpstreamCluster>>();
  /** Outbound Cluster resources per cluster object and client kind. */
  readonly clusters = { envoy: new WeakMap<UpstreamCluster, Json>(), grpc: new WeakMap<UpstreamCluster, Json>() };
  /** Gateways' form of clusters whose DestinationRule names a credentialName (clusters.ts outboundClusterFor). */
  readonly routerClusters = new WeakMap<UpstreamCluster, Json>();
  /** ClusterLoadAssignments per cluster object: the caller-independent one. */
  readonly endpoints = new WeakMap<UpstreamCluster, Json>();
  /** ...and per caller view, by only what the view depends on (locality-priority.ts callerKey). */
  readonly endpointsPerCaller = new WeakMap<UpstreamCluster, Map<string, Json>>();
  /** A gRPC client's api_listeners per route table. */
  readonly grpcListeners = new TableMemo<Json[]>();
  /** A gRPC client's route configuration per route table. */
  readonly grpcRoutes = new TableMemo<Json>();
  /** A sidecar's virtual host per route table. */
  readonly sidecarHosts = new TableMemo<Json>();
  /** The names a gRPC client in a namespace dials each table by, per list of tables. */
  readonly grpcNames = new WeakMap<readonly RouteTable[], Map<string, Map<RouteTable, string[]>>>();
  /** The same by the tables' hosts and ports (unchanged by most edits), for the last few lists. */
  readonly recentGrpcNames = new Map<string, Map<string, string[]>>();
}
