// Endpoint changes skip the compile (model/endpoint-update.ts): the model they give must be what a
// compile from scratch gives (warnings aside, which the next compile brings up to date), anything
// that is not purely an endpoint change must fall back to the compile, and over ADS an endpoint
// change must reach a proxy as its ClusterLoadAssignments alone.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { ModelMemo } from '../control-plane/model/build.ts';
import { compile, type MeshState } from '../control-plane/model/compile.ts';
import { endpointUpdate } from '../control-plane/model/endpoint-update.ts';
import type { Model } from '../control-plane/model/types.ts';
import { startControlPlane, type ControlPlane } from '../control-plane/server.ts';
import { translateChanges } from '../control-plane/translate/changes.ts';
import { TranslateMemo } from '../control-plane/translate/memo.ts';
import { proxyFromNode } from '../control-plane/translate/proxy.ts';
import { translate } from '../control-plane/translate/translate.ts';
import { CLUSTER, ENDPOINTS, LISTENER, ROUTE_CONFIG, TYPE_ORDER } from '../control-plane/translate/type-urls.ts';
import { silentLogger } from '../control-plane/log.ts';
import { SnapshotCache } from '../control-plane/xds/snapshot-cache.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { type Files, ParsedFiles } from './helpers/parsed-files.ts';
import { ENVOY_NODE } from './helpers/protocol-fixtures.ts';
import { deltaDecoded, deltaNames, RawDeltaClient } from './helpers/raw-ads.ts';
import { waitFor } from './helpers/wait.ts';

const header = (kind: string, name: string) => `apiVersion: networking.istio.io/v1\nkind: ${kind}\nmetadata: { name: ${name}, namespace: default }\n`;

interface Ep { ip: string; version: string; zone?: string; sa?: string }
function seYaml(name: string, host: string, eps: Ep[], port = 9080): string {
  const lines = eps.map((e) => `  - { address: ${e.ip}, labels: { version: ${e.version} }${e.zone ? `, locality: r1/${e.zone}` : ''}${e.sa ? `, serviceAccount: ${e.sa}` : ''} }`);
  return header('ServiceEntry', name) + `spec:\n  hosts: [${host}]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports: [{ number: ${port}, name: http, protocol: HTTP }]\n` + (lines.length ? `  endpoints:\n${lines.join('\n')}\n` : '');
}
const drYaml = (name: string, host: string, extra = '') => header('DestinationRule', name) + `spec:\n  host: ${host}\n${extra}  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]\n`;
const vsYaml = (name: string, host: string, w1: number) =>
  header('VirtualService', name) + `spec:\n  hosts: [${host}]\n  http:\n  - route:\n    - { destination: { host: ${host}, subset: v1 }, weight: ${w1} }\n    - { destination: { host: ${host}, subset: v2 }, weight: ${100 - w1} }\n`;

const A = 'a.default.svc.cluster.local';
const B = 'b.default.svc.cluster.local';
const C = 'c.default.svc.cluster.local';
const eps = (n1: number, n2: number, extra: Partial<Ep> = {}): Ep[] => [
  ...Array.from({ length: n1 }, (_, i) => ({ ip: `10.1.0.${i + 1}`, version: 'v1', ...extra })),
  ...Array.from({ length: n2 }, (_, i) => ({ ip: `10.2.0.${i + 1}`, version: 'v2', ...extra })),
];

function baseFiles(): Files {
  return {
    'se-a.yaml': seYaml('a', A, eps(2, 1)),
    'dr-a.yaml': drYaml('a', A, '  trafficPolicy: { loadBalancer: { localityLbSetting: { enabled: true } }, outlierDetection: { consecutive5xxErrors: 3 } }\n'),
    'vs-a.yaml': vsYaml('a', A, 90),
    'se-b.yaml': seYaml('b', B, eps(1, 1)),
    'dr-b.yaml': drYaml('b', B),
    'vs-b.yaml': vsYaml('b', B, 50),
    // A ServiceEntry and its DestinationRule in one file: the rule is read again with the entry.
    'c.yaml': drYaml('c', C) + '---\n' + seYaml('c', C, eps(1, 1), 7070),
  };
}

const withoutWarnings = (m: Model) => JSON.stringify({ ...m, warnings: [] });

describe('endpoint updates without a compile', () => {
  it('give the model a compile from scratch gives, and keep every other part the same object', () => {
    const mesh = new ParsedFiles();
    const memo = new ModelMemo();
    let files = baseFiles();
    let load = mesh.load(files);
    let state: MeshState = compile(load, [], memo);
    const steps: Array<[string, string]> = [
      ['se-a.yaml', seYaml('a', A, eps(3, 1))],
      ['se-a.yaml', seYaml('a', A, eps(3, 0))], // subset v2 left without endpoints: still only endpoints
      ['se-a.yaml', seYaml('a', A, eps(1, 2, { zone: 'z2' }))], // localities
      ['se-b.yaml', seYaml('b', B, eps(2, 2))],
      ['c.yaml', drYaml('c', C) + '---\n' + seYaml('c', C, eps(4, 1), 7070)],
    ];
    for (const [file, text] of steps) {
      files = { ...files, [file]: text };
      const next = mesh.load(files);
      const update = endpointUpdate(load, next, state, memo);
      expect(update, file).toBeDefined();
      expect(update!.changed).toHaveLength(1);
      const fresh = compile(next, state.accepted, new ModelMemo());
      expect(withoutWarnings(update!.state.model)).toBe(withoutWarnings(fresh.model));
      expect(update!.state.accepted).toEqual(fresh.accepted);
      update!.state.accepted.forEach((o, i) => expect(o).toBe(fresh.accepted[i]));
      // Only the changed entry's service and clusters are new objects; no route table is.
      const prev = state.model;
      const now = update!.state.model;
      const host = now.services.find((s) => s.origin.key === update!.changed[0])!.host;
      now.services.forEach((s, i) => (s.host === host ? expect(s).not.toBe(prev.services[i]) : expect(s).toBe(prev.services[i])));
      now.clusters.forEach((c, i) => (c.host === host ? expect(c).not.toBe(prev.clusters[i]) : expect(c).toBe(prev.clusters[i])));
      now.routeTables.forEach((t, i) => expect(t).toBe(prev.routeTables[i]));
      // A cluster whose endpoints alone changed keeps its policy object.
      now.clusters.forEach((c, i) => expect(c.policy).toBe(prev.clusters[i]!.policy));
      load = next;
      state = update!.state;
    }
    // And the compile after them (memo kept) finds nothing new for proxies: the same objects.
    const after = compile(load, state.accepted, memo);
    after.model.clusters.forEach((c, i) => expect(JSON.stringify(c)).toBe(JSON.stringify(state.model.clusters[i])));
  });

  it('leaves everything that is not purely an endpoint change to the compile', () => {
    const cases: Array<[string, (f: Files) => Files]> = [
      ['a port changes', (f) => ({ ...f, 'se-a.yaml': seYaml('a', A, eps(2, 1), 9090) })],
      ['a VirtualService changes', (f) => ({ ...f, 'vs-a.yaml': vsYaml('a', A, 70) })],
      ['a file is added', (f) => ({ ...f, 'se-d.yaml': seYaml('d', 'd.default.svc.cluster.local', eps(1, 0)) })],
      ['a file is removed', (f) => ({ ...f, 'vs-b.yaml': undefined })],
      ['the new version does not validate', (f) => ({ ...f, 'se-a.yaml': seYaml('a', A, eps(2, 1)).replace('address: 10.1.0.1', 'address: [1]') })],
      ['the endpoint weights overflow', (f) => ({ ...f, 'se-a.yaml': seYaml('a', A, eps(2, 1)).replace('version: v1 } }', 'version: v1 }, weight: 4294967295 }') })],
      ['another rule in the same file moves', (f) => ({ ...f, 'c.yaml': seYaml('c', C, eps(3, 1), 7070) + '---\n' + drYaml('c', C) })],
    ];
    for (const [what, edit] of cases) {
      const mesh = new ParsedFiles();
      const memo = new ModelMemo();
      const files = baseFiles();
      const load = mesh.load(files);
      const state = compile(load, [], memo);
      expect(endpointUpdate(load, mesh.load(edit(files)), state, memo), what).toBeUndefined();
    }
    // WorkloadEntries are endpoints too, but which entries select them is a compile's question.
    const mesh = new ParsedFiles();
    const memo = new ModelMemo();
    const selecting = (ip: string) => ({
      ...baseFiles(),
      'se-b.yaml': seYaml('b', B, []).replace('  resolution: STATIC\n', '  resolution: STATIC\n  workloadSelector: { labels: { app: b } }\n'),
      'we-b.yaml': header('WorkloadEntry', 'b1').replace('namespace: default }', 'namespace: default, labels: { app: b } }') + `spec: { address: ${ip}, labels: { version: v1 } }\n`,
    });
    const load = mesh.load(selecting('10.0.0.1'));
    expect(load.errors).toEqual([]);
    expect(endpointUpdate(load, mesh.load(selecting('10.0.0.2')), compile(load, [], memo), memo)).toBeUndefined();
  });

  it('turns into ClusterLoadAssignments alone for gRPC clients and sidecars', () => {
    const mesh = new ParsedFiles();
    const memo = new ModelMemo();
    const files = baseFiles();
    const load = mesh.load(files);
    const state = compile(load, [], memo);
    const update = endpointUpdate(load, mesh.load({ ...files, 'se-a.yaml': seYaml('a', A, eps(4, 1)) }), state, memo)!;
    for (const node of [{ id: 'sidecar~10.9.0.1~c.default~default.svc.cluster.local', metadata: { GENERATOR: 'grpc', NAMESPACE: 'default' } }, { id: 'sidecar~10.9.0.2~c.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default' } }]) {
      const proxy = proxyFromNode(node);
      const tmemo = new TranslateMemo();
      translate(state.model, proxy, tmemo);
      const changes = translateChanges(state.model, update.state.model, proxy, tmemo)!;
      expect(changes).toBeDefined();
      const names = (t: string) => changes.set[t as keyof typeof changes.set].map((r) => String(r.name ?? r.cluster_name));
      expect(names(ENDPOINTS).sort(), proxy.kind).toEqual([`outbound|9080|v1|${A}`, `outbound|9080|v2|${A}`, `outbound|9080||${A}`].sort());
      expect(names(ROUTE_CONFIG), proxy.kind).toEqual([]);
      // A sidecar's inbound side is always given whole (it is not an outbound cluster or listener).
      expect(names(CLUSTER).filter((n) => !n.startsWith('inbound|')), proxy.kind).toEqual([]);
      expect(names(LISTENER).filter((n) => n !== 'virtualInbound'), proxy.kind).toEqual([]);
      const full = translate(update.state.model, proxy);
      for (const cla of changes.set[ENDPOINTS]) expect(cla).toEqual(full[ENDPOINTS].find((r) => r.cluster_name === cla.cluster_name));
    }
  });
});

describe('endpoint updates through the snapshot cache', () => {
  // (A STATIC ServiceEntry needs an endpoint: an empty list is a schema error, left to the compile.)
  // Proxies at addresses that endpoints may take and leave (their inbound side follows), one
  // elsewhere, in two localities (EDS priorities differ by caller).
  const proxies = [
    proxyFromNode({ id: 'sidecar~10.1.0.1~p1.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default' }, locality: { region: 'r1', zone: 'z1' } }),
    proxyFromNode({ id: 'sidecar~10.2.0.1~p2.default~default.svc.cluster.local', metadata: { GENERATOR: 'grpc', NAMESPACE: 'default' }, locality: { region: 'r1', zone: 'z2' } }),
    proxyFromNode({ id: 'sidecar~10.9.9.9~p3.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default' } }),
  ];
  const endpointSets = fc.array(fc.record({ ip: fc.constantFrom('10.1.0.1', '10.1.0.2', '10.2.0.1', '10.2.0.2', '10.3.0.1'), version: fc.constantFrom('v1', 'v2'), zone: fc.constantFrom(undefined, 'z1', 'z2') }), { minLength: 1, maxLength: 4 })
    .map((xs) => [...new Map(xs.map((x) => [x.ip, x])).values()].map((x) => ({ ip: x.ip, version: x.version, ...(x.zone ? { zone: x.zone } : {}) })));
  const steps = fc.array(fc.record({ svc: fc.constantFrom('a', 'b', 'c'), eps: endpointSets }), { minLength: 1, maxLength: 8 });

  it('give every proxy the snapshot a cache seeing only the compiled model builds', () => {
    fc.assert(
      fc.property(steps, (edits) => {
        const mesh = new ParsedFiles();
        const memo = new ModelMemo();
        let files = baseFiles();
        let load = mesh.load(files);
        let state = compile(load, [], memo);
        const cache = new SnapshotCache(silentLogger);
        cache.setModel(state.model);
        for (const p of proxies) cache.snapshotFor(p);
        for (const { svc, eps: list } of edits) {
          const host = { a: A, b: B, c: C }[svc]!;
          const se = seYaml(svc, host, list, svc === 'c' ? 7070 : 9080);
          files = { ...files, ...(svc === 'c' ? { 'c.yaml': drYaml('c', C) + '---\n' + se } : { [`se-${svc}.yaml`]: se }) };
          const next = mesh.load(files);
          const update = endpointUpdate(load, next, state, memo);
          expect(update).toBeDefined();
          load = next;
          state = update!.state;
          cache.setModel(state.model);
          const fresh = new SnapshotCache(silentLogger);
          fresh.setModel(compile(next, [], new ModelMemo()).model);
          const contents = (c: SnapshotCache, p: (typeof proxies)[number]) => {
            const snap = c.snapshotFor(p);
            return TYPE_ORDER.map((t) => [...snap[t]].map(([name, r]) => `${name}=${r.hash}`).sort());
          };
          for (const p of proxies) expect(contents(cache, p)).toEqual(contents(fresh, p));
        }
      }),
      { numRuns: 40, seed: 20261207 },
    );
  });
});

describe('endpoint changes over ADS', () => {
  let dir: string;
  let cp: ControlPlane | undefined;
  let client: RawDeltaClient | undefined;
  afterEach(async () => {
    client?.close();
    await cp?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const write = (name: string, text: string) => {
    fs.writeFileSync(path.join(dir, `.${name}.tmp`), text);
    fs.renameSync(path.join(dir, `.${name}.tmp`), path.join(dir, name));
  };

  it('reach a subscribed Envoy as the changed ClusterLoadAssignment alone, with no compile in front', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-eds-'));
    for (const [name, text] of Object.entries(baseFiles())) write(name, text!);
    const logs = captureLogs('debug');
    cp = await startControlPlane({ configDir: dir, logger: logs.logger, debounceMs: 20 });
    const c = (client = new RawDeltaClient(cp.xdsAddress));
    c.send({ node: ENVOY_NODE, type_url: CLUSTER });
    const cds = await c.next();
    c.send({ type_url: CLUSTER, response_nonce: cds.nonce });
    const eds = deltaNames(cds).filter((n) => n.startsWith('outbound|'));
    c.send({ type_url: ENDPOINTS, resource_names_subscribe: eds });
    const first = await c.next();
    expect(first.type_url).toBe(ENDPOINTS);
    c.send({ type_url: ENDPOINTS, response_nonce: first.nonce });
    c.send({ type_url: LISTENER });
    const lds = await c.next();
    c.send({ type_url: LISTENER, response_nonce: lds.nonce });
    c.send({ type_url: ROUTE_CONFIG, resource_names_subscribe: ['9080'] });
    const rds = await c.next();
    c.send({ type_url: ROUTE_CONFIG, response_nonce: rds.nonce });
    expect(await c.quiet(300)).toBe(true);
    const routeTables = cp.state().model.routeTables;
    const generation = cp.cache.generation;

    // b's v2 endpoint goes, a second v1 one comes.
    write('se-b.yaml', seYaml('b', B, eps(2, 0)));
    const pushed = await c.next();
    expect(pushed.type_url).toBe(ENDPOINTS);
    expect(deltaNames(pushed).sort()).toEqual([`outbound|9080|v1|${B}`, `outbound|9080|v2|${B}`, `outbound|9080||${B}`].sort());
    const addresses = (name: string) => (deltaDecoded(pushed).find((r) => r.cluster_name === name) as any).endpoints?.flatMap((l: any) => l.lb_endpoints.map((e: any) => e.endpoint.address.socket_address.address)).sort() ?? [];
    expect(addresses(`outbound|9080|v1|${B}`)).toEqual(['10.1.0.1', '10.1.0.2']);
    expect(addresses(`outbound|9080|v2|${B}`)).toEqual([]);
    c.send({ type_url: ENDPOINTS, response_nonce: pushed.nonce });
    expect(cp.cache.generation).toBe(generation + 1);
    expect(logs.lines.some((l) => l.msg === 'endpoints applied' && l.endpointsOf?.includes('ServiceEntry/default/b'))).toBe(true);
    // No compile ran: every route table is the very same object, and the endpoint warning is not there yet.
    cp.state().model.routeTables.forEach((t, i) => expect(t).toBe(routeTables[i]));
    const warning = `subset v2 of ${B} has no endpoints now: its 50% share of this route's calls fails (Envoy: 503 no healthy upstream; gRPC: UNAVAILABLE)`;
    expect(cp.state().warnings.map((w) => w.message)).not.toContain(warning);

    // The compile that follows within seconds brings the warning, and agrees for proxies: nothing more is pushed.
    await waitFor(() => cp!.state().warnings.some((w) => w.message === warning), { timeoutMs: 8000, description: 'the endpoint warning' });
    expect(cp.cache.generation).toBe(generation + 1);
    expect(logs.lines.filter((l) => l.msg === 'configuration applied')).toHaveLength(1);
    expect(await c.quiet(200)).toBe(true);

    // A rule change still takes the compile.
    write('vs-b.yaml', vsYaml('b', B, 30));
    const routes = await c.next();
    expect(routes.type_url).toBe(ROUTE_CONFIG);
    await waitFor(() => logs.lines.filter((l) => l.msg === 'configuration applied').length === 2, { timeoutMs: 3000 });
  });
});
