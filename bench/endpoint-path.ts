// npm run bench -- --only endpoint-path   (also part of a full run)
//
// What one endpoint change costs the control plane in-process, without proxies or sockets: the
// bench mesh (1,000 services) compiled once, then the same endpoint-only ServiceEntry edits
// applied two ways: by a compile (what every change took before endpoint updates existed) and by
// model/endpoint-update.ts, each followed by building the new snapshot of a proxyless gRPC group
// and of a full-mesh Envoy sidecar group. CPU time (process.cpuUsage) per change, median over the
// edits. Lower bound: encoding the changed ClusterLoadAssignments once (what any server must do).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileConfigSource } from '../control-plane/config/file-source.ts';
import { parseConfigText } from '../control-plane/config/load.ts';
import type { LoadResult } from '../control-plane/config/types.ts';
import { encodeResource } from '../control-plane/envoy/check.ts';
import { silentLogger } from '../control-plane/log.ts';
import { ModelMemo } from '../control-plane/model/build.ts';
import { compile, type MeshState } from '../control-plane/model/compile.ts';
import { endpointUpdate } from '../control-plane/model/endpoint-update.ts';
import { reuseUnchanged } from '../control-plane/model/reuse.ts';
import { proxyFromNode } from '../control-plane/translate/proxy.ts';
import { translate } from '../control-plane/translate/translate.ts';
import { ENDPOINTS } from '../control-plane/translate/type-urls.ts';
import { SnapshotCache } from '../control-plane/xds/snapshot-cache.ts';
import { serviceEntryYaml, svcHost, writeMesh } from './mesh.ts';

export interface EndpointPathOptions { services: number; endpoints: number; changes: number }
export interface EndpointPathRow { label: string; medianUs: number; p90Us: number }
export interface EndpointPathResult { services: number; changes: number; rows: EndpointPathRow[] }

const cpuUs = () => {
  const c = process.cpuUsage();
  return c.user + c.system;
};
const pct = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

const GRPC = proxyFromNode({ id: 'sidecar~10.250.0.1~client-0.default~default.svc.cluster.local', metadata: { GENERATOR: 'grpc', NAMESPACE: 'default', LABELS: { app: 'client-0' } } });
const ENVOY = proxyFromNode({ id: 'sidecar~10.250.0.2~client-1.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default', LABELS: { app: 'client-1' } } });

export async function runEndpointPath(o: EndpointPathOptions): Promise<EndpointPathResult> {
  const dir = mkdtempSync(join(tmpdir(), 'meshpilot-eppath-'));
  try {
    writeMesh(dir, { services: o.services, endpoints: o.endpoints });
    const base = new FileConfigSource(dir).load();
    const run = (label: string, useUpdate: boolean): EndpointPathRow[] => {
      const memo = new ModelMemo();
      let load: LoadResult = base;
      let state: MeshState = compile(load, [], memo);
      const cache = new SnapshotCache(silentLogger);
      cache.setModel(state.model);
      cache.snapshotFor(GRPC);
      cache.snapshotFor(ENVOY);
      const model: number[] = [];
      const total: number[] = [];
      for (let i = 0; i < o.changes; i++) {
        const svc = 1 + (i % (o.services - 1));
        const file = join(dir, `se-${String(svc).padStart(4, '0')}.yaml`);
        const parsed = parseConfigText(file, serviceEntryYaml(svc, o.endpoints, i + 1));
        const next: LoadResult = { ...load, objects: load.objects.map((x) => (x.key === parsed.objects[0]!.key ? parsed.objects[0]! : x)) };
        const t0 = cpuUs();
        if (useUpdate) {
          state = endpointUpdate(load, next, state, memo)!.state;
        } else {
          const c = compile(next, state.accepted, memo);
          state = { ...c, model: reuseUnchanged(c.model, state.model) };
        }
        const t1 = cpuUs();
        cache.setModel(state.model);
        cache.snapshotFor(GRPC);
        cache.snapshotFor(ENVOY);
        const t2 = cpuUs();
        model.push(t1 - t0);
        total.push(t2 - t0);
        load = next;
        if (!state.model.services.some((s) => s.host === svcHost(svc))) throw new Error('service lost');
      }
      return [
        { label: `${label}: model`, medianUs: pct(model, 0.5), p90Us: pct(model, 0.9) },
        { label: `${label}: model + 2 group snapshots`, medianUs: pct(total, 0.5), p90Us: pct(total, 0.9) },
      ];
    };
    const rows = [...run('compile (before)', false), ...run('endpoint update', true)];
    // Lower bound: the changed service's ClusterLoadAssignments for both groups, each encoded once.
    const memo = new ModelMemo();
    const state = compile(base, [], memo);
    const out = [GRPC, ENVOY].map((p) => translate(state.model, p)[ENDPOINTS].filter((r) => String(r.cluster_name).endsWith(svcHost(1))));
    const lb: number[] = [];
    for (let i = 0; i < o.changes; i++) {
      const t0 = cpuUs();
      for (const list of out) for (const r of list) encodeResource(structuredClone(r));
      lb.push(cpuUs() - t0);
    }
    rows.push({ label: 'lower bound: encode the changed ClusterLoadAssignments', medianUs: pct(lb, 0.5), p90Us: pct(lb, 0.9) });
    return { services: o.services, changes: o.changes, rows };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function formatEndpointPath(r: EndpointPathResult): string {
  const lb = r.rows.at(-1)!.medianUs;
  const lines = [`One endpoint change in-process (${r.services} services, ${r.changes} changes; CPU per change, median / p90):`];
  for (const row of r.rows) lines.push(`  ${row.label.padEnd(58)} ${(row.medianUs / 1000).toFixed(2).padStart(7)} ms / ${(row.p90Us / 1000).toFixed(2).padStart(7)} ms  (${(row.medianUs / lb).toFixed(1)}x)`);
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await runEndpointPath({ services: 1000, endpoints: 10, changes: 60 });
  console.log(formatEndpointPath(r));
}
