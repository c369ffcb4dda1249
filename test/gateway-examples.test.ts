// The gateway examples: examples/gateways/egress (Istio's egress gateway pattern) and
// examples/gateways/ingress (bookinfo behind an HTTPS ingress gateway) load without problems and
// translate, for the sidecars and for the gateway proxies, into what their comments say; the
// Kubernetes gateway Deployments (examples/kubernetes/gateways) inject into gateway pods.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadDirectory, parseConfigText } from '../control-plane/config/load.ts';
import { checkResource } from '../control-plane/envoy/check.ts';
import { INJECT } from '../control-plane/inject/annotations.ts';
import { loadInjectionConfig } from '../control-plane/inject/config.ts';
import { injectYaml } from '../control-plane/inject/documents.ts';
import { INIT_CONTAINER, PROXY_CONTAINER } from '../control-plane/inject/names.ts';
import { compile } from '../control-plane/model/compile.ts';
import { proxyFromNode } from '../control-plane/translate/proxy.ts';
import { translate } from '../control-plane/translate/translate.ts';
import { LISTENER, ROUTE_CONFIG, TYPE_ORDER } from '../control-plane/translate/type-urls.ts';
import { kubernetesProblems } from './helpers/k8s-schema.ts';

const sidecar = proxyFromNode({ id: 'sidecar~10.0.0.9~productpage-1.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default', LABELS: { app: 'productpage' } } });
const router = (ip: string, istio: string) => proxyFromNode({ id: `router~${ip}~gw-1.istio-system~istio-system.svc.cluster.local`, metadata: { NAMESPACE: 'istio-system', LABELS: { istio } } });

function translated(model: Parameters<typeof translate>[0], proxy: ReturnType<typeof proxyFromNode>) {
  const res = translate(model, proxy);
  for (const r of TYPE_ORDER.flatMap((t) => res[t])) expect(checkResource(r), String(r.name ?? r.cluster_name)).toEqual([]);
  return res;
}

const vhost = (configs: any[], name: string, domain: string) => configs.find((c) => c.name === name)?.virtual_hosts.find((v: any) => v.domains.includes(domain));

describe('examples/gateways/egress', () => {
  const state = compile(loadDirectory('examples/gateways/egress'));

  it('is accepted without errors or warnings', () => {
    expect([...state.errors, ...state.warnings]).toEqual([]);
  });

  it('sidecars send api.example.org to the egress gateway; the gateway sends it out', () => {
    const fromSidecar = vhost(translated(state.model, sidecar)[ROUTE_CONFIG], '80', 'api.example.org');
    expect(fromSidecar.routes.map((r: any) => r.route.cluster)).toEqual(['outbound|80||istio-egressgateway.istio-system.svc.cluster.local']);
    // The egress gateway pod at the Service's endpoint: it listens on the target port 8080.
    const gw = translated(state.model, router('10.0.5.1', 'egressgateway'));
    expect(gw[LISTENER].map((l: any) => [l.name, l.address.socket_address.port_value])).toEqual([['0.0.0.0_8080', 8080]]);
    const out = vhost(gw[ROUTE_CONFIG], 'http.80', 'api.example.org');
    expect(out.routes.map((r: any) => r.route.cluster)).toEqual(['outbound|80||api.example.org']);
    // The ingress gateway is not selected by the egress Gateway: no listeners.
    expect(translated(state.model, router('10.0.6.1', 'ingressgateway'))[LISTENER]).toEqual([]);
  });
});

describe('examples/gateways/ingress', () => {
  const dir = 'examples/gateways/ingress';
  const files = ['examples/bookinfo/services.yaml', path.join(dir, 'rules.yaml')];
  const loads = files.map((f) => parseConfigText(f, fs.readFileSync(f, 'utf8')));
  const state = compile({ ...loads[0]!, objects: loads.flatMap((l) => l.objects), errors: loads.flatMap((l) => l.errors) });

  it('with the bookinfo services: accepted, HTTPS with the Secret over SDS, HTTP redirects, sidecars untouched', () => {
    expect([...state.errors, ...state.warnings]).toEqual([]);
    const gw = translated(state.model, router('10.0.6.1', 'ingressgateway'));
    expect(gw[LISTENER].map((l: any) => l.name).sort()).toEqual(['0.0.0.0_443', '0.0.0.0_80']);
    const https = gw[LISTENER].find((l: any) => l.name === '0.0.0.0_443') as any;
    const tls = https.filter_chains[0].transport_socket.typed_config.common_tls_context;
    expect(tls.tls_certificate_sds_secret_configs).toEqual([{ name: 'kubernetes://bookinfo-cert', sds_config: { ads: {}, resource_api_version: 'V3' } }]);
    expect(vhost(gw[ROUTE_CONFIG], 'http.80', 'bookinfo.example.com').require_tls).toBe('ALL');
    const routes = vhost(gw[ROUTE_CONFIG], 'https.443.https.bookinfo-gateway.default', 'bookinfo.example.com').routes;
    expect(routes.map((r: any) => r.route.cluster)).toEqual(['outbound|9080||reviews.default.svc.cluster.local', 'outbound|9080||productpage.default.svc.cluster.local']);
    const sidecarRoutes = JSON.stringify(translated(state.model, sidecar)[ROUTE_CONFIG]);
    expect(sidecarRoutes).not.toContain('bookinfo.example.com');
  });
});

describe('examples/kubernetes/gateways', () => {
  const config = loadInjectionConfig();
  for (const file of ['ingress-gateway.yaml', 'egress-gateway.yaml']) {
    it(`${file} injects into a gateway pod: Envoy as node type router, no traffic capture`, () => {
      const full = path.join('examples/kubernetes/gateways', file);
      const result = injectYaml(full, fs.readFileSync(full, 'utf8'), { defaultNamespace: 'default', namespaceLabels: () => ({ [INJECT]: 'enabled' }) }, config);
      const docs = parseAllDocuments(result.output).map((d) => d.toJS() as any);
      for (const d of docs) expect(kubernetesProblems(d), `${d.kind} ${d.metadata?.name}`).toEqual([]);
      const pod = docs.find((d) => d.kind === 'Deployment').spec.template;
      const names = pod.spec.initContainers.map((c: any) => c.name);
      expect(names).toContain(PROXY_CONTAINER);
      expect(names).not.toContain(INIT_CONTAINER);
      const bootstrap = pod.spec.initContainers.find((c: any) => c.name === PROXY_CONTAINER).args[1] as string;
      const id = /id: (\S+)/.exec(bootstrap)![1]!;
      expect(id.startsWith('router~')).toBe(true);
      // What meshpilot reads from that id once the kubelet has filled in the pod's values.
      expect(proxyFromNode({ id: id.replace(/\$\([A-Z_]+\)/g, 'x').replace('~x~', '~10.0.0.1~') }).router).toBe(true);
      const svc = docs.find((d) => d.kind === 'Service');
      expect(svc.spec.ports.map((p: any) => p.targetPort)).toEqual([8080, 8443]);
    });
  }
});
