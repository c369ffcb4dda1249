// tcp/tls routes bound to gateways: what is refused (positioned, the rule left out, the rest in
// force), what is a warning, and that non-HTTP servers are no longer "not served".
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { compile, formatIssue } from '../control-plane/model/compile.ts';
import { proxyFromNode } from '../control-plane/translate/proxy.ts';
import { translate } from '../control-plane/translate/translate.ts';
import { LISTENER } from '../control-plane/translate/type-urls.ts';

const SERVICES = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: db, namespace: default }
spec:
  hosts: [db.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 5432, name: tcp, protocol: TCP }, { number: 5433, name: tcp-replica, protocol: TCP }]
  endpoints: [{ address: 10.0.0.1 }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: web, namespace: default }
spec:
  hosts: [web.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{ number: 443, name: tls, protocol: TLS }]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: default }
spec:
  selector: { istio: ingressgateway }
  servers:
  - port: { number: 31400, name: tcp, protocol: TCP }
    hosts: ["*"]
  - port: { number: 443, name: tls, protocol: TLS }
    hosts: [web.example.com]
    tls: { mode: PASSTHROUGH }
---
`;
const vs = (name: string, body: string) => `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: ${name}, namespace: default }\nspec:\n${body.replace(/^/gm, '  ')}\n---\n`;
const ROUTER = proxyFromNode({ id: 'router~10.0.0.20~gw-1.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default', LABELS: { istio: 'ingressgateway' } } });

function compiled(text: string) {
  const state = compile(parseConfigText('g.yaml', text));
  return { state, issues: [...state.errors.map((e) => `error: ${formatIssue(e)}`), ...state.warnings.map((w) => `warning: ${formatIssue(w)}`)] };
}
const listeners = (state: ReturnType<typeof compiled>['state']) => translate(state.model, ROUTER)[LISTENER].map((l) => String(l.name)).sort();

describe('gateway tcp/tls routes', () => {
  it('a tcp route to a multi-port destination without a port is refused at its position; the other rules stay', () => {
    const text = SERVICES
      + vs('bad', 'hosts: ["*"]\ngateways: [gw]\ntcp:\n- route: [{ destination: { host: db.default.svc.cluster.local } }]')
      + vs('web', 'hosts: [web.example.com]\ngateways: [gw]\ntls:\n- match: [{ sniHosts: [web.example.com] }]\n  route: [{ destination: { host: web.example.com } }]');
    const { state, issues } = compiled(text);
    expect(issues).toEqual(['error: g.yaml:39:15 spec.tcp[0].route[0].destination.port: service db.default.svc.cluster.local has several ports; name one with destination.port.number (VirtualService default/bad)']);
    expect(state.model.gatewayVirtualServices.map((v) => v.key)).toEqual(['default/web']);
    // The TCP server has no rule left: no listener; the PASSTHROUGH one has its chain.
    expect(listeners(state)).toEqual(['0.0.0.0_443']);
  });

  it('an unknown destination host is an error naming the field', () => {
    const { issues } = compiled(SERVICES + vs('x', 'hosts: ["*"]\ngateways: [gw]\ntcp:\n- route: [{ destination: { host: nowhere.example.com } }]'));
    expect(issues).toEqual(['error: g.yaml:39:36 spec.tcp[0].route[0].destination.host: destination host nowhere.example.com is not a known service (declare it with a ServiceEntry) (VirtualService default/x)']);
  });

  it('sniHosts outside every PASSTHROUGH server of the gateway is a warning, and gets no chain', () => {
    const { state, issues } = compiled(SERVICES + vs('web', 'hosts: ["*.example.com"]\ngateways: [gw]\ntls:\n- match: [{ sniHosts: [api.example.com] }]\n  route: [{ destination: { host: web.example.com } }]'));
    expect(issues).toEqual(['warning: g.yaml:39:26 spec.tls[0].match[0].sniHosts[0]: api.example.com is not within the hosts of any PASSTHROUGH server of the gateways this match is bound to: it never applies there (VirtualService default/web)']);
    expect(listeners(state)).toEqual([]);
  });

  it('a tcp route for another port, or for mesh only, gives the TCP server nothing; one for its port does', () => {
    const other = compiled(SERVICES + vs('db', 'hosts: [db.default.svc.cluster.local]\ngateways: [gw, mesh]\ntcp:\n- match: [{ port: 9999, gateways: [gw] }, { gateways: [mesh] }]\n  route: [{ destination: { host: db.default.svc.cluster.local, port: { number: 5432 } } }]'));
    expect(other.issues).toEqual([]);
    expect(listeners(other.state)).toEqual([]);
    const own = compiled(SERVICES + vs('db', 'hosts: ["*"]\ngateways: [gw]\ntcp:\n- match: [{ port: 31400 }]\n  route: [{ destination: { host: db.default.svc.cluster.local, port: { number: 5433 } } }]'));
    expect(own.issues).toEqual([]);
    const l = translate(own.state.model, ROUTER)[LISTENER].find((x) => x.name === '0.0.0.0_31400') as any;
    expect(l.filter_chains[0].filters[0].typed_config.cluster).toBe('outbound|5433||db.default.svc.cluster.local');
  });
});
