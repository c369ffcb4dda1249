// node --import tsx bench/peers/gocp-check.ts
//
// Shows that the Go peer (bench/peers/gocp) serves a sidecar group over delta ADS: it loads one
// group (meshpilot's translation for an Envoy sidecar on a small bench mesh), then a raw delta
// client over @grpc/grpc-js asks the way Envoy does: wildcard CDS and LDS, then RDS and EDS by the
// names those name. Every resource must come back (decoded and compared by name with what was
// loaded). Then one ClusterLoadAssignment changes, and the answer must be a delta of just that one.
// Prints the counts; exits 1 on any mismatch, 0 when Go is absent (with a note).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDirectory } from '../../control-plane/config/load.ts';
import { encodeResource } from '../../control-plane/envoy/check.ts';
import { compile } from '../../control-plane/model/compile.ts';
import { proxyFromNode } from '../../control-plane/translate/proxy.ts';
import { resourceName, translate } from '../../control-plane/translate/translate.ts';
import { CLUSTER, ENDPOINTS, LISTENER, ROUTE_CONFIG } from '../../control-plane/translate/type-urls.ts';
import { RawDeltaClient, deltaDecoded, toStruct, type RawDeltaResponse } from '../../test/helpers/raw-ads.ts';
import { writeMesh } from '../mesh.ts';
import { GoPeer, buildGoPeer, encodeByType } from './gocp.ts';

const GROUP = 'check-sidecar';
const SERVICES = 20;
const ENDPOINTS_PER_SERVICE = 3;

/** Every value of `key` anywhere in a decoded resource (route config names, EDS service names). */
function valuesOf(o: unknown, key: string, out: string[] = []): string[] {
  if (Array.isArray(o)) for (const x of o) valuesOf(x, key, out);
  else if (o && typeof o === 'object')
    for (const [k, v] of Object.entries(o)) {
      if (k === key && (typeof v === 'string' || typeof v === 'number')) out.push(String(v));
      else valuesOf(v, key, out);
    }
  return out;
}

async function main(): Promise<number> {
  const built = await buildGoPeer((s) => console.log(s));
  if (!('binary' in built)) {
    console.log(built.skipped);
    return 0;
  }
  const dir = mkdtempSync(join(tmpdir(), 'meshpilot-gocp-check-'));
  let peer: GoPeer | undefined;
  let client: RawDeltaClient | undefined;
  try {
    writeMesh(dir, { services: SERVICES, endpoints: ENDPOINTS_PER_SERVICE });
    const state = compile(loadDirectory(dir));
    if (state.errors.length) throw new Error(`bench mesh has errors: ${state.errors[0]!.message}`);
    const metadata = { NAMESPACE: 'default', LABELS: { app: 'web' }, BENCH_GROUP: GROUP };
    const nodeId = 'sidecar~10.200.0.1~web-1.default~default.svc.cluster.local';
    const resources = translate(state.model, proxyFromNode({ id: nodeId, metadata }));
    const loaded = Object.fromEntries(([LISTENER, ROUTE_CONFIG, CLUSTER, ENDPOINTS] as const).map((t) => [t, resources[t].map(resourceName).sort()]));

    peer = await GoPeer.start(built.binary);
    console.log(`Go peer on ${peer.address}: ${await peer.loadGroup(GROUP, encodeByType(resources))}`);

    client = new RawDeltaClient(peer.address);
    const c = client;
    const node = { id: nodeId, metadata: toStruct(metadata) };
    const got: Record<string, string[]> = {};
    // Subscribe, take one answer, ACK it; returns the decoded resources.
    const fetch = async (type: string, names: string[], first = false) => {
      c.send({ ...(first ? { node } : {}), type_url: type, resource_names_subscribe: names });
      const r: RawDeltaResponse = await c.next(10_000);
      if (r.type_url !== type) throw new Error(`asked ${type}, got ${r.type_url}`);
      c.send({ type_url: type, response_nonce: r.nonce });
      got[type] = r.resources.map((x) => x.name).sort();
      return deltaDecoded(r);
    };
    const clusters = await fetch(CLUSTER, [], true);
    const listeners = await fetch(LISTENER, []);
    await fetch(ROUTE_CONFIG, [...new Set(valuesOf(listeners, 'route_config_name'))]);
    const eds = clusters.filter((x) => x.type === 'EDS').map((x) => String((x.eds_cluster_config as { service_name?: string } | undefined)?.service_name || x.name));
    const cla = await fetch(ENDPOINTS, eds);

    let failed = false;
    for (const type of Object.keys(loaded)) {
      const same = JSON.stringify(got[type]) === JSON.stringify(loaded[type]);
      if (!same) failed = true;
      console.log(`${type.split('.').pop()!.padEnd(22)} loaded ${String(loaded[type]!.length).padStart(4)}, received ${String(got[type]?.length ?? 0).padStart(4)}${same ? '' : '  MISMATCH'}`);
    }
    const lbEndpoints = valuesOf(cla, 'address').length;
    console.log(`endpoint addresses in the ClusterLoadAssignments received: ${lbEndpoints}`);

    // One endpoint change: the answer must carry just that ClusterLoadAssignment.
    const changed = structuredClone(resources[ENDPOINTS][0]!);
    (function setPorts(o: unknown) {
      if (Array.isArray(o)) o.forEach(setPorts);
      else if (o && typeof o === 'object') for (const [k, v] of Object.entries(o)) (k === 'port_value' ? ((o as Record<string, unknown>)[k] = 30001) : setPorts(v));
    })(changed);
    await peer.update(GROUP, ENDPOINTS, [encodeResource(changed).value]);
    const r = await c.next(10_000);
    c.send({ type_url: r.type_url, response_nonce: r.nonce });
    const names = r.resources.map((x) => x.name);
    const ports = valuesOf(deltaDecoded(r), 'port_value');
    const ok = r.type_url === ENDPOINTS && names.length === 1 && names[0] === resourceName(changed);
    if (!ok) failed = true;
    console.log(`one endpoint change: delta of ${names.length} resource(s) [${names.join(', ')}]${ok ? '' : '  UNEXPECTED'}, ${r.resources.map((x) => x.resource.value.length).reduce((a, b) => a + b, 0)} bytes; ports now ${[...new Set(ports)].join(',')}`);
    const s = await peer.stats(true);
    console.log(`Go peer: ${s.deltaStreams} delta stream(s), RSS ${(s.rss / 1048576).toFixed(0)} MB, CPU ${((s.cpu.user + s.cpu.system) / 1000).toFixed(0)} ms`);
    console.log(failed ? 'gocp-check: FAILED' : 'gocp-check: delta ADS works');
    return failed ? 1 : 0;
  } finally {
    client?.close();
    await peer?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
