// The benchmark's Go peer from TypeScript: builds bench/peers/gocp (an ADS server on
// go-control-plane's snapshot cache, see its main.go), starts it, hands it resources per proxy
// group, and reads its CPU time and memory.
//
//   const built = await buildGoPeer(log);            // once per benchmark run
//   if ('binary' in built) {
//     const peer = await GoPeer.start(built.binary);  // peer.address: 127.0.0.1:PORT
//     await peer.loadGroup('grpc', encodeByType(translate(model, proxy)));
//     await peer.update('grpc', ROUTE_CONFIG, [changedRouteBytes]);
//     const s = await peer.stats(true);               // cpu (us), rss (bytes) of the Go process
//     await peer.stop();
//   }
//
// Resources go over as files of length-prefixed records (type URL, encoded message); commands and
// answers are lines on the child's stdin/stdout. The Go process exits when its stdin closes, so it
// never outlives its parent, however that parent ends.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { encodeResource, type ResourceJson } from '../../control-plane/envoy/check.ts';

const here = dirname(fileURLToPath(import.meta.url));
const SOURCE = join(here, 'gocp');
const BINARY = join(SOURCE, 'bin', 'gocp');

/** Encoded resources (the resource message's bytes, not an Any) by type URL. */
export type ResourcesByType = Record<string, readonly Uint8Array[]>;

export interface GoPeerStats {
  /** CPU time of the Go process, all threads, in microseconds (getrusage, as process.cpuUsage()). */
  cpu: { user: number; system: number };
  /** VmRSS from /proc/PID/status, in bytes. */
  rss: number;
  /** Go heap in use (runtime.MemStats.HeapAlloc), in bytes. */
  heap: number;
  /** Open SotW and delta ADS streams. */
  streams: number;
  deltaStreams: number;
}

let built: Promise<{ binary: string } | { skipped: string }> | undefined;

/**
 * Builds the Go peer with the `go` on PATH (once per process; Go's build cache makes later builds
 * quick). Resolves to the binary, or to why the peer cannot run (no Go, or the build failed).
 */
export function buildGoPeer(log: (s: string) => void = () => {}): Promise<{ binary: string } | { skipped: string }> {
  built ??= new Promise((resolve) => {
    // GOTOOLCHAIN=local: an older Go fails here instead of downloading a toolchain.
    const env = { ...process.env, GOTOOLCHAIN: 'local' };
    execFile('go', ['version'], { env }, (err, out) => {
      if (err) return resolve({ skipped: `Go peer skipped: no usable \`go\` on PATH (${(err as NodeJS.ErrnoException).code ?? err.message})` });
      log(`building the Go peer (go-control-plane) with ${out.trim()}; a first build on a cold Go cache takes a minute or two`);
      const t0 = Date.now();
      execFile('go', ['build', '-buildvcs=false', '-o', BINARY, '.'], { cwd: SOURCE, env, timeout: 10 * 60_000, maxBuffer: 1 << 24 }, (e, _o, stderr) => {
        if (e) return resolve({ skipped: `Go peer skipped: go build failed: ${(stderr || e.message).trim().split('\n').slice(0, 5).join(' | ')}` });
        log(`built the Go peer in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        resolve({ binary: BINARY });
      });
    });
  });
  return built;
}

/** translate() output (resource JSON by type URL) -> encoded resources by type URL. */
export function encodeByType(resources: Record<string, readonly ResourceJson[]>): ResourcesByType {
  const out: Record<string, Uint8Array[]> = {};
  for (const [type, list] of Object.entries(resources)) out[type] = list.map((json) => encodeResource(json).value);
  return out;
}

function records(byType: ResourcesByType): Buffer {
  const parts: Buffer[] = [];
  const u32 = (n: number) => {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(n);
    return b;
  };
  for (const [type, list] of Object.entries(byType)) {
    const t = Buffer.from(type);
    for (const r of list) parts.push(u32(t.length), t, u32(r.length), Buffer.from(r.buffer, r.byteOffset, r.length));
  }
  return Buffer.concat(parts);
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export class GoPeer {
  private readonly waiting: Array<{ resolve: (line: string) => void; reject: (e: Error) => void }> = [];
  private readonly dir = mkdtempSync(join(tmpdir(), 'meshpilot-gocp-'));
  private files = 0;
  private exited = false;
  private exitInfo = '';

  private constructor(
    private readonly proc: ChildProcess,
    readonly address: string,
    lines: AsyncIterator<string>,
  ) {
    void (async () => {
      for (let r = await lines.next(); !r.done; r = await lines.next()) {
        const w = this.waiting.shift();
        if (!w) continue;
        if (r.value.startsWith('ok')) w.resolve(r.value.slice(3));
        else w.reject(new Error(`Go peer: ${r.value}`));
      }
    })();
    proc.on('exit', (code, signal) => {
      this.exited = true;
      this.exitInfo = `exited (${code ?? signal})`;
      live.delete(proc);
      for (const w of this.waiting.splice(0)) w.reject(new Error(`Go peer ${this.exitInfo}`));
      rmSync(this.dir, { recursive: true, force: true });
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** Starts the peer; resolves once it listens on 127.0.0.1. */
  static async start(binary: string): Promise<GoPeer> {
    const proc = spawn(binary, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    live.add(proc);
    const lines = createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
    const first = await Promise.race([
      lines.next(),
      new Promise<never>((_, reject) => proc.once('error', reject)),
      new Promise<never>((_, reject) => proc.once('exit', (c, s) => reject(new Error(`Go peer exited (${c ?? s}) before listening`)))),
    ]);
    const port = /^port (\d+)$/.exec(first.done ? '' : first.value)?.[1];
    if (!port) {
      proc.kill('SIGKILL');
      throw new Error(`Go peer: unexpected first line ${JSON.stringify(first.value)}`);
    }
    return new GoPeer(proc, `127.0.0.1:${port}`, lines);
  }

  private command(line: string): Promise<string> {
    if (this.exited) return Promise.reject(new Error(`Go peer ${this.exitInfo}`));
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.proc.stdin!.write(`${line}\n`);
    });
  }

  private async withFile(cmd: string, group: string, byType: ResourcesByType): Promise<string> {
    if (/\s/.test(group) || !group) throw new Error(`bad group name ${JSON.stringify(group)}`);
    const file = join(this.dir, `${this.files++}.bin`);
    writeFileSync(file, records(byType));
    try {
      return await this.command(`${cmd} ${group} ${file}`);
    } finally {
      rmSync(file, { force: true });
    }
  }

  /** Sets the group's whole snapshot: these resources, every type a new version. */
  loadGroup(group: string, resources: ResourcesByType): Promise<string> {
    return this.withFile('load', group, resources);
  }

  /** Replaces or adds these resources of one type by name; only that type gets a new version. */
  update(group: string, type: string, resources: readonly Uint8Array[]): Promise<string> {
    return this.withFile('update', group, { [type]: resources });
  }

  /** CPU and memory of the Go process; with `gc`, after a GC that returns free memory to the OS. */
  async stats(gc = false): Promise<GoPeerStats> {
    if (gc) await this.command('gc');
    const line = await this.command('stats');
    const f = Object.fromEntries(line.split(' ').map((kv) => kv.split('=') as [string, string]));
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const rssKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
    return {
      cpu: { user: Number(f.user), system: Number(f.sys) },
      rss: rssKb * 1024,
      heap: Number(f.heap),
      streams: Number(f.streams),
      deltaStreams: Number(f.delta),
    };
  }

  /** Closes its stdin (it exits by itself), killing it if it has not exited within 5 s. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.proc.stdin!.end();
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
}
