// Two replicas on the same rule files (two control planes in one process, as two `serve` pods
// behind one Service would be): versions are content hashes, so a proxy moving from replica A to
// replica B presents versions B computes too, and B sends it nothing it already has.
// Delta: initial_resource_versions from A -> B sends nothing, and after a change only what changed.
// SotW, Envoy: version_info from A on the first request of each type -> B sends nothing (the xDS
// protocol allows it: a server may skip resending what the client saw on its previous stream when
// the client subscribes to nothing new; a version here is the hash of exactly the answered set).
// SotW, gRPC: B answers again, by design (grpc-js-xds drops a resource when it stops watching it,
// so the version it names does not say what it holds), with the same versions and bytes as A.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../control-plane/log.ts';
import { startControlPlane, type ControlPlane } from '../control-plane/server.ts';
import { CLUSTER, ENDPOINTS, LISTENER, ROUTE_CONFIG, TYPE_ORDER } from '../control-plane/translate/type-urls.ts';
import { ENVOY_NODE, GRPC_NODE, MESH, vs } from './helpers/protocol-fixtures.ts';
import { decoded, deltaDecoded, names, RawAdsClient, RawDeltaClient, type RawDeltaResponse, type RawResponse } from './helpers/raw-ads.ts';
import { waitFor } from './helpers/wait.ts';

let dir: string;
let a: ControlPlane;
let b: ControlPlane;
const closers: Array<{ close(): void }> = [];

function writeFile(name: string, text: string) {
  const tmp = path.join(dir, `.${name}.tmp`);
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, path.join(dir, name));
}

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-replicas-'));
  writeFile('mesh.yaml', MESH);
  writeFile('rules.yaml', vs(80, 20));
  [a, b] = await Promise.all([0, 1].map(() => startControlPlane({ configDir: dir, logger: silentLogger, debounceMs: 20 })));
});

afterEach(async () => {
  for (const c of closers.splice(0)) c.close();
  await Promise.all([a.stop(), b.stop()]);
  fs.rmSync(dir, { recursive: true, force: true });
});

function delta(cp: ControlPlane): RawDeltaClient {
  const c = new RawDeltaClient(cp.xdsAddress);
  closers.push(c);
  return c;
}

function sotw(cp: ControlPlane): RawAdsClient {
  const c = new RawAdsClient(cp.xdsAddress);
  closers.push(c);
  return c;
}

/** Responses written by a control plane so far, by short type (its own push counter). */
async function pushes(cp: ControlPlane): Promise<Record<string, number>> {
  const m = await cp.metrics.pushes.get();
  return Object.fromEntries(m.values.map((v) => [String(v.labels.type), v.value]));
}

const total = (p: Record<string, number>) => Object.values(p).reduce((x, y) => x + y, 0);

/** Route configuration names the listeners refer to (RDS). */
function routeNames(listeners: Array<Record<string, unknown>>): string[] {
  const text = JSON.stringify(listeners);
  return [...new Set([...text.matchAll(/"route_config_name":"([^"]+)"/g)].map((m) => m[1]!))].sort();
}

/** EDS clusters among decoded clusters. */
function edsNames(clusters: Array<Record<string, unknown>>): string[] {
  return clusters.filter((c) => c['type'] === 'EDS').map((c) => String(c['name'])).sort();
}

const versionsOf = (r: RawDeltaResponse) => Object.fromEntries(r.resources.map((x) => [x.name, x.version]));

/** An Envoy delta client's full config from a replica: per type, name -> version. */
async function deltaConfig(cp: ControlPlane): Promise<{ client: RawDeltaClient; versions: Record<string, Record<string, string>>; subscribed: Record<string, string[]> }> {
  const c = delta(cp);
  const versions: Record<string, Record<string, string>> = {};
  const subscribed: Record<string, string[]> = {};
  c.send({ node: ENVOY_NODE, type_url: CLUSTER });
  const cds = await c.next();
  c.send({ type_url: CLUSTER, response_nonce: cds.nonce });
  versions[CLUSTER] = versionsOf(cds);
  subscribed[ENDPOINTS] = edsNames(deltaDecoded(cds));
  c.send({ type_url: ENDPOINTS, resource_names_subscribe: subscribed[ENDPOINTS] });
  const eds = await c.next();
  c.send({ type_url: ENDPOINTS, response_nonce: eds.nonce });
  versions[ENDPOINTS] = versionsOf(eds);
  c.send({ type_url: LISTENER });
  const lds = await c.next();
  c.send({ type_url: LISTENER, response_nonce: lds.nonce });
  versions[LISTENER] = versionsOf(lds);
  subscribed[ROUTE_CONFIG] = routeNames(deltaDecoded(lds));
  c.send({ type_url: ROUTE_CONFIG, resource_names_subscribe: subscribed[ROUTE_CONFIG] });
  const rds = await c.next();
  c.send({ type_url: ROUTE_CONFIG, response_nonce: rds.nonce });
  versions[ROUTE_CONFIG] = versionsOf(rds);
  for (const t of TYPE_ORDER) expect(Object.keys(versions[t]!).length, t).toBeGreaterThan(0);
  return { client: c, versions, subscribed };
}

/** An Envoy SotW client's full config from a replica: per type, the version and the names asked for. */
async function sotwConfig(cp: ControlPlane, node = ENVOY_NODE): Promise<{ client: RawAdsClient; responses: Record<string, RawResponse>; subscribed: Record<string, string[]> }> {
  const c = sotw(cp);
  const responses: Record<string, RawResponse> = {};
  const subscribed: Record<string, string[]> = { [CLUSTER]: [], [LISTENER]: [] };
  const ask = async (type: string, first: boolean) => {
    c.send({ ...(first ? { node } : {}), type_url: type, resource_names: subscribed[type] });
    const r = await c.next();
    expect(r.type_url).toBe(type);
    c.send({ type_url: type, resource_names: subscribed[type], version_info: r.version_info, response_nonce: r.nonce });
    responses[type] = r;
    return r;
  };
  subscribed[ENDPOINTS] = edsNames(decoded(await ask(CLUSTER, true)));
  await ask(ENDPOINTS, false);
  subscribed[ROUTE_CONFIG] = routeNames(decoded(await ask(LISTENER, false)));
  await ask(ROUTE_CONFIG, false);
  return { client: c, responses, subscribed };
}

describe('a proxy moving between replicas', () => {
  it('delta: the same per-resource versions on both; reconnecting to the other with initial_resource_versions gets nothing again, then only what changed', async () => {
    const fromA = await deltaConfig(a);
    const fromB = await deltaConfig(b);
    // Same config, same version strings, resource by resource.
    expect(fromB.versions).toEqual(fromA.versions);
    fromA.client.close();
    fromB.client.close();
    await waitFor(() => a.ads.streams.size === 0 && b.ads.streams.size === 0, { timeoutMs: 3000 });

    // The proxy's stream to A breaks; it reconnects (through the Service) to B with what it has.
    const before = await pushes(b);
    const moved = delta(b);
    for (const t of TYPE_ORDER) {
      moved.send({
        ...(t === CLUSTER ? { node: ENVOY_NODE } : {}),
        type_url: t,
        ...(fromA.subscribed[t] ? { resource_names_subscribe: fromA.subscribed[t] } : {}),
        initial_resource_versions: fromA.versions[t],
      });
    }
    // A barrier: a subscription to a name that does not exist is always answered (as removed).
    // Requests are handled in order, so anything B sent for the four types would come first.
    moved.send({ type_url: ROUTE_CONFIG, resource_names_subscribe: ['meshpilot-barrier'] });
    const first = await moved.next();
    expect(first.type_url).toBe(ROUTE_CONFIG);
    expect(first.resources).toEqual([]);
    expect(first.removed_resources).toEqual(['meshpilot-barrier']);
    const after = await pushes(b);
    expect(total(after) - total(before)).toBe(1); // the barrier's answer, nothing else
    moved.send({ type_url: ROUTE_CONFIG, response_nonce: first.nonce });

    // A change while connected to B: only the route configuration that changed is sent.
    writeFile('rules.yaml', vs(50, 50));
    const change = await moved.next();
    expect(change.type_url).toBe(ROUTE_CONFIG);
    const changed = change.resources.map((r) => r.name);
    expect(changed.length).toBeGreaterThan(0);
    expect(changed.every((n) => fromA.subscribed[ROUTE_CONFIG]!.includes(n))).toBe(true);
    // Routes come last in a push (clusters, endpoints, listeners, routes): nothing else came with it.
    const afterChange = await pushes(b);
    expect(afterChange).toEqual({ ...after, rds: after['rds']! + 1 });
    console.log(`delta move: ${Object.values(fromA.versions).reduce((n, v) => n + Object.keys(v).length, 0)} resources held; B sent ${total(after) - total(before) - 1} responses on reconnect; after a weight change ${changed.length} of ${fromA.subscribed[ROUTE_CONFIG]!.length} route configs (${changed.join(', ')})`);
  });

  it('SotW, Envoy: the same version_info per type on both; reconnecting to the other with version_info gets nothing again', async () => {
    const fromA = await sotwConfig(a);
    const fromB = await sotwConfig(b);
    for (const t of TYPE_ORDER) {
      expect(fromB.responses[t]!.version_info, t).toBe(fromA.responses[t]!.version_info);
      expect(fromB.responses[t]!.resources, t).toEqual(fromA.responses[t]!.resources);
    }
    fromA.client.close();
    fromB.client.close();
    await waitFor(() => a.ads.streams.size === 0 && b.ads.streams.size === 0, { timeoutMs: 3000 });

    const before = await pushes(b);
    const moved = sotw(b);
    // Envoy's first request per type on a new stream: the names, the version it last accepted, no nonce.
    for (const t of TYPE_ORDER) moved.send({ ...(t === CLUSTER ? { node: ENVOY_NODE } : {}), type_url: t, resource_names: fromA.subscribed[t], version_info: fromA.responses[t]!.version_info });
    // Every type has been taken in (B records what the proxy has) and nothing was written.
    await waitFor(() => {
      const s = [...b.ads.streams][0]?.status();
      return !!s && TYPE_ORDER.every((t) => s[t]?.sentVersion === fromA.responses[t]!.version_info);
    }, { timeoutMs: 3000, description: 'B took in the four types' });
    expect(total(await pushes(b))).toBe(total(before));
    // A barrier from the client's side: a changed subscription is always answered, so a response to
    // anything before it would arrive first.
    moved.send({ type_url: ROUTE_CONFIG, resource_names: [...fromA.subscribed[ROUTE_CONFIG]!, 'meshpilot-barrier'], version_info: fromA.responses[ROUTE_CONFIG]!.version_info });
    const first = await moved.next();
    expect(first.type_url).toBe(ROUTE_CONFIG);
    expect(first.version_info).toBe(fromA.responses[ROUTE_CONFIG]!.version_info);
    expect(total(await pushes(b)) - total(before)).toBe(1);
  });

  it('SotW, gRPC: the other replica answers again, with the same versions and resources (grpc-js-xds may have dropped what it named)', async () => {
    const target = 'reviews.default.svc.cluster.local:9080';
    let preludes = 0;
    const get = async (cp: ControlPlane, held?: Record<string, string>) => {
      const c = sotw(cp);
      const out: Record<string, RawResponse> = {};
      const ask = async (type: string, names: string[], first = false) => {
        c.send({ ...(first ? { node: GRPC_NODE } : {}), type_url: type, resource_names: names, ...(held ? { version_info: held[type] } : {}) });
        // A replica the client comes back to may first send a Listener/Cluster in a second form (grpc-revive.ts).
        let r = await c.next();
        while (held && r.version_info !== held[type]) {
          preludes++;
          r = await c.next();
        }
        expect(r.type_url).toBe(type);
        c.send({ type_url: type, resource_names: names, version_info: r.version_info, response_nonce: r.nonce });
        out[type] = r;
        return r;
      };
      const lds = await ask(LISTENER, [target], true);
      const rdsNames = routeNames(decoded(lds));
      const rds = await ask(ROUTE_CONFIG, rdsNames.length ? rdsNames : [target]);
      const clusters = [...new Set([...JSON.stringify(decoded(rds)).matchAll(/"(outbound\|[^"]+)"/g)].map((m) => m[1]!))].sort();
      expect(clusters.length).toBeGreaterThan(0);
      await ask(CLUSTER, clusters);
      await ask(ENDPOINTS, clusters);
      return { c, out };
    };
    const fromA = await get(a);
    fromA.c.close();
    const versions = Object.fromEntries(Object.entries(fromA.out).map(([t, r]) => [t, r.version_info]));
    const fromB = await get(b, versions);
    for (const t of TYPE_ORDER) {
      expect(fromB.out[t]!.version_info, t).toBe(fromA.out[t]!.version_info);
      expect(names(fromB.out[t]!), t).toEqual(names(fromA.out[t]!));
      expect(fromB.out[t]!.resources, t).toEqual(fromA.out[t]!.resources);
    }
    console.log(`gRPC SotW move: B answered all 4 types again with A's versions (${TYPE_ORDER.map((t) => fromB.out[t]!.version_info).join(' ')}), after ${preludes} second-form prelude(s) for Listeners/Clusters`);
  });
});
