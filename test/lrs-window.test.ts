// The load window (control-plane/load/load-window.ts) on an injected clock: buckets, the sliding
// window, ageing, several proxies and streams, unknown clusters and the memory bounds. Also the
// /debug/load report built from it (load-route.ts).
import { describe, expect, it } from 'vitest';
import { LoadWindow, type ClusterLoad } from '../control-plane/load/load-window.ts';
import { loadReport } from '../control-plane/load/load-route.ts';

const A = 'outbound|9080|v1|reviews.default.svc.cluster.local';
const B = 'outbound|9080|v2|reviews.default.svc.cluster.local';

function clock(start = 1_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

const load = (cluster: string, succeeded: number, failed = 0, inFlight = 0, issued = succeeded + failed): ClusterLoad => ({ cluster, succeeded, failed, issued, inFlight });

describe('LoadWindow', () => {
  it('sums reports of several proxies per cluster, keeps clusters apart, counts distinct proxies', () => {
    const c = clock();
    const w = new LoadWindow({ now: c.now });
    w.record('s1', 'proxy-a', [load(A, 10, 2, 3), load(B, 5)]);
    w.record('s2', 'proxy-b', [load(A, 7, 1, 1)]);
    c.t += 2500;
    w.record('s1', 'proxy-a', [load(A, 3, 0, 2)]);
    expect(w.figures(A, c.t - 10_000, c.t)).toEqual({ completed: 23, succeeded: 20, failed: 3, issued: 23, inFlight: 3, proxies: 2 });
    expect(w.figures(B, c.t - 10_000, c.t)).toEqual({ completed: 5, succeeded: 5, failed: 0, issued: 5, inFlight: 0, proxies: 1 });
    expect(w.figures('nobody', c.t - 10_000, c.t)).toEqual({ completed: 0, succeeded: 0, failed: 0, issued: 0, inFlight: 0, proxies: 0 });
  });

  it('answers for a span, to the bucket', () => {
    const c = clock(0);
    const w = new LoadWindow({ now: c.now, bucketMs: 1000 });
    w.record('s1', 'p', [load(A, 1)]); // bucket [0, 1000)
    c.t = 1500;
    w.record('s1', 'p', [load(A, 10)]); // bucket [1000, 2000)
    c.t = 5200;
    w.record('s2', 'q', [load(A, 100)]); // bucket [5000, 6000)
    expect(w.figures(A, 0, 5200).succeeded).toBe(111);
    expect(w.figures(A, 1000, 5200).succeeded).toBe(110);
    // A span that starts inside a bucket takes the whole bucket.
    expect(w.figures(A, 1999, 5200).succeeded).toBe(110);
    expect(w.figures(A, 2000, 5200)).toMatchObject({ succeeded: 100, proxies: 1 });
    expect(w.figures(A, 0, 999)).toMatchObject({ succeeded: 1, proxies: 1 });
    expect(w.figures(A, 2000, 4999).succeeded).toBe(0);
  });

  it('slides: counts older than the window age out, even when asked for', () => {
    const c = clock(0);
    const w = new LoadWindow({ now: c.now, windowMs: 10_000 });
    w.record('s1', 'p', [load(A, 5)]);
    c.t = 6000;
    w.record('s1', 'p', [load(A, 7)]);
    c.t = 11_000; // the first bucket, [0, 1000), has just left the window
    expect(w.figures(A, 0, c.t).succeeded).toBe(7);
    expect(w.recent(A).succeeded).toBe(7);
    c.t = 17_000;
    expect(w.figures(A, 0, c.t).succeeded).toBe(0);
    expect(w.clusters()).toEqual([]);
  });

  it('a stream that ends loses its in-flight figure at once; its counts age out with the window', () => {
    const c = clock(0);
    const w = new LoadWindow({ now: c.now, windowMs: 5000 });
    w.record('s1', 'proxy-a', [load(A, 10, 0, 4)]);
    w.record('s2', 'proxy-b', [load(A, 20, 5, 6)]);
    expect(w.recent(A)).toMatchObject({ completed: 35, inFlight: 10, proxies: 2 });
    w.endStream('s2');
    expect(w.recent(A)).toMatchObject({ completed: 35, inFlight: 4, proxies: 2 });
    c.t = 3000;
    w.record('s1', 'proxy-a', [load(A, 1, 0, 4)]);
    c.t = 6000;
    expect(w.recent(A)).toMatchObject({ completed: 1, inFlight: 4, proxies: 1 });
    // The proxy reconnects on a new stream: its in-flight figure is the new stream's.
    w.endStream('s1');
    w.record('s3', 'proxy-a', [load(A, 2, 0, 1)]);
    expect(w.recent(A)).toMatchObject({ completed: 3, inFlight: 1, proxies: 1 });
  });

  it('in flight is the latest report of each stream, not a sum over reports', () => {
    const w = new LoadWindow({ now: clock().now });
    w.record('s1', 'p', [load(A, 1, 0, 9)]);
    w.record('s1', 'p', [load(A, 1, 0, 2)]);
    expect(w.recent(A).inFlight).toBe(2);
    w.record('s1', 'p', [load(A, 1, 0, 0)]);
    expect(w.recent(A).inFlight).toBe(0);
  });

  it('keeps clusters the model does not know, within their own bound, so made-up names cannot crowd out the mesh', () => {
    const known = new Set([A, B]);
    const w = new LoadWindow({ now: clock().now, known: (n) => known.has(n), maxUnknownClusters: 3, maxClusters: 6 });
    // Idle reports of clusters the model does not know take no place (Envoy reports all it has).
    w.record('s1', 'p', [load('PassthroughCluster', 0), load('inbound|9080||', 0)]);
    expect(w.clusters()).toEqual([]);
    w.record('s1', 'p', Array.from({ length: 10 }, (_, i) => load(`made-up-${i}`, 1)));
    expect(w.clusters()).toEqual(['made-up-0', 'made-up-1', 'made-up-2']);
    expect(w.dropped).toBe(7);
    w.record('s1', 'p', [load(A, 1), load(B, 2)]);
    expect(w.recent(A).succeeded).toBe(1);
    expect(w.recent(B).succeeded).toBe(2);
    // The overall bound holds for known clusters too.
    for (let i = 0; i < 5; i++) known.add(`k${i}`);
    w.record('s1', 'p', Array.from({ length: 5 }, (_, i) => load(`k${i}`, 1)));
    expect(w.clusters()).toHaveLength(6);
    expect(w.dropped).toBe(7 + 4);
  });

  it('frees the room of clusters that aged out', () => {
    const c = clock(0);
    const w = new LoadWindow({ now: c.now, windowMs: 2000, maxClusters: 2 });
    w.record('s', 'p', [load('x', 1), load('y', 1)]);
    w.record('s', 'p', [load('z', 1)]);
    expect(w.recent('z').succeeded).toBe(0);
    c.t = 5000;
    w.record('s', 'p', [load('z', 1)]);
    expect(w.recent('z').succeeded).toBe(1);
    expect(w.clusters()).toEqual(['z']);
  });

  it('holds a bounded number of buckets per cluster', () => {
    const c = clock(0);
    const w = new LoadWindow({ now: c.now, windowMs: 10_000, bucketMs: 1000 });
    for (let i = 0; i < 1000; i++) {
      w.record('s', 'p', [load(A, 1)]);
      c.t += 500;
    }
    // 10 s of 2 reports a second, give or take the bucket at the edge.
    const f = w.recent(A);
    expect(f.succeeded).toBeGreaterThanOrEqual(20);
    expect(f.succeeded).toBeLessThanOrEqual(22);
    const buckets = (w as unknown as { clusterStates: Map<string, { buckets: unknown[] }> }).clusterStates.get(A)!.buckets.length;
    expect(buckets).toBeLessThanOrEqual(11);
  });
});

describe('/debug/load report', () => {
  it('groups by service and subset, lists flagged clusters without reports, and names unknown clusters', () => {
    const c = clock();
    const w = new LoadWindow({ now: c.now, windowMs: 10_000 });
    const model = [
      { name: A, host: 'reviews.default.svc.cluster.local', subset: 'v1', loadReport: true as const },
      { name: B, host: 'reviews.default.svc.cluster.local', subset: 'v2', loadReport: true as const },
      { name: 'outbound|9080||reviews.default.svc.cluster.local', host: 'reviews.default.svc.cluster.local' },
      { name: 'outbound|9080||ratings.default.svc.cluster.local', host: 'ratings.default.svc.cluster.local' },
    ];
    w.record('s1', 'p1', [load(A, 90, 10, 2), load('outbound|9080||ratings.default.svc.cluster.local', 4), load('outbound|1|v9|gone.svc', 1)]);
    w.record('s2', 'p2', [load(A, 100, 0)]);
    expect(loadReport(w, model)).toEqual({
      windowSeconds: 10,
      services: [
        { host: 'ratings.default.svc.cluster.local', subsets: [{ subset: null, cluster: 'outbound|9080||ratings.default.svc.cluster.local', requestsPerSecond: 0.4, successRate: 100, inFlight: 0, proxies: 1, completed: 4, failed: 0 }] },
        {
          host: 'reviews.default.svc.cluster.local',
          subsets: [
            { subset: 'v1', cluster: A, requestsPerSecond: 20, successRate: 95, inFlight: 2, proxies: 2, completed: 200, failed: 10 },
            { subset: 'v2', cluster: B, requestsPerSecond: 0, successRate: null, inFlight: 0, proxies: 0, completed: 0, failed: 0 },
          ],
        },
      ],
      unknownClusters: ['outbound|1|v9|gone.svc'],
    });
  });
});
