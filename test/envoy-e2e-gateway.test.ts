// A real Envoy as an ingress gateway (node type router), where Envoy exists: meshpilot gives it
// its listeners over LDS (a gateway binds real ports; no iptables), the route config http.<port>
// over RDS, and it routes requests by Host and path to real HTTP backends; a server with
// httpsRedirect answers 301. Set ENVOY_BIN or put `envoy` on PATH to run it; without it the suite
// is skipped with a line saying so, and only the bootstrap check runs: the gateway's bootstrap
// passes Envoy's schema and meshpilot's translation for that node has the listeners Envoy would
// bind. A PASSTHROUGH server routes TLS connections by SNI to plain TCP backends, unopened.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { checkResource } from '../control-plane/envoy/check.ts';
import { silentLogger } from '../control-plane/log.ts';
import { compile } from '../control-plane/model/compile.ts';
import { startControlPlane, type ControlPlane } from '../control-plane/server.ts';
import { proxyFromNode } from '../control-plane/translate/proxy.ts';
import { translate } from '../control-plane/translate/translate.ts';
import { LISTENER } from '../control-plane/translate/type-urls.ts';
import { BOOTSTRAP_TYPE, testBootstrap } from './helpers/envoy-bootstrap.ts';
import { EntryClient, startHttpBackend, type HttpBackend } from './helpers/envoy-http.ts';
import { findEnvoy, reservePort, startEnvoy, waitForRoutes } from './helpers/envoy-process.ts';
import { Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';

type Json = Record<string, any>;
const envoy = findEnvoy();
if (!envoy) console.log('envoy-e2e-gateway: no envoy binary (ENVOY_BIN or PATH); the gateway suite is skipped, only its bootstrap check runs');

const GATEWAY_LABELS = { istio: 'ingressgateway' };
const NODE_ID = 'router~127.0.0.1~ingress-1.istio-system~istio-system.svc.cluster.local';

/** The rules: a Gateway with an HTTP server and a redirecting one, both bound to 127.0.0.1. */
function rules(httpPort: number, redirectPort: number, v1: number, v2: number): string {
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: shop }
spec:
  hosts: [shop.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8000, name: http, protocol: HTTP }]
  endpoints:
  - { address: 127.0.0.1, ports: { http: ${v1} }, labels: { version: v1 } }
  - { address: 127.0.0.1, ports: { http: ${v2} }, labels: { version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: shop }
spec:
  host: shop
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: ingress, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
  - port: { number: ${httpPort}, name: http, protocol: HTTP }
    bind: 127.0.0.1
    hosts: ["*/shop.example.com"]
  - port: { number: ${redirectPort}, name: http-redirect, protocol: HTTP }
    bind: 127.0.0.1
    hosts: ["*/secure.example.com"]
    tls: { httpsRedirect: true }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: shop }
spec:
  hosts: [shop.example.com, secure.example.com]
  gateways: [istio-system/ingress]
  http:
  - match: [{ uri: { prefix: /v2 } }]
    route: [{ destination: { host: shop, subset: v2 } }]
  - route: [{ destination: { host: shop, subset: v1 } }]
`;
}

function gatewayBootstrap(xdsAddress: string): Json {
  const b = testBootstrap({ workload: { pod: 'ingress-1', namespace: 'istio-system', ip: '127.0.0.1', labels: GATEWAY_LABELS }, xdsAddress, entries: [] });
  // A gateway's listeners come over LDS (it binds its server ports itself).
  return { ...b, node: { id: NODE_ID, cluster: 'istio-ingressgateway.istio-system', metadata: { NAMESPACE: 'istio-system', LABELS: GATEWAY_LABELS } }, dynamic_resources: { ...b.dynamic_resources, lds_config: { ads: {}, resource_api_version: 'V3' } } };
}

describe('gateway bootstrap (runs without Envoy too)', () => {
  it('passes Envoy\'s schema, and the node gets a listener per server on its bind address', () => {
    const bootstrap = gatewayBootstrap('127.0.0.1:15010');
    expect(checkResource({ '@type': BOOTSTRAP_TYPE, ...bootstrap })).toEqual([]);
    const state = compile(parseConfigText('rules.yaml', rules(18080, 18081, 1, 2)));
    expect(state.errors).toEqual([]);
    const res = translate(state.model, proxyFromNode({ id: bootstrap.node.id, metadata: bootstrap.node.metadata }));
    expect(res[LISTENER].map((l: Json) => l.address.socket_address)).toEqual([{ address: '127.0.0.1', port_value: 18080 }, { address: '127.0.0.1', port_value: 18081 }]);
  });
});

describe.skipIf(!envoy)('real Envoy as an ingress gateway', () => {
  const teardown = new Teardown();
  let dir: string;
  let cp: ControlPlane;
  let backends: HttpBackend[];
  let httpPort: number;
  let redirectPort: number;

  beforeAll(async () => {
    backends = [await startHttpBackend({ service: 'shop', version: 'v1' }), await startHttpBackend({ service: 'shop', version: 'v2' })];
    teardown.add(() => Promise.all(backends.map((b) => b.stop())).then(() => undefined));
    httpPort = await reservePort();
    redirectPort = await reservePort();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-envoy-gw-'));
    teardown.add(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.writeFileSync(path.join(dir, 'rules.yaml'), rules(httpPort, redirectPort, backends[0]!.port, backends[1]!.port));
    cp = await startControlPlane({ configDir: dir, logger: silentLogger, debounceMs: 20 });
    teardown.add(() => cp.stop());
    const proc = await startEnvoy(teardown, { envoy: envoy!, name: 'ingress', bootstrap: gatewayBootstrap(cp.xdsAddress) });
    await waitForRoutes(proc, `http.${httpPort}`, 'shop.example.com');
    await waitForRoutes(proc, `http.${redirectPort}`, 'secure.example.com');
  }, 60_000);

  afterAll(() => teardown.run());

  it('routes by Host and path to the bound rule\'s destinations', async () => {
    const client = new EntryClient('127.0.0.1', httpPort);
    try {
      expect(await client.split('shop.example.com', 20)).toEqual({ v1: 20 });
      expect((await client.request('shop.example.com', {}, { path: '/v2/items' })).reply?.version).toBe('v2');
      // A host no rule serves at the gateway: 404.
      expect((await client.request('other.example.com')).status).toBe(404);
    } finally {
      client.close();
    }
  });

  it('redirects plain HTTP to HTTPS on the httpsRedirect server', async () => {
    const client = new EntryClient('127.0.0.1', redirectPort);
    try {
      const r = await client.request('secure.example.com', {}, { path: '/login' });
      expect(r.status).toBe(301);
      expect(r.headers.location).toBe('https://secure.example.com/login');
    } finally {
      client.close();
    }
  });
});

/** PASSTHROUGH: a TLS server on `port` that routes by SNI to two TCP backends, nothing terminated. */
function passthroughRules(port: number, alpha: number, beta: number): string {
  const svc = (name: string, backend: number) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name} }
spec:
  hosts: [${name}.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: 443, name: tls, protocol: TLS }]
  endpoints: [{ address: 127.0.0.1, ports: { tls: ${backend} } }]
---`;
  return `${svc('alpha', alpha)}${svc('beta', beta)}
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: passthrough, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
  - port: { number: ${port}, name: tls, protocol: TLS }
    bind: 127.0.0.1
    hosts: [alpha.example.com, beta.example.com]
    tls: { mode: PASSTHROUGH }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: passthrough }
spec:
  hosts: [alpha.example.com, beta.example.com]
  gateways: [istio-system/passthrough]
  tls:
  - match: [{ sniHosts: [alpha.example.com] }]
    route: [{ destination: { host: alpha.example.com } }]
  - match: [{ sniHosts: [beta.example.com] }]
    route: [{ destination: { host: beta.example.com } }]
`;
}

/** A TCP server that counts connections and closes each (it speaks no TLS: the gateway must not either). */
async function countingServer(teardown: Teardown): Promise<{ port: number; accepted: () => number }> {
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s)).on('error', () => {});
    s.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  teardown.add(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  }));
  return { port: (server.address() as net.AddressInfo).port, accepted: () => accepted };
}

/** Sends a ClientHello with this SNI and waits until the connection ends. */
function helloWithSni(port: number, servername: string): Promise<void> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false });
    const done = () => resolve();
    s.on('error', done).on('close', done);
    s.setTimeout(5000, () => s.destroy());
  });
}

describe('PASSTHROUGH gateway config (runs without Envoy too)', () => {
  it('one listener on the bind address, a chain per SNI, no TLS terminated, all valid for Envoy', () => {
    const state = compile(parseConfigText('rules.yaml', passthroughRules(18443, 1, 2)));
    expect(state.errors).toEqual([]);
    const listeners = translate(state.model, proxyFromNode({ id: NODE_ID, metadata: { NAMESPACE: 'istio-system', LABELS: GATEWAY_LABELS } }))[LISTENER];
    expect(listeners.flatMap((x) => checkResource(x))).toEqual([]);
    const l = listeners[0] as Json | undefined;
    expect(l!.address.socket_address).toEqual({ address: '127.0.0.1', port_value: 18443 });
    expect(l!.filter_chains.map((c: Json) => [c.filter_chain_match.server_names, c.transport_socket])).toEqual([[['alpha.example.com'], undefined], [['beta.example.com'], undefined]]);
  });
});

describe.skipIf(!envoy)('real Envoy as a PASSTHROUGH gateway', () => {
  const teardown = new Teardown();
  afterAll(() => teardown.run());

  it('forwards each TLS connection unopened to the backend its SNI names', async () => {
    const [alpha, beta] = [await countingServer(teardown), await countingServer(teardown)];
    const port = await reservePort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-envoy-gw-pt-'));
    teardown.add(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.writeFileSync(path.join(dir, 'rules.yaml'), passthroughRules(port, alpha!.port, beta!.port));
    const cp = await startControlPlane({ configDir: dir, logger: silentLogger, debounceMs: 20 });
    teardown.add(() => cp.stop());
    await startEnvoy(teardown, { envoy: envoy!, name: 'passthrough', bootstrap: gatewayBootstrap(cp.xdsAddress) });
    // The listener arrives over LDS: retry until the first connection reaches its backend.
    await waitFor(async () => {
      await helloWithSni(port, 'alpha.example.com');
      return alpha!.accepted() > 0;
    }, { timeoutMs: 20_000, description: 'the passthrough listener to forward alpha.example.com' });
    const before = { alpha: alpha!.accepted(), beta: beta!.accepted() };
    for (let i = 0; i < 5; i++) await helloWithSni(port, 'beta.example.com');
    await helloWithSni(port, 'alpha.example.com');
    // Another name: no chain takes it, Envoy closes the connection, no backend sees it.
    await helloWithSni(port, 'gamma.example.com');
    expect({ alpha: alpha!.accepted() - before.alpha, beta: beta!.accepted() - before.beta }).toEqual({ alpha: 1, beta: 5 });
  }, 60_000);
});
