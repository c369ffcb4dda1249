// `meshpilot serve` from a cold start, as a user (or a Kubernetes rollout) sees it: spawned as
// `node bin/meshpilot.js serve --config-dir DIR --xds-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0`
// on the bench mesh, then timed from the spawn:
//   ready    GET /readyz answers 200 (polled every 10 ms once the admin API has logged its address);
//   warm     the first client, connected once ready (as a Service would route it), holds every
//            resource it asked for (bench/startup-clients.ts): one Envoy sidecar (delta ADS, whole
//            mesh) in one process, one proxyless gRPC client (SotW, 50 services) in another.
// Also the process's RSS (/proc/PID/status VmRSS) when ready and when the client is synced, its peak
// (VmHWM), its CPU (utime+stime), and the times of serve's own log lines ("configuration applied"
// comes after reading and compiling the rules), read from the pino `time` of each line.
// Beside them, lower bounds measured in the same run (each a new node process, spawn to exit): node
// reading the rule files and parsing their YAML with the fastest general parser at hand (the least
// any YAML control plane does before it is ready), and the same plus loading Envoy's protos (the
// least before a first answer can be encoded). serve logs no timing per phase, so
// bench/serve-phases.ts runs the same build's phases one by one in one process for a breakdown.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ClientResult, envoySidecar, grpcClient } from './startup-clients.ts';
import { endpointAddress, listenerName, proxyScope, writeMesh } from './mesh.ts';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const BIN = path.join(root, 'bin/meshpilot.js');
/** Linux's USER_HZ: /proc/PID/stat counts CPU time in these ticks. */
const CLOCK_TICKS = 100;

export type FirstClient = 'sidecar' | 'grpc';

export interface ServeRun {
  client: FirstClient;
  /** spawn -> /readyz 200, ms. */
  readyMs: number;
  /** spawn -> the client held everything, ms. */
  warmMs: number;
  /** The client's resources per type and the bytes it received. */
  got: Pick<ClientResult, 'counts' | 'bytes'>;
  /** serve's log lines, ms after the spawn (by their own timestamps), first occurrence of each. */
  logAt: Record<string, number>;
  rssReady?: number;
  rssWarm?: number;
  peakRss?: number;
  cpuReadyMs?: number;
  cpuWarmMs?: number;
}

/** The log lines whose times make the breakdown (messages as serve writes them). */
export const PHASE_LINES = ['configuration applied', 'xDS (ADS) server listening', 'admin API listening'] as const;

function procFigures(pid: number): { rss?: number; hwm?: number; cpuMs?: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => {
      const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status);
      return m ? Number(m[1]) * 1024 : undefined;
    };
    // utime, stime: fields 14 and 15; the command name (field 2) may hold spaces, so count from its ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]);
    const rss = kb('VmRSS');
    const hwm = kb('VmHWM');
    return { ...(rss !== undefined ? { rss } : {}), ...(hwm !== undefined ? { hwm } : {}), ...(Number.isFinite(ticks) ? { cpuMs: (ticks * 1000) / CLOCK_TICKS } : {}) };
  } catch {
    return {};
  }
}

function readyz(address: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: address.slice(0, address.lastIndexOf(':')), port: Number(address.slice(address.lastIndexOf(':') + 1)), path: '/readyz', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
  });
}

export interface ServeStartupOptions {
  dir: string;
  services: number;
  client: FirstClient;
  /** Services the gRPC client dials. */
  scope: number;
  timeoutMs?: number;
  /** Write a V8 CPU profile of serve into this directory (node --cpu-prof). */
  cpuProfDir?: string;
}

/** One cold start of serve and its first client; serve is stopped (SIGTERM) at the end. */
export async function serveStartupOnce(o: ServeStartupOptions): Promise<ServeRun> {
  const execArgv = o.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', o.cpuProfDir] : [];
  if (o.cpuProfDir) mkdirSync(o.cpuProfDir, { recursive: true });
  const spawnedAt = performance.timeOrigin + performance.now();
  const t0 = performance.now();
  const child = spawn(process.execPath, [...execArgv, BIN, 'serve', '--config-dir', o.dir, '--xds-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--log-format', 'json'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const logAt: Record<string, number> = {};
  const addresses: { xds?: string; admin?: string } = {};
  let stderr = '';
  let stage = 'spawned';
  let clientProgress: (() => string) | undefined;
  let wake: () => void = () => {};
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    let nl: number;
    while ((nl = out.indexOf('\n')) >= 0) {
      const line = out.slice(0, nl);
      out = out.slice(nl + 1);
      let entry: { msg?: string; time?: number; address?: string };
      try {
        entry = JSON.parse(line);
      } catch {
        continue;
      }
      const msg = entry.msg ?? '';
      if (entry.time && !(msg in logAt)) logAt[msg] = entry.time - spawnedAt;
      if (msg === 'xDS (ADS) server listening') addresses.xds = entry.address;
      if (msg === 'admin API listening') addresses.admin = entry.address;
      wake();
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  const timeoutMs = o.timeoutMs ?? 120_000;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`serve startup (${o.client}): not done after ${timeoutMs / 1000} s, at stage "${stage}"${clientProgress ? ` (client holds ${clientProgress()})` : ''}; log lines seen: ${Object.keys(logAt).join(' | ') || 'none'}`)), timeoutMs);
  });
  const died = exited.then((code) => {
    throw new Error(`serve exited (${code}) at stage "${stage}": ${stderr.trim().split('\n').slice(-3).join(' / ')}`);
  });
  const race = <T>(p: Promise<T>) => Promise.race([p, deadline, died]);
  const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
  let closeClient = () => {};
  let stopped = false;
  try {
    stage = 'waiting for the admin address';
    await race(new Promise<void>((r) => {
      wake = () => addresses.admin && addresses.xds && r();
      wake();
    }));
    stage = 'polling /readyz';
    await race((async () => {
      while (!stopped && (await readyz(addresses.admin!)) !== 200) await sleep(10);
    })());
    const readyMs = performance.now() - t0;
    const atReady = procFigures(child.pid!);
    stage = `first ${o.client} client syncing`;
    const c = o.client === 'sidecar'
      ? envoySidecar(addresses.xds!, endpointAddress(0, 0))
      : grpcClient(addresses.xds!, proxyScope(0, o.scope, o.services).map(listenerName));
    closeClient = c.close;
    clientProgress = () => c.progress.describe();
    const got = await race(c.result);
    const warmMs = got.doneAt - t0;
    const atWarm = procFigures(child.pid!);
    return {
      client: o.client,
      readyMs,
      warmMs,
      got: { counts: got.counts, bytes: got.bytes },
      logAt,
      ...(atReady.rss !== undefined ? { rssReady: atReady.rss } : {}),
      ...(atWarm.rss !== undefined ? { rssWarm: atWarm.rss } : {}),
      ...(atWarm.hwm !== undefined ? { peakRss: atWarm.hwm } : {}),
      ...(atReady.cpuMs !== undefined ? { cpuReadyMs: atReady.cpuMs } : {}),
      ...(atWarm.cpuMs !== undefined ? { cpuWarmMs: atWarm.cpuMs } : {}),
    };
  } finally {
    stopped = true;
    clearTimeout(timer);
    died.catch(() => {});
    closeClient();
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  }
}

export interface ServeStartupBenchOptions {
  runs: number;
  services: number;
  endpoints: number;
  /** Services the gRPC client dials (as each simulated proxy of the main bench does). */
  scope: number;
  /** Write a V8 CPU profile of each serve process into this directory (summarise with bench/profile-top.ts). */
  cpuProfDir?: string;
}

/** A lower bound row, measured by the caller (bench/startup.ts: a node process from spawn to exit, median of `runs`). */
export interface LowerBound { label: string; medianMs: number }
export type MeasureLowerBound = (label: string, args: string[]) => Promise<LowerBound>;

export interface ServeStartupResult {
  services: number;
  endpoints: number;
  files: number;
  runs: number;
  sidecar: ServeRun[];
  grpc: ServeRun[];
  parser: string;
  readLowerBound: LowerBound;
  warmLowerBound: LowerBound;
  /** bench/serve-phases.ts: ms per phase, and resources per client. */
  phases: { ms: Record<string, number>; resources: Record<string, number> };
  /** The target: spawn -> the first sidecar holds everything, at most this (ms). */
  targetMs: number;
}

/** The fastest YAML parser node can load here: js-yaml when installed, else yaml (meshpilot's). */
function fastestParser(): { name: string; parse: string } {
  try {
    execFileSync(process.execPath, ['--input-type=module', '-e', "import 'js-yaml'"], { cwd: root, stdio: 'ignore' });
    return { name: 'js-yaml', parse: "const { loadAll } = await import('js-yaml'); const parse = (t) => loadAll(t);" };
  } catch {
    return { name: 'yaml', parse: "const { parseAllDocuments } = await import('yaml'); const parse = (t) => parseAllDocuments(t).map((d) => d.toJS());" };
  }
}

/** node reading every rule file of argv[1] and parsing it; with `protos`, also loading Envoy's protos (as the build does). */
function lowerBoundScript(parse: string, protos: boolean): string {
  return `${parse}
import { readdirSync, readFileSync } from 'node:fs';
const dir = process.argv[1];
let docs = 0;
for (const f of readdirSync(dir).sort()) if (/\\.ya?ml$/.test(f)) docs += parse(readFileSync(dir + '/' + f, 'utf8')).length;
if (docs === 0) throw new Error('no documents');
${protos ? "const { getRoot } = await import('./dist/envoy/protos.js'); getRoot();" : ''}`;
}

/**
 * What serve's imports cost (a plain node, no tsx): first two packages it loads even when it serves
 * files only (the Kubernetes client; the X.509 library of the mesh CA), then the rest of its modules.
 */
const IMPORTS_SCRIPT = `const ms = {};
let t = performance.now();
const mark = (k) => { const now = performance.now(); ms[k] = now - t; t = now; };
await import('@kubernetes/client-node');
mark('import @kubernetes/client-node');
await import('reflect-metadata');
await import('@peculiar/x509');
mark('import @peculiar/x509');
await import('./dist/server.js');
mark("import the rest of serve's modules");
console.log(JSON.stringify(ms));`;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export async function runServeStartupBench(o: ServeStartupBenchOptions, log: (s: string) => void, measure: MeasureLowerBound): Promise<ServeStartupResult> {
  const base = mkdtempSync(path.join(tmpdir(), 'meshpilot-serve-startup-'));
  try {
    const dir = path.join(base, 'mesh');
    writeMesh(dir, { services: o.services, endpoints: o.endpoints });
    const parser = fastestParser();
    const readLowerBound = await measure(`node reading + parsing the ${o.services * 3} rule files (${parser.name})`, ['--input-type=module', '-e', lowerBoundScript(parser.parse, false), dir]);
    const warmLowerBound = await measure("the same + loading Envoy's protos", ['--input-type=module', '-e', lowerBoundScript(parser.parse, true), dir]);
    const sidecar: ServeRun[] = [];
    const grpc: ServeRun[] = [];
    for (let i = 0; i < o.runs; i++) {
      for (const client of ['sidecar', 'grpc'] as const) {
        const r = await serveStartupOnce({ dir, services: o.services, client, scope: o.scope, ...(o.cpuProfDir ? { cpuProfDir: o.cpuProfDir } : {}) });
        (client === 'sidecar' ? sidecar : grpc).push(r);
        log(`startup: serve ${i + 1}/${o.runs}: ready ${(r.readyMs / 1000).toFixed(2)} s, first ${client} has everything ${(r.warmMs / 1000).toFixed(2)} s, RSS ${mb(r.rssWarm)}`);
      }
    }
    const imports = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', IMPORTS_SCRIPT], { cwd: root, encoding: 'utf8' }).trim()) as Record<string, number>;
    const out = execFileSync(process.execPath, ['--import', 'tsx', path.join(root, 'bench/serve-phases.ts'), dir, String(o.services)], { cwd: root, encoding: 'utf8' });
    const work = JSON.parse(out.trim().split('\n').pop()!) as ServeStartupResult['phases'];
    const phases = { ms: { ...imports, ...work.ms }, resources: work.resources };
    return { services: o.services, endpoints: o.endpoints, files: o.services * 3, runs: o.runs, sidecar, grpc, parser: parser.name, readLowerBound, warmLowerBound, phases, targetMs: 5000 };
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

const sec = (ms: number | undefined) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(2)} s`);
const mb = (b: number | undefined) => (b === undefined ? '-' : `${Math.round(b / 2 ** 20)} MB`);
const med = (runs: ServeRun[], f: (r: ServeRun) => number | undefined) => {
  const xs = runs.map(f).filter((x): x is number => x !== undefined);
  return xs.length ? median(xs) : undefined;
};

export function formatServeStartup(r: ServeStartupResult): string {
  const readyMs = med([...r.sidecar, ...r.grpc], (x) => x.readyMs)!;
  const sidecarMs = med(r.sidecar, (x) => x.warmMs)!;
  const grpcMs = med(r.grpc, (x) => x.warmMs)!;
  const counts = (x: ServeRun | undefined) => (x ? `${Object.entries(x.got.counts).map(([t, n]) => `${n} ${t}`).join(', ')}; ${(x.got.bytes / 2 ** 20).toFixed(1)} MB` : '');
  const ratio = (a: number, b: number) => `${(a / b).toFixed(1)}x`;
  const rows: string[][] = [
    ['spawn -> GET /readyz 200', sec(readyMs), sec(Math.min(...[...r.sidecar, ...r.grpc].map((x) => x.readyMs))), sec(med([...r.sidecar, ...r.grpc], (x) => x.cpuReadyMs)), mb(med([...r.sidecar, ...r.grpc], (x) => x.rssReady)), `${ratio(readyMs, r.readLowerBound.medianMs)} the read+parse bound`],
    ['spawn -> first Envoy sidecar has all (delta)', sec(sidecarMs), sec(Math.min(...r.sidecar.map((x) => x.warmMs))), sec(med(r.sidecar, (x) => x.cpuWarmMs)), mb(med(r.sidecar, (x) => x.rssWarm)), `${ratio(sidecarMs, r.warmLowerBound.medianMs)} the read+parse+protos bound`],
    [`spawn -> first gRPC client has all (SotW, ${r.grpc[0]?.got.counts.lds ?? '?'} services)`, sec(grpcMs), sec(Math.min(...r.grpc.map((x) => x.warmMs))), sec(med(r.grpc, (x) => x.cpuWarmMs)), mb(med(r.grpc, (x) => x.rssWarm)), `${ratio(grpcMs, r.warmLowerBound.medianMs)} the read+parse+protos bound`],
    [`lower bound: ${r.readLowerBound.label}`, sec(r.readLowerBound.medianMs), '', '', '', ''],
    [`lower bound: ${r.warmLowerBound.label}`, sec(r.warmLowerBound.medianMs), '', '', '', ''],
  ];
  const head = ['', 'median', 'min', 'CPU med', 'RSS med', 'ratio'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `  ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : i === cells.length - 1 ? c : c.padStart(widths[i]!))).join('  ')}`.trimEnd();
  const logLines = PHASE_LINES.map((m) => `${m} ${sec(med(r.sidecar, (x) => x.logAt[m]))}`).join(', ');
  const phases = Object.entries(r.phases.ms).map(([k, v]) => `${k} ${sec(v)}`).join(', ');
  return [
    `serve start-up on ${r.services.toLocaleString('en-US')} services x ${r.endpoints} endpoints (${r.files.toLocaleString('en-US')} rule files), \`node bin/meshpilot.js serve\`, ${r.runs} cold start(s) per client, each client the first of its own serve process; CPU and RSS of serve when the row's moment came:`,
    line(head),
    ...rows.map(line),
    `  the sidecar got ${counts(r.sidecar[0])}; peak RSS (VmHWM) by then ${mb(med(r.sidecar, (x) => x.peakRss))}; the gRPC client got ${counts(r.grpc[0])}`,
    `  serve's own log lines (median after spawn, sidecar runs): ${logLines}`,
    `  phases, the build's functions one by one in one process (bench/serve-phases.ts): ${phases}`,
    `  target: spawn -> first sidecar has everything <= ${r.targetMs / 1000} s: ${sidecarMs <= r.targetMs ? 'met' : 'NOT met'}`,
  ].join('\n');
}
