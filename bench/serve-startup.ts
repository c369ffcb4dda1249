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
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ClientResult, envoySidecar, grpcClient } from './startup-clients.ts';
import { endpointAddress, listenerName, proxyScope } from './mesh.ts';

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
    timer = setTimeout(() => reject(new Error(`serve startup (${o.client}): nothing after ${timeoutMs / 1000} s at stage "${stage}"${clientProgress ? ` (client holds ${clientProgress()})` : ''}; log lines seen: ${Object.keys(logAt).join(' | ') || 'none'}`)), timeoutMs);
  });
  const died = exited.then((code) => {
    throw new Error(`serve exited (${code}) at stage "${stage}": ${stderr.trim().split('\n').slice(-3).join(' / ')}`);
  });
  const race = <T>(p: Promise<T>) => Promise.race([p, deadline, died]);
  const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
  let closeClient = () => {};
  try {
    stage = 'waiting for the admin address';
    await race(new Promise<void>((r) => {
      wake = () => addresses.admin && addresses.xds && r();
      wake();
    }));
    stage = 'polling /readyz';
    await race((async () => {
      while ((await readyz(addresses.admin!)) !== 200) await sleep(10);
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
    clearTimeout(timer);
    died.catch(() => {});
    closeClient();
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  }
}
