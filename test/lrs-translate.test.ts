// A cluster the model marks for load reporting (`loadReport: true`, set by the runtime overlay for
// canaries and fault experiments) reaches proxyless gRPC clients with `lrs_server: {self: {}}`, and
// Envoy sidecars without it (Envoy reports through its bootstrap's load_stats_config). The flag is
// on the cluster object, so the snapshot cache's incremental path (translate/changes.ts, memo by
// object) must see it: the flagged model's snapshot equals a fresh cache's, and the flag going away
// takes lrs_server with it. Every resource passes Envoy's schema check.
import { describe, expect, it } from 'vitest';
import { loadDirectory } from '../control-plane/config/load.ts';
import { checkResource } from '../control-plane/envoy/check.ts';
import { compile } from '../control-plane/model/compile.ts';
import type { Model } from '../control-plane/model/types.ts';
import { silentLogger } from '../control-plane/log.ts';
import { proxyFromNode } from '../control-plane/translate/proxy.ts';
import { CLUSTER, TYPE_ORDER } from '../control-plane/translate/type-urls.ts';
import { SnapshotCache } from '../control-plane/xds/snapshot-cache.ts';

const V2 = 'outbound|9080|v2|reviews.default.svc.cluster.local';
const grpcClient = proxyFromNode({ id: 'grpc-a', metadata: { GENERATOR: 'grpc', NAMESPACE: 'default', LABELS: { app: 'productpage', version: 'v1' } } });
const sidecar = proxyFromNode({ id: 'sidecar~10.9.9.9~pp-1.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default', LABELS: { app: 'productpage' } } });

const base = compile(loadDirectory('examples/bookinfo')).model;
/** The model with these clusters flagged (new cluster objects, as the runtime overlay makes them). */
const flag = (m: Model, names: string[]): Model => ({ ...m, clusters: m.clusters.map((c) => (names.includes(c.name) ? Object.freeze({ ...c, loadReport: true as const }) : c)) });
const unflag = (m: Model): Model => ({ ...m, clusters: m.clusters.map((c) => (c.loadReport ? Object.freeze({ ...c, loadReport: undefined }) : c)) });

const contents = (c: SnapshotCache, p: typeof grpcClient) => {
  const snap = c.snapshotFor(p);
  return TYPE_ORDER.map((t) => [...snap[t]].map(([name, r]) => `${name}=${r.hash}`));
};

describe('lrs_server on clusters with loadReport', () => {
  it('is set for gRPC clients only, passes the schema check, and follows the flag through the incremental cache', () => {
    expect(base.clusters.some((c) => c.name === V2)).toBe(true);
    const cache = new SnapshotCache(silentLogger);
    cache.setModel(base);
    const before = { grpc: cache.snapshotFor(grpcClient), envoy: cache.snapshotFor(sidecar) };
    expect(before.grpc[CLUSTER].get(V2)!.json).not.toHaveProperty('lrs_server');

    const flagged = flag(base, [V2]);
    cache.setModel(flagged);
    const after = { grpc: cache.snapshotFor(grpcClient), envoy: cache.snapshotFor(sidecar) };
    const v2 = after.grpc[CLUSTER].get(V2)!.json;
    expect(v2.lrs_server).toEqual({ self: {} });
    expect(checkResource(v2)).toEqual([]);
    expect(cache.rejected).toEqual([]);
    // Only that cluster changed for the gRPC client; nothing for the sidecar.
    for (const [name, r] of after.grpc[CLUSTER]) if (name !== V2) expect(r.hash).toBe(before.grpc[CLUSTER].get(name)!.hash);
    expect(after.grpc[CLUSTER].get(V2)!.hash).not.toBe(before.grpc[CLUSTER].get(V2)!.hash);
    expect(after.envoy[CLUSTER].get(V2)!.json).not.toHaveProperty('lrs_server');
    expect(after.envoy[CLUSTER].get(V2)!.hash).toBe(before.envoy[CLUSTER].get(V2)!.hash);
    // What the incremental cache holds is what a cache seeing only this model builds.
    const fresh = new SnapshotCache(silentLogger);
    fresh.setModel(structuredClone(flagged));
    expect(contents(cache, grpcClient)).toEqual(contents(fresh, grpcClient));
    expect(contents(cache, sidecar)).toEqual(contents(fresh, sidecar));

    // The canary ends: the flag goes, and lrs_server with it.
    cache.setModel(unflag(flagged));
    expect(cache.snapshotFor(grpcClient)[CLUSTER].get(V2)!.json).not.toHaveProperty('lrs_server');
    expect(cache.snapshotFor(grpcClient)[CLUSTER].get(V2)!.hash).toBe(before.grpc[CLUSTER].get(V2)!.hash);
  });
});
