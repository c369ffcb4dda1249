// examples/compose, checked without Docker or Envoy (neither can be had here): the compose file's
// structure and its references into the repo, the Envoy bootstraps (up to date with their
// generator, Envoy's schema, pointing at the meshpilot service as compose.yaml runs it, node ids
// and labels matching the containers and the rules), the config the real `meshpilot translate`
// gives each of those nodes (the route config the explicit outbound listener names, with the
// canary split, the header route, the fault and the rate limit the walkthrough shows), the rules
// through `meshpilot validate` and the route tests through `meshpilot test`, and the echo app run
// under node. What it cannot show is a real Envoy or Docker running it (README of the example).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { loadInjectionConfig } from '../control-plane/inject/config.ts';
import { XDS_CLUSTER } from '../control-plane/inject/bootstrap.ts';
import { checkResource } from '../control-plane/envoy/check.ts';
import { bootstrapFile, bootstrapText, OUTBOUND, SERVICE_PORT, WORKLOADS, type Workload } from '../examples/compose/make-bootstraps.ts';

const run = promisify(execFile);
const DIR = path.resolve('examples/compose');
const RULES = path.join(DIR, 'rules');
const BIN = path.resolve('bin/meshpilot.js');
const BOOTSTRAP_TYPE = 'type.googleapis.com/envoy.config.bootstrap.v3.Bootstrap';

type Service = Record<string, any>;
const compose = YAML.parse(fs.readFileSync(path.join(DIR, 'compose.yaml'), 'utf8'), { merge: true }) as { services: Record<string, Service>; networks: Record<string, any> };
const services = compose.services;
const injection = loadInjectionConfig();

/** The value after `flag` in a command list. */
function flag(cmd: string[], name: string): string | undefined {
  const i = cmd.indexOf(name);
  return i >= 0 ? cmd[i + 1] : undefined;
}

/** A short-syntax volume `src:dst[:mode]`, its source resolved against the compose file's folder. */
function volume(v: string): { source: string; target: string; mode?: string } {
  const [source, target, mode] = v.split(':');
  return { source: path.resolve(DIR, source!), target: target!, ...(mode ? { mode } : {}) };
}

function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}
function inCidr(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/');
  const size = 2 ** (32 - Number(bits));
  const start = Math.floor(ipToInt(base!) / size) * size;
  return ipToInt(ip) >= start && ipToInt(ip) < start + size;
}

// The rule files, every document of every one.
const ruleDocs = fs.readdirSync(RULES).filter((f) => /\.ya?ml$/.test(f)).flatMap((f) => YAML.parseAllDocuments(fs.readFileSync(path.join(RULES, f), 'utf8')).map((d) => d.toJS() as Record<string, any>));

/** Labels of the mesh endpoint (ServiceEntry endpoint or WorkloadEntry) at an address, and the hosts it serves. */
function meshEndpoint(ip: string): { labels: Record<string, string>; hosts: string[]; ports: number[] } | undefined {
  for (const d of ruleDocs) {
    if (d.kind === 'WorkloadEntry' && d.spec.address === ip) return { labels: d.spec.labels, hosts: [], ports: [] };
    if (d.kind !== 'ServiceEntry') continue;
    const ep = (d.spec.endpoints ?? []).find((e: { address: string }) => e.address === ip);
    if (ep) return { labels: ep.labels, hosts: d.spec.hosts, ports: Object.values(ep.ports ?? {}) as number[] };
  }
  return undefined;
}

const meshpilot = services.meshpilot!;
const meshpilotCmd = meshpilot.command as string[];
const xdsListen = flag(meshpilotCmd, '--xds-listen')!;
const adminListen = flag(meshpilotCmd, '--admin-listen')!;

describe('examples/compose/compose.yaml', () => {
  it('runs meshpilot built from the project Dockerfile, serving the mounted example rules', () => {
    const context = path.resolve(DIR, meshpilot.build.context);
    expect(context).toBe(path.resolve('.'));
    expect(fs.existsSync(path.join(context, meshpilot.build.dockerfile))).toBe(true);
    expect(meshpilotCmd[0]).toBe('serve');
    const configDir = flag(meshpilotCmd, '--config-dir');
    const rulesMount = (meshpilot.volumes as string[]).map(volume).find((v) => v.target === configDir);
    expect(rulesMount?.source).toBe(RULES);
    expect(rulesMount?.mode).toBe('ro');
    // xDS and admin listen on every interface of the container (sidecars are other containers);
    // the admin port is published on the host's loopback only.
    expect(xdsListen).toMatch(/^0\.0\.0\.0:\d+$/);
    expect(adminListen).toMatch(/^0\.0\.0\.0:\d+$/);
    const adminPort = adminListen.split(':')[1];
    expect(meshpilot.ports).toEqual([`127.0.0.1:${adminPort}:${adminPort}`]);
    expect(JSON.stringify(meshpilot.healthcheck.test)).toContain(`127.0.0.1:${adminPort}/readyz`);
  });

  it('pins every image by tag (never latest) and runs Envoy at the version injection pins', () => {
    for (const [name, s] of Object.entries(services)) {
      if (s.build) continue;
      expect(s.image, name).toMatch(/^[\w./-]+:[\w][\w.-]*$/);
      expect(s.image.split(':').at(-1), name).not.toBe('latest');
    }
    const envoys = Object.entries(services).filter(([n]) => n.endsWith('-envoy'));
    expect(envoys.length).toBe(WORKLOADS.length);
    for (const [name, s] of envoys) expect(s.image, name).toBe(`${injection.proxy.image}:${injection.proxy.version}`);
  });

  it('mounts only files and folders that exist in the repo, and every file in envoy/ is mounted', () => {
    const mounted = new Set<string>();
    for (const [name, s] of Object.entries(services)) {
      for (const v of (s.volumes ?? []) as string[]) {
        const { source } = volume(v);
        expect(fs.existsSync(source), `${name}: ${v}`).toBe(true);
        mounted.add(source);
      }
    }
    for (const f of fs.readdirSync(path.join(DIR, 'envoy'))) expect(mounted.has(path.join(DIR, 'envoy', f)), `envoy/${f} is not mounted`).toBe(true);
  });

  it('gives each workload an app and a sidecar sharing its network namespace, at the address its node id and the rules name', () => {
    const network = compose.networks.mesh.ipam.config[0];
    const names = new Set(Object.keys(services));
    expect(names).toEqual(new Set(['meshpilot', ...WORKLOADS.flatMap((w) => [w.name, `${w.name}-envoy`])]));
    const addresses = new Set<string>();
    for (const w of WORKLOADS) {
      const app = services[w.name]!;
      const ip = app.networks.mesh.ipv4_address;
      expect(ip, w.name).toBe(w.ip);
      expect(inCidr(ip, network.subnet)).toBe(true);
      expect(inCidr(ip, network.ip_range), `${w.name}: ${ip} is in the dynamic range`).toBe(false);
      expect(addresses.has(ip)).toBe(false);
      addresses.add(ip);
      const ep = meshEndpoint(ip);
      expect(ep, `no ServiceEntry endpoint or WorkloadEntry at ${ip}`).toBeDefined();
      expect(ep!.labels).toEqual(w.labels);
      const sidecar = services[`${w.name}-envoy`]!;
      expect(sidecar.network_mode).toBe(`service:${w.name}`);
      expect(sidecar.depends_on.meshpilot).toEqual({ condition: 'service_healthy' });
      const config = flag(sidecar.command, '-c');
      const mount = (sidecar.volumes as string[]).map(volume).find((v) => v.target === config);
      expect(mount?.source, w.name).toBe(bootstrapFile(w));
      expect(sidecar.user).toBe(`${injection.proxy.uid}:${injection.proxy.uid}`);
    }
  });

  it('runs the echo app in each service workload, on the port its ServiceEntry endpoint names, calling upstreams by a name its routes know', () => {
    for (const w of WORKLOADS.filter((x) => x.name !== 'client')) {
      const app = services[w.name]!;
      expect(app.command).toEqual(['node', '/app/echo.mjs']);
      expect((app.volumes as string[]).map(volume)).toContainEqual({ source: path.join(DIR, 'app/echo.mjs'), target: '/app/echo.mjs', mode: 'ro' });
      expect(app.environment).toMatchObject({ SERVICE: w.labels.app, VERSION: w.labels.version });
      // echo.mjs's default port, as no PORT is set.
      expect(app.environment.PORT).toBeUndefined();
      expect(meshEndpoint(w.ip)!.ports).toEqual([SERVICE_PORT]);
      expect(app.healthcheck.test).toEqual(['CMD', 'node', '/app/echo.mjs', '--check']);
    }
    expect(services['productpage-v1']!.environment.UPSTREAM).toBe('reviews:9080');
  });
});

describe('examples/compose/envoy/*.yaml (the sidecars\' bootstraps)', () => {
  it.each(WORKLOADS.map((w) => [w.name, w] as const))('%s: up to date with make-bootstraps.ts', (_name, w) => {
    expect(fs.readFileSync(bootstrapFile(w), 'utf8'), 'run `npx tsx examples/compose/make-bootstraps.ts`').toBe(bootstrapText(w));
  });

  it.each(WORKLOADS.map((w) => [w.name, w] as const))('%s: passes Envoy\'s schema check and dials meshpilot where compose.yaml runs it', (_name, w) => {
    const boot = YAML.parse(fs.readFileSync(bootstrapFile(w), 'utf8'));
    expect(checkResource({ '@type': BOOTSTRAP_TYPE, ...boot })).toEqual([]);
    expect(boot.node.id).toBe(`sidecar~${w.ip}~${w.name}.default~default.svc.cluster.local`);
    expect(boot.node.metadata).toMatchObject({ NAMESPACE: 'default', LABELS: w.labels, SERVICE_ACCOUNT: w.serviceAccount });
    const xds = boot.static_resources.clusters.find((c: { name: string }) => c.name === XDS_CLUSTER);
    expect(xds.type).toBe('STRICT_DNS');
    const dialled = xds.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
    expect(services[dialled.address], `${dialled.address} is not a compose service`).toBe(meshpilot);
    expect(String(dialled.port_value)).toBe(xdsListen.split(':')[1]);
    expect(xds.transport_socket).toBeUndefined(); // meshpilot runs without --xds-tls here
    // No agent in this example: nothing may name the SDS cluster.
    expect(JSON.stringify(boot)).not.toContain('sds-grpc');
    // Admin stays on the loopback of the shared namespace; no port clash with the app.
    expect(boot.admin.address.socket_address.address).toBe('127.0.0.1');
    const bound = boot.static_resources.listeners.map((l: any) => l.address.socket_address.port_value);
    expect(bound).not.toContain(SERVICE_PORT);
  });
});

// ---------------------------------------------------------------- meshpilot on the example

interface Translated { listeners: Map<string, any>; routes: Map<string, any>; clusters: Map<string, any> }
const translated = new Map<string, Translated>();

function vhost(routeConfig: any, domain: string): any {
  return routeConfig.virtual_hosts.find((v: { domains: string[] }) => v.domains.includes(domain));
}
const hcmOf = (listener: any) => listener.filter_chains[0].filters.find((f: any) => f.name === 'envoy.filters.network.http_connection_manager').typed_config;

describe('meshpilot translate for each bootstrap\'s node (bin/meshpilot.js)', () => {
  beforeAll(async () => {
    for (const w of WORKLOADS) {
      const boot = YAML.parse(fs.readFileSync(bootstrapFile(w), 'utf8'));
      const { stdout } = await run(process.execPath, [BIN, 'translate', '--config-dir', RULES, '--node-id', boot.node.id, '--node-metadata', JSON.stringify(boot.node.metadata)], { timeout: 60_000 });
      const out = JSON.parse(stdout) as { node: { labels: Record<string, string> }; resources: any[] };
      expect(out.node.labels).toEqual(w.labels);
      const of = (suffix: string) => new Map(out.resources.filter((r) => r['@type'].endsWith(suffix)).map((r) => [String(r.name ?? r.cluster_name), r]));
      translated.set(w.name, { listeners: of('.Listener'), routes: of('.RouteConfiguration'), clusters: of('.Cluster') });
    }
  }, 180_000);

  const staticOutbound = (w: Workload) => YAML.parse(fs.readFileSync(bootstrapFile(w), 'utf8')).static_resources.listeners.find((l: any) => l.name === OUTBOUND.name);

  it.each(WORKLOADS.map((w) => [w.name, w] as const))('%s: the explicit outbound listener names the route config of meshpilot\'s own outbound listener, with every HTTP filter it carries, in order', (_name, w) => {
    const t = translated.get(w.name)!;
    const mine = hcmOf(staticOutbound(w));
    expect(staticOutbound(w).address.socket_address).toEqual({ address: OUTBOUND.address, port_value: OUTBOUND.port });
    const own = t.listeners.get(`0.0.0.0_${SERVICE_PORT}`);
    expect(own, 'meshpilot generated no outbound listener for the service port').toBeDefined();
    expect(mine.rds).toEqual(hcmOf(own).rds);
    expect(t.routes.has(mine.rds.route_config_name)).toBe(true);
    const names = (h: any) => h.http_filters.map((f: { name: string }) => f.name);
    // Every filter meshpilot's listener has, in the same order (ours may carry more, inert).
    const ours = names(mine);
    expect(ours.filter((n: string) => names(hcmOf(own)).includes(n))).toEqual(names(hcmOf(own)));
    expect(ours.at(-1)).toBe('envoy.filters.http.router');
  });

  it('productpage: reviews by its short name, jason to v2, everyone else 90/10 v1/v3', () => {
    const rc = translated.get('productpage-v1')!.routes.get(String(SERVICE_PORT));
    const reviews = vhost(rc, 'reviews:9080');
    expect(reviews).toBeDefined();
    expect(vhost(rc, 'reviews')).toBe(reviews);
    const [jason, canary] = reviews.routes;
    expect(jason.match.headers).toEqual([{ name: 'end-user', string_match: { exact: 'jason' } }]);
    expect(jason.route.cluster).toBe('outbound|9080|v2|reviews.default.svc.cluster.local');
    const split = Object.fromEntries(canary.route.weighted_clusters.clusters.map((c: { name: string; weight: number }) => [c.name, c.weight]));
    expect(split).toEqual({ 'outbound|9080|v1|reviews.default.svc.cluster.local': 90, 'outbound|9080|v3|reviews.default.svc.cluster.local': 10 });
    // The subsets' clusters exist for the caller.
    for (const v of ['v1', 'v2', 'v3']) expect(translated.get('productpage-v1')!.clusters.has(`outbound|9080|${v}|reviews.default.svc.cluster.local`)).toBe(true);
  });

  it('reviews v2 and v3: ratings by its short name, jason\'s calls aborted with 503', () => {
    for (const name of ['reviews-v2', 'reviews-v3']) {
      expect(services[name]!.environment.UPSTREAM).toBe('ratings:9080');
      const ratings = vhost(translated.get(name)!.routes.get(String(SERVICE_PORT)), 'ratings:9080');
      const [fault, rest] = ratings.routes;
      expect(fault.match.headers).toEqual([{ name: 'end-user', string_match: { exact: 'jason' } }]);
      expect(fault.typed_per_filter_config['envoy.filters.http.fault'].abort).toEqual({ http_status: 503, percentage: { numerator: 1_000_000, denominator: 'MILLION' } });
      expect(rest.typed_per_filter_config?.['envoy.filters.http.fault']).toBeUndefined();
    }
  });

  it('client: productpage by its short name, and details rate limited to 5 per 10 s (429)', () => {
    const rc = translated.get('client')!.routes.get(String(SERVICE_PORT));
    expect(vhost(rc, 'productpage')).toBeDefined();
    const limit = vhost(rc, 'details').typed_per_filter_config['envoy.filters.http.local_ratelimit'];
    expect(limit.token_bucket).toEqual({ max_tokens: 5, tokens_per_fill: 5, fill_interval: '10s' });
    expect(limit.status).toEqual({ code: 'TooManyRequests' });
    expect(limit.filter_enforced.default_value.numerator).toBe(100);
    // Another caller is not limited.
    expect(vhost(translated.get('productpage-v1')!.routes.get(String(SERVICE_PORT)), 'details').typed_per_filter_config).toBeUndefined();
  });

  it('every app\'s UPSTREAM is a domain of its route config, so its sidecar routes it', () => {
    for (const w of WORKLOADS) {
      const upstream = services[w.name]!.environment?.UPSTREAM;
      if (upstream) expect(vhost(translated.get(w.name)!.routes.get(String(SERVICE_PORT)), upstream), `${w.name} -> ${upstream}`).toBeDefined();
    }
  });
});

describe('meshpilot validate and test on the example', () => {
  it('validate: every rule valid, no errors, no warnings', async () => {
    const { stdout } = await run(process.execPath, [BIN, 'validate', '--config-dir', RULES], { timeout: 60_000 });
    expect(stdout).toMatch(/^\d+ rules valid, 0 errors, 0 warnings$/m);
    const count = Number(/^(\d+) rules valid/m.exec(stdout)![1]);
    expect(count).toBe(ruleDocs.length);
  });

  it('the walkthrough\'s route tests pass', async () => {
    const { stdout } = await run(process.execPath, [BIN, 'test', '--config-dir', RULES, path.join(DIR, 'route-tests.yaml')], { timeout: 60_000 });
    expect(stdout).toMatch(/^\d+ passed, 0 failed$/m);
  });
});

// ---------------------------------------------------------------- the echo app

const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGTERM');
});

/** Starts echo.mjs on 127.0.0.1, a port the OS picks; resolves to its base URL. */
function startEcho(env: Record<string, string>): Promise<string> {
  const child = spawn(process.execPath, [path.join(DIR, 'app/echo.mjs')], { env: { ...process.env, HOST: '127.0.0.1', PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`echo.mjs did not start: ${out}`)), 15_000);
    child.stdout!.on('data', (c) => {
      out += String(c);
      const m = / listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(`http://127.0.0.1:${m[1]}`);
      }
    });
    child.on('exit', (code) => reject(new Error(`echo.mjs exited (${code}): ${out}`)));
  });
}

async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('examples/compose/app/echo.mjs', () => {
  it('defaults to the ports the compose example uses: 9080, its sidecar\'s outbound listener and readiness port', () => {
    const text = fs.readFileSync(path.join(DIR, 'app/echo.mjs'), 'utf8');
    expect(text).toContain(`env.PORT ?? ${SERVICE_PORT}`);
    expect(text).toContain(`'http://${OUTBOUND.address}:${OUTBOUND.port}'`);
    expect(text).toContain(`'http://127.0.0.1:${injection.ports.health}/healthz/ready'`);
  });

  it('answers with who it is and the request, and calls its upstream through the "sidecar" with the Host header and end-user', async () => {
    // A second echo stands in for the sidecar: it sees what the app sends to 127.0.0.1:15080.
    const sidecar = await startEcho({ SERVICE: 'reviews', VERSION: 'v3' });
    const app = await startEcho({ SERVICE: 'productpage', VERSION: 'v1', UPSTREAM: 'reviews:9080', SIDECAR: sidecar });
    const res = await fetch(`${app}/p?x=1`, { headers: { 'end-user': 'jason', 'x-other': 'no' } });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({ service: 'productpage', version: 'v1', path: '/p?x=1', chain: 'productpage-v1 -> reviews-v3' });
    expect(body.headers['end-user']).toBe('jason');
    expect(body.upstream.status).toBe(200);
    expect(body.upstream.body.headers).toMatchObject({ host: 'reviews:9080', 'end-user': 'jason' });
    expect(body.upstream.body.headers['x-other']).toBeUndefined();
    const text = await fetch(`${app}/`, { headers: { accept: 'text/plain' } }).then((r) => r.text());
    expect(text).toBe('productpage-v1 -> reviews-v3\n');
  });

  it('reports an upstream that cannot be reached as 502 with the reason in the chain', async () => {
    const app = await startEcho({ SERVICE: 'reviews', VERSION: 'v2', UPSTREAM: 'ratings:9080', SIDECAR: `http://127.0.0.1:${await freePort()}` });
    const res = await fetch(`${app}/`, { headers: { accept: 'text/plain' } });
    expect(res.status).toBe(502);
    expect(await res.text()).toMatch(/^reviews-v2 -> ratings:9080 unreachable \(.*ECONNREFUSED.*\)\n$/);
  });

  it('--check: healthy only when the app answers and its sidecar is ready', async () => {
    const app = await startEcho({ SERVICE: 'details', VERSION: 'v1' });
    const port = new URL(app).port;
    const ready = await startEcho({ SERVICE: 'fake-envoy-ready' });
    const check = (env: Record<string, string>) =>
      run(process.execPath, [path.join(DIR, 'app/echo.mjs'), '--check'], { env: { ...process.env, ...env }, timeout: 15_000 }).then(() => 0, (e: { code: number }) => e.code);
    expect(await check({ PORT: port, SIDECAR_READY: `${ready}/healthz` })).toBe(0);
    expect(await check({ PORT: port, SIDECAR_READY: `http://127.0.0.1:${await freePort()}/healthz/ready` })).toBe(1);
    expect(await check({ PORT: String(await freePort()), SIDECAR_READY: `${ready}/healthz` })).toBe(1);
  });
});
