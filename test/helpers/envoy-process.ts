// Real Envoy processes for Envoy-in-the-loop tests: found through ENVOY_BIN or PATH (as
// test/envoy-validate.test.ts does), started on a bootstrap file with the admin port learnt from
// --admin-address-path, polled until ready, killed in teardown.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import type { Teardown } from './test-mesh.ts';
import { waitFor } from './wait.ts';

type Json = Record<string, any>;

export function findEnvoy(): string | undefined {
  if (process.env.ENVOY_BIN) return process.env.ENVOY_BIN;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const f = path.join(dir, 'envoy');
    if (dir && fs.existsSync(f)) return f;
  }
  return undefined;
}

/** A free TCP port on `host`, found by binding port 0 and closing (Envoy binds it right after). */
export async function reservePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface EnvoyProcess {
  name: string;
  /** `http://127.0.0.1:PORT` of Envoy's admin interface. */
  admin: string;
  /** What Envoy wrote to stdout and stderr so far (quoted in failures). */
  output(): string;
  /** GET on the admin interface, as text. */
  adminGet(pathAndQuery: string): Promise<{ status: number; text: string }>;
}

// Unique per process and call: Envoy refuses two servers with one base id on a machine only with
// hot restart on, but the task asks for distinct ids anyway (and they cost nothing).
let nextBaseId = 0;
const baseId = () => (process.pid % 20_000) * 100 + (nextBaseId++ % 100);

/**
 * Starts `envoy -c <bootstrap.yaml> --base-id N --disable-hot-restart -l warning` with its admin
 * on 127.0.0.1:0 and waits until the admin answers /ready with LIVE. Fails at once, with Envoy's
 * output, if Envoy exits first (a bootstrap it rejects).
 */
export async function startEnvoy(teardown: Teardown, opts: { envoy: string; name: string; bootstrap: Json; timeoutMs?: number }): Promise<EnvoyProcess> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `meshpilot-envoy-${opts.name}-`));
  teardown.add(() => rm(dir, { recursive: true, force: true }));
  const config = path.join(dir, 'bootstrap.yaml');
  const adminFile = path.join(dir, 'admin-address');
  fs.writeFileSync(config, YAML.stringify(opts.bootstrap, { lineWidth: 0 }));
  const args = ['-c', config, '--base-id', String(baseId()), '--disable-hot-restart', '-l', 'warning', '--admin-address-path', adminFile, '--concurrency', '1'];
  const child = spawn(opts.envoy, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (b: Buffer) => {
    out = (out + b.toString()).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
    child.once('error', (err) => resolve(err.message));
  });
  teardown.add(() => stopEnvoy(child, exited));

  const output = () => out;
  const failFast = exited.then((how) => {
    throw new Error(`envoy ${opts.name} exited (${how}) before it was ready`);
  });
  failFast.catch(() => undefined);

  let admin = '';
  const ready = (async () => {
    await waitFor(() => fs.existsSync(adminFile) && fs.readFileSync(adminFile, 'utf8').trim() !== '', { timeoutMs: opts.timeoutMs ?? 15_000, description: `envoy ${opts.name} to write its admin address` });
    admin = `http://${fs.readFileSync(adminFile, 'utf8').trim()}`;
    await waitFor(async () => {
      const r = await fetch(`${admin}/ready`);
      return r.status === 200 && (await r.text()).trim() === 'LIVE';
    }, { timeoutMs: opts.timeoutMs ?? 15_000, intervalMs: 100, description: `envoy ${opts.name} /ready to say LIVE` });
  })();
  try {
    await Promise.race([ready, failFast]);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- envoy ${opts.name} output ---\n${output()}`);
  }
  return {
    name: opts.name,
    admin,
    output,
    async adminGet(p) {
      const r = await fetch(`${admin}${p}`);
      return { status: r.status, text: await r.text() };
    },
  };
}

async function stopEnvoy(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/**
 * Waits until Envoy holds the route config `name` from meshpilot with a virtual host for `domain`,
 * and every cluster those routes name (from CDS) — read from its own /config_dump.
 */
export async function waitForRoutes(envoy: EnvoyProcess, name: string, domain: string, timeoutMs = 20_000): Promise<void> {
  await waitFor(async () => {
    const dump = JSON.parse((await envoy.adminGet('/config_dump?resource=dynamic_route_configs')).text) as Json;
    const rc = (dump.configs as Json[] | undefined)?.map((c) => c.route_config).find((r) => r?.name === name);
    return Boolean(rc?.virtual_hosts?.some((vh: Json) => (vh.domains as string[]).includes(domain)));
  }, { timeoutMs, intervalMs: 100, description: `envoy ${envoy.name} to hold route config ${name} with ${domain}` });
}

/** Envoy's /clusters lines for one cluster: `host:port` -> its health flags. */
export async function clusterHosts(envoy: EnvoyProcess, cluster: string): Promise<Map<string, string>> {
  const text = (await envoy.adminGet('/clusters')).text;
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^(.*)::([^:]+:\d+)::health_flags::(.*)$/.exec(line);
    if (m && m[1] === cluster) out.set(m[2]!, m[3]!);
  }
  return out;
}
