// npm run bench [-- options]
//
// Starts the xDS server under test in one child process (bench/server.ts) and N simulated proxyless
// gRPC clients in another (bench/proxies.ts), over real gRPC on 127.0.0.1 with OS-chosen ports, and
// prints for each N: connect + full sync time; rule change (one VirtualService's weights) -> ACK
// latency; one endpoint change -> ACK latency; endpoint churn throughput and latency; server CPU per
// proxy update; server memory per connected proxy. Each figure is measured for meshpilot and, in the
// same run, for a lower-bound server on grpc-js that encodes each response once and writes the same
// bytes to every stream that needs it (see bench/server.ts), and printed with the ratio to it.
// Everything stops by itself; an overall timeout bounds the run. BENCHMARKS.md explains the figures.
//
// Options:
//   --proxies 1000,5000,10000   N values (default all three; --quick: 1000)
//   --quick                     smoke run: fewer rule changes, short churn
//   --modes lowerbound,meshpilot,gocp
//                               gocp: go-control-plane's snapshot cache (bench/peers/gocp), built with
//                               the `go` on PATH; left out with a note when Go is absent or the build fails
//   --services 1000 --endpoints 10 --scope 50 --per-channel 100 --label-sets 1
//   --rule-changes 5 --churn-seconds 10 --tick-ms 200
//   --churn-rate 50             services whose endpoints change per second during churn; each change
//                               reaches about N x (scope-1)/(services-1) proxies (49 per 1000 proxies)
//   --timeout-min 30            overall timeout (60 with the gocp mode)
//   --sync-timeout-s 120        per N: give up waiting for full sync (prints where it stalled)
//   --cpu-prof DIR              write a V8 CPU profile of the server child per phase into DIR
//                               (summarise with: node --import tsx bench/profile-top.ts FILE)
//   --profile-clients           with --cpu-prof, profile the simulated proxies' process too
//   --client h2|grpc-js         the proxies' gRPC client: lean node:http2 (default) or @grpc/grpc-js
//   --json FILE                 also write all results as JSON
//   --only proxies              only the proxyless gRPC scenarios above (which otherwise run first)
//   --only endpoint-path        only one endpoint change's CPU in-process: compile vs endpoint update
//                               (bench/endpoint-path.ts), which otherwise runs after the proxies
//   --only webhook              only the admission webhook latency (bench/webhook.ts), which
//                               otherwise runs at the end: --webhook-rate 200 --webhook-seconds 10
//   --only startup              only the CLI's whole-process timings and serve's cold start on 1,000
//                               services (bench/startup.ts, bench/serve-startup.ts), which otherwise
//                               run last: --startup-runs 10 [--startup-dev: also via tsx]; serve 3
//                               cold starts per first client (--quick: 1)
//   --only validate             only `meshpilot validate` vs serve's load (bench/validate.ts), which
//                               otherwise runs after those: --validate-services 1000,5000 (--quick: 1000)
//                               --validate-cli bin|tsx|"<command>" (default bin: the build)
//   --only dashboard            only what an open dashboard costs: one snapshot of the 1,000-service mesh
//                               (bench/dashboard.ts), first and later, against encoding it
//   --only sidecar              only one Envoy sidecar's config size and translate time with and
//                               without a Sidecar naming 5 dependencies (bench/sidecar-scope.ts),
//                               which otherwise runs last (--quick: 300 services)
//   --only envoy                only the Envoy sidecar scenarios (bench/envoy-fleet.ts), which otherwise
//                               run after the proxyless ones: --envoy-sidecars 1000,5000 (scoped
//                               and mixed) --envoy-full-sidecars 1000 (full mesh; 5000 on request)
//                               --envoy-scenarios full,scoped,mixed --envoy-xds delta|sotw
//                               --envoy-services 1000 --envoy-changes 3 (--quick: 200 sidecars,
//                               300 services, full and mixed, 2 changes)
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PORT_BASE, replaceFile, serviceEntryYaml, virtualServiceYaml, writeMesh } from './mesh.ts';
import { formatWebhookBench, runWebhookBench } from './webhook.ts';
import { formatStartupBench, runStartupBench } from './startup.ts';
import { formatValidateBench, runValidateBench } from './validate.ts';
import { formatSidecarBench, runSidecarBench } from './sidecar-scope.ts';
import { formatDashboardBench, runDashboardBench } from './dashboard.ts';
import { formatEndpointPath, runEndpointPath } from './endpoint-path.ts';
import { buildGoPeer } from './peers/gocp.ts';
import { formatEnvoyFleet, runEnvoyFleet, type FleetKind } from './envoy-fleet.ts';

const here = dirname(fileURLToPath(import.meta.url));
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- options

function parseArgs(argv: string[]) {
  const o: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const [k, v] = a.slice(2).split('=', 2) as [string, string | undefined];
    if (v !== undefined) o[k] = v;
    else if (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--')) o[k] = argv[++i]!;
    else o[k] = 'true';
  }
  const quick = o.quick === 'true';
  const num = (k: string, d: number) => (o[k] !== undefined ? Number(o[k]) : d);
  const modes = (o.modes ?? 'lowerbound,meshpilot,gocp').split(',') as Mode[];
  const opts = {
    quick,
    proxies: (o.proxies ?? (quick ? '1000' : '1000,5000,10000')).split(',').map(Number),
    modes,
    /** The built Go peer (gocp mode), set by main. */
    goPeer: undefined as string | undefined,
    services: num('services', 1000),
    endpoints: num('endpoints', 10),
    scope: num('scope', 50),
    perChannel: num('per-channel', 100),
    labelSets: num('label-sets', 1),
    ruleChanges: num('rule-changes', quick ? 2 : 5),
    churnSeconds: num('churn-seconds', quick ? 3 : 10),
    tickMs: num('tick-ms', 200),
    churnRate: num('churn-rate', 50),
    // go-control-plane's churn at 10k wakes all 10k EDS watches per tick: allow for it.
    timeoutMin: num('timeout-min', modes.includes('gocp') ? 60 : 30),
    syncTimeoutS: num('sync-timeout-s', 120),
    cpuProf: o['cpu-prof'],
    profileClients: o['profile-clients'] === 'true',
    client: (o.client ?? 'h2') as 'h2' | 'grpc-js',
    json: o.json,
    only: o.only,
    webhookRate: num('webhook-rate', 200),
    webhookSeconds: num('webhook-seconds', quick ? 5 : 10),
    startupRuns: num('startup-runs', quick ? 5 : 10),
    startupDev: o['startup-dev'] === 'true',
    validateServices: (o['validate-services'] ?? (quick ? '1000' : '1000,5000')).split(',').map(Number),
    validateCli: o['validate-cli'] ?? 'bin',
    // --quick: 200 sidecars on 300 services (a full-mesh sidecar then holds ~0.9 MiB, not ~2.2),
    // full mesh and mixed only, so the Envoy part adds about a minute.
    envoySidecars: (o['envoy-sidecars'] ?? (quick ? '200' : '1000,5000')).split(',').map(Number),
    // Full-mesh sidecars at 5k move ~15 GB on 2 cores and buffer GBs in grpc-js: asked for, not default.
    envoyFullSidecars: (o['envoy-full-sidecars'] ?? (quick ? '200' : '1000')).split(',').map(Number),
    envoyScenarios: (o['envoy-scenarios'] ?? (quick ? 'full,mixed' : 'full,scoped,mixed')).split(',') as FleetKind[],
    envoyXds: (o['envoy-xds'] ?? 'delta') as 'delta' | 'sotw',
    envoyServices: num('envoy-services', quick ? 300 : 1000),
    envoyChanges: num('envoy-changes', quick ? 2 : 3),
  };
  for (const n of opts.proxies) if (!Number.isInteger(n) || n <= 0) throw new Error(`bad --proxies value ${n}`);
  return opts;
}

type Mode = 'meshpilot' | 'lowerbound' | 'gocp';
type Opts = ReturnType<typeof parseArgs>;

/**
 * Which control-plane code ran: the git commit, and a hash of every file under control-plane/ as it
 * is on disk (the working tree may hold uncommitted changes; a server child loads it when it starts).
 */
function codeVersion(): string {
  const root = join(here, '..');
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'control-plane'], { cwd: root, encoding: 'utf8' }).trim();
    if (dirty) commit += '+uncommitted';
  } catch {
    // not a git checkout
  }
  const h = createHash('sha256');
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const f = join(d, e.name);
      if (e.isDirectory()) walk(f);
      else {
        h.update(f.slice(root.length));
        h.update(readFileSync(f));
      }
    }
  };
  walk(join(root, 'control-plane'));
  return `${commit} control-plane tree ${h.digest('hex').slice(0, 12)}`;
}

// ---------------------------------------------------------------- children

class Child {
  private proc: ChildProcess;
  private next = 1;
  private waiting = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  readonly ready: Promise<void>;
  exited = false;

  constructor(readonly name: string, file: string, execArgv: string[]) {
    this.proc = fork(join(here, file), [], { execArgv: ['--import', 'tsx', ...execArgv], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    let ready!: () => void;
    this.ready = new Promise((r) => (ready = r));
    this.proc.on('message', (m: { id: number; ok: boolean; error?: string }) => {
      if (m.id === 0) return ready();
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (m.ok) w.resolve(m);
      else w.reject(new Error(`${name}: ${m.error}`));
    });
    this.proc.on('exit', (code, signal) => {
      this.exited = true;
      for (const w of this.waiting.values()) w.reject(new Error(`${name} exited (${code ?? signal})`));
      this.waiting.clear();
    });
  }

  call<T = any>(cmd: string, body: Record<string, unknown> = {}, timeoutMs = 60_000): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`${this.name} has exited`));
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`${this.name}: ${cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (v) => {
          clearTimeout(t);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
      this.proc.send({ id, cmd, ...body });
    });
  }

  /** Asks the child to stop, then kills it if it has not exited within a few seconds. */
  async stop(cmd: string): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((r) => this.proc.once('exit', () => r()));
    await this.call(cmd, {}, 10_000).catch(() => {});
    const t = setTimeout(() => this.kill(), 5000);
    await exited;
    clearTimeout(t);
  }

  kill(): void {
    if (!this.exited) this.proc.kill('SIGKILL');
  }
}

const live = new Set<Child>();
function start(name: string, file: string, execArgv: string[]): Child {
  const c = new Child(name, file, execArgv);
  live.add(c);
  return c;
}

// ---------------------------------------------------------------- scenario

interface CpuStats {
  cpu: { user: number; system: number };
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  t: number;
  streams: number;
}

const cpuMs = (a: CpuStats, b: CpuStats) => (b.cpu.user + b.cpu.system - a.cpu.user - a.cpu.system) / 1000;

function pct(sorted: number[], q: number): number | undefined {
  if (!sorted.length) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

interface SingleChanges {
  changes: Array<{ expected: number; acked: number; complete: boolean; p50?: number; max?: number; applyAfterWriteMs?: number; applyMs?: number; serverCpuMs: number }>;
  p50?: number;
  p99?: number;
  /** meshpilot only: latency counted from when the compiled model reached the cache (after debounce and compile). */
  fromApplyP50?: number;
  fromApplyP99?: number;
  samples: number;
  cpuPerUpdateUs?: number;
}

export interface ScenarioResult {
  mode: Mode;
  n: number;
  /** 1-minute load average of the machine when the scenario started and ended (other work competes for the 2 cores). */
  load?: [number, number];
  /** git commit and control-plane/ content hash when the server child started. */
  code?: string;
  startMs?: number;
  warmMs?: number;
  sync?: any;
  syncServerCpuMs?: number;
  memory?: { idleRss: number; connectedRss: number; perProxyBytes: number; heapPerProxyBytes: number; idleHeap: number; connectedHeap: number };
  rule?: SingleChanges;
  endpoint?: SingleChanges;
  churn?: {
    servicesPerTick: number;
    ticks: number;
    changes: number;
    offeredPerSec: number;
    complete: boolean;
    pending: number;
    deliveries: number;
    edsResponses: number;
    changesReceived: number;
    throughputPerSec: number;
    edsResponsesPerSec: number;
    windowMs: number;
    latency: { n: number; p50?: number; p90?: number; p99?: number; max?: number };
    serverCpuMs: number;
    cpuPerUpdateUs: number;
    cpuPerEdsResponseUs: number;
    applies?: number;
    /** meshpilot: [start, end] of each model applied, ms after the first churn write. */
    applyTimes?: Array<[number, number]>;
    clientCpuMs: number;
  };
  error?: string;
}

async function scenario(mode: Mode, n: number, o: Opts, log: (s: string) => void): Promise<ScenarioResult> {
  const res: ScenarioResult = { mode, n };
  const load0 = loadavg()[0]!;
  const dir = mkdtempSync(join(tmpdir(), 'meshpilot-bench-'));
  let server: Child | undefined;
  let proxies: Child | undefined;
  try {
    writeMesh(dir, { services: o.services, endpoints: o.endpoints });
    res.code = codeVersion();
    server = start(`server(${mode})`, 'server.ts', ['--expose-gc', '--max-old-space-size=8192']);
    const srv = server;
    // --cpu-prof: one V8 CPU profile of the server child per phase.
    let prx: Child | undefined;
    const profStart = async () => {
      if (!o.cpuProf) return;
      await srv.call('prof-start');
      if (o.profileClients) await prx?.call('prof-start');
    };
    const profStop = async (phase: string) => {
      if (!o.cpuProf) return;
      await srv.call('prof-stop', { file: join(o.cpuProf, `${mode}-${n}-${phase}.cpuprofile`) });
      if (o.profileClients) await prx?.call('prof-stop', { file: join(o.cpuProf, `${mode}-${n}-${phase}.clients.cpuprofile`) });
    };
    await server.ready;
    const started = await server.call('start', { mode, configDir: dir, labelSets: o.labelSets, goPeer: o.goPeer }, 300_000);
    res.startMs = started.startMs;
    res.warmMs = started.warmMs;
    log(`  ${mode}: listening on ${started.address} (start ${fmtMs(started.startMs)}, cache warm ${fmtMs(started.warmMs)})`);
    const idle: CpuStats = await server.call('stats', { gc: true });

    /** Runs `count` changes one at a time; each resolves when every affected proxy ACKed it. */
    const singleChanges = async (what: string, count: number, change: (i: number) => Promise<{ t0: number; expected: number }>): Promise<SingleChanges> => {
      const out: SingleChanges = { changes: [], samples: 0 };
      const all: number[] = [];
      const fromApply: number[] = [];
      let cpu = 0;
      let updates = 0;
      for (let i = 0; i < count; i++) {
        const s0: CpuStats = await srv.call('stats');
        const { t0, expected } = await change(i);
        const r = await prx!.call('await-armed', { t0, timeoutMs: 60_000 }, 120_000);
        const s1: CpuStats = await srv.call('stats');
        const lat: number[] = r.latencies;
        all.push(...lat);
        const c: SingleChanges['changes'][number] = { expected, acked: r.acked, complete: r.complete, p50: pct(lat, 0.5), max: lat[lat.length - 1], serverCpuMs: cpuMs(s0, s1) };
        if (mode === 'meshpilot') {
          const ap: Array<[number, number]> = (await srv.call('applies')).applies;
          const first = ap.find(([s]) => s >= t0);
          if (first) {
            c.applyAfterWriteMs = first[0] - t0;
            c.applyMs = first[1] - first[0];
            for (const x of lat) fromApply.push(x - c.applyAfterWriteMs);
          }
        }
        cpu += c.serverCpuMs;
        updates += r.acked;
        out.changes.push(c);
        log(
          `  ${mode}: ${what} ${i + 1}: ${r.acked}/${expected} ACKed, p50 ${fmtMs(c.p50)}, max ${fmtMs(c.max)}` +
            `${c.applyAfterWriteMs !== undefined ? ` (compiled model reached the cache ${fmtMs(c.applyAfterWriteMs)} after the write; setModel+pushes took ${fmtMs(c.applyMs)})` : ''}, server CPU ${fmtMs(c.serverCpuMs)}`,
        );
        await sleep(300);
      }
      all.sort((a, b) => a - b);
      fromApply.sort((a, b) => a - b);
      out.samples = all.length;
      out.p50 = pct(all, 0.5);
      out.p99 = pct(all, 0.99);
      if (fromApply.length) {
        out.fromApplyP50 = pct(fromApply, 0.5);
        out.fromApplyP99 = pct(fromApply, 0.99);
      }
      out.cpuPerUpdateUs = updates ? (cpu * 1000) / updates : undefined;
      return out;
    };

    proxies = start('proxies', 'proxies.ts', ['--max-old-space-size=8192']);
    prx = proxies;
    await proxies.ready;
    const before: CpuStats = await server.call('stats');
    await profStart();
    const sync = await proxies.call(
      'connect',
      { address: started.address, n, scope: o.scope, services: o.services, perChannel: o.perChannel, labelSets: o.labelSets, timeoutMs: o.syncTimeoutS * 1000, client: o.client, keyByNames: mode === 'gocp' },
      o.syncTimeoutS * 1000 + 60_000,
    );
    const after: CpuStats = await server.call('stats');
    await profStop('sync');
    res.sync = sync;
    res.syncServerCpuMs = cpuMs(before, after);
    log(`  ${mode}: ${sync.synced}/${n} synced in ${fmtMs(sync.allSyncedMs)} (server CPU ${fmtMs(res.syncServerCpuMs)}, client CPU ${fmtMs((sync.clientCpu.user + sync.clientCpu.system) / 1000)})`);
    if (sync.timedOut) {
      res.error = `sync stalled: ${sync.synced}/${n} synced after ${o.syncTimeoutS} s; phases [none, LDS, RDS, CDS, EDS-partial, synced] = ${JSON.stringify(sync.phases)}; stream errors ${sync.streamErrors} ${sync.errors.join(' | ')}`;
      log(`  ${mode}: ${res.error}`);
      return res;
    }
    await sleep(500);
    const connected: CpuStats = await server.call('stats', { gc: true });
    res.memory = {
      idleRss: idle.rss,
      connectedRss: connected.rss,
      perProxyBytes: (connected.rss - idle.rss) / n,
      heapPerProxyBytes: (connected.heapUsed + connected.external - idle.heapUsed - idle.external) / n,
      idleHeap: idle.heapUsed,
      connectedHeap: connected.heapUsed,
    };
    log(`  ${mode}: RSS idle ${fmtMB(idle.rss)}, with ${connected.streams} streams ${fmtMB(connected.rss)} -> ${fmtKB(res.memory.perProxyBytes)}/proxy`);

    // ---- single changes to service 0 (used by every proxy), timed per proxy from write to ACK:
    //      a VirtualService weight change (RDS), then an endpoint change (EDS)
    if (mode === 'meshpilot') await server.call('applies');
    await profStart();
    res.rule = await singleChanges('rule', o.ruleChanges, async (i) => {
      const w1 = 89 - i;
      const armed = await proxies!.call('arm', { kind: 'route', service: 0, w1 });
      const t0 = now();
      if (mode === 'meshpilot') replaceFile(join(dir, 'vs-0000.yaml'), virtualServiceYaml(0, w1));
      else await server!.call('route-change', { service: 0, w1 });
      return { t0, expected: armed.expected };
    });
    await profStop('rule');
    await profStart();
    res.endpoint = await singleChanges('endpoint change', o.ruleChanges, async (i) => {
      const port = PORT_BASE + 1 + i;
      const armed = await proxies!.call('arm', { kind: 'eds', service: 0, port });
      const t0 = now();
      if (mode === 'meshpilot') replaceFile(join(dir, 'se-0000.yaml'), serviceEntryYaml(0, o.endpoints, port - PORT_BASE));
      else await server!.call('endpoint-change', { changes: [{ service: 0, port }] });
      return { t0, expected: armed.expected };
    });
    await profStop('endpoint');

    // ---- endpoint churn
    const usersPerService = (n * (o.scope - 1)) / (o.services - 1);
    const perTick = Math.max(1, Math.min(o.services - 1, Math.round((o.churnRate * o.tickMs) / 1000)));
    const ticks = Math.max(1, Math.round((o.churnSeconds * 1000) / o.tickMs));
    const gen = new Map<number, number>();
    let cursor = 0;
    await proxies.call('churn-start');
    await sleep(200);
    const c0: CpuStats = await server.call('stats');
    if (mode === 'meshpilot') await server.call('applies');
    await profStart();
    const tStart = now();
    let changes = 0;
    for (let k = 0; k < ticks; k++) {
      const due = tStart + k * o.tickMs;
      const wait = due - now();
      if (wait > 0) await sleep(wait);
      const batch: Array<{ service: number; port: number; t: number }> = [];
      const t = now();
      for (let j = 0; j < perTick; j++) {
        const svc = 1 + (cursor++ % (o.services - 1)); // service 0 is left to the rule changes
        const g = (gen.get(svc) ?? 0) + 1;
        gen.set(svc, g);
        batch.push({ service: svc, port: PORT_BASE + g, t });
      }
      if (mode === 'meshpilot') {
        for (const b of batch) replaceFile(join(dir, `se-${String(b.service).padStart(4, '0')}.yaml`), serviceEntryYaml(b.service, o.endpoints, b.port - PORT_BASE));
      } else {
        await server.call('endpoint-change', { changes: batch });
      }
      changes += batch.length;
      // IPC is ordered: the proxies process has every change time before it answers churn-await.
      void proxies.call('churn-changes', { changes: batch }).catch(() => {});
    }
    const finals = [...gen].map(([svc, g]) => [svc, PORT_BASE + g]);
    const ch = await proxies.call('churn-await', { finals, timeoutMs: 120_000 }, 200_000);
    const c1: CpuStats = await server.call('stats');
    await profStop('churn');
    const windowMs = ch.lastAck - tStart;
    const serverCpuMs = cpuMs(c0, c1);
    res.churn = {
      servicesPerTick: perTick,
      ticks,
      changes,
      offeredPerSec: (perTick * usersPerService * 1000) / o.tickMs,
      complete: ch.complete,
      pending: ch.pending,
      deliveries: ch.deliveries,
      edsResponses: ch.edsResponses,
      changesReceived: ch.changesReceived,
      windowMs,
      throughputPerSec: (ch.deliveries * 1000) / windowMs,
      edsResponsesPerSec: (ch.edsResponses * 1000) / windowMs,
      latency: ch.latency,
      serverCpuMs,
      cpuPerUpdateUs: (serverCpuMs * 1000) / ch.deliveries,
      cpuPerEdsResponseUs: (serverCpuMs * 1000) / ch.edsResponses,
      clientCpuMs: ch.clientCpuMs,
    };
    if (mode === 'meshpilot') {
      const ap: Array<[number, number]> = (await server.call('applies')).applies;
      res.churn.applies = ap.length;
      res.churn.applyTimes = ap.map(([a, b]) => [Math.round(a - tStart), Math.round(b - tStart)]);
    }
    log(
      `  ${mode}: churn ${changes} service changes in ${ticks} ticks -> ${ch.deliveries} proxy-updates (${ch.edsResponses} EDS responses) in ${fmtMs(windowMs)}: ` +
        `${Math.round(res.churn.throughputPerSec)}/s, latency p50 ${fmtMs(ch.latency.p50)} p99 ${fmtMs(ch.latency.p99)}, ` +
        `server CPU ${fmtMs(serverCpuMs)} = ${res.churn.cpuPerUpdateUs.toFixed(1)} us/update, client CPU ${fmtMs(ch.clientCpuMs)}` +
        `${res.churn.applyTimes ? `, models applied at [start,end] ms ${JSON.stringify(res.churn.applyTimes)}` : ''}${ch.complete ? '' : `, INCOMPLETE (${ch.pending} pending)`}`,
    );
    return res;
  } catch (e) {
    res.error = e instanceof Error ? e.message : String(e);
    log(`  ${mode}: ERROR ${res.error}`);
    return res;
  } finally {
    res.load = [Number(load0.toFixed(2)), Number(loadavg()[0]!.toFixed(2))];
    await proxies?.stop('close');
    await server?.stop('stop');
    if (proxies) live.delete(proxies);
    if (server) live.delete(server);
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- report

const fmtMs = (ms: number | undefined) => (ms === undefined || !Number.isFinite(ms) ? '-' : ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 1 : 0)} ms`);
const fmtMB = (b: number) => `${(b / 1048576).toFixed(0)} MB`;
const fmtKB = (b: number | undefined) => (b === undefined ? '-' : `${(b / 1024).toFixed(1)} KB`);
const fmtRate = (r: number | undefined) => (r === undefined || !Number.isFinite(r) ? '-' : `${Math.round(r)}/s`);
const fmtUs = (u: number | undefined) => (u === undefined || !Number.isFinite(u) ? '-' : `${u.toFixed(1)} us`);

function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b <= 0) return '-';
  return `${(a / b).toFixed(a / b >= 10 ? 0 : 1)}x`;
}

function table(n: number, mp: ScenarioResult | undefined, lb: ScenarioResult | undefined, o: Opts, go?: ScenarioResult): string {
  const rows: string[][] = [];
  const row = (name: string, f: (r: ScenarioResult) => number | undefined, fmt: (v: number | undefined) => string, target: string, inverse = false) => {
    const a = mp ? f(mp) : undefined;
    const b = lb ? f(lb) : undefined;
    const g = go ? f(go) : undefined;
    const goCols = go ? [fmt(g), inverse ? ratio(b, g) : ratio(g, b)] : [];
    rows.push([name, fmt(a), fmt(b), inverse ? ratio(b, a) : ratio(a, b), ...goCols, target]);
  };
  const t10k = n >= 10_000;
  row('connect + full sync, all N', (r) => r.sync?.allSyncedMs, fmtMs, t10k ? '<= 20 s at 10k' : '');
  row('  server CPU during sync', (r) => r.syncServerCpuMs, fmtMs, '');
  row('rule change -> ACK p50', (r) => r.rule?.p50, fmtMs, '');
  row('rule change -> ACK p99', (r) => r.rule?.p99, fmtMs, n <= 1000 ? '<= 250 ms (after debounce)' : t10k ? '<= 2 s (after debounce)' : '');
  row('  p99 minus 100 ms debounce', (r) => (r.rule?.p99 === undefined ? undefined : r.mode === 'meshpilot' ? r.rule.p99 - 100 : r.rule.p99), fmtMs, '');
  row('  p99 from model in cache', (r) => (r.mode === 'meshpilot' ? r.rule?.fromApplyP99 : r.rule?.p99), fmtMs, '');
  row('  server CPU per RDS update', (r) => r.rule?.cpuPerUpdateUs, fmtUs, '');
  row('one endpoint change -> ACK p50', (r) => r.endpoint?.p50, fmtMs, '');
  row('one endpoint change -> ACK p99', (r) => r.endpoint?.p99, fmtMs, '');
  row('  server CPU per EDS update', (r) => r.endpoint?.cpuPerUpdateUs, fmtUs, '<= 2x lower bound');
  row('endpoint churn, proxy-updates/s', (r) => r.churn?.throughputPerSec, fmtRate, '>= 10,000/s', true);
  row('  EDS responses/s', (r) => r.churn?.edsResponsesPerSec, fmtRate, '', true);
  row('  churn latency p50', (r) => r.churn?.latency.p50, fmtMs, '');
  row('  churn latency p99', (r) => r.churn?.latency.p99, fmtMs, '<= 500 ms');
  row('  server CPU per proxy-update', (r) => r.churn?.cpuPerUpdateUs, fmtUs, '');
  row('  server CPU per EDS response', (r) => r.churn?.cpuPerEdsResponseUs, fmtUs, '');
  row('server memory per connected proxy', (r) => r.memory?.perProxyBytes, fmtKB, '<= 100 KB');
  row('  JS heap + external per proxy', (r) => r.memory?.heapPerProxyBytes, fmtKB, '');
  const w = go ? [36, 14, 14, 8, 16, 8, 28] : [36, 14, 14, 8, 28];
  const line = (c: string[]) => c.map((x, i) => x.padEnd(w[i]!)).join(' ').trimEnd();
  const out = [
    `N = ${n} proxies (${o.services} services x ${o.endpoints} endpoints, ${o.scope} services per proxy, ${o.perChannel} streams per connection, ${o.labelSets} label set(s))`,
    line(['metric', 'meshpilot', 'lower bound', 'ratio', ...(go ? ['go-control-plane', 'ratio'] : []), 'target']),
    ...rows.map(line),
  ];
  for (const r of [mp, lb, go]) if (r?.error) out.push(`  ${r.mode}: ${r.error}`);
  if (mp?.code) out.push(`  meshpilot code: ${mp.code}`);
  out.push(
    `  machine load average (1 min) at start/end: meshpilot ${mp?.load?.join('/') ?? '-'}, lower bound ${lb?.load?.join('/') ?? '-'}` +
      `${go ? `, go-control-plane ${go.load?.join('/') ?? '-'}` : ''} (2 cores; above ~2 means other processes competed)`,
  );
  const ch = mp?.churn ?? lb?.churn;
  if (ch) out.push(`  churn: ${ch.servicesPerTick} services' endpoints changed every ${o.tickMs} ms for ${o.churnSeconds} s, offering ${fmtRate(ch.offeredPerSec)} proxy-updates`);
  if (mp?.churn) out.push(`  meshpilot applied ${mp.churn.applies} model(s) during churn${mp.churn.complete ? '' : `; ${mp.churn.pending} (proxy, service) pairs never got the last change`}`);
  out.push(`  (ratio: ${go ? 'meshpilot or go-control-plane' : 'meshpilot'} / lower bound; for throughput: lower bound / it, so >1x is always worse)`);
  if (go) out.push('  go-control-plane: its snapshot cache and ADS server (bench/peers/gocp) serving the lower bound\'s resources; CPU and memory are the Go process\'s');
  return out.join('\n');
}

// ---------------------------------------------------------------- main

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const deadline = setTimeout(() => {
    log(`overall timeout (${o.timeoutMin} min): stopping`);
    for (const c of live) c.kill();
    process.exit(2);
  }, o.timeoutMin * 60_000);
  deadline.unref();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      for (const c of live) c.kill();
      process.exit(130);
    });
  }
  if (o.cpuProf) mkdirSync(o.cpuProf, { recursive: true });
  const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
  console.log(`meshpilot benchmark: ${machine}`);
  console.log(`command: npm run bench -- ${process.argv.slice(2).join(' ')}`.trimEnd());
  const results: ScenarioResult[] = [];
  if ((o.only === undefined || o.only === 'proxies' || o.only === 'envoy') && o.modes.includes('gocp')) {
    const built = await buildGoPeer(log);
    if ('binary' in built) o.goPeer = built.binary;
    else {
      console.log(built.skipped);
      o.modes = o.modes.filter((m) => m !== 'gocp');
    }
  }
  // --only picks one part; without it every part runs, the proxy scenarios first.
  const part = (name: string) => o.only === undefined || o.only === name;
  for (const n of part('proxies') ? o.proxies : []) {
    log(`N = ${n}`);
    const byMode: Partial<Record<Mode, ScenarioResult>> = {};
    for (const mode of o.modes) {
      const r = await scenario(mode, n, o, log);
      byMode[mode] = r;
      results.push(r);
    }
    console.log(`\n${table(n, byMode.meshpilot, byMode.lowerbound, o, byMode.gocp)}`);
  }
  const endpointPath = part('endpoint-path') ? await runEndpointPath({ services: o.quick ? 300 : o.services, endpoints: o.endpoints, changes: o.quick ? 30 : 100 }) : undefined;
  if (endpointPath) console.log(`\n${formatEndpointPath(endpointPath)}`);
  const envoy = part('envoy')
    ? await runEnvoyFleet(
        { sizes: o.envoySidecars, fullSizes: o.envoyFullSidecars, kinds: o.envoyScenarios, services: o.envoyServices, endpoints: o.endpoints, modes: o.modes, xds: o.envoyXds, changes: o.envoyChanges, syncTimeoutS: o.syncTimeoutS * 2, sidecarResources: 10, scope: o.scope, cpuProf: o.cpuProf, goPeer: o.goPeer },
        (name, file, execArgv) => {
          const c = start(name, file, execArgv);
          return { ready: c.ready, call: (cmd, body, t) => c.call(cmd, body, t), stop: (cmd) => c.stop(cmd).finally(() => live.delete(c)) };
        },
        log,
        (r) => console.log(`\n${formatEnvoyFleet([r])}`),
      )
    : undefined;
  const webhook = part('webhook') ? await runWebhookBench({ rate: o.webhookRate, seconds: o.webhookSeconds, warmupSeconds: 2 }, log) : undefined;
  if (webhook) console.log(`\n${formatWebhookBench(webhook)}`);
  const startup = part('startup') ? await runStartupBench({ runs: o.startupRuns, dev: o.startupDev, serve: { runs: o.quick ? 1 : 3, services: 1000, endpoints: o.endpoints, scope: o.scope } }, log) : undefined;
  if (startup) console.log(`\n${formatStartupBench(startup)}`);
  const validate = part('validate') ? await runValidateBench({ services: o.validateServices, endpoints: 10, runs: 1, cli: o.validateCli }, log) : undefined;
  if (validate) console.log(`\n${formatValidateBench(validate)}`);
  const sidecar = part('sidecar') ? await runSidecarBench({ services: o.quick ? 300 : o.services, endpoints: o.endpoints, runs: o.quick ? 2 : 5 }, log) : undefined;
  if (sidecar) console.log(`\n${formatSidecarBench(sidecar)}`);
  const dashboard = part('dashboard') ? await runDashboardBench({ services: o.quick ? 300 : o.services, endpoints: o.endpoints, runs: o.quick ? 5 : 15 }) : undefined;
  if (dashboard) console.log(`\n${formatDashboardBench(dashboard)}`);
  if (o.json) writeFileSync(o.json, JSON.stringify({ machine, argv: process.argv.slice(2), results, endpointPath, envoy, webhook, startup, validate, sidecar, dashboard }, null, 2));
  clearTimeout(deadline);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    for (const c of live) c.kill();
    process.exit(1);
  },
);
