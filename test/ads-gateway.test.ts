// A gateway proxy (node type `router`) over raw ADS: it gets a listener per Gateway server port and
// the route config `http.<port>` with the routes bound to its Gateway; a sidecar and a gRPC client
// on the same server get none of the gateway-only routes, until the rule is also bound to `mesh`.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../control-plane/log.ts';
import { startControlPlane, type ControlPlane } from '../control-plane/server.ts';
import { LISTENER, ROUTE_CONFIG } from '../control-plane/translate/type-urls.ts';
import { decoded, RawAdsClient, toStruct } from './helpers/raw-ads.ts';
import { ENVOY_NODE, GRPC_NODE, MESH } from './helpers/protocol-fixtures.ts';

const ROUTER_NODE = {
  id: 'router~10.9.0.9~ingress-1.istio-system~istio-system.svc.cluster.local',
  metadata: toStruct({ NAMESPACE: 'istio-system', LABELS: { istio: 'ingressgateway' } }),
  user_agent_name: 'envoy',
};

const GATEWAY = `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: ingress, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
  - port: { number: 8080, name: http, protocol: HTTP }
    hosts: ["*/shop.example.com", "*/reviews.default.svc.cluster.local"]
`;

/** A rule for reviews and shop.example.com: the canary header goes to v2, the rest to v1. */
const bound = (gateways: string) => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: shop }
spec:
  hosts: [shop.example.com, reviews]
  gateways: ${gateways}
  http:
  - match: [{ headers: { x-canary: { exact: "1" } } }]
    route: [{ destination: { host: reviews, subset: v2 } }]
  - route: [{ destination: { host: reviews, subset: v1 } }]
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
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-ads-gw-'));
  fs.writeFileSync(path.join(dir, 'mesh.yaml'), MESH + '---' + GATEWAY);
  writeRules(bound('[istio-system/ingress]'));
  cp = await startControlPlane({ configDir: dir, logger: silentLogger, debounceMs: 20 });
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await cp.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const routeNames = (rc: any): string[] => rc.virtual_hosts.flatMap((v: any) => v.routes.map((r: any) => r.name));

describe('gateway proxy over ADS', () => {
  it('a router node gets its server listener and route config http.<port>, with the bound routes', async () => {
    const c = client();
    c.send({ node: ROUTER_NODE, type_url: LISTENER, resource_names: [] });
    const lds = decoded(await c.next()) as any[];
    // No sidecar listeners (virtualOutbound/virtualInbound): only the server's port.
    expect(lds.map((l) => l.name)).toEqual(['0.0.0.0_8080']);
    expect(lds[0].address.socket_address).toMatchObject({ address: '0.0.0.0', port_value: 8080 });
    const hcm = lds[0].filter_chains[0].filters[0].typed_config;
    expect(hcm.rds.route_config_name).toBe('http.8080');
    c.send({ type_url: ROUTE_CONFIG, resource_names: ['http.8080'] });
    const rc = decoded(await c.next())[0] as any;
    expect(rc.name).toBe('http.8080');
    const shop = rc.virtual_hosts.find((v: any) => v.domains.includes('shop.example.com'));
    expect(shop.routes.map((r: any) => r.route.cluster)).toEqual(['outbound|9080|v2|reviews.default.svc.cluster.local', 'outbound|9080|v1|reviews.default.svc.cluster.local']);
    expect(shop.routes[0].match.headers[0].name).toBe('x-canary');
  });

  it('sidecars and gRPC clients get no gateway-only routes, and get them once the rule names mesh', async () => {
    const sidecar = client();
    sidecar.send({ node: ENVOY_NODE, type_url: ROUTE_CONFIG, resource_names: ['9080'] });
    const before = decoded(await sidecar.next())[0] as any;
    expect(routeNames(before).filter((n) => n.startsWith('default/shop/'))).toEqual([]);
    const grpcClient = client();
    const target = 'reviews.default.svc.cluster.local:9080';
    grpcClient.send({ node: GRPC_NODE, type_url: ROUTE_CONFIG, resource_names: [target] });
    const grpcBefore = await grpcClient.next();
    expect(routeNames(decoded(grpcBefore)[0])).toEqual(['default']);

    writeRules(bound('[istio-system/ingress, mesh]'));
    const after = decoded(await sidecar.next())[0] as any;
    expect(routeNames(after)).toContain('default/shop/0');
    // The sidecar's virtual host for reviews now routes the canary header to v2.
    const vh = after.virtual_hosts.find((v: any) => v.domains.includes('reviews.default.svc.cluster.local'));
    expect(vh.routes[0].route.cluster).toBe('outbound|9080|v2|reviews.default.svc.cluster.local');
    grpcClient.send({ type_url: ROUTE_CONFIG, resource_names: [target], version_info: grpcBefore.version_info, response_nonce: grpcBefore.nonce });
    const grpcAfter = decoded(await grpcClient.next())[0] as any;
    expect(routeNames(grpcAfter)).toEqual(['default/shop/0', 'default/shop/1']);
  });

  it('a sidecar node with the gateway labels is still a sidecar: no gateway listener', async () => {
    const c = client();
    c.send({ node: { ...ENVOY_NODE, metadata: toStruct({ NAMESPACE: 'istio-system', LABELS: { istio: 'ingressgateway' } }) }, type_url: LISTENER, resource_names: [] });
    const names = (decoded(await c.next()) as any[]).map((l) => l.name);
    expect(names).toContain('virtualOutbound');
    expect(names).not.toContain('0.0.0.0_8080');
  });
});
