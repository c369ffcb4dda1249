// Sidecar scoping over the wire (raw ADS): an Envoy sidecar under a Sidecar gets only its egress
// scope (clusters, endpoints, listeners, route configs), one without gets the whole mesh, and a
// service added outside the scope pushes nothing to the scoped one while the other gets it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../control-plane/log.ts';
import { startControlPlane, type ControlPlane } from '../control-plane/server.ts';
import { CLUSTER, ENDPOINTS, LISTENER, ROUTE_CONFIG } from '../control-plane/translate/type-urls.ts';
import { decoded, names, RawAdsClient, toStruct } from './helpers/raw-ads.ts';

const se = (name: string, ns: string, ip: string) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: ${ns} }
spec:
  hosts: [${name}.${ns}.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8080, name: http, protocol: HTTP }]
  endpoints: [{ address: ${ip} }]
`;

const SIDECAR = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: scoped, namespace: default }
spec:
  workloadSelector: { labels: { app: scoped } }
  egress:
  - hosts: ["./a.default.svc.cluster.local"]
`;

const BASE = [SIDECAR, se('a', 'default', '10.0.0.1'), se('b', 'default', '10.0.0.2'), se('c', 'shop', '10.0.0.3')];

const node = (id: string, app: string) => ({ id: `sidecar~10.9.0.${id}~${app}-1.default~default.svc.cluster.local`, metadata: toStruct({ NAMESPACE: 'default', LABELS: { app } }), user_agent_name: 'envoy' });

let dir: string;
let cp: ControlPlane;
const clients: RawAdsClient[] = [];

function writeRules(docs: string[]) {
  const tmp = path.join(dir, '.rules.tmp');
  fs.writeFileSync(tmp, docs.join('---\n'));
  fs.renameSync(tmp, path.join(dir, 'rules.yaml'));
}

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-ads-sidecar-'));
  writeRules(BASE);
  cp = await startControlPlane({ configDir: dir, logger: silentLogger, debounceMs: 20 });
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await cp.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Subscribes to every type (wildcard) and ACKs each answer; returns the names per type. */
async function subscribe(c: RawAdsClient, n: ReturnType<typeof node>): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  let first = true;
  for (const type of [CLUSTER, ENDPOINTS, LISTENER, ROUTE_CONFIG]) {
    const names0 = type === ENDPOINTS ? out[CLUSTER]!.filter((x) => x.startsWith('outbound|')) : type === ROUTE_CONFIG ? ['8080'] : [];
    c.send({ ...(first ? { node: n } : {}), type_url: type, resource_names: names0 });
    first = false;
    const r = await c.next();
    expect(r.type_url).toBe(type);
    out[type] = names(r).sort();
    if (type === ROUTE_CONFIG) out.vhosts = (decoded(r)[0] as any).virtual_hosts.map((v: any) => v.name);
    c.send({ type_url: type, resource_names: names0, version_info: r.version_info, response_nonce: r.nonce });
  }
  return out;
}

describe('Sidecar scope over ADS', () => {
  it('a scoped sidecar gets only its egress hosts, an unscoped one everything; a service added outside the scope pushes nothing to the scoped one', async () => {
    const scoped = new RawAdsClient(cp.xdsAddress);
    const open = new RawAdsClient(cp.xdsAddress);
    clients.push(scoped, open);
    const s = await subscribe(scoped, node('1', 'scoped'));
    const o = await subscribe(open, node('2', 'web'));
    expect(s[CLUSTER]!.filter((x) => x.startsWith('outbound|'))).toEqual(['outbound|8080||a.default.svc.cluster.local']);
    expect(s[ENDPOINTS]).toEqual(['outbound|8080||a.default.svc.cluster.local']);
    expect(s.vhosts).toEqual(['a.default.svc.cluster.local:8080', 'allow_any']);
    expect(o[CLUSTER]!.filter((x) => x.startsWith('outbound|'))).toEqual([
      'outbound|8080||a.default.svc.cluster.local',
      'outbound|8080||b.default.svc.cluster.local',
      'outbound|8080||c.shop.svc.cluster.local',
    ]);
    expect(o.vhosts).toEqual(['a.default.svc.cluster.local:8080', 'b.default.svc.cluster.local:8080', 'c.shop.svc.cluster.local:8080', 'allow_any']);

    writeRules([...BASE, se('d', 'shop', '10.0.0.4')]);
    const push = await open.next(5000);
    expect(push.type_url).toBe(CLUSTER);
    expect(names(push)).toContain('outbound|8080||d.shop.svc.cluster.local');
    // The open one's push proves the new model is out; the scoped one's config did not change.
    expect(await scoped.quiet(1000)).toBe(true);
  });
});
