// npm run bench -- --only dashboard   (also part of a full run)
//
// What an open dashboard costs the control plane: the snapshot the event stream builds every
// 500 ms while a page is connected (dashboard/state.ts, JSON text), on the bench mesh with a running
// control plane. The first snapshot of a model computes the graph; later ones reuse its model part.
// Lower bound, in the same run: encoding the same snapshot object as JSON (what any server sending
// it must do). CPU time (process.cpuUsage), median over the runs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dashboardState } from '../control-plane/dashboard/state.ts';
import { silentLogger } from '../control-plane/log.ts';
import { startControlPlane } from '../control-plane/server.ts';
import { writeMesh } from './mesh.ts';

export interface DashboardBenchOptions { services: number; endpoints: number; runs: number }
export interface DashboardBenchResult { services: number; bytes: number; firstMs: number; repeatMs: number; lowerBoundMs: number }

const cpuMs = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function runDashboardBench(o: DashboardBenchOptions): Promise<DashboardBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'meshpilot-dashboard-'));
  writeMesh(dir, { services: o.services, endpoints: o.endpoints });
  const cp = await startControlPlane({ configDir: dir, xdsListen: '127.0.0.1:0', adminListen: null, logger: silentLogger });
  try {
    const deps = { state: cp.state, ads: cp.ads, cache: cp.cache, load: cp.load, rollouts: cp.rollouts };
    let t = cpuMs();
    const bytes = JSON.stringify(dashboardState(deps)).length;
    const firstMs = cpuMs() - t;
    const repeat: number[] = [];
    const bound: number[] = [];
    for (let i = 0; i < o.runs; i++) {
      t = cpuMs();
      JSON.stringify(dashboardState(deps));
      repeat.push(cpuMs() - t);
      const snapshot = dashboardState(deps);
      t = cpuMs();
      JSON.stringify(snapshot);
      bound.push(cpuMs() - t);
    }
    return { services: o.services, bytes, firstMs, repeatMs: median(repeat), lowerBoundMs: median(bound) };
  } finally {
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function formatDashboardBench(r: DashboardBenchResult): string {
  return [
    `Dashboard snapshot (${r.services} services, ${(r.bytes / 1e6).toFixed(1)} MB of JSON; built every 500 ms while a page is open)`,
    `  first of a model   ${r.firstMs.toFixed(1)} ms CPU`,
    `  later              ${r.repeatMs.toFixed(1)} ms CPU  (lower bound: encoding it, ${r.lowerBoundMs.toFixed(1)} ms; ${(r.repeatMs / r.lowerBoundMs).toFixed(2)}x)`,
  ].join('\n');
}
