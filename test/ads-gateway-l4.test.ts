// A gateway proxy (node type `router`) over raw ADS gets chains for its non-HTTP servers: a TCP
// server's tcp_proxy from the bound tcp route (and a new one when the rule changes), a PASSTHROUGH
// server's chains by SNI from tls routes, and an AUTO_PASSTHROUGH server's SNI-DNAT chains and
// clusters. A sidecar on the same control plane gets none of them.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../control-plane/log.ts';
import { startControlPlane, type ControlPlane } from '../control-plane/server.ts';
import { CLUSTER, LISTENER } from '../control-plane/translate/type-urls.ts';
import { decoded, RawAdsClient, toStruct } from './helpers/raw-ads.ts';
import { ENVOY_NODE } from './helpers/protocol-fixtures.ts';

const ROUTER_NODE = {
  id: 'router~10.9.0.9~edge-1.istio-system~istio-system.svc.cluster.local',
  metadata: toStruct({ NAMESPACE: 'istio-system', LABELS: { istio: 'edge' } }),
  user_agent_name: 'envoy',
};

const MESH = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: db, namespace: default }
spec:
  hosts: [db.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 5432, name: tcp, protocol: TCP }]
  endpoints: [{ address: 10.1.0.1, labels: { v: a } }, { address: 10.1.0.2, labels: { v: b } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: db, namespace: default }
spec:
  host: db.default.svc.cluster.local
  subsets: [{ name: a, labels: { v: a } }, { name: b, labels: { v: b } }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: vault, namespace: default }
spec:
  hosts: [vault.corp.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{ number: 443, name: tls, protocol: TLS }]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: edge, namespace: istio-system }
spec:
  selector: { istio: edge }
  servers:
  - port: { number: 15432, name: tcp-db, protocol: TCP }
    hosts: ["*"]
  - port: { number: 443, name: tls, protocol: TLS }
    hosts: ["*.corp.example.com"]
    tls: { mode: PASSTHROUGH }
  - port: { number: 15443, name: tls-east-west, protocol: TLS }
    hosts: ["*.local"]
    tls: { mode: AUTO_PASSTHROUGH }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: vault, namespace: default }
spec:
  hosts: [vault.corp.example.com]
  gateways: [istio-system/edge]
  tls:
  - match: [{ sniHosts: [vault.corp.example.com] }]
    route: [{ destination: { host: vault.corp.example.com } }]
`;

const dbRule = (a: number, b: number) => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: db, namespace: default }
spec:
  hosts: ["*"]
  gateways: [istio-system/edge]
  tcp:
  - match: [{ port: 15432 }]
    route:
    - { destination: { host: db.default.svc.cluster.local, subset: a }, weight: ${a} }
    - { destination: { host: db.default.svc.cluster.local, subset: b }, weight: ${b} }
`;

let dir: string;
let cp: ControlPlane;
const clients: RawAdsClient[] = [];

function client(): RawAdsClient {
  const c = new RawAdsClient(cp.xdsAddress);
  clients.push(c);
  return c;
}

function writeRules(text: string) {
  const tmp = path.join(dir, '.rules.tmp');
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, path.join(dir, 'rules.yaml'));
}

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-ads-gw-l4-'));
  fs.writeFileSync(path.join(dir, 'mesh.yaml'), MESH);
  writeRules(dbRule(90, 10));
  cp = await startControlPlane({ configDir: dir, logger: silentLogger, debounceMs: 20 });
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await cp.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const tcpProxy = (chain: any) => chain.filters.find((f: any) => f.name === 'envoy.filters.network.tcp_proxy').typed_config;

describe('gateway proxy over ADS: TCP and TLS servers', () => {
  it('gets a tcp_proxy chain for the TCP server, SNI chains for PASSTHROUGH and AUTO_PASSTHROUGH, and follows a rule change', async () => {
    const c = client();
    c.send({ node: ROUTER_NODE, type_url: LISTENER, resource_names: [] });
    const first = await c.next();
    const lds = decoded(first) as any[];
    expect(lds.map((l) => l.name).sort()).toEqual(['0.0.0.0_15432', '0.0.0.0_15443', '0.0.0.0_443']);
    const tcp = lds.find((l) => l.name === '0.0.0.0_15432');
    // Plain TCP: no tls_inspector (a server-first protocol would send it nothing).
    expect(tcp.listener_filters).toBeUndefined();
    expect(tcpProxy(tcp.filter_chains[0]).weighted_clusters.clusters).toEqual([
      { name: 'outbound|5432|a|db.default.svc.cluster.local', weight: 90 },
      { name: 'outbound|5432|b|db.default.svc.cluster.local', weight: 10 },
    ]);
    const pass = lds.find((l) => l.name === '0.0.0.0_443');
    expect(pass.listener_filters.map((f: any) => f.name)).toEqual(['envoy.filters.listener.tls_inspector']);
    expect(pass.filter_chains.map((ch: any) => [ch.filter_chain_match.server_names, tcpProxy(ch).cluster, ch.transport_socket])).toEqual([[['vault.corp.example.com'], 'outbound|443||vault.corp.example.com', undefined]]);
    const auto = lds.find((l) => l.name === '0.0.0.0_15443');
    expect(auto.filter_chains.map((ch: any) => ch.filter_chain_match.server_names[0]).sort()).toEqual([
      'outbound_.5432_._.db.default.svc.cluster.local',
      'outbound_.5432_.a_.db.default.svc.cluster.local',
      'outbound_.5432_.b_.db.default.svc.cluster.local',
    ]);

    writeRules(dbRule(50, 50));
    c.send({ type_url: LISTENER, resource_names: [], version_info: first.version_info, response_nonce: first.nonce });
    const after = (decoded(await c.next()) as any[]).find((l) => l.name === '0.0.0.0_15432');
    expect(tcpProxy(after.filter_chains[0]).weighted_clusters.clusters.map((x: any) => x.weight)).toEqual([50, 50]);
  });

  it('gets the SNI-DNAT clusters (no TLS origination); a sidecar gets no gateway listener', async () => {
    const gw = client();
    gw.send({ node: ROUTER_NODE, type_url: CLUSTER, resource_names: [] });
    const cds = decoded(await gw.next()) as any[];
    const dnat = cds.find((x) => x.name === 'outbound_.5432_.a_.db.default.svc.cluster.local');
    expect(dnat.eds_cluster_config.service_name).toBe('outbound|5432|a|db.default.svc.cluster.local');
    expect(dnat.transport_socket).toBeUndefined();
    const sidecar = client();
    sidecar.send({ node: ENVOY_NODE, type_url: LISTENER, resource_names: [] });
    const names = (decoded(await sidecar.next()) as any[]).map((l) => l.name);
    expect(names).not.toContain('0.0.0.0_15432');
    expect(names).not.toContain('0.0.0.0_15443');
  });
});
