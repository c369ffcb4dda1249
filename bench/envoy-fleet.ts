// npm run bench -- --only envoy   (also part of the full run; --quick runs a reduced form)
//
// Envoy sidecars against each server mode (meshpilot, the lower bound, and any other mode the server
// child knows), in three scenarios:
//   full    every sidecar sees the whole mesh (no Sidecar resource): ~2.2 MiB of config each at
//           1,000 services (3,000 clusters and ClusterLoadAssignments, a route config of 1,000 vhosts)
//   scoped  10 Sidecar resources (networking.istio.io/v1), each selecting one label value and naming
//           service 0 plus a window of 49 services; sidecars spread over the 10 label values
//   mixed   scoped sidecars and proxyless gRPC clients (bench/proxies.ts) on one server at once
// For each: connect + full sync, one rule change (service 0's weights, read back from the sidecar's
// route config) and one endpoint change (service 0's endpoint ports: its ClusterLoadAssignments) ->
// ACK latency, the bytes and resources each sidecar received for each, server CPU per proxy update,
// server memory per connected proxy, and the bytes a reconnecting sidecar receives.
// The server child (bench/server.ts) gets the sidecar groups in its start message (`envoyGroups`),
// the simulated sidecars run in bench/envoy-proxies.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EnvoyGroup } from './lowerbound-delta.ts';
import { PORT_BASE, SCOPE_LABEL, replaceFile, serviceEntryYaml, virtualServiceYaml, writeMesh, writeSidecars } from './mesh.ts';

/** A child process as bench/run.ts runs them (killed at the end or on the overall timeout). */
export interface FleetChild {
  ready: Promise<void>;
  call<T = any>(cmd: string, body?: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  stop(cmd: string): Promise<void>;
}
export type Spawn = (name: string, file: string, execArgv: string[]) => FleetChild;

export type FleetKind = 'full' | 'scoped' | 'mixed';

export interface FleetOptions {
  /** Sidecar counts for the scoped and mixed kinds (mixed: the fleet's size, half sidecars, half gRPC clients). */
  sizes: number[];
  /** Sidecar counts for the full-mesh kind (each ~3 MiB of responses at 1,000 services). */
  fullSizes: number[];
  kinds: FleetKind[];
  services: number;
  endpoints: number;
  modes: string[];
  xds: 'delta' | 'sotw';
  changes: number;
  syncTimeoutS: number;
  /** Scoped sidecars: how many Sidecar resources, and how many services each names. */
  sidecarResources: number;
  scope: number;
  /** A V8 CPU profile of the server child per phase (sync, rule, endpoint) into this directory. */
  cpuProf?: string;
  /** The built Go peer, for the gocp mode (bench/peers/gocp.ts). */
  goPeer?: string;
}

export interface FleetScenario {
  kind: FleetKind;
  sidecars: number;
  grpc: number;
  services: number;
  endpoints: number;
  xds: 'delta' | 'sotw';
  groups: number;
}

interface Changes {
  complete: boolean;
  samples: number;
  p50?: number;
  p99?: number;
  /** Mean per change, per sidecar reached: bytes and resources per type (CDS, EDS, LDS, RDS). */
  bytesPerSidecar: number[];
  /** Of those, the resources' own bytes (Any values), without the responses' envelopes. */
  payloadPerSidecar: number[];
  resourcesPerSidecar: number[];
  maxBytesPerSidecar: number;
  cpuPerUpdateUs?: number;
  /** Longest event-loop stall of the server while the changes were delivered. */
  loopMaxMs?: number;
  grpc?: { p50?: number; p99?: number; samples: number };
}

export interface FleetModeResult {
  mode: string;
  load: [number, number];
  startMs?: number;
  warmMs?: number;
  syncMs?: number;
  grpcSyncMs?: number;
  syncServerCpuMs?: number;
  syncClientCpuMs?: number;
  /** Sidecar streams the server ended during the sync (each opened again after a backoff, as Envoy does). */
  syncStreamErrors?: number;
  syncLoopMaxMs?: number;
  syncBytesPerSidecar?: number[];
  syncPayloadPerSidecar?: number[];
  syncResourcesPerSidecar?: number[];
  memoryPerProxy?: number;
  heapPerProxy?: number;
  rule?: Changes;
  endpoint?: Changes;
  reconnect?: { count: number; bytesPerProxy: number; responsesPerProxy: number; lastResponseMs: number };
  error?: string;
}

export interface FleetResult {
  scenario: FleetScenario;
  results: FleetModeResult[];
}

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pct(sorted: number[], q: number): number | undefined {
  if (!sorted.length) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

interface Stats {
  cpu: { user: number; system: number };
  rss: number;
  heapUsed: number;
  external: number;
  streams: number;
  /** Longest event-loop stall since the previous stats call (meshpilot and the lower bound). */
  loopMaxMs?: number;
}
const cpuMs = (a: Stats, b: Stats) => (b.cpu.user + b.cpu.system - a.cpu.user - a.cpu.system) / 1000;

/** The sidecar groups of a scenario: the name sidecars carry in BENCH_GROUP, their labels, a node to translate for. */
function groupsOf(kind: FleetKind, o: FleetOptions): Array<{ group: string; labels: Record<string, string> }> {
  if (kind === 'full') return [{ group: 'full', labels: {} }];
  return Array.from({ length: o.sidecarResources }, (_, k) => ({ group: `scope-${k}`, labels: { [SCOPE_LABEL]: `s${k}` } }));
}

function envoyGroups(groups: Array<{ group: string; labels: Record<string, string> }>): EnvoyGroup[] {
  return groups.map((g, k) => ({
    group: g.group,
    node: {
      id: `sidecar~10.199.0.${k + 1}~bench-warm-${k}.default~default.svc.cluster.local`,
      metadata: { NAMESPACE: 'default', LABELS: { app: `bench-warm-${k}`, ...g.labels }, BENCH_GROUP: g.group },
    },
  }));
}

async function runMode(sc: FleetScenario, mode: string, o: FleetOptions, spawn: Spawn, log: (s: string) => void): Promise<FleetModeResult> {
  const load0 = loadavg()[0]!;
  const res: FleetModeResult = { mode, load: [load0, load0] };
  const dir = mkdtempSync(join(tmpdir(), 'meshpilot-bench-envoy-'));
  const children: Array<[FleetChild, string]> = [];
  const tag = `  ${mode} ${sc.kind} ${sc.sidecars}${sc.grpc ? `+${sc.grpc} gRPC` : ''}`;
  try {
    writeMesh(dir, { services: sc.services, endpoints: sc.endpoints });
    if (sc.kind !== 'full') writeSidecars(dir, o.sidecarResources, o.scope, sc.services);
    const groups = groupsOf(sc.kind, o);
    const server = spawn(`server(${mode})`, 'server.ts', ['--expose-gc', '--max-old-space-size=8192']);
    children.push([server, 'stop']);
    await server.ready;
    const started = await server.call('start', { mode, configDir: dir, labelSets: 1, envoyGroups: envoyGroups(groups), goPeer: o.goPeer }, 300_000);
    res.startMs = started.startMs;
    res.warmMs = started.warmMs;
    log(`${tag}: listening on ${started.address} (start ${fmtMs(started.startMs)}, cache warm ${fmtMs(started.warmMs)})`);
    const idle: Stats = await server.call('stats', { gc: true });

    const envoy = spawn('envoy-proxies', 'envoy-proxies.ts', ['--max-old-space-size=8192']);
    children.push([envoy, 'close']);
    const grpc = sc.grpc ? spawn('proxies', 'proxies.ts', ['--max-old-space-size=8192']) : undefined;
    if (grpc) children.push([grpc, 'close']);
    await envoy.ready;
    await grpc?.ready;

    const profFile = (phase: string) => join(o.cpuProf ?? '', `envoy-${sc.kind}-${sc.sidecars}-${mode}-${phase}.cpuprofile`);
    const prof = async (phase: string, run: () => Promise<void>) => {
      if (o.cpuProf) await server.call('prof-start');
      await run();
      if (o.cpuProf) await server.call('prof-stop', { file: profFile(phase) });
    };
    const before: Stats = await server.call('stats');
    if (o.cpuProf) await server.call('prof-start');
    // A full-mesh sync moves ~3 MiB per sidecar through two shared cores: the limit grows with N.
    const timeoutMs = o.syncTimeoutS * 1000 * (sc.kind === 'full' ? Math.ceil(sc.sidecars / 1000) : 1);
    const [sync, gsync] = await Promise.all([
      envoy.call('connect', { address: started.address, n: sc.sidecars, xds: sc.xds, groups, perChannel: 1, timeoutMs, keyByNames: mode === 'gocp' }, timeoutMs + 60_000),
      grpc?.call('connect', { address: started.address, n: sc.grpc, scope: o.scope, services: sc.services, perChannel: 100, labelSets: 1, timeoutMs, client: 'h2', keyByNames: mode === 'gocp' }, timeoutMs + 60_000),
    ]);
    const after: Stats = await server.call('stats');
    if (o.cpuProf) await server.call('prof-stop', { file: profFile('sync') });
    res.syncServerCpuMs = cpuMs(before, after);
    res.syncClientCpuMs = (sync.clientCpu.user + sync.clientCpu.system) / 1000;
    res.syncMs = sync.allSyncedMs;
    res.syncStreamErrors = sync.streamErrors;
    res.syncLoopMaxMs = after.loopMaxMs;
    res.grpcSyncMs = gsync?.allSyncedMs;
    res.syncBytesPerSidecar = sync.bytesPerProxy;
    res.syncPayloadPerSidecar = sync.payloadPerProxy;
    res.syncResourcesPerSidecar = sync.resourcesPerProxy;
    log(
      `${tag}: ${sync.synced}/${sc.sidecars} sidecars synced in ${fmtMs(sync.allSyncedMs)}${gsync ? `, ${gsync.synced}/${sc.grpc} gRPC clients in ${fmtMs(gsync.allSyncedMs)}` : ''}` +
        ` (server CPU ${fmtMs(res.syncServerCpuMs)}, sidecars' CPU ${fmtMs(res.syncClientCpuMs)}${res.syncLoopMaxMs !== undefined ? `, longest event-loop stall ${fmtMs(res.syncLoopMaxMs)}` : ''}, the sidecars' process's ${fmtMs(sync.clientLoopMaxMs)}), ${fmtBytes(sum(sync.bytesPerProxy))} per sidecar` +
        (sync.streamErrors ? `; ${sync.streamErrors} streams ended by the server and opened again (first: ${sync.errors[0]})` : ''),
    );
    if (sync.timedOut || gsync?.timedOut) {
      res.error =
        `sync stalled after ${timeoutMs / 1000} s: sidecars ${sync.synced}/${sc.sidecars}, stages [none, CDS, endpoints, LDS, synced] = ${JSON.stringify(sync.phases)}` +
        (gsync ? `; gRPC ${gsync.synced}/${sc.grpc}, stages [none, LDS, RDS, CDS, EDS-partial, synced] = ${JSON.stringify(gsync.phases)}` : '') +
        `; stream errors ${sync.streamErrors} ${sync.errors.join(' | ')}`;
      log(`${tag}: ${res.error}`);
      return res;
    }
    if (sync.nacks) log(`${tag}: ${sync.nacks} NACKs: ${sync.errors.join(' | ')}`);
    await sleep(500);
    const connected: Stats = await server.call('stats', { gc: true });
    const n = sc.sidecars + sc.grpc;
    res.memoryPerProxy = (connected.rss - idle.rss) / n;
    res.heapPerProxy = (connected.heapUsed + connected.external - idle.heapUsed - idle.external) / n;
    log(`${tag}: RSS idle ${fmtMB(idle.rss)}, with ${connected.streams} streams ${fmtMB(connected.rss)} -> ${fmtBytes(res.memoryPerProxy)}/proxy`);

    /** `count` changes one after the other; each is over when every sidecar (and gRPC client) it reaches ACKed it. */
    const changes = async (what: string, arm: Record<string, unknown>, make: (i: number) => Record<string, unknown>, apply: (i: number, a: Record<string, unknown>) => Promise<void>): Promise<Changes> => {
      const lat: number[] = [];
      const glat: number[] = [];
      const bytes = [0, 0, 0, 0];
      const payload = [0, 0, 0, 0];
      const resources = [0, 0, 0, 0];
      let maxBytes = 0;
      let cpu = 0;
      let loopMax: number | undefined;
      let updates = 0;
      let complete = true;
      for (let i = 0; i < o.changes; i++) {
        const a = { ...arm, ...make(i) };
        const ea = await envoy.call('arm', a);
        const ga = grpc ? await grpc.call('arm', a) : undefined;
        const s0: Stats = await server.call('stats');
        const t0 = now();
        await apply(i, a);
        const [er, gr] = await Promise.all([envoy.call('await-armed', { t0, timeoutMs: 60_000, settleMs: 300 }, 120_000), grpc?.call('await-armed', { t0, timeoutMs: 60_000 }, 120_000)]);
        const s1: Stats = await server.call('stats');
        // The settle time after the last ACK is idle for every server: its CPU is in s1 - s0 all the same.
        cpu += cpuMs(s0, s1);
        if (s1.loopMaxMs !== undefined) loopMax = Math.max(loopMax ?? 0, s1.loopMaxMs);
        updates += er.acked + (gr?.acked ?? 0);
        complete &&= er.complete && (gr?.complete ?? true);
        lat.push(...er.latencies);
        if (gr) glat.push(...gr.latencies);
        for (let t = 0; t < 4; t++) {
          bytes[t]! += er.bytesPerProxy[t] / o.changes;
          payload[t]! += er.payloadPerProxy[t] / o.changes;
          resources[t]! += er.resourcesPerProxy[t] / o.changes;
        }
        maxBytes = Math.max(maxBytes, er.maxBytes);
        log(
          `${tag}: ${what} ${i + 1}: ${er.acked}/${ea.expected} sidecars${ga ? ` + ${gr.acked}/${ga.expected} gRPC` : ''} ACKed, p50 ${fmtMs(pct(er.latencies, 0.5))} max ${fmtMs(er.latencies[er.latencies.length - 1])}, ` +
            `${fmtBytes(sum(er.bytesPerProxy))} per sidecar (${describe(er.resourcesPerProxy)}), server CPU ${fmtMs(cpuMs(s0, s1))}`,
        );
        await sleep(300);
      }
      lat.sort((x, y) => x - y);
      glat.sort((x, y) => x - y);
      return {
        complete,
        samples: lat.length,
        p50: pct(lat, 0.5),
        p99: pct(lat, 0.99),
        bytesPerSidecar: bytes,
        payloadPerSidecar: payload,
        resourcesPerSidecar: resources,
        maxBytesPerSidecar: maxBytes,
        cpuPerUpdateUs: updates ? (cpu * 1000) / updates : undefined,
        ...(loopMax !== undefined ? { loopMaxMs: loopMax } : {}),
        ...(grpc ? { grpc: { p50: pct(glat, 0.5), p99: pct(glat, 0.99), samples: glat.length } } : {}),
      };
    };

    await prof('rule', async () => {
      res.rule = await changes('rule change', { kind: 'route', service: 0 }, (i) => ({ w1: 89 - i }), async (_i, a) => {
        if (mode === 'meshpilot') replaceFile(join(dir, 'vs-0000.yaml'), virtualServiceYaml(0, a.w1 as number));
        else await server.call('route-change', { service: 0, w1: a.w1 });
      });
    });
    await prof('endpoint', async () => {
      res.endpoint = await changes('endpoint change', { kind: 'eds', service: 0 }, (i) => ({ port: PORT_BASE + 1 + i }), async (_i, a) => {
        const port = a.port as number;
        if (mode === 'meshpilot') replaceFile(join(dir, 'se-0000.yaml'), serviceEntryYaml(0, sc.endpoints, port - PORT_BASE));
        else await server.call('endpoint-change', { changes: [{ service: 0, port }] });
      });
    });
    // Reconnects: nothing changed meanwhile, so a delta stream needs (almost) nothing sent again.
    const rc = await envoy.call('reconnect', { count: Math.min(100, Math.ceil(sc.sidecars / 10)), windowMs: 1500 }, 60_000);
    res.reconnect = { count: rc.count, bytesPerProxy: rc.bytesPerProxy, responsesPerProxy: rc.responsesPerProxy, lastResponseMs: rc.lastResponseMs };
    log(`${tag}: ${rc.count} sidecars reconnected: ${fmtBytes(rc.bytesPerProxy)} and ${rc.responsesPerProxy.toFixed(1)} responses each within 1.5 s`);
    return res;
  } catch (e) {
    res.error = e instanceof Error ? e.message : String(e);
    log(`${tag}: ERROR ${res.error}`);
    return res;
  } finally {
    res.load[1] = loadavg()[0]!;
    for (const [c, cmd] of children.reverse()) await c.stop(cmd);
    rmSync(dir, { recursive: true, force: true });
  }
}

export function fleetScenarios(o: FleetOptions): FleetScenario[] {
  const out: FleetScenario[] = [];
  for (const kind of o.kinds) {
    for (const n of kind === 'full' ? o.fullSizes : o.sizes) {
      const grpc = kind === 'mixed' ? Math.floor(n / 2) : 0;
      out.push({ kind, sidecars: n - grpc, grpc, services: o.services, endpoints: o.endpoints, xds: o.xds, groups: kind === 'full' ? 1 : o.sidecarResources });
    }
  }
  return out;
}

export async function runEnvoyFleet(o: FleetOptions, spawn: Spawn, log: (s: string) => void, done?: (r: FleetResult) => void): Promise<FleetResult[]> {
  const out: FleetResult[] = [];
  for (const sc of fleetScenarios(o)) {
    log(`Envoy sidecars: ${sc.kind}, ${sc.sidecars} sidecars${sc.grpc ? ` + ${sc.grpc} gRPC clients` : ''} (${sc.xds})`);
    const r: FleetResult = { scenario: sc, results: [] };
    for (const mode of o.modes) r.results.push(await runMode(sc, mode, o, spawn, log));
    out.push(r);
    done?.(r);
  }
  return out;
}

// ---------------------------------------------------------------- report

const sum = (xs: number[] | undefined) => (xs ? xs.reduce((a, b) => a + b, 0) : undefined);
const fmtMs = (ms: number | undefined) => (ms === undefined || !Number.isFinite(ms) ? '-' : ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 1 : 0)} ms`);
const fmtMB = (b: number) => `${(b / 1048576).toFixed(0)} MB`;
const fmtUs = (u: number | undefined) => (u === undefined || !Number.isFinite(u) ? '-' : `${u.toFixed(1)} us`);
function fmtBytes(b: number | undefined): string {
  if (b === undefined || !Number.isFinite(b)) return '-';
  if (b >= 1048576) return `${(b / 1048576).toFixed(2)} MiB`;
  if (b >= 10240) return `${(b / 1024).toFixed(1)} KiB`;
  return `${Math.round(b)} B`;
}
const TYPE_NAMES = ['CDS', 'EDS', 'LDS', 'RDS'];
/** "EDS 3" or "CDS 3003, EDS 3000, ...": the resources per type, rounded. */
function describe(r: number[] | undefined): string {
  const parts = (r ?? []).map((x, t) => (x ? `${TYPE_NAMES[t]} ${Number(x.toFixed(x < 10 ? 1 : 0))}` : '')).filter(Boolean);
  return parts.length ? parts.join(', ') : 'nothing';
}

function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b <= 0) return '-';
  return `${(a / b).toFixed(a / b >= 10 ? 0 : a / b >= 1.995 ? 1 : 2)}x`;
}

export function formatEnvoyFleet(results: readonly FleetResult[]): string {
  const out: string[] = [];
  for (const { scenario: sc, results: rs } of results) {
    const lb = rs.find((r) => r.mode === 'lowerbound');
    const others = rs.filter((r) => r !== lb);
    const cols = [...others.map((r) => r.mode), ...(lb ? ['lower bound'] : []), ...(lb ? others.map((r) => `${r.mode}/lb`) : [])];
    const rows: string[][] = [];
    const row = (name: string, f: (r: FleetModeResult) => number | undefined, fmt: (v: number | undefined) => string, compare = true) => {
      const v = (r: FleetModeResult | undefined) => (r ? f(r) : undefined);
      rows.push([name, ...others.map((r) => fmt(v(r))), ...(lb ? [fmt(v(lb))] : []), ...(lb ? others.map((r) => (compare ? ratio(v(r), v(lb)) : '')) : [])]);
    };
    const text = (name: string, f: (r: FleetModeResult) => string) => rows.push([name, ...others.map(f), ...(lb ? [f(lb)] : []), ...(lb ? others.map(() => '') : [])]);
    row('connect + full sync, all sidecars', (r) => r.syncMs, fmtMs);
    if (sc.grpc) row('  gRPC clients synced', (r) => r.grpcSyncMs, fmtMs);
    row('  server CPU during sync', (r) => r.syncServerCpuMs, fmtMs);
    row('  streams the server ended (retried)', (r) => r.syncStreamErrors, (v) => (v === undefined ? '-' : String(v)), false);
    row('  longest event-loop stall', (r) => r.syncLoopMaxMs, fmtMs, false);
    row('  bytes per sidecar at sync', (r) => sum(r.syncBytesPerSidecar), fmtBytes);
    row('    of which resources', (r) => sum(r.syncPayloadPerSidecar), fmtBytes);
    text('  resources per sidecar', (r) => describe(r.syncResourcesPerSidecar));
    row('rule change -> ACK p50', (r) => r.rule?.p50, fmtMs);
    row('rule change -> ACK p99', (r) => r.rule?.p99, fmtMs);
    row('  bytes per sidecar for it', (r) => sum(r.rule?.bytesPerSidecar), fmtBytes);
    row('    of which resources', (r) => sum(r.rule?.payloadPerSidecar), fmtBytes);
    text('  resources per sidecar', (r) => describe(r.rule?.resourcesPerSidecar));
    if (sc.grpc) row('  gRPC clients p99', (r) => r.rule?.grpc?.p99, fmtMs);
    row('  server CPU per proxy update', (r) => r.rule?.cpuPerUpdateUs, fmtUs);
    row('  longest event-loop stall', (r) => r.rule?.loopMaxMs, fmtMs, false);
    row('one endpoint change -> ACK p50', (r) => r.endpoint?.p50, fmtMs);
    row('one endpoint change -> ACK p99', (r) => r.endpoint?.p99, fmtMs);
    row('  bytes per sidecar for it', (r) => sum(r.endpoint?.bytesPerSidecar), fmtBytes);
    row('    of which resources', (r) => sum(r.endpoint?.payloadPerSidecar), fmtBytes);
    text('  resources per sidecar', (r) => describe(r.endpoint?.resourcesPerSidecar));
    if (sc.grpc) row('  gRPC clients p99', (r) => r.endpoint?.grpc?.p99, fmtMs);
    row('  server CPU per proxy update', (r) => r.endpoint?.cpuPerUpdateUs, fmtUs);
    row('  longest event-loop stall', (r) => r.endpoint?.loopMaxMs, fmtMs, false);
    row(`server memory per connected ${sc.grpc ? 'proxy' : 'sidecar'} (RSS)`, (r) => r.memoryPerProxy, fmtBytes);
    row('  heap (JS: + external) per proxy', (r) => r.heapPerProxy, fmtBytes);
    row('reconnect: bytes per sidecar (1.5 s)', (r) => r.reconnect?.bytesPerProxy, fmtBytes, false);
    const w = [38, ...cols.map(() => 15)];
    const line = (c: string[]) => c.map((x, i) => x.padEnd(w[i] ?? 15)).join(' ').trimEnd();
    out.push(
      `Envoy sidecars, ${sc.kind === 'full' ? 'full mesh (no Sidecar)' : sc.kind === 'scoped' ? `scoped by ${sc.groups} Sidecar resources` : `mixed fleet: sidecars scoped by ${sc.groups} Sidecar resources`}: ` +
        `${sc.sidecars} sidecars${sc.grpc ? ` + ${sc.grpc} proxyless gRPC clients` : ''}, ${sc.xds} xDS, ${sc.services} services x ${sc.endpoints} endpoints`,
      line(['metric', ...cols]),
      ...rows.map(line),
    );
    for (const r of rs) if (r.error) out.push(`  ${r.mode}: ${r.error}`);
    for (const r of rs) if (r.rule && !r.rule.complete) out.push(`  ${r.mode}: some rule change did not reach every sidecar within 60 s`);
    for (const r of rs) if (r.endpoint && !r.endpoint.complete) out.push(`  ${r.mode}: some endpoint change did not reach every sidecar within 60 s`);
    out.push(`  machine load average (1 min) at start/end: ${rs.map((r) => `${r.mode} ${r.load.map((x) => x.toFixed(2)).join('/')}`).join(', ')} (2 cores)`);
    out.push('');
  }
  return out.join('\n').trimEnd();
}
