// npm run bench:validate [-- options]        (also: npm run bench -- --only validate)
//
// `meshpilot validate` against `meshpilot serve` on the same rules: bench/mesh.ts's mesh of N
// services (a ServiceEntry with endpoints in two zones, a DestinationRule and a VirtualService
// each: 3N rules) in a temp directory. For each N it runs, one after the other, as a user would:
//   serve     until it logs "meshpilot serving ..." (rules loaded and compiled, listening): the load
//             time, and its peak RSS so far (/proc VmHWM); then SIGTERM.
//   validate  to its exit: wall time, CPU time and peak RSS (GNU time when /usr/bin/time exists,
//             else /proc VmHWM sampled every 50 ms), and that it printed "3N rules valid, 0 errors".
// and prints validate / serve (the target: at most 2x) and validate's peak RSS (target: < 500 MB).
// Also validate on an empty directory: what starting the CLI costs before any rule is read.
//
// Options:
//   --services 1000,5000   mesh sizes (services; 3 rules each)
//   --endpoints 10         endpoints per service
//   --runs 1               runs of each command per size; the median is reported
//   --cli bin              how to run the CLI: bin (node bin/meshpilot.js: the build in dist/, as
//                          users run it; `npm run build` first), tsx (node --import tsx
//                          control-plane/cli.ts: the sources), or a command line, e.g. "node x/cli.js"
//   --json FILE            also write the results as JSON
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeMesh } from './mesh.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const GNU_TIME = '/usr/bin/time';
/** Linux's USER_HZ: /proc/PID/stat counts CPU time in these ticks. */
const CLOCK_TICKS = 100;

export interface ValidateBenchOptions {
  services: number[];
  endpoints: number;
  runs: number;
  cli: string;
}

interface Run {
  wallMs: number;
  /** user + system; undefined when it could not be read. */
  cpuMs?: number;
  /** Peak resident set size, bytes. */
  peakRss?: number;
}

export interface ValidateBenchResult {
  services: number;
  rules: number;
  validate: Run;
  serve: Run;
  /** validate wall time / serve load time. */
  ratio: number;
  load: [number, number];
}

export interface ValidateBenchReport {
  cli: string;
  /** validate on an empty directory: the CLI's own start. */
  baseline: Run;
  results: ValidateBenchResult[];
}

/** The command line that runs meshpilot's CLI. */
export function cliCommand(cli: string): string[] {
  if (cli === 'bin' && !existsSync(join(root, 'dist/cli.js'))) throw new Error('validate bench: no build in dist/: run `npm run build` first (or --cli tsx)');
  if (cli === 'tsx') return [process.execPath, '--import', 'tsx', join(root, 'control-plane/cli.ts')];
  if (cli === 'bin') return [process.execPath, join(root, 'bin/meshpilot.js')];
  return cli.split(/\s+/).filter(Boolean);
}

function procStatus(pid: number): { hwm?: number; cpuMs?: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
    // utime and stime are fields 14 and 15; the command name (field 2) may hold spaces, so count from its ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]);
    return { ...(hwm ? { hwm: Number(hwm[1]) * 1024 } : {}), ...(Number.isFinite(ticks) ? { cpuMs: (ticks * 1000) / CLOCK_TICKS } : {}) };
  } catch {
    return {};
  }
}

/** Runs a command to its exit; its stdout, exit code, wall time, CPU time and peak RSS. */
async function runToExit(command: string[]): Promise<Run & { code: number | null; stdout: string }> {
  const timed = existsSync(GNU_TIME);
  const timeFile = join(tmpdir(), `meshpilot-bench-time-${process.pid}-${Date.now()}`);
  const argv = timed ? [GNU_TIME, '-o', timeFile, '-f', '%M %U %S', ...command] : command;
  const t0 = performance.now();
  const child = spawn(argv[0]!, argv.slice(1), { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  let sampled: { hwm?: number; cpuMs?: number } = {};
  const sampler = timed ? undefined : setInterval(() => (sampled = { ...sampled, ...procStatus(child.pid!) }), 50);
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  const wallMs = performance.now() - t0;
  if (sampler) clearInterval(sampler);
  if (!timed) return { code, stdout, wallMs, ...(sampled.cpuMs !== undefined ? { cpuMs: sampled.cpuMs } : {}), ...(sampled.hwm ? { peakRss: sampled.hwm } : {}) };
  const [kb, user, sys] = readFileSync(timeFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
  rmSync(timeFile, { force: true });
  return { code, stdout, wallMs, cpuMs: (user! + sys!) * 1000, peakRss: kb! * 1024 };
}

/** Starts serve, waits for its "meshpilot serving" line, reads its figures, and stops it. */
async function serveLoad(command: string[], dir: string, timeoutMs = 600_000): Promise<Run> {
  const t0 = performance.now();
  const child = spawn(command[0]!, [...command.slice(1), 'serve', '--config-dir', dir, '--xds-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    const wallMs = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve did not load ${dir} within ${timeoutMs / 1000} s`)), timeoutMs);
      let seen = '';
      const scan = (d: Buffer) => {
        seen = (seen + d.toString('utf8')).slice(-4096);
        if (seen.includes('meshpilot serving')) {
          clearTimeout(timer);
          resolve(performance.now() - t0);
        }
      };
      child.stdout!.on('data', scan);
      child.stderr!.on('data', scan);
      child.once('exit', (c) => reject(new Error(`serve exited (${c}) before it was serving:\n${seen}`)));
    });
    const s = procStatus(child.pid!);
    return { wallMs, ...(s.cpuMs !== undefined ? { cpuMs: s.cpuMs } : {}), ...(s.hwm ? { peakRss: s.hwm } : {}) };
  } finally {
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  }
}

function median(runs: Run[]): Run {
  const num = (k: keyof Run) => {
    const xs = runs.map((r) => r[k]).filter((x): x is number => x !== undefined).sort((a, b) => a - b);
    return xs.length ? xs[Math.floor((xs.length - 1) / 2)] : undefined;
  };
  const cpuMs = num('cpuMs');
  const peakRss = num('peakRss');
  return { wallMs: num('wallMs')!, ...(cpuMs !== undefined ? { cpuMs } : {}), ...(peakRss !== undefined ? { peakRss } : {}) };
}

async function validateOnce(command: string[], dir: string, expect: RegExp): Promise<Run> {
  const r = await runToExit([...command, 'validate', '--config-dir', dir]);
  if (r.code !== 0 || !expect.test(r.stdout)) throw new Error(`validate ${dir}: exit ${r.code}, expected ${expect}, got:\n${r.stdout.slice(-2000)}`);
  return { wallMs: r.wallMs, ...(r.cpuMs !== undefined ? { cpuMs: r.cpuMs } : {}), ...(r.peakRss !== undefined ? { peakRss: r.peakRss } : {}) };
}

export async function runValidateBench(o: ValidateBenchOptions, log: (s: string) => void): Promise<ValidateBenchReport> {
  const command = cliCommand(o.cli);
  const base = mkdtempSync(join(tmpdir(), 'meshpilot-validate-bench-'));
  try {
    const empty = join(base, 'empty');
    writeMesh(empty, { services: 0, endpoints: 0 });
    const baseline = await validateOnce(command, empty, /^0 rules valid, 0 errors/m);
    log(`validate, empty directory: ${fmtRun(baseline)}`);
    const results: ValidateBenchResult[] = [];
    for (const services of o.services) {
      const dir = join(base, `mesh-${services}`);
      writeMesh(dir, { services, endpoints: o.endpoints });
      const rules = services * 3;
      const load: [number, number] = [loadavg()[0]!, 0];
      const serveRuns: Run[] = [];
      const validateRuns: Run[] = [];
      for (let i = 0; i < o.runs; i++) {
        serveRuns.push(await serveLoad(command, dir));
        log(`  ${services} services: serve loaded in ${fmtRun(serveRuns.at(-1)!)}`);
        validateRuns.push(await validateOnce(command, dir, new RegExp(`^${rules} rules valid, 0 errors`, 'm')));
        log(`  ${services} services: validate ${fmtRun(validateRuns.at(-1)!)}`);
      }
      load[1] = loadavg()[0]!;
      const serve = median(serveRuns);
      const validate = median(validateRuns);
      results.push({ services, rules, serve, validate, ratio: validate.wallMs / serve.wallMs, load });
      rmSync(dir, { recursive: true, force: true });
    }
    return { cli: command.map((a) => (a === process.execPath ? 'node' : a.startsWith(root) ? a.slice(root.length + 1) : a)).join(' '), baseline, results };
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const mb = (b: number | undefined) => (b === undefined ? 'n/a' : `${Math.round(b / 2 ** 20)} MB`);

function fmtRun(r: Run): string {
  return `${s(r.wallMs)} (CPU ${r.cpuMs === undefined ? 'n/a' : s(r.cpuMs)}), peak RSS ${mb(r.peakRss)}`;
}

export function formatValidateBench(r: ValidateBenchReport): string {
  const rows = r.results.map((x) => [
    String(x.services), String(x.rules),
    s(x.validate.wallMs), x.validate.cpuMs === undefined ? 'n/a' : s(x.validate.cpuMs), mb(x.validate.peakRss),
    s(x.serve.wallMs), x.serve.cpuMs === undefined ? 'n/a' : s(x.serve.cpuMs), mb(x.serve.peakRss),
    `${x.ratio.toFixed(2)}x`, `${x.load[0].toFixed(1)} -> ${x.load[1].toFixed(1)}`,
  ]);
  const head = ['services', 'rules', 'validate', 'its CPU', 'its peak RSS', 'serve load', 'its CPU', 'its RSS at ready', 'ratio', 'load avg'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  const met = (ok: boolean) => (ok ? 'met' : 'NOT met');
  return [
    `meshpilot validate vs serve on the same rules (CLI: ${r.cli}; medians)`,
    `  validate on an empty directory: ${fmtRun(r.baseline)}`,
    line(head),
    ...rows.map(line),
    `  targets: validate <= 2x serve's load: ${r.results.map((x) => `${x.services}: ${met(x.ratio <= 2)}`).join(', ')}; `
      + `peak RSS < 500 MB: ${r.results.map((x) => `${x.services}: ${met((x.validate.peakRss ?? Infinity) < 500 * 2 ** 20)}`).join(', ')}`,
  ].join('\n');
}

function parseArgs(argv: string[]): ValidateBenchOptions & { json?: string } {
  const o: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    o[a.slice(2)] = argv[++i] ?? '';
  }
  return {
    services: (o.services ?? '1000,5000').split(',').map(Number),
    endpoints: Number(o.endpoints ?? 10),
    runs: Number(o.runs ?? 1),
    cli: o.cli ?? 'bin',
    ...(o.json ? { json: o.json } : {}),
  };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const o = parseArgs(process.argv.slice(2));
  const log = (line: string) => process.stderr.write(`${line}\n`);
  log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`);
  const report = await runValidateBench(o, log);
  console.log(formatValidateBench(report));
  if (o.json) writeFileSync(o.json, JSON.stringify(report, null, 2));
  process.exit(0);
}
