// The ADS server, spoken to byte for byte by a raw client: initial requests, ACK, NACK, stale
// nonces, named subscriptions to unknown names, and live pushes in CDS, EDS, LDS, RDS order.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../control-plane/log.ts';
import { startControlPlane, type ControlPlane } from '../control-plane/server.ts';
import { CLUSTER, ENDPOINTS, LISTENER, ROUTE_CONFIG } from '../control-plane/translate/type-urls.ts';
import { decoded, names, RawAdsClient } from './helpers/raw-ads.ts';
import { waitFor } from './helpers/wait.ts';
import { ENVOY_NODE, GRPC_NODE, MESH, RATINGS_9080, RATINGS_9090, vs } from './helpers/protocol-fixtures.ts';

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
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-ads-'));
  fs.writeFileSync(path.join(dir, 'mesh.yaml'), MESH);
  writeRules(vs(80, 20));
  cp = await startControlPlane({ configDir: dir, logger: silentLogger, debounceMs: 20 });
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await cp.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('state-of-the-world ADS', () => {
  it('serves a gRPC client LDS -> RDS -> CDS -> EDS by name, and records ACKs', async () => {
    const c = client();
    const target = 'reviews.default.svc.cluster.local:9080';
    c.send({ node: GRPC_NODE, type_url: LISTENER, resource_names: [target] });
    const lds = await c.next();
    expect(lds.type_url).toBe(LISTENER);
    expect(names(lds)).toEqual([target]);
    expect(lds.nonce).not.toBe('');
    c.send({ type_url: LISTENER, resource_names: [target], version_info: lds.version_info, response_nonce: lds.nonce });
    c.send({ type_url: ROUTE_CONFIG, resource_names: [target] });
    const rds = await c.next();
    expect(rds.type_url).toBe(ROUTE_CONFIG);
    const route = decoded(rds)[0] as any;
    expect(route.virtual_hosts[0].domains).toContain(target);
    expect(route.virtual_hosts[0].routes[0].route.weighted_clusters.clusters).toEqual([
      { name: 'outbound|9080|v1|reviews.default.svc.cluster.local', weight: 80 },
      { name: 'outbound|9080|v2|reviews.default.svc.cluster.local', weight: 20 },
    ]);
    const cluster = 'outbound|9080|v1|reviews.default.svc.cluster.local';
    c.send({ type_url: CLUSTER, resource_names: [cluster] });
    const cds = await c.next();
    expect(names(cds)).toEqual([cluster]);
    c.send({ type_url: ENDPOINTS, resource_names: [cluster] });
    const eds = await c.next();
    const cla = decoded(eds)[0] as any;
    expect(cla.endpoints[0].lb_endpoints.map((e: any) => e.endpoint.address.socket_address.address)).toEqual(['10.0.0.1']);
    expect(cla.endpoints[0].load_balancing_weight).toBe(1);

    await waitFor(() => cp.ads.streams.size === 1 && [...cp.ads.streams][0].status()[LISTENER]?.ackedVersion === lds.version_info, { timeoutMs: 3000 });
    const status = [...cp.ads.streams][0].status();
    expect(status[LISTENER].sentVersion).toBe(lds.version_info);
  });

  it('ignores requests carrying a stale nonce', async () => {
    const c = client();
    c.send({ node: ENVOY_NODE, type_url: CLUSTER, resource_names: [] });
    const first = await c.next();
    // The client changes its mind, but quotes a nonce we never sent: it is answered by nothing.
    c.send({ type_url: CLUSTER, resource_names: ['outbound|9080||reviews.default.svc.cluster.local'], response_nonce: 'stale-999', version_info: first.version_info });
    expect(await c.quiet(300)).toBe(true);
  });

  it('tracks a NACK with the client message, once per nonce, until a new version is ACKed', async () => {
    const c = client();
    c.send({ node: ENVOY_NODE, type_url: CLUSTER, resource_names: [] });
    const cds = await c.next();
    const nack = { type_url: CLUSTER, resource_names: [], version_info: '', response_nonce: cds.nonce, error_detail: { code: 14, message: 'cluster rejected: test' } };
    c.send(nack);
    c.send(nack);
    await waitFor(() => [...cp.ads.streams][0]?.status()[CLUSTER]?.nack?.message === 'cluster rejected: test', { timeoutMs: 3000 });
    expect([...cp.ads.streams][0].status()[CLUSTER].nack).toMatchObject({ nonce: cds.nonce, version: cds.version_info });
    // A config change gives a new version; ACKing it clears the NACK.
    fs.appendFileSync(path.join(dir, 'mesh.yaml'), RATINGS_9080);
    const next = await c.next();
    expect(next.type_url).toBe(CLUSTER);
    expect(names(next)).toContain('outbound|9080||ratings.default.svc.cluster.local');
    c.send({ type_url: CLUSTER, resource_names: [], version_info: next.version_info, response_nonce: next.nonce });
    await waitFor(() => [...cp.ads.streams][0].status()[CLUSTER].nack === undefined, { timeoutMs: 3000 });
    expect([...cp.ads.streams][0].status()[CLUSTER].ackedVersion).toBe(next.version_info);
  });

  it('answers a listener name that does not exist with an empty listener set, not silence', async () => {
    const c = client();
    c.send({ node: GRPC_NODE, type_url: LISTENER, resource_names: ['nosuch.default.svc.cluster.local:9080'] });
    const r = await c.next();
    expect(r.resources).toEqual([]);
  });

  it('pushes a rule change live, in CDS, EDS, LDS, RDS order, and nothing when nothing changed', async () => {
    const c = client();
    c.send({ node: ENVOY_NODE, type_url: CLUSTER, resource_names: [] });
    const cds = await c.next();
    const edsNames = names(cds).filter((n) => n.startsWith('outbound|'));
    c.send({ type_url: CLUSTER, resource_names: [], version_info: cds.version_info, response_nonce: cds.nonce });
    c.send({ type_url: ENDPOINTS, resource_names: edsNames });
    const eds = await c.next();
    c.send({ type_url: ENDPOINTS, resource_names: edsNames, version_info: eds.version_info, response_nonce: eds.nonce });
    c.send({ type_url: LISTENER, resource_names: [] });
    const lds = await c.next();
    c.send({ type_url: LISTENER, resource_names: [], version_info: lds.version_info, response_nonce: lds.nonce });
    c.send({ type_url: ROUTE_CONFIG, resource_names: ['9080'] });
    const rds = await c.next();
    c.send({ type_url: ROUTE_CONFIG, resource_names: ['9080'], version_info: rds.version_info, response_nonce: rds.nonce });
    expect(await c.quiet(200)).toBe(true);

    // Rewriting the file with the same content changes nothing for the proxy: no push.
    writeRules(vs(80, 20));
    expect(await c.quiet(400)).toBe(true);

    // A weight change only touches routes.
    writeRules(vs(50, 50));
    const pushed = await c.next();
    expect(pushed.type_url).toBe(ROUTE_CONFIG);
    const vh = (decoded(pushed)[0] as any).virtual_hosts[0];
    expect(vh.routes[0].route.weighted_clusters.clusters.map((x: any) => x.weight)).toEqual([50, 50]);

    // A new service touches clusters, endpoints, listeners and routes, in that order.
    fs.appendFileSync(path.join(dir, 'mesh.yaml'), RATINGS_9090);
    const cdsPush = await c.next();
    const edsAgain = await c.next();
    const ldsPush = await c.next();
    // Endpoints follow a cluster push (for warming) even though the subscribed ones did not change;
    // routes are subscribed by name and did not change, so they are not pushed.
    expect([cdsPush.type_url, edsAgain.type_url, ldsPush.type_url]).toEqual([CLUSTER, ENDPOINTS, LISTENER]);
    expect(names(ldsPush)).toContain('0.0.0.0_9090');
    expect(await c.quiet(300)).toBe(true);
    // Envoy then asks for the new names (this is cluster warming) and gets them at once.
    c.send({ type_url: CLUSTER, resource_names: [], version_info: cdsPush.version_info, response_nonce: cdsPush.nonce });
    c.send({ type_url: ENDPOINTS, resource_names: [...edsNames, 'outbound|9090||ratings.default.svc.cluster.local'], version_info: edsAgain.version_info, response_nonce: edsAgain.nonce });
    const edsPush = await c.next();
    expect(edsPush.type_url).toBe(ENDPOINTS);
    expect(names(edsPush)).toContain('outbound|9090||ratings.default.svc.cluster.local');
    c.send({ type_url: LISTENER, resource_names: [], version_info: ldsPush.version_info, response_nonce: ldsPush.nonce });
    c.send({ type_url: ROUTE_CONFIG, resource_names: ['9080', '9090'], version_info: pushed.version_info, response_nonce: pushed.nonce });
    const rdsPush = await c.next();
    expect(names(rdsPush)).toEqual(['9080', '9090']);
  });

  it('sends endpoints again after a cluster change, so Envoy can finish warming the cluster', async () => {
    const c = client();
    c.send({ node: ENVOY_NODE, type_url: CLUSTER, resource_names: [] });
    const cds = await c.next();
    const edsNames = names(cds).filter((n) => n.startsWith('outbound|'));
    c.send({ type_url: CLUSTER, resource_names: [], version_info: cds.version_info, response_nonce: cds.nonce });
    c.send({ type_url: ENDPOINTS, resource_names: edsNames });
    const eds = await c.next();
    c.send({ type_url: ENDPOINTS, resource_names: edsNames, version_info: eds.version_info, response_nonce: eds.nonce });
    expect(await c.quiet(200)).toBe(true);
    // Only a cluster setting changes (load balancing); the endpoints stay the same.
    fs.writeFileSync(path.join(dir, 'mesh.yaml'), MESH.replace('host: reviews\n', 'host: reviews\n  trafficPolicy: { loadBalancer: { simple: RANDOM } }\n'));
    const cdsPush = await c.next();
    expect(cdsPush.type_url).toBe(CLUSTER);
    const edsPush = await c.next();
    expect(edsPush.type_url).toBe(ENDPOINTS);
    expect(edsPush.version_info).toBe(eds.version_info);
    expect(edsPush.nonce).not.toBe(eds.nonce);
    expect(names(edsPush).sort()).toEqual([...edsNames].sort());
  });

  it('does not resend identical config to a proxy that reconnects with the version it has', async () => {
    const c = client();
    c.send({ node: ENVOY_NODE, type_url: CLUSTER, resource_names: [] });
    const cds = await c.next();
    c.close();
    await waitFor(() => cp.ads.streams.size === 0, { timeoutMs: 3000 });
    const again = client();
    again.send({ node: ENVOY_NODE, type_url: CLUSTER, resource_names: [], version_info: cds.version_info });
    expect(await again.quiet(300)).toBe(true);
    // A proxy with an older version gets the current one.
    const stale = client();
    stale.send({ node: ENVOY_NODE, type_url: CLUSTER, resource_names: [], version_info: 'old' });
    expect((await stale.next()).version_info).toBe(cds.version_info);
  });

  it('removes a deleted service from the next complete cluster response', async () => {
    fs.appendFileSync(path.join(dir, 'mesh.yaml'), RATINGS_9080);
    await waitFor(() => cp.state().model.services.length === 2, { timeoutMs: 3000 });
    const c = client();
    c.send({ node: ENVOY_NODE, type_url: CLUSTER, resource_names: [] });
    const cds = await c.next();
    expect(names(cds)).toContain('outbound|9080||ratings.default.svc.cluster.local');
    c.send({ type_url: CLUSTER, resource_names: [], version_info: cds.version_info, response_nonce: cds.nonce });
    fs.writeFileSync(path.join(dir, 'mesh.yaml'), MESH);
    const next = await c.next();
    expect(next.type_url).toBe(CLUSTER);
    expect(names(next)).not.toContain('outbound|9080||ratings.default.svc.cluster.local');
    expect(names(next)).toContain('outbound|9080|v1|reviews.default.svc.cluster.local');
  });

  it('converges on the last of several quick changes, and survives clients leaving mid-push', async () => {
    const target = 'reviews.default.svc.cluster.local:9080';
    const leaving = client();
    leaving.send({ node: GRPC_NODE, type_url: ROUTE_CONFIG, resource_names: [target] });
    const c = client();
    c.send({ node: GRPC_NODE, type_url: ROUTE_CONFIG, resource_names: [target] });
    let last = await c.next();
    await leaving.next();
    for (const w of [70, 60, 40, 30]) writeRules(vs(w, 100 - w));
    leaving.close();
    const weights = (r: typeof last) => (decoded(r)[0] as any).virtual_hosts[0].routes[0].route.weighted_clusters.clusters.map((x: any) => x.weight);
    await waitFor(async () => {
      c.send({ type_url: ROUTE_CONFIG, resource_names: [target], version_info: last.version_info, response_nonce: last.nonce });
      last = await c.next(2000);
      return weights(last)[0] === 30;
    }, { timeoutMs: 5000 });
    expect(weights(last)).toEqual([30, 70]);
    await waitFor(() => cp.ads.streams.size === 1, { timeoutMs: 3000 });
  });

  it('gives proxyless clients and sidecars different config for the same service', async () => {
    const g = client();
    g.send({ node: GRPC_NODE, type_url: CLUSTER, resource_names: ['outbound|9080|v1|reviews.default.svc.cluster.local'] });
    const e = client();
    e.send({ node: ENVOY_NODE, type_url: CLUSTER, resource_names: ['outbound|9080|v1|reviews.default.svc.cluster.local'] });
    const [gc, ec] = [decoded(await g.next())[0] as any, decoded(await e.next())[0] as any];
    // ROUND_ROBIN is the enum's zero value, so it is not on the wire.
    expect(gc.lb_policy ?? 'ROUND_ROBIN').toBe('ROUND_ROBIN');
    expect(ec.lb_policy).toBe('LEAST_REQUEST');
    expect(ec.typed_extension_protocol_options).toBeDefined();
    expect(gc.typed_extension_protocol_options).toBeUndefined();
  });
});
