// The CLI as a user runs it: bin/meshpilot.js in a child process.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const BIN = path.resolve('bin/meshpilot.js');

async function meshpilot(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-cli-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('meshpilot validate', () => {
  it('accepts the embedded bookinfo example', async () => {
    const r = await meshpilot('validate', '--config-dir', 'examples/bookinfo');
    expect(r.stdout).toMatch(/9 rules valid, 0 errors/);
    expect(r.stderr).toBe(''); // no progress line: stderr is not a terminal
    expect(r.code).toBe(0);
  });

  it('names the file, line and field of a broken rule and exits 1', async () => {
    const dir = path.join(tmp, 'broken');
    fs.cpSync('examples/bookinfo', dir, { recursive: true });
    const file = path.join(dir, 'reviews-canary.yaml');
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    const at = lines.findIndex((l) => /weight:/.test(l));
    lines[at] = lines[at].replace(/weight:\s*\d+/, 'wieght: 90');
    fs.writeFileSync(file, lines.join('\n'));
    const r = await meshpilot('validate', '--config-dir', dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`${file}:${at + 1}:`);
    expect(r.stdout).toMatch(/spec\.http\[\d+\]\.route\[\d+\]\.wieght/);
  });

  it('warns about a principal in another trust domain, judged by --trust-domain', async () => {
    const dir = path.join(tmp, 'trust-domain');
    fs.mkdirSync(dir);
    const file = path.join(dir, 'authz.yaml');
    fs.writeFileSync(file, 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: default}\nspec:\n  rules:\n  - from:\n    - source: {principals: [corp.example/ns/a/sa/b]}\n');
    const def = await meshpilot('validate', '--config-dir', dir);
    expect(def.code).toBe(0);
    expect(def.stdout).toContain(`warning: ${file}:7:29 spec.rules[0].from[0].source.principals[0]: principal "corp.example/ns/a/sa/b" is in trust domain corp.example, but the mesh's trust domain is cluster.local`);
    const corp = await meshpilot('validate', '--config-dir', dir, '--trust-domain', 'corp.example');
    expect(corp.code).toBe(0);
    expect(corp.stdout).not.toContain('trust domain');
  });

  it('names the line of a YAML syntax error', async () => {
    const dir = path.join(tmp, 'syntax');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'bad.yaml'), 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: x\nspec: {}\n');
    const r = await meshpilot('validate', '--config-dir', dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/bad\.yaml:\d+:\d+ /);
  });

  it('rejects a route to an unknown host and a subset without endpoints', async () => {
    const dir = path.join(tmp, 'refs');
    fs.cpSync('examples/bookinfo', dir, { recursive: true });
    fs.writeFileSync(
      path.join(dir, 'bad-refs.yaml'),
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ratings, namespace: default }
spec:
  hosts: [ratings]
  http:
  - route: [{ destination: { host: nowhere } }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: shipping, namespace: default }
spec:
  hosts: [shipping.default.svc.cluster.local]
  resolution: STATIC
  ports: [{ number: 9080, name: grpc, protocol: GRPC }]
  endpoints: [{ address: 127.0.0.1, labels: { version: v1 } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: shipping, namespace: default }
spec:
  host: shipping
  subsets: [{ name: v7, labels: { version: v7 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: shipping, namespace: default }
spec:
  hosts: [shipping]
  http:
  - route: [{ destination: { host: shipping, subset: v7 } }]
`,
    );
    const r = await meshpilot('validate', '--config-dir', dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/bad-refs\.yaml:7:\d+ spec\.http\[0\]\.route\[0\]\.destination\.host: destination host nowhere\.default\.svc\.cluster\.local is not a known service/);
    expect(r.stdout).toMatch(/bad-refs\.yaml:31:\d+ spec\.http\[0\]\.route\[0\]\.destination\.subset: subset v7 of shipping\.default\.svc\.cluster\.local has no endpoints/);
  });
});

describe('meshpilot translate', () => {
  const types = (out: string) => (JSON.parse(out).resources as Array<Record<string, unknown>>).map((r) => String(r['@type']).split('.').pop());

  it('prints the sidecar config for bookinfo: listeners, routes, clusters, endpoints, all valid', async () => {
    const r = await meshpilot(
      'translate', '--config-dir', 'examples/bookinfo',
      '--node-id', 'sidecar~10.1.0.5~productpage-v1-abc.default~default.svc.cluster.local',
      '--node-metadata', '{"NAMESPACE":"default","LABELS":{"app":"productpage","version":"v1"}}',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.node.kind).toBe('envoy');
    const res = out.resources as Array<Record<string, any>>;
    const named = (type: string, name: string): Record<string, any> => res.find((x) => String(x['@type']).endsWith(type) && (x.name ?? x.cluster_name) === name) ?? {};
    expect(named('Listener', 'virtualOutbound').name).toBe('virtualOutbound');
    expect(named('Listener', 'virtualInbound').name).toBe('virtualInbound');
    expect(named('Listener', '0.0.0.0_9080').name).toBe('0.0.0.0_9080');
    const rc = named('RouteConfiguration', '9080');
    const reviews = rc.virtual_hosts.find((v: any) => v.name === 'reviews.default.svc.cluster.local:9080');
    expect(reviews.domains).toContain('reviews');
    expect(reviews.routes.length).toBeGreaterThanOrEqual(2);
    expect(named('Cluster', 'outbound|9080|v1|reviews.default.svc.cluster.local').type).toBe('EDS');
    expect(named('ClusterLoadAssignment', 'outbound|9080|v3|reviews.default.svc.cluster.local').endpoints[0].lb_endpoints).toHaveLength(1);
    // Push order, and deterministic output.
    const order = types(r.stdout);
    expect(order.indexOf('Cluster')).toBeLessThan(order.indexOf('ClusterLoadAssignment'));
    expect(order.lastIndexOf('ClusterLoadAssignment')).toBeLessThan(order.indexOf('Listener'));
    expect(order.lastIndexOf('Listener')).toBeLessThan(order.indexOf('RouteConfiguration'));
    const again = await meshpilot(
      'translate', '--config-dir', 'examples/bookinfo',
      '--node-id', 'sidecar~10.1.0.5~productpage-v1-abc.default~default.svc.cluster.local',
      '--node-metadata', '{"NAMESPACE":"default","LABELS":{"app":"productpage","version":"v1"}}',
    );
    expect(again.stdout).toBe(r.stdout);
  });

  it('prints api_listeners for a proxyless gRPC node', async () => {
    const r = await meshpilot('translate', '--config-dir', 'examples/bookinfo', '--node-id', 'client-1', '--node-metadata', '{"GENERATOR":"grpc","NAMESPACE":"default"}');
    expect(r.code).toBe(0);
    const res = JSON.parse(r.stdout).resources as Array<Record<string, any>>;
    const l = res.find((x) => x.name === 'reviews.default.svc.cluster.local:9080');
    expect(l?.api_listener).toBeDefined();
    expect(res.some((x) => String(x['@type']).endsWith('Listener') && x.name === 'virtualOutbound')).toBe(false);
  });

  it('translates for a node locality and network, with gateways given on the command line', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'net-'));
    fs.writeFileSync(
      path.join(dir, 'svc.yaml'),
      `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: svc }
spec:
  hosts: [svc.default.svc.cluster.local]
  resolution: STATIC
  ports: [{ number: 80, name: grpc, protocol: GRPC }]
  endpoints:
  - { address: 10.0.0.1, locality: r1/a, network: n1 }
  - { address: 10.0.0.2, locality: r1/b, network: n2 }
`,
    );
    const bad = await meshpilot('validate', '--config-dir', dir, '--network-gateway', 'n2=gw.example:15443');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('gateway address must be an IP address');
    const v = await meshpilot('validate', '--config-dir', dir, '--network-gateway', 'n2=192.0.2.1:15443');
    expect(v.stdout).toContain('warning: ' + path.join(dir, 'svc.yaml') + ':9:51 spec.endpoints[0].network: network n1 has no gateway');
    expect(v.code).toBe(0);
    const r = await meshpilot(
      'translate', '--config-dir', dir, '--node-id', 'c-1', '--node-locality', 'r1/a',
      '--node-metadata', '{"GENERATOR":"grpc","NETWORK":"n1"}', '--network-gateway', 'n2=192.0.2.1:15443',
    );
    expect(r.code).toBe(0);
    const eds = (JSON.parse(r.stdout).resources as Array<Record<string, any>>).find((x) => x.cluster_name === 'outbound|80||svc.default.svc.cluster.local');
    expect(eds?.endpoints.map((g: any) => [g.priority ?? 0, g.lb_endpoints[0].endpoint.address.socket_address.address])).toEqual([
      [0, '10.0.0.1'],
      [1, '192.0.2.1'],
    ]);
  });
});
