// The injected pod's pieces fit: the agent container's own args (mount paths mapped to a temp dir,
// the CA address to a test CA) run the real `meshpilot agent`, which serves SDS at the very path
// Envoy's injected bootstrap dials in its sds-grpc cluster, inside a volume Envoy mounts.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { IContainer } from 'kubernetes-models/v1/Container';
import { afterEach, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { INJECT } from '../control-plane/inject/annotations.ts';
import { SDS_CLUSTER } from '../control-plane/inject/bootstrap.ts';
import { loadInjectionConfig } from '../control-plane/inject/config.ts';
import { injectPod, type PodLike } from '../control-plane/inject/inject-pod.ts';
import { AGENT_CONTAINER, INIT_CONTAINER, PROXY_CONTAINER } from '../control-plane/inject/names.ts';
import { startTestCa } from './helpers/test-ca.ts';
import { waitFor } from './helpers/wait.ts';

const BIN = path.resolve('bin/meshpilot.js');
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('injected agent', () => {
  it('runs with its injected args and serves SDS where the injected Envoy bootstrap looks', async () => {
    const config = loadInjectionConfig();
    const pod: PodLike = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'reviews-1', labels: { app: 'reviews' } }, spec: { serviceAccountName: 'reviews', containers: [{ name: 'app', image: 'example.com/app:1' }] } };
    const r = injectPod(pod, { namespace: 'shop', namespaceLabels: { [INJECT]: 'enabled' }, path: [] }, config);
    const inits = r.pod.spec!.initContainers!;
    const agent = inits.find((c) => c.name === AGENT_CONTAINER)!;
    const envoy = inits.find((c) => c.name === PROXY_CONTAINER)!;
    expect(inits.indexOf(agent)).toBeLessThan(inits.indexOf(envoy)); // started first
    const bootstrap = YAML.parse(envoy.args![envoy.args!.indexOf('--config-yaml') + 1]!);
    const sds = bootstrap.static_resources.clusters.find((c: { name: string }) => c.name === SDS_CLUSTER);
    const pipe: string = sds.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.pipe.path;
    // Envoy can reach the socket: it is inside a volume Envoy mounts, the same one the agent mounts.
    const mountOf = (c: IContainer, p: string) => c.volumeMounts!.find((m) => p.startsWith(`${m.mountPath}/`));
    expect(mountOf(envoy, pipe)?.name).toBeDefined();
    expect(mountOf(agent, pipe)?.name).toBe(mountOf(envoy, pipe)!.name);
    // Every volume the agent mounts exists in the pod.
    for (const m of agent.volumeMounts!) expect(r.pod.spec!.volumes!.map((v) => v.name)).toContain(m.name);

    // Run the agent's own args, with the pod's paths under a temp dir.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-agent-inject-'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const local = (p: string) => path.join(dir, p);
    const ca = await startTestCa({ tokens: new Map([['projected', 'shop/reviews']]), maxTtlSeconds: 3600 });
    cleanups.push(() => ca.stop());
    const arg = (flag: string) => agent.args![agent.args!.indexOf(flag) + 1]!;
    fs.mkdirSync(path.dirname(local(arg('--token-file'))), { recursive: true });
    fs.writeFileSync(local(arg('--token-file')), 'projected');
    fs.mkdirSync(path.dirname(local(arg('--ca-root'))), { recursive: true });
    fs.writeFileSync(local(arg('--ca-root')), ca.rootPem);
    // The startup probe asks the port the agent is told to serve readiness on, and the redirect
    // leaves that port alone (the agent runs before Envoy: a redirected probe would find nothing).
    const probe = agent.startupProbe!.httpGet!;
    expect(arg('--ready-listen')).toBe(`0.0.0.0:${probe.port}`);
    const initScript = inits.find((c) => c.name === INIT_CONTAINER)!.command!.join(' ');
    expect(initScript).toContain(`-A MESHPILOT_INBOUND -p tcp --dport ${probe.port} -j RETURN`);
    // Here: loopback, a free port.
    const args = agent.args!.map((a, i) => {
      const flag = agent.args![i - 1];
      if (flag === '--ca-address') return ca.address;
      if (flag === '--ready-listen') return '127.0.0.1:0';
      return a.startsWith('/') ? local(a) : a;
    });
    const env = Object.fromEntries(agent.env!.map((e) => [e.name, e.valueFrom!.fieldRef!.fieldPath === 'metadata.namespace' ? 'shop' : 'reviews']));
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const exited = new Promise((resolve) => child.on('exit', resolve));
    cleanups.push(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    await waitFor(() => fs.existsSync(local(pipe)) && ca.requests.some((q) => q.outcome === 'issued'), { timeoutMs: 20_000, description: `agent serving at the bootstrap's pipe path; output: ${output}` });
    expect(fs.statSync(local(pipe)).isSocket()).toBe(true);
    // The probe passes now that the agent holds its certificate (test/inject-xds-tls.test.ts shows
    // it failing before).
    const logLine = (l: string) => {
      try {
        return JSON.parse(l) as { msg?: string; address?: string };
      } catch {
        return {};
      }
    };
    const readyAt = output.split('\n').map(logLine).find((l) => l.msg === 'agent: readiness endpoint listening')?.address;
    expect(readyAt, output).toBeDefined();
    await waitFor(async () => (await fetch(`http://${readyAt}${probe.path}`)).status === 200, { timeoutMs: 10_000, description: 'startup probe passing' });
    expect(ca.requests[0]).toMatchObject({ spiffeId: 'spiffe://cluster.local/ns/shop/sa/reviews', token: 'projected', outcome: 'issued' });
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
