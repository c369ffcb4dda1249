// L4 routing with real Envoy, where Envoy exists: meshpilot -> an Envoy sidecar (ADS) -> real TCP
// backends. A tcp route splits connections 80/20 between two subsets (counted over many
// connections at the backends), and tls routes pick a backend by the SNI of the ClientHello
// (exact name over wildcard). Set ENVOY_BIN or put `envoy` on PATH to run it; without it only the
// first describe runs: it builds the very bootstrap the Envoy suite would start and checks it
// against Envoy's schema and the chains it must carry.
//
// How connections reach meshpilot's listeners without iptables: the bootstrap carries meshpilot's
// `0.0.0.0_<port>` listener (its filter chains and listener filters, unchanged) as a static
// listener bound on 127.0.0.1:<port>. Envoy matches a chain's prefix_ranges on the connection's
// local address, so the TCP service's VIP is 127.0.0.1; the TLS services have no VIP and are told
// apart by SNI alone, as in a mesh. Clusters and endpoints come over ADS.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDirectory } from '../control-plane/config/load.ts';
import { checkResource } from '../control-plane/envoy/check.ts';
import { compile } from '../control-plane/model/compile.ts';
import type { Model } from '../control-plane/model/types.ts';
import { proxyFromNode } from '../control-plane/translate/proxy.ts';
import { translate } from '../control-plane/translate/translate.ts';
import { LISTENER } from '../control-plane/translate/type-urls.ts';
import { BOOTSTRAP_TYPE, sidecarNode, testBootstrap, type Json, type Workload } from './helpers/envoy-bootstrap.ts';
import { startEnvoyMesh } from './helpers/envoy-mesh.ts';
import { clusterHosts, findEnvoy, reservePort, startEnvoy } from './helpers/envoy-process.ts';
import { Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';

const envoy = findEnvoy();
if (!envoy) console.log('envoy-e2e-tcp: no envoy binary (ENVOY_BIN or PATH); the Envoy-in-the-loop L4 suite is skipped, only its bootstrap checks run');

const LEDGER = 'ledger.default.svc.cluster.local';
const CALLER: Workload = { pod: 'batch-1', namespace: 'default', ip: '10.255.0.2', labels: { app: 'batch' } };

interface Ports { tcp: number; tls: number; v1: number; v2: number; alpha: number; beta: number }

/** The rules: a TCP service (VIP 127.0.0.1) split 80/20 by subset; TLS services routed by SNI. */
function rules(p: Ports): string {
  const se = (name: string, host: string, port: number, protocol: string, extra: string) =>
    `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ${name}, namespace: default}\nspec:\n  hosts: ["${host}"]\n  location: MESH_INTERNAL\n  ports: [{number: ${port}, name: p, protocol: ${protocol}}]\n${extra}`;
  return [
    se('ledger', LEDGER, p.tcp, 'TCP', `  addresses: [127.0.0.1]\n  resolution: STATIC\n  endpoints:\n  - {address: 127.0.0.1, ports: {p: ${p.v1}}, labels: {version: v1}}\n  - {address: 127.0.0.1, ports: {p: ${p.v2}}, labels: {version: v2}}\n`),
    `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: ledger, namespace: default}\nspec:\n  host: ${LEDGER}\n  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]\n`,
    `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ledger, namespace: default}\nspec:\n  hosts: [${LEDGER}]\n  tcp:\n  - route:\n    - {destination: {host: ${LEDGER}, subset: v1}, weight: 80}\n    - {destination: {host: ${LEDGER}, subset: v2}, weight: 20}\n`,
    se('alpha', 'alpha.tls.test', p.tls, 'TLS', `  resolution: STATIC\n  endpoints: [{address: 127.0.0.1, ports: {p: ${p.alpha}}}]\n`),
    se('beta', 'beta.tls.test', p.tls, 'TLS', `  resolution: STATIC\n  endpoints: [{address: 127.0.0.1, ports: {p: ${p.beta}}}]\n`),
    se('any-tls', '*.tls.test', p.tls, 'TLS', '  resolution: NONE\n'),
    `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: any-tls, namespace: default}\nspec:\n  hosts: ["*.tls.test"]\n  tls:\n  - match: [{sniHosts: ["*.tls.test"]}]\n    route: [{destination: {host: beta.tls.test}}]\n`,
  ].join('---\n');
}

/** The test bootstrap with meshpilot's listeners for `ports` as static listeners on 127.0.0.1. */
function l4Bootstrap(model: Model, xdsAddress: string, ports: number[]): Json {
  const res = translate(model, proxyFromNode(sidecarNode(CALLER)));
  const bootstrap = testBootstrap({ workload: CALLER, xdsAddress, entries: [] });
  for (const port of ports) {
    const l = res[LISTENER].find((x) => x.name === `0.0.0.0_${port}`);
    if (!l) throw new Error(`meshpilot sent no listener 0.0.0.0_${port}`);
    bootstrap.static_resources.listeners.push({
      name: `entry_${port}`,
      address: { socket_address: { address: '127.0.0.1', port_value: port } },
      ...(l.listener_filters ? { listener_filters: l.listener_filters } : {}),
      filter_chains: l.filter_chains,
    });
  }
  return bootstrap;
}

const FAKE: Ports = { tcp: 31100, tls: 31101, v1: 31102, v2: 31103, alpha: 31104, beta: 31105 };

describe('the L4 bootstrap (checked without Envoy)', () => {
  it('carries the weighted tcp_proxy by VIP and the SNI chains with the tls_inspector, valid for Envoy', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-envoy-tcp-check-'));
    try {
      fs.writeFileSync(path.join(dir, 'rules.yaml'), rules(FAKE));
      const state = compile(loadDirectory(dir));
      expect(state.errors.map((e) => e.message)).toEqual([]);
      const b = l4Bootstrap(state.model, '127.0.0.1:15010', [FAKE.tcp, FAKE.tls]);
      expect(checkResource({ '@type': BOOTSTRAP_TYPE, ...b })).toEqual([]);
      const [tcpL, tlsL] = b.static_resources.listeners.slice(-2) as Json[];
      const vipChain = (tcpL.filter_chains as Json[]).find((c) => c.filter_chain_match?.prefix_ranges?.[0]?.address_prefix === '127.0.0.1');
      expect(vipChain?.filters[0].typed_config.weighted_clusters.clusters).toEqual([
        { name: `outbound|${FAKE.tcp}|v1|${LEDGER}`, weight: 80 },
        { name: `outbound|${FAKE.tcp}|v2|${LEDGER}`, weight: 20 },
      ]);
      expect(tlsL.listener_filters.map((f: Json) => f.name)).toEqual(['envoy.filters.listener.tls_inspector']);
      const bySni = Object.fromEntries((tlsL.filter_chains as Json[]).filter((c) => c.filter_chain_match?.server_names).map((c) => [c.filter_chain_match.server_names.join(','), c.filters[0].typed_config.cluster]));
      expect(bySni).toEqual({
        '*.tls.test': `outbound|${FAKE.tls}||beta.tls.test`,
        'alpha.tls.test': `outbound|${FAKE.tls}||alpha.tls.test`,
        'beta.tls.test': `outbound|${FAKE.tls}||beta.tls.test`,
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** A TCP server on 127.0.0.1:0 that writes its name to each connection and closes it. */
async function nameServer(teardown: Teardown, name: string): Promise<{ port: number; accepted: () => number }> {
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s)).on('error', () => {});
    s.end(name);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  teardown.add(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  }));
  return { port: (server.address() as net.AddressInfo).port, accepted: () => accepted };
}

/** Opens one TCP connection and returns what the far end wrote before closing. */
function readName(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let text = '';
    s.on('data', (d) => (text += d.toString()));
    s.on('close', () => resolve(text));
    s.on('error', reject);
    s.setTimeout(5000, () => s.destroy(new Error('timeout')));
  });
}

/** Sends a ClientHello with this SNI and waits until the connection ends (the backends speak no TLS). */
function helloWithSni(port: number, servername: string): Promise<void> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false });
    const done = () => resolve();
    s.on('error', done).on('close', done);
    s.setTimeout(5000, () => s.destroy());
  });
}

describe.skipIf(!envoy)('L4 routing through a real Envoy sidecar', () => {
  const teardown = new Teardown();
  afterAll(() => teardown.run());

  it('splits TCP connections 80/20 by subset and routes TLS by SNI', async () => {
    const [v1, v2, alpha, beta] = await Promise.all(['v1', 'v2', 'alpha', 'beta'].map((n) => nameServer(teardown, n)));
    const ports: Ports = { tcp: await reservePort(), tls: await reservePort(), v1: v1!.port, v2: v2!.port, alpha: alpha!.port, beta: beta!.port };
    const mesh = await startEnvoyMesh(teardown, { 'rules.yaml': rules(ports) });
    expect(mesh.cp.state().errors).toEqual([]);
    const proxy = await startEnvoy(teardown, { envoy: envoy!, name: 'tcp-caller', bootstrap: l4Bootstrap(mesh.cp.state().model, mesh.adsAddress, [ports.tcp, ports.tls]) });
    const clusters = [`outbound|${ports.tcp}|v1|${LEDGER}`, `outbound|${ports.tcp}|v2|${LEDGER}`, `outbound|${ports.tls}||alpha.tls.test`, `outbound|${ports.tls}||beta.tls.test`];
    await waitFor(async () => (await Promise.all(clusters.map((c) => clusterHosts(proxy, c)))).every((h) => h.size > 0), { timeoutMs: 20_000, description: 'Envoy has the clusters and endpoints over ADS' });

    // 400 connections at 80/20: v1's share is 0.8 +- 0.02 (1 sd); 0.72-0.88 is +-4 sd.
    const N = 400;
    const got: Record<string, number> = {};
    for (let i = 0; i < N; i++) {
      const name = await readName(ports.tcp);
      got[name] = (got[name] ?? 0) + 1;
    }
    expect(Object.keys(got).sort(), proxy.output()).toEqual(['v1', 'v2']);
    expect(got.v1! / N).toBeGreaterThan(0.72);
    expect(got.v1! / N).toBeLessThan(0.88);

    // SNI: the exact name goes to its own service, any other name under *.tls.test to beta.
    await helloWithSni(ports.tls, 'alpha.tls.test');
    expect([alpha!.accepted(), beta!.accepted()]).toEqual([1, 0]);
    await helloWithSni(ports.tls, 'gamma.tls.test');
    await helloWithSni(ports.tls, 'beta.tls.test');
    expect([alpha!.accepted(), beta!.accepted()]).toEqual([1, 2]);
  }, 60_000);
});
