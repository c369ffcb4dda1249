// The container image, checked without a Docker engine (none can be had here). The Dockerfile is
// parsed; every file it copies from the build context must exist and not be excluded by
// .dockerignore; then the runtime stage's file layout is rebuilt in a temp folder by its own COPY
// lines (dist/ from the build `npm test` runs first, production node_modules approximated from
// package-lock.json), made read-only, and the image's commands run from it as the image runs them:
// as uid 65532 (when the test runs as root; otherwise read-only permission bits do the same), with
// TMPDIR and HOME unwritable and NODE_ENV=production: --help, validate, inject, and serve (with the
// mesh CA), agent and webhook each started, answering and stopped. A file the runtime reads that
// the Dockerfile does not ship, a missing production dependency, or a write at run time fails it.
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certFilePaths } from '../control-plane/agent/cert-files.ts';
import { waitFor } from './helpers/wait.ts';

const REPO = path.resolve('.');

// ---------------------------------------------------------------- Dockerfile and .dockerignore

interface Instruction { op: string; args: string; line: number }
interface Stage { image: string; name?: string; index: number; instructions: Instruction[] }

/** Stages of a Dockerfile: instructions with their continuation lines joined, comments dropped. */
function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i]!;
    if (/^\s*(#|$)/.test(line)) continue;
    while (/\\\s*$/.test(line) && i + 1 < lines.length) line = line.replace(/\\\s*$/, ' ') + lines[++i]!.replace(/^\s*#.*$/, '');
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`Dockerfile:${start + 1}: cannot read ${JSON.stringify(line)}`);
    const op = m[1]!.toUpperCase();
    const args = m[2]!.trim();
    if (op === 'FROM') {
      const f = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!f) throw new Error(`Dockerfile:${start + 1}: cannot read FROM ${args}`);
      stages.push({ image: f[1]!, ...(f[2] ? { name: f[2] } : {}), index: stages.length, instructions: [] });
    } else {
      if (!stages.length) {
        if (op === 'ARG') continue;
        throw new Error(`Dockerfile:${start + 1}: ${op} before FROM`);
      }
      stages.at(-1)!.instructions.push({ op, args, line: start + 1 });
    }
  }
  return stages;
}

interface Copy { from?: string; sources: string[]; dest: string; line: number; op: string }

function copyOf(i: Instruction): Copy {
  let rest = i.args;
  const flags: Record<string, string> = {};
  for (let m = /^--([a-z-]+)=(\S+)\s+/.exec(rest); m; m = /^--([a-z-]+)=(\S+)\s+/.exec(rest)) {
    flags[m[1]!] = m[2]!;
    rest = rest.slice(m[0].length);
  }
  const parts = rest.startsWith('[') ? (JSON.parse(rest) as string[]) : rest.split(/\s+/);
  if (parts.length < 2) throw new Error(`Dockerfile:${i.line}: ${i.op} needs a source and a destination`);
  return { ...(flags.from ? { from: flags.from } : {}), sources: parts.slice(0, -1), dest: parts.at(-1)!, line: i.line, op: i.op };
}

const copies = (s: Stage) => s.instructions.filter((i) => i.op === 'COPY' || i.op === 'ADD').map(copyOf);
const workdirOf = (s: Stage) => s.instructions.filter((i) => i.op === 'WORKDIR').reduce((dir, i) => path.posix.resolve(dir, i.args), '/');

/** A .dockerignore pattern as a regular expression over context-relative paths (Go filepath.Match plus `**`). */
function ignoreRegex(pattern: string): RegExp {
  const p = path.posix.normalize(pattern.replace(/^\/+/, ''));
  let re = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*' && p[i + 1] === '*') {
      re += p[i + 2] === '/' ? '(?:.*/)?' : '.*';
      i += p[i + 2] === '/' ? 2 : 1;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Whether .dockerignore keeps a context path (or a directory above it) out of the context. */
function excluded(rel: string, patterns: string[]): boolean {
  let out = false;
  const paths = rel.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'));
  for (const raw of patterns) {
    const keep = raw.startsWith('!');
    const re = ignoreRegex(keep ? raw.slice(1) : raw);
    if (paths.some((p) => re.test(p))) out = !keep;
  }
  return out;
}

const dockerfile = fs.readFileSync(path.join(REPO, 'Dockerfile'), 'utf8');
const stages = parseDockerfile(dockerfile);
const runtime = stages.at(-1)!;
const ignorePatterns = fs.readFileSync(path.join(REPO, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
const stageNamed = (ref: string) => stages.find((s) => s.name === ref || String(s.index) === ref);
const runs = (s: Stage) => s.instructions.filter((i) => i.op === 'RUN').map((i) => i.args);

describe('Dockerfile', () => {
  it('builds in node:20-slim with npm ci and npm run build, and runs as non-root from compiled JavaScript', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const s of stages) expect(s.image, `FROM of stage ${s.name ?? s.index}`).toBe('node:20-slim');
    expect(stages.some((s) => runs(s).some((r) => /\bnpm ci\b/.test(r)) && runs(s).some((r) => /\bnpm run build\b/.test(r)))).toBe(true);
    const entry = runtime.instructions.filter((i) => i.op === 'ENTRYPOINT');
    expect(entry.map((i) => JSON.parse(i.args))).toEqual([['node', '/app/bin/meshpilot.js']]);
    const user = runtime.instructions.filter((i) => i.op === 'USER').at(-1)?.args;
    expect(['65532', '65532:65532', 'node', 'node:node']).toContain(user);
    expect(runtime.instructions.some((i) => i.op === 'ENV' && /^NODE_ENV[= ]production$/.test(i.args))).toBe(true);
    expect(workdirOf(runtime)).toBe('/app');
  });

  it('copies only files that exist in the repository (dist/ after the build) and that .dockerignore lets in', () => {
    expect(copies(runtime).length).toBeGreaterThan(0);
    for (const s of stages) {
      for (const c of copies(s)) {
        for (const src of c.sources) {
          const where = `Dockerfile:${c.line} ${c.op} ${src}`;
          if (c.from === undefined) {
            expect(fs.existsSync(path.join(REPO, src)), `${where}: not in the repository`).toBe(true);
            expect(excluded(path.posix.normalize(src).replace(/\/$/, ''), ignorePatterns), `${where}: excluded by .dockerignore`).toBe(false);
          } else {
            const from = stageNamed(c.from);
            expect(from, `${where}: no stage ${c.from}`).toBeDefined();
            const rel = path.posix.relative(workdirOf(from!), path.posix.resolve(workdirOf(from!), src));
            if (rel !== 'node_modules') expect(fs.existsSync(path.join(REPO, rel)), `${where}: ${rel} not in the repository (run npm run build for dist/)`).toBe(true);
          }
        }
      }
    }
  });

  it('takes node_modules from a stage that installs production dependencies only', () => {
    const nm = copies(runtime).filter((c) => c.sources.some((s) => path.posix.basename(s) === 'node_modules'));
    expect(nm).toHaveLength(1);
    const from = stageNamed(nm[0]!.from ?? '');
    expect(from, 'node_modules must come from a build stage, not the context').toBeDefined();
    expect(runs(from!).some((r) => /\bnpm (ci|install|prune)\b.*--omit=dev\b/.test(r))).toBe(true);
  });

  it('the .dockerignore matcher reads patterns as Docker does', () => {
    expect(excluded('node_modules/x/y.js', ['node_modules'])).toBe(true);
    expect(excluded('a/b/c.log', ['**/*.log'])).toBe(true);
    expect(excluded('c.log', ['**/*.log'])).toBe(true);
    expect(excluded('examples/bookinfo/x.yaml', ['examples/kubernetes'])).toBe(false);
    expect(excluded('examples/bookinfo', ['examples', '!examples/bookinfo'])).toBe(false);
    expect(excluded('proto/istio', ['pro*'])).toBe(true);
  });
});

// ---------------------------------------------------------------- the runtime image, rebuilt

/** Production packages per package-lock.json (what `npm ci --omit=dev` installs), top level only. */
function productionPackages(): Array<{ name: string; optional: boolean }> {
  const lock = JSON.parse(fs.readFileSync(path.join(REPO, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; optional?: boolean }> };
  return Object.entries(lock.packages)
    .filter(([k, v]) => k.startsWith('node_modules/') && k.split('node_modules/').length === 2 && !v.dev)
    .map(([k, v]) => ({ name: k.slice('node_modules/'.length), optional: Boolean(v.optional) }));
}

/** Applies one COPY of the runtime stage onto `image` (the image's `/`). */
function applyCopy(image: string, c: Copy): void {
  const dest = path.posix.resolve(workdirOf(runtime), c.dest);
  const intoDir = c.dest.endsWith('/') || c.sources.length > 1;
  for (const src of c.sources) {
    let from: string;
    if (c.from === undefined) from = path.join(REPO, src);
    else {
      const stage = stageNamed(c.from)!;
      const rel = path.posix.relative(workdirOf(stage), path.posix.resolve(workdirOf(stage), src));
      if (rel === 'node_modules') {
        // Each production package linked to its installed copy. Linked, not copied (about 140 MB):
        // dist/ resolves packages from this folder, so an import of a dev-only package fails here as
        // in the image; a package's own dependencies resolve from the installed tree (Node follows
        // the link), which the lock file marks production too. Nothing under the links is writable
        // for uid 65532, so writes there would fail as well (as non-root, that part is not checked).
        const nm = path.join(image, dest);
        for (const p of productionPackages()) {
          const installed = path.join(REPO, 'node_modules', p.name);
          if (!fs.existsSync(installed)) {
            if (p.optional) continue;
            throw new Error(`production dependency ${p.name} is not installed: run npm ci`);
          }
          fs.mkdirSync(path.dirname(path.join(nm, p.name)), { recursive: true });
          fs.symlinkSync(fs.realpathSync(installed), path.join(nm, p.name));
        }
        continue;
      }
      from = path.join(REPO, rel);
    }
    const to = path.join(image, fs.statSync(from).isDirectory() || !intoDir ? dest : path.posix.join(dest, path.basename(src)));
    fs.mkdirSync(path.dirname(to), { recursive: true });
    fs.cpSync(from, to, { recursive: true });
  }
}

/** chmod a-w on everything under `dir` except symbolic links (and what they point to). */
function makeReadOnly(dir: string): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isSymbolicLink()) continue;
    if (e.isDirectory()) makeReadOnly(p);
    fs.chmodSync(p, fs.lstatSync(p).mode & 0o7555);
  }
  fs.chmodSync(dir, fs.lstatSync(dir).mode & 0o7555);
}

function makeWritable(dir: string): void {
  if (!fs.existsSync(dir)) return;
  fs.chmodSync(dir, 0o755);
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory() && !e.isSymbolicLink()) makeWritable(p);
    else if (!e.isSymbolicLink()) fs.chmodSync(p, 0o644);
  }
}

const asRoot = process.getuid?.() === 0;
// The image's user; as root the test can be it, as anyone else read-only permission bits suffice.
const IMAGE_UID = 65532;
const identity = asRoot ? { uid: IMAGE_UID, gid: IMAGE_UID } : {};

let tmp = '';
let app = ''; // the image's /app
let vol = ''; // a writable volume mounted into the container (the agent's certificates, the CA)
let roTmp = '';
const children: ChildProcess[] = [];

interface Proc { child: ChildProcess; out: () => string; lines: () => Array<Record<string, any>>; exited: Promise<number | null> }

/** Runs the image's entrypoint with `args`, as the container would. */
function inImage(args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [path.join(app, 'bin/meshpilot.js'), ...args], {
    cwd: app,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_ENV: 'production', TMPDIR: roTmp, HOME: roTmp, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...identity,
  });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const lines = () => out.split('\n').flatMap((l) => {
    try {
      return [JSON.parse(l) as Record<string, any>];
    } catch {
      return [];
    }
  });
  return { child, out: () => out, lines, exited };
}

async function runInImage(args: string[]): Promise<{ code: number | null; out: string }> {
  const p = inImage(args);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 30_000);
  const code = await p.exited;
  clearTimeout(timer);
  return { code, out: p.out() };
}

/** Waits for `cond`, failing at once with the output if the process exits first. */
async function until(p: Proc, cond: () => boolean, description: string): Promise<void> {
  const died = p.exited.then((code) => {
    throw new Error(`exited (${code}) before: ${description}; output: ${p.out()}`);
  });
  died.catch(() => {});
  await Promise.race([waitFor(cond, { timeoutMs: 30_000, description: `${description}; output: ${p.out()}` }), died]);
}

async function stop(p: Proc): Promise<number | null> {
  p.child.kill('SIGTERM');
  return p.exited;
}

describe('the runtime image, rebuilt from the Dockerfile and run read-only', () => {
  beforeAll(async () => {
    // The layout takes dist/ as built: it must be the build of these sources.
    const check = await new Promise<{ code: number | null; err: string }>((resolve) => {
      const c = spawn(process.execPath, [path.join(REPO, 'bin/meshpilot.js'), '--help'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      c.stderr.on('data', (d: Buffer) => (err += d.toString()));
      c.on('exit', (code) => resolve({ code, err }));
    });
    expect(check.err, 'dist/ must be a current build').toBe('');
    expect(check.code).toBe(0);

    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-image-'));
    fs.chmodSync(tmp, 0o755); // the image's user must reach it
    const image = path.join(tmp, 'root');
    for (const c of copies(runtime)) applyCopy(image, c);
    app = path.join(image, 'app');
    roTmp = path.join(tmp, 'ro-tmp');
    fs.mkdirSync(roTmp);
    vol = path.join(tmp, 'vol');
    fs.mkdirSync(vol, { mode: 0o700 });
    fs.writeFileSync(path.join(vol, 'tokens'), 'image-token shop reviews\n', { mode: 0o600 });
    fs.writeFileSync(path.join(vol, 'token'), 'image-token', { mode: 0o600 });
    if (asRoot) for (const f of [vol, path.join(vol, 'tokens'), path.join(vol, 'token')]) fs.chownSync(f, IMAGE_UID, IMAGE_UID);
    makeReadOnly(image);
    makeReadOnly(roTmp);
  });

  afterAll(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    if (tmp) {
      makeWritable(path.join(tmp, 'root'));
      makeWritable(path.join(tmp, 'ro-tmp'));
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('is really read-only for the image\'s user (else the rest proves nothing)', async () => {
    for (const dir of [app, path.join(app, 'dist'), roTmp]) {
      const probe = spawn(process.execPath, ['-e', `require('fs').writeFileSync(${JSON.stringify(path.join(dir, 'probe'))}, 'x')`], { stdio: 'ignore', ...identity });
      const code = await new Promise((resolve) => probe.on('exit', resolve));
      expect(code, `${dir} is writable`).not.toBe(0);
    }
    // and the layout holds what the Dockerfile copies, compiled JavaScript, no sources
    expect(fs.existsSync(path.join(app, 'dist/cli.js'))).toBe(true);
    // dist/ is ES modules by our package.json (Node 20.19+ would otherwise guess, parsing each file twice)
    expect(JSON.parse(fs.readFileSync(path.join(app, 'package.json'), 'utf8')).type).toBe('module');
    // Of control-plane/ only the dashboard's page (static files) is shipped: no TypeScript.
    expect(fs.readdirSync(path.join(app, 'control-plane'))).toEqual(['dashboard']);
    expect(fs.readdirSync(path.join(app, 'control-plane/dashboard'))).toEqual(['public']);
    expect((fs.readdirSync(path.join(app, 'control-plane/dashboard/public'), { recursive: true }) as string[]).filter((f) => f.endsWith('.ts'))).toEqual([]);
    expect(fs.existsSync(path.join(app, 'node_modules/typescript'))).toBe(false);
    expect(fs.existsSync(path.join(app, 'node_modules/tsx'))).toBe(false);
  });

  it('meshpilot --help', async () => {
    const r = await runInImage(['--help']);
    expect(r.out).toMatch(/^Usage: meshpilot/);
    expect(r.code).toBe(0);
  });

  it('meshpilot validate on the example mesh it ships', async () => {
    const r = await runInImage(['validate', '--config-dir', path.join(app, 'examples/bookinfo')]);
    expect(r.out).toMatch(/\d+ rules valid, 0 errors/);
    expect(r.code).toBe(0);
  });

  it('meshpilot inject with the injection settings it ships (sidecar-config/)', async () => {
    const r = await runInImage(['inject', '-f', path.join(REPO, 'test/golden-inject/in/workloads.yaml'), '-q']);
    expect(r.out).toBe(fs.readFileSync(path.join(REPO, 'test/golden-inject/out/workloads.yaml'), 'utf8'));
    expect(r.code).toBe(0);
  });

  it('serve with the mesh CA (our .proto files) answers /healthz; an agent gets its certificate from it; the webhook starts; all stop on SIGTERM', async () => {
    const caDir = path.join(vol, 'ca');
    const serve = inImage(['serve', '--config-dir', path.join(app, 'examples/bookinfo'), '--xds-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--xds-tls', '--ca-dir', caDir, '--ca-tokens', path.join(vol, 'tokens')]);
    const logged = (msg: string) => serve.lines().find((l) => l.msg === msg);
    await until(serve, () => Boolean(logged('admin API listening') && logged('xDS (ADS) server listening')), 'serve listening');
    const admin = String(logged('admin API listening')!.address);
    const xds = String(logged('xDS (ADS) server listening')!.address);
    const health = await fetch(`http://${admin}/healthz`);
    expect(health.status).toBe(200);
    // The dashboard page ships with the image (control-plane/dashboard/public, read beside dist/).
    const page = await fetch(`http://${admin}/`);
    expect([page.status, page.headers.get('content-type')]).toEqual([200, 'text/html; charset=utf-8']);

    const outDir = path.join(vol, 'certs');
    const agent = inImage(
      ['agent', '--ca-address', xds, '--ca-root', path.join(caDir, 'trust-bundle.pem'), '--token-file', path.join(vol, 'token'), '--out-dir', outDir, '--sds-socket', path.join(vol, 'sds.sock')],
      { MESHPILOT_POD_NAMESPACE: 'shop', MESHPILOT_SERVICE_ACCOUNT: 'reviews' },
    );
    const certFile = certFilePaths(outDir).certificateFile;
    await until(agent, () => fs.existsSync(certFile), 'the agent\'s certificate written');
    expect(new X509Certificate(fs.readFileSync(certFile)).subjectAltName).toBe('URI:spiffe://cluster.local/ns/shop/sa/reviews');

    const webhook = inImage(['webhook', '--listen', '127.0.0.1:0', '--namespace-labels', '{"shop":{"meshpilot.io/inject":"enabled"}}']);
    await until(webhook, () => webhook.lines().some((l) => l.url), 'webhook listening');

    expect(await stop(webhook), webhook.out()).toBe(0);
    expect(await stop(agent), agent.out()).toBe(0);
    expect(await stop(serve), serve.out()).toBe(0);
    for (const p of [serve, agent, webhook]) expect(p.out()).not.toMatch(/EROFS|EACCES|ENOTDIR|ERR_MODULE_NOT_FOUND/);
  });
});
