// Gateways through Kubernetes: a Gateway and a VirtualService bound to it, applied to a fake API
// server (real list/watch), reach a gateway proxy (node type router) over ADS, get Accepted=True,
// and an invalid Gateway gets Accepted=False with the field that is wrong.
import { describe, expect, it, afterEach } from 'vitest';
import { startControlPlane, type ControlPlane } from '../control-plane/server.ts';
import { LISTENER, ROUTE_CONFIG } from '../control-plane/translate/type-urls.ts';
import { FakeApiServer } from './helpers/fake-apiserver.ts';
import { istio, registration, serviceObject } from './helpers/kube-objects.ts';
import { hostOf } from './helpers/mesh-files.ts';
import { decoded, RawAdsClient, toStruct } from './helpers/raw-ads.ts';
import { Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';

const teardown = new Teardown();
afterEach(() => teardown.run());

const ROUTER = { id: 'router~10.9.0.9~ingress-1.default~default.svc.cluster.local', metadata: toStruct({ NAMESPACE: 'default', LABELS: { istio: 'ingressgateway' } }), user_agent_name: 'envoy' };
const gateway = (protocol: string) => istio('Gateway', 'ingress', { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: 8080, name: 'http', protocol }, hosts: ['shop.example.com'] }] });

function accepted(api: FakeApiServer, kind: string, name: string): { status: string; message: string } | undefined {
  const o = api.get('networking.istio.io/v1', kind, 'default', name);
  return (o?.['status'] as { conditions?: Array<{ type: string; status: string; message: string }> } | undefined)?.conditions?.find((c) => c.type === 'Accepted');
}

describe('Gateways from Kubernetes', () => {
  it('a Gateway and its bound VirtualService reach a router node; an invalid Gateway is Accepted=False', async () => {
    const api = await FakeApiServer.start('east');
    teardown.add(() => api.close());
    api.apply(serviceObject('reviews'));
    api.apply(gateway('HTTP'));
    api.apply(istio('VirtualService', 'shop', { hosts: ['shop.example.com'], gateways: ['ingress'], http: [{ route: [{ destination: { host: hostOf('reviews') } }] }] }));
    const cp: ControlPlane = await startControlPlane({ xdsListen: '127.0.0.1:0', adminListen: null, debounceMs: 20, logLevel: 'silent', kube: { configCluster: registration(api) } });
    teardown.add(() => cp.stop());
    await waitFor(() => cp.state().model.gateways.length === 1, { description: 'the Gateway compiled' });
    const c = new RawAdsClient(cp.xdsAddress);
    teardown.add(() => c.close());

    c.send({ node: ROUTER, type_url: LISTENER, resource_names: [] });
    const lds = await c.next(20_000);
    expect((decoded(lds) as any[]).map((l) => l.name)).toEqual(['0.0.0.0_8080']);
    c.send({ type_url: LISTENER, resource_names: [], version_info: lds.version_info, response_nonce: lds.nonce });
    c.send({ type_url: ROUTE_CONFIG, resource_names: ['http.8080'] });
    const rc = decoded(await c.next())[0] as any;
    expect(rc.virtual_hosts[0].domains).toContain('shop.example.com');
    expect(rc.virtual_hosts[0].routes[0].route.cluster).toBe(`outbound|9080||${hostOf('reviews')}`);
    await waitFor(() => accepted(api, 'Gateway', 'ingress')?.status === 'True', { description: 'Gateway Accepted=True' });

    api.apply(gateway('HTTPX'));
    await waitFor(() => accepted(api, 'Gateway', 'ingress')?.status === 'False', { description: 'Gateway Accepted=False' });
    expect(accepted(api, 'Gateway', 'ingress')!.message).toMatch(/spec\.servers\[0\]\.port\.protocol/);
  });
});
