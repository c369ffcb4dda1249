// npm run bench -- --only startup [--startup-runs 10]   (also runs at the end of a full `npm run bench`)
//   node --import tsx bench/startup.ts [--runs 10] [--serve-runs 3] [--services 1000] [--dev]
//                                      [--cpu-prof DIR: a V8 CPU profile of each serve process]
//
// Whole-process timings of the command line as a user (or a container probe) runs it:
// `meshpilot --help` and `meshpilot validate --config-dir examples/bookinfo`, each a new `node
// bin/meshpilot.js` process, timed from spawn to exit. Beside them, lower bounds measured in the
// same run on the same machine: the start of an empty node process, node loading only commander
// (all --help needs), and node loading Envoy's protos (what validate must do before its first
// check). Targets on a 2-core machine: --help under 300 ms, validate under 1 s (median).
// CPU is the user+system time of the process (Linux: the parent's cutime/cstime, counted when the
// child is reaped), which other work on a shared machine inflates less than wall time.
// Then `meshpilot serve` from a cold start on the bench mesh, to ready and to its first clients'
// full config, with its own lower bounds (bench/serve-startup.ts).
// Needs a current build (`npm run build`): bin/meshpilot.js refuses a stale one, and so does this.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatServeStartup, runServeStartupBench, type ServeStartupBenchOptions, type ServeStartupResult } from './serve-startup.ts';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const BIN = path.join(root, 'bin/meshpilot.js');

export interface StartupBenchOptions {
  /** Timed runs per command (one untimed warm-up run comes first). */
  runs: number;
  /** Also time `--help` through tsx (MESHPILOT_DEV=1: how every call ran before the build step). */
  dev?: boolean;
  /** serve's cold start on the bench mesh (0 runs: skipped). */
  serve?: ServeStartupBenchOptions;
}

export interface StartupRow {
  label: string;
  /** Lower bounds are what meshpilot's rows are compared with. */
  lowerBound: boolean;
  wallMs: number[];
  medianMs: number;
  minMs: number;
  /** Median CPU (user + system) per run; undefined where the OS does not tell. */
  cpuMedianMs?: number;
  targetMs?: number;
}

export interface StartupBenchResult {
  runs: number;
  rows: StartupRow[];
  /** 1-minute load average before and after. */
  load: [number, number];
  serve?: ServeStartupResult;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** CPU time of this process's reaped children so far, in ms (Linux), else undefined. */
function childrenCpuMs(): number | undefined {
  try {
    // Fields after the command name (which is in parentheses and may hold spaces): cutime, cstime
    // are the 14th and 15th of them, in clock ticks (100 per second on Linux).
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[13]) + Number(f[14])) * 10;
  } catch {
    return undefined;
  }
}

/** One process from spawn to exit: wall ms, CPU ms; rejects on a non-zero exit with its stderr. */
function once(args: string[], env: NodeJS.ProcessEnv): Promise<{ wall: number; cpu: number | undefined }> {
  return new Promise((resolve, reject) => {
    const cpu0 = childrenCpuMs();
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const wall = performance.now() - t0;
      const cpu1 = childrenCpuMs();
      if (code !== 0) reject(new Error(`node ${args.join(' ')} exited ${code}: ${stderr.trim().split('\n')[0] ?? ''}`));
      else resolve({ wall, cpu: cpu0 === undefined || cpu1 === undefined ? undefined : cpu1 - cpu0 });
    });
  });
}

async function measure(label: string, args: string[], o: { runs: number; lowerBound: boolean; targetMs?: number; env?: NodeJS.ProcessEnv }, log: (s: string) => void): Promise<StartupRow> {
  const env = { ...process.env, ...o.env };
  await once(args, env); // warm-up: file cache, and for tsx its compile cache
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < o.runs; i++) {
    const r = await once(args, env);
    wall.push(r.wall);
    if (r.cpu !== undefined) cpu.push(r.cpu);
  }
  const row: StartupRow = {
    label,
    lowerBound: o.lowerBound,
    wallMs: wall.map((w) => Math.round(w * 10) / 10),
    medianMs: median(wall),
    minMs: Math.min(...wall),
    ...(cpu.length === wall.length ? { cpuMedianMs: median(cpu) } : {}),
    ...(o.targetMs ? { targetMs: o.targetMs } : {}),
  };
  log(`startup: ${label}: median ${row.medianMs.toFixed(0)} ms`);
  return row;
}

export async function runStartupBench(o: StartupBenchOptions, log: (s: string) => void): Promise<StartupBenchResult> {
  if (!existsSync(path.join(root, 'dist/cli.js'))) throw new Error('startup bench: no build in dist/: run `npm run build` first');
  const load0 = loadavg()[0]!;
  const runs = o.runs;
  const rows: StartupRow[] = [];
  rows.push(await measure('node -e 0 (process start)', ['-e', '0'], { runs, lowerBound: true }, log));
  rows.push(await measure('node loading commander only', ['--input-type=module', '-e', "import 'commander'"], { runs, lowerBound: true }, log));
  rows.push(await measure('meshpilot --help', [BIN, '--help'], { runs, lowerBound: false, targetMs: 300 }, log));
  rows.push(await measure("node loading Envoy's protos only", ['--input-type=module', '-e', "import { getRoot } from './dist/envoy/protos.js'; getRoot();"], { runs, lowerBound: true }, log));
  rows.push(await measure('meshpilot validate --config-dir examples/bookinfo', [BIN, 'validate', '--config-dir', 'examples/bookinfo'], { runs, lowerBound: false, targetMs: 1000 }, log));
  if (o.dev) rows.push(await measure('meshpilot --help through tsx (MESHPILOT_DEV=1)', [BIN, '--help'], { runs: Math.min(runs, 3), lowerBound: false, env: { MESHPILOT_DEV: '1' } }, log));
  const serve = o.serve && o.serve.runs > 0
    ? await runServeStartupBench(o.serve, log, (label, args) => measure(label, args, { runs: o.serve!.runs, lowerBound: true }, log))
    : undefined;
  return { runs, rows, load: [load0, loadavg()[0]!], ...(serve ? { serve } : {}) };
}

export function formatStartupBench(r: StartupBenchResult): string {
  const ms = (x: number | undefined) => (x === undefined ? '-' : `${x.toFixed(0)} ms`);
  const width = Math.max(...r.rows.map((x) => x.label.length));
  const out = [
    `whole-process startup (${r.runs} runs each after a warm-up; wall time from spawn to exit, CPU = user+system of the process):`,
    `  ${''.padEnd(width)}  ${'median'.padStart(8)}  ${'min'.padStart(8)}  ${'CPU med'.padStart(8)}`,
  ];
  for (const x of r.rows) {
    const target = x.targetMs ? `  target < ${x.targetMs >= 1000 ? `${x.targetMs / 1000} s` : `${x.targetMs} ms`}: ${x.medianMs < x.targetMs ? 'met' : 'NOT met'}` : '';
    out.push(`  ${x.label.padEnd(width)}  ${ms(x.medianMs).padStart(8)}  ${ms(x.minMs).padStart(8)}  ${ms(x.cpuMedianMs).padStart(8)}${x.lowerBound ? '  (lower bound)' : ''}${target}`);
  }
  if (r.serve) out.push(formatServeStartup(r.serve));
  out.push(`  machine load average ${r.load[0].toFixed(1)} -> ${r.load[1].toFixed(1)} on ${availableParallelism()} cores`);
  return out.join('\n');
}

function arg(name: string, d: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : d;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const prof = process.argv.indexOf('--cpu-prof');
  const serve = { runs: arg('serve-runs', 3), services: arg('services', 1000), endpoints: arg('endpoints', 10), scope: arg('scope', 50), ...(prof >= 0 ? { cpuProfDir: path.resolve(process.argv[prof + 1]!) } : {}) };
  const r = await runStartupBench({ runs: arg('runs', 10), dev: process.argv.includes('--dev'), serve }, (s) => process.stderr.write(`${s}\n`));
  console.log(formatStartupBench(r));
  process.exit(0);
}
