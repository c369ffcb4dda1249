// Services, EndpointSlices, Pods and Nodes -> mesh services: protocol selection, locality from
// node topology, pod labels and service accounts, unready endpoints left out, clusters merged per
// host (namespace sameness) with their networks, and each network's gateway in the LoadResult.
import { describe, expect, it, afterEach } from 'vitest';
import type { V1EndpointSlice, V1Node, V1Pod, V1Service } from '@kubernetes/client-node';
import { KubeSource } from '../control-plane/kube/kube-source.ts';
import { buildShard, localityOf, mergeShards, portProtocol, serviceEntryDocument } from '../control-plane/kube/service-shards.ts';
import { silentLogger } from '../control-plane/log.ts';
import { FakeApiServer } from './helpers/fake-apiserver.ts';
import { nodeObject, registration } from './helpers/kube-objects.ts';
import { Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';

const teardown = new Teardown();
afterEach(() => teardown.run());

const svc = (name: string, ports: V1Service['spec']): V1Service => ({ metadata: { name, namespace: 'shop' }, spec: ports });
const node = (name: string, labels: Record<string, string>): V1Node => ({ metadata: { name, labels } });
const pod = (name: string, labels: Record<string, string>, nodeName: string): V1Pod => ({ metadata: { name, namespace: 'shop', labels }, spec: { nodeName, serviceAccountName: 'cart-sa', containers: [] } });
function slice(name: string, service: string, ports: Array<{ name?: string; port: number }>, endpoints: V1EndpointSlice['endpoints']): V1EndpointSlice {
  return { metadata: { name, namespace: 'shop', labels: { 'kubernetes.io/service-name': service } }, addressType: 'IPv4', ports, endpoints };
}

describe('service shards', () => {
  it('protocol from appProtocol, then the port name prefix, else TCP', () => {
    expect(portProtocol('grpc-api', undefined)).toBe('GRPC');
    expect(portProtocol('http', undefined)).toBe('HTTP');
    expect(portProtocol('web', 'http2')).toBe('HTTP2');
    expect(portProtocol('web', 'kubernetes.io/h2c')).toBe('HTTP2');
    expect(portProtocol('metrics', undefined)).toBe('TCP');
    expect(portProtocol(undefined, undefined)).toBe('TCP');
  });

  it('locality is region/zone/subzone from node labels, never a zone without a region', () => {
    expect(localityOf(node('n', { 'topology.kubernetes.io/region': 'eu', 'topology.kubernetes.io/zone': 'eu-1a', 'topology.istio.io/subzone': 'rack7' }), undefined)).toBe('eu/eu-1a/rack7');
    expect(localityOf(node('n', { 'topology.kubernetes.io/region': 'eu' }), 'eu-1b')).toBe('eu/eu-1b');
    expect(localityOf(node('n', { 'topology.kubernetes.io/zone': 'eu-1a' }), undefined)).toBeUndefined();
    expect(localityOf(undefined, undefined)).toBeUndefined();
  });

  it('endpoints carry pod labels, service account, locality, network; unready and terminating ones are left out', () => {
    const shard = buildShard(
      {
        services: [svc('cart', { ports: [{ name: 'grpc', port: 9080, targetPort: 8080 as never }, { name: 'dns', port: 53, protocol: 'UDP' }] })],
        pods: [pod('cart-1', { app: 'cart', version: 'v2' }, 'n1')],
        nodes: [node('n1', { 'topology.kubernetes.io/region': 'eu', 'topology.kubernetes.io/zone': 'eu-1a' })],
        endpointSlices: [
          slice('cart-abc', 'cart', [{ name: 'grpc', port: 8080 }], [
            { addresses: ['10.0.0.1'], conditions: { ready: true }, targetRef: { kind: 'Pod', name: 'cart-1', namespace: 'shop' } },
            { addresses: ['10.0.0.2'], conditions: { ready: false } },
            { addresses: ['10.0.0.3'], conditions: { ready: true, terminating: true } },
          ]),
          slice('other', 'nope', [{ name: 'grpc', port: 1 }], [{ addresses: ['10.9.9.9'] }]),
        ],
      },
      'net-a',
    );
    expect([...shard.keys()]).toEqual(['shop/cart']);
    expect(shard.get('shop/cart')).toEqual({
      namespace: 'shop',
      name: 'cart',
      ports: [{ name: 'grpc', number: 9080, protocol: 'GRPC', targetPort: 8080 }],
      endpoints: [{ address: '10.0.0.1', ports: { grpc: 8080 }, labels: { app: 'cart', version: 'v2' }, locality: 'eu/eu-1a', network: 'net-a', serviceAccount: 'cart-sa' }],
    });
  });

  it('a Service with publishNotReadyAddresses keeps its not-ready endpoints', () => {
    const shard = buildShard({ services: [svc('db', { ports: [{ name: 'tcp', port: 5432 }], publishNotReadyAddresses: true })], pods: [], nodes: [], endpointSlices: [slice('db-1', 'db', [{ name: 'tcp', port: 5432 }], [{ addresses: ['10.0.0.5'], conditions: { ready: false } }])] }, undefined);
    expect(shard.get('shop/db')!.endpoints.map((e) => e.address)).toEqual(['10.0.0.5']);
  });

  it('a pod labelled topology.istio.io/network is on that network, not the cluster\'s', () => {
    const shard = buildShard({ services: [svc('vm', { ports: [{ name: 'http', port: 80 }] })], pods: [pod('vm-1', { 'topology.istio.io/network': 'on-prem' }, 'n1')], nodes: [], endpointSlices: [slice('vm-1', 'vm', [{ name: 'http', port: 80 }], [{ addresses: ['10.0.0.9'], targetRef: { kind: 'Pod', name: 'vm-1', namespace: 'shop' } }])] }, 'net-a');
    expect(shard.get('shop/vm')!.endpoints[0]!.network).toBe('on-prem');
  });

  it('an unnamed single port is named port-<n> and matched by the slice\'s unnamed port', () => {
    const shard = buildShard({ services: [svc('db', { ports: [{ port: 5432 }] })], pods: [], nodes: [], endpointSlices: [slice('db-1', 'db', [{ port: 5433 }], [{ addresses: ['10.0.0.5'] }])] }, undefined);
    expect(shard.get('shop/db')!.ports).toEqual([{ name: 'port-5432', number: 5432, protocol: 'TCP' }]);
    expect(shard.get('shop/db')!.endpoints).toEqual([{ address: '10.0.0.5', ports: { 'port-5432': 5433 } }]);
  });

  it('the same name and namespace in two clusters is one service with both clusters\' endpoints', () => {
    const a = buildShard({ services: [svc('cart', { ports: [{ name: 'grpc', port: 9080 }] })], pods: [], nodes: [], endpointSlices: [slice('s', 'cart', [{ name: 'grpc', port: 1 }], [{ addresses: ['10.0.0.1'] }])] }, 'net-a');
    const b = buildShard({ services: [svc('cart', { ports: [{ name: 'grpc', port: 9080 }, { name: 'http', port: 80 }] })], pods: [], nodes: [], endpointSlices: [slice('s', 'cart', [{ name: 'grpc', port: 2 }, { name: 'http', port: 3 }], [{ addresses: ['10.1.0.1'] }])] }, 'net-b');
    const merged = mergeShards([{ cluster: 'a', shard: a }, { cluster: 'b', shard: b }]);
    expect(merged).toHaveLength(1);
    expect(merged[0]!.clusters).toEqual(['a', 'b']);
    expect(merged[0]!.ports.map((p) => p.name)).toEqual(['grpc', 'http']);
    expect(merged[0]!.endpoints.map((e) => [e.address, e.network, e.ports])).toEqual([
      ['10.0.0.1', 'net-a', { grpc: 1 }],
      ['10.1.0.1', 'net-b', { grpc: 2, http: 3 }],
    ]);
  });

  it('cluster IPs become the ServiceEntry\'s addresses (each cluster\'s, sorted; none for a headless Service), which L4 routes tell TCP services apart by', () => {
    const a = buildShard({ services: [svc('db', { ports: [{ name: 'tcp', port: 5432 }], clusterIP: '10.96.0.20', clusterIPs: ['10.96.0.20', 'fd00::20'] }), svc('hl', { ports: [{ name: 'tcp', port: 5432 }], clusterIP: 'None' })], pods: [], nodes: [], endpointSlices: [] }, undefined);
    const b = buildShard({ services: [svc('db', { ports: [{ name: 'tcp', port: 5432 }], clusterIP: '10.0.0.3' })], pods: [], nodes: [], endpointSlices: [] }, undefined);
    const merged = mergeShards([{ cluster: 'a', shard: a }, { cluster: 'b', shard: b }]);
    const db = merged.find((m) => m.name === 'db')!;
    expect(db.addresses).toEqual(['10.0.0.3', '10.96.0.20', 'fd00::20']);
    expect((serviceEntryDocument(db).spec as { addresses?: string[] }).addresses).toEqual(['10.0.0.3', '10.96.0.20', 'fd00::20']);
    const hl = merged.find((m) => m.name === 'hl')!;
    expect(hl.addresses).toBeUndefined();
    expect('addresses' in (serviceEntryDocument(hl).spec as object)).toBe(false);
  });
});

describe('KubeSource', () => {
  it('two clusters on two networks: endpoints carry their network, gateways come out per network, services validate as ServiceEntries', async () => {
    const east = await FakeApiServer.start('east');
    const west = await FakeApiServer.start('west');
    teardown.add(() => east.close());
    teardown.add(() => west.close());
    for (const [api, ip, zone] of [[east, '10.0.0.1', 'us-east-1a'], [west, '10.1.0.1', 'us-west-2a']] as const) {
      api.apply(nodeObject('n1', zone.slice(0, 7), zone));
      api.apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'cart', namespace: 'shop' }, spec: { ports: [{ name: 'http', port: 80 }] } });
      api.apply({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'cart-x', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'cart' } }, addressType: 'IPv4', ports: [{ name: 'http', port: 8080 }], endpoints: [{ addresses: [ip], nodeName: 'n1' }] });
    }
    const source = new KubeSource({
      configCluster: registration(east, { network: 'net-east', gateway: { address: '192.0.2.1', port: 15443 } }),
      remoteClusters: [registration(west, { network: 'net-west', gateway: { address: '192.0.2.2', port: 15443 } })],
      log: silentLogger,
    });
    teardown.add(() => source.close());
    source.start();
    await waitFor(() => source.ready(), { description: 'both synced' });
    const r = source.current();
    expect(r.errors).toEqual([]);
    expect(r.networkGateways).toEqual({ 'net-east': [{ address: '192.0.2.1', port: 15443 }], 'net-west': [{ address: '192.0.2.2', port: 15443 }] });
    const se = r.objects.find((o) => o.key === 'ServiceEntry/shop/k8s.cart')!;
    expect(se.source.file).toBe('k8s://east,west/Service/shop/cart');
    expect((se.spec as { hosts: string[] }).hosts).toEqual(['cart.shop.svc.cluster.local']);
    expect((se.spec as { endpoints: Array<{ address: string; network: string; locality: string }> }).endpoints.map((e) => `${e.address} ${e.network} ${e.locality}`)).toEqual([
      '10.0.0.1 net-east us-east/us-east-1a',
      '10.1.0.1 net-west us-west/us-west-2a',
    ]);
    // Unchanged input, same object: the model can reuse what it built from it.
    expect(source.current().objects.find((o) => o.key === 'ServiceEntry/shop/k8s.cart')).toBe(se);
  });

  it('clusters registered by Secrets: a changed Secret swaps the cluster without losing its endpoints; a bad one is reported; a deleted one unregisters', async () => {
    const east = await FakeApiServer.start('east');
    const west = await FakeApiServer.start('west');
    teardown.add(() => east.close());
    teardown.add(() => west.close());
    for (const [api, ip] of [[east, '10.0.0.1'], [west, '10.1.0.1']] as const) {
      api.apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'cart', namespace: 'shop' }, spec: { ports: [{ name: 'http', port: 80 }] } });
      api.apply({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'cart-x', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'cart' } }, addressType: 'IPv4', ports: [{ name: 'http', port: 8080 }], endpoints: [{ addresses: [ip] }] });
    }
    const b64 = (t: string) => Buffer.from(t).toString('base64');
    const secret = (name: string, data: Record<string, string>) => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name: `c-${name}`, namespace: 'meshpilot-system', labels: { 'meshpilot.io/cluster': name } }, data });
    east.apply(secret('west', { kubeconfig: b64(west.kubeconfig()), network: b64('n1') }));
    const source = new KubeSource({ configCluster: registration(east), secretsNamespace: 'meshpilot-system', log: silentLogger, backoffMinMs: 20, backoffMaxMs: 100 });
    teardown.add(() => source.close());
    const networks = () => {
      const se = source.current().objects.find((o) => o.key === 'ServiceEntry/shop/k8s.cart');
      return ((se?.spec as { endpoints?: Array<{ network?: string }> } | undefined)?.endpoints ?? []).map((e) => e.network ?? '-').join(',');
    };
    const observed: string[] = [];
    source.onChange(() => observed.push(networks()));
    const ups: string[] = [];
    source.onClusterStatus((cluster, up) => ups.push(`${cluster}=${up}`));
    source.start();
    await waitFor(() => source.ready() && networks() === '-,n1', { description: 'west registered by its Secret' });
    observed.length = 0;

    east.apply(secret('west', { kubeconfig: b64(west.kubeconfig()), network: b64('n2') }));
    await waitFor(() => networks() === '-,n2', { description: 'registration replaced' });
    expect(observed.length).toBeGreaterThan(0);
    expect(observed.filter((n) => n.split(',').length !== 2), observed.join(' | ')).toEqual([]);

    east.apply(secret('broken', { kubeconfig: b64('not: [a kubeconfig') }));
    await waitFor(() => source.health().some((h) => h.name === 'registration/meshpilot-system/c-broken' && !h.healthy), { description: 'bad Secret reported' });

    east.remove('v1', 'Secret', 'meshpilot-system', 'c-west');
    await waitFor(() => networks() === '-', { description: 'west unregistered' });
    expect(source.health().map((h) => h.name)).toEqual(['cluster/east', 'registration/meshpilot-system/c-broken']);
    // Transitions for an "up" metric: both came up; west was unregistered at the end.
    expect(ups[0]).toBe('east=false');
    expect(ups).toContain('east=true');
    expect(ups).toContain('west=true');
    expect(ups[ups.length - 1]).toBe('west=undefined');
  });
});

describe('rules from CRDs', () => {
  it('every kind is read from its group, validated like a file, and an invalid edit keeps the last valid version', async () => {
    const api = await FakeApiServer.start('east');
    teardown.add(() => api.close());
    const source = new KubeSource({ configCluster: registration(api), log: silentLogger });
    teardown.add(() => source.close());
    api.apply({ apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name: 'deny-all', namespace: 'shop', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"huge":true}', team: 'a' } }, spec: { action: 'DENY', rules: [{}] } });
    api.apply({ apiVersion: 'traffic.meshpilot.io/v1alpha1', kind: 'RateLimit', metadata: { name: 'cart', namespace: 'shop' }, spec: { destination: { host: 'cart' }, limit: { requests: 10, per: '1s' } } });
    api.apply({ apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name: 'vm1', namespace: 'shop', labels: { app: 'cart' } }, spec: { address: '10.9.0.1' } });
    api.apply({ apiVersion: 'security.istio.io/v1beta1', kind: 'RequestAuthentication', metadata: { name: 'jwt', namespace: 'shop' }, spec: { jwtRules: [{ issuer: 'https://idp.example', jwksUri: 'https://idp.example/jwks' }] } });
    source.start();
    await waitFor(() => source.ready());
    const keys = () => source.current().objects.filter((o) => !o.key.startsWith('ServiceEntry/')).map((o) => `${o.key} ${o.apiVersion}`);
    expect(keys()).toEqual([
      'AuthorizationPolicy/shop/deny-all security.istio.io/v1',
      'RateLimit/shop/cart traffic.meshpilot.io/v1alpha1',
      'RequestAuthentication/shop/jwt security.istio.io/v1',
      'WorkloadEntry/shop/vm1 networking.istio.io/v1',
    ]);
    const ap = source.current().objects[0]!;
    expect(ap.annotations).toEqual({ team: 'a' });
    expect(ap.source.file).toBe('k8s://east/AuthorizationPolicy/shop/deny-all');

    api.apply({ apiVersion: 'traffic.meshpilot.io/v1alpha1', kind: 'RateLimit', metadata: { name: 'cart', namespace: 'shop' }, spec: { destination: { host: 'cart' }, limit: { requests: 0, per: '10ms' }, burst: 3 } });
    await waitFor(() => source.current().errors.length > 0);
    const r = source.current();
    expect(r.errors.map((e) => `${e.file} ${e.path}: ${e.message.split(' (')[0]}`)).toEqual([
      'k8s://east/RateLimit/shop/cart : invalid; its previous valid version stays in force',
      'k8s://east/RateLimit/shop/cart spec.limit.requests: must be a whole number of requests from 1 to 4294967295',
      'k8s://east/RateLimit/shop/cart spec.limit.per: must be at least 50ms',
      'k8s://east/RateLimit/shop/cart spec.burst: field not supported by meshpilot',
    ]);
    expect((r.objects.find((o) => o.key === 'RateLimit/shop/cart')!.spec as { limit: { requests: number } }).limit.requests).toBe(10);
  });
});

describe('name clashes', () => {
  it('a rule object using a generated ServiceEntry name wins, and the Service is reported', async () => {
    const api = await FakeApiServer.start('east');
    teardown.add(() => api.close());
    api.apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'cart', namespace: 'shop' }, spec: { ports: [{ name: 'http', port: 80 }] } });
    api.apply({ apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: 'k8s.cart', namespace: 'shop' }, spec: { hosts: ['cart.example.com'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'DNS' } });
    const source = new KubeSource({ configCluster: registration(api), log: silentLogger });
    teardown.add(() => source.close());
    source.start();
    await waitFor(() => source.ready());
    const r = source.current();
    expect(r.objects.map((o) => `${o.key} ${o.source.file}`)).toEqual(['ServiceEntry/shop/k8s.cart k8s://east/ServiceEntry/shop/k8s.cart']);
    expect(r.errors.map((e) => `${e.file} ${e.path}: ${e.message}`)).toEqual([
      "k8s://east/Service/shop/cart metadata.name: ServiceEntry/shop/k8s.cart is also a rule object's name; this Service is not meshed until one is renamed",
    ]);
  });
});

describe('rule status', () => {
  it('a failed status write is retried with backoff without any further change', async () => {
    const { startControlPlane } = await import('../control-plane/server.ts');
    const api = await FakeApiServer.start('east');
    teardown.add(() => api.close());
    api.failNextStatusWrites(2);
    api.apply({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'bad', namespace: 'shop' }, spec: { hosts: ['cart'], http: [{ route: [{ destination: { host: 'cart' }, weight: -5 }] }] } });
    const cp = await startControlPlane({ kube: { configCluster: registration(api) }, adminListen: null, logLevel: 'silent', debounceMs: 10 });
    teardown.add(() => cp.stop());
    const condition = () => ((api.get('networking.istio.io/v1', 'VirtualService', 'shop', 'bad')?.['status'] as { conditions?: Array<{ status: string; message: string }> } | undefined)?.conditions ?? [])[0];
    await waitFor(() => condition()?.status === 'False', { description: 'status written after two failures' });
    expect(condition()!.message).toContain('spec.http[0].route[0].weight');
    const writes = api.requests.filter((r) => r.method === 'PATCH' && r.path.endsWith('/status'));
    expect(writes.map((r) => r.status)).toEqual([503, 503, 200]);
  });
});

describe('readiness', () => {
  it('a cluster that never syncs holds readiness until the sync timeout, then is reported as late', async () => {
    const api = await FakeApiServer.start('east');
    teardown.add(() => api.close());
    await api.stop();
    const source = new KubeSource({ configCluster: registration(api), syncTimeoutMs: 300, log: silentLogger, backoffMinMs: 20, backoffMaxMs: 50 });
    teardown.add(() => source.close());
    let notified = 0;
    source.onChange(() => notified++);
    source.start();
    expect(source.ready()).toBe(false);
    await waitFor(() => source.ready(), { description: 'ready after the timeout' });
    expect(notified).toBeGreaterThan(0); // the server is told, so it can start serving
    expect(source.health()[0]).toMatchObject({ name: 'cluster/east', ready: true, healthy: false, syncTimedOut: true });
  });
});

describe('validation of Kubernetes documents', () => {
  it('the direct zod path and the YAML file path agree on every golden and example rule', async () => {
    const { readFileSync, readdirSync } = await import('node:fs');
    const { parseAllDocuments } = await import('yaml');
    const { parseRuleDocument, validateDocument } = await import('../control-plane/kube/objects.ts');
    let compared = 0;
    for (const dir of [new URL('./golden/in/', import.meta.url), new URL('../examples/bookinfo/', import.meta.url)]) {
      for (const f of readdirSync(dir).filter((x) => x.endsWith('.yaml'))) {
        for (const d of parseAllDocuments(readFileSync(new URL(f, dir), 'utf8'))) {
          const doc = d.toJS() as Record<string, unknown>;
          const fast = validateDocument('k8s://t/x', doc);
          const slow = parseRuleDocument('k8s://t/x', doc);
          const view = (p: typeof fast) => (p.object ? { key: p.object.key, apiVersion: p.object.apiVersion, labels: p.object.labels, annotations: p.object.annotations, spec: p.object.spec } : p.errors.map((e) => `${e.path}: ${e.message}`));
          expect(view(fast), f).toEqual(view(slow));
          compared++;
        }
      }
    }
    expect(compared).toBeGreaterThan(50);
  });
});
