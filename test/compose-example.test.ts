// examples/compose, checked without Docker or Envoy (neither can be had here): the compose file's
// structure (each workload a "pod": netns owner, init with injection's redirect, agent, Envoy, app,
// in order) and its references into the repo; the generated files (Envoy bootstraps, the redirect
// script, the demo tokens) against sidecar injection's own code; the real CA and agent run with the
// example's flags and tokens (bin/meshpilot.js serve and agent); the config `meshpilot translate`
// gives each node (mTLS inbound and outbound, the canary, header route, fault, rate limit,
// authorization); the rules through `meshpilot validate` and `meshpilot test`; the echo app under
// node. What it cannot show is a real Envoy, iptables or Docker running it (README of the example).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { certFilePaths } from '../control-plane/agent/cert-files.ts';
import { BootstrapTokens } from '../control-plane/ca/bootstrap-tokens.ts';
import { BUNDLE } from '../control-plane/ca/root-store.ts';
import { XDS_SERVER_NAMES } from '../control-plane/ca/tls-credentials.ts';
import { agentContainer } from '../control-plane/inject/agent-container.ts';
import { loadInjectionConfig } from '../control-plane/inject/config.ts';
import { SDS_CLUSTER, XDS_CLUSTER } from '../control-plane/inject/bootstrap.ts';
import { initContainer } from '../control-plane/inject/init-container.ts';
import { VOLUMES } from '../control-plane/inject/names.ts';
import { silentLogger } from '../control-plane/log.ts';
import { checkResource } from '../control-plane/envoy/check.ts';
import {
  agentArgs, agentTokenFile, bootstrapFile, bootstrapText, CA_TOKENS_FILE, generatedFiles, REDIRECT_FILE, SERVICE_PORT, WORKLOADS, XDS, type Workload,
} from '../examples/compose/make-bootstraps.ts';
import { waitFor } from './helpers/wait.ts';

const run = promisify(execFile);
const DIR = path.resolve('examples/compose');
const RULES = path.join(DIR, 'rules');
const BIN = path.resolve('bin/meshpilot.js');
const BOOTSTRAP_TYPE = 'type.googleapis.com/envoy.config.bootstrap.v3.Bootstrap';
const UPSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
const DOWNSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';

type Service = Record<string, any>;
const compose = YAML.parse(fs.readFileSync(path.join(DIR, 'compose.yaml'), 'utf8'), { merge: true }) as { services: Record<string, Service>; networks: Record<string, any>; volumes: Record<string, any> };
const services = compose.services;
const injection = loadInjectionConfig();
const UID = `${injection.proxy.uid}:${injection.proxy.uid}`;
const serviceWorkloads = WORKLOADS.filter((w) => w.name !== 'client');

/** The value after `flag` in a command list. */
function flag(cmd: string[], name: string): string | undefined {
  const i = cmd.indexOf(name);
  return i >= 0 ? cmd[i + 1] : undefined;
}

interface Mount { source: string; target: string; mode?: string; named: boolean }
/** A short-syntax volume `src:dst[:mode]`: a bind mount (source resolved against the compose file's folder) or a named volume. */
function volume(v: string): Mount {
  const [source, target, mode] = v.split(':');
  const named = !source!.startsWith('.') && !source!.startsWith('/');
  return { source: named ? source! : path.resolve(DIR, source!), target: target!, ...(mode ? { mode } : {}), named };
}
const mounts = (s: Service): Mount[] => ((s.volumes ?? []) as string[]).map(volume);
/** The mount holding `file` in a service (the longest target that is a prefix of it). */
function mountOf(s: Service, file: string): Mount | undefined {
  return mounts(s).filter((m) => file === m.target || file.startsWith(`${m.target}/`)).sort((a, b) => b.target.length - a.target.length)[0];
}
/** What `file` in a service's container is on the host, for a bind mount. */
function hostPath(s: Service, file: string): string | undefined {
  const m = mountOf(s, file);
  return m && !m.named ? path.join(m.source, path.relative(m.target, file)) : undefined;
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

/** The mesh endpoint (ServiceEntry endpoint or WorkloadEntry) at an address: labels, service account, the hosts it serves. */
function meshEndpoint(ip: string): { labels: Record<string, string>; serviceAccount?: string; hosts: string[]; ports: number[] } | undefined {
  for (const d of ruleDocs) {
    if (d.kind === 'WorkloadEntry' && d.spec.address === ip) return { labels: d.spec.labels, serviceAccount: d.spec.serviceAccount, hosts: [], ports: [] };
    if (d.kind !== 'ServiceEntry') continue;
    const ep = (d.spec.endpoints ?? []).find((e: { address: string }) => e.address === ip);
    if (ep) return { labels: ep.labels, serviceAccount: ep.serviceAccount, hosts: d.spec.hosts, ports: Object.values(ep.ports ?? {}) as number[] };
  }
  return undefined;
}

const meshpilot = services.meshpilot!;
const meshpilotCmd = meshpilot.command as string[];
const xdsListen = flag(meshpilotCmd, '--xds-listen')!;
const adminListen = flag(meshpilotCmd, '--admin-listen')!;
const caDir = flag(meshpilotCmd, '--ca-dir')!;
const caTokens = flag(meshpilotCmd, '--ca-tokens')!;
const bootOf = (w: Workload) => YAML.parse(fs.readFileSync(bootstrapFile(w), 'utf8')) as Record<string, any>;
const spiffe = (sa: string) => `spiffe://cluster.local/ns/default/sa/${sa}`;

describe('examples/compose/compose.yaml', () => {
  it('runs meshpilot built from the project Dockerfile: the mounted rules, xDS over TLS with the CA, tokens, a CA volume, at a name its certificate has', () => {
    const context = path.resolve(DIR, meshpilot.build.context);
    expect(context).toBe(path.resolve('.'));
    expect(fs.existsSync(path.join(context, meshpilot.build.dockerfile))).toBe(true);
    expect(meshpilotCmd[0]).toBe('serve');
    const configDir = flag(meshpilotCmd, '--config-dir')!;
    expect(mountOf(meshpilot, configDir)).toEqual({ source: RULES, target: configDir, mode: 'ro', named: false });
    // xDS over TLS on injection's CA port, plaintext xDS on its plain port, admin: every interface
    // of the container (sidecars are other containers); admin published on the host's loopback only.
    expect(meshpilotCmd).toContain('--xds-tls');
    expect(xdsListen).toBe(`0.0.0.0:${injection.xds.caPort}`);
    expect(flag(meshpilotCmd, '--xds-plaintext-listen')).toBe(`0.0.0.0:${injection.xds.port}`);
    expect(adminListen).toMatch(/^0\.0\.0\.0:\d+$/);
    const adminPort = adminListen.split(':')[1];
    expect(meshpilot.ports).toEqual([`127.0.0.1:${adminPort}:${adminPort}`]);
    expect(JSON.stringify(meshpilot.healthcheck.test)).toContain(`127.0.0.1:${adminPort}/readyz`);
    // The root filesystem is read-only: the CA dir is a writable named volume, owned by the image's uid.
    expect(meshpilot.read_only).toBe(true);
    const ca = mountOf(meshpilot, caDir)!;
    expect(ca).toMatchObject({ target: caDir, named: true });
    expect(ca.mode).toBeUndefined();
    expect(compose.volumes[ca.source].driver_opts.o).toMatch(/(^|,)uid=65532(,|$)/);
    expect(fs.readFileSync(path.resolve('Dockerfile'), 'utf8')).toMatch(/^USER 65532:65532$/m);
    // The tokens file is the generated one.
    expect(hostPath(meshpilot, caTokens)).toBe(CA_TOKENS_FILE);
    // The name sidecars and agents dial is a network alias of meshpilot and a DNS name of its
    // serving certificate; the compose service name is not one.
    expect(meshpilot.networks.mesh.aliases).toEqual([XDS.address]);
    expect(XDS_SERVER_NAMES.dnsNames).toContain(XDS.address);
    expect(XDS_SERVER_NAMES.dnsNames).not.toContain('meshpilot');
    expect(String(XDS.caPort)).toBe(xdsListen.split(':')[1]);
  });

  it('pins every image by tag (never latest); Envoy, the redirect and the agent are injection\'s images (the agent\'s built here)', () => {
    for (const [name, s] of Object.entries(services)) {
      expect(s.image, name).toMatch(/^[\w./-]+:[\w][\w.-]*$/);
      if (s.build) continue;
      expect(s.image.split(':').at(-1), name).not.toBe('latest');
    }
    const envoys = Object.entries(services).filter(([n]) => n.endsWith('-envoy'));
    expect(envoys.length).toBe(WORKLOADS.length);
    for (const [name, s] of envoys) expect(s.image, name).toBe(`${injection.proxy.image}:${injection.proxy.version}`);
    for (const w of WORKLOADS) {
      expect(services[`${w.name}-init`]!.image).toBe(injection.redirect.image);
      // The agent is the image meshpilot's service builds (the same build).
      const agent = services[`${w.name}-agent`]!;
      expect(agent.image).toBe(meshpilot.image);
      expect(agent.build).toEqual(meshpilot.build);
      expect(services[w.name]!.image).toMatch(/^registry\.k8s\.io\/pause:\d/);
    }
  });

  it('mounts only files, folders and declared volumes that exist; every generated file is mounted', () => {
    const mounted = new Set<string>();
    for (const [name, s] of Object.entries(services)) {
      for (const m of mounts(s)) {
        if (m.named) expect(compose.volumes, `${name}: volume ${m.source}`).toHaveProperty([m.source]);
        else expect(fs.existsSync(m.source), `${name}: ${m.source}`).toBe(true);
        mounted.add(m.source);
      }
    }
    for (const [file] of generatedFiles()) expect(mounted.has(file), `${path.relative(DIR, file)} is not mounted`).toBe(true);
    for (const sub of ['envoy', 'init', 'tokens']) {
      for (const f of fs.readdirSync(path.join(DIR, sub))) expect(mounted.has(path.join(DIR, sub, f)), `${sub}/${f} is not mounted`).toBe(true);
    }
    for (const v of Object.keys(compose.volumes)) expect([...mounted], `volume ${v} is not used`).toContain(v);
  });

  it('has meshpilot and, per workload, a pod: netns owner, init, agent, Envoy and app, nothing else', () => {
    expect(new Set(Object.keys(services))).toEqual(new Set(['meshpilot', ...WORKLOADS.flatMap((w) => [w.name, `${w.name}-init`, `${w.name}-agent`, `${w.name}-envoy`, `${w.name}-app`])]));
  });

  it.each(WORKLOADS.map((w) => [w.name, w] as const))('%s: the pod\'s network namespace holds the address its node id and the rules name, and its service\'s name', (_name, w) => {
    const network = compose.networks.mesh.ipam.config[0];
    const owner = services[w.name]!;
    expect(owner.network_mode).toBeUndefined();
    const ip = owner.networks.mesh.ipv4_address;
    expect(ip).toBe(w.ip);
    expect(inCidr(ip, network.subnet)).toBe(true);
    expect(inCidr(ip, network.ip_range), `${w.name}: ${ip} is in the dynamic range`).toBe(false);
    expect(WORKLOADS.filter((x) => x.ip === ip)).toHaveLength(1);
    const ep = meshEndpoint(ip);
    expect(ep, `no ServiceEntry endpoint or WorkloadEntry at ${ip}`).toBeDefined();
    expect(ep!.labels).toEqual(w.labels);
    expect(ep!.serviceAccount).toBe(w.serviceAccount);
    // Compose DNS: the service's short name resolves to its pods' addresses (the endpoints), so an
    // app calling http://reviews:9080 connects to one of them, which the redirect hands to Envoy.
    const aliases = owner.networks.mesh.aliases ?? [];
    expect(aliases).toEqual(ep!.hosts.map((h) => h.split('.')[0]));
    // Every other container of the pod joins its namespace.
    for (const part of ['init', 'agent', 'envoy', 'app']) expect(services[`${w.name}-${part}`]!.network_mode, part).toBe(`service:${w.name}`);
  });

  it.each(WORKLOADS.map((w) => [w.name, w] as const))('%s: init runs injection\'s redirect as root with NET_ADMIN and NET_RAW only, before anything else of the pod', (_name, w) => {
    const init = services[`${w.name}-init`]!;
    const k8s = initContainer(injection, { requests: {}, limits: {}, excludeInboundPorts: [], excludeOutboundPorts: [], excludeOutboundCIDRs: [] });
    expect(init.user).toBe('0:0');
    expect(init.cap_add).toEqual(k8s.securityContext!.capabilities!.add);
    expect(init.cap_drop).toEqual(['ALL']);
    expect(init.privileged).toBeUndefined();
    expect(init.restart).toBe('no');
    const [shell, script] = init.entrypoint as string[];
    expect(shell).toBe(k8s.command![0]);
    expect(hostPath(init, script!)).toBe(REDIRECT_FILE);
    expect(init.depends_on).toEqual({ [w.name]: { condition: 'service_started' } });
  });

  it.each(WORKLOADS.map((w) => [w.name, w] as const))('%s: the agent runs as injection\'s, with its token, the CA\'s bundle and the pod\'s run volume, after init and a healthy meshpilot', (_name, w) => {
    const agent = services[`${w.name}-agent`]!;
    const cmd = agent.command as string[];
    expect(cmd).toEqual(agentArgs());
    // Every flag injection's agent has, with the same value except --ca-root.
    const k8s = agentContainer({ ...injection, xds: { ...injection.xds, address: XDS.address } }).args!;
    for (let i = 1; i < k8s.length; i += 2) if (k8s[i] !== '--ca-root') expect(flag(cmd, k8s[i]!), k8s[i]).toBe(k8s[i + 1]);
    expect(agent.user).toBe(UID);
    expect(agent.read_only).toBe(true);
    expect(agent.depends_on).toEqual({ [`${w.name}-init`]: { condition: 'service_completed_successfully' }, meshpilot: { condition: 'service_healthy' } });
    expect(agent.environment).toEqual({ MESHPILOT_POD_NAMESPACE: 'default', MESHPILOT_SERVICE_ACCOUNT: w.serviceAccount });
    // --ca-address: meshpilot's alias and TLS port.
    expect(flag(cmd, '--ca-address')).toBe(`${meshpilot.networks.mesh.aliases[0]}:${xdsListen.split(':')[1]}`);
    // --ca-root: the bundle the CA writes in its dir, from meshpilot's CA volume, read-only.
    const root = flag(cmd, '--ca-root')!;
    expect(path.posix.basename(root)).toBe(BUNDLE);
    const caMount = mountOf(agent, root)!;
    expect(caMount).toMatchObject({ source: mountOf(meshpilot, caDir)!.source, named: true, mode: 'ro' });
    expect(path.posix.relative(caMount.target, root)).toBe(path.posix.relative(caDir, `${caDir}/${BUNDLE}`));
    // --token-file: this workload's generated token.
    expect(hostPath(agent, flag(cmd, '--token-file')!)).toBe(agentTokenFile(w));
    // The SDS socket and the certificates: in the pod's own run volume, in memory, owned by 1337.
    const run = mountOf(agent, flag(cmd, '--sds-socket')!)!;
    expect(run).toMatchObject({ source: `${w.name}-run`, target: VOLUMES.run.mountPath, named: true });
    expect(mountOf(agent, flag(cmd, '--out-dir')!)).toEqual(run);
    expect(compose.volumes[run.source].driver_opts).toMatchObject({ type: 'tmpfs' });
    expect(compose.volumes[run.source].driver_opts.o).toContain(`uid=${injection.proxy.uid}`);
    // No other pod shares it.
    for (const [name, s] of Object.entries(services)) if (mounts(s).some((m) => m.source === run.source)) expect([`${w.name}-agent`, `${w.name}-envoy`]).toContain(name);
    // Healthy once it has a certificate: its --ready-listen port and path.
    const ready = flag(cmd, '--ready-listen')!;
    expect(ready).toBe(`0.0.0.0:${injection.ports.agentHealth}`);
    expect(JSON.stringify(agent.healthcheck.test)).toContain(`http://127.0.0.1:${injection.ports.agentHealth}/healthz/ready`);
  });

  it.each(WORKLOADS.map((w) => [w.name, w] as const))('%s: Envoy runs as uid 1337 from its bootstrap, sharing the agent\'s run volume, after a healthy agent; the app after a healthy Envoy', (_name, w) => {
    const envoy = services[`${w.name}-envoy`]!;
    expect(envoy.user).toBe(UID);
    expect(hostPath(envoy, flag(envoy.command, '-c')!)).toBe(bootstrapFile(w));
    expect(envoy.depends_on).toEqual({ [`${w.name}-agent`]: { condition: 'service_healthy' } });
    // The SDS socket the bootstrap dials is the agent's, in the same volume.
    const socket = bootOf(w).static_resources.clusters.find((c: { name: string }) => c.name === SDS_CLUSTER).load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.pipe.path;
    const agentCmd = services[`${w.name}-agent`]!.command as string[];
    expect(socket).toBe(flag(agentCmd, '--sds-socket'));
    expect(mountOf(envoy, socket)).toEqual(mountOf(services[`${w.name}-agent`]!, socket));
    expect(JSON.stringify(envoy.healthcheck.test)).toContain(`/dev/tcp/127.0.0.1/${injection.ports.health}`);
    expect(JSON.stringify(envoy.healthcheck.test)).toContain('GET /healthz/ready');
    // The app: not uid 1337, so its traffic is redirected.
    const app = services[`${w.name}-app`]!;
    expect(app.user).not.toBe(UID);
    expect(app.cap_add).toBeUndefined();
    expect(app.depends_on).toEqual({ [`${w.name}-envoy`]: { condition: 'service_healthy' } });
  });

  it('the redirect leaves uid 1337 (Envoy, the agent) alone, and sends TCP to Envoy\'s virtual listeners', () => {
    const script = fs.readFileSync(REDIRECT_FILE, 'utf8');
    expect(script).toContain(`--uid-owner ${injection.proxy.uid} -j RETURN`);
    expect(script).toContain(`REDIRECT --to-ports ${injection.ports.outbound}`);
    expect(script).toContain(`REDIRECT --to-ports ${injection.ports.inbound}`);
    // The agent's readiness and Envoy's are not redirected (Docker's healthchecks use loopback anyway).
    for (const p of [injection.ports.agentHealth, injection.ports.health]) expect(script).toContain(`--dport ${p} -j RETURN`);
    expect(script).not.toContain('$');
  });

  it('runs the echo app in each service workload, on the port its ServiceEntry endpoint names, calling upstreams by a name its routes know', () => {
    for (const w of serviceWorkloads) {
      const app = services[`${w.name}-app`]!;
      expect(app.command).toEqual(['node', '/app/echo.mjs']);
      expect(mounts(app)).toContainEqual({ source: path.join(DIR, 'app/echo.mjs'), target: '/app/echo.mjs', mode: 'ro', named: false });
      expect(app.environment).toMatchObject({ SERVICE: w.labels.app, VERSION: w.labels.version });
      // echo.mjs's default port, as no PORT is set.
      expect(app.environment.PORT).toBeUndefined();
      expect(meshEndpoint(w.ip)!.ports).toEqual([SERVICE_PORT]);
      expect(app.healthcheck.test).toEqual(['CMD', 'node', '/app/echo.mjs', '--check']);
      // No explicit sidecar address: the redirect does it.
      expect(JSON.stringify(app)).not.toContain('15080');
    }
    expect(services['productpage-v1-app']!.environment.UPSTREAM).toBe('reviews:9080');
    expect(services['client-app']!.image).toMatch(/^curlimages\/curl:/);
  });
});

describe('examples/compose generated files', () => {
  it.each(generatedFiles().map(([f, text]) => [path.relative(DIR, f), f, text] as const))('%s: up to date with make-bootstraps.ts', (_name, file, text) => {
    expect(fs.readFileSync(file, 'utf8'), 'run `npx tsx examples/compose/make-bootstraps.ts`').toBe(text);
  });

  it('init/redirect.sh is the script of injection\'s init container, as control-plane/inject/init-container.ts builds it', () => {
    const k8s = initContainer(injection, { requests: {}, limits: {}, excludeInboundPorts: [], excludeOutboundPorts: [], excludeOutboundCIDRs: [] });
    expect(k8s.command!.slice(0, 2)).toEqual(['/bin/sh', '-c']);
    const lines = fs.readFileSync(REDIRECT_FILE, 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
    expect(lines.join('\n')).toBe(k8s.command![2]);
  });

  it('tokens: one demo token per workload, each accepted by the CA\'s parser as the workload\'s service account, the one its node metadata claims', async () => {
    const text = fs.readFileSync(CA_TOKENS_FILE, 'utf8');
    expect(text).toMatch(/DEMO TOKENS/);
    const tokens = new BootstrapTokens(CA_TOKENS_FILE, 'cluster.local', silentLogger);
    expect(tokens.size).toBe(WORKLOADS.length);
    const seen = new Set<string>();
    for (const w of WORKLOADS) {
      const token = fs.readFileSync(agentTokenFile(w), 'utf8').trim();
      expect(seen.has(token)).toBe(false);
      seen.add(token);
      expect(await tokens.authenticate(token), w.name).toEqual({ trustDomain: 'cluster.local', namespace: 'default', serviceAccount: w.serviceAccount });
      expect(bootOf(w).node.metadata.SERVICE_ACCOUNT).toBe(w.serviceAccount);
      expect(services[`${w.name}-agent`]!.environment.MESHPILOT_SERVICE_ACCOUNT).toBe(w.serviceAccount);
    }
    expect(await tokens.authenticate('not-a-token')).toBeUndefined();
  });
});

describe('examples/compose/envoy/*.yaml (the sidecars\' bootstraps)', () => {
  it.each(WORKLOADS.map((w) => [w.name, w] as const))('%s: passes Envoy\'s schema check; ADS over mutual TLS to meshpilot where compose.yaml runs it, at a name its certificate has; certificates over SDS', (_name, w) => {
    const boot = bootOf(w);
    expect(checkResource({ '@type': BOOTSTRAP_TYPE, ...boot })).toEqual([]);
    expect(boot.node.id).toBe(`sidecar~${w.ip}~${w.name}.default~default.svc.cluster.local`);
    expect(boot.node.metadata).toMatchObject({ NAMESPACE: 'default', LABELS: w.labels, SERVICE_ACCOUNT: w.serviceAccount, INSTANCE_IPS: w.ip });
    const xds = boot.static_resources.clusters.find((c: { name: string }) => c.name === XDS_CLUSTER);
    expect(xds.type).toBe('STRICT_DNS');
    const dialled = xds.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
    expect(meshpilot.networks.mesh.aliases, `${dialled.address} is not meshpilot's network alias`).toContain(dialled.address);
    expect(String(dialled.port_value)).toBe(xdsListen.split(':')[1]);
    // TLS: SNI and the required DNS SAN are that name, one meshpilot's serving certificate carries;
    // the client certificate and the roots come from the agent over SDS.
    const tls = xds.transport_socket.typed_config;
    expect(tls['@type']).toBe(UPSTREAM_TLS);
    expect(tls.sni).toBe(dialled.address);
    expect(XDS_SERVER_NAMES.dnsNames).toContain(tls.sni);
    expect(JSON.stringify(tls.common_tls_context.combined_validation_context.default_validation_context)).toContain(`"exact":"${dialled.address}"`);
    expect(JSON.stringify(tls.common_tls_context)).toContain(`"cluster_name":"${SDS_CLUSTER}"`);
    expect(boot.static_resources.clusters.map((c: { name: string }) => c.name)).toContain(SDS_CLUSTER);
    // Admin stays on the loopback of the shared namespace; the only static listener is readiness.
    expect(boot.admin.address.socket_address.address).toBe('127.0.0.1');
    const bound = boot.static_resources.listeners.map((l: any) => l.address.socket_address.port_value);
    expect(bound).toEqual([injection.ports.health]);
  });
});

// ---------------------------------------------------------------- the CA and the agents, for real

describe('meshpilot serve (the compose flags) and each pod\'s agent (its flags and token), run as processes', () => {
  const procs: ChildProcess[] = [];
  let tmp = '';
  afterAll(() => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  function start(args: string[], env: Record<string, string> = {}): { child: ChildProcess; out: () => string } {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(child);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    return { child, out: () => out };
  }

  it('the CA writes the bundle the agents trust; every agent gets its workload certificate with its token, checking meshpilot\'s name', async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-compose-'));
    // The compose command, with this machine's paths and free ports for what the containers have.
    const local: Record<string, string> = { [caDir]: path.join(tmp, 'ca'), [caTokens]: path.join(tmp, 'ca-tokens'), '/rules': RULES };
    fs.copyFileSync(CA_TOKENS_FILE, local[caTokens]!);
    fs.chmodSync(local[caTokens]!, 0o600);
    const args = meshpilotCmd.map((a) => local[a] ?? (/^0\.0\.0\.0:\d+$/.test(a) ? '127.0.0.1:0' : a)).filter((a) => a !== 'pretty' && a !== '--log-format');
    const serve = start(args);
    await waitFor(() => /xDS \(ADS\) server listening/.test(serve.out()) && /mesh CA ready/.test(serve.out()), { timeoutMs: 30_000, description: `serve up: ${serve.out()}` });
    const lines = serve.out().split('\n').flatMap((l) => { try { return [JSON.parse(l)]; } catch { return []; } });
    const tlsAddress = String(lines.find((l) => l.msg === 'xDS (ADS) server listening' && !/plaintext/i.test(JSON.stringify(l)))?.address ?? '');
    expect(tlsAddress).toMatch(/^127\.0\.0\.1:\d+$/);
    const bundle = path.join(local[caDir]!, BUNDLE);
    expect(fs.existsSync(bundle)).toBe(true);

    const agents = WORKLOADS.map((w) => {
      const svc = services[`${w.name}-agent`]!;
      const cmd = svc.command as string[];
      const run = path.join(tmp, `${w.name}-run`);
      fs.mkdirSync(run);
      const mapped = cmd.map((a, i) => {
        const f = cmd[i - 1];
        if (f === '--ca-address') return tlsAddress; // compose DNS is not here; the name is checked below
        if (f === '--ca-root') return path.join(local[caDir]!, path.posix.relative(mountOf(svc, a)!.target, a));
        if (f === '--token-file') return hostPath(svc, a)!;
        if (f === '--out-dir' || f === '--sds-socket') return path.join(run, path.posix.relative(VOLUMES.run.mountPath, a));
        if (f === '--ready-listen') return '127.0.0.1:0';
        return a;
      });
      // The name it dials in compose, checked in meshpilot's serving certificate.
      const host = flag(cmd, '--ca-address')!.split(':')[0]!;
      return { w, run, cmd, p: start([...mapped, '--ca-server-name', host], svc.environment) };
    });
    for (const a of agents) {
      const files = certFilePaths(path.join(a.run, path.posix.relative(VOLUMES.run.mountPath, flag(a.cmd, '--out-dir')!)));
      await waitFor(() => fs.existsSync(files.certificateFile), { timeoutMs: 30_000, description: `${a.w.name}: certificate; output: ${a.p.out()}` });
      expect(new X509Certificate(fs.readFileSync(files.certificateFile)).subjectAltName, a.w.name).toBe(`URI:${spiffe(a.w.serviceAccount)}`);
      const socket = path.join(a.run, path.posix.relative(VOLUMES.run.mountPath, flag(a.cmd, '--sds-socket')!));
      await waitFor(() => fs.existsSync(socket) && fs.statSync(socket).isSocket(), { timeoutMs: 10_000, description: `${a.w.name}: SDS socket` });
    }
  }, 120_000);
});

// ---------------------------------------------------------------- meshpilot on the example

interface Translated { listeners: Map<string, any>; routes: Map<string, any>; clusters: Map<string, any> }
const translated = new Map<string, Translated>();

function vhost(routeConfig: any, domain: string): any {
  return routeConfig.virtual_hosts.find((v: { domains: string[] }) => v.domains.includes(domain));
}
const hcmOf = (chain: any) => chain.filters.find((f: any) => f.name === 'envoy.filters.network.http_connection_manager').typed_config;

describe('meshpilot translate for each bootstrap\'s node (bin/meshpilot.js)', () => {
  beforeAll(async () => {
    await Promise.all(WORKLOADS.map(async (w) => {
      const boot = bootOf(w);
      const { stdout } = await run(process.execPath, [BIN, 'translate', '--config-dir', RULES, '--node-id', boot.node.id, '--node-metadata', JSON.stringify(boot.node.metadata)], { timeout: 60_000 });
      const out = JSON.parse(stdout) as { node: { labels: Record<string, string> }; resources: any[] };
      expect(out.node.labels).toEqual(w.labels);
      const of = (suffix: string) => new Map(out.resources.filter((r) => r['@type'].endsWith(suffix)).map((r) => [String(r.name ?? r.cluster_name), r]));
      translated.set(w.name, { listeners: of('.Listener'), routes: of('.RouteConfiguration'), clusters: of('.Cluster') });
    }));
  }, 180_000);

  it.each(WORKLOADS.map((w) => [w.name, w] as const))('%s: the virtual listeners the redirect sends to: outbound by original destination, to the service port\'s listener (not bound)', (_name, w) => {
    const t = translated.get(w.name)!;
    const out = t.listeners.get('virtualOutbound');
    expect(out.address.socket_address.port_value).toBe(injection.ports.outbound);
    expect(out.use_original_dst).toBe(true);
    const own = t.listeners.get(`0.0.0.0_${SERVICE_PORT}`);
    expect(own, 'meshpilot generated no outbound listener for the service port').toBeDefined();
    // The app listens on 9080 in the same namespace: Envoy must not bind it.
    expect(own.bind_to_port).toBe(false);
    expect(hcmOf(own.filter_chains[0]).rds.route_config_name).toBe(String(SERVICE_PORT));
    const inbound = t.listeners.get('virtualInbound');
    expect(inbound.address.socket_address.port_value).toBe(injection.ports.inbound);
    expect(inbound.listener_filters.map((f: { name: string }) => f.name)).toContain('envoy.filters.listener.original_dst');
  });

  it.each(serviceWorkloads.map((w) => [w.name, w] as const))('%s: inbound STRICT: mutual TLS only, client certificate required, to the app on 127.0.0.1', (_name, w) => {
    const t = translated.get(w.name)!;
    const chains = t.listeners.get('virtualInbound').filter_chains as any[];
    expect(chains.length).toBeGreaterThan(0);
    // STRICT: no plaintext chain at all (a plaintext connection matches none and is closed).
    for (const c of chains) {
      expect(c.transport_socket?.typed_config['@type'], c.name).toBe(DOWNSTREAM_TLS);
      expect(c.transport_socket.typed_config.require_client_certificate, c.name).toBe(true);
      expect(JSON.stringify(c.transport_socket.typed_config.common_tls_context)).toContain(`"cluster_name":"${SDS_CLUSTER}"`);
    }
    const port = chains.find((c) => c.filter_chain_match?.destination_port === SERVICE_PORT);
    expect(port, 'no inbound chain for the service port').toBeDefined();
    const cluster = t.clusters.get(hcmOf(port).route_config.virtual_hosts[0].routes[0].route.cluster);
    expect(cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address).toEqual({ address: '127.0.0.1', port_value: SERVICE_PORT });
  });

  it.each(WORKLOADS.map((w) => [w.name, w] as const))('%s: every outbound cluster to a mesh service is ISTIO_MUTUAL, expecting the service\'s identity', (_name, w) => {
    const t = translated.get(w.name)!;
    const outbound = [...t.clusters.values()].filter((c) => c.name.startsWith('outbound|'));
    expect(outbound.length).toBeGreaterThanOrEqual(7);
    for (const c of outbound) {
      const host = c.name.split('|')[3];
      const sa = host.split('.')[0]; // each service's endpoints run as its own service account (rules/services.yaml)
      const tls = c.transport_socket?.typed_config;
      expect(tls?.['@type'], c.name).toBe(UPSTREAM_TLS);
      expect(tls.common_tls_context.tls_certificate_sds_secret_configs[0].name).toBe('default');
      expect(tls.common_tls_context.combined_validation_context.default_validation_context.match_typed_subject_alt_names).toEqual([{ san_type: 'URI', matcher: { exact: spiffe(sa) } }]);
      expect(tls.sni).toMatch(/^outbound_\./);
    }
  });

  it('ratings: its sidecar allows only the reviews service account (RBAC on the inbound chain)', () => {
    const chain = (translated.get('ratings-v1')!.listeners.get('virtualInbound').filter_chains as any[]).find((c) => c.filter_chain_match?.destination_port === SERVICE_PORT);
    const rbac = hcmOf(chain).http_filters.find((f: { name: string }) => f.name.startsWith('envoy.filters.http.rbac')).typed_config.rules;
    expect(rbac.action).toBe('ALLOW');
    const principals = Object.values(rbac.policies as Record<string, any>).flatMap((p) => p.principals);
    expect(principals).toEqual([{ authenticated: { principal_name: { exact: spiffe('reviews') } } }]);
    // Other services have no policy.
    const details = (translated.get('details-v1')!.listeners.get('virtualInbound').filter_chains as any[]).find((c) => c.filter_chain_match?.destination_port === SERVICE_PORT);
    expect(hcmOf(details).http_filters.some((f: { name: string }) => f.name.startsWith('envoy.filters.http.rbac'))).toBe(false);
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
      expect(services[`${name}-app`]!.environment.UPSTREAM).toBe('ratings:9080');
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
    expect(vhost(rc, 'productpage:9080')).toBeDefined();
    const limit = vhost(rc, 'details').typed_per_filter_config['envoy.filters.http.local_ratelimit'];
    expect(limit.token_bucket).toEqual({ max_tokens: 5, tokens_per_fill: 5, fill_interval: '10s' });
    expect(limit.status).toEqual({ code: 'TooManyRequests' });
    expect(limit.filter_enforced.default_value.numerator).toBe(100);
    // The client's outbound listener carries the filter the route configures.
    const own = translated.get('client')!.listeners.get(`0.0.0.0_${SERVICE_PORT}`);
    expect(hcmOf(own.filter_chains[0]).http_filters.map((f: { name: string }) => f.name)).toContain('envoy.filters.http.local_ratelimit');
    // Another caller is not limited.
    expect(vhost(translated.get('productpage-v1')!.routes.get(String(SERVICE_PORT)), 'details').typed_per_filter_config).toBeUndefined();
  });

  it('every app\'s UPSTREAM is a domain of its route config, and a name compose DNS gives its pods', () => {
    const aliases = new Set(WORKLOADS.flatMap((w) => services[w.name]!.networks.mesh.aliases ?? []));
    for (const w of WORKLOADS) {
      const upstream = services[`${w.name}-app`]!.environment?.UPSTREAM;
      if (!upstream) continue;
      expect(vhost(translated.get(w.name)!.routes.get(String(SERVICE_PORT)), upstream), `${w.name} -> ${upstream}`).toBeDefined();
      expect(aliases.has(upstream.split(':')[0])).toBe(true);
      expect(upstream.split(':')[1]).toBe(String(SERVICE_PORT));
    }
  });
});

describe('meshpilot validate and test on the example', () => {
  it('validate: every rule valid, no errors, no warnings', async () => {
    const { stdout } = await run(process.execPath, [BIN, 'validate', '--config-dir', RULES], { timeout: 60_000 });
    expect(stdout).toMatch(/^\d+ rules valid, 0 errors, 0 warnings$/m);
    const count = Number(/^(\d+) rules valid/m.exec(stdout)![1]);
    expect(count).toBe(ruleDocs.length);
    expect(ruleDocs.some((d) => d.kind === 'PeerAuthentication' && d.spec.mtls.mode === 'STRICT' && !d.spec.selector)).toBe(true);
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
  it('defaults to the ports the compose example uses: 9080 and its sidecar\'s readiness port, and calls its upstream by name (no explicit sidecar listener)', () => {
    const text = fs.readFileSync(path.join(DIR, 'app/echo.mjs'), 'utf8');
    expect(text).toContain(`env.PORT ?? ${SERVICE_PORT}`);
    expect(text).toContain(`'http://127.0.0.1:${injection.ports.health}/healthz/ready'`);
    expect(text).toContain('new URL(`http://${UPSTREAM}`)');
    expect(text).not.toContain('15080');
  });

  it('answers with who it is and the request, and calls its upstream at UPSTREAM with the Host header and end-user', async () => {
    // A second echo stands in for the upstream (in a pod, the redirect hands the connection to Envoy).
    const upstream = new URL(await startEcho({ SERVICE: 'reviews', VERSION: 'v3' })).host;
    const app = await startEcho({ SERVICE: 'productpage', VERSION: 'v1', UPSTREAM: upstream });
    const res = await fetch(`${app}/p?x=1`, { headers: { 'end-user': 'jason', 'x-other': 'no' } });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({ service: 'productpage', version: 'v1', path: '/p?x=1', chain: 'productpage-v1 -> reviews-v3' });
    expect(body.headers['end-user']).toBe('jason');
    expect(body.upstream.status).toBe(200);
    expect(body.upstream.body.headers).toMatchObject({ host: upstream, 'end-user': 'jason' });
    expect(body.upstream.body.headers['x-other']).toBeUndefined();
    const text = await fetch(`${app}/`, { headers: { accept: 'text/plain' } }).then((r) => r.text());
    expect(text).toBe('productpage-v1 -> reviews-v3\n');
  });

  it('reports an upstream that cannot be reached as 502 with the reason in the chain', async () => {
    const upstream = `127.0.0.1:${await freePort()}`;
    const app = await startEcho({ SERVICE: 'reviews', VERSION: 'v2', UPSTREAM: upstream });
    const res = await fetch(`${app}/`, { headers: { accept: 'text/plain' } });
    expect(res.status).toBe(502);
    expect(await res.text()).toMatch(new RegExp(`^reviews-v2 -> ${upstream.replaceAll('.', '\\.')} unreachable \\(.*ECONNREFUSED.*\\)\\n$`));
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
